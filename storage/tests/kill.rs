//! The kill test: a child process appends to a log under the `always` flush
//! policy and reports every acknowledged batch on stdout; the parent kills it
//! with SIGKILL at a random moment, opens the log itself and checks that
//! nothing acknowledged was lost, that the log has no gap and that every
//! batch in it is byte for byte what was appended. Fifty rounds on the same
//! directory: each child recovers what the previous one left and goes on.
//!
//! The producer variant does the same with idempotent producers, each
//! continuing its sequence from what the recovered log remembers of it; the
//! parent also checks that every producer's sequences in the log follow one
//! another (nothing stored twice, nothing skipped), that the recovered state
//! is that of the log, that resending a producer's last batches gets their
//! original offsets and stores nothing, and that its next sequence appends.
//!
//! The kill moments are random, from a seed each test prints first;
//! `SLUICE_TEST_SEED=<seed>` makes the same choices again.
//!
//! The child is this test binary run again as `--child
//! appends_until_killed <dir> <round>` (or `produces_until_killed`): the
//! binary has its own `main` (`harness = false`), which runs a child or the
//! tests, so a child is never counted as a test.

#[macro_use]
mod common;

use common::{
    harness::{report, ReportingChild},
    run, seeded_rng,
};

use std::{
    collections::HashMap,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::ExitCode,
    rc::Rc,
    time::{Duration, Instant},
};

use rand::Rng;
use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{sequence_after, AppendError, Log, LogConfig, PRODUCER_BATCHES_MAX},
    Offset,
};

fn main() -> ExitCode {
    common::harness::main(
        &tests![
            acknowledged_batches_survive_sigkill,
            idempotent_producers_survive_sigkill,
        ],
        &children![appends_until_killed, produces_until_killed],
    )
}

/// Kills per run: each recovers the previous child's log, so later rounds
/// recover a log of many segments.
const ROUNDS: u64 = 50;
/// Kills in the producer variant, whose parent checks more per round.
const PRODUCER_ROUNDS: u64 = 30;
/// Idempotent producers in the producer variant's child, one task each.
const PRODUCERS: u64 = 4;
/// Producer `p` has id `PRODUCER_ID_BASE + p`.
const PRODUCER_ID_BASE: i64 = 7_000;
/// Producer 0 bumps its epoch every this many rounds.
const EPOCH_ROUNDS: u64 = 8;
/// The last producer starts this close to the largest sequence, so that its
/// sequences wrap to 0 within the first rounds.
const WRAPPING_START_BELOW_MAX: i32 = 300;
/// The parent's own appends (the next sequence of each producer) are tagged
/// as appender `PARENT_APPENDER + p`, apart from the child's.
const PARENT_APPENDER: u64 = 128;
/// Concurrent appenders in the child: enough that flush rounds carry batches
/// of several appenders (group commit) and the kill lands between them.
const APPENDERS: u64 = 4;
/// The kill comes this long after the first acknowledgement (inclusive).
const KILL_DELAY_MS_MIN: u64 = 20;
const KILL_DELAY_MS_MAX: u64 = 300;
/// Small segments, so that most rounds roll at least once and some kills
/// land in the middle of sealing one segment and creating the next.
const SEGMENT_BYTES_MAX: u64 = 256 * 1024;
/// The size of a large batch, against 16..216-byte records in small ones.
const LARGE_BATCH_BYTES: usize = 20 * 1024;
/// A child that sees no kill stops appending after this long, so a parent
/// that died does not leave it filling the disk.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(30);
/// How long the parent waits for a child's first acknowledgement.
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(30);
/// The budget of one read while walking the log.
const READ_BYTES_MAX: usize = 1024 * 1024;
/// Record timestamps start here (2023-11-14), in milliseconds.
const TIMESTAMP_BASE_MS: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: SEGMENT_BYTES_MAX,
        ..LogConfig::default()
    }
}

/// Names one appended batch: which round, which appender, which of its
/// appends. Everything in the batch is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tag(u64);

impl Tag {
    fn new(round: u64, appender: u64, sequence: u64) -> Tag {
        assert!(round < 1 << 16 && appender < 1 << 8 && sequence < 1 << 32);
        Tag(round << 40 | appender << 32 | sequence)
    }

    fn round(self) -> u64 {
        self.0 >> 40
    }
}

/// The batch named by `tag`: a quarter of them ~20 KiB in 1..4 records, the
/// rest 1..8 records of 16..216 bytes. The key of every record is the tag;
/// the values are `<tag>:<record>:` filled out with a byte derived from both.
fn tagged_batch(tag: Tag) -> Batch {
    tagged_producer_batch(tag, None)
}

/// An idempotent producer's fields: id, epoch and base sequence.
type ProducerFields = (i64, i16, i32);

/// [`tagged_batch`], from an idempotent producer if `producer` says which.
fn tagged_producer_batch(tag: Tag, producer: Option<ProducerFields>) -> Batch {
    // A multiplicative hash, so that neighbouring tags differ in shape.
    let mix = tag.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    let (records, value_bytes) = if mix % 4 == 0 {
        let records = 1 + (mix >> 4) as usize % 4;
        (records, LARGE_BATCH_BYTES / records)
    } else {
        (1 + (mix >> 4) as usize % 8, 16 + (mix >> 8) as usize % 200)
    };
    let mut builder = BatchBuilder::with_capacity(records * (value_bytes + 64) + 256);
    if let Some((producer_id, epoch, sequence)) = producer {
        builder = builder.producer(producer_id, epoch, sequence);
    }
    for record in 0..records {
        // `vec![byte; n]` is a memset even in debug builds; `resize` is not.
        let mut value = vec![(mix as usize + record * 7) as u8; value_bytes];
        let label = format!("{}:{record}:", tag.0);
        let label_bytes = label.len().min(value_bytes);
        value[..label_bytes].copy_from_slice(&label.as_bytes()[..label_bytes]);
        let timestamp = TIMESTAMP_BASE_MS + (tag.0 & 0xffff_ffff) as i64;
        builder.push(timestamp, Some(&tag.0.to_le_bytes()), &value, &[]);
    }
    builder.finish()
}

/// The tag in the key of a stored batch's first record, which the builder
/// writes first in the payload. Read from the bytes rather than through
/// `records()`, whose archive check costs more than the rest of the walk in a
/// debug build; a batch that is not what was appended fails the byte
/// comparison that follows anyway.
fn tag_of(batch: &Batch) -> Tag {
    let key = batch.payload().get(..8).unwrap_or_else(|| {
        panic!(
            "batch at {} has a {}-byte payload",
            batch.base_offset(),
            batch.payload().len()
        )
    });
    Tag(u64::from_le_bytes(key.try_into().expect("eight bytes")))
}

/// One line the child printed: a batch whose append returned Ok.
#[derive(Debug, Clone, Copy)]
struct Ack {
    base_offset: u64,
    last_offset: u64,
    tag: Tag,
}

impl Ack {
    /// `ack <base> <last> <tag>`, which the producer child follows with the
    /// producer's fields.
    fn parse(line: &str) -> Option<Ack> {
        let mut fields = line.strip_prefix("ack ")?.split(' ');
        let mut next = || fields.next()?.parse::<u64>().ok();
        Some(Ack {
            base_offset: next()?,
            last_offset: next()?,
            tag: Tag(next()?),
        })
    }
}

/// The arguments of a child: the log directory and the round number (so
/// that tags are unique across children).
fn child_args(args: &[String]) -> (PathBuf, u64) {
    match args {
        [dir, round] => (
            PathBuf::from(dir),
            round.parse().expect("the round is a number"),
        ),
        _ => panic!("a child takes <dir> <round>, not {args:?}"),
    }
}

/// The child: appends from several tasks until killed (or until its
/// lifetime runs out), printing `open <end>` once and `ack <base> <last>
/// <tag>` per acknowledged batch.
fn appends_until_killed(args: &[String]) {
    let (dir, round) = child_args(args);
    run(move || append_until_killed(dir, round));
}

async fn append_until_killed(dir: PathBuf, round: u64) {
    let log = Rc::new(
        Log::open(&dir, config())
            .await
            .expect("child opens the log"),
    );
    report(format_args!("open {}", log.end_offset()));
    let deadline = Instant::now() + CHILD_LIFETIME_MAX;
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|appender| {
            let log = log.clone();
            glommio::spawn_local(async move {
                let mut sequence = 0;
                while Instant::now() < deadline {
                    let tag = Tag::new(round, appender, sequence);
                    let appended = log
                        .append(tagged_batch(tag))
                        .await
                        .unwrap_or_else(|error| panic!("append of {tag:?} failed: {error}"));
                    report(format_args!(
                        "ack {} {} {}",
                        appended.base_offset, appended.last_offset, tag.0
                    ));
                    sequence += 1;
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.await;
    }
}

/// What one round saw from its child.
struct Round {
    opened_at: u64,
    acks: Vec<Ack>,
    /// The acknowledgements of the producer child, with producer fields.
    producer_acks: Vec<ProducerAck>,
    child_ms: u128,
}

/// Starts the child `child` on `dir`, kills it `kill_delay_ms` after its
/// first acknowledgement, and returns everything it printed whole: where it
/// opened the log and its acknowledgements, each checked to be of this round
/// and above where it opened.
fn run_child(child: &str, dir: &Path, round: u64, kill_delay_ms: u64, stderr_path: &Path) -> Round {
    let started = Instant::now();
    let args = [dir.display().to_string(), round.to_string()];
    let mut child = ReportingChild::spawn(child, &args, stderr_path);
    let child_failed = |child: &mut ReportingChild, why: &str| -> ! {
        let status = child.kill();
        let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
        panic!("round {round}: {why}; child status {status:?}, stderr:\n{stderr}");
    };

    let mut printed = Vec::new();
    loop {
        match child.next_line(FIRST_ACK_TIMEOUT) {
            Some(line) => {
                let is_ack = line.starts_with("ack ");
                printed.push(line);
                if is_ack {
                    break;
                }
            }
            None => child_failed(&mut child, "no acknowledgement from the child"),
        }
    }
    std::thread::sleep(Duration::from_millis(kill_delay_ms));
    if child.has_exited() {
        child_failed(&mut child, "the child exited before the kill");
    }
    let status = child.kill();
    if status.signal() != Some(libc::SIGKILL) {
        // It exited between the check above and the kill.
        child_failed(&mut child, "the child exited before the kill");
    }
    let child_ms = started.elapsed().as_millis();
    printed.extend(child.rest());

    let opened_at = printed
        .iter()
        .find_map(|line| line.strip_prefix("open ")?.parse().ok())
        .unwrap_or_else(|| panic!("round {round}: the child never said where the log ended"));
    let acks: Vec<Ack> = printed.iter().filter_map(|line| Ack::parse(line)).collect();
    let malformed = printed
        .iter()
        .filter(|line| line.starts_with("ack ") && Ack::parse(line).is_none())
        .count();
    assert_eq!(malformed, 0, "round {round}: unreadable ack lines");
    for ack in &acks {
        assert_eq!(
            ack.tag.round(),
            round,
            "round {round}: ack {ack:?} of another round"
        );
        assert!(
            ack.base_offset >= opened_at,
            "round {round}: ack {ack:?} below the end {opened_at} the child opened at"
        );
    }
    let producer_acks = printed
        .iter()
        .filter_map(|line| ProducerAck::parse(line))
        .collect();
    Round {
        opened_at,
        acks,
        producer_acks,
        child_ms,
    }
}

/// What the log must hold: every batch acknowledged so far, and the batches
/// of the tags seen (each built once, as building dominates a debug run).
#[derive(Default)]
struct Expected {
    acks: Vec<Ack>,
    built: HashMap<Tag, Batch>,
}

/// What the parent found in the log after a kill.
#[derive(Debug)]
struct Found {
    end_offset: u64,
    batches: usize,
    bytes: usize,
    segments: usize,
    check_ms: u128,
}

/// Opens the log and checks it: offsets contiguous from the start to the
/// end, every batch byte-identical to the batch its tag names, every
/// acknowledged batch present where it was acknowledged, the end past the
/// highest acknowledged offset.
fn check_log(dir: PathBuf, mut expected: Expected) -> (Found, Expected) {
    run(move || async move {
        let started = Instant::now();
        let log = Log::open(&dir, config())
            .await
            .unwrap_or_else(|error| panic!("the log does not open after the kill: {error}"));
        let end = log.end_offset();
        assert_eq!(
            log.durable_end(),
            end,
            "a reopened log is durable to its end"
        );
        assert_eq!(
            log.visible_end(),
            end,
            "a reopened log is visible to its end"
        );
        assert_eq!(log.start_offset(), Offset(0), "nothing was deleted");

        let mut found: HashMap<u64, (u64, Tag)> = HashMap::new();
        let mut next = log.start_offset();
        let mut bytes = 0;
        while next < end {
            let batches = log
                .read(next, READ_BYTES_MAX)
                .await
                .unwrap_or_else(|error| panic!("read at {next} (end {end}) failed: {error}"));
            assert!(
                !batches.is_empty(),
                "read at {next} below the end {end} returned nothing"
            );
            for batch in batches {
                assert_eq!(
                    batch.base_offset(),
                    next,
                    "the log skips or repeats offsets: a batch at {} follows the end {next}",
                    batch.base_offset()
                );
                let tag = tag_of(&batch);
                let appended = expected
                    .built
                    .entry(tag)
                    .or_insert_with(|| tagged_batch(tag))
                    .clone()
                    .assign(batch.base_offset(), 0);
                assert!(
                    batch.as_bytes() == appended.as_bytes(),
                    "batch at {} (tag {tag:?}) differs from the batch appended",
                    batch.base_offset()
                );
                let previous = found.insert(batch.base_offset().0, (batch.last_offset().0, tag));
                assert!(previous.is_none(), "two batches at {next}");
                bytes += batch.len();
                next = batch.last_offset().next();
            }
        }
        assert_eq!(next, end, "the last batch ends past the log end");
        assert!(
            log.read(end, READ_BYTES_MAX)
                .await
                .expect("read at the end")
                .is_empty(),
            "a read at the end returns batches"
        );

        for ack in &expected.acks {
            match found.get(&ack.base_offset) {
                Some(&(last_offset, tag)) if last_offset == ack.last_offset && tag == ack.tag => {}
                other => {
                    panic!("acknowledged {ack:?} is not in the log, which has {other:?} there")
                }
            }
        }
        let highest = expected
            .acks
            .iter()
            .map(|ack| ack.last_offset)
            .max()
            .unwrap_or(0);
        assert!(
            end.0 > highest,
            "the log ends at {end} but offset {highest} was acknowledged"
        );
        let verified = log.verify().await.expect("every segment scans clean");
        assert_eq!(
            verified as usize,
            found.len(),
            "verify counts other batches than the walk"
        );

        let segments = log.segment_count();
        log.close().await.expect("the parent's log closes");
        let found = Found {
            end_offset: end.0,
            batches: found.len(),
            bytes,
            segments,
            check_ms: started.elapsed().as_millis(),
        };
        (found, expected)
    })
}

fn acknowledged_batches_survive_sigkill() {
    let mut rng = seeded_rng("acknowledged_batches_survive_sigkill");
    let started = Instant::now();
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = temp.path().join("partition");
    let stderr_path = temp.path().join("child.stderr");
    let mut expected = Expected::default();
    let mut end_offset = 0;
    let mut unacknowledged_batches = 0;
    for round in 0..ROUNDS {
        let kill_delay_ms = rng.random_range(KILL_DELAY_MS_MIN..=KILL_DELAY_MS_MAX);
        let child = run_child(
            "appends_until_killed",
            &dir,
            round,
            kill_delay_ms,
            &stderr_path,
        );
        assert_eq!(
            child.opened_at, end_offset,
            "round {round}: the child opened the log at {} but the parent left it at {end_offset}",
            child.opened_at
        );
        assert!(
            !child.acks.is_empty(),
            "round {round}: nothing acknowledged"
        );
        let round_acks = child.acks.len();
        expected.acks.extend(child.acks);
        let found;
        (found, expected) = check_log(dir.clone(), expected);
        assert!(
            found.end_offset >= end_offset,
            "round {round}: the log went back from {end_offset} to {}",
            found.end_offset
        );
        unacknowledged_batches = found.batches - expected.acks.len();
        println!(
            "appends round {round:2}: killed {kill_delay_ms:3} ms after the first ack ({} ms child), \
             {round_acks:4} acks; log [0, {}): {} batches ({unacknowledged_batches} written \
             but never acknowledged), {} KiB, {} segments; checked in {} ms",
            child.child_ms,
            found.end_offset,
            found.batches,
            found.bytes / 1024,
            found.segments,
            found.check_ms
        );
        end_offset = found.end_offset;
    }
    println!(
        "{ROUNDS} kills, {} acknowledged batches all found, {unacknowledged_batches} more \
         in the log unacknowledged, end offset {end_offset}, {:.1} s",
        expected.acks.len(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// Idempotent producers

fn producer_id(producer: u64) -> i64 {
    PRODUCER_ID_BASE + producer as i64
}

/// The epoch producer `producer` uses in `round`: producer 0 bumps it every
/// [`EPOCH_ROUNDS`] rounds, the others keep 0.
fn epoch_for(producer: u64, round: u64) -> i16 {
    match producer {
        0 => (round / EPOCH_ROUNDS) as i16,
        _ => 0,
    }
}

/// The sequence a producer the log does not know starts at: 0, but the last
/// producer starts near the largest, to wrap.
fn first_sequence(producer: u64) -> i32 {
    if producer == PRODUCERS - 1 {
        i32::MAX - WRAPPING_START_BELOW_MAX
    } else {
        0
    }
}

/// A line of the producer child: `ack <base> <last> <tag> <producer id>
/// <epoch> <base sequence>`.
#[derive(Debug, Clone, Copy)]
struct ProducerAck {
    ack: Ack,
    fields: ProducerFields,
}

impl ProducerAck {
    fn parse(line: &str) -> Option<ProducerAck> {
        let ack = Ack::parse(line)?;
        let mut fields = line.split(' ').skip(4);
        let producer_id = fields.next()?.parse().ok()?;
        let epoch = fields.next()?.parse().ok()?;
        let sequence = fields.next()?.parse().ok()?;
        Some(ProducerAck {
            ack,
            fields: (producer_id, epoch, sequence),
        })
    }
}

/// The producer child: one task per producer, each appending its next batch
/// once the previous is acknowledged, from where the recovered log says the
/// producer is (or from the start of a new epoch), until killed.
fn produces_until_killed(args: &[String]) {
    let (dir, round) = child_args(args);
    run(move || produce_until_killed(dir, round));
}

async fn produce_until_killed(dir: PathBuf, round: u64) {
    let log = Rc::new(
        Log::open(&dir, config())
            .await
            .expect("child opens the log"),
    );
    report(format_args!("open {}", log.end_offset()));
    let deadline = Instant::now() + CHILD_LIFETIME_MAX;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let log = log.clone();
            glommio::spawn_local(async move {
                let id = producer_id(producer);
                let epoch = epoch_for(producer, round);
                let mut sequence = match log.producer(id) {
                    Some(state) if state.epoch == epoch => state.next_sequence(),
                    Some(state) => {
                        assert!(
                            state.epoch < epoch,
                            "producer {id} is at epoch {}",
                            state.epoch
                        );
                        0
                    }
                    None if epoch > 0 => 0,
                    None => first_sequence(producer),
                };
                let mut appends = 0;
                while Instant::now() < deadline {
                    let tag = Tag::new(round, producer, appends);
                    let batch = tagged_producer_batch(tag, Some((id, epoch, sequence)));
                    let records = batch.offset_count() as u32;
                    let appended = log
                        .append(batch)
                        .await
                        .unwrap_or_else(|error| panic!("append of {tag:?} failed: {error}"));
                    assert!(!appended.duplicate, "{tag:?} taken for a duplicate");
                    report(format_args!(
                        "ack {} {} {} {id} {epoch} {sequence}",
                        appended.base_offset, appended.last_offset, tag.0
                    ));
                    sequence = sequence_after(sequence, records);
                    appends += 1;
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await;
    }
}

/// What the log must hold in the producer variant: every batch acknowledged
/// so far (by the children and by the parent), with its producer's fields.
#[derive(Default)]
struct ProducerExpected {
    acks: Vec<ProducerAck>,
    fields: HashMap<Tag, ProducerFields>,
}

/// One producer's batch as found in the log.
#[derive(Debug, Clone, Copy)]
struct ProducerBatchFound {
    tag: Tag,
    fields: ProducerFields,
    base_offset: u64,
    last_offset: u64,
    last_sequence: i32,
}

/// Opens the log after a kill and checks it as [`check_log`] does, and the
/// producers: sequences that follow one another, the recovered state, the
/// last batches resent as duplicates, an older one refused, and the next
/// sequence appended (and acknowledged, for the next rounds).
fn check_producers(dir: PathBuf, round: u64, mut expected: ProducerExpected) -> ProducerExpected {
    run(move || async move {
        let log = Log::open(&dir, config())
            .await
            .unwrap_or_else(|error| panic!("the log does not open after the kill: {error}"));
        let end = log.end_offset();
        assert_eq!(log.durable_end(), end);

        // Walk the log: every batch as its tag and producer fields build it.
        let mut by_producer: HashMap<i64, Vec<ProducerBatchFound>> = HashMap::new();
        let mut at_offset: HashMap<u64, ProducerBatchFound> = HashMap::new();
        let mut next = log.start_offset();
        while next < end {
            let batches = log
                .read(next, READ_BYTES_MAX)
                .await
                .unwrap_or_else(|error| panic!("read at {next} (end {end}) failed: {error}"));
            assert!(
                !batches.is_empty(),
                "read at {next} below the end {end} returned nothing"
            );
            for batch in batches {
                assert_eq!(
                    batch.base_offset(),
                    next,
                    "the log skips or repeats offsets"
                );
                let header = batch.header();
                let tag = tag_of(&batch);
                let fields = (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                );
                if let Some(acked) = expected.fields.get(&tag) {
                    assert_eq!(*acked, fields, "batch {tag:?} has other producer fields");
                }
                let appended =
                    tagged_producer_batch(tag, Some(fields)).assign(batch.base_offset(), 0);
                assert!(
                    batch.as_bytes() == appended.as_bytes(),
                    "batch at {} (tag {tag:?}) differs from the batch appended",
                    batch.base_offset()
                );
                let found = ProducerBatchFound {
                    tag,
                    fields,
                    base_offset: batch.base_offset().0,
                    last_offset: batch.last_offset().0,
                    last_sequence: sequence_after(header.base_sequence, header.last_offset_delta),
                };
                at_offset.insert(found.base_offset, found);
                by_producer.entry(fields.0).or_default().push(found);
                next = batch.last_offset().next();
            }
        }
        for ProducerAck { ack, .. } in &expected.acks {
            match at_offset.get(&ack.base_offset) {
                Some(found) if found.last_offset == ack.last_offset && found.tag == ack.tag => {}
                other => panic!("acknowledged {ack:?} is not in the log, which has {other:?}"),
            }
        }

        for producer in 0..PRODUCERS {
            let id = producer_id(producer);
            let found = by_producer.get(&id).map(Vec::as_slice).unwrap_or_default();
            // Each batch follows the one before: the next sequence in the
            // same epoch, 0 in a new one.
            let mut previous: Option<&ProducerBatchFound> = None;
            for batch in found {
                let (_, epoch, sequence) = batch.fields;
                let expected_sequence = match previous {
                    None if epoch == 0 => first_sequence(producer),
                    None => 0,
                    Some(previous) if previous.fields.1 == epoch => {
                        sequence_after(previous.last_sequence, 1)
                    }
                    Some(previous) => {
                        assert!(epoch > previous.fields.1, "producer {id}'s epoch went back");
                        0
                    }
                };
                assert_eq!(
                    sequence, expected_sequence,
                    "round {round}: producer {id}'s batch at {} (tag {:?}, epoch {epoch}) does \
                     not follow its previous one {previous:?}",
                    batch.base_offset, batch.tag
                );
                previous = Some(batch);
            }
            let Some(newest) = found.last() else {
                assert_eq!(log.producer(id), None);
                continue;
            };
            // The recovered state is the log's: its epoch and last batches.
            let epoch = newest.fields.1;
            let same_epoch: Vec<&ProducerBatchFound> = found
                .iter()
                .rev()
                .take_while(|batch| batch.fields.1 == epoch)
                .take(PRODUCER_BATCHES_MAX)
                .collect();
            let state = log
                .producer(id)
                .unwrap_or_else(|| panic!("round {round}: producer {id} was forgotten"));
            assert_eq!(state.epoch, epoch, "round {round}: producer {id}'s epoch");
            let remembered: Vec<(i32, i32, u64, u64)> = state
                .batches
                .iter()
                .map(|batch| {
                    (
                        batch.first_sequence,
                        batch.last_sequence,
                        batch.base_offset.0,
                        batch.last_offset.0,
                    )
                })
                .collect();
            let in_log: Vec<(i32, i32, u64, u64)> = same_epoch
                .iter()
                .rev()
                .map(|batch| {
                    (
                        batch.fields.2,
                        batch.last_sequence,
                        batch.base_offset,
                        batch.last_offset,
                    )
                })
                .collect();
            assert_eq!(
                remembered, in_log,
                "round {round}: producer {id}'s last batches"
            );

            // Resent, the last batches are duplicates at their offsets.
            for batch in &same_epoch {
                let resent = tagged_producer_batch(batch.tag, Some(batch.fields));
                let appended = log.append(resent).await.unwrap_or_else(|error| {
                    panic!("round {round}: the retry of {batch:?} failed: {error}")
                });
                assert!(appended.duplicate, "round {round}: {batch:?} stored again");
                assert_eq!(
                    (appended.base_offset.0, appended.last_offset.0),
                    (batch.base_offset, batch.last_offset)
                );
            }
            assert_eq!(log.end_offset(), end, "round {round}: a retry was stored");
            // The one before them is out of order.
            let older = found
                .iter()
                .rev()
                .nth(PRODUCER_BATCHES_MAX)
                .filter(|batch| batch.fields.1 == epoch);
            if let Some(older) = older {
                let resent = tagged_producer_batch(older.tag, Some(older.fields));
                assert!(
                    matches!(
                        log.append(resent).await,
                        Err(AppendError::OutOfOrderSequence { expected, .. })
                            if expected == state.next_sequence()
                    ),
                    "round {round}: a retry of {older:?}, no longer remembered"
                );
            }
        }

        // The next sequence of each producer appends, at the end.
        for producer in 0..PRODUCERS {
            let id = producer_id(producer);
            let tag = Tag::new(round, PARENT_APPENDER + producer, 0);
            let fields = match log.producer(id) {
                Some(state) => (id, state.epoch, state.next_sequence()),
                None => (id, epoch_for(producer, round), first_sequence(producer)),
            };
            let end = log.end_offset();
            let appended = log
                .append(tagged_producer_batch(tag, Some(fields)))
                .await
                .unwrap_or_else(|error| panic!("round {round}: the next batch of {id}: {error}"));
            assert!(!appended.duplicate);
            assert_eq!(appended.base_offset, end);
            expected.fields.insert(tag, fields);
            expected.acks.push(ProducerAck {
                ack: Ack {
                    base_offset: appended.base_offset.0,
                    last_offset: appended.last_offset.0,
                    tag,
                },
                fields,
            });
        }
        log.close().await.expect("the parent's log closes");
        expected
    })
}

fn idempotent_producers_survive_sigkill() {
    let mut rng = seeded_rng("idempotent_producers_survive_sigkill");
    let started = Instant::now();
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = temp.path().join("partition");
    let stderr_path = temp.path().join("child.stderr");
    let mut expected = ProducerExpected::default();
    for round in 0..PRODUCER_ROUNDS {
        let kill_delay_ms = rng.random_range(KILL_DELAY_MS_MIN..=KILL_DELAY_MS_MAX);
        let child = run_child(
            "produces_until_killed",
            &dir,
            round,
            kill_delay_ms,
            &stderr_path,
        );
        assert!(
            !child.acks.is_empty(),
            "round {round}: nothing acknowledged"
        );
        let acks = child.acks.len();
        for ack in child.producer_acks {
            expected.fields.insert(ack.ack.tag, ack.fields);
            expected.acks.push(ack);
        }
        expected = check_producers(dir.clone(), round, expected);
        println!(
            "producers round {round:2}: killed {kill_delay_ms:3} ms after the first ack ({} ms child), \
             {acks:4} acks, {} acknowledged in all",
            child.child_ms,
            expected.acks.len()
        );
    }
    println!(
        "{PRODUCER_ROUNDS} kills of {PRODUCERS} idempotent producers, {} acknowledged batches \
         all found, no retry stored twice, {:.1} s",
        expected.acks.len(),
        started.elapsed().as_secs_f64()
    );
}
