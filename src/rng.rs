//! Philox4x32-10, the counter-based generator behind every random op. The same function is
//! written in `shaders/random/_philox.wgsl`; element `i` of a random tensor with seed `s` is
//! drawn from counter `(i, 0, 0, 0)` and key `(s_lo, s_hi)` on both backends, so the same seed
//! gives the same numbers everywhere (bit for bit for uniform and Bernoulli).

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Ten Philox rounds: four 32-bit words from a counter and a key.
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for _ in 0..10 {
        let p0 = u64::from(M0) * u64::from(c0);
        let p1 = u64::from(M1) * u64::from(c2);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
        k0 = k0.wrapping_add(W0);
        k1 = k1.wrapping_add(W1);
    }
    [c0, c1, c2, c3]
}

/// The four words for element `i` of a tensor drawn with `seed`.
pub fn words(seed: u64, i: u32) -> [u32; 4] {
    philox([i, 0, 0, 0], [seed as u32, (seed >> 32) as u32])
}

/// A uniform f32 in [0, 1) from the top 24 bits of a word (exact in f32).
pub fn unit(word: u32) -> f32 {
    (word >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform f32 in (0, 1], for logarithms.
pub fn unit_open(word: u32) -> f32 {
    ((word >> 8) as f32 + 1.0) * (1.0 / 16_777_216.0)
}

/// A standard normal by Box–Muller from the first two words (f64 arithmetic on exact inputs).
pub fn normal(w: [u32; 4]) -> f64 {
    let u1 = unit_open(w[0]) as f64;
    let u2 = unit(w[1]) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Derive the `n`-th seed of a stream started with `seed` (splitmix64).
pub fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small host-side generator for shuffling and sampling: Philox over a running counter.
#[derive(Clone, Debug)]
pub struct Rng {
    seed: u64,
    counter: u32,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { seed, counter: 0 }
    }

    pub fn next_u32(&mut self) -> u32 {
        let w = words(self.seed, self.counter);
        self.counter = self.counter.wrapping_add(1);
        if self.counter == 0 {
            self.seed = mix(self.seed, 1);
        }
        w[0]
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        unit(self.next_u32())
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u32() as u64 * n as u64) >> 32) as usize
    }

    /// Where the generator stands: its seed and counter (see [`Rng::from_state`]).
    pub fn state(&self) -> (u64, u32) {
        (self.seed, self.counter)
    }

    /// A generator that continues from a saved [`Rng::state`].
    pub fn from_state((seed, counter): (u64, u32)) -> Rng {
        Rng { seed, counter }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_the_published_known_answers() {
        // Random123's kat_vectors for philox4x32_10.
        assert_eq!(
            philox([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox([!0, !0, !0, !0], [!0, !0]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn uniforms_are_spread_evenly_over_the_unit_interval() {
        let n = 200_000;
        let u: Vec<f64> = (0..n).map(|i| unit(words(7, i)[0]) as f64).collect();
        // Mean within 5 standard errors of 1/2.
        let mean = u.iter().sum::<f64>() / n as f64;
        let se = (1.0f64 / 12.0 / n as f64).sqrt();
        assert!((mean - 0.5).abs() < 5.0 * se, "mean {mean}");
        // Chi-square over 16 equal bins, 15 degrees of freedom: P(χ² > 40) ≈ 5e-4.
        let mut bins = [0usize; 16];
        for v in &u {
            bins[(v * 16.0) as usize] += 1;
        }
        let expect = n as f64 / 16.0;
        let chi2: f64 = bins
            .iter()
            .map(|&b| (b as f64 - expect).powi(2) / expect)
            .sum();
        assert!(chi2 < 40.0, "chi-square {chi2} over bins {bins:?}");
    }
}
