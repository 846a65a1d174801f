//! Injected I/O faults, for tests of what the log does when the disk fails.
//!
//! A log opened with an [`IoFaults`] consults it before each write, fdatasync
//! and preallocation of its segment files, and fails that call with the
//! given errno instead of doing it. Production logs have none.

use std::{cell::Cell, io};

pub use super::cleaner_swap::SwapStep;

#[derive(Debug, Default)]
pub struct IoFaults {
    fail_writes_with: Cell<Option<i32>>,
    fail_syncs_with: Cell<Option<i32>>,
    fail_allocations_with: Cell<Option<i32>>,
    writes: Cell<u64>,
    syncs: Cell<u64>,
    fail_swap_at: Cell<Option<SwapStep>>,
}

impl IoFaults {
    /// Every write fails with `errno` until cleared with `None`.
    pub fn fail_writes(&self, errno: Option<i32>) {
        self.fail_writes_with.set(errno);
    }

    /// Every fdatasync fails with `errno` until cleared with `None`.
    pub fn fail_syncs(&self, errno: Option<i32>) {
        self.fail_syncs_with.set(errno);
    }

    /// Every preallocation fails with `errno` until cleared with `None`.
    pub fn fail_allocations(&self, errno: Option<i32>) {
        self.fail_allocations_with.set(errno);
    }

    /// The swap of a cleaned segment fails (with EIO) at `step`, until
    /// cleared with `None`: what the log is left with is what a crash there
    /// leaves on disk.
    pub fn fail_swap_at(&self, step: Option<SwapStep>) {
        self.fail_swap_at.set(step);
    }

    /// Writes issued so far (faulted ones included).
    pub fn writes(&self) -> u64 {
        self.writes.get()
    }

    /// fdatasyncs issued so far (faulted ones included).
    pub fn syncs(&self) -> u64 {
        self.syncs.get()
    }

    pub(crate) fn before_write(&self, _bytes: usize) -> io::Result<()> {
        self.writes.set(self.writes.get() + 1);
        fail(self.fail_writes_with.get())
    }

    pub(crate) fn before_sync(&self) -> io::Result<()> {
        self.syncs.set(self.syncs.get() + 1);
        fail(self.fail_syncs_with.get())
    }

    pub(crate) fn before_swap_step(&self, step: SwapStep) -> io::Result<()> {
        if self.fail_swap_at.get() == Some(step) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    pub(crate) fn before_allocate(&self) -> io::Result<()> {
        fail(self.fail_allocations_with.get())
    }
}

fn fail(errno: Option<i32>) -> io::Result<()> {
    match errno {
        Some(errno) => Err(io::Error::from_raw_os_error(errno)),
        None => Ok(()),
    }
}
