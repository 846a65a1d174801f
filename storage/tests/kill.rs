//! The kill test: a child process appends to a log under the `always` flush
//! policy and reports every acknowledged batch on stdout; the parent kills it
//! with SIGKILL at a random moment, opens the log itself and checks that
//! nothing acknowledged was lost, that the log has no gap and that every
//! batch in it is byte for byte what was appended. Fifty rounds on the same
//! directory: each child recovers what the previous one left and goes on.
//!
//! The child is this test binary run again with `--exact` on
//! [`kill_child_appends_until_killed`] and [`CHILD_DIR_ENV`] set; without that
//! variable the child test does nothing.

mod common;

use common::run;

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead, BufReader, Write},
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    rc::Rc,
    sync::mpsc,
    time::{Duration, Instant},
};

use rand::Rng;
use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{Log, LogConfig},
    Offset,
};

/// Set in the child's environment to the log directory; its presence is
/// what makes the child test act.
const CHILD_DIR_ENV: &str = "SLUICE_KILL_CHILD_DIR";
/// The round number, so tags are unique across children.
const CHILD_ROUND_ENV: &str = "SLUICE_KILL_CHILD_ROUND";
const CHILD_TEST_NAME: &str = "kill_child_appends_until_killed";
/// Starts every line the child reports. The test harness prints on the same
/// stdout (`test <name> ... ` has no newline), so reports are found by it.
const REPORT_MARK: &str = "sluice-kill: ";

/// Kills per run: each recovers the previous child's log, so later rounds
/// recover a log of many segments.
const ROUNDS: u64 = 50;
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
    // A multiplicative hash, so that neighbouring tags differ in shape.
    let mix = tag.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    let (records, value_bytes) = if mix % 4 == 0 {
        let records = 1 + (mix >> 4) as usize % 4;
        (records, LARGE_BATCH_BYTES / records)
    } else {
        (1 + (mix >> 4) as usize % 8, 16 + (mix >> 8) as usize % 200)
    };
    let mut builder = BatchBuilder::with_capacity(records * (value_bytes + 64) + 256);
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

/// Writes one line to stdout and flushes it, so it reaches the parent before
/// the next append can be acknowledged.
fn report(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(format_args!("{REPORT_MARK}{line}\n"))
        .and_then(|()| stdout.flush())
        .expect("stdout is the parent's pipe");
}

/// The child: appends from several tasks until killed (or until its
/// lifetime runs out), printing `open <end>` once and `ack <base> <last>
/// <tag>` per acknowledged batch.
#[test]
fn kill_child_appends_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV)
        .expect("the round is set with the directory")
        .parse()
        .expect("the round is a number");
    run(move || append_until_killed(PathBuf::from(dir), round));
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

/// Kills the child if the parent fails before it does.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one round saw from its child.
struct Round {
    opened_at: u64,
    acks: Vec<Ack>,
    child_ms: u128,
}

/// Starts a child on `dir`, kills it `kill_delay_ms` after its first
/// acknowledgement, and returns everything it printed whole.
fn run_child(dir: &Path, round: u64, kill_delay_ms: u64, stderr_path: &Path) -> Round {
    let started = Instant::now();
    let child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "--exact",
            CHILD_TEST_NAME,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(stderr_path).expect("stderr file"))
        .spawn()
        .expect("child starts");
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                // A line cut short by the kill was never a whole report.
                Ok(0) | Err(_) => return,
                Ok(_) if line.last() != Some(&b'\n') => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                    let Some((_, report)) = text.split_once(REPORT_MARK) else {
                        continue;
                    };
                    if lines_tx.send(report.to_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let child_failed = |child: &mut ChildGuard, why: &str| -> ! {
        let _ = child.0.kill();
        let status = child.0.wait();
        let stderr = std::fs::read_to_string(stderr_path).unwrap_or_default();
        panic!("round {round}: {why}; child status {status:?}, stderr:\n{stderr}");
    };

    let mut printed = Vec::new();
    loop {
        match lines.recv_timeout(FIRST_ACK_TIMEOUT) {
            Ok(line) => {
                let is_ack = line.starts_with("ack ");
                printed.push(line);
                if is_ack {
                    break;
                }
            }
            Err(_) => child_failed(&mut child, "no acknowledgement from the child"),
        }
    }
    std::thread::sleep(Duration::from_millis(kill_delay_ms));
    if child.0.try_wait().ok().flatten().is_some() {
        child_failed(&mut child, "the child exited before the kill");
    }
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("reap the child");
    if status.signal() != Some(libc::SIGKILL) {
        // It exited between the check above and the kill.
        child_failed(&mut child, "the child exited before the kill");
    }
    let child_ms = started.elapsed().as_millis();
    printed.extend(lines.iter());
    reader.join().expect("stdout reader");

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
    Round {
        opened_at,
        acks,
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

#[test]
fn acknowledged_batches_survive_sigkill() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return;
    }
    let started = Instant::now();
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = temp.path().join("partition");
    let stderr_path = temp.path().join("child.stderr");
    let mut rng = rand::rng();
    let mut expected = Expected::default();
    let mut end_offset = 0;
    let mut unacknowledged_batches = 0;
    for round in 0..ROUNDS {
        let kill_delay_ms = rng.random_range(KILL_DELAY_MS_MIN..=KILL_DELAY_MS_MAX);
        let child = run_child(&dir, round, kill_delay_ms, &stderr_path);
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
            "round {round:2}: killed {kill_delay_ms:3} ms after the first ack ({} ms child), \
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
