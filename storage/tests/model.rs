//! A model-based property test of the partition log.
//!
//! Random sequences of operations (append, read, roll, reopen, retention,
//! lookup by timestamp, and for idempotent producers a retry of an earlier
//! batch or a new epoch) run against a real [`Log`] in a temporary directory
//! and against a model that is nothing but the list of records appended, with
//! their batch boundaries, and what each producer sent. After every
//! operation the log must agree with the model: offsets are consecutive,
//! reads return whole contiguous batches holding exactly the model's records,
//! out-of-range reads are refused, a reopened log holds what it held,
//! `offset_for_timestamp` names the first record at or after the timestamp,
//! a retry of one of a producer's last five batches is answered with its
//! offsets and stored nowhere, an older one is refused as out of order (or
//! fenced, if of an older epoch), and what the log remembers of each
//! producer is its last batches, through reopens and retention.
//!
//! A follower's operations are in the mix too: a replicated append (a batch
//! assigned at the end in the current leader epoch or the next one) and a
//! truncation (inside the log, below its start, at or past its end), after
//! which the log must hold the model's records up to the start of the batch
//! containing the offset and nothing after, remember of each producer what
//! its batches before the cut say, and report the leader epochs of its
//! batches.
//!
//! The config is small (segments of 16 to 64 KiB, an index entry every 512
//! bytes, an 8 KiB tail cache) so that sequences of a few dozen appends cross
//! many segments and most reads go to the files, not to the cache. Each case
//! runs on its own glommio executor, as a log must.

use std::{future::Future, ops::Range, path::Path, time::Duration};

use proptest::{prelude::*, test_runner::TestCaseError};
use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{
        sequence_after, AppendError, FlushPolicy, Log, LogConfig, ProducerBatch, ProducerState,
        ReadError, PRODUCER_BATCHES_MAX,
    },
    Offset,
};

/// Operations in one case. Enough for a case to cross several segments and
/// reopen a few times; few enough that a case takes milliseconds.
const OPS_PER_CASE: Range<usize> = 1..60;
/// Records in one appended batch.
const RECORDS_PER_BATCH: Range<usize> = 1..20;
/// Records in a small batch: a few small batches fit between two index
/// entries.
const RECORDS_PER_SMALL_BATCH: Range<usize> = 1..4;
/// Bytes of each record's value. 20 records of the largest size make a batch
/// larger than the smallest segment.
const VALUE_BYTES: Range<usize> = 0..3000;
/// Bytes of each record's value in a small batch.
const SMALL_VALUE_BYTES: Range<usize> = 0..64;
/// The largest `max_bytes` a read asks for.
const READ_BYTES_MAX: usize = 64 * 1024;
/// The budget of each read when the whole log is walked.
const WALK_READ_BYTES: [usize; 2] = [1, 48 * 1024];
/// Where non-decreasing timestamps start, in milliseconds.
const TIMESTAMP_START_MS: i64 = 1_000;
/// The step from one record's timestamp to the next's, for non-decreasing
/// timestamps: often zero, so records share timestamps.
const TIMESTAMP_STEPS_MS: Range<i64> = 0..4;
/// The level of an arbitrary batch's timestamps: narrow, so that targets
/// often equal a record's timestamp and records often share one; below zero
/// too. Batches' levels go up and down, so a batch's max timestamp can be
/// below an earlier batch's.
const ARBITRARY_LEVELS_MS: Range<i64> = -20..300;
/// How far each record's timestamp strays from its batch's level, either
/// way: records of one batch are out of order.
const ARBITRARY_JITTER_MS: Range<i64> = -5..6;
/// At most this many distinct timestamps are looked up in a sweep.
const SWEEP_TIMESTAMPS_MAX: usize = 400;
/// Segments are 16 to 64 KiB: a few large batches fill one.
const SEGMENT_KIB: std::ops::RangeInclusive<u64> = 16..=64;
/// An index entry about every 512 bytes: small batches fall between
/// entries, large ones each get one.
const INDEX_INTERVAL_BYTES: u64 = 512;
/// A tail cache of about one large batch, so most reads go to the files.
const TAIL_CACHE_BYTES_MAX: usize = 8 * 1024;
/// Retention keeps about this many segments' worth of bytes.
const RETENTION_SEGMENTS: u64 = 3;
/// Idempotent producers in a case; producer `p` has id `PRODUCER_ID_BASE + p`
/// and starts at sequence `FIRST_SEQUENCES[p]`: the second one near the
/// largest, so that its sequences wrap.
const PRODUCERS: usize = 3;
const PRODUCER_ID_BASE: i64 = 40;
const FIRST_SEQUENCES: [i32; PRODUCERS] = [0, i32::MAX - 30, 1_000];
/// How far back a retry reaches: past the batches a log remembers.
const RESEND_BACK_MAX: usize = PRODUCER_BATCHES_MAX + 3;

/// Cases per test function, overridden by `PROPTEST_CASES`. The four
/// functions of 64 cases each take about 30 s in a debug build.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(64),
        // A failure is minimized and reported; nothing is written beside
        // the test (a regression worth keeping becomes a named test).
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timestamps {
    /// Each append's timestamps are deltas (zero or more) from the previous
    /// record's: timestamps never decrease over the log.
    NonDecreasing,
    /// Each append's timestamps are taken as they are.
    Arbitrary,
}

#[derive(Debug, Clone)]
struct Case {
    segment_bytes_max: u64,
    preallocate: bool,
    flush: FlushPolicy,
    timestamps: Timestamps,
    ops: Vec<Op>,
}

impl Case {
    fn config(&self) -> LogConfig {
        LogConfig {
            segment_bytes_max: self.segment_bytes_max,
            segment_ms: None,
            flush: self.flush,
            // Record timestamps are far in the past: retention by age would
            // delete everything sealed. Retention is by size, and only when
            // the sequence asks for it.
            retention_ms: None,
            retention_bytes: Some(RETENTION_SEGMENTS * self.segment_bytes_max),
            index_interval_bytes: INDEX_INTERVAL_BYTES,
            tail_cache_bytes_max: TAIL_CACHE_BYTES_MAX,
            preallocate: self.preallocate,
            ..LogConfig::default()
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// One batch with a record per timestamp (deltas under
    /// [`Timestamps::NonDecreasing`]), from an idempotent producer (its next
    /// sequence at its epoch) if `producer` says which.
    Append {
        timestamps: Vec<i64>,
        value_bytes: usize,
        keyed: bool,
        producer: Option<usize>,
    },
    /// The producer sends again the batch `back` before its newest.
    Resend {
        producer: usize,
        back: usize,
    },
    /// The producer moves to its next epoch, from sequence 0.
    BumpEpoch {
        producer: usize,
    },
    Read {
        at: ReadAt,
        max_bytes: usize,
    },
    Roll,
    /// Close the log and open it again with the same config.
    Reopen,
    ReadByTimestamp(TimestampTarget),
    ApplyRetention,
    /// A batch a leader assigned, in the model's leader epoch or (with
    /// `next_epoch`) the one after, appended as a follower appends it.
    Replicate {
        timestamps: Vec<i64>,
        value_bytes: usize,
        next_epoch: bool,
    },
    /// Truncate to an offset resolved against the log's range.
    Truncate(TruncateAt),
}

/// Where a truncation cuts, resolved against the log's range when it runs.
#[derive(Debug, Clone, Copy)]
enum TruncateAt {
    /// `start + selector % (end - start + 1)`: inside, or at the end.
    Inside(u64),
    BelowStart(u64),
}

/// Where a read starts, resolved against the log's range when it runs.
#[derive(Debug, Clone, Copy)]
enum ReadAt {
    /// `start + selector % (end - start)`, or the end of an empty log.
    Inside(u64),
    End,
    PastEnd(u64),
    BelowStart(u64),
}

/// The timestamp looked up, resolved against the model when it runs.
#[derive(Debug, Clone, Copy)]
enum TimestampTarget {
    /// A live record's timestamp (`selector` picks it) plus `nudge`.
    OfRecord {
        selector: u64,
        nudge: i64,
    },
    /// Anywhere from just below the smallest to just above the largest
    /// timestamp appended.
    Spread(u64),
    Min,
    Max,
}

/// The operations of a case; `small_in_ten` of ten appends are small
/// batches (under the index interval), the rest large (up to more than a
/// segment). Cases of mostly small batches put many of them between index
/// entries; cases of mostly large ones roll segments often.
fn op_strategy(timestamps: Timestamps, small_in_ten: u32) -> impl Strategy<Value = Op> {
    let record_timestamps = move |records: Range<usize>| match timestamps {
        Timestamps::NonDecreasing => prop::collection::vec(TIMESTAMP_STEPS_MS, records).boxed(),
        Timestamps::Arbitrary => (
            ARBITRARY_LEVELS_MS,
            prop::collection::vec(ARBITRARY_JITTER_MS, records),
        )
            .prop_map(|(level, jitters)| jitters.into_iter().map(|jitter| level + jitter).collect())
            .boxed(),
    };
    let shape = prop_oneof![
        small_in_ten => Just((RECORDS_PER_SMALL_BATCH, SMALL_VALUE_BYTES)),
        10 - small_in_ten => Just((RECORDS_PER_BATCH, VALUE_BYTES)),
    ];
    let producer = prop_oneof![
        2 => Just(None),
        3 => (0..PRODUCERS).prop_map(Some),
    ];
    let replicate = shape
        .clone()
        .prop_flat_map(move |(records, value_bytes)| {
            (
                record_timestamps(records),
                value_bytes,
                prop::bool::weighted(0.3),
            )
        })
        .prop_map(|(timestamps, value_bytes, next_epoch)| Op::Replicate {
            timestamps,
            value_bytes,
            next_epoch,
        });
    let truncate = prop_oneof![
        4 => any::<u64>().prop_map(TruncateAt::Inside),
        1 => (1u64..=3).prop_map(TruncateAt::BelowStart),
    ];
    let append = shape
        .prop_flat_map(move |(records, value_bytes)| {
            (
                record_timestamps(records),
                value_bytes,
                any::<bool>(),
                producer.clone(),
            )
        })
        .prop_map(|(timestamps, value_bytes, keyed, producer)| Op::Append {
            timestamps,
            value_bytes,
            keyed,
            producer,
        });
    let resend = (0..PRODUCERS, 0..RESEND_BACK_MAX)
        .prop_map(|(producer, back)| Op::Resend { producer, back });
    let at = prop_oneof![
        6 => any::<u64>().prop_map(ReadAt::Inside),
        1 => Just(ReadAt::End),
        1 => (1u64..=2).prop_map(ReadAt::PastEnd),
        1 => (1u64..=3).prop_map(ReadAt::BelowStart),
    ];
    let max_bytes = prop_oneof![1usize..=256, 1usize..=READ_BYTES_MAX];
    let read = (at, max_bytes).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes });
    let target = prop_oneof![
        4 => (any::<u64>(), -1i64..=1)
            .prop_map(|(selector, nudge)| TimestampTarget::OfRecord { selector, nudge }),
        2 => any::<u64>().prop_map(TimestampTarget::Spread),
        1 => Just(TimestampTarget::Min),
        1 => Just(TimestampTarget::Max),
    ];
    prop_oneof![
        6 => append,
        6 => read,
        3 => target.prop_map(Op::ReadByTimestamp),
        3 => resend,
        1 => (0..PRODUCERS).prop_map(|producer| Op::BumpEpoch { producer }),
        1 => Just(Op::Roll),
        1 => Just(Op::Reopen),
        1 => Just(Op::ApplyRetention),
        2 => replicate,
        1 => truncate.prop_map(Op::Truncate),
    ]
}

fn case_strategy(flush: FlushPolicy, timestamps: Timestamps) -> impl Strategy<Value = Case> {
    (SEGMENT_KIB, any::<bool>(), 1u32..=9)
        .prop_flat_map(move |(segment_kib, preallocate, small_in_ten)| {
            (
                Just(segment_kib),
                Just(preallocate),
                prop::collection::vec(op_strategy(timestamps, small_in_ten), OPS_PER_CASE),
            )
        })
        .prop_map(move |(segment_kib, preallocate, ops)| Case {
            segment_bytes_max: segment_kib * 1024,
            preallocate,
            flush,
            timestamps,
            ops,
        })
}

const INTERVAL: FlushPolicy = FlushPolicy::Interval(Duration::from_millis(5));

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn always_policy_with_non_decreasing_timestamps(
        case in case_strategy(FlushPolicy::Always, Timestamps::NonDecreasing)
    ) {
        run_case(case)?;
    }

    #[test]
    fn always_policy_with_arbitrary_timestamps(
        case in case_strategy(FlushPolicy::Always, Timestamps::Arbitrary)
    ) {
        run_case(case)?;
    }

    #[test]
    fn interval_policy_with_non_decreasing_timestamps(
        case in case_strategy(INTERVAL, Timestamps::NonDecreasing)
    ) {
        run_case(case)?;
    }

    #[test]
    fn interval_policy_with_arbitrary_timestamps(
        case in case_strategy(INTERVAL, Timestamps::Arbitrary)
    ) {
        run_case(case)?;
    }
}

/// Five batches of 145 bytes, timestamps 100, 500, 0, 0, 0, with an index
/// entry every 512 bytes: the fifth batch gets the first offset index entry,
/// while the time index holds only the first batch's timestamp (100). The
/// 500 of the second batch is in no index entry before the fifth batch, so
/// an open that scans from that entry must not forget it: the segment's max
/// timestamp is 500 and the lookup of 500 finds offset 1. Found by the
/// properties above and minimized by hand.
#[test]
fn a_reopened_log_keeps_the_max_timestamp_of_batches_before_its_last_index_entry() {
    let batch = |timestamp| Op::Append {
        timestamps: vec![timestamp],
        value_bytes: 40,
        keyed: false,
        producer: None,
    };
    let case = Case {
        segment_bytes_max: 16 * 1024,
        preallocate: true,
        flush: FlushPolicy::Always,
        timestamps: Timestamps::Arbitrary,
        ops: vec![
            batch(100),
            batch(500),
            batch(0),
            batch(0),
            batch(0),
            Op::ReadByTimestamp(TimestampTarget::OfRecord {
                selector: 1,
                nudge: 0,
            }),
            Op::Reopen,
        ],
    };
    if let Err(failure) = run_case(case) {
        panic!("{failure}");
    }
}

/// Runs one case on its own executor; a panic there (a failed assertion in
/// the log) fails the case like a disagreement with the model.
fn run_case(case: Case) -> Result<(), TestCaseError> {
    let outcome = run(move || async move { check_case(&case).await });
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(disagreement)) => Err(TestCaseError::fail(disagreement)),
        Err(panic) => Err(TestCaseError::fail(format!("the case panicked: {panic}"))),
    }
}

/// Runs `body` on a new glommio executor; `Err` carries its panic message.
fn run<T, F, Fut>(body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let joined = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(body)
        .expect("executor starts")
        .join();
    joined.map_err(|error| match error {
        glommio::GlommioError::BuilderError(glommio::BuilderErrorKind::ThreadPanic(payload)) => {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into())
        }
        other => other.to_string(),
    })
}

/// Returns `Err` with the message when a check fails.
macro_rules! check {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

#[derive(Debug, Clone)]
struct Record {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp: i64,
}

/// A batch an idempotent producer sent and the log took.
#[derive(Debug, Clone)]
struct Sent {
    /// As sent, to be sent again.
    batch: Batch,
    epoch: i16,
    first_sequence: i32,
    last_sequence: i32,
    base_offset: u64,
    last_offset: u64,
}

/// An idempotent producer: where it is, and what it sent.
#[derive(Debug, Clone)]
struct Producer {
    epoch: i16,
    next_sequence: i32,
    sent: Vec<Sent>,
}

impl Producer {
    /// What the log must remember of it: the epoch of its newest batch and
    /// its last batches of that epoch.
    fn expected_state(&self) -> Option<ProducerState> {
        let epoch = self.sent.last()?.epoch;
        let same_epoch = self
            .sent
            .iter()
            .rev()
            .take_while(|sent| sent.epoch == epoch)
            .take(PRODUCER_BATCHES_MAX)
            .count();
        let batches = self.sent[self.sent.len() - same_epoch..]
            .iter()
            .map(|sent| ProducerBatch {
                first_sequence: sent.first_sequence,
                last_sequence: sent.last_sequence,
                base_offset: Offset(sent.base_offset),
                last_offset: Offset(sent.last_offset),
            })
            .collect();
        Some(ProducerState { epoch, batches })
    }
}

/// What the log should hold: every record ever appended (the one at offset
/// `o` is `records[o]`), the batches they were appended in, where the log
/// starts, and what the idempotent producers sent.
#[derive(Default)]
struct Model {
    records: Vec<Record>,
    /// (base offset, last offset) of each batch, in order.
    batches: Vec<(u64, u64)>,
    /// The leader epoch of each batch of `batches`.
    batch_epochs: Vec<u32>,
    /// The epoch the log stamps on a leader's append: the highest a
    /// replicated batch brought, or the log's last at its open.
    leader_epoch: u32,
    start: u64,
    /// The timestamp of the last record, for non-decreasing timestamps.
    clock_ms: i64,
    /// A roll was asked for and no append has happened since.
    roll_requested: bool,
    producers: Vec<Producer>,
}

impl Model {
    fn end(&self) -> u64 {
        self.records.len() as u64
    }

    fn live(&self) -> &[Record] {
        &self.records[self.start as usize..]
    }

    fn batch_at(&self, base: u64) -> Option<(u64, u64)> {
        self.batches
            .binary_search_by_key(&base, |&(base, _)| base)
            .ok()
            .map(|index| self.batches[index])
    }

    fn live_batches(&self) -> usize {
        self.batches
            .iter()
            .filter(|&&(base, _)| base >= self.start)
            .count()
    }

    /// The first live offset whose record's timestamp is at or after
    /// `target`: what `offset_for_timestamp` must answer.
    fn offset_for_timestamp(&self, target: i64) -> Option<u64> {
        self.live()
            .iter()
            .position(|record| record.timestamp >= target)
            .map(|index| self.start + index as u64)
    }
}

fn key_for(offset: u64) -> Vec<u8> {
    format!("key-{offset}").into_bytes()
}

/// A value that names its offset and differs byte by byte between offsets.
fn value_for(offset: u64, bytes: usize) -> Vec<u8> {
    let mut value: Vec<u8> = (0..bytes)
        .map(|at| (offset as usize).wrapping_mul(7).wrapping_add(at * 13) as u8)
        .collect();
    let name = offset.to_le_bytes();
    let named = bytes.min(name.len());
    value[..named].copy_from_slice(&name[..named]);
    value
}

async fn check_case(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = case.config();
    let mut log = Some(open(dir.path(), &config).await?);
    let mut model = Model {
        clock_ms: TIMESTAMP_START_MS,
        producers: FIRST_SEQUENCES
            .iter()
            .map(|&next_sequence| Producer {
                epoch: 0,
                next_sequence,
                sent: Vec::new(),
            })
            .collect(),
        ..Model::default()
    };
    for (step, op) in case.ops.iter().enumerate() {
        let current = log.as_ref().expect("the log is open between ops");
        let outcome = match op {
            Op::Append {
                timestamps,
                value_bytes,
                keyed,
                producer,
            } => {
                append(
                    current,
                    &mut model,
                    case.timestamps,
                    timestamps,
                    *value_bytes,
                    *keyed,
                    *producer,
                )
                .await
            }
            Op::Resend { producer, back } => resend(current, &model, *producer, *back).await,
            Op::BumpEpoch { producer } => {
                let producer = &mut model.producers[*producer];
                producer.epoch += 1;
                producer.next_sequence = 0;
                Ok(())
            }
            Op::Read { at, max_bytes } => read(current, &model, *at, *max_bytes).await,
            Op::Roll => {
                current.roll();
                model.roll_requested = true;
                Ok(())
            }
            Op::Reopen => {
                let closing = log.take().expect("the log is open");
                match reopen(closing, dir.path(), &config, &mut model).await {
                    Ok(reopened) => {
                        log = Some(reopened);
                        Ok(())
                    }
                    Err(error) => Err(error),
                }
            }
            Op::ReadByTimestamp(target) => read_by_timestamp(current, &model, *target).await,
            Op::ApplyRetention => apply_retention(current, &mut model).await,
            Op::Replicate {
                timestamps,
                value_bytes,
                next_epoch,
            } => {
                replicate(
                    current,
                    &mut model,
                    case.timestamps,
                    timestamps,
                    *value_bytes,
                    *next_epoch,
                )
                .await
            }
            Op::Truncate(at) => truncate(current, &mut model, *at).await,
        };
        let outcome = match (outcome, log.as_ref()) {
            (Ok(()), Some(log)) => {
                check_producers(log, &model).and_then(|()| check_epochs(log, &model))
            }
            (outcome, _) => outcome,
        };
        if let Err(error) = outcome {
            return Err(format!("op {step} ({op:?}): {error}"));
        }
    }
    let log = log.expect("the log is open after the last op");
    walk(&log, &model)
        .await
        .map_err(|error| format!("after the last op: {error}"))?;
    log.close()
        .await
        .map_err(|failure| format!("closing at the end: {failure}"))
}

async fn open(dir: &Path, config: &LogConfig) -> Result<Log, String> {
    Log::open(dir, config.clone())
        .await
        .map_err(|error| format!("open failed: {error}"))
}

async fn append(
    log: &Log,
    model: &mut Model,
    kind: Timestamps,
    timestamps: &[i64],
    value_bytes: usize,
    keyed: bool,
    producer: Option<usize>,
) -> Result<(), String> {
    let base = model.end();
    let mut builder = BatchBuilder::default();
    if let Some(producer) = producer {
        let state = &model.producers[producer];
        builder = builder.producer(
            PRODUCER_ID_BASE + producer as i64,
            state.epoch,
            state.next_sequence,
        );
    }
    let mut records = Vec::with_capacity(timestamps.len());
    for (index, &timestamp) in timestamps.iter().enumerate() {
        let offset = base + index as u64;
        let timestamp = match kind {
            Timestamps::NonDecreasing => {
                model.clock_ms += timestamp;
                model.clock_ms
            }
            Timestamps::Arbitrary => timestamp,
        };
        let record = Record {
            key: keyed.then(|| key_for(offset)),
            value: value_for(offset, value_bytes),
            timestamp,
        };
        builder.push(timestamp, record.key.as_deref(), &record.value, &[]);
        records.push(record);
    }
    let batch = builder.finish();
    let appended = log
        .append(batch.clone())
        .await
        .map_err(|error| format!("append failed: {error}"))?;
    let last = base + records.len() as u64 - 1;
    check!(!appended.duplicate, "a new batch was taken for a duplicate");
    check!(
        appended.base_offset == Offset(base) && appended.last_offset == Offset(last),
        "append landed at [{}, {}], the model says [{base}, {last}]",
        appended.base_offset,
        appended.last_offset
    );
    check!(
        log.end_offset() == Offset(last + 1),
        "end offset {} after an append ending at {last}",
        log.end_offset()
    );
    check!(
        log.visible_end() == Offset(last + 1),
        "visible end {} after an append ending at {last} returned",
        log.visible_end()
    );
    if std::mem::take(&mut model.roll_requested) && base > 0 {
        check!(
            log.segment_bases().last() == Some(&Offset(base)),
            "a roll was asked for but the batch at {base} did not start a segment: bases {:?}",
            log.segment_bases()
        );
    }
    if let Some(producer) = producer {
        let state = &mut model.producers[producer];
        let last_sequence = sequence_after(state.next_sequence, (last - base) as u32);
        state.sent.push(Sent {
            batch,
            epoch: state.epoch,
            first_sequence: state.next_sequence,
            last_sequence,
            base_offset: base,
            last_offset: last,
        });
        state.next_sequence = sequence_after(last_sequence, 1);
    }
    model.records.extend(records);
    model.batches.push((base, last));
    model.batch_epochs.push(model.leader_epoch);
    Ok(())
}

/// A replicated append: a batch assigned at the model's end, in its leader
/// epoch or the next, stored as it is.
async fn replicate(
    log: &Log,
    model: &mut Model,
    kind: Timestamps,
    timestamps: &[i64],
    value_bytes: usize,
    next_epoch: bool,
) -> Result<(), String> {
    let base = model.end();
    let epoch = model.leader_epoch + u32::from(next_epoch);
    let mut builder = BatchBuilder::default();
    let mut records = Vec::with_capacity(timestamps.len());
    for (index, &timestamp) in timestamps.iter().enumerate() {
        let offset = base + index as u64;
        let timestamp = match kind {
            Timestamps::NonDecreasing => {
                model.clock_ms += timestamp;
                model.clock_ms
            }
            Timestamps::Arbitrary => timestamp,
        };
        let record = Record {
            key: Some(key_for(offset)),
            value: value_for(offset, value_bytes),
            timestamp,
        };
        builder.push(timestamp, record.key.as_deref(), &record.value, &[]);
        records.push(record);
    }
    let batch = builder.finish().assign(Offset(base), epoch);
    let appended = log
        .append_replicated(batch)
        .await
        .map_err(|error| format!("replicated append failed: {error}"))?;
    let last = base + records.len() as u64 - 1;
    check!(
        appended.base_offset == Offset(base) && appended.last_offset == Offset(last),
        "replicated append landed at [{}, {}], assigned [{base}, {last}]",
        appended.base_offset,
        appended.last_offset
    );
    if std::mem::take(&mut model.roll_requested) && base > 0 {
        check!(
            log.segment_bases().last() == Some(&Offset(base)),
            "a roll was asked for but the batch at {base} did not start a segment: bases {:?}",
            log.segment_bases()
        );
    }
    model.leader_epoch = epoch;
    model.records.extend(records);
    model.batches.push((base, last));
    model.batch_epochs.push(epoch);
    Ok(())
}

/// Truncates and checks the new end: the start of the batch containing
/// the offset, or the offset for one below the start (the log emptied and
/// starting there); nothing for one at or past the end. The model forgets
/// the batches cut and what the producers sent in them.
async fn truncate(log: &Log, model: &mut Model, at: TruncateAt) -> Result<(), String> {
    let (start, end) = (model.start, model.end());
    let offset = match at {
        TruncateAt::Inside(selector) => start + selector % (end - start + 1),
        TruncateAt::BelowStart(below) => start.saturating_sub(below),
    };
    let new_end = log
        .truncate_to(Offset(offset))
        .await
        .map_err(|error| format!("truncate to {offset} failed: {error}"))?;
    let (expected_end, emptied) = if offset >= end {
        (end, false)
    } else if offset < start {
        (offset, true)
    } else {
        let &(base, _) = model
            .batches
            .iter()
            .find(|&&(base, last)| base <= offset && offset <= last)
            .expect("a live offset is in a batch");
        if base < start {
            (start, true)
        } else {
            (base, false)
        }
    };
    check!(
        new_end == Offset(expected_end) && log.end_offset() == new_end,
        "truncate to {offset} of [{start}, {end}] ended the log at {new_end} (end offset {}), \
         the model says {expected_end}",
        log.end_offset()
    );
    model.records.truncate(expected_end as usize);
    let kept = model
        .batches
        .iter()
        .take_while(|&&(_, last)| last < expected_end)
        .count();
    model.batches.truncate(kept);
    model.batch_epochs.truncate(kept);
    if emptied {
        model.start = expected_end;
    }
    for producer in &mut model.producers {
        if emptied {
            producer.sent.clear();
        }
        producer.sent.retain(|sent| sent.base_offset < expected_end);
        if let Some(last) = producer.sent.last() {
            // The log remembers the producer as of its last batch left,
            // and the producer goes on from there.
            producer.epoch = last.epoch;
            producer.next_sequence = sequence_after(last.last_sequence, 1);
        }
    }
    check!(
        log.start_offset() == Offset(model.start),
        "truncate to {offset} left the start at {}, the model says {}",
        log.start_offset(),
        model.start
    );
    Ok(())
}

/// The leader epochs of the log's live batches, each from its first
/// offset (the first from the start): what the log must report, while it
/// holds any.
fn check_epochs(log: &Log, model: &Model) -> Result<(), String> {
    if model.end() == model.start {
        return Ok(());
    }
    let mut expected: Vec<(u32, Offset)> = Vec::new();
    for (&(base, last), &epoch) in model.batches.iter().zip(&model.batch_epochs) {
        if last < model.start {
            continue;
        }
        if expected
            .last()
            .is_none_or(|&(previous, _)| previous != epoch)
        {
            expected.push((epoch, Offset(base.max(model.start))));
        }
    }
    let reported = log.leader_epochs();
    check!(
        reported == expected,
        "the log reports leader epochs {reported:?}, its batches say {expected:?}"
    );
    Ok(())
}

/// Sends again the batch `back` before the producer's newest, and checks the
/// answer: a duplicate at its offsets if it is among the last
/// [`PRODUCER_BATCHES_MAX`] of the current epoch, fenced if of an older
/// epoch, out of order otherwise; stored in no case.
async fn resend(log: &Log, model: &Model, producer: usize, back: usize) -> Result<(), String> {
    let sent = &model.producers[producer].sent;
    let Some(index) = sent.len().checked_sub(back + 1) else {
        return Ok(());
    };
    let again = &sent[index];
    let newest = sent.last().expect("the producer sent something");
    let end = log.end_offset();
    let result = log.append(again.batch.clone()).await;
    let producer_id = PRODUCER_ID_BASE + producer as i64;
    if again.epoch < newest.epoch {
        check!(
            result
                == Err(AppendError::ProducerFenced {
                    producer_id,
                    epoch: again.epoch,
                    current_epoch: newest.epoch
                }),
            "a retry of epoch {} after epoch {}: {result:?}",
            again.epoch,
            newest.epoch
        );
    } else if back < PRODUCER_BATCHES_MAX {
        let appended = result.map_err(|error| format!("a retry {back} back failed: {error}"))?;
        check!(
            appended.duplicate
                && appended.base_offset == Offset(again.base_offset)
                && appended.last_offset == Offset(again.last_offset),
            "a retry {back} back of [{}, {}] got {appended:?}",
            again.base_offset,
            again.last_offset
        );
    } else {
        check!(
            result
                == Err(AppendError::OutOfOrderSequence {
                    producer_id,
                    expected: sequence_after(newest.last_sequence, 1),
                    got: again.first_sequence
                }),
            "a retry {back} back, no longer remembered: {result:?}"
        );
    }
    check!(
        log.end_offset() == end,
        "a retry moved the end from {end} to {}",
        log.end_offset()
    );
    Ok(())
}

/// What the log remembers of each producer is what the model says.
fn check_producers(log: &Log, model: &Model) -> Result<(), String> {
    for (producer, state) in model.producers.iter().enumerate() {
        let remembered = log.producer(PRODUCER_ID_BASE + producer as i64);
        let expected = state.expected_state();
        check!(
            remembered == expected,
            "producer {producer}: the log remembers {remembered:?}, the model says {expected:?}"
        );
    }
    Ok(())
}

async fn read(log: &Log, model: &Model, at: ReadAt, max_bytes: usize) -> Result<(), String> {
    let (start, end) = (model.start, model.end());
    let offset = match at {
        ReadAt::Inside(selector) if end > start => start + selector % (end - start),
        ReadAt::Inside(_) | ReadAt::End => end,
        ReadAt::PastEnd(beyond) => end + beyond,
        ReadAt::BelowStart(below) => match start.checked_sub(below) {
            Some(offset) => offset,
            // Nothing is below offset 0: read at the start instead.
            None => start,
        },
    };
    read_and_check(log, model, offset, max_bytes)
        .await
        .map(|_| ())
}

/// Reads at `offset` and checks the answer against the model; returns the
/// offset after the last batch read.
async fn read_and_check(
    log: &Log,
    model: &Model,
    offset: u64,
    max_bytes: usize,
) -> Result<u64, String> {
    let (start, end) = (model.start, model.end());
    let result = log.read(Offset(offset), max_bytes).await;
    if offset < start || offset > end {
        return match result {
            Err(ReadError::OffsetOutOfRange {
                offset: refused,
                log_start,
                log_end,
            }) => {
                check!(
                    refused == Offset(offset)
                        && log_start == Offset(start)
                        && log_end == Offset(end),
                    "read at {offset} refused as {refused} out of [{log_start}, {log_end}], \
                     the model's range is [{start}, {end}]"
                );
                Ok(offset)
            }
            Err(error) => Err(format!(
                "read at {offset} outside [{start}, {end}] failed with {error}, not out of range"
            )),
            Ok(batches) => Err(format!(
                "read at {offset} outside [{start}, {end}] returned {} batches",
                batches.len()
            )),
        };
    }
    let batches = result.map_err(|error| format!("read at {offset} failed: {error}"))?;
    if offset == end {
        check!(
            batches.is_empty(),
            "read at the end {end} returned {} batches",
            batches.len()
        );
        return Ok(end);
    }
    check_batches(model, offset, max_bytes, &batches)
}

/// Checks what a read at `offset` (inside the log) returned; returns the
/// offset after the last batch.
fn check_batches(
    model: &Model,
    offset: u64,
    max_bytes: usize,
    batches: &[Batch],
) -> Result<u64, String> {
    let first = batches
        .first()
        .ok_or_else(|| format!("read at {offset} below the end {} was empty", model.end()))?;
    check!(
        first.base_offset().0 <= offset && offset <= first.last_offset().0,
        "read at {offset} began with batch [{}, {}]",
        first.base_offset(),
        first.last_offset()
    );
    let total: usize = batches.iter().map(Batch::len).sum();
    check!(
        batches.len() == 1 || total <= max_bytes,
        "read at {offset} of at most {max_bytes} bytes returned {} batches of {total} bytes",
        batches.len()
    );
    let mut next = first.base_offset().0;
    for batch in batches {
        let (base, last) = (batch.base_offset().0, batch.last_offset().0);
        check!(
            base == next,
            "read at {offset}: batch [{base}, {last}] where {next} was next"
        );
        check!(
            model.batch_at(base) == Some((base, last)),
            "read at {offset}: batch [{base}, {last}] was not appended as such; the model has {:?}",
            model.batch_at(base)
        );
        check_records(model, batch)?;
        next = last + 1;
    }
    check!(
        next <= model.end(),
        "read at {offset} went past the end {}: to {next}",
        model.end()
    );
    Ok(next)
}

/// Every record of `batch` against the model: key, value and timestamp.
fn check_records(model: &Model, batch: &Batch) -> Result<(), String> {
    let base = batch.base_offset().0;
    let header = batch.header();
    let records = batch
        .records()
        .map_err(|error| format!("batch at {base}: records unreadable: {error}"))?;
    check!(
        records.len() as u64 == batch.offset_count(),
        "batch at {base} holds {} records for {} offsets",
        records.len(),
        batch.offset_count()
    );
    let mut max_timestamp = i64::MIN;
    for (index, record) in records.iter().enumerate() {
        let offset = base + index as u64;
        let expected = &model.records[offset as usize];
        let timestamp = header
            .first_timestamp
            .wrapping_add(record.timestamp_delta());
        max_timestamp = max_timestamp.max(timestamp);
        check!(
            record.key() == expected.key.as_deref(),
            "offset {offset}: key {:?}, the model has {:?}",
            record.key(),
            expected.key
        );
        check!(
            record.value() == expected.value.as_slice(),
            "offset {offset}: a value of {} bytes that is not the model's {} bytes",
            record.value().len(),
            expected.value.len()
        );
        check!(
            timestamp == expected.timestamp,
            "offset {offset}: timestamp {timestamp}, the model has {}",
            expected.timestamp
        );
    }
    check!(
        batch.max_timestamp() == max_timestamp,
        "batch at {base}: max timestamp {} but its records' is {max_timestamp}",
        batch.max_timestamp()
    );
    Ok(())
}

/// Reads the whole log from its start, once with the smallest budget (a
/// batch per read) and once with a large one, and looks up every timestamp.
async fn walk(log: &Log, model: &Model) -> Result<(), String> {
    check!(
        log.start_offset() == Offset(model.start) && log.end_offset() == Offset(model.end()),
        "the log spans [{}, {}), the model [{}, {})",
        log.start_offset(),
        log.end_offset(),
        model.start,
        model.end()
    );
    for max_bytes in WALK_READ_BYTES {
        let mut offset = model.start;
        while offset < model.end() {
            offset = read_and_check(log, model, offset, max_bytes).await?;
        }
        read_and_check(log, model, model.end(), max_bytes).await?;
    }
    sweep_timestamps(log, model).await
}

/// Looks up every distinct live timestamp and one past the largest: every
/// target falls in a range of targets that one of them stands for. Above
/// [`SWEEP_TIMESTAMPS_MAX`] of them, an evenly spread selection.
async fn sweep_timestamps(log: &Log, model: &Model) -> Result<(), String> {
    let mut targets: Vec<i64> = model.live().iter().map(|record| record.timestamp).collect();
    targets.sort_unstable();
    targets.dedup();
    if let Some(&largest) = targets.last() {
        targets.push(largest + 1);
    }
    let step = targets.len().div_ceil(SWEEP_TIMESTAMPS_MAX).max(1);
    for target in targets.into_iter().step_by(step) {
        check_timestamp(log, model, target).await?;
    }
    Ok(())
}

async fn reopen(
    log: Log,
    dir: &Path,
    config: &LogConfig,
    model: &mut Model,
) -> Result<Log, String> {
    log.close()
        .await
        .map_err(|failure| format!("close failed: {failure}"))?;
    let log = open(dir, config).await?;
    // A roll asked for is kept in memory only.
    model.roll_requested = false;
    // A log opens stamping the epoch of its last batch.
    model.leader_epoch = match model.batch_epochs.last() {
        Some(&epoch) if model.end() > model.start => epoch,
        _ => 0,
    };
    walk(&log, model).await?;
    let verified = log
        .verify()
        .await
        .map_err(|error| format!("verify failed: {error}"))?;
    check!(
        verified == model.live_batches() as u64,
        "verify counted {verified} batches, the model has {}",
        model.live_batches()
    );
    Ok(log)
}

async fn read_by_timestamp(
    log: &Log,
    model: &Model,
    target: TimestampTarget,
) -> Result<(), String> {
    let live = model.live();
    let smallest = live.iter().map(|record| record.timestamp).min();
    let largest = live.iter().map(|record| record.timestamp).max();
    let target = match (target, smallest, largest) {
        (TimestampTarget::Min, _, _) => i64::MIN,
        (TimestampTarget::Max, _, _) => i64::MAX,
        (TimestampTarget::OfRecord { selector, nudge }, Some(_), _) => {
            live[(selector % live.len() as u64) as usize].timestamp + nudge
        }
        (TimestampTarget::Spread(selector), Some(smallest), Some(largest)) => {
            let span = (largest - smallest + 5) as u64;
            smallest - 2 + (selector % span) as i64
        }
        (TimestampTarget::OfRecord { nudge, .. }, None, _) => TIMESTAMP_START_MS + nudge,
        (TimestampTarget::Spread(selector), _, _) => (selector % 400) as i64 - 50,
    };
    check_timestamp(log, model, target).await
}

/// Looks `target` up in the log and checks the answer against the model.
async fn check_timestamp(log: &Log, model: &Model, target: i64) -> Result<(), String> {
    let found = log
        .offset_for_timestamp(target)
        .await
        .map_err(|error| format!("offset_for_timestamp({target}) failed: {error}"))?;
    let expected = model.offset_for_timestamp(target);
    if let Some(Offset(offset)) = found {
        check!(
            (model.start..model.end()).contains(&offset),
            "offset_for_timestamp({target}) = {offset}, outside the log [{}, {})",
            model.start,
            model.end()
        );
        let record = &model.records[offset as usize];
        check!(
            record.timestamp >= target,
            "offset_for_timestamp({target}) = {offset}, whose record has timestamp {}",
            record.timestamp
        );
    }
    check!(
        found.map(|offset| offset.0) == expected,
        "offset_for_timestamp({target}) = {found:?}, but the first record at or after it is \
         {expected:?} (timestamp {:?})",
        expected.map(|offset| model.records[offset as usize].timestamp)
    );
    Ok(())
}

async fn apply_retention(log: &Log, model: &mut Model) -> Result<(), String> {
    let outcome = log
        .apply_retention()
        .await
        .map_err(|error| format!("retention failed: {error}"))?;
    let start = log.start_offset();
    check!(
        outcome.log_start == start,
        "retention says the log starts at {}, the log at {start}",
        outcome.log_start
    );
    check!(
        log.segment_bases().first() == Some(&start) || model.end() == 0,
        "the log starts at {start} but its segments at {:?}",
        log.segment_bases().first()
    );
    check!(
        start.0 >= model.start && start.0 <= model.end(),
        "retention moved the start from {} to {start}, the end is {}",
        model.start,
        model.end()
    );
    check!(
        (outcome.segments_deleted > 0) == (start.0 > model.start),
        "retention deleted {} segments and moved the start from {} to {start}",
        outcome.segments_deleted,
        model.start
    );
    check!(
        start.0 == model.end() || model.batch_at(start.0).is_some(),
        "the log now starts at {start}, inside a batch"
    );
    check!(
        start.0 < model.end() || start.0 == model.start,
        "retention deleted everything up to the end {start}: the active segment must stay"
    );
    model.start = start.0;
    Ok(())
}
