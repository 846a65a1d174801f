//! What the log's integration tests share.

#![allow(dead_code)]

#[macro_use]
pub mod harness;

use std::future::Future;

use rand::{rngs::StdRng, SeedableRng};

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
