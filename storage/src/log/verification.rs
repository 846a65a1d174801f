//! KIP-890's verification guards: how a partition leader appends a
//! transactional batch only into a transaction its coordinator knows, and
//! never one that ended while it was asking.
//!
//! A transactional batch of a producer with a transaction open here (at the
//! batch's epoch) belongs to that transaction and is appended. Otherwise
//! the caller takes a guard ([`super::Log::transaction_guard`]), asks the
//! producer's transaction coordinator (to verify that the partition is in
//! its ongoing transaction, or, KIP-890 part 2, to add it), then appends
//! with the guard. The guard still holds only if no marker of that
//! producer was appended meanwhile: a transaction that ended between the
//! question and the append makes the batch a late write, refused
//! [`super::AppendError::NotInTransaction`].

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
};

use super::producers::PRODUCERS_MAX;

/// Guards are numbered across every log of the process, so that a guard
/// handed out by one log (a partition's earlier instance) never holds at
/// another.
static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);

/// The guards handed out on one partition, by producer id.
#[derive(Debug, Default)]
pub(crate) struct Verifications {
    guards: HashMap<i64, u64>,
}

impl Verifications {
    /// The guard of `producer_id`'s verification in progress: the one
    /// already handed out, so that concurrent requests of one producer do
    /// not undo each other's, or a new one. At most [`PRODUCERS_MAX`] are
    /// kept: past it one is dropped, and its append is refused (it asks
    /// again).
    pub fn guard(&mut self, producer_id: i64) -> u64 {
        if let Some(&guard) = self.guards.get(&producer_id) {
            return guard;
        }
        if self.guards.len() >= PRODUCERS_MAX {
            let dropped = *self.guards.keys().next().expect("a full table has a key");
            self.guards.remove(&dropped);
        }
        let guard = NEXT_GUARD.fetch_add(1, Ordering::Relaxed);
        self.guards.insert(producer_id, guard);
        guard
    }

    /// Whether `guard` is `producer_id`'s current one.
    pub fn holds(&self, producer_id: i64, guard: u64) -> bool {
        self.guards.get(&producer_id) == Some(&guard)
    }

    /// `producer_id`'s transaction opened or ended here: its guard is done
    /// with (after an end, a guard from before must not hold).
    pub fn forget(&mut self, producer_id: i64) {
        self.guards.remove(&producer_id);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.guards.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_holds_until_its_producer_is_forgotten_and_never_elsewhere() {
        let mut here = Verifications::default();
        let mut there = Verifications::default();
        let guard = here.guard(7);
        assert_eq!(here.guard(7), guard, "one producer, one guard");
        assert!(here.holds(7, guard));
        assert!(!here.holds(8, guard));
        let other = there.guard(7);
        assert_ne!(other, guard);
        assert!(!there.holds(7, guard));
        here.forget(7);
        assert!(!here.holds(7, guard));
        assert_ne!(here.guard(7), guard, "a new verification, a new guard");
    }

    #[test]
    fn the_guards_kept_are_bounded() {
        let mut verifications = Verifications::default();
        for producer_id in 0..PRODUCERS_MAX as i64 + 10 {
            verifications.guard(producer_id);
        }
        assert_eq!(verifications.len(), PRODUCERS_MAX);
    }
}
