//! Optimizers. Each keeps its state on the device beside the parameters and updates every
//! parameter with one fused kernel (CPU reference beside it, tested like any other op).
//! `step` records the updates and runs everything pending — forward, backward and update — in one
//! submit.
//!
//! ```
//! use wgrad::nn::{Mlp, Module};
//! use wgrad::optim::{Optimizer, Sgd};
//! use wgrad::{Device, Tensor};
//! # fn main() -> wgrad::Result<()> {
//! let dev = Device::cpu();
//! let model = Mlp::new(&[4, 8, 3]).build(&dev);
//! let mut opt = Sgd::new(&model.params(), 0.1).momentum(0.9).nesterov();
//! let (x, y) = (Tensor::randn(&dev, &[16, 4]), Tensor::zeros(&dev, &[16]));
//! let before = model.forward(&x).cross_entropy(&y).item()?;
//! for _ in 0..20 {
//!     let loss = model.forward(&x).cross_entropy(&y);
//!     opt.step(&loss.backward())?; // forward, backward and update: one submit on a GPU
//! }
//! assert!(model.forward(&x).cross_entropy(&y).item()? < before);
//! # Ok(()) }
//! ```

mod adam;
mod optimizer;
mod rprop;
mod sgd;

pub use adam::Adam;
pub use optimizer::Optimizer;
pub use rprop::Rprop;
pub use sgd::Sgd;

/// How the learning rate changes over epochs (or steps — the caller chooses the clock).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` ticks.
    Step {
        /// Ticks between decays.
        every: usize,
        /// The factor applied at each decay.
        gamma: f32,
    },
    /// Cosine annealing from the base rate to `min_lr` over `total` ticks.
    Cosine {
        /// Ticks from the base rate down to `min_lr`.
        total: usize,
        /// The rate at the end.
        min_lr: f32,
    },
}

impl Schedule {
    /// The rate at tick `t` (0-based) for base rate `base`.
    pub fn lr(&self, base: f32, t: usize) -> f32 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((t / every.max(1)) as i32),
            Schedule::Cosine { total, min_lr } => {
                let x = (t.min(total) as f32) / total.max(1) as f32;
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f32::consts::PI * x).cos())
            }
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    /// `constant`, `step:EVERY:GAMMA` (EVERY ≥ 1, GAMMA finite and > 0), `cosine:TOTAL` or
    /// `cosine:TOTAL:MIN` (TOTAL ≥ 1, MIN finite and ≥ 0).
    fn from_str(s: &str) -> Result<Schedule, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let field = |i: usize, what: &str| -> Result<&str, String> {
            parts
                .get(i)
                .copied()
                .ok_or(format!("schedule `{s}`: missing {what}"))
        };
        let count = |i: usize, what: &str| -> Result<usize, String> {
            match field(i, what)?.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("schedule `{s}`: {what} must be a whole number ≥ 1")),
            }
        };
        let rate = |i: usize, what: &str, zero_ok: bool| -> Result<f32, String> {
            match field(i, what)?.parse::<f32>() {
                Ok(v) if v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) => Ok(v),
                _ => Err(format!(
                    "schedule `{s}`: {what} must be a finite number {}",
                    if zero_ok { "≥ 0" } else { "> 0" }
                )),
            }
        };
        let arity = |n: &[usize]| {
            if n.contains(&parts.len()) {
                Ok(())
            } else {
                Err(format!("schedule `{s}`: wrong number of fields"))
            }
        };
        match parts[0] {
            "constant" => arity(&[1]).map(|()| Schedule::Constant),
            "step" => {
                arity(&[3])?;
                Ok(Schedule::Step {
                    every: count(1, "period")?,
                    gamma: rate(2, "gamma", false)?,
                })
            }
            "cosine" => {
                arity(&[2, 3])?;
                Ok(Schedule::Cosine {
                    total: count(1, "length")?,
                    min_lr: if parts.len() > 2 {
                        rate(2, "minimum", true)?
                    } else {
                        0.0
                    },
                })
            }
            _ => Err(format!(
                "unknown schedule `{s}` (constant, step:N:GAMMA, cosine:N[:MIN])"
            )),
        }
    }
}
