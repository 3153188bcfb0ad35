//! The contract every optimizer implements, and the per-parameter state the optimizers share.

use crate::nn::Params;
use crate::{Grads, Result, Tensor};

/// What every optimizer offers.
pub trait Optimizer {
    /// Record the update of every parameter that has a gradient in `grads`; nothing runs yet.
    fn record(&mut self, grads: &Grads);

    /// Record the updates, then run everything pending on the parameters' device (one submit).
    fn step(&mut self, grads: &Grads) -> Result<()> {
        self.record(grads);
        match self.params().first() {
            Some((_, p)) => p.device().flush(),
            None => Ok(()),
        }
    }

    /// The parameters it updates.
    fn params(&self) -> Params;

    /// Named state tensors (momenta, moment estimates, step sizes), for checkpoints.
    fn state(&self) -> Params;

    /// Updates applied so far (Adam's bias correction depends on it).
    fn steps(&self) -> u64;
    /// Set the update count (after loading a checkpoint).
    fn set_steps(&mut self, steps: u64);

    /// The learning rate (RPROP has none and ignores it).
    fn lr(&self) -> f32;
    /// Set the learning rate (schedules call this between steps).
    fn set_lr(&mut self, lr: f32);

    /// "sgd", "adam", "adamw", "rprop".
    fn kind(&self) -> &'static str;
}

/// A boxed optimizer is one (so `DataParallel<Box<dyn Optimizer>>` works).
impl<T: Optimizer + ?Sized> Optimizer for Box<T> {
    fn record(&mut self, grads: &Grads) {
        (**self).record(grads)
    }
    fn step(&mut self, grads: &Grads) -> Result<()> {
        (**self).step(grads)
    }
    fn params(&self) -> Params {
        (**self).params()
    }
    fn state(&self) -> Params {
        (**self).state()
    }
    fn steps(&self) -> u64 {
        (**self).steps()
    }
    fn set_steps(&mut self, steps: u64) {
        (**self).set_steps(steps)
    }
    fn lr(&self) -> f32 {
        (**self).lr()
    }
    fn set_lr(&mut self, lr: f32) {
        (**self).set_lr(lr)
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
}

/// A parameter and its state tensors (zeros, or `fill`, of the parameter's shape).
pub(crate) struct Slot {
    pub name: String,
    pub param: Tensor,
    pub state: Vec<Tensor>,
}

impl Slot {
    pub(crate) fn new(name: &str, param: &Tensor, states: usize, fill: f32) -> Slot {
        Slot {
            name: name.to_string(),
            param: param.clone(),
            state: (0..states)
                .map(|_| Tensor::full(param.device(), param.shape(), fill))
                .collect(),
        }
    }
}

pub(crate) fn slots(params: &[(String, Tensor)], states: usize, fill: f32) -> Vec<Slot> {
    params
        .iter()
        .map(|(n, p)| Slot::new(n, p, states, fill))
        .collect()
}

pub(crate) fn named_state(slots: &[Slot], names: &[&str]) -> Params {
    slots
        .iter()
        .flat_map(|s| {
            names
                .iter()
                .zip(&s.state)
                .map(move |(n, t)| (format!("{}.{n}", s.name), t.clone()))
        })
        .collect()
}
