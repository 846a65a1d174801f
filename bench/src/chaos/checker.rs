//! The checker: what a history says a broker did wrong, with the anomaly
//! definitions of Jepsen's Kafka workload.
//!
//! Every send acknowledged and every record read says "value V is at
//! offset O of partition P". From all of them together:
//!
//! - `lost_write`: a send was acknowledged, and its value is missing from
//!   the final full read of its partition, or (no final read of it) was
//!   never read though a read went past its offset.
//! - `unseen`: acknowledged, never read, and nothing says it should have
//!   been (no read past it, no final read of its partition). Not an error
//!   by itself: a run that ends without a final read leaves some.
//! - `duplicate`: one value at two offsets (or partitions).
//! - `inconsistent_offsets`: two values at one offset.
//! - `nonmonotonic_send`: one client's acknowledgements for a partition,
//!   in the order it got them, with offsets that do not rise.
//! - `nonmonotonic_poll`: one consumer reading a partition at an offset
//!   not above the last it read there, with no reassignment between.
//! - `poll_skip`: one consumer reading a partition at offset B after A,
//!   while a value is known at an offset between them.
//! - `reorder`: two values of one idempotent producer in one partition,
//!   stored in the other order than they were sent.
//! - `aborted_read`: a record written in a transaction that aborted was
//!   read, at the offset its send was acknowledged at (every consumer of
//!   a transactional run reads committed; a value may be written again,
//!   in a later transaction, once one with it aborted).
//! - `missing_output`: in a consume-transform-produce run (one with
//!   transactions), a value of the final read of the input has no
//!   transformed value (`t:` and the value) in the final read of the
//!   output; one with two is a `duplicate`.
//!
//! A transactional send is written only if its transaction commits: the
//! sends of a transaction that aborted or whose end is unknown are no
//! acknowledged writes (their offsets are not known values, so a
//! read_committed consumer that skips them skips nothing).
//!
//! A history is valid when it has none of these but `unseen`. A checker
//! that cannot fail is no checker: each anomaly has a history of its own
//! in the tests below, and the lossy-system tests feed it real ones.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{
    history::{Event, EventType, Function},
    timeline::{fault_spans, longest_stalls, FaultSpan},
};

/// Examples kept per anomaly.
pub const EXAMPLES_MAX: usize = 8;

/// What a consume-transform-produce run's transformer puts before each
/// value it copies from the input to the output.
pub const TRANSFORMED: &str = "t:";

/// A partition: topic and index.
type Key = (String, u32);

/// A record one consumer read (partition, offset, value), or `None` where
/// it was given partitions anew.
type ClientRead = Option<(Key, u64, String)>;

/// The anomalies, in the order reports list them.
pub const ANOMALIES: [&str; 10] = [
    "lost_write",
    "duplicate",
    "inconsistent_offsets",
    "nonmonotonic_send",
    "nonmonotonic_poll",
    "poll_skip",
    "reorder",
    "aborted_read",
    "missing_output",
    "unseen",
];

/// How many of each operation the history holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub sends_unknown: u64,
    pub polls: u64,
    pub records_read: u64,
    pub commits: u64,
    pub faults: u64,
    #[serde(default)]
    pub txns_committed: u64,
    #[serde(default)]
    pub txns_aborted: u64,
    #[serde(default)]
    pub txns_unknown: u64,
}

/// One anomaly's count and its first examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub count: u64,
    pub examples: Vec<serde_json::Value>,
}

impl Found {
    fn add(&mut self, example: serde_json::Value) {
        self.count += 1;
        if self.examples.len() < EXAMPLES_MAX {
            self.examples.push(example);
        }
    }
}

/// What the checker found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// No anomaly but `unseen`.
    pub valid: bool,
    pub counts: Counts,
    /// By name, every one of [`ANOMALIES`] (a count of 0 when none).
    pub anomalies: BTreeMap<String, Found>,
    /// Every fault, with how long it stalled writers and readers.
    #[serde(default)]
    pub faults: Vec<FaultSpan>,
    /// The longest write stall of each fault kind, in milliseconds.
    #[serde(default)]
    pub longest_write_stall_ms: BTreeMap<String, f64>,
}

impl Report {
    pub fn count(&self, anomaly: &str) -> u64 {
        self.anomalies.get(anomaly).map_or(0, |found| found.count)
    }

    /// The report for people: the counts, then each anomaly found with its
    /// first example.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "# Check: {}\n\n",
            if self.valid { "valid" } else { "INVALID" }
        ));
        let c = &self.counts;
        out.push_str("| sends ok | sends failed | sends unknown | polls | records read | commits | faults |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n\n",
            c.sends_ok,
            c.sends_failed,
            c.sends_unknown,
            c.polls,
            c.records_read,
            c.commits,
            c.faults
        ));
        if c.txns_committed + c.txns_aborted + c.txns_unknown > 0 {
            out.push_str(&format!(
                "| transactions committed | aborted | unknown |\n|---|---|---|\n| {} | {} | {} |\n\n",
                c.txns_committed, c.txns_aborted, c.txns_unknown
            ));
        }
        out.push_str("| anomaly | count | first example |\n|---|---|---|\n");
        for name in ANOMALIES {
            let found = self.anomalies.get(name).cloned().unwrap_or_default();
            let example = found
                .examples
                .first()
                .map_or(String::new(), |e| format!("`{e}`"));
            out.push_str(&format!("| {name} | {} | {example} |\n", found.count));
        }
        if !self.faults.is_empty() {
            out.push_str("\n## Faults\n\n| kind | longest write stall (ms) |\n|---|---|\n");
            for (kind, ms) in &self.longest_write_stall_ms {
                out.push_str(&format!("| {kind} | {ms:.0} |\n"));
            }
            out.push_str(
                "\n| at (s) | kind | target | healed after (ms) | write stall (ms) | read stall (ms) |\n\
                 |---|---|---|---|---|---|\n",
            );
            for span in &self.faults {
                let healed = span.end_s.map_or("never".to_string(), |end| {
                    format!("{:.0}", (end - span.start_s) * 1e3)
                });
                out.push_str(&format!(
                    "| {:.3} | {} | {} | {healed} | {:.0} | {:.0} |\n",
                    span.start_s, span.kind, span.target, span.write_stall_ms, span.read_stall_ms
                ));
            }
        }
        out
    }
}

/// A value known at an offset, and how it is known.
struct Known {
    key: Key,
    offset: u64,
    value: String,
}

/// Checks `events`.
pub fn check(events: &[Event]) -> Report {
    let mut counts = Counts::default();
    let mut found: BTreeMap<String, Found> = ANOMALIES
        .iter()
        .map(|name| (name.to_string(), Found::default()))
        .collect();
    let mut known: Vec<Known> = Vec::new();
    // Sends by op: what was invoked (for the writer and its order).
    let mut invoked: HashMap<u64, &Event> = HashMap::new();
    let mut acked: Vec<(&Event, &Event)> = Vec::new();
    // Per client: its reads, in order, with reassignments between.
    let mut reads_by_client: BTreeMap<u32, Vec<ClientRead>> = BTreeMap::new();
    let mut read_values: HashSet<&str> = HashSet::new();
    let mut final_keys: HashSet<Key> = HashSet::new();
    let mut final_values: HashSet<&str> = HashSet::new();
    // Each transaction's end: true committed, false aborted (absent:
    // unknown).
    let outcomes: HashMap<u64, bool> = events
        .iter()
        .filter(|event| event.f == Some(Function::Txn))
        .filter_map(|event| match event.kind {
            EventType::Ok => Some((event.op?, true)),
            EventType::Fail => Some((event.op?, false)),
            _ => None,
        })
        .collect();
    let transactional = events.iter().any(|event| event.f == Some(Function::Txn));
    let mut aborted_places: HashSet<(&str, u32, u64)> = HashSet::new();
    for event in events {
        // A transactional send counts as written once its transaction
        // committed.
        if let (Some(txn), Some(Function::Send)) = (event.txn, event.f) {
            match outcomes.get(&txn) {
                Some(true) => {}
                Some(false) => {
                    if let (Some(topic), Some(partition), Some(offset)) =
                        (&event.topic, event.partition, event.offset)
                    {
                        aborted_places.insert((topic.as_str(), partition, offset));
                    }
                    continue;
                }
                None => continue,
            }
        }
        match (event.kind, event.f) {
            (EventType::Fault, _) if event.phase.as_deref() != Some("end") => {
                counts.faults += 1;
            }
            (EventType::Invoke, Some(Function::Send)) => {
                if let Some(op) = event.op {
                    invoked.insert(op, event);
                }
            }
            (EventType::Ok, Some(Function::Send)) => {
                counts.sends_ok += 1;
                let invocation = event.op.and_then(|op| invoked.get(&op).copied());
                if let (Some(topic), Some(partition), Some(offset), Some(value)) =
                    (&event.topic, event.partition, event.offset, &event.value)
                {
                    known.push(Known {
                        key: (topic.clone(), partition),
                        offset,
                        value: value.clone(),
                    });
                    acked.push((invocation.unwrap_or(event), event));
                }
            }
            (EventType::Fail, Some(Function::Send)) => counts.sends_failed += 1,
            (EventType::Info, Some(Function::Send)) => counts.sends_unknown += 1,
            (EventType::Ok, Some(Function::Poll)) => {
                counts.polls += 1;
                let client = event.client.unwrap_or(u32::MAX);
                let reads = reads_by_client.entry(client).or_default();
                for read in &event.reads {
                    counts.records_read += 1;
                    let key = (read.topic.clone(), read.partition);
                    if event.final_read {
                        final_keys.insert(key.clone());
                        final_values.insert(read.value.as_str());
                    }
                    known.push(Known {
                        key: key.clone(),
                        offset: read.offset,
                        value: read.value.clone(),
                    });
                    read_values.insert(read.value.as_str());
                    reads.push(Some((key, read.offset, read.value.clone())));
                }
            }
            (EventType::Ok, Some(Function::Commit)) => counts.commits += 1,
            (EventType::Ok, Some(Function::Txn)) => counts.txns_committed += 1,
            (EventType::Fail, Some(Function::Txn)) => counts.txns_aborted += 1,
            (EventType::Info, Some(Function::Txn)) => counts.txns_unknown += 1,
            (EventType::Ok, Some(Function::Assign))
            | (EventType::Invoke, Some(Function::Assign)) => {
                if let Some(client) = event.client {
                    reads_by_client.entry(client).or_default().push(None);
                }
            }
            _ => {}
        }
    }

    // Each partition's offsets, with the values seen at each.
    let mut log: BTreeMap<Key, BTreeMap<u64, BTreeSet<&str>>> = BTreeMap::new();
    // Each value's places.
    let mut places: HashMap<&str, BTreeSet<(&Key, u64)>> = HashMap::new();
    for k in &known {
        log.entry(k.key.clone())
            .or_default()
            .entry(k.offset)
            .or_default()
            .insert(k.value.as_str());
        places
            .entry(k.value.as_str())
            .or_default()
            .insert((&k.key, k.offset));
    }
    let max_read: HashMap<&Key, u64> = reads_by_client.values().flatten().flatten().fold(
        HashMap::new(),
        |mut max, (key, offset, _)| {
            let entry = max.entry(key).or_insert(*offset);
            *entry = (*entry).max(*offset);
            max
        },
    );

    for (key, offsets) in &log {
        for (offset, values) in offsets {
            if values.len() > 1 {
                found
                    .get_mut("inconsistent_offsets")
                    .unwrap()
                    .add(serde_json::json!({
                        "topic": key.0, "partition": key.1, "offset": offset, "values": values,
                    }));
            }
        }
    }
    let mut duplicates: Vec<(&&str, &BTreeSet<(&Key, u64)>)> =
        places.iter().filter(|(_, at)| at.len() > 1).collect();
    duplicates.sort();
    for (value, at) in duplicates {
        let at: Vec<serde_json::Value> = at
            .iter()
            .map(|(key, offset)| serde_json::json!({"topic": key.0, "partition": key.1, "offset": offset}))
            .collect();
        found
            .get_mut("duplicate")
            .unwrap()
            .add(serde_json::json!({"value": value, "at": at}));
    }

    // Acknowledged writes never read: lost, or only unseen.
    let mut send_order: BTreeMap<(u32, Key), Vec<u64>> = BTreeMap::new();
    for (invocation, ok) in &acked {
        let key = (
            ok.topic.clone().unwrap_or_default(),
            ok.partition.unwrap_or_default(),
        );
        let offset = ok.offset.unwrap_or_default();
        let value = ok.value.as_deref().unwrap_or_default();
        if let Some(client) = ok.client {
            let offsets = send_order.entry((client, key.clone())).or_default();
            if offsets.last().is_some_and(|last| offset <= *last) {
                found
                    .get_mut("nonmonotonic_send")
                    .unwrap()
                    .add(serde_json::json!({
                        "client": client, "topic": key.0, "partition": key.1,
                        "offset": offset, "after": offsets.last(), "value": value,
                    }));
            }
            offsets.push(offset);
        }
        let finally_read = final_keys.contains(&key);
        if (finally_read && final_values.contains(value))
            || (!finally_read && read_values.contains(value))
        {
            continue;
        }
        let read_past = max_read.get(&key).is_some_and(|max| *max > offset);
        let example = serde_json::json!({
            "topic": key.0, "partition": key.1, "offset": offset, "value": value,
            "op": ok.op, "acknowledged_ns": ok.mono_ns, "sent_ns": invocation.mono_ns,
            "read_before": read_values.contains(value),
        });
        if finally_read || read_past {
            found.get_mut("lost_write").unwrap().add(example);
        } else {
            found.get_mut("unseen").unwrap().add(example);
        }
    }

    // Each consumer's reads of each partition, in order.
    for (client, reads) in &reads_by_client {
        let mut last: HashMap<&Key, u64> = HashMap::new();
        for read in reads {
            let Some((key, offset, value)) = read else {
                last.clear();
                continue;
            };
            if let Some(previous) = last.get(key).copied() {
                if *offset <= previous {
                    found
                        .get_mut("nonmonotonic_poll")
                        .unwrap()
                        .add(serde_json::json!({
                            "client": client, "topic": key.0, "partition": key.1,
                            "offset": offset, "after": previous, "value": value,
                        }));
                } else if let Some((skipped, values)) = log
                    .get(key)
                    .and_then(|offsets| offsets.range(previous + 1..*offset).next())
                {
                    found.get_mut("poll_skip").unwrap().add(serde_json::json!({
                        "client": client, "topic": key.0, "partition": key.1,
                        "from": previous, "to": offset, "skipped": skipped, "values": values,
                    }));
                }
            }
            last.insert(key, *offset);
        }
    }

    // An idempotent producer's values in one partition, in send order,
    // must be stored in that order.
    let mut idempotent_writes: BTreeMap<(u32, Key), Vec<(u64, &str)>> = BTreeMap::new();
    for event in events {
        if event.kind != EventType::Invoke || event.f != Some(Function::Send) || !event.idempotent {
            continue;
        }
        // A transaction's sends are written only if it committed.
        if event
            .txn
            .is_some_and(|txn| outcomes.get(&txn) != Some(&true))
        {
            continue;
        }
        let (Some(client), Some(topic), Some(partition), Some(value)) =
            (event.client, &event.topic, event.partition, &event.value)
        else {
            continue;
        };
        let key = (topic.clone(), partition);
        let Some(offset) = places
            .get(value.as_str())
            .and_then(|at| at.iter().find(|(at, _)| **at == key).map(|(_, o)| *o))
        else {
            continue;
        };
        idempotent_writes
            .entry((client, key))
            .or_default()
            .push((offset, value.as_str()));
    }
    for ((client, key), writes) in &idempotent_writes {
        for pair in writes.windows(2) {
            if pair[1].0 < pair[0].0 {
                found.get_mut("reorder").unwrap().add(serde_json::json!({
                    "client": client, "topic": key.0, "partition": key.1,
                    "sent_first": pair[0].1, "at": pair[0].0,
                    "sent_next": pair[1].1, "stored_at": pair[1].0,
                }));
            }
        }
    }

    // No value of an aborted transaction is ever read.
    for event in events {
        if event.kind != EventType::Ok || event.f != Some(Function::Poll) {
            continue;
        }
        for read in &event.reads {
            if aborted_places.contains(&(read.topic.as_str(), read.partition, read.offset)) {
                found
                    .get_mut("aborted_read")
                    .unwrap()
                    .add(serde_json::json!({
                        "client": event.client, "topic": read.topic, "partition": read.partition,
                        "offset": read.offset, "value": read.value, "final_read": event.final_read,
                    }));
            }
        }
    }
    // Each input value transformed into the output.
    if transactional {
        let mut missing: Vec<&&str> = final_values
            .iter()
            .filter(|value| !value.starts_with(TRANSFORMED))
            .filter(|value| !final_values.contains(format!("{TRANSFORMED}{value}").as_str()))
            .collect();
        missing.sort();
        for value in missing {
            found
                .get_mut("missing_output")
                .unwrap()
                .add(serde_json::json!({ "value": value }));
        }
    }

    let valid = found
        .iter()
        .all(|(name, found)| name == "unseen" || found.count == 0);
    let faults = fault_spans(events);
    Report {
        valid,
        counts,
        anomalies: found,
        longest_write_stall_ms: longest_stalls(&faults),
        faults,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::history::Read;

    /// A small history builder: ops numbered in order.
    #[derive(Default)]
    struct History {
        events: Vec<Event>,
        next_op: u64,
        clock: u64,
    }

    impl History {
        fn event(&mut self, kind: EventType, f: Function, client: u32) -> Event {
            self.clock += 1;
            let mut event = Event::new(kind, self.clock);
            event.f = Some(f);
            event.client = Some(client);
            event
        }

        /// A send by `client` of `value` to partition `p` of "t":
        /// `offset` Some acknowledged there, None unknown.
        fn send(
            &mut self,
            client: u32,
            p: u32,
            value: &str,
            offset: Option<u64>,
            idempotent: bool,
        ) {
            self.next_op += 1;
            let op = self.next_op;
            let mut invoke = self.event(EventType::Invoke, Function::Send, client);
            invoke.op = Some(op);
            invoke.topic = Some("t".into());
            invoke.partition = Some(p);
            invoke.value = Some(value.into());
            invoke.idempotent = idempotent;
            let mut done = invoke.clone();
            self.clock += 1;
            done.mono_ns = self.clock;
            done.kind = if offset.is_some() {
                EventType::Ok
            } else {
                EventType::Info
            };
            done.offset = offset;
            self.events.push(invoke);
            self.events.push(done);
        }

        fn poll(&mut self, client: u32, reads: &[(u32, u64, &str)], final_read: bool) {
            self.next_op += 1;
            let mut done = self.event(EventType::Ok, Function::Poll, client);
            done.op = Some(self.next_op);
            done.final_read = final_read;
            done.reads = reads
                .iter()
                .map(|(p, offset, value)| Read {
                    topic: "t".into(),
                    partition: *p,
                    offset: *offset,
                    value: (*value).into(),
                })
                .collect();
            self.events.push(done);
        }

        fn assign(&mut self, client: u32) {
            let event = self.event(EventType::Ok, Function::Assign, client);
            self.events.push(event);
        }

        /// A transaction of `client` numbered `txn`, its sends acknowledged
        /// at the offsets given, ended with `kind` (ok: committed, fail:
        /// aborted, info: unknown).
        fn txn(&mut self, client: u32, txn: u64, sends: &[(u32, &str, u64)], kind: EventType) {
            for (p, value, offset) in sends {
                let at = self.events.len();
                self.send(client, *p, value, Some(*offset), true);
                for event in &mut self.events[at..] {
                    event.txn = Some(txn);
                }
            }
            let mut end = self.event(kind, Function::Txn, client);
            end.op = Some(txn);
            self.events.push(end);
        }

        fn check(&self) -> Report {
            check(&self.events)
        }
    }

    /// Two writers, two partitions, every write read once, in order.
    fn clean() -> History {
        let mut h = History::default();
        h.send(1, 0, "w1-0", Some(0), true);
        h.send(1, 0, "w1-1", Some(1), true);
        h.send(2, 1, "w2-0", Some(0), false);
        h.send(2, 0, "w2-1", Some(2), false);
        h.send(2, 1, "w2-2", None, false);
        h.poll(9, &[(0, 0, "w1-0"), (0, 1, "w1-1")], false);
        h.poll(9, &[(1, 0, "w2-0"), (0, 2, "w2-1")], false);
        h.poll(9, &[(1, 1, "w2-2")], false);
        h
    }

    fn only(report: &Report, anomaly: &str, count: u64) {
        for name in ANOMALIES {
            let expected = if name == anomaly { count } else { 0 };
            assert_eq!(report.count(name), expected, "{name}: {report:#?}");
        }
    }

    #[test]
    fn a_clean_history_is_valid() {
        let report = clean().check();
        assert!(report.valid, "{report:#?}");
        only(&report, "", 0);
        assert_eq!(report.counts.sends_ok, 4);
        assert_eq!(report.counts.sends_unknown, 1);
        assert_eq!(report.counts.records_read, 5);
        assert!(report.markdown().contains("# Check: valid"));
    }

    #[test]
    fn an_aborted_transaction_is_no_write_and_must_never_be_read() {
        let mut h = History::default();
        h.txn(1, 100, &[(0, "t:a", 0), (0, "t:b", 1)], EventType::Fail);
        h.txn(1, 101, &[(0, "t:c", 3)], EventType::Ok);
        h.txn(1, 102, &[(0, "t:d", 5)], EventType::Info);
        // A read_committed consumer skips the aborted records and the
        // markers: no skip, nothing lost.
        h.poll(9, &[(0, 3, "t:c")], false);
        h.poll(2000, &[(0, 3, "t:c")], true);
        let report = h.check();
        assert!(report.valid, "{report:#?}");
        assert_eq!(report.counts.txns_committed, 1);
        assert_eq!(report.counts.txns_aborted, 1);
        assert_eq!(report.counts.txns_unknown, 1);
        assert!(report.markdown().contains("| 1 | 1 | 1 |"));
        // The aborted value written again, and read where it committed.
        h.txn(1, 103, &[(0, "t:a", 7)], EventType::Ok);
        h.poll(11, &[(0, 7, "t:a")], false);
        h.poll(2000, &[(0, 7, "t:a")], true);
        assert!(h.check().valid, "{:#?}", h.check());
        // Read where it aborted: the reader saw an aborted transaction.
        h.poll(10, &[(0, 1, "t:b")], false);
        only(&h.check(), "aborted_read", 1);
    }

    #[test]
    fn a_committed_transaction_must_be_read_whole() {
        let mut h = History::default();
        h.txn(1, 100, &[(0, "t:a", 0), (0, "t:b", 1)], EventType::Ok);
        h.poll(2000, &[(0, 0, "t:a")], true);
        only(&h.check(), "lost_write", 1);
    }

    #[test]
    fn every_input_of_a_transform_run_is_in_its_output() {
        let mut h = History::default();
        h.send(3, 1, "w3-0", Some(0), true);
        h.send(3, 1, "w3-1", Some(1), true);
        h.txn(7, 100, &[(0, "t:w3-0", 0)], EventType::Ok);
        h.poll(
            2000,
            &[(1, 0, "w3-0"), (1, 1, "w3-1"), (0, 0, "t:w3-0")],
            true,
        );
        only(&h.check(), "missing_output", 1);
    }

    #[test]
    fn an_acknowledged_write_read_past_is_lost() {
        let mut h = clean();
        h.send(3, 0, "w3-0", Some(3), false);
        h.send(3, 0, "w3-1", Some(4), false);
        h.poll(10, &[(0, 4, "w3-1")], false);
        let report = h.check();
        assert!(!report.valid);
        only(&report, "lost_write", 1);
        assert_eq!(report.anomalies["lost_write"].examples[0]["value"], "w3-0");
    }

    #[test]
    fn an_acknowledged_write_missing_from_the_final_read_is_lost() {
        let mut h = clean();
        h.send(3, 1, "w3-0", Some(2), false);
        h.poll(8, &[(1, 0, "w2-0"), (1, 1, "w2-2")], true);
        let report = h.check();
        only(&report, "lost_write", 1);
    }

    #[test]
    fn a_write_read_once_but_missing_from_the_final_read_is_lost() {
        let mut h = clean();
        h.poll(8, &[(0, 0, "w1-0"), (0, 2, "w2-1")], true);
        h.poll(8, &[(1, 0, "w2-0"), (1, 1, "w2-2")], true);
        let report = h.check();
        // w1-1 was read at offset 1 before; the final read lacks it.
        assert_eq!(report.count("lost_write"), 1, "{report:#?}");
        assert_eq!(report.anomalies["lost_write"].examples[0]["value"], "w1-1");
        assert_eq!(
            report.anomalies["lost_write"].examples[0]["read_before"],
            true
        );
        assert!(!report.valid);
    }

    #[test]
    fn a_write_nothing_read_near_is_only_unseen() {
        let mut h = clean();
        h.send(3, 1, "w3-0", Some(2), false);
        let report = h.check();
        assert!(report.valid, "unseen is not an error by itself");
        only(&report, "unseen", 1);
    }

    #[test]
    fn one_value_at_two_offsets_is_a_duplicate() {
        let mut h = clean();
        h.poll(
            7,
            &[
                (0, 0, "w1-0"),
                (0, 1, "w1-1"),
                (0, 2, "w2-1"),
                (0, 3, "w1-1"),
            ],
            false,
        );
        let report = h.check();
        only(&report, "duplicate", 1);
        assert_eq!(report.anomalies["duplicate"].examples[0]["value"], "w1-1");
    }

    #[test]
    fn two_values_at_one_offset_are_inconsistent() {
        let mut h = clean();
        h.send(3, 1, "w3-0", Some(1), false);
        h.poll(10, &[(1, 1, "w3-0")], false);
        let report = h.check();
        only(&report, "inconsistent_offsets", 1);
    }

    #[test]
    fn acknowledgements_going_back_are_a_nonmonotonic_send() {
        let mut h = History::default();
        h.send(1, 0, "w1-0", Some(5), false);
        h.send(1, 0, "w1-1", Some(4), false);
        h.poll(9, &[(0, 4, "w1-1"), (0, 5, "w1-0")], false);
        let report = h.check();
        only(&report, "nonmonotonic_send", 1);
    }

    #[test]
    fn a_consumer_going_back_without_reassignment_is_a_nonmonotonic_poll() {
        let mut h = clean();
        h.poll(9, &[(0, 1, "w1-1")], false);
        let report = h.check();
        only(&report, "nonmonotonic_poll", 1);
        // After a reassignment, reading again is fine.
        let mut h = clean();
        h.assign(9);
        h.poll(9, &[(0, 0, "w1-0")], false);
        assert!(h.check().valid);
    }

    #[test]
    fn a_consumer_jumping_over_a_known_value_is_a_poll_skip() {
        let mut h = clean();
        h.send(3, 0, "w3-0", Some(3), false);
        h.send(3, 0, "w3-1", Some(4), false);
        h.poll(8, &[(0, 0, "w1-0"), (0, 1, "w1-1")], false);
        h.poll(8, &[(0, 3, "w3-0"), (0, 4, "w3-1")], false);
        let report = h.check();
        only(&report, "poll_skip", 1);
        assert_eq!(report.anomalies["poll_skip"].examples[0]["skipped"], 2);
    }

    #[test]
    fn an_idempotent_producers_values_stored_out_of_order_are_a_reorder() {
        let mut h = History::default();
        h.send(1, 0, "w1-0", None, true);
        h.send(1, 0, "w1-1", None, true);
        h.poll(9, &[(0, 0, "w1-1"), (0, 1, "w1-0")], false);
        let report = h.check();
        only(&report, "reorder", 1);
        // The same from a producer that is not idempotent is allowed.
        let mut h = History::default();
        h.send(1, 0, "w1-0", None, false);
        h.send(1, 0, "w1-1", None, false);
        h.poll(9, &[(0, 0, "w1-1"), (0, 1, "w1-0")], false);
        assert!(h.check().valid);
    }

    #[test]
    fn examples_are_capped_and_counts_are_not() {
        let mut h = History::default();
        for i in 0..20 {
            h.send(1, 0, &format!("w1-{i}"), Some(i), false);
        }
        h.poll(9, &[(0, 20, "w1-20")], false);
        let report = h.check();
        assert_eq!(report.count("lost_write"), 20);
        assert_eq!(report.anomalies["lost_write"].examples.len(), EXAMPLES_MAX);
        assert!(report.markdown().contains("| lost_write | 20 |"));
    }
}
