//! Seed-encoded genomes.

use crate::{Result, Tensor};

/// Seeds are integers below this, so that they are exact in an f32 tensor.
pub const SEED_LIMIT: u32 = 1 << 24;

/// A network's parameters as the seeds that built them: the first seeds the initialisation
/// θ⁰ = s ⊙ ε(τ₀) (s the per-parameter scale of [`PopulationMlp::init_scale`](super::PopulationMlp::init_scale)),
/// each later one a mutation θⁿ = θⁿ⁻¹ + σ·ε(τₙ).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genome {
    /// The seeds, oldest first, each below [`SEED_LIMIT`].
    pub seeds: Vec<u32>,
}

impl Genome {
    /// A genome of one seed: an initialisation only.
    pub fn new(seed: u32) -> Genome {
        assert!(
            seed < SEED_LIMIT,
            "Genome: seed {seed} is not below {SEED_LIMIT}"
        );
        Genome { seeds: vec![seed] }
    }

    /// This genome with one more mutation.
    pub fn child(&self, seed: u32) -> Genome {
        assert!(
            seed < SEED_LIMIT,
            "Genome: seed {seed} is not below {SEED_LIMIT}"
        );
        let mut seeds = self.seeds.clone();
        seeds.push(seed);
        Genome { seeds }
    }

    /// Its size as stored: four bytes a seed.
    pub fn bytes(&self) -> usize {
        4 * self.seeds.len()
    }

    /// The parameters `[D]` it encodes for initial scale `scale` `[D]` and mutation power `sigma`,
    /// rebuilt from the seeds on `scale`'s device (one random dispatch for all of them).
    pub fn parameters(&self, scale: &Tensor, sigma: f32) -> Result<Tensor> {
        assert!(
            scale.rank() == 1,
            "Genome::parameters: scale must be [D], got {:?}",
            scale.shape()
        );
        let eps = Tensor::randn_rows(&seeds_tensor(scale.device(), &self.seeds)?, scale.numel());
        let mut theta = eps.narrow(0, 0, 1).reshape(&[scale.numel()]) * scale;
        if self.seeds.len() > 1 {
            let mutations = eps.narrow(0, 1, self.seeds.len() - 1).sum(0);
            theta = theta + mutations * sigma;
        }
        Ok(theta)
    }
}

/// Seeds as an f32 tensor `[n]` (exact: every seed is below [`SEED_LIMIT`]), the input of
/// [`Tensor::randn_rows`].
pub(super) fn seeds_tensor(dev: &crate::Device, seeds: &[u32]) -> Result<Tensor> {
    Tensor::from_vec(
        dev,
        seeds.iter().map(|&s| s as f32).collect(),
        &[seeds.len()],
    )
}
