//! Tests of the log on real files, in temporary directories, each on its own
//! glommio executor.

use std::{cell::Cell, future::Future, rc::Rc, time::Duration};

use super::*;
use crate::batch::BatchBuilder;

pub(crate) fn run<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(test)
        .expect("executor starts")
        .join()
        .expect("test body ran");
}

/// A batch of `records` records whose values say which batch they are in.
pub(crate) fn batch(tag: u64, records: usize, value_bytes: usize, timestamp: i64) -> Batch {
    let mut builder = BatchBuilder::default();
    for i in 0..records {
        let mut value = format!("{tag}:{i}:").into_bytes();
        value.resize(value_bytes.max(value.len()), b'x');
        builder.push(timestamp, Some(&tag.to_le_bytes()), &value, &[]);
    }
    builder.finish()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes_max: 64 * 1024,
        index_interval_bytes: 1024,
        tail_cache_bytes_max: 16 * 1024,
        ..LogConfig::default()
    }
}

struct ManualClock(Cell<i64>);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

#[test]
fn appends_read_back_at_every_offset_across_rolls_and_reopen() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        let mut expected = Vec::new();
        for tag in 0..400u64 {
            let records = 1 + (tag as usize % 7);
            let appended = log
                .append(batch(
                    tag,
                    records,
                    100 + (tag as usize * 37) % 900,
                    tag as i64,
                ))
                .await
                .unwrap();
            assert_eq!(
                appended.last_offset.0 - appended.base_offset.0 + 1,
                records as u64
            );
            for offset in appended.base_offset.0..=appended.last_offset.0 {
                expected.push((offset, tag));
            }
        }
        assert!(
            log.segment_count() > 10,
            "only {} segments",
            log.segment_count()
        );
        check_every_offset(&log, &expected).await;
        log.close().await.unwrap();

        let log = Log::open(dir.path(), small_segments()).await.unwrap();
        assert_eq!(log.end_offset(), Offset(expected.len() as u64));
        check_every_offset(&log, &expected).await;
        // Appends continue where the log ended.
        let appended = log.append(batch(999, 2, 10, 999)).await.unwrap();
        assert_eq!(appended.base_offset, Offset(expected.len() as u64));
        log.close().await.unwrap();
    });
}

async fn check_every_offset(log: &Log, expected: &[(u64, u64)]) {
    for &(offset, tag) in expected {
        let batches = log.read(Offset(offset), 1).await.unwrap();
        assert_eq!(batches.len(), 1, "one batch at least at {offset}");
        let batch = &batches[0];
        assert!(batch.base_offset().0 <= offset && offset <= batch.last_offset().0);
        let record = batch
            .records()
            .unwrap()
            .get((offset - batch.base_offset().0) as usize)
            .unwrap();
        assert!(
            record.value().starts_with(format!("{tag}:").as_bytes()),
            "offset {offset} holds the wrong record"
        );
    }
    let end = Offset(expected.len() as u64);
    assert!(log.read(end, 1 << 20).await.unwrap().is_empty());
    assert!(matches!(
        log.read(end.next(), 1 << 20).await,
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}
