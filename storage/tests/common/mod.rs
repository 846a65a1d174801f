//! What the log's integration tests share.

#![allow(dead_code)]

#[macro_use]
pub mod harness;

use std::future::Future;

use rand::{rngs::StdRng, SeedableRng};
use sluice_storage::batch::{Batch, BatchBuilder};

/// Copies a log's directory while the log is open, as a crash would leave
/// it: everything appended is durable, nothing written on close is there.
pub fn copy_as_crashed(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// Runs `body` on a new glommio executor (a log lives on one) and returns
/// what it returns; a panic inside fails the test.
pub fn run<T, F, Fut>(body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(body)
        .expect("executor starts")
        .join()
        .expect("executor body ran")
}

/// Set to a seed printed by a test to make the same random choices again.
pub const SEED_ENV: &str = "SLUICE_TEST_SEED";

/// The random choices of `test` (kill moments and the like): from the seed
/// in [`SEED_ENV`] if it is set, else from a new one; printed either way,
/// so that a failure can be replayed.
pub fn seeded_rng(test: &str) -> StdRng {
    let seed = match std::env::var(SEED_ENV) {
        Ok(seed) => seed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={seed:?} is not a u64")),
        Err(_) => rand::random(),
    };
    println!("{test}: seed {seed} ({SEED_ENV}={seed} replays it)");
    StdRng::seed_from_u64(seed)
}

/// Record `r` of the batch of tag `t` is stamped `TIMESTAMP_BASE_MS + 10 * t + r`.
pub const TIMESTAMP_BASE_MS: i64 = 1_700_000_000_000;

/// A batch of `records` records whose keys are `tag` and whose values
/// (`tag:record:` padded to `value_bytes`) say which record they are; of
/// the idempotent producer `(id, epoch, base sequence)` if given.
pub fn tagged_batch(
    tag: u64,
    records: u64,
    value_bytes: usize,
    producer: Option<(i64, i16, i32)>,
) -> Batch {
    let mut builder = BatchBuilder::default();
    if let Some((id, epoch, sequence)) = producer {
        builder = builder.producer(id, epoch, sequence);
    }
    for record in 0..records {
        let mut value = format!("{tag}:{record}:").into_bytes();
        value.resize(value_bytes, b'v');
        let timestamp = TIMESTAMP_BASE_MS + 10 * tag as i64 + record as i64;
        builder.push(timestamp, Some(&tag.to_le_bytes()), &value, &[]);
    }
    builder.finish()
}

/// The tag of a native batch [`tagged_batch`] made, from its first record's
/// key.
pub fn tag_of(batch: &Batch) -> u64 {
    let records = batch.records().expect("a native batch");
    let key = records
        .iter()
        .next()
        .expect("a record")
        .key()
        .expect("a key");
    u64::from_le_bytes(key.try_into().expect("eight bytes"))
}
