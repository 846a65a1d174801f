//! Recovery on open, against real files damaged the way crashes and disks
//! damage them: a torn tail, zeroed pages, a flipped byte, lost indexes.

mod common;

use common::run;

use std::{
    fs::OpenOptions,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use sluice_storage::{
    batch::{Batch, BatchBuilder},
    log::{Log, LogConfig, OpenError, ReadError},
    Offset,
};

fn batch(tag: u64, value_bytes: usize) -> Batch {
    let mut builder = BatchBuilder::default();
    for i in 0..3u64 {
        let value = vec![(tag + i) as u8; value_bytes];
        builder.push(tag as i64, Some(&tag.to_le_bytes()), &value, &[]);
    }
    builder.finish()
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 64 * 1024,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

/// Writes `count` batches of about `value_bytes * 3` bytes and returns each
/// one's (base offset, byte length), in order.
async fn fill(dir: &Path, count: u64, value_bytes: usize) -> Vec<(Offset, usize)> {
    let log = Log::open(dir, config()).await.unwrap();
    let mut written = Vec::new();
    for tag in 0..count {
        let batch = batch(tag, value_bytes);
        let length = batch.len();
        let appended = log.append(batch).await.unwrap();
        written.push((appended.base_offset, length));
    }
    log.close().await.unwrap();
    written
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

/// Bytes of real data in the active segment: the sum of its batches.
fn active_data_bytes(dir: &Path, written: &[(Offset, usize)]) -> (PathBuf, u64, Offset) {
    let active = segment_files(dir).pop().unwrap();
    let base: u64 = active
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = written
        .iter()
        .filter(|(offset, _)| offset.0 >= base)
        .map(|(_, length)| *length as u64)
        .sum();
    (active, bytes, Offset(base))
}

async fn read_all(log: &Log) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    loop {
        let batches = log.read(offset, 1 << 20).await.unwrap();
        let Some(last) = batches.last() else {
            return out;
        };
        offset = last.last_offset().next();
        out.extend(batches);
    }
}

#[test]
fn a_batch_cut_short_at_the_end_is_truncated_to_the_last_whole_batch() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let written = fill(dir.path(), 100, 300).await;
        let (active, data_bytes, _) = active_data_bytes(dir.path(), &written);
        let last_length = written.last().unwrap().1 as u64;
        // Cut inside the last batch: everything after its 10th byte is gone.
        let cut = data_bytes - last_length + 10;
        let file = OpenOptions::new().write(true).open(&active).unwrap();
        file.set_len(cut).unwrap();
        drop(file);

        let log = Log::open(dir.path(), config()).await.unwrap();
        let last_whole = written[written.len() - 2];
        assert_eq!(log.end_offset(), Offset(last_whole.0 .0 + 3));
        let batches = read_all(&log).await;
        assert_eq!(batches.len(), written.len() - 1);
        // The log goes on from there.
        let appended = log.append(batch(500, 300)).await.unwrap();
        assert_eq!(appended.base_offset, Offset(last_whole.0 .0 + 3));
        log.close().await.unwrap();
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(read_all(&log).await.len(), written.len());
    });
}

#[test]
fn zeroed_last_page_ends_the_log_at_the_last_whole_batch() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let written = fill(dir.path(), 100, 300).await;
        let (active, data_bytes, base) = active_data_bytes(dir.path(), &written);
        let zero_from = data_bytes.saturating_sub(4096);
        let file = OpenOptions::new().write(true).open(&active).unwrap();
        file.write_all_at(&vec![0u8; (data_bytes - zero_from) as usize], zero_from)
            .unwrap();
        file.sync_all().unwrap();
        drop(file);

        // The expected end: the last batch that ends at or before zero_from.
        let mut position = 0u64;
        let mut expected_end = base;
        for (offset, length) in written.iter().filter(|(offset, _)| *offset >= base) {
            if position + *length as u64 > zero_from {
                break;
            }
            position += *length as u64;
            expected_end = Offset(offset.0 + 3);
        }
        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.end_offset(), expected_end);
        let batches = read_all(&log).await;
        assert_eq!(batches.last().unwrap().last_offset().next(), expected_end);
        for batch in &batches {
            let tag = batch.header().first_timestamp as u64;
            assert_eq!(
                batch.records().unwrap().get(0).unwrap().value()[0],
                tag as u8
            );
        }
    });
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_corruption_and_nothing_is_removed() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let written = fill(dir.path(), 200, 300).await;
        let files = segment_files(dir.path());
        assert!(files.len() >= 3, "need sealed segments");
        let sealed = &files[1];
        let sizes_before: Vec<u64> = files.iter().map(|f| f.metadata().unwrap().len()).collect();
        let base: u64 = sealed
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // Flip a byte inside the 5th batch of the segment.
        let mut position = 0u64;
        let mut victim = None;
        for (i, (offset, length)) in written.iter().filter(|(o, _)| o.0 >= base).enumerate() {
            if i == 4 {
                victim = Some((*offset, position + 100));
                break;
            }
            position += *length as u64;
        }
        let (victim_offset, flip_at) = victim.unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(sealed)
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, flip_at).unwrap();
        file.write_all_at(&[byte[0] ^ 0x40], flip_at).unwrap();
        file.sync_all().unwrap();
        drop(file);

        // With its sealed index intact, the log opens; reading the bad batch
        // reports corruption with its place, and everything else reads.
        let log = Log::open(dir.path(), config()).await.unwrap();
        match log.read(victim_offset, 1).await {
            Err(ReadError::Corruption {
                segment, position, ..
            }) => {
                assert_eq!(&segment, sealed);
                assert_eq!(position, flip_at - 100);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        let after = Offset(victim_offset.0 + 3);
        assert_eq!(log.read(after, 1).await.unwrap()[0].base_offset(), after);
        assert!(matches!(
            log.verify().await,
            Err(ReadError::Corruption { .. })
        ));
        assert_eq!(log.end_offset(), Offset(600));
        log.close().await.unwrap();

        // Without its index, the scan that rebuilds it reports the same.
        std::fs::remove_file(sealed.with_extension("index")).unwrap();
        match Log::open(dir.path(), config()).await {
            Err(OpenError::Corruption {
                segment, position, ..
            }) => {
                assert_eq!(&segment, sealed);
                assert_eq!(position, flip_at - 100);
            }
            Err(other) => panic!("expected corruption, got {other}"),
            Ok(_) => panic!("a corrupt sealed segment opened silently"),
        }
        let sizes_after: Vec<u64> = files.iter().map(|f| f.metadata().unwrap().len()).collect();
        assert_eq!(
            sizes_before, sizes_after,
            "nothing was truncated or removed"
        );
        assert_eq!(segment_files(dir.path()), files);
    });
}

#[test]
fn a_bad_batch_followed_by_good_ones_in_the_active_segment_is_corruption() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let written = fill(dir.path(), 100, 300).await;
        let (active, data_bytes, base) = active_data_bytes(dir.path(), &written);
        let first_length = written.iter().find(|(o, _)| *o >= base).unwrap().1 as u64;
        assert!(
            data_bytes > 3 * first_length,
            "need batches after the bad one"
        );
        // Damage the first batch of the active segment.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&active)
            .unwrap();
        file.write_all_at(&[0xee; 8], 80).unwrap();
        file.sync_all().unwrap();
        let size_before = file.metadata().unwrap().len();
        drop(file);
        std::fs::remove_file(active.with_extension("index")).ok();
        match Log::open(dir.path(), config()).await {
            Err(OpenError::Corruption {
                segment, position, ..
            }) => {
                assert_eq!(segment, active);
                assert_eq!(position, 0);
            }
            Err(other) => panic!("expected corruption, got {other}"),
            Ok(_) => panic!("corruption in the active segment was truncated away"),
        }
        assert_eq!(active.metadata().unwrap().len(), size_before);
    });
}

#[test]
fn missing_and_stale_indexes_are_rebuilt() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let written = fill(dir.path(), 300, 200).await;
        let files = segment_files(dir.path());
        // Remove one sealed index, scribble over another, and leave the
        // active segment's hints pointing nowhere.
        std::fs::remove_file(files[0].with_extension("index")).unwrap();
        std::fs::remove_file(files[0].with_extension("timeindex")).unwrap();
        std::fs::write(files[1].with_extension("index"), [7u8; 100]).unwrap();
        std::fs::write(files.last().unwrap().with_extension("index"), [9u8; 64]).unwrap();

        let log = Log::open(dir.path(), config()).await.unwrap();
        assert_eq!(log.end_offset(), Offset(written.len() as u64 * 3));
        for (offset, _) in &written {
            for delta in 0..3 {
                let at = Offset(offset.0 + delta);
                let batches = log.read(at, 1).await.unwrap();
                assert_eq!(batches[0].base_offset(), *offset);
            }
        }
        assert_eq!(
            log.offset_for_timestamp(150).await.unwrap(),
            Some(Offset(450))
        );
        log.close().await.unwrap();
        // Rebuilt indexes were written back with their footers.
        assert!(files[0].with_extension("index").exists());
        assert_ne!(
            std::fs::read(files[1].with_extension("index")).unwrap(),
            vec![7u8; 100]
        );
    });
}
