//! Spare segments: the next segment's file, filled with zeros ahead of time
//! by a side thread, so that the log's writes overwrite blocks that are
//! already allocated and written.
//!
//! Appending past the end of a file makes each O_DIRECT write allocate
//! blocks and grow the file: its fdatasync must also make the new size and
//! extents durable, and now and then (about once per 107 MiB on ext4 here)
//! the allocation holds the io-wq worker that runs the write, on the shard's
//! core, for 4–5 ms. A write into a zero-filled file allocates nothing and
//! its fdatasync flushes data only. (The writes go to io-wq either way:
//! perf counts one `io_uring_queue_async_work` per segment write in both.)
//! Filling the active segment itself would not do: an allocating write
//! holds the file's inode lock, which the log's own writes then wait for.
//! So the fill goes to a separate file, the spare, which the next roll
//! renames into place.
//!
//! The fill costs the disk a second write of every byte, and the log's
//! writes meet it in the device's queue. Measured with 64 KiB fill writes
//! (bench/RESULTS.md): at 750,000 records/s of 100 B, 30 s runs, ack p50
//! 1.16 → 1.07 ms, p99.9 5.40 → 4.93 ms (medians of 3, alternated).
//!
//! A spare is prepared only for a log that fills segments fast: once its
//! active segment holds [`PREPARE_AFTER_BYTES`] and, at the rate it has
//! been written, will be full within [`PREPARE_LEAD_MS`]. A slow partition
//! never holds a segment-sized file it will not fill. An active segment
//! that was not prepared (the log's first, or one created while the spare
//! was still filling) is rolled as soon as the spare is ready.
//!
//! A spare holds disk space for data not yet written. When any log meets a
//! full disk, every spare in the process gives its space back
//! ([`give_back_all`]) before the append is retried, and the logs make no
//! new spare for their active segments. A log idle for [`SPARE_IDLE_MS`]
//! gives its spare back too.
//!
//! The side thread is started on the shard's thread and so shares its
//! core, at the lowest CPU and I/O priority: it runs in the time the shard
//! leaves. It is paced to be done in half the time the active segment needs
//! to fill (within [`PREPARE_BYTES_PER_S_MIN`] and
//! [`PREPARE_BYTES_PER_S_MAX`]), in [`PREPARE_WRITE_BYTES`] writes, so that
//! the disk's queue stays short for the log's own writes.

use std::{
    io,
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering},
        Arc, Mutex, Weak,
    },
    time::{Duration, Instant},
};

use super::{State, PAGE_BYTES};

/// An active segment is considered for a spare once it holds this much.
pub const PREPARE_AFTER_BYTES: u64 = 16 * 1024 * 1024;

/// A spare is prepared when the active segment will be full within this
/// long, at the rate it has been written.
pub const PREPARE_LEAD_MS: u64 = 30_000;

/// The most bytes/s a spare is filled at (1 GiB in 2.7 s).
pub const PREPARE_BYTES_PER_S_MAX: u64 = 400_000_000;

/// The fewest bytes/s a spare is filled at.
pub const PREPARE_BYTES_PER_S_MIN: u64 = 20_000_000;

/// The size of one write of zeros. Small, because a log write that finds
/// one in the device's queue waits for it: with 256 KiB the fill cost the
/// log's ack p99 as much as the spare saved.
pub const PREPARE_WRITE_BYTES: usize = 64 * 1024;

/// A log that has written nothing for this long gives its spare back: a
/// partition that stopped does not keep a segment of disk it may never use.
pub const SPARE_IDLE_MS: u64 = 60_000;

/// Spare files end with this; recovery removes any it finds.
pub const SPARE_SUFFIX: &str = "spare";

const FILLING: u8 = 0;
const READY: u8 = 1;
const FAILED: u8 = 2;

/// A spare being filled or ready, owned by the log's state.
pub(super) struct Spare {
    pub bytes: u64,
    fill: Arc<Fill>,
}

/// What the log, the side thread and [`give_back_all`] share of a spare.
struct Fill {
    path: PathBuf,
    progress: AtomicU8,
    /// Set to stop the fill, or to give a ready spare's space back.
    cancel: AtomicBool,
    /// Set with `cancel` when a disk is full.
    space_needed: AtomicBool,
}

impl Fill {
    fn is_ready(&self) -> bool {
        self.progress.load(Ordering::SeqCst) == READY && !self.cancel.load(Ordering::SeqCst)
    }

    fn is_gone(&self) -> bool {
        self.progress.load(Ordering::SeqCst) == FAILED || self.cancel.load(Ordering::SeqCst)
    }

    /// Stops the fill; the side thread disposes of the file, or this call if
    /// the spare is ready. `space_needed`: a disk is full, and the file's
    /// space is given back at once.
    fn cancel(&self, space_needed: bool) {
        self.space_needed.store(space_needed, Ordering::SeqCst);
        self.cancel.store(true, Ordering::SeqCst);
        if self.progress.load(Ordering::SeqCst) == READY {
            self.dispose();
        }
    }

    /// Hands the file to the deleter (see crate::deleter: removing a file
    /// of a segment's size at once, on a mount with `discard`, stalls the
    /// disk for tens of ms), which gives its space back at once if a disk
    /// is full.
    fn dispose(&self) {
        match crate::deleter::delete(&self.path, Duration::ZERO) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "could not delete a spare segment");
                let _ = std::fs::remove_file(&self.path);
            }
        }
        if self.space_needed.load(Ordering::SeqCst) {
            crate::deleter::hurry();
        }
    }
}

impl Spare {
    pub fn path(&self) -> &Path {
        &self.fill.path
    }

    pub fn is_ready(&self) -> bool {
        self.fill.is_ready()
    }

    fn is_gone(&self) -> bool {
        self.fill.is_gone()
    }

    pub fn discard(self) {
        self.fill.cancel(false);
    }

    /// Stops the fill and hands the file to the deleter, and returns once
    /// the side thread has stopped (or after [`CLOSE_WAIT`]): for a closing log,
    /// whose directory may be deleted next.
    pub async fn remove(self) {
        self.fill.cancel.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + CLOSE_WAIT;
        while self.fill.progress.load(Ordering::SeqCst) == FILLING && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        if self.fill.progress.load(Ordering::SeqCst) == READY {
            self.fill.dispose();
        }
    }
}

/// How long a closing log waits for its spare's side thread to stop (it
/// checks between two writes of [`PREPARE_WRITE_BYTES`]). A thread still
/// running then leaves its file to the next open, which removes it.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Every spare of the process that may still hold disk space.
static FILLS: Mutex<Vec<Weak<Fill>>> = Mutex::new(Vec::new());

/// Gives the space of every spare in the process back to the disk: stops
/// the fills and removes the ready ones. Called when a log meets a full
/// disk, so that no log's data is refused for the sake of another's (or
/// its own) next segment. The logs forget their spares at their next write
/// and make none for their active segment.
pub(super) fn give_back_all() {
    let fills = FILLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for fill in fills.iter().filter_map(Weak::upgrade) {
        if !fill.is_gone() {
            tracing::info!(path = %fill.path.display(), "spare segment given back to a full disk");
        }
        fill.cancel(true);
    }
}

/// When the log's spare is to be given back for idleness (ms since the
/// epoch, by the log's clock), if it has one.
pub(super) fn idle_deadline_ms(state: &State) -> Option<i64> {
    state
        .spare
        .as_ref()
        .map(|_| state.last_sync_ms + SPARE_IDLE_MS as i64)
}

/// Gives the spare of a log that has been idle for [`SPARE_IDLE_MS`] back.
pub(super) fn give_back_idle(state: &mut State) {
    if let Some(spare) = state.spare.take() {
        tracing::info!(path = %spare.path().display(), "spare segment of an idle log given back");
        spare.discard();
    }
}

/// The spare files in `dir`.
pub(super) fn spare_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == SPARE_SUFFIX) {
            files.push(path);
        }
    }
    Ok(files)
}

/// Removes the spare files a previous run left in `dir`.
pub(super) fn remove_leftovers(dir: &Path) -> io::Result<()> {
    spare_files(dir)?
        .iter()
        .try_for_each(|path| crate::deleter::delete(path, Duration::ZERO))
}

/// After a write to the active segment: starts a spare if the segment is
/// filling fast enough and there is none; forgets a spare whose fill
/// failed; asks for a roll when the active segment grows with its writes
/// and the spare is ready.
pub(super) fn after_write(state: &mut State) {
    if !state.config.prepare_segments || state.closing {
        if let Some(spare) = state.spare.take() {
            spare.discard();
        }
        return;
    }
    if let Some(spare) = &state.spare {
        if spare.is_gone() {
            // Not again until the next segment: a file system that cannot
            // take the fill (no O_DIRECT, no space) would refuse each time.
            state.spare = None;
            state.spare_refused_for = state.active().map(|active| active.base);
        } else {
            if spare.is_ready()
                && state
                    .active()
                    .is_some_and(|active| !active.allocated_ahead() && active.written_bytes > 0)
            {
                state.roll_requested = true;
            }
            return;
        }
    }
    let Some(active) = state.active() else {
        return;
    };
    let elapsed_ms = (state.clock.now_ms() - active.created_ms).max(0) as u64;
    let max = state.config.segment_bytes_max;
    if state.spare_refused_for == Some(active.base)
        || !filling_fast(active.written_bytes, max, elapsed_ms)
    {
        return;
    }
    let bytes = max.div_ceil(PAGE_BYTES as u64) * PAGE_BYTES as u64;
    let rate = fill_rate(bytes, ms_to_full(active.written_bytes, max, elapsed_ms));
    let path = state.dir.join(spare_name());
    match start(path, bytes, rate) {
        Ok(spare) => {
            tracing::info!(
                log = %state.dir.display(), bytes, mb_per_s = rate / 1_000_000,
                "preparing a spare segment"
            );
            state.spare = Some(spare)
        }
        Err(error) => {
            tracing::warn!(log = %state.dir.display(), %error, "no spare segment");
            state.spare_refused_for = Some(active.base);
        }
    }
}

/// How long a segment that holds `written` of `max` bytes after
/// `elapsed_ms` takes to fill, at that rate, in ms.
fn ms_to_full(written: u64, max: u64, elapsed_ms: u64) -> u128 {
    u128::from(max.saturating_sub(written)) * u128::from(elapsed_ms) / u128::from(written.max(1))
}

/// Whether a segment that holds `written` of `max` bytes after `elapsed_ms`
/// will be full within [`PREPARE_LEAD_MS`] at that rate.
fn filling_fast(written: u64, max: u64, elapsed_ms: u64) -> bool {
    (PREPARE_AFTER_BYTES..max).contains(&written)
        && ms_to_full(written, max, elapsed_ms) <= u128::from(PREPARE_LEAD_MS)
}

/// Bytes/s to fill a spare of `bytes` at, so that it is done in half the
/// time (`ms_to_full`) the active segment needs.
fn fill_rate(bytes: u64, ms_to_full: u128) -> u64 {
    let rate = u128::from(bytes) * 2 * 1000 / ms_to_full.max(1);
    rate.clamp(
        u128::from(PREPARE_BYTES_PER_S_MIN),
        u128::from(PREPARE_BYTES_PER_S_MAX),
    ) as u64
}

/// A name no other spare of this process has had, so that a cancelled
/// fill still cleaning up never removes a newer spare.
fn spare_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}.{SPARE_SUFFIX}", std::process::id())
}

fn start(path: PathBuf, bytes: u64, bytes_per_s: u64) -> io::Result<Spare> {
    let fill = Arc::new(Fill {
        path,
        progress: AtomicU8::new(FILLING),
        cancel: AtomicBool::new(false),
        space_needed: AtomicBool::new(false),
    });
    let filler = fill.clone();
    std::thread::Builder::new()
        .name("sluice-spare".into())
        .spawn(move || {
            let Fill {
                path,
                progress,
                cancel,
                ..
            } = &*filler;
            match write_zeros(path, bytes, bytes_per_s, cancel) {
                Ok(true) => {
                    // Ready, then the check for a cancel: with `cancel`
                    // doing the same in the other order (both SeqCst), one
                    // of the two sees the other and removes the file.
                    progress.store(READY, Ordering::SeqCst);
                    if cancel.load(Ordering::SeqCst) {
                        filler.dispose();
                    } else {
                        tracing::info!(path = %path.display(), "spare segment ready");
                    }
                    return;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "could not prepare a spare segment");
                }
            }
            filler.dispose();
            progress.store(FAILED, Ordering::SeqCst);
        })?;
    let mut fills = FILLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    fills.retain(|fill| fill.strong_count() > 0);
    fills.push(Arc::downgrade(&fill));
    Ok(Spare { bytes, fill })
}

/// Creates `path` and fills it with `bytes` zeros through O_DIRECT at
/// `bytes_per_s`, then syncs it. Whether it finished: false if cancelled.
fn write_zeros(path: &Path, bytes: u64, bytes_per_s: u64, cancel: &AtomicBool) -> io::Result<bool> {
    crate::side_threads::lower_priority(crate::side_threads::Io::Idle);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    let mut storage = Vec::new();
    let zeros = aligned_zeros(&mut storage, PREPARE_WRITE_BYTES);
    let mut pace = crate::side_threads::Pace::new();
    let mut at = 0u64;
    while at < bytes {
        if cancel.load(Ordering::Acquire) {
            return Ok(false);
        }
        let size = (bytes - at).min(PREPARE_WRITE_BYTES as u64) as usize;
        pace.wait(size as u64, bytes_per_s);
        file.write_all_at(&zeros[..size], at)?;
        at += size as u64;
    }
    file.sync_all()?;
    Ok(true)
}

/// `bytes` page-aligned zeros, as O_DIRECT writes need, in `storage`
/// (allocated a page larger, to find an aligned start in).
fn aligned_zeros(storage: &mut Vec<u8>, bytes: usize) -> &[u8] {
    *storage = vec![0; bytes + PAGE_BYTES];
    let start = storage.as_ptr().align_offset(PAGE_BYTES);
    &storage[start..start + bytes]
}

/// A full disk anywhere in the process gives every spare back, so the
/// tests that meet one (by injected ENOSPC) and the tests that watch a
/// spare must not overlap: the first take [`given_back`], the others
/// [`kept`].
#[cfg(test)]
pub(crate) mod test_turns {
    use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

    static FULL_DISKS: RwLock<()> = RwLock::new(());

    /// Held by a test that watches a spare: no full disk meanwhile.
    pub(crate) fn kept() -> RwLockReadGuard<'static, ()> {
        FULL_DISKS.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Held by a test that makes a full disk: no spare is watched meanwhile.
    pub(crate) fn given_back() -> RwLockWriteGuard<'static, ()> {
        FULL_DISKS.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Waits up to 30 s until `done`; fails the test with `what` if not.
    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_segment_is_prepared_for_once_it_fills_within_the_lead() {
        let max = 1024 * MIB;
        // Too little written to judge.
        assert!(!filling_fast(PREPARE_AFTER_BYTES - 1, max, 1));
        // 100 MiB in 1 s: the rest in ~9 s.
        assert!(filling_fast(100 * MIB, max, 1_000));
        // 100 MiB in 10 s: the rest in ~92 s.
        assert!(!filling_fast(100 * MIB, max, 10_000));
        // Exactly at the lead: (1024 - 512) MiB at 512 MiB per 30 s.
        assert!(filling_fast(512 * MIB, max, PREPARE_LEAD_MS));
        assert!(!filling_fast(512 * MIB, max, PREPARE_LEAD_MS + 1));
        // Full: the roll is next, a spare too late.
        assert!(!filling_fast(max, max, 1));
    }

    #[test]
    fn a_spare_is_filled_in_half_the_time_the_active_segment_needs() {
        // 100 MiB/s: the other 924 MiB in ~9.2 s, the spare in ~4.6 s.
        let to_full = ms_to_full(100 * MIB, 1024 * MIB, 1_000);
        assert_eq!(to_full, 9_240);
        let rate = fill_rate(1024 * MIB, to_full);
        assert!((230_000_000..236_000_000).contains(&rate), "{rate}");
        let to_full = ms_to_full(1000 * MIB, 1024 * MIB, 1_000);
        assert_eq!(fill_rate(1024 * MIB, to_full), PREPARE_BYTES_PER_S_MAX);
        let to_full = ms_to_full(16 * MIB, 1024 * MIB, 30_000);
        assert_eq!(fill_rate(1024 * MIB, to_full), PREPARE_BYTES_PER_S_MIN);
    }

    #[test]
    fn a_spare_is_filled_with_zeros_and_synced() {
        let _turn = test_turns::kept();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(spare_name());
        let bytes = 3 * PREPARE_WRITE_BYTES as u64 + PAGE_BYTES as u64;
        let spare = start(path.clone(), bytes, PREPARE_BYTES_PER_S_MAX).unwrap();
        wait_for("the fill did not finish", || {
            assert!(!spare.is_gone(), "the fill failed");
            spare.is_ready()
        });
        let content = std::fs::read(&path).unwrap();
        assert_eq!(content.len() as u64, bytes);
        assert!(content.iter().all(|&byte| byte == 0));
        spare.discard();
        wait_for("a discarded ready spare stays", || !path.exists());
    }

    #[test]
    fn a_cancelled_fill_removes_its_file_and_leftovers_are_removed() {
        let _turn = test_turns::kept();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(spare_name());
        let spare = start(path.clone(), 2 * 1024 * MIB, PREPARE_BYTES_PER_S_MIN).unwrap();
        let fill = spare.fill.clone();
        spare.discard();
        wait_for("the fill did not stop", || {
            fill.progress.load(Ordering::SeqCst) == FAILED
        });
        assert!(!path.exists(), "a cancelled fill removes its file");

        std::fs::write(dir.path().join(format!("1-2.{SPARE_SUFFIX}")), b"x").unwrap();
        std::fs::write(dir.path().join("00000000000000000000.log"), b"").unwrap();
        remove_leftovers(dir.path()).unwrap();
        wait_for("the leftover stayed", || {
            crate::test_files::names(dir.path()) == ["00000000000000000000.log"]
        });
    }
}
