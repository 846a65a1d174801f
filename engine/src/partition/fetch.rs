//! A fetch's read on the partition's owner: which replica serves it, how
//! far it reads (the high watermark, or the last stable offset for a
//! `read_committed` reader), and its batches in the reader's format.
//!
//! A Kafka reader gets the batches as stored, markers included, and for a
//! committed read the aborted transactions among them: its client drops
//! their records. A native reader gets neither markers nor, reading
//! committed, the batches of aborted transactions ([`committed`]), and
//! the read's end past them, so that it moves on.

use bytes::{Bytes, BytesMut};
use sluice_net::kafka::convert::kafka_to_native_runs;
use sluice_storage::{batch::Batch, log::Log, Offset};

use super::{
    committed::committed,
    ops::{FetchOutcome, Isolation, PartitionKey, ReadFrom, WireFormat},
    owner::read_failure,
};
use crate::{
    error::{ErrorKind, Failure},
    replica::{reads::ServedAs, state::Replicas},
};

/// What a fetch asks of one partition.
pub struct FetchAsk<'a> {
    pub offset: Offset,
    pub max_bytes: usize,
    pub format: WireFormat,
    pub isolation: Isolation,
    pub from: &'a ReadFrom,
}

/// Serves `ask` from `log`, partition `key`, if this node serves its reads
/// (`NotLeader` if not); a leader may name a closer replica instead of
/// reading.
pub async fn fetch(
    replicas: &Replicas,
    key: PartitionKey,
    log: &Log,
    ask: FetchAsk<'_>,
) -> Result<FetchOutcome, Failure> {
    let served_as = replicas.reader(key, ask.from)?;
    let figures = |read_end: Offset| FetchOutcome {
        high_watermark: log.visible_end(),
        last_stable_offset: log.stable_end(),
        log_start: log.start_offset(),
        read_end,
        ..FetchOutcome::default()
    };
    let closer = match ask.from {
        ReadFrom::AnyReplica { closer } if served_as == ServedAs::Leader => {
            replicas.closer_replica(key, ask.offset, closer)
        }
        _ => None,
    };
    if let Some(replica) = closer {
        replicas.counters.sent_to_closer_replica();
        return Ok(FetchOutcome {
            read_from: Some(replica),
            ..figures(ask.offset)
        });
    }
    // Past the high watermark (or the last stable offset) but within the
    // log (a follower's trails its leader's; a new leader's may trail its
    // predecessor's) reads nothing and waits; past the log end is out of
    // range (the log's rule).
    let read = match ask.isolation {
        Isolation::Uncommitted => log.read(ask.offset, ask.max_bytes).await,
        Isolation::Committed => log.read_stable(ask.offset, ask.max_bytes).await,
    };
    let batches = read.map_err(read_failure)?;
    if !batches.is_empty() {
        replicas.counters.read(served_as == ServedAs::Follower);
    }
    let read_end = batches
        .last()
        .map_or(ask.offset, |last| last.last_offset().next());
    // Kafka's: the aborts whose records overlap what was read, none when
    // nothing was.
    let aborted = match ask.isolation {
        Isolation::Committed if batches.is_empty() => Some(Vec::new()),
        Isolation::Committed => Some(log.aborted_transactions(ask.offset, read_end)),
        Isolation::Uncommitted => None,
    };
    let outcome = figures(read_end);
    match ask.format {
        WireFormat::Kafka => Ok(FetchOutcome {
            batches: kafka_records(batches)?.into_iter().collect(),
            aborted,
            ..outcome
        }),
        WireFormat::Native => Ok(FetchOutcome {
            batches: committed(batches, aborted.as_deref().unwrap_or_default())
                .into_iter()
                .map(native_bytes)
                .collect::<Result<_, _>>()?,
            ..outcome
        }),
    }
}

/// A stored batch as a native reader takes it: as stored, or decoded from
/// Kafka's format.
fn native_bytes(batch: Batch) -> Result<Bytes, Failure> {
    match batch.kafka_payload() {
        None => Ok(batch.into_bytes()),
        // One native batch per run of offsets (a compacted batch has gaps),
        // back to back.
        Some(_) => match kafka_to_native_runs(&batch) {
            Ok(mut runs) if runs.len() == 1 => Ok(runs.swap_remove(0).into_bytes()),
            Ok(runs) => {
                let mut out = BytesMut::with_capacity(runs.iter().map(Batch::len).sum());
                for run in &runs {
                    out.extend_from_slice(run.as_bytes());
                }
                Ok(out.freeze())
            }
            Err(error) => Err(Failure::new(ErrorKind::StorageFailed, error.to_string())),
        },
    }
}

/// Stored batches as a Kafka reader takes them: one after another, each a
/// RecordBatch v2, or `None` for no batch. One batch stored in Kafka's
/// format is a slice of what was read (no copy); otherwise each is written
/// once into one buffer, so the response's encoder is the only other copy.
fn kafka_records(batches: Vec<Batch>) -> Result<Option<Bytes>, Failure> {
    if let [batch] = batches.as_slice() {
        if let Some(kafka) = batch.kafka_payload() {
            return Ok(Some(kafka));
        }
    }
    let mut out = BytesMut::with_capacity(batches.iter().map(Batch::len).sum());
    for batch in &batches {
        batch
            .write_kafka(&mut out)
            .map_err(|error| Failure::new(ErrorKind::StorageFailed, error.to_string()))?;
    }
    Ok(Some(out.freeze()).filter(|records| !records.is_empty()))
}
