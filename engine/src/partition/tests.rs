//! A partition's owner over a real log holding transactions: what a fetch,
//! a wait for data, ListOffsets and the stats answer to readers of each
//! isolation and protocol.

use std::{cell::Cell, rc::Rc, sync::Arc, time::Duration};

use futures_channel::oneshot;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_storage::{
    batch::{Batch, BatchHeader, Marker, BATCH_HEADER_BYTES},
    log::{AbortedTransaction, Log, LogConfig},
    Offset, TopicId,
};

use super::{
    ops::{
        FetchOutcome, Isolation, Listed, OffsetQuery, PartitionKey, PartitionOp, PartitionStats,
        Partitions, ReadFrom, Reply, WireFormat,
    },
    owner,
    test_batches::{marker_unassigned, plain_unassigned, transactional_unassigned},
    Failure,
};
use crate::replica::state::{Lease, Replicas};

const KEY: PartitionKey = PartitionKey {
    topic: TopicId(1),
    partition: sluice_storage::PartitionId(0),
};

/// Producers 1 and 2 end their transactions, producer 3's stays open.
const ABORTS: i64 = 1;
const COMMITS: i64 = 2;
const OPEN: i64 = 3;

/// The owner of [`KEY`], alone on this node.
struct Owner {
    partitions: Partitions,
    replicas: Replicas,
}

impl Owner {
    fn log(&self) -> Rc<Log> {
        self.partitions.borrow()[&KEY].clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> PartitionOp) -> Result<T, Failure> {
        let (reply, answer) = oneshot::channel();
        owner::run(&self.partitions, &self.replicas, KEY, make(reply)).await;
        answer.await.expect("the owner answers")
    }

    async fn fetch(&self, offset: u64, format: WireFormat, isolation: Isolation) -> FetchOutcome {
        self.ask(|reply| PartitionOp::Fetch {
            offset: Offset(offset),
            max_bytes: usize::MAX,
            format,
            isolation,
            from: ReadFrom::Leader,
            reply,
        })
        .await
        .expect("a fetch within the log")
    }

    async fn list(&self, query: OffsetQuery, isolation: Isolation) -> Option<u64> {
        self.ask(|reply: Reply<Option<Listed>>| PartitionOp::ListOffset {
            query,
            isolation,
            reply,
        })
        .await
        .expect("listed")
        .map(|listed| listed.offset.0)
    }
}

/// The owner of a log of (offset: batch):
///
/// 0 plain, 1 data of [`ABORTS`], 2 data of [`COMMITS`], 3 abort of
/// [`ABORTS`], 4 plain, 5 data of [`OPEN`], 6 commit of [`COMMITS`], 7
/// plain. A plain batch's record is stamped 1000 + its offset, the others
/// 1000.
async fn owner_of_transactions(dir: &std::path::Path) -> Owner {
    let log = Log::open(dir, LogConfig::default()).await.unwrap();
    let batches = [
        plain_unassigned(1_000),
        transactional_unassigned(ABORTS, 0, 1),
        transactional_unassigned(COMMITS, 0, 1),
        marker_unassigned(ABORTS, Marker::Abort),
        plain_unassigned(1_004),
        transactional_unassigned(OPEN, 0, 1),
        marker_unassigned(COMMITS, Marker::Commit),
        plain_unassigned(1_007),
    ];
    for (offset, batch) in batches.into_iter().enumerate() {
        assert_eq!(
            log.append(batch).await.unwrap().base_offset.0,
            offset as u64
        );
    }
    let partitions = Partitions::default();
    partitions.borrow_mut().insert(KEY, Rc::new(log));
    Owner {
        partitions,
        replicas: Replicas::new(Duration::from_secs(10), Arc::new(Lease::default())),
    }
}

fn on_executor(test: impl std::future::Future<Output = ()> + 'static) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("glommio executor starts")
        .run(test);
}

/// The base offsets of the Kafka RecordBatches of a Kafka fetch's records.
fn kafka_bases(outcome: &FetchOutcome) -> Vec<i64> {
    let mut bases = Vec::new();
    for records in &outcome.batches {
        let mut at = 0;
        while at < records.len() {
            bases.push(i64::from_be_bytes(records[at..at + 8].try_into().unwrap()));
            let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap());
            at += 12 + length as usize;
        }
    }
    bases
}

/// The base offsets of a native fetch's batches, each a whole native batch.
fn native_bases(outcome: &FetchOutcome) -> Vec<u64> {
    outcome
        .batches
        .iter()
        .map(|bytes| {
            let header = BatchHeader::parse(bytes).unwrap();
            assert_eq!(header.batch_bytes as usize, bytes.len(), "one batch");
            assert!(bytes.len() > BATCH_HEADER_BYTES);
            Batch::validate(bytes.clone())
                .expect("a native batch")
                .base_offset()
                .0
        })
        .collect()
}

fn aborted_by(producer_id: i64, first: u64) -> (i64, Offset) {
    (producer_id, Offset(first))
}

fn aborted_of(outcome: &FetchOutcome) -> Option<Vec<(i64, Offset)>> {
    outcome.aborted.as_ref().map(|aborted| {
        aborted
            .iter()
            .map(|aborted: &AbortedTransaction| (aborted.producer_id, aborted.first_offset))
            .collect()
    })
}

#[test]
fn a_committed_kafka_fetch_stops_at_the_last_stable_offset_and_lists_the_aborts_it_returns() {
    on_executor(async {
        let dir = tempfile::tempdir().unwrap();
        let owner = owner_of_transactions(dir.path()).await;

        let read = owner
            .fetch(0, WireFormat::Kafka, Isolation::Committed)
            .await;
        assert_eq!(kafka_bases(&read), [0, 1, 2, 3, 4], "markers go to Kafka");
        assert_eq!(
            (read.high_watermark, read.last_stable_offset),
            (Offset(8), Offset(5))
        );
        assert_eq!(read.read_end, Offset(5));
        assert_eq!(aborted_of(&read), Some(vec![aborted_by(ABORTS, 1)]));

        // From inside the aborted transaction: it overlaps the read.
        let read = owner
            .fetch(2, WireFormat::Kafka, Isolation::Committed)
            .await;
        assert_eq!(kafka_bases(&read), [2, 3, 4]);
        assert_eq!(aborted_of(&read), Some(vec![aborted_by(ABORTS, 1)]));
        // Past its marker: it does not.
        let read = owner
            .fetch(4, WireFormat::Kafka, Isolation::Committed)
            .await;
        assert_eq!(kafka_bases(&read), [4]);
        assert_eq!(aborted_of(&read), Some(Vec::new()));
        // At the last stable offset and past it, within the log: nothing,
        // and an empty list, as Kafka answers.
        for offset in [5, 7, 8] {
            let read = owner
                .fetch(offset, WireFormat::Kafka, Isolation::Committed)
                .await;
            assert!(read.batches.is_empty(), "at {offset}");
            assert_eq!(read.read_end, Offset(offset));
            assert_eq!(aborted_of(&read), Some(Vec::new()), "at {offset}");
        }
    });
}

#[test]
fn an_uncommitted_kafka_fetch_reads_to_the_high_watermark_and_lists_no_aborts() {
    on_executor(async {
        let dir = tempfile::tempdir().unwrap();
        let owner = owner_of_transactions(dir.path()).await;
        let read = owner
            .fetch(0, WireFormat::Kafka, Isolation::Uncommitted)
            .await;
        assert_eq!(kafka_bases(&read), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(aborted_of(&read), None);
        assert_eq!(read.last_stable_offset, Offset(5), "answered all the same");
        assert_eq!(read.read_end, Offset(8));
    });
}

#[test]
fn a_native_fetch_gets_neither_markers_nor_aborted_batches_and_moves_past_them() {
    on_executor(async {
        let dir = tempfile::tempdir().unwrap();
        let owner = owner_of_transactions(dir.path()).await;
        let read = owner
            .fetch(0, WireFormat::Native, Isolation::Committed)
            .await;
        assert_eq!(native_bases(&read), [0, 2, 4]);
        assert_eq!((read.read_end, read.aborted.as_ref()), (Offset(5), None));

        // Producer 3 commits at 8: the stable end moves past it.
        let log = owner.log();
        log.append(marker_unassigned(OPEN, Marker::Commit))
            .await
            .unwrap();
        let read = owner
            .fetch(5, WireFormat::Native, Isolation::Committed)
            .await;
        assert_eq!(native_bases(&read), [5, 7]);
        // A read of markers only returns nothing but its end.
        let read = owner
            .fetch(8, WireFormat::Native, Isolation::Committed)
            .await;
        assert!(read.batches.is_empty());
        assert_eq!(
            (read.read_end, read.last_stable_offset),
            (Offset(9), Offset(9))
        );
    });
}

#[test]
fn a_committed_wait_ends_at_the_marker_not_at_an_append_behind_the_open_transaction() {
    on_executor(async {
        let dir = tempfile::tempdir().unwrap();
        let owner = Rc::new(owner_of_transactions(dir.path()).await);
        let woken = Rc::new(Cell::new(false));
        let waiter = {
            let (owner, woken) = (owner.clone(), woken.clone());
            glommio::spawn_local(async move {
                owner
                    .ask(|reply| PartitionOp::WaitForData {
                        offset: Offset(5),
                        isolation: Isolation::Committed,
                        timeout: Duration::from_secs(30),
                        reply,
                    })
                    .await
                    .unwrap();
                woken.set(true);
            })
        };
        let log = owner.log();
        log.append(plain_unassigned(1_008)).await.unwrap();
        glommio::timer::sleep(Duration::from_millis(50)).await;
        assert!(!woken.get(), "woken with the transaction still open");
        log.append(marker_unassigned(OPEN, Marker::Abort))
            .await
            .unwrap();
        waiter.await;
    });
}

#[test]
fn list_offsets_answers_as_each_isolation_reads() {
    on_executor(async {
        let dir = tempfile::tempdir().unwrap();
        let owner = owner_of_transactions(dir.path()).await;
        use Isolation::{Committed, Uncommitted};
        assert_eq!(owner.list(OffsetQuery::Latest, Committed).await, Some(5));
        assert_eq!(owner.list(OffsetQuery::Latest, Uncommitted).await, Some(8));
        assert_eq!(owner.list(OffsetQuery::Earliest, Committed).await, Some(0));
        // Found below the last stable offset: the same for both.
        let before = OffsetQuery::Timestamp(1_004);
        assert_eq!(owner.list(before, Committed).await, Some(4));
        assert_eq!(owner.list(before, Uncommitted).await, Some(4));
        // Found at or past it: none for a committed reader (Kafka's rule).
        let after = OffsetQuery::Timestamp(1_007);
        assert_eq!(owner.list(after, Committed).await, None);
        assert_eq!(owner.list(after, Uncommitted).await, Some(7));
        assert_eq!(owner.list(OffsetQuery::MaxTimestamp, Committed).await, None);
        assert_eq!(
            owner.list(OffsetQuery::MaxTimestamp, Uncommitted).await,
            Some(7)
        );

        let stats: PartitionStats = owner
            .ask(|reply| PartitionOp::Stats { reply })
            .await
            .unwrap();
        assert_eq!(
            (stats.log_end, stats.last_stable_offset),
            (Offset(8), Offset(5))
        );
    });
}
