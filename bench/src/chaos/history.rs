//! A history: every operation's invocation and completion, as the clients
//! of a chaos run saw them, one JSON object per line (`history.jsonl`).
//!
//! An operation is invoked once and completes at most once, with the same
//! `op` number: `ok` (it happened: a send acknowledged with its offset, a
//! poll with what it read), `fail` (it certainly did not happen) or `info`
//! (unknown: a send that timed out may or may not be stored). Faults are
//! events of their own, for the timeline. Every value written is unique
//! (`w{writer}-{sequence}`), so every read traces back to its write.
//!
//! ```text
//! {"op":7,"client":2,"type":"invoke","f":"send","topic":"t","partition":3,"value":"w2-17","mono_ns":1200,"wall_ms":1765000000000}
//! {"op":7,"client":2,"type":"ok","f":"send","topic":"t","partition":3,"value":"w2-17","offset":42,"mono_ns":2400,"wall_ms":1765000000001}
//! {"op":8,"client":5,"type":"ok","f":"poll","reads":[{"topic":"t","partition":3,"offset":42,"value":"w2-17"}],"mono_ns":...}
//! {"type":"fault","kind":"kill","target":"node 1","phase":"start","mono_ns":...}
//! ```

use std::io::{BufRead, Read as _, Write};

use serde::{Deserialize, Serialize};

/// A line longer than this is refused before it is parsed.
pub const LINE_BYTES_MAX: usize = 16 << 20;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// Sends one value to one partition.
    Send,
    /// Reads whatever the client's consumer returns.
    Poll,
    /// Commits a consumer group's offsets.
    Commit,
    /// The consumer was given partitions anew (assigned, rebalanced,
    /// sought): its next reads may start anywhere.
    Assign,
    /// A transaction's end: `ok` committed, `fail` aborted, `info`
    /// unknown. Its op is the transaction's number, which its sends
    /// carry (`txn`).
    Txn,
}

/// An event's type: an operation's invocation or completion, or a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
    Fault,
}

/// One record a poll read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub value: String,
}

/// One partition's position a commit stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub topic: String,
    pub partition: u32,
    /// The next offset the group reads there.
    pub offset: u64,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The operation (absent for a fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<u64>,
    /// The client that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<u32>,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<Function>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A send's offset, once acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// A poll's records, in the order it returned them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<Read>,
    /// A commit's positions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub committed: Vec<Committed>,
    /// A poll of the final full read, after the faults healed: every
    /// partition read from its start to its end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub final_read: bool,
    /// Whether the sending client is an idempotent producer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
    /// The transaction a send belongs to (the op of its `txn` event): it
    /// is written only if that transaction commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<u64>,
    /// Why it failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A fault's kind (`kill`, `pause`, `partition`, `disk-full`), target
    /// and phase (`start`, `end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Monotonic nanoseconds since the run began.
    pub mono_ns: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    #[serde(default)]
    pub wall_ms: u64,
}

impl Event {
    /// An event of `kind` with nothing else set, at `mono_ns`.
    pub fn new(kind: EventType, mono_ns: u64) -> Event {
        Event {
            op: None,
            client: None,
            kind,
            f: None,
            topic: None,
            partition: None,
            value: None,
            offset: None,
            reads: Vec::new(),
            committed: Vec::new(),
            final_read: false,
            idempotent: false,
            txn: None,
            error: None,
            fault: None,
            target: None,
            phase: None,
            mono_ns,
            wall_ms: 0,
        }
    }
}

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("line {line}: {source}")]
    Io { line: usize, source: std::io::Error },
    #[error("line {line}: longer than {LINE_BYTES_MAX} bytes")]
    TooLong { line: usize },
    #[error("line {line}: {reason}")]
    Parse { line: usize, reason: String },
}

/// Reads a history, one event per line (blank lines skipped); a line over
/// [`LINE_BYTES_MAX`] is refused before it is held whole.
pub fn read(input: impl BufRead) -> Result<Vec<Event>, HistoryError> {
    let mut events = Vec::new();
    let mut input = input;
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        number += 1;
        line.clear();
        let read = (&mut input)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| HistoryError::Io {
                line: number,
                source,
            })?;
        if read == 0 {
            return Ok(events);
        }
        if line.len() > LINE_BYTES_MAX {
            return Err(HistoryError::TooLong { line: number });
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = serde_json::from_slice(&line).map_err(|error| HistoryError::Parse {
            line: number,
            reason: error.to_string(),
        })?;
        events.push(event);
    }
}

/// Writes `event` as one line.
pub fn write(out: &mut impl Write, event: &Event) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_written() {
        let mut send = Event::new(EventType::Ok, 5);
        send.op = Some(1);
        send.client = Some(2);
        send.f = Some(Function::Send);
        send.topic = Some("t".into());
        send.partition = Some(3);
        send.value = Some("w2-1".into());
        send.offset = Some(9);
        send.idempotent = true;
        let mut poll = Event::new(EventType::Ok, 6);
        poll.op = Some(2);
        poll.f = Some(Function::Poll);
        poll.reads = vec![Read {
            topic: "t".into(),
            partition: 3,
            offset: 9,
            value: "w2-1".into(),
        }];
        let mut fault = Event::new(EventType::Fault, 7);
        fault.fault = Some("kill".into());
        fault.phase = Some("start".into());
        let mut bytes = Vec::new();
        for event in [&send, &poll, &fault] {
            write(&mut bytes, event).unwrap();
        }
        bytes.extend_from_slice(b"\n");
        let events = read(&bytes[..]).unwrap();
        assert_eq!(events, [send, poll, fault]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with(r#"{"op":1,"client":2,"type":"ok","f":"send""#),
            "{text}"
        );
    }

    #[test]
    fn a_bad_line_is_refused_with_its_number() {
        let error = read(&b"{\"type\":\"fault\",\"mono_ns\":1}\nnot json\n"[..]).unwrap_err();
        assert!(
            matches!(error, HistoryError::Parse { line: 2, .. }),
            "{error}"
        );
        let long = vec![b'x'; LINE_BYTES_MAX + 10];
        let error = read(&long[..]).unwrap_err();
        assert!(
            matches!(error, HistoryError::TooLong { line: 1 }),
            "{error}"
        );
    }
}
