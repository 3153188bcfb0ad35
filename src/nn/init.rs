//! Weight initialisers. Random ones draw from the device's seed stream, so
//! `device.manual_seed(s)` before building a model makes its weights repeatable on every backend.

use crate::{Device, Tensor};

/// How to fill a parameter of a layer with `fan_in` inputs and `fan_out` outputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Glorot: U(−a, a), a = √(6 / (fan_in + fan_out)).
    XavierUniform,
    /// Glorot: N(0, σ²), σ = √(2 / (fan_in + fan_out)).
    XavierNormal,
    /// He/Kaiming for ReLU: U(−a, a), a = √(6 / fan_in).
    HeUniform,
    /// He/Kaiming for ReLU: N(0, σ²), σ = √(2 / fan_in).
    HeNormal,
    /// PyTorch's default for linear and convolution layers, weights and biases alike:
    /// U(−a, a), a = 1/√fan_in (Kaiming uniform with a = √5).
    TorchDefault,
    /// All zeros.
    Zeros,
    /// Every value the same.
    Constant(f32),
    /// U(lo, hi).
    Uniform(f32, f32),
    /// N(mean, std²).
    Normal {
        /// The mean.
        mean: f32,
        /// The standard deviation.
        std: f32,
    },
}

impl Init {
    /// A new parameter of `shape` (a leaf that requires gradients).
    #[track_caller]
    pub fn param(self, device: &Device, shape: &[usize], fan_in: usize, fan_out: usize) -> Tensor {
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        let t = match self {
            Init::XavierUniform => {
                let a = (6.0 / (fi + fo)).sqrt();
                Tensor::uniform(device, shape, -a, a)
            }
            Init::XavierNormal => Tensor::normal(device, shape, 0.0, (2.0 / (fi + fo)).sqrt()),
            Init::HeUniform => {
                let a = (6.0 / fi).sqrt();
                Tensor::uniform(device, shape, -a, a)
            }
            Init::HeNormal => Tensor::normal(device, shape, 0.0, (2.0 / fi).sqrt()),
            Init::TorchDefault => {
                let a = 1.0 / fi.sqrt();
                Tensor::uniform(device, shape, -a, a)
            }
            Init::Zeros => Tensor::zeros(device, shape),
            Init::Constant(c) => Tensor::full(device, shape, c),
            Init::Uniform(lo, hi) => Tensor::uniform(device, shape, lo, hi),
            Init::Normal { mean, std } => Tensor::normal(device, shape, mean, std),
        };
        t.requires_grad_()
    }
}

impl std::str::FromStr for Init {
    type Err = String;
    fn from_str(s: &str) -> Result<Init, String> {
        Ok(match s {
            "xavier" | "xavier-uniform" | "glorot" => Init::XavierUniform,
            "xavier-normal" => Init::XavierNormal,
            "he" | "he-uniform" | "kaiming" => Init::HeUniform,
            "he-normal" => Init::HeNormal,
            "torch" | "torch-default" => Init::TorchDefault,
            "zeros" => Init::Zeros,
            _ => {
                return Err(format!(
                    "unknown init `{s}` (xavier, xavier-normal, he, he-normal, torch, zeros)"
                ));
            }
        })
    }
}
