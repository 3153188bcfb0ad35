//! Neuroevolution: populations of networks searched without gradients, evaluated all at once.
//!
//! - [`Genome`]: a network's parameters encoded as a list of seeds (Such et al. 2017, "Deep
//!   Neuroevolution"): θ⁰ = s ⊙ ε(τ₀), θⁿ = θⁿ⁻¹ + σ·ε(τₙ), with ε(τ) the normal stream of seed τ
//!   drawn on the device by [`Tensor::randn_rows`](crate::Tensor::randn_rows). A genome is a few
//!   bytes per generation; its parameters are rebuilt where they are used.
//! - [`PopulationMlp`]: one parameter row per member, `[P, D]`; every member's forward pass runs
//!   in batched matmuls, so a population costs a handful of dispatches.
//! - [`GeneticAlgorithm`] (truncation selection, elitism, each child one perturbation of a cached
//!   parent) and [`EvolutionStrategy`] (OpenAI-ES, Salimans et al. 2017: mirrored sampling,
//!   centred-rank shaping, Adam on the estimated gradient) on the same machinery: `population()`
//!   (or `ask()`), evaluate, `tell(fitness)`.
//! - [`cartpole`]: the classic cart-pole, stepped on the device by a WGSL kernel, and whole
//!   populations' episodes rolled out with one readback for the returns.

pub mod cartpole;
mod genome;
mod mlp;
mod search;

pub use genome::{Genome, SEED_LIMIT};
pub use mlp::PopulationMlp;
pub use search::{EsConfig, EvolutionStrategy, GaConfig, Generation, GeneticAlgorithm};
