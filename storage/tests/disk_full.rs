//! The log on a small filesystem that fills up: appends fail with
//! `AppendError::DiskFull`, nothing of a failed append is visible (under
//! `always`), nothing acknowledged is lost (under either policy), and once
//! space is freed appends go on from where the log ended, across a close and
//! a reopen.
//!
//! Each test mounts its own filesystem: an ext4 image on a loop device (the
//! real O_DIRECT path), or a tmpfs (where glommio turns direct I/O off).
//! Mounting needs root and a loop device. Without them a test fails under
//! `SLUICE_REQUIRE_MOUNTS=1` (as in CI, which runs as root), and is
//! otherwise skipped with a line on the process's stderr (which the test
//! harness does not capture) saying why: the only skip.

mod common;

use common::run;

use std::{
    cell::{Cell, RefCell},
    collections::BTreeMap,
    future::Future,
    io::Write,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::Command,
    rc::Rc,
    sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{Duration, Instant},
};

use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{
        AppendError, Appended, FlushPolicy, Log, LogConfig, PREALLOCATE_STEP_BYTES,
        PREPARE_AFTER_BYTES, SPARE_SUFFIX,
    },
    Offset,
};

/// The ext4 image: small enough to fill in a few seconds, large enough for
/// ext4's journal and metadata (about 6 MiB of it) and several segments.
const EXT4_IMAGE_BYTES: u64 = 40 * 1024 * 1024;
const TMPFS_BYTES: u64 = 20 * 1024 * 1024;
/// Written before the log, deleted to free space once the disk is full.
/// Larger than one preallocated segment, and than the backlog the interval
/// test builds (which it measures and checks).
const FILLER_BYTES: usize = 6 * 1024 * 1024;
/// Concurrent appenders while filling: flush rounds carry several batches,
/// so a failed round fails (and undoes) more than one append.
const APPENDERS: u64 = 4;
/// The largest batch, against 100..1100-byte records in small ones. A large
/// batch spans pages, so a write can fail part way.
const LARGE_BATCH_BYTES: usize = 48 * 1024;
/// Appends a filler never gets to fill the disk beyond this: a log that
/// never reports DiskFull fails the test instead of looping.
const FILL_BYTES_MAX: u64 = 4 * EXT4_IMAGE_BYTES;
/// Appends tried while the disk is still full.
const APPENDS_WHILE_FULL: u64 = 20;
/// Appended after freeing space: well under the freed filler.
const APPEND_AFTER_FREEING_BYTES: usize = 2 * 1024 * 1024;
/// Set to `1` (as `.ci/run` does) to make a test that cannot mount its
/// filesystem fail instead of skipping.
const REQUIRE_MOUNTS_ENV: &str = "SLUICE_REQUIRE_MOUNTS";
/// No single log operation in these tests may take longer.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
const READ_BYTES_MAX: usize = 1024 * 1024;
/// Record timestamps start here (2023-11-14), in milliseconds.
const TIMESTAMP_BASE_MS: i64 = 1_700_000_000_000;

/// Awaits `future`, failing the test if it takes longer than
/// [`OPERATION_TIMEOUT`]: a hang is a failure with a name.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    let finished = async { Some(future.await) };
    let timed_out = async {
        glommio::timer::sleep(OPERATION_TIMEOUT).await;
        None
    };
    futures_lite::future::or(finished, timed_out)
        .await
        .unwrap_or_else(|| panic!("{what} took longer than {OPERATION_TIMEOUT:?}"))
}

// ---------------------------------------------------------------------------
// The filesystem

#[derive(Debug, Clone, Copy)]
enum Filesystem {
    Ext4OnLoop,
    Tmpfs,
}

/// A mounted filesystem of a few MiB, unmounted on drop. Everything (the
/// image, the mount point) lives in one temporary directory.
struct SmallFilesystem {
    mount_point: PathBuf,
    _temp: tempfile::TempDir,
    /// Released after the unmount (fields drop after `Drop::drop`).
    _turn: Turn,
}

/// A full disk anywhere in the process makes every log give its spare
/// segment back (by design: the process's logs share the disk). The tests
/// that fill disks run side by side; a test of spares runs alone, or their
/// full disks would take its spare away while it looks at it.
static FULL_DISKS: RwLock<()> = RwLock::new(());

enum Turn {
    SideBySide {
        _held: RwLockReadGuard<'static, ()>,
    },
    Alone {
        _held: RwLockWriteGuard<'static, ()>,
    },
}

impl Turn {
    /// Waits for the turn. A test that failed holding it does not fail the
    /// others: the lock guards no data.
    fn take(alone: bool) -> Turn {
        if alone {
            Turn::Alone {
                _held: FULL_DISKS.write().unwrap_or_else(PoisonError::into_inner),
            }
        } else {
            Turn::SideBySide {
                _held: FULL_DISKS.read().unwrap_or_else(PoisonError::into_inner),
            }
        }
    }
}

fn command(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("{program} did not start: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl SmallFilesystem {
    /// Mounts `kind` (an ext4 image of `image_bytes`, or a tmpfs of
    /// [`TMPFS_BYTES`]).
    fn mount_sized(
        kind: Filesystem,
        image_bytes: u64,
        turn: Turn,
    ) -> Result<SmallFilesystem, String> {
        let temp = tempfile::tempdir().map_err(|error| format!("tempdir: {error}"))?;
        let mount_point = temp.path().join("mnt");
        std::fs::create_dir(&mount_point).map_err(|error| format!("mkdir: {error}"))?;
        let mount_path = mount_point.to_str().expect("a UTF-8 temporary path");
        match kind {
            Filesystem::Ext4OnLoop => {
                let image = temp.path().join("image");
                std::fs::File::create(&image)
                    .and_then(|file| file.set_len(image_bytes))
                    .map_err(|error| format!("image: {error}"))?;
                let image = image.to_str().expect("a UTF-8 temporary path");
                // No blocks reserved for root (the tests run as root and
                // would use them), no lazy initialisation writing behind the
                // test's back.
                command(
                    "mkfs.ext4",
                    &[
                        "-q",
                        "-F",
                        "-m",
                        "0",
                        "-E",
                        "lazy_itable_init=0,lazy_journal_init=0",
                        image,
                    ],
                )?;
                command("mount", &["-o", "loop", image, mount_path])?;
            }
            Filesystem::Tmpfs => {
                let size = format!("size={TMPFS_BYTES}");
                command("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", mount_path])?;
            }
        }
        Ok(SmallFilesystem {
            mount_point,
            _temp: temp,
            _turn: turn,
        })
    }

    /// Mounts `kind`, or says why not and returns `None`: the test skips
    /// (or fails, under [`REQUIRE_MOUNTS_ENV`]).
    fn mount_or_skip(kind: Filesystem, test: &str) -> Option<SmallFilesystem> {
        SmallFilesystem::mount_sized_or_skip(kind, EXT4_IMAGE_BYTES, Turn::take(false), test)
    }

    fn mount_sized_or_skip(
        kind: Filesystem,
        image_bytes: u64,
        turn: Turn,
        test: &str,
    ) -> Option<SmallFilesystem> {
        match SmallFilesystem::mount_sized(kind, image_bytes, turn) {
            Ok(filesystem) => Some(filesystem),
            Err(reason) if std::env::var(REQUIRE_MOUNTS_ENV).as_deref() == Ok("1") => {
                panic!("{test}: cannot mount {kind:?} and {REQUIRE_MOUNTS_ENV}=1: {reason}")
            }
            Err(reason) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: {test}: cannot mount {kind:?} (root and a loop device needed): \
                     {reason}; {REQUIRE_MOUNTS_ENV}=1 makes this a failure"
                );
                None
            }
        }
    }

    /// Writes the filler file of `bytes` and syncs it.
    fn write_filler(&self, bytes: usize) {
        let mut file =
            std::fs::File::create(filler_path(&self.mount_point)).expect("filler created");
        std::io::Write::write_all(&mut file, &vec![0xf1; bytes]).expect("filler written");
        file.sync_all().expect("filler synced");
    }
}

fn filler_path(mount_point: &Path) -> PathBuf {
    mount_point.join("filler")
}

/// Deletes the filler and commits the filesystem, so the space is free at
/// once (ext4 reuses freed blocks only after a journal commit).
fn free_filler(mount_point: &Path) {
    std::fs::remove_file(filler_path(mount_point)).expect("filler deleted");
    let root = std::fs::File::open(mount_point).expect("mount point opens");
    // SAFETY: a valid open descriptor, for the duration of the call.
    let synced = unsafe { libc::syncfs(root.as_raw_fd()) };
    assert_eq!(synced, 0, "syncfs: {}", std::io::Error::last_os_error());
}

fn free_bytes(mount_point: &Path) -> u64 {
    let path =
        std::ffi::CString::new(mount_point.to_str().expect("UTF-8")).expect("no NUL in the path");
    // SAFETY: statvfs fills the zeroed struct from a NUL-terminated path.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(path.as_ptr(), &mut stat), 0, "statvfs");
        stat.f_bavail * stat.f_frsize
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let mount_point = self.mount_point.to_str().expect("UTF-8");
        if let Err(error) = command("umount", &[mount_point]) {
            eprintln!("{error}; unmounting lazily");
            let _ = command("umount", &["-l", mount_point]);
        }
    }
}

// ---------------------------------------------------------------------------
// Batches

/// Tags from here on name small batches only (one record of 100..200 bytes,
/// a batch of about 250): a dozen fit in a page, so a write that fails part
/// way has almost always written whole batches of the failed round.
const SMALL_TAGS_FROM: u64 = 1 << 40;

/// The batch named by `tag`: a quarter of them 8..48 KiB in 1..4 records, the
/// rest 1..6 records of 100..1100 bytes (but see [`SMALL_TAGS_FROM`]). The
/// key of every record is the tag (so the tag is the first 8 bytes of the
/// payload); the values are `<tag>:<record>:` filled out with a byte derived
/// from both.
fn tagged_batch(tag: u64) -> Batch {
    tagged_producer_batch(tag, None)
}

/// An idempotent producer's fields: id, epoch and base sequence.
type ProducerFields = (i64, i16, i32);

/// [`tagged_batch`], from an idempotent producer if `producer` says which.
fn tagged_producer_batch(tag: u64, producer: Option<ProducerFields>) -> Batch {
    // A multiplicative hash, so that neighbouring tags differ in shape.
    let mix = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    let (records, value_bytes) = if tag >= SMALL_TAGS_FROM {
        (1, 100 + (mix >> 8) as usize % 100)
    } else if mix % 4 == 0 {
        let records = 1 + (mix >> 4) as usize % 4;
        let bytes = LARGE_BATCH_BYTES / 6 + (mix >> 8) as usize % (LARGE_BATCH_BYTES * 5 / 6);
        (records, bytes / records)
    } else {
        (
            1 + (mix >> 4) as usize % 6,
            100 + (mix >> 8) as usize % 1000,
        )
    };
    let mut builder = BatchBuilder::with_capacity(records * (value_bytes + 64) + 256);
    if let Some((producer_id, epoch, sequence)) = producer {
        builder = builder.producer(producer_id, epoch, sequence);
    }
    for record in 0..records {
        // `vec![byte; n]` is a memset even in debug builds; `resize` is not.
        let mut value = vec![(mix as usize + record * 7) as u8; value_bytes];
        let label = format!("{tag}:{record}:");
        value[..label.len()].copy_from_slice(label.as_bytes());
        builder.push(
            TIMESTAMP_BASE_MS + tag as i64,
            Some(&tag.to_le_bytes()),
            &value,
            &[],
        );
    }
    builder.finish()
}

fn tag_of(batch: &Batch) -> u64 {
    let key = batch.payload().get(..8).unwrap_or_else(|| {
        panic!(
            "batch at {} has a {}-byte payload",
            batch.base_offset(),
            batch.payload().len()
        )
    });
    u64::from_le_bytes(key.try_into().expect("eight bytes"))
}

/// An acknowledged batch: where it landed and what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Acked {
    last_offset: u64,
    tag: u64,
    bytes: usize,
    /// The producer fields of an idempotent producer's batch.
    producer: Option<ProducerFields>,
}

/// Every batch the log acknowledged, by base offset.
type AckedBatches = BTreeMap<u64, Acked>;

fn acked_end(acked: &AckedBatches) -> u64 {
    acked
        .last_key_value()
        .map_or(0, |(_, last)| last.last_offset + 1)
}

/// Reads the whole log and checks that it is exactly `acked`: offsets
/// contiguous from 0 to the end, each batch byte-identical to the batch its
/// tag names, no batch that was not acknowledged, none missing.
async fn check_log_holds_exactly(log: &Log, acked: &AckedBatches, when: &str) {
    let end = log.end_offset();
    assert_eq!(
        end.0,
        acked_end(acked),
        "{when}: the log ends at {end} but the acknowledged batches end at {}",
        acked_end(acked)
    );
    assert_eq!(
        log.visible_end(),
        end,
        "{when}: not all of the log is visible"
    );
    let mut next = log.start_offset();
    assert_eq!(next, Offset(0), "{when}: nothing was deleted");
    let mut batches = 0;
    while next < end {
        let read = within("a read", log.read(next, READ_BYTES_MAX))
            .await
            .unwrap_or_else(|error| panic!("{when}: read at {next} (end {end}) failed: {error}"));
        assert!(
            !read.is_empty(),
            "{when}: read at {next} below the end {end} returned nothing"
        );
        for batch in read {
            assert_eq!(
                batch.base_offset(),
                next,
                "{when}: a batch at {} follows the end {next}",
                batch.base_offset()
            );
            let tag = tag_of(&batch);
            let expected = acked.get(&next.0).unwrap_or_else(|| {
                panic!("{when}: the batch at {next} (tag {tag}) was never acknowledged")
            });
            assert_eq!(
                (tag, batch.last_offset().0),
                (expected.tag, expected.last_offset),
                "{when}: the batch at {next} is not the one acknowledged there"
            );
            let appended = tagged_producer_batch(tag, expected.producer).assign(next, 0);
            assert!(
                batch.as_bytes() == appended.as_bytes(),
                "{when}: the batch at {next} (tag {tag}) differs from the batch appended"
            );
            batches += 1;
            next = batch.last_offset().next();
        }
    }
    assert_eq!(next, end, "{when}: the last batch ends past the log end");
    assert_eq!(batches, acked.len(), "{when}: batches missing");
}

// ---------------------------------------------------------------------------
// Appending

/// What appenders saw while filling the disk.
#[derive(Default)]
struct Fill {
    acked: AckedBatches,
    disk_full_errors: u64,
    /// The message of the first DiskFull: which call failed, on which file.
    first_disk_full: Option<String>,
    appended_bytes: u64,
}

/// Appends from `appenders` tasks until each has met a DiskFull; any other
/// error fails the test. `pace` runs after every acknowledged append.
async fn fill_until_disk_full<P, PF>(
    log: &Rc<Log>,
    next_tag: &Rc<Cell<u64>>,
    appenders: u64,
    pace: P,
) -> Fill
where
    P: Fn() -> PF + Clone + 'static,
    PF: Future<Output = ()>,
{
    let fill = Rc::new(RefCell::new(Fill::default()));
    let appenders: Vec<_> = (0..appenders)
        .map(|_| {
            let (log, next_tag, fill, pace) =
                (log.clone(), next_tag.clone(), fill.clone(), pace.clone());
            glommio::spawn_local(async move {
                loop {
                    assert!(
                        fill.borrow().appended_bytes < FILL_BYTES_MAX,
                        "no DiskFull after {} bytes appended",
                        fill.borrow().appended_bytes
                    );
                    let tag = next_tag.replace(next_tag.get() + 1);
                    let batch = tagged_batch(tag);
                    let bytes = batch.len();
                    match within("an append", log.append(batch)).await {
                        Ok(appended) => {
                            let mut fill = fill.borrow_mut();
                            fill.appended_bytes += bytes as u64;
                            let acked = Acked {
                                last_offset: appended.last_offset.0,
                                tag,
                                bytes,
                                producer: None,
                            };
                            let previous = fill.acked.insert(appended.base_offset.0, acked);
                            assert!(previous.is_none(), "two acks at {}", appended.base_offset);
                        }
                        Err(AppendError::DiskFull { message }) => {
                            let mut fill = fill.borrow_mut();
                            fill.disk_full_errors += 1;
                            fill.first_disk_full.get_or_insert(message);
                            return;
                        }
                        Err(error) => panic!("append of tag {tag} failed: {error}"),
                    }
                    pace().await;
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.await;
    }
    Rc::try_unwrap(fill)
        .ok()
        .expect("the appenders are done")
        .into_inner()
}

/// Appends one batch after another until `bytes` are acknowledged; every
/// append must succeed, and the first continues the log where it ended.
async fn append_after_freeing(
    log: &Log,
    next_tag: &Cell<u64>,
    acked: &mut AckedBatches,
    bytes: usize,
) {
    let mut appended_bytes = 0;
    while appended_bytes < bytes {
        let end = log.end_offset();
        let tag = next_tag.replace(next_tag.get() + 1);
        let batch = tagged_batch(tag);
        let batch_bytes = batch.len();
        let appended = within("an append after freeing space", log.append(batch))
            .await
            .unwrap_or_else(|error| {
                panic!("append of tag {tag} failed after space was freed: {error}")
            });
        assert_eq!(
            appended.base_offset, end,
            "an append after freeing space does not continue the log"
        );
        acked.insert(
            appended.base_offset.0,
            Acked {
                last_offset: appended.last_offset.0,
                tag,
                bytes: batch_bytes,
                producer: None,
            },
        );
        appended_bytes += batch_bytes;
    }
}

/// The files under `dir` that this process has open.
fn open_files_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd lists")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .collect()
}

/// Closes `log` and checks that it left none of its files open: a file
/// left open would keep a deleted file's space and the mount busy.
async fn close_and_check(log: Log, when: &str) {
    let dir = log.dir();
    within(&format!("close {when}"), log.close())
        .await
        .unwrap_or_else(|failure| panic!("close {when}: {failure}"));
    drop(log);
    let open = open_files_under(&dir);
    assert!(
        open.is_empty(),
        "files still open after the close {when}: {open:?}"
    );
}

/// Closes `log` (leaving none of its files open) and opens it again.
async fn close_and_reopen(log: Log, dir: &Path, config: &LogConfig, when: &str) -> Log {
    close_and_check(log, when).await;
    within(&format!("reopen {when}"), Log::open(dir, config.clone()))
        .await
        .unwrap_or_else(|error| panic!("the log does not reopen {when}: {error}"))
}

async fn close_for_good(log: Log) {
    close_and_check(log, "at the end").await;
}

/// The space a log may hold in reserve when it reports the disk full: one
/// preallocation step (documented as at most `segment_bytes_max`), plus a
/// large batch that did not fit, plus ext4's slack for metadata.
fn space_held_back_max(config: &LogConfig) -> u64 {
    let step = if config.preallocate {
        PREALLOCATE_STEP_BYTES.min(config.segment_bytes_max)
    } else {
        0
    };
    step + 2 * LARGE_BATCH_BYTES as u64 + 256 * 1024
}

// ---------------------------------------------------------------------------
// The `always` policy

/// Under `always`: fill the disk, check nothing partial is visible and
/// everything acknowledged reads back, close and reopen while full, try more
/// appends, close and reopen again, free space, append more, close and
/// reopen. Last, check the log used the disk before reporting it full.
fn always_policy_on_a_full_disk(kind: Filesystem, config: LogConfig, test: &'static str) {
    assert_eq!(config.flush, FlushPolicy::Always);
    let Some(filesystem) = SmallFilesystem::mount_or_skip(kind, test) else {
        return;
    };
    filesystem.write_filler(FILLER_BYTES);
    let mount_point = filesystem.mount_point.clone();
    let free_before = free_bytes(&mount_point);
    run(move || async move {
        let dir = mount_point.join("partition");
        let started = Instant::now();
        let log = Rc::new(
            Log::open(&dir, config.clone())
                .await
                .expect("the log opens on an empty filesystem"),
        );
        let next_tag = Rc::new(Cell::new(0));

        // Fill: every appender ends at its first DiskFull.
        let fill = fill_until_disk_full(&log, &next_tag, APPENDERS, || async {}).await;
        let mut acked = fill.acked;
        let filled_batches = acked.len();
        let fill_ms = started.elapsed().as_millis();
        // (a) The log ends where the acknowledged batches end: nothing of a
        // failed append is visible, and all of it is durable.
        assert_eq!(
            log.end_offset().0,
            acked_end(&acked),
            "after DiskFull the log end is not the end of what was acknowledged"
        );
        assert_eq!(log.durable_end(), log.end_offset());
        assert_eq!(log.failure(), None, "a full disk fenced the log");
        // (b) Everything acknowledged reads back, and nothing else.
        check_log_holds_exactly(&log, &acked, "after filling the disk").await;
        let full_end = log.end_offset();
        let free_when_full = free_bytes(&mount_point);

        // Close and reopen at once, the disk still full: whatever a failed
        // write left in the file past the end must not come back.
        let log = Rc::try_unwrap(log).ok().expect("the appenders are done");
        let log = close_and_reopen(log, &dir, &config, "on a full disk").await;
        check_log_holds_exactly(&log, &acked, "after reopening on a full disk").await;

        // (c) More appends: each fails with DiskFull or, if it fits,
        // succeeds; nothing else.
        let mut refused = 0;
        let mut accepted = 0;
        for _ in 0..APPENDS_WHILE_FULL {
            let end = log.end_offset();
            let tag = next_tag.replace(next_tag.get() + 1);
            let batch = tagged_batch(tag);
            let bytes = batch.len();
            match within("an append on a full disk", log.append(batch)).await {
                Ok(appended) => {
                    assert_eq!(appended.base_offset, end, "an append left a gap");
                    accepted += 1;
                    acked.insert(
                        appended.base_offset.0,
                        Acked {
                            last_offset: appended.last_offset.0,
                            tag,
                            bytes,
                            producer: None,
                        },
                    );
                }
                Err(AppendError::DiskFull { .. }) => {
                    refused += 1;
                    assert_eq!(log.end_offset(), end, "a refused append moved the end");
                }
                Err(error) => panic!("an append on a full disk failed otherwise: {error}"),
            }
        }
        assert!(refused > 0, "every append on a full disk succeeded");
        check_log_holds_exactly(&log, &acked, "after appends on a full disk").await;
        let log = close_and_reopen(log, &dir, &config, "after appends on a full disk").await;
        check_log_holds_exactly(&log, &acked, "after reopening after appends on a full disk").await;

        // (d) Free space: appends work again and continue the offsets.
        free_filler(&mount_point);
        append_after_freeing(&log, &next_tag, &mut acked, APPEND_AFTER_FREEING_BYTES).await;
        check_log_holds_exactly(&log, &acked, "after freeing space").await;

        // (e) Close and reopen: everything acknowledged is there.
        let log = close_and_reopen(log, &dir, &config, "after freeing space").await;
        check_log_holds_exactly(&log, &acked, "after the last reopen").await;
        let end = log.end_offset();
        let segments = log.segment_count();
        close_for_good(log).await;

        let acked_bytes: usize = acked.values().map(|acked| acked.bytes).sum();
        println!(
            "{test}: {:?}, segments of {} KiB, preallocate {}: {} KiB free before the log; \
             filled in {fill_ms} ms: {} batches ({} KiB) acknowledged, {} DiskFull ({}), log \
             end {full_end}, {} KiB left free; {APPENDS_WHILE_FULL} more appends: {accepted} \
             accepted, {refused} DiskFull; after freeing {} KiB: log end {end}, {} batches \
             ({} KiB), {segments} segments, all read back after reopening",
            kind,
            config.segment_bytes_max / 1024,
            config.preallocate,
            free_before / 1024,
            filled_batches,
            fill.appended_bytes / 1024,
            fill.disk_full_errors,
            fill.first_disk_full.as_deref().unwrap_or_default(),
            free_when_full / 1024,
            FILLER_BYTES / 1024,
            acked.len(),
            acked_bytes / 1024,
        );
        // Checked last, so that the rest has been checked and printed: the
        // log did not report the disk full while it had room to spare.
        assert!(
            free_when_full <= space_held_back_max(&config),
            "{test}: DiskFull was reported with {} KiB free, more than a preallocation step \
             and a batch ({} KiB)",
            free_when_full / 1024,
            space_held_back_max(&config) / 1024
        );
    });
}

#[test]
fn always_without_preallocation_refuses_cleanly_when_the_disk_is_full() {
    always_policy_on_a_full_disk(
        Filesystem::Ext4OnLoop,
        LogConfig {
            segment_bytes_max: 1024 * 1024,
            preallocate: false,
            ..LogConfig::default()
        },
        "always_without_preallocation",
    );
}

#[test]
fn always_with_preallocation_refuses_cleanly_when_the_disk_is_full() {
    always_policy_on_a_full_disk(
        Filesystem::Ext4OnLoop,
        LogConfig {
            segment_bytes_max: 4 * 1024 * 1024,
            preallocate: true,
            ..LogConfig::default()
        },
        "always_with_preallocation",
    );
}

/// tmpfs has no O_DIRECT: glommio opens its files for buffered I/O. The log
/// must work the same there.
#[test]
fn always_on_tmpfs_refuses_cleanly_when_the_disk_is_full() {
    always_policy_on_a_full_disk(
        Filesystem::Tmpfs,
        LogConfig {
            segment_bytes_max: 1024 * 1024,
            preallocate: false,
            ..LogConfig::default()
        },
        "always_on_tmpfs",
    );
}

/// Many appenders of small batches: a flush round holds dozens of batches,
/// and the write that meets the full disk has often written some of them
/// whole (within the page it rewrites, or before a short write stops) before
/// failing. Those appends failed with DiskFull; they must not come back when
/// the log is reopened.
fn failed_appends_stay_failed_after_reopening(kind: Filesystem, test: &'static str) {
    /// Enough that most flush rounds hold many batches.
    const SMALL_APPENDERS: u64 = 32;
    /// Left free by the filler: a few thousand small batches fill it.
    const FREE_BYTES: u64 = 1024 * 1024;
    let Some(filesystem) = SmallFilesystem::mount_or_skip(kind, test) else {
        return;
    };
    let free = free_bytes(&filesystem.mount_point);
    filesystem.write_filler(free.saturating_sub(FREE_BYTES) as usize);
    let mount_point = filesystem.mount_point.clone();
    let config = LogConfig {
        segment_bytes_max: 1024 * 1024,
        preallocate: false,
        ..LogConfig::default()
    };
    run(move || async move {
        let dir = mount_point.join("partition");
        let log = Rc::new(
            Log::open(&dir, config.clone())
                .await
                .expect("the log opens on an empty filesystem"),
        );
        let next_tag = Rc::new(Cell::new(SMALL_TAGS_FROM));
        let fill = fill_until_disk_full(&log, &next_tag, SMALL_APPENDERS, || async {}).await;
        let acked = fill.acked;
        check_log_holds_exactly(&log, &acked, "after filling the disk").await;
        let full_end = log.end_offset();
        let log = Rc::try_unwrap(log).ok().expect("the appenders are done");
        let log = close_and_reopen(log, &dir, &config, "on a full disk").await;
        let reopened_end = log.end_offset();
        println!(
            "{test}: {:?}: {} batches acknowledged, {} DiskFull (first: {}); log end {full_end} \
             before closing, {reopened_end} after reopening",
            kind,
            acked.len(),
            fill.disk_full_errors,
            fill.first_disk_full.as_deref().unwrap_or_default(),
        );
        check_log_holds_exactly(&log, &acked, "after reopening on a full disk").await;
        close_for_good(log).await;
    });
}

#[test]
fn failed_appends_stay_failed_after_reopening_on_ext4() {
    failed_appends_stay_failed_after_reopening(Filesystem::Ext4OnLoop, "failed_appends_ext4");
}

#[test]
fn failed_appends_stay_failed_after_reopening_on_tmpfs() {
    failed_appends_stay_failed_after_reopening(Filesystem::Tmpfs, "failed_appends_tmpfs");
}

// ---------------------------------------------------------------------------
// The `interval` policy

/// The flush interval of the interval test.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// How long the interval test waits, after freeing space, for the flusher's
/// retry (every 100 ms) to write the backlog.
const BACKLOG_WRITTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Appenders of the interval test wait while more offsets than this are
/// acknowledged but not durable: about 1.5 MiB of batches (3 KiB an offset
/// on average), well under the space the test frees.
const BACKLOG_OFFSETS_MAX: u64 = 512;
/// ... but not longer than this: several flush intervals and retries.
const BACKLOG_WAIT_MAX: Duration = Duration::from_millis(300);

/// Under `interval` an append is acknowledged once queued, so a full disk
/// is met by the flusher, after the fact: from then on appends fail with
/// DiskFull, while the acknowledged backlog stays readable and queued. Once
/// space is freed the backlog is written, appends go on, and everything
/// acknowledged survives a close and a reopen.
#[test]
fn interval_keeps_acknowledged_batches_through_a_full_disk() {
    const TEST: &str = "interval";
    let Some(filesystem) = SmallFilesystem::mount_or_skip(Filesystem::Ext4OnLoop, TEST) else {
        return;
    };
    filesystem.write_filler(FILLER_BYTES);
    let mount_point = filesystem.mount_point.clone();
    let free_before = free_bytes(&mount_point);
    let config = LogConfig {
        segment_bytes_max: 1024 * 1024,
        preallocate: false,
        flush: FlushPolicy::Interval(FLUSH_INTERVAL),
        ..LogConfig::default()
    };
    run(move || async move {
        let dir = mount_point.join("partition");
        let started = Instant::now();
        let log = Rc::new(
            Log::open(&dir, config.clone())
                .await
                .expect("the log opens on an empty filesystem"),
        );
        let next_tag = Rc::new(Cell::new(0));

        // Fill. An append returns once queued, so an appender that never
        // waits queues up to `PENDING_BYTES_MAX` (more than this disk holds)
        // before the flusher meets the full disk. These appenders keep the
        // unsynced backlog small, as producers bounded by their in-flight
        // requests would: each waits for the durable end to catch up, and
        // goes on after a while if it does not (the disk is full).
        let paced = {
            let log = log.clone();
            move || {
                let log = log.clone();
                async move {
                    let waited = Instant::now();
                    while log.end_offset().0 - log.durable_end().0 > BACKLOG_OFFSETS_MAX
                        && waited.elapsed() < BACKLOG_WAIT_MAX
                    {
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        };
        let fill = fill_until_disk_full(&log, &next_tag, APPENDERS, paced).await;
        let mut acked = fill.acked;
        let fill_ms = started.elapsed().as_millis();
        assert_eq!(log.failure(), None, "a full disk fenced the log");
        // Everything acknowledged is visible and reads back, from memory
        // where it is not written.
        check_log_holds_exactly(&log, &acked, "with the disk full").await;
        let full_end = log.end_offset();
        let durable_when_full = log.durable_end();
        let backlog_bytes: usize = acked
            .range(durable_when_full.0..)
            .map(|(_, acked)| acked.bytes)
            .sum();
        let free_when_full = free_bytes(&mount_point);
        assert!(
            backlog_bytes < FILLER_BYTES,
            "the backlog ({backlog_bytes} bytes past the durable end {durable_when_full}) is \
             larger than the space the test frees: the test cannot check it is written"
        );

        // Appends fail while the backlog cannot be written, and keep failing
        // across the flusher's retries.
        for attempt in 0..3 {
            let error = within(
                "an append on a full disk",
                log.append(tagged_batch(u64::MAX)),
            )
            .await
            .expect_err("an append succeeded while acknowledged batches are unwritten");
            assert!(
                matches!(error, AppendError::DiskFull { .. }),
                "attempt {attempt} on a full disk: {error}"
            );
            assert_eq!(log.end_offset(), full_end, "a refused append moved the end");
            glommio::timer::sleep(Duration::from_millis(150)).await;
        }
        check_log_holds_exactly(&log, &acked, "after refused appends").await;

        // Free space: the flusher's retry writes the backlog, and appends are
        // taken again, from the end (refused ones took no offsets).
        free_filler(&mount_point);
        let freed = Instant::now();
        let mut refused_after_freeing = 0;
        loop {
            assert!(
                freed.elapsed() < BACKLOG_WRITTEN_TIMEOUT,
                "appends still refused {BACKLOG_WRITTEN_TIMEOUT:?} after freeing space"
            );
            let tag = next_tag.replace(next_tag.get() + 1);
            let batch = tagged_batch(tag);
            let bytes = batch.len();
            match within("an append after freeing space", log.append(batch)).await {
                Ok(appended) => {
                    assert_eq!(
                        appended.base_offset, full_end,
                        "the first append after the disk full does not continue the log"
                    );
                    acked.insert(
                        appended.base_offset.0,
                        Acked {
                            last_offset: appended.last_offset.0,
                            tag,
                            bytes,
                            producer: None,
                        },
                    );
                    break;
                }
                Err(AppendError::DiskFull { .. }) => {
                    refused_after_freeing += 1;
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                Err(error) => panic!("an append after freeing space failed: {error}"),
            }
        }
        let resumed_ms = freed.elapsed().as_millis();
        append_after_freeing(&log, &next_tag, &mut acked, APPEND_AFTER_FREEING_BYTES).await;
        check_log_holds_exactly(&log, &acked, "after freeing space").await;

        // Close (which writes and syncs everything) and reopen.
        let log = Rc::try_unwrap(log).ok().expect("the appenders are done");
        let log = close_and_reopen(log, &dir, &config, "after freeing space").await;
        check_log_holds_exactly(&log, &acked, "after reopening").await;
        let end = log.end_offset();
        close_for_good(log).await;

        println!(
            "{TEST}: Ext4OnLoop, flush every {FLUSH_INTERVAL:?}: {} KiB free before the log; \
             filled in {fill_ms} ms: {} KiB acknowledged, first DiskFull ({}) at end \
             {full_end} with the durable end at {durable_when_full}: a backlog of {} KiB, {} \
             KiB left free; after freeing {} KiB appends resumed in {resumed_ms} ms \
             ({refused_after_freeing} refused meanwhile); log end {end}, {} batches, all read \
             back after reopening",
            free_before / 1024,
            fill.appended_bytes / 1024,
            fill.first_disk_full.as_deref().unwrap_or_default(),
            backlog_bytes / 1024,
            free_when_full / 1024,
            FILLER_BYTES / 1024,
            acked.len(),
        );
    });
}

// ---------------------------------------------------------------------------
// Idempotent producers

/// Producers of the producer test, one task each.
const PRODUCERS: i64 = 4;
/// Batches each producer keeps in flight: as many as a Kafka client may.
const IN_FLIGHT: usize = 5;

/// Awaits all of `futures`, polling them in order each time: the first poll
/// of each comes before any other task runs, so appends are called in order
/// and are in flight together, as a producer's pipelined requests are.
async fn join_all<'a, T>(futures: Vec<std::pin::Pin<Box<dyn Future<Output = T> + 'a>>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(pending) = future {
                if let std::task::Poll::Ready(value) = pending.as_mut().poll(cx) {
                    *output = Some(value);
                    *future = None;
                }
            }
        }
        if futures.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("ready"))
        .collect()
}

/// What one producer saw while filling the disk.
#[derive(Default)]
struct ProducerFill {
    /// (tag, fields, base offset, last offset) of each acknowledged batch.
    acked: Vec<(u64, ProducerFields, u64, u64)>,
    /// The batches refused from the first DiskFull on: what it resends.
    refused: Vec<(u64, ProducerFields)>,
    next_sequence: i32,
}

/// One producer: windows of [`IN_FLIGHT`] batches until a window meets the
/// full disk. A window fails from some batch on: that one with DiskFull, the
/// ones after it with DiskFull too or, if they were checked after the
/// failure was undone, OutOfOrderSequence. Never an acknowledged batch after
/// a refused one, never a refusal other than DiskFull first.
async fn produce_until_disk_full(
    log: &Log,
    producer_id: i64,
    next_tag: &Cell<u64>,
) -> ProducerFill {
    let mut fill = ProducerFill::default();
    loop {
        let mut window = Vec::new();
        let mut sequence = fill.next_sequence;
        for _ in 0..IN_FLIGHT {
            let tag = next_tag.replace(next_tag.get() + 1);
            let fields = (producer_id, 0, sequence);
            let batch = tagged_producer_batch(tag, Some(fields));
            sequence = sluice_storage::log::sequence_after(sequence, batch.offset_count() as u32);
            window.push((tag, fields, batch));
        }
        let appends = window
            .iter()
            .map(|(_, _, batch)| {
                Box::pin(within("an append", log.append(batch.clone())))
                    as std::pin::Pin<Box<dyn Future<Output = Result<Appended, AppendError>>>>
            })
            .collect();
        let results = join_all(appends).await;
        for ((tag, fields, batch), result) in window.into_iter().zip(results) {
            match result {
                Ok(appended) => {
                    assert!(
                        fill.refused.is_empty(),
                        "producer {producer_id}: tag {tag} acknowledged after a refused batch"
                    );
                    assert!(!appended.duplicate, "tag {tag} taken for a duplicate");
                    fill.acked
                        .push((tag, fields, appended.base_offset.0, appended.last_offset.0));
                    fill.next_sequence =
                        sluice_storage::log::sequence_after(fields.2, batch.offset_count() as u32);
                }
                Err(AppendError::DiskFull { .. }) => fill.refused.push((tag, fields)),
                Err(AppendError::OutOfOrderSequence { expected, .. })
                    if !fill.refused.is_empty() =>
                {
                    assert_eq!(
                        expected, fill.next_sequence,
                        "the refused batches were remembered"
                    );
                    fill.refused.push((tag, fields));
                }
                Err(error) => panic!("producer {producer_id}: tag {tag} failed: {error}"),
            }
        }
        if !fill.refused.is_empty() {
            return fill;
        }
    }
}

/// Each producer's last acknowledged batches, resent: duplicates at their
/// offsets, nothing stored.
async fn resend_acked(log: &Log, fills: &[ProducerFill], when: &str) {
    let end = log.end_offset();
    for fill in fills {
        let recent = fill
            .acked
            .len()
            .saturating_sub(sluice_storage::log::PRODUCER_BATCHES_MAX);
        for &(tag, fields, base, last) in &fill.acked[recent..] {
            let appended = within(
                "a retry",
                log.append(tagged_producer_batch(tag, Some(fields))),
            )
            .await
            .unwrap_or_else(|error| panic!("{when}: the retry of tag {tag} failed: {error}"));
            assert!(
                appended.duplicate,
                "{when}: the retry of tag {tag} was stored"
            );
            assert_eq!(
                (appended.base_offset.0, appended.last_offset.0),
                (base, last),
                "{when}: the retry of tag {tag} got other offsets"
            );
        }
    }
    assert_eq!(log.end_offset(), end, "{when}: a retry moved the end");
}

fn check_producer_states(log: &Log, fills: &[ProducerFill], when: &str) {
    for (producer_id, fill) in fills.iter().enumerate() {
        let state = log.producer(producer_id as i64);
        match fill.acked.last() {
            None => assert_eq!(state, None, "{when}: producer {producer_id} known"),
            Some(&(_, _, base, _)) => {
                let state =
                    state.unwrap_or_else(|| panic!("{when}: producer {producer_id} unknown"));
                assert_eq!(
                    state.next_sequence(),
                    fill.next_sequence,
                    "{when}: producer {producer_id} remembers a refused batch"
                );
                assert_eq!(state.batches.last().unwrap().base_offset.0, base);
            }
        }
    }
}

/// Idempotent producers on a full disk (ext4, `always`), each with batches
/// in flight: the appends the full disk fails leave nothing in the producer
/// state, so once space is freed a producer resends from its first refused
/// batch and those are appended (not taken for duplicates, not refused as
/// out of order), while its last acknowledged batches are still duplicates;
/// after reopening on the full disk (where the close may not manage to write
/// its snapshot) and after reopening at the end.
#[test]
fn idempotent_producers_resend_what_a_full_disk_refused() {
    const TEST: &str = "idempotent_producers";
    let Some(filesystem) = SmallFilesystem::mount_or_skip(Filesystem::Ext4OnLoop, TEST) else {
        return;
    };
    filesystem.write_filler(FILLER_BYTES);
    let mount_point = filesystem.mount_point.clone();
    let config = LogConfig {
        segment_bytes_max: 1024 * 1024,
        preallocate: false,
        ..LogConfig::default()
    };
    run(move || async move {
        let dir = mount_point.join("partition");
        let log = Rc::new(
            Log::open(&dir, config.clone())
                .await
                .expect("the log opens on an empty filesystem"),
        );
        let next_tag = Rc::new(Cell::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer_id| {
                let (log, next_tag) = (log.clone(), next_tag.clone());
                glommio::spawn_local(async move {
                    produce_until_disk_full(&log, producer_id, &next_tag).await
                })
            })
            .collect();
        let mut fills = Vec::new();
        for producer in producers {
            fills.push(producer.await);
        }
        let mut acked: AckedBatches = BTreeMap::new();
        for fill in &fills {
            for &(tag, fields, base, last) in &fill.acked {
                let bytes = tagged_producer_batch(tag, Some(fields)).len();
                acked.insert(
                    base,
                    Acked {
                        last_offset: last,
                        tag,
                        bytes,
                        producer: Some(fields),
                    },
                );
            }
        }
        check_log_holds_exactly(&log, &acked, "after filling the disk").await;
        check_producer_states(&log, &fills, "after filling the disk");
        let refused: usize = fills.iter().map(|fill| fill.refused.len()).sum();

        let log = Rc::try_unwrap(log).ok().expect("the producers are done");
        let log = close_and_reopen(log, &dir, &config, "on a full disk").await;
        check_log_holds_exactly(&log, &acked, "after reopening on a full disk").await;
        check_producer_states(&log, &fills, "after reopening on a full disk");

        free_filler(&mount_point);
        resend_acked(&log, &fills, "after freeing space").await;
        // The refused batches, resent in order, are appended.
        for fill in &mut fills {
            for &(tag, fields) in &fill.refused {
                let end = log.end_offset();
                let batch = tagged_producer_batch(tag, Some(fields));
                let bytes = batch.len();
                let records = batch.offset_count() as u32;
                let appended = within("a resent append", log.append(batch))
                    .await
                    .unwrap_or_else(|error| panic!("the resent tag {tag} failed: {error}"));
                assert!(
                    !appended.duplicate,
                    "the resent tag {tag} taken for a duplicate"
                );
                assert_eq!(appended.base_offset, end);
                acked.insert(
                    appended.base_offset.0,
                    Acked {
                        last_offset: appended.last_offset.0,
                        tag,
                        bytes,
                        producer: Some(fields),
                    },
                );
                fill.acked
                    .push((tag, fields, appended.base_offset.0, appended.last_offset.0));
                fill.next_sequence = sluice_storage::log::sequence_after(fields.2, records);
            }
        }
        check_producer_states(&log, &fills, "after resending");
        let log = close_and_reopen(log, &dir, &config, "after resending").await;
        check_log_holds_exactly(&log, &acked, "after the last reopen").await;
        check_producer_states(&log, &fills, "after the last reopen");
        resend_acked(&log, &fills, "after the last reopen").await;
        close_for_good(log).await;
        println!(
            "{TEST}: {PRODUCERS} producers with {IN_FLIGHT} batches in flight filled the disk: \
             {} batches acknowledged, {refused} refused and resent once space was freed",
            acked.len() - refused
        );
    });
}

// ---------------------------------------------------------------------------
// Spare segments

/// A spare segment holds space for data not yet written. When any log
/// meets a full disk, every spare in the process gives its space back: log
/// A's ready spare must not cost log B's data a byte.
#[test]
fn spare_segments_give_their_space_back_to_a_full_disk() {
    const TEST: &str = "spare_segments_give_their_space_back";
    const MIB: u64 = 1024 * 1024;
    const IMAGE_BYTES: u64 = 72 * MIB;
    const SPARE_BYTES: u64 = 24 * MIB;
    /// Space a full disk may keep from data: file system metadata, index
    /// and snapshot files, the pages a refused round left.
    const MARGIN_BYTES: u64 = 6 * MIB;
    let Some(filesystem) = SmallFilesystem::mount_sized_or_skip(
        Filesystem::Ext4OnLoop,
        IMAGE_BYTES,
        Turn::take(true),
        TEST,
    ) else {
        return;
    };
    let mount_point = filesystem.mount_point.clone();
    let free_before = free_bytes(&mount_point);
    run(move || async move {
        let big_batch = |tag: u64| {
            let mut builder = BatchBuilder::default();
            for record in 0..16u64 {
                let value = vec![(tag + record) as u8; 60 * 1024];
                builder.push(TIMESTAMP_BASE_MS, Some(&tag.to_le_bytes()), &value, &[]);
            }
            builder.finish()
        };
        let open = |dir: PathBuf, segment_bytes_max| {
            let config = LogConfig {
                segment_bytes_max,
                ..LogConfig::default()
            };
            async move { Log::open(&dir, config).await.expect("the log opens") }
        };
        // Log A fills its segment fast: a spare of its segment size is
        // prepared, and A stops writing with the spare ready.
        let a_dir = mount_point.join("a");
        let a = open(a_dir.clone(), SPARE_BYTES).await;
        let mut a_bytes = 0u64;
        let mut tag = 0u64;
        while a_bytes < PREPARE_AFTER_BYTES + MIB {
            let batch = big_batch(tag);
            a_bytes += batch.len() as u64;
            within("an append to a", a.append(batch))
                .await
                .expect("a has room");
            tag += 1;
        }
        let spares = |dir: &Path| -> Vec<(PathBuf, u64)> {
            std::fs::read_dir(dir)
                .expect("log dir lists")
                .map(|entry| entry.expect("entry").path())
                .filter(|path| path.extension().is_some_and(|ext| ext == SPARE_SUFFIX))
                .map(|path| {
                    let bytes = std::fs::metadata(&path).map_or(0, |meta| meta.len());
                    (path, bytes)
                })
                .collect()
        };
        // Ready: whole, and its helper thread gone (it exits once the file
        // is synced and marked ready).
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        while spares(&a_dir).first().map(|(_, bytes)| *bytes) != Some(SPARE_BYTES)
            || spare_helper_running()
        {
            assert!(
                Instant::now() < deadline,
                "no ready spare: {:?}",
                spares(&a_dir)
            );
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }

        // Log B, with segments too small for spares, fills the disk until
        // its appends stay refused.
        let b = open(mount_point.join("b"), MIB).await;
        let mut b_bytes = 0u64;
        let mut refused_in_a_row = 0;
        while refused_in_a_row < APPENDS_WHILE_FULL {
            assert!(b_bytes < FILL_BYTES_MAX, "b never met a full disk");
            let batch = big_batch(tag);
            let len = batch.len() as u64;
            tag += 1;
            match within("an append to b", b.append(batch)).await {
                Ok(_) => {
                    b_bytes += len;
                    refused_in_a_row = 0;
                }
                Err(AppendError::DiskFull { .. }) => {
                    refused_in_a_row += 1;
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                Err(other) => panic!("{TEST}: unexpected {other:?}"),
            }
        }
        assert!(spares(&a_dir).is_empty(), "{:?}", spares(&a_dir));
        assert!(
            a_bytes + b_bytes + MARGIN_BYTES >= free_before,
            "{TEST}: {free_before} bytes were free; a stored {a_bytes}, b {b_bytes}"
        );
        eprintln!(
            "{TEST}: {} KiB free before; a stored {} KiB, b {} KiB",
            free_before / 1024,
            a_bytes / 1024,
            b_bytes / 1024
        );
        close_for_good(a).await;
        close_for_good(b).await;
    });
}

/// Whether a thread of this process is filling a spare segment.
fn spare_helper_running() -> bool {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task lists")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .any(|name| name.trim() == "sluice-spare")
}
