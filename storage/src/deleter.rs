//! Deleting files without stalling the disk. A file or directory the
//! broker no longer needs (a segment past retention, a removed partition,
//! a spare segment given back) is renamed out of the way at once, and its
//! space given back later, a step at a time, by a thread of its own.
//!
//! Why: on a file system mounted with `discard`, removing a file frees and
//! discards all its blocks in the call. Removing a 3 GB file beside a
//! partition written at 818,000 records/s of 100 B here stalled that
//! partition's fdatasync for 390 ms (ack p99.9 391 ms); giving the same
//! file back 8 MiB at a time at 256 MB/s (truncate and fdatasync each
//! step, then unlink) kept ack p99.9 at 6.1 ms, as with no deletion
//! (bench/RESULTS.md). The removal also no longer blocks the shard's
//! thread.
//!
//! A segment a reader may still have open is deleted after a delay (the
//! topic config `file.delete.delay.ms`, as in Kafka): truncating a file
//! cuts it short under an open descriptor too, which unlinking does not.
//! When a log meets a full disk, [`hurry`] makes the deleter unlink what it
//! holds at once, delayed or not (open descriptors keep their data) and
//! without pacing, until it has nothing left.
//!
//! What a stopped process leaves behind is named `*.deleted`;
//! [`delete_leftovers`] hands it to the deleter at the next start.

use std::{
    collections::VecDeque,
    io,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Condvar, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

/// What a file or directory awaiting deletion is named: `<name>.<unique>.deleted`.
pub const DELETED_SUFFIX: &str = "deleted";

/// Bytes given back to the disk in one step: truncated off the end of the
/// file, then fdatasync'ed (which is when a journaling file system frees
/// and discards them). 32 MiB steps at the same rate let a partition's p99
/// rise to 6–7 ms while they ran; 8 MiB steps did not (bench/RESULTS.md).
pub const DELETE_STEP_BYTES: u64 = 8 * 1024 * 1024;

/// The pace: a 1 GiB segment is given back in about 4 s.
pub const DELETE_BYTES_PER_S: u64 = 256_000_000;

/// The process's deleter.
static DELETER: Deleter = Deleter::new(DELETE_STEP_BYTES, DELETE_BYTES_PER_S);

/// Renames `path` (a file or a directory) to a name of its own ending in
/// `.deleted`, in the same directory, and hands it to the deleter, which
/// removes it once `delay` has passed. Nothing is at `path` when this
/// returns. The caller syncs the directory if the rename must be durable.
pub fn delete(path: &Path, delay: Duration) -> io::Result<()> {
    DELETER.delete(path, delay)
}

/// Hands every `*.deleted` entry of `dir` (left by an earlier process) to
/// the deleter, to be removed without delay: no reader of this process has
/// them open.
pub fn delete_leftovers(dir: &Path) -> io::Result<()> {
    DELETER.delete_leftovers(dir)
}

/// Sets the pace at which the process's deleter gives space back, in
/// bytes/s; 0 removes each file in one call, as soon as its delay is over
/// (for a disk whose discards cost nothing, or a mount without them).
pub fn set_pace(bytes_per_s: u64) {
    DELETER.bytes_per_s.store(bytes_per_s, Ordering::Relaxed);
}

/// A log met a full disk: unlink everything held, delayed or not, at once.
pub fn hurry() {
    DELETER.hurry();
}

/// Waits until everything handed to the deleter before the call is removed,
/// at most `timeout`; whether it is.
pub fn wait_until_done(timeout: Duration) -> bool {
    DELETER.wait_until_done(timeout)
}

struct Doomed {
    path: PathBuf,
    not_before: Instant,
}

struct Queue {
    doomed: VecDeque<Doomed>,
    /// Being removed by the thread, not in `doomed` any more.
    removing: usize,
    /// Unpaced and undelayed until the queue is empty.
    hurry: bool,
    thread_started: bool,
}

/// A queue of paths and the thread that removes them.
pub(crate) struct Deleter {
    step_bytes: u64,
    /// 0: unpaced.
    bytes_per_s: AtomicU64,
    queue: Mutex<Queue>,
    /// Rung when something is queued or hurried.
    work: Condvar,
    /// Rung when the queue empties.
    idle: Condvar,
}

impl Deleter {
    pub(crate) const fn new(step_bytes: u64, bytes_per_s: u64) -> Deleter {
        Deleter {
            step_bytes,
            bytes_per_s: AtomicU64::new(bytes_per_s),
            queue: Mutex::new(Queue {
                doomed: VecDeque::new(),
                removing: 0,
                hurry: false,
                thread_started: false,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn delete(&'static self, path: &Path, delay: Duration) -> io::Result<()> {
        let renamed = deleted_name(path)?;
        std::fs::rename(path, &renamed)?;
        self.push(renamed, delay);
        Ok(())
    }

    pub(crate) fn delete_leftovers(&'static self, dir: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == DELETED_SUFFIX) {
                self.push(path, Duration::ZERO);
            }
        }
        Ok(())
    }

    fn push(&'static self, path: PathBuf, delay: Duration) {
        let mut queue = self.lock();
        queue.doomed.push_back(Doomed {
            path,
            not_before: Instant::now() + delay,
        });
        if !queue.thread_started {
            let spawned = std::thread::Builder::new()
                .name("sluice-deleter".into())
                .spawn(move || self.run());
            match spawned {
                Ok(_) => queue.thread_started = true,
                Err(error) => {
                    // No thread: remove here, all at once, rather than keep
                    // the space.
                    tracing::warn!(%error, "no deleter thread; removing at once");
                    for doomed in std::mem::take(&mut queue.doomed) {
                        remove_at_once(&doomed.path);
                    }
                    return;
                }
            }
        }
        self.work.notify_all();
    }

    pub(crate) fn hurry(&self) {
        let mut queue = self.lock();
        if !queue.doomed.is_empty() || queue.removing > 0 {
            queue.hurry = true;
            self.work.notify_all();
        }
    }

    pub(crate) fn wait_until_done(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.lock();
        while !queue.doomed.is_empty() || queue.removing > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            queue = self
                .idle
                .wait_timeout(queue, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn run(&self) {
        crate::side_threads::lower_priority(crate::side_threads::Io::BestEffortLowest);
        let mut pace = crate::side_threads::Pace::new();
        let mut queue = self.lock();
        loop {
            if queue.doomed.is_empty() && queue.removing == 0 {
                queue.hurry = false;
                self.idle.notify_all();
            }
            let now = Instant::now();
            let due = queue
                .doomed
                .iter()
                .position(|doomed| queue.hurry || doomed.not_before <= now);
            let Some(due) = due else {
                let next = queue.doomed.iter().map(|doomed| doomed.not_before).min();
                queue = match next {
                    Some(next) => {
                        self.work
                            .wait_timeout(queue, next.saturating_duration_since(now))
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    None => self
                        .work
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner),
                };
                continue;
            };
            let doomed = queue.doomed.remove(due).expect("a due entry");
            queue.removing += 1;
            let at_once = queue.hurry || self.bytes_per_s.load(Ordering::Relaxed) == 0;
            drop(queue);
            if at_once {
                remove_at_once(&doomed.path);
            } else if let Err(error) = self.remove_paced(&doomed.path, &mut pace) {
                tracing::warn!(path = %doomed.path.display(), %error, "could not delete");
                remove_at_once(&doomed.path);
            }
            queue = self.lock();
            queue.removing -= 1;
        }
    }

    /// Removes `path`, a file or a directory tree, giving its files' space
    /// back a step at a time at the deleter's pace; at once once hurried.
    fn remove_paced(&self, path: &Path, pace: &mut crate::side_threads::Pace) -> io::Result<()> {
        let metadata = match std::fs::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        if metadata.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.remove_paced(&entry?.path(), pace)?;
            }
            return ignore_not_found(std::fs::remove_dir(path));
        }
        if metadata.is_file() {
            let file = std::fs::OpenOptions::new().write(true).open(path)?;
            let mut len = metadata.len();
            while len > self.step_bytes && !self.lock().hurry {
                let bytes_per_s = self.bytes_per_s.load(Ordering::Relaxed);
                if bytes_per_s == 0 {
                    break;
                }
                pace.wait(self.step_bytes, bytes_per_s);
                len -= self.step_bytes;
                file.set_len(len)?;
                file.sync_data()?;
            }
        }
        ignore_not_found(std::fs::remove_file(path))
    }
}

fn ignore_not_found(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_at_once(path: &Path) {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) => Err(error),
    };
    if let Err(error) = ignore_not_found(removed) {
        tracing::warn!(path = %path.display(), %error, "could not delete");
    }
}

/// `<name>.<pid>-<n>.deleted` beside `path`: a name no other deletion of
/// this process has used, so that two deletions of the same name (a
/// directory especially, which a rename cannot replace) never meet.
fn deleted_name(path: &Path) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("nothing to delete at {}", path.display()),
        )
    })?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut renamed = name.to_os_string();
    renamed.push(format!(".{}-{n}.{DELETED_SUFFIX}", std::process::id()));
    Ok(path.with_file_name(renamed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_files::names;

    const MIB: u64 = 1024 * 1024;

    /// A deleter of its own for each test, leaked to get the 'static its
    /// thread needs.
    fn deleter(step_bytes: u64, bytes_per_s: u64) -> &'static Deleter {
        Box::leak(Box::new(Deleter::new(step_bytes, bytes_per_s)))
    }

    fn file_of(path: &Path, bytes: u64) {
        let file = std::fs::File::create(path).unwrap();
        file.set_len(bytes).unwrap();
    }

    #[test]
    fn a_file_is_renamed_at_once_and_given_back_a_step_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        file_of(&path, 4 * MIB);
        // 1 MiB steps at 4 MiB/s: about a second for the file.
        let deleter = deleter(MIB, 4 * MIB);
        let began = Instant::now();
        deleter.delete(&path, Duration::ZERO).unwrap();
        assert!(!path.exists(), "nothing is left at the old name");
        let renamed = names(dir.path());
        assert_eq!(renamed.len(), 1);
        assert!(renamed[0].starts_with("00000000000000000000.log."));
        assert!(renamed[0].ends_with(".deleted"));
        let renamed = dir.path().join(&renamed[0]);
        // Watch it shrink: more than one length seen on the way down.
        let mut lengths = Vec::new();
        while let Ok(metadata) = std::fs::metadata(&renamed) {
            if lengths.last() != Some(&metadata.len()) {
                lengths.push(metadata.len());
            }
            assert!(began.elapsed() < Duration::from_secs(10), "{lengths:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(deleter.wait_until_done(Duration::from_secs(10)));
        // At least two lengths short of the whole file (a watcher starved
        // on a loaded machine may miss a step, never all of them).
        assert!(
            lengths.iter().filter(|length| **length < 4 * MIB).count() >= 2,
            "given back in steps: {lengths:?}"
        );
        assert!(lengths.windows(2).all(|pair| pair[1] < pair[0]));
        assert!(
            began.elapsed() >= Duration::from_millis(500),
            "paced: {:?}",
            began.elapsed()
        );
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_directory_tree_is_removed_after_its_delay() {
        let dir = tempfile::tempdir().unwrap();
        let partition = dir.path().join("0");
        std::fs::create_dir_all(partition.join("nested")).unwrap();
        file_of(&partition.join("a.log"), 3 * MIB);
        file_of(&partition.join("nested").join("b.index"), 100);
        let deleter = deleter(MIB, 1024 * MIB);
        let delay = Duration::from_millis(1500);
        let began = Instant::now();
        deleter.delete(&partition, delay).unwrap();
        assert!(!partition.exists());
        std::thread::sleep(Duration::from_millis(100));
        let pending = names(dir.path());
        assert_eq!(pending.len(), 1, "kept through its delay: {pending:?}");
        let pending = dir.path().join(&pending[0]);
        assert_eq!(
            std::fs::metadata(pending.join("a.log")).unwrap().len(),
            3 * MIB,
            "untouched through its delay"
        );
        assert!(deleter.wait_until_done(Duration::from_secs(10)));
        assert!(began.elapsed() >= delay);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn hurried_it_unlinks_at_once_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let slow = dir.path().join("slow.log");
        let delayed = dir.path().join("delayed.log");
        file_of(&slow, 64 * MIB);
        file_of(&delayed, MIB);
        // 1 MiB/s: the slow file would take a minute, the delayed one an hour.
        let deleter = deleter(MIB, MIB);
        deleter.delete(&slow, Duration::ZERO).unwrap();
        deleter.delete(&delayed, Duration::from_secs(3600)).unwrap();
        assert!(!deleter.wait_until_done(Duration::from_millis(200)));
        deleter.hurry();
        assert!(deleter.wait_until_done(Duration::from_secs(10)));
        assert!(names(dir.path()).is_empty());
        // Hurry lasts until the queue is empty, not after.
        assert!(!deleter.lock().hurry);
    }

    #[test]
    fn leftovers_of_an_earlier_process_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        file_of(
            &dir.path().join("00000000000000000007.log.1-2.deleted"),
            MIB,
        );
        std::fs::create_dir(dir.path().join("3.1-5.deleted")).unwrap();
        file_of(&dir.path().join("3.1-5.deleted").join("x.log"), 10);
        file_of(&dir.path().join("00000000000000000009.log"), 10);
        let deleter = deleter(MIB, 1024 * MIB);
        deleter.delete_leftovers(dir.path()).unwrap();
        assert!(deleter.wait_until_done(Duration::from_secs(10)));
        assert_eq!(names(dir.path()), ["00000000000000000009.log"]);
    }

    #[test]
    fn unpaced_a_file_is_removed_in_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        file_of(&path, 256 * MIB);
        // At 1 MiB/s this would take minutes.
        let deleter = deleter(MIB, MIB);
        deleter.bytes_per_s.store(0, Ordering::Relaxed);
        deleter.delete(&path, Duration::ZERO).unwrap();
        // It may be gone already; while it is not, it is whole.
        if let Some(name) = names(dir.path()).first() {
            let renamed = dir.path().join(name);
            while let Ok(metadata) = std::fs::metadata(&renamed) {
                assert_eq!(metadata.len(), 256 * MIB, "not truncated in steps");
            }
        }
        assert!(deleter.wait_until_done(Duration::from_secs(10)));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn deleting_what_is_not_there_fails_and_queues_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let deleter = deleter(MIB, MIB);
        let error = deleter
            .delete(&dir.path().join("absent"), Duration::ZERO)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(deleter.wait_until_done(Duration::ZERO));
    }
}
