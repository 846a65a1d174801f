//! What a `read_committed` reader keeps of the batches it read: no marker,
//! and no batch of an aborted transaction.
//!
//! A Kafka consumer does this itself, from the batches and the list of
//! aborted transactions its fetch answers; a native reader cannot (its
//! fetch carries no such list), so its partition's owner does it for it
//! with [`committed`], by the Kafka consumer's rules, before the batches
//! are converted.

use std::collections::HashSet;

use sluice_storage::{
    batch::{Batch, Marker},
    log::AbortedTransaction,
};

/// The batches of `batches` (read in offset order from one partition) that
/// a `read_committed` reader is given: every batch but the markers and the
/// batches of the transactions in `aborted`, what the log lists for the
/// range read (`Log::aborted_transactions`).
///
/// Kafka's consumer rules (its fetcher's): an aborted transaction of
/// producer P counts from its first offset on, so that a transactional
/// batch of P that ends at or after it is dropped, until P's abort marker,
/// after which P's batches open its next transaction. A batch outside any
/// transaction is never dropped.
pub fn committed(batches: Vec<Batch>, aborted: &[AbortedTransaction]) -> Vec<Batch> {
    // The usual read, of no transaction: handed back as it is.
    if !batches.iter().any(Batch::is_transactional) {
        return batches;
    }
    // The log lists them by marker; they start counting by first offset.
    let mut by_first: Vec<&AbortedTransaction> = aborted.iter().collect();
    by_first.sort_by_key(|aborted| aborted.first_offset);
    let mut by_first = by_first.into_iter().peekable();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut kept = Vec::with_capacity(batches.len());
    for batch in batches {
        // Markers are transactional too: one flag says whether to look.
        if !batch.is_transactional() {
            kept.push(batch);
            continue;
        }
        let last_offset = batch.last_offset();
        while let Some(started) = by_first.next_if(|next| next.first_offset <= last_offset) {
            aborting.insert(started.producer_id);
        }
        let header = batch.header();
        match header.marker() {
            Some(Marker::Abort) => {
                aborting.remove(&header.producer_id);
            }
            Some(Marker::Commit) => {}
            None if aborting.contains(&header.producer_id) => {}
            None => kept.push(batch),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use sluice_storage::Offset;

    use super::*;
    use crate::partition::test_batches::{marker, plain, transactional};

    fn aborted(producer_id: i64, first: u64, marker: u64) -> AbortedTransaction {
        AbortedTransaction {
            producer_id,
            first_offset: Offset(first),
            last_offset: Offset(marker),
            last_stable_offset: Offset(marker + 1),
        }
    }

    fn bases(batches: &[Batch]) -> Vec<u64> {
        batches.iter().map(|batch| batch.base_offset().0).collect()
    }

    #[test]
    fn markers_and_aborted_batches_are_dropped_and_the_rest_kept_in_order() {
        // Producer 1 aborts [1, 3] at 4 then commits [5] at 7; producer 2
        // commits [2] at 6, interleaved; plain batches at 0 and 8.
        let batches = vec![
            plain(0),
            transactional(1, 1),
            transactional(2, 2),
            transactional(1, 3),
            marker(1, Marker::Abort, 4),
            transactional(1, 5),
            marker(2, Marker::Commit, 6),
            marker(1, Marker::Commit, 7),
            plain(8),
        ];
        let kept = committed(batches, &[aborted(1, 1, 4)]);
        assert_eq!(bases(&kept), [0, 2, 5, 8]);
    }

    #[test]
    fn an_abort_counts_from_its_first_offset_not_from_the_read() {
        // The read starts inside producer 3's aborted transaction, and
        // before producer 4's, which opens at 12 only.
        let batches = vec![
            transactional(4, 10),
            transactional(3, 11),
            marker(4, Marker::Commit, 12),
            transactional(4, 13),
            marker(3, Marker::Abort, 14),
            marker(4, Marker::Abort, 15),
        ];
        let kept = committed(batches, &[aborted(3, 5, 14), aborted(4, 13, 15)]);
        assert_eq!(bases(&kept), [10], "producer 4's committed batch only");
    }

    #[test]
    fn without_aborts_only_the_markers_go() {
        let batches = vec![transactional(1, 0), marker(1, Marker::Commit, 1), plain(2)];
        assert_eq!(bases(&committed(batches, &[])), [0, 2]);
    }
}
