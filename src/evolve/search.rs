//! The genetic algorithm and the evolution strategy.

use super::genome::{Genome, SEED_LIMIT, seeds_tensor};
use crate::optim::{Adam, Optimizer};
use crate::rng::Rng;
use crate::{Grads, Result, Tensor};

/// What one generation's fitness was.
#[derive(Clone, Debug)]
pub struct Generation {
    /// Generations told so far, this one included.
    pub index: usize,
    /// The best fitness.
    pub best: f32,
    /// The row of the best member in the population told.
    pub best_member: usize,
    /// The mean fitness (NaN and ±∞ count as the worst finite value).
    pub mean: f32,
}

/// Rows sorted by fitness, best first; NaN counts as the worst.
fn ranking(fitness: &[f32]) -> Vec<usize> {
    let key = |f: f32| if f.is_nan() { f32::NEG_INFINITY } else { f };
    let mut order: Vec<usize> = (0..fitness.len()).collect();
    order.sort_by(|&a, &b| key(fitness[b]).total_cmp(&key(fitness[a])).then(a.cmp(&b)));
    order
}

fn summary(index: usize, fitness: &[f32]) -> Generation {
    let order = ranking(fitness);
    let worst = fitness
        .iter()
        .copied()
        .filter(|f| f.is_finite())
        .fold(f32::INFINITY, f32::min);
    let clean = |f: f32| if f.is_finite() { f } else { worst };
    let mean = fitness.iter().map(|&f| f64::from(clean(f))).sum::<f64>() / fitness.len() as f64;
    Generation {
        index,
        best: fitness[order[0]],
        best_member: order[0],
        mean: mean as f32,
    }
}

/// `n` distinct seeds below [`SEED_LIMIT`] (a repeated seed would repeat a perturbation).
fn fresh_seeds(rng: &mut Rng, n: usize) -> Vec<u32> {
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut seeds = Vec::with_capacity(n);
    while seeds.len() < n {
        let s = rng.below(SEED_LIMIT as usize) as u32;
        if seen.insert(s) {
            seeds.push(s);
        }
    }
    seeds
}

/// The genetic algorithm of Such et al. 2017: truncation selection, elitism, mutation by one
/// seeded Gaussian perturbation, no crossover.
#[derive(Clone, Copy, Debug)]
pub struct GaConfig {
    /// Members per generation (paper: 1,000).
    pub population: usize,
    /// Parents: the best this many (paper: 20).
    pub truncation: usize,
    /// Mutation power σ (paper: 0.002 for Atari-sized networks; small networks need more).
    pub sigma: f32,
    /// Members copied unchanged into the next generation, best first (paper: 1).
    pub elites: usize,
}

impl Default for GaConfig {
    fn default() -> GaConfig {
        GaConfig {
            population: 1000,
            truncation: 20,
            sigma: 0.002,
            elites: 1,
        }
    }
}

/// A population of seed-encoded genomes with every member's parameters cached on the device
/// (`[P, D]`): a child costs one perturbation of its parent's row, not its whole seed list.
pub struct GeneticAlgorithm {
    config: GaConfig,
    scale: Tensor,
    genomes: Vec<Genome>,
    params: Tensor,
    rng: Rng,
    told: usize,
}

impl GeneticAlgorithm {
    /// A first generation of `config.population` random networks, initial scale `scale` `[D]`
    /// ([`PopulationMlp::init_scale`](super::PopulationMlp::init_scale)); `seed` fixes the run.
    #[track_caller]
    pub fn new(scale: &Tensor, config: GaConfig, seed: u64) -> Result<GeneticAlgorithm> {
        assert!(
            scale.rank() == 1,
            "GeneticAlgorithm: scale must be [D], got {:?}",
            scale.shape()
        );
        assert!(
            config.population >= 2
                && (1..=config.population).contains(&config.truncation)
                && config.elites < config.population
                && config.sigma.is_finite()
                && config.sigma > 0.0,
            "GeneticAlgorithm: needs population ≥ 2, 1 ≤ truncation ≤ population, elites < \
             population and σ > 0, got {config:?}"
        );
        let mut rng = Rng::new(seed);
        let seeds = fresh_seeds(&mut rng, config.population);
        let genomes = seeds.iter().map(|&s| Genome::new(s)).collect();
        let params = Tensor::randn_rows(&seeds_tensor(scale.device(), &seeds)?, scale.numel())
            * scale.reshape(&[1, scale.numel()]);
        Ok(GeneticAlgorithm {
            config,
            scale: scale.clone(),
            genomes,
            params,
            rng,
            told: 0,
        })
    }

    /// The current generation's parameters, one row per member: `[P, D]`.
    pub fn population(&self) -> &Tensor {
        &self.params
    }

    /// The current generation's genomes, in the rows' order.
    pub fn genomes(&self) -> &[Genome] {
        &self.genomes
    }

    /// The configuration.
    pub fn config(&self) -> GaConfig {
        self.config
    }

    /// The initial scale the genomes are decoded with ([`Genome::parameters`]).
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }

    /// Breed the next generation from this one's fitness (one value per row, higher is better):
    /// the `elites` best unchanged, then children of parents drawn uniformly from the
    /// `truncation` best, each its parent plus σ·ε(a fresh seed).
    #[track_caller]
    pub fn tell(&mut self, fitness: &[f32]) -> Result<Generation> {
        let p = self.config.population;
        assert_eq!(
            fitness.len(),
            p,
            "GeneticAlgorithm::tell: {} fitness values for {p} members",
            fitness.len()
        );
        self.told += 1;
        let stats = summary(self.told, fitness);
        let order = ranking(fitness);
        let elites = self.config.elites;
        let mut rows: Vec<usize> = order[..elites].to_vec();
        let seeds = fresh_seeds(&mut self.rng, p - elites);
        let mut genomes: Vec<Genome> = rows.iter().map(|&r| self.genomes[r].clone()).collect();
        for &seed in &seeds {
            let parent = order[self.rng.below(self.config.truncation)];
            rows.push(parent);
            genomes.push(self.genomes[parent].child(seed));
        }
        let dev = self.params.device().clone();
        let index = Tensor::from_vec(&dev, rows.iter().map(|&r| r as f32).collect(), &[p])?;
        let d = self.scale.numel();
        let noise = Tensor::randn_rows(&seeds_tensor(&dev, &seeds)?, d) * self.config.sigma;
        let noise = noise.pad(0, elites, 0);
        self.params = self.params.gather_rows(&index) + noise;
        self.genomes = genomes;
        Ok(stats)
    }
}

/// OpenAI-ES (Salimans et al. 2017).
#[derive(Clone, Copy, Debug)]
pub struct EsConfig {
    /// Members per generation, an even number: half perturbations, half their mirrors (paper:
    /// 5,000 in Such et al.'s comparison).
    pub population: usize,
    /// Noise standard deviation σ (0.02).
    pub sigma: f32,
    /// Adam's learning rate on the estimated gradient (0.01).
    pub lr: f32,
    /// L2 weight decay added to the gradient estimate (0.005, as Salimans et al.).
    pub weight_decay: f32,
}

impl Default for EsConfig {
    fn default() -> EsConfig {
        EsConfig {
            population: 5000,
            sigma: 0.02,
            lr: 0.01,
            weight_decay: 0.005,
        }
    }
}

/// A search distribution N(θ, σ²I) moved by Adam along the fitness gradient estimated from
/// mirrored samples θ ± σε with centred-rank fitness shaping.
pub struct EvolutionStrategy {
    config: EsConfig,
    theta: Tensor,
    opt: Adam,
    rng: Rng,
    noise: Option<Tensor>,
    told: usize,
}

impl EvolutionStrategy {
    /// A search centred on `theta` `[D]` (copied); `seed` fixes the run.
    #[track_caller]
    pub fn new(theta: &Tensor, config: EsConfig, seed: u64) -> Result<EvolutionStrategy> {
        assert!(
            theta.rank() == 1,
            "EvolutionStrategy: θ must be [D], got {:?}",
            theta.shape()
        );
        assert!(
            config.population >= 2
                && config.population % 2 == 0
                && config.sigma.is_finite()
                && config.sigma > 0.0
                && config.lr.is_finite()
                && config.lr > 0.0
                && config.weight_decay >= 0.0,
            "EvolutionStrategy: needs an even population ≥ 2, σ > 0, lr > 0 and weight decay ≥ 0, \
             got {config:?}"
        );
        let theta = Tensor::from_vec(theta.device(), theta.to_vec()?, theta.shape())?;
        let named = vec![("theta".to_string(), theta.clone())];
        let opt = Adam::new(&named, config.lr).weight_decay(config.weight_decay);
        Ok(EvolutionStrategy {
            config,
            theta,
            opt,
            rng: Rng::new(seed),
            noise: None,
            told: 0,
        })
    }

    /// The centre of the search, `[D]`.
    pub fn theta(&self) -> &Tensor {
        &self.theta
    }

    /// The configuration (its `lr` as set last).
    pub fn config(&self) -> EsConfig {
        self.config
    }

    /// Set Adam's learning rate (a schedule calls this between generations).
    pub fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
        self.opt.set_lr(lr);
    }

    /// This generation's members `[P, D]`: θ + σεₖ for k < P/2, then θ − σεₖ, with distinct
    /// fresh seeds.
    pub fn ask(&mut self) -> Result<Tensor> {
        let half = self.config.population / 2;
        let seeds = fresh_seeds(&mut self.rng, half);
        let d = self.theta.numel();
        let eps = Tensor::randn_rows(&seeds_tensor(self.theta.device(), &seeds)?, d);
        let centre = self.theta.reshape(&[1, d]);
        let step = &eps * self.config.sigma;
        let members = Tensor::concat(&[&(&centre + &step), &(&centre - &step)], 0);
        self.noise = Some(eps);
        Ok(members)
    }

    /// Move θ from the fitness of the members [`ask`](Self::ask) gave (higher is better): ranks
    /// centred on [−½, ½], g = Σₖ (uₖ⁺ − uₖ⁻)·εₖ / (Pσ), one Adam step along g.
    #[track_caller]
    pub fn tell(&mut self, fitness: &[f32]) -> Result<Generation> {
        let p = self.config.population;
        assert_eq!(
            fitness.len(),
            p,
            "EvolutionStrategy::tell: {} fitness values for {p} members",
            fitness.len()
        );
        let eps = self
            .noise
            .take()
            .expect("EvolutionStrategy::tell: call ask() first");
        self.told += 1;
        let stats = summary(self.told, fitness);
        let shaped = centred_ranks(fitness);
        let half = p / 2;
        let weights: Vec<f32> = (0..half)
            .map(|k| (shaped[k] - shaped[half + k]) / (p as f32 * self.config.sigma))
            .collect();
        let dev = self.theta.device();
        let w = Tensor::from_vec(dev, weights, &[1, half])?;
        let ascent = w.matmul(&eps).reshape(&[self.theta.numel()]);
        let mut grads = Grads::new();
        grads.insert(&self.theta, -ascent);
        self.opt.step(&grads)?;
        Ok(stats)
    }
}

/// Fitness ranks mapped to [−½, ½] (the best ½), ties broken by position; NaN ranks lowest.
pub(crate) fn centred_ranks(fitness: &[f32]) -> Vec<f32> {
    let n = fitness.len();
    let mut out = vec![0.0; n];
    if n == 1 {
        return out;
    }
    for (rank_from_best, &i) in ranking(fitness).iter().enumerate() {
        out[i] = (n - 1 - rank_from_best) as f32 / (n - 1) as f32 - 0.5;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_ranks_span_minus_half_to_half() {
        let r = centred_ranks(&[3.0, f32::NAN, 10.0, -1.0, 3.0]);
        assert_eq!(r, vec![0.25, -0.5, 0.5, -0.25, 0.0]);
    }
}
