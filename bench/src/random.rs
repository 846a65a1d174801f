//! A small seeded generator for message sizes, keys and payload bytes:
//! SplitMix64, so that a workload's draws are the same on every run and
//! every platform, and cost a few instructions each.

#[derive(Debug, Clone)]
pub struct Draws {
    state: u64,
}

impl Draws {
    pub fn new(seed: u64) -> Draws {
        Draws { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let draw = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&draw[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_bytes_vary() {
        let mut a = Draws::new(7);
        let mut b = Draws::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(a.next_u64(), Draws::new(8).next_u64());
        let mut bytes = [0u8; 13];
        a.fill(&mut bytes);
        assert!(bytes.iter().any(|byte| *byte != 0));
    }
}
