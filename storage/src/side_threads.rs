//! Side threads: the plain OS threads that work beside a shard, off its
//! executor (the spare segment fill in `log::spare`, the file deleter in
//! [`crate::deleter`]). What they share: the lowest priorities, so that
//! they run in the time the shard leaves, and a pace, so that their I/O
//! leaves the disk's queue short for the shard's.

use std::time::{Duration, Instant};

/// The I/O class a side thread takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Io {
    /// Served only when the disk has nothing else to do (where the I/O
    /// scheduler honours classes): for work that may wait indefinitely.
    Idle,
    /// The lowest level of the normal class: for work that must finish
    /// under constant load (giving space back).
    BestEffortLowest,
}

/// The calling thread yields its core to anything else (nice 19) and takes
/// `io` for its I/O. Best effort: a system that refuses leaves the thread
/// as it was, and its work paced all the same.
pub(crate) fn lower_priority(io: Io) {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_BE: libc::c_int = 2;
    const IOPRIO_CLASS_IDLE: libc::c_int = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
    const LOWEST_LEVEL: libc::c_int = 7;
    let ioprio = match io {
        Io::Idle => IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        Io::BestEffortLowest => (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | LOWEST_LEVEL,
    };
    // SAFETY: both calls take plain integers and act on the calling thread
    // (who = 0); they have no memory effects.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio);
    }
}

/// Sleeps so that the bytes a side thread writes or gives back keep to a rate.
pub(crate) struct Pace {
    next: Instant,
}

impl Pace {
    pub(crate) fn new() -> Pace {
        Pace {
            next: Instant::now(),
        }
    }

    /// Waits for the turn of `bytes` more at `bytes_per_s` (not 0). Time
    /// spent idle is not saved up.
    pub(crate) fn wait(&mut self, bytes: u64, bytes_per_s: u64) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else {
            self.next = now;
        }
        self.next += Duration::from_secs_f64(bytes as f64 / bytes_per_s as f64);
    }
}
