//! Consuming: fetch with long polling, records out as a stream.
//!
//! A fetch answers with whole stored batches back to back. Each is
//! validated (length, CRC, archive) before its records are read in place;
//! a record's key, value and headers are slices of the fetched bytes, not
//! copies. A batch may begin before the offset asked for (the broker
//! serves whole batches), so records below it are skipped.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_lite::Stream;
use glommio::Task;
use sluice_storage::batch::{Batch, BatchHeader, BATCH_BYTES_MAX, BATCH_HEADER_BYTES};

use super::{
    admin::partition_message,
    produce::duration_ms,
    routing::{backoff, is_not_leader, is_unreachable},
    Client, ClientError, ProtocolError, LEADER_RETRIES_MAX,
};
use crate::native::{
    messages::{FetchPartition, FetchRequest, FetchResponse, FetchTopic, OffsetSpec},
    ErrorCode,
};

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The first record still in the log.
    Earliest,
    /// The end of the log: only records produced from now on.
    Latest,
    /// The first record with a timestamp at or after this (ms since the
    /// Unix epoch); the end of the log when there is none.
    Timestamp(i64),
    /// This offset.
    At(u64),
    /// The first record with the largest timestamp.
    MaxTimestamp,
}

impl From<OffsetSpec> for StartOffset {
    fn from(spec: OffsetSpec) -> StartOffset {
        match spec {
            OffsetSpec::Earliest => StartOffset::Earliest,
            OffsetSpec::Latest => StartOffset::Latest,
            OffsetSpec::Timestamp(timestamp) => StartOffset::Timestamp(timestamp),
            OffsetSpec::MaxTimestamp => StartOffset::MaxTimestamp,
        }
    }
}

impl From<u64> for StartOffset {
    fn from(offset: u64) -> StartOffset {
        StartOffset::At(offset)
    }
}

/// One partition to read: from `start`, up to `end` (exclusive) or, with
/// `end` `None`, for as long as the stream is polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    pub partition: u32,
    pub start: StartOffset,
    pub end: Option<u64>,
}

/// How a consumer fetches.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// How long the broker holds a fetch that has less than `min_bytes`.
    pub max_wait: Duration,
    pub min_bytes: u32,
    /// Bytes of batches per fetch response (the first batch always comes).
    pub max_bytes: u32,
    /// Bytes of batches per partition per fetch response.
    pub partition_max_bytes: u32,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 16 * 1024 * 1024,
            partition_max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// One record as consumed. Key, value and headers share the fetched bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: u32,
    pub offset: u64,
    /// Milliseconds since the Unix epoch, as the producer set it.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// (name, value) pairs, in the order the producer gave them.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// The records of one or more partitions of a topic, in offset order per
/// partition. After an error the stream ends; start a new one at the next
/// offset to go on.
pub struct RecordStream {
    inner: Pin<Box<dyn Stream<Item = Result<ConsumedRecord, ClientError>>>>,
}

impl Stream for RecordStream {
    type Item = Result<ConsumedRecord, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Client {
    /// Every record of one partition from `start` on, waiting for new ones
    /// at the end of the log (the stream does not end by itself).
    pub fn consume(
        &self,
        topic: &str,
        partition: u32,
        start: impl Into<StartOffset>,
    ) -> RecordStream {
        self.consume_partitions(
            topic,
            vec![PartitionRange {
                partition,
                start: start.into(),
                end: None,
            }],
            ConsumeOptions::default(),
        )
    }

    /// Records of several partitions of one topic. Each partition is read
    /// from its leader: one fetch in flight per leading node, asking for
    /// all of that node's partitions (on a single node, one fetch for them
    /// all). A partition refused as `NotLeader`, or whose leader could not
    /// be reached, is fetched again from the leader the connected node
    /// names, at most [`LEADER_RETRIES_MAX`]
    /// times in a row. The stream ends when every partition has reached
    /// its `end` (never, if one has none).
    pub fn consume_partitions(
        &self,
        topic: &str,
        ranges: Vec<PartitionRange>,
        options: ConsumeOptions,
    ) -> RecordStream {
        let state = Consumer {
            client: self.clone(),
            topic: topic.to_string(),
            cursors: ranges
                .into_iter()
                .map(|range| Cursor {
                    partition: range.partition,
                    start: range.start,
                    next: match range.start {
                        StartOffset::At(offset) => Some(offset),
                        _ => None,
                    },
                    end: range.end,
                    leader_tries: 0,
                })
                .collect(),
            ready: VecDeque::new(),
            failed: false,
            options,
            in_flight: Vec::new(),
        };
        let stream = futures_lite::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        });
        RecordStream {
            inner: Box::pin(stream),
        }
    }
}

struct Cursor {
    partition: u32,
    start: StartOffset,
    /// The next offset to read; `None` until `start` is looked up.
    next: Option<u64>,
    end: Option<u64>,
    /// Fetches of it sent again in a row after its leader moved or could
    /// not be reached.
    leader_tries: u32,
}

impl Cursor {
    fn is_done(&self) -> bool {
        matches!((self.next, self.end), (Some(next), Some(end)) if next >= end)
    }
}

struct Consumer {
    client: Client,
    topic: String,
    cursors: Vec<Cursor>,
    ready: VecDeque<ConsumedRecord>,
    failed: bool,
    options: ConsumeOptions,
    /// Fetches sent and not yet answered, at most one per node.
    in_flight: Vec<InFlightFetch>,
}

/// A fetch of some partitions from their leader, on its own task (cancelled
/// when the stream is dropped: a fetch changes nothing).
struct InFlightFetch {
    node: u32,
    partitions: Vec<u32>,
    task: Task<Result<FetchResponse, ClientError>>,
}

impl Consumer {
    async fn next(&mut self) -> Option<Result<ConsumedRecord, ClientError>> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(Ok(record));
            }
            if self.failed {
                return None;
            }
            match self.fetch().await {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error));
                }
            }
        }
    }

    /// Looks up the start offsets not known yet.
    async fn resolve_starts(&mut self) -> Result<(), ClientError> {
        let specs: Vec<(u32, OffsetSpec)> = self
            .cursors
            .iter()
            .filter(|cursor| cursor.next.is_none())
            .map(|cursor| {
                let spec = match cursor.start {
                    StartOffset::Earliest => OffsetSpec::Earliest,
                    StartOffset::Latest | StartOffset::At(_) => OffsetSpec::Latest,
                    StartOffset::Timestamp(timestamp) => OffsetSpec::Timestamp(timestamp),
                    StartOffset::MaxTimestamp => OffsetSpec::MaxTimestamp,
                };
                (cursor.partition, spec)
            })
            .collect();
        if specs.is_empty() {
            return Ok(());
        }
        let listed = self.client.list_offsets(&self.topic, &specs).await?;
        let mut after_last = Vec::new();
        for cursor in self
            .cursors
            .iter_mut()
            .filter(|cursor| cursor.next.is_none())
        {
            let Some(listed) = listed
                .iter()
                .find(|listed| listed.partition == cursor.partition)
            else {
                return Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
                    "list offsets does not mention {}/{}",
                    self.topic, cursor.partition
                ))));
            };
            match listed.offset {
                Some(offset) => cursor.next = Some(offset),
                // No record at or after the timestamp: start at the end.
                None => after_last.push((cursor.partition, OffsetSpec::Latest)),
            }
        }
        if !after_last.is_empty() {
            let listed = self.client.list_offsets(&self.topic, &after_last).await?;
            for listed in listed {
                if let Some(cursor) = self
                    .cursors
                    .iter_mut()
                    .find(|cursor| cursor.partition == listed.partition)
                {
                    cursor.next = Some(listed.offset.unwrap_or(0));
                }
            }
        }
        if let Some(cursor) = self.cursors.iter().find(|cursor| cursor.next.is_none()) {
            return Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
                "no start offset for {}/{}",
                self.topic, cursor.partition
            ))));
        }
        Ok(())
    }

    /// Sends a fetch to each leading node that has none in flight, then
    /// takes the first answer. `Ok(false)` when every partition is done.
    async fn fetch(&mut self) -> Result<bool, ClientError> {
        self.resolve_starts().await?;
        let in_flight: Vec<u32> = self
            .in_flight
            .iter()
            .flat_map(|fetch| fetch.partitions.iter().copied())
            .collect();
        let idle = self
            .cursors
            .iter()
            .filter(|cursor| !cursor.is_done() && !in_flight.contains(&cursor.partition))
            .map(|cursor| FetchPartition {
                partition: cursor.partition,
                offset: cursor.next.expect("resolved"),
                max_bytes: self.options.partition_max_bytes,
            });
        let groups = self
            .client
            .by_leader(&self.topic, idle, |partition| partition.partition);
        for (node, partitions) in groups {
            let request = FetchRequest {
                max_wait_ms: duration_ms(self.options.max_wait),
                min_bytes: self.options.min_bytes,
                max_bytes: self.options.max_bytes,
                topics: vec![FetchTopic {
                    name: self.topic.clone(),
                    partitions,
                }],
            };
            let partitions = request.topics[0]
                .partitions
                .iter()
                .map(|partition| partition.partition)
                .collect();
            let client = self.client.clone();
            let task = glommio::spawn_local(async move {
                let connection = client.connection_to(node).await?;
                client.fetch_on(&connection, &request).await
            });
            self.in_flight.push(InFlightFetch {
                node,
                partitions,
                task,
            });
        }
        if self.in_flight.is_empty() {
            return Ok(false);
        }
        let (done, answer) = std::future::poll_fn(|cx| {
            for (index, fetch) in self.in_flight.iter_mut().enumerate() {
                if let Poll::Ready(answer) = Pin::new(&mut fetch.task).poll(cx) {
                    return Poll::Ready((index, answer));
                }
            }
            Poll::Pending
        })
        .await;
        let done = self.in_flight.swap_remove(done);
        let response = match answer {
            Ok(response) => response,
            Err(error) if is_not_leader(&error) || is_unreachable(&error) => {
                if is_unreachable(&error) {
                    self.client.forget_node(done.node);
                }
                self.follow_leaders(&done.partitions, error).await?;
                return Ok(true);
            }
            Err(error) => return Err(error),
        };
        let mut moved = Vec::new();
        let mut moved_error = None;
        for topic in response.topics {
            if topic.name != self.topic {
                return Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
                    "a fetch of {} answered for topic {}",
                    self.topic, topic.name
                ))));
            }
            for answer in topic.partitions {
                let Some(cursor) = self
                    .cursors
                    .iter_mut()
                    .find(|cursor| cursor.partition == answer.partition)
                    .filter(|cursor| done.partitions.contains(&cursor.partition))
                else {
                    return Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
                        "a fetch answered for partition {} which was not asked for",
                        answer.partition
                    ))));
                };
                match answer.error {
                    ErrorCode::None => {
                        cursor.leader_tries = 0;
                        let batches = answer.batch_bytes();
                        read_records(cursor, &batches, answer.next_offset, &mut self.ready)?;
                    }
                    ErrorCode::NotLeader => {
                        moved.push(answer.partition);
                        moved_error = Some(ClientError::broker(
                            answer.error,
                            partition_message(&self.topic, answer.partition, &answer.message),
                        ));
                    }
                    code => {
                        return Err(ClientError::broker(
                            code,
                            partition_message(&self.topic, answer.partition, &answer.message),
                        ))
                    }
                }
            }
        }
        if let Some(error) = moved_error {
            self.follow_leaders(&moved, error).await?;
        }
        Ok(true)
    }

    /// After `partitions` were refused as `NotLeader` or their leader could
    /// not be reached (`error`): fails when one of them has been fetched
    /// again too often in a row, else waits its backoff and asks where the
    /// topic's partitions live now.
    async fn follow_leaders(
        &mut self,
        partitions: &[u32],
        error: ClientError,
    ) -> Result<(), ClientError> {
        let mut tries = 0;
        for cursor in self
            .cursors
            .iter_mut()
            .filter(|cursor| partitions.contains(&cursor.partition))
        {
            if cursor.leader_tries >= LEADER_RETRIES_MAX {
                return Err(error);
            }
            tries = tries.max(cursor.leader_tries);
            cursor.leader_tries += 1;
        }
        tracing::debug!(topic = self.topic, %error, tries, "the consumer follows the leaders");
        backoff(tries).await;
        self.client.refresh_leaders(&self.topic).await;
        Ok(())
    }
}

/// Appends the records of `batches` at or after the cursor (and before its
/// end) to `out`, and moves the cursor past them, and on to `next_offset`
/// (the broker's next offset: past the markers and aborted batches it left
/// out) if that is further.
fn read_records(
    cursor: &mut Cursor,
    batches: &Bytes,
    next_offset: u64,
    out: &mut VecDeque<ConsumedRecord>,
) -> Result<(), ClientError> {
    for batch in split_batches(batches)? {
        let header = batch.header();
        let next = cursor.next.expect("resolved");
        if header.next_offset() <= next {
            continue;
        }
        let records = batch.records()?;
        let bytes = batch.as_bytes();
        for (index, record) in records.iter().enumerate() {
            let offset = header.base_offset + index as u64;
            if offset < next {
                continue;
            }
            if cursor.end.is_some_and(|end| offset >= end) {
                break;
            }
            out.push_back(ConsumedRecord {
                partition: cursor.partition,
                offset,
                timestamp: header
                    .first_timestamp
                    .wrapping_add(record.timestamp_delta()),
                key: record.key().map(|key| bytes.slice_ref(key)),
                value: bytes.slice_ref(record.value()),
                headers: record
                    .headers()
                    .map(|header| {
                        (
                            bytes.slice_ref(header.name),
                            header.value.map(|value| bytes.slice_ref(value)),
                        )
                    })
                    .collect(),
            });
        }
        cursor.next = Some(header.next_offset());
    }
    cursor.next = cursor.next.max(Some(next_offset));
    Ok(())
}

/// Splits a fetched run of batches into validated batches. Each batch's
/// length comes from its header and is checked against what remains and
/// against the batch cap before it is sliced. A partial batch at the end
/// (a broker cutting at its byte budget) is left for the next fetch; a run
/// that holds no whole batch at all is an error, as reading on from it
/// would make no progress.
pub(crate) fn split_batches(bytes: &Bytes) -> Result<Vec<Batch>, ClientError> {
    let mut batches = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < BATCH_HEADER_BYTES {
            break;
        }
        let header = BatchHeader::parse(rest)?;
        let length = header.batch_bytes as usize;
        if !(BATCH_HEADER_BYTES..=BATCH_BYTES_MAX).contains(&length) {
            return Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
                "a fetched batch declares {length} bytes, outside {BATCH_HEADER_BYTES}..={BATCH_BYTES_MAX}"
            ))));
        }
        if length > rest.len() {
            break;
        }
        batches.push(Batch::validate(bytes.slice(at..at + length))?);
        at += length;
    }
    if batches.is_empty() && !bytes.is_empty() {
        return Err(ClientError::Protocol(ProtocolError::Unexpected(format!(
            "a fetch returned {} bytes that hold no whole batch",
            bytes.len()
        ))));
    }
    if at < bytes.len() {
        tracing::debug!(
            partial_bytes = bytes.len() - at,
            "partial batch at the end of a fetch"
        );
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use sluice_storage::{batch::BatchBuilder, Offset};

    fn batch(base_offset: u64, values: &[&str]) -> Batch {
        let mut builder = BatchBuilder::default();
        for (index, value) in values.iter().enumerate() {
            let key = format!("k{index}");
            builder.push(
                1_000 + index as i64,
                Some(key.as_bytes()),
                value.as_bytes(),
                &[(b"h".as_slice(), Some(value.as_bytes()))],
            );
        }
        builder.finish().assign(Offset(base_offset), 0)
    }

    fn run(batches: &[Batch]) -> Bytes {
        let mut out = BytesMut::new();
        for batch in batches {
            out.extend_from_slice(batch.as_bytes());
        }
        out.freeze()
    }

    fn cursor(next: u64, end: Option<u64>) -> Cursor {
        Cursor {
            partition: 3,
            start: StartOffset::At(next),
            next: Some(next),
            end,
            leader_tries: 0,
        }
    }

    #[test]
    fn records_below_the_offset_asked_for_are_skipped() {
        let bytes = run(&[batch(10, &["a", "b", "c"]), batch(13, &["d", "e"])]);
        let mut cursor = cursor(11, None);
        let mut out = VecDeque::new();
        read_records(&mut cursor, &bytes, 0, &mut out).unwrap();
        let offsets: Vec<u64> = out.iter().map(|record| record.offset).collect();
        assert_eq!(offsets, [11, 12, 13, 14]);
        assert_eq!(cursor.next, Some(15));
        let first = &out[0];
        assert_eq!(first.partition, 3);
        assert_eq!(first.value, Bytes::from_static(b"b"));
        assert_eq!(first.key, Some(Bytes::from_static(b"k1")));
        assert_eq!(first.timestamp, 1_001);
        assert_eq!(
            first.headers,
            vec![(Bytes::from_static(b"h"), Some(Bytes::from_static(b"b")))]
        );
    }

    #[test]
    fn the_cursor_moves_on_past_what_the_broker_left_out() {
        // Batches at 4 and 5 were left out (a marker, an aborted batch).
        let bytes = run(&[batch(2, &["a", "b"])]);
        let mut cursor = cursor(2, None);
        let mut out = VecDeque::new();
        read_records(&mut cursor, &bytes, 6, &mut out).unwrap();
        assert_eq!((out.len(), cursor.next), (2, Some(6)));
        // Nothing returned, all left out: the cursor still moves.
        read_records(&mut cursor, &Bytes::new(), 9, &mut out).unwrap();
        assert_eq!((out.len(), cursor.next), (2, Some(9)));
        // An offset behind the batches (a broker of version 0 says 0)
        // changes nothing.
        let bytes = run(&[batch(9, &["c"])]);
        read_records(&mut cursor, &bytes, 0, &mut out).unwrap();
        assert_eq!((out.len(), cursor.next), (3, Some(10)));
    }

    #[test]
    fn records_at_or_past_the_end_are_left_out() {
        let bytes = run(&[batch(0, &["a", "b", "c"])]);
        let mut cursor = cursor(0, Some(2));
        let mut out = VecDeque::new();
        read_records(&mut cursor, &bytes, 0, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(cursor.is_done());
    }

    #[test]
    fn a_partial_batch_at_the_end_waits_for_the_next_fetch() {
        let whole = run(&[batch(0, &["a"]), batch(1, &["b"])]);
        let cut = whole.slice(..whole.len() - 5);
        assert_eq!(split_batches(&cut).unwrap().len(), 1);
        let first_only = whole.slice(..BATCH_HEADER_BYTES + 3);
        assert!(split_batches(&first_only).is_err());
        assert!(split_batches(&Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_batch_is_an_error() {
        let mut bytes = BytesMut::from(run(&[batch(0, &["hello"])]).as_ref());
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let error = split_batches(&bytes.freeze()).unwrap_err();
        assert!(
            matches!(error, ClientError::Protocol(ProtocolError::Batch(_))),
            "{error}"
        );
    }

    #[test]
    fn a_declared_length_over_the_cap_is_refused_before_slicing() {
        let mut bytes = BytesMut::from(run(&[batch(0, &["x"])]).as_ref());
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(split_batches(&bytes.freeze()).is_err());
    }
}
