//! What the seeded simulations share: the generator and the seeds.

#![allow(dead_code)]

/// splitmix64: small, seedable, the same everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// The seeds to run: `SLUICE_TEST_SEED=<n>` replays one;
/// `SLUICE_TEST_SEEDS=<n>` runs that many (a longer soak) instead of
/// `count`, each `base` plus its index.
pub fn seeds(base: u64, count: u64) -> Vec<u64> {
    match std::env::var("SLUICE_TEST_SEED") {
        Ok(s) => vec![s.trim().parse().expect("SLUICE_TEST_SEED is a number")],
        Err(_) => {
            let count = std::env::var("SLUICE_TEST_SEEDS")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(count);
            (0..count).map(|k| base + k).collect()
        }
    }
}
