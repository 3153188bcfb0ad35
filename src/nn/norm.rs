//! Normalisation layers with PyTorch's parameter and buffer names (`weight`, `bias`,
//! `running_mean`, `running_var`, `num_batches_tracked`), defaults and train/eval behaviour.

use std::cell::Cell;

use crate::nn::{Module, Params};
use crate::{Device, Tensor};

/// Batch normalisation over the channels of `[n, c, h, w]` (PyTorch's `BatchNorm2d`; also
/// `[n, c]`, as `BatchNorm1d`). In training it normalises by the batch's statistics and updates
/// the running ones (momentum 0.1, the unbiased variance, as PyTorch); in evaluation it
/// normalises by the running ones. `weight` starts at 1 and `bias` at 0; ε = 10⁻⁵.
///
/// ```
/// use wgrad::nn::{Module, norm::BatchNorm2d};
/// let dev = wgrad::Device::cpu();
/// let bn = BatchNorm2d::new(&dev, 3);
/// let x = wgrad::Tensor::randn(&dev, &[4, 3, 5, 5]);
/// let y = bn.forward(&x); // batch statistics; running_mean moves a tenth of the way
/// assert_eq!(y.shape(), x.shape());
/// bn.set_training(false); // from now on the running statistics
/// ```
pub struct BatchNorm2d {
    /// `[c]`, or none for a layer built with `.affine(false)`.
    pub weight: Option<Tensor>,
    /// `[c]`, or none for a layer built with `.affine(false)`.
    pub bias: Option<Tensor>,
    /// `[c]`, starting at 0.
    pub running_mean: Tensor,
    /// `[c]`, starting at 1.
    pub running_var: Tensor,
    /// Training batches seen (a scalar).
    pub num_batches_tracked: Tensor,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f32,
    /// Added to the variance before its square root.
    pub eps: f32,
    training: Cell<bool>,
}

impl BatchNorm2d {
    /// A layer for `channels` channels, in training mode.
    #[track_caller]
    pub fn new(device: &Device, channels: usize) -> BatchNorm2d {
        assert!(channels > 0, "BatchNorm2d: needs at least one channel");
        BatchNorm2d {
            weight: Some(Tensor::ones(device, &[channels]).requires_grad_()),
            bias: Some(Tensor::zeros(device, &[channels]).requires_grad_()),
            running_mean: Tensor::zeros(device, &[channels]),
            running_var: Tensor::ones(device, &[channels]),
            num_batches_tracked: Tensor::zeros(device, &[]),
            momentum: 0.1,
            eps: 1e-5,
            training: Cell::new(true),
        }
    }

    /// Learn a scale and shift per channel (`true`, the default) or not.
    pub fn affine(mut self, on: bool) -> BatchNorm2d {
        if !on {
            self.weight = None;
            self.bias = None;
        }
        self
    }

    /// Whether the layer is in training mode.
    pub fn training(&self) -> bool {
        self.training.get()
    }
}

impl Module for BatchNorm2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let training = self.training.get();
        if training {
            let n = &self.num_batches_tracked;
            n.assign(&(n + 1.0));
        }
        x.batch_norm(
            Some(&self.running_mean),
            Some(&self.running_var),
            self.weight.as_ref(),
            self.bias.as_ref(),
            training,
            self.momentum,
            self.eps,
        )
    }
    fn params(&self) -> Params {
        let mut p = Vec::new();
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            p.push(("weight".to_string(), w.clone()));
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
    fn buffers(&self) -> Params {
        vec![
            ("running_mean".to_string(), self.running_mean.clone()),
            ("running_var".to_string(), self.running_var.clone()),
            (
                "num_batches_tracked".to_string(),
                self.num_batches_tracked.clone(),
            ),
        ]
    }
    fn set_training(&self, on: bool) {
        self.training.set(on);
    }
}

/// Layer normalisation over the last dims (PyTorch's `LayerNorm(normalized_shape)`): each
/// sample normalised by its own mean and biased variance over them, then scaled by `weight`
/// (starting at 1) and shifted by `bias` (starting at 0); ε = 10⁻⁵.
pub struct LayerNorm {
    /// Of the normalised shape.
    pub weight: Tensor,
    /// Of the normalised shape.
    pub bias: Tensor,
    /// Added to the variance before its square root.
    pub eps: f32,
}

impl LayerNorm {
    /// Normalise over trailing dims of sizes `shape` (`&[512]` for a width-512 layer).
    #[track_caller]
    pub fn new(device: &Device, shape: &[usize]) -> LayerNorm {
        assert!(
            !shape.is_empty() && shape.iter().all(|&d| d > 0),
            "LayerNorm: normalised shape {shape:?} must be non-empty sizes ≥ 1"
        );
        LayerNorm {
            weight: Tensor::ones(device, shape).requires_grad_(),
            bias: Tensor::zeros(device, shape).requires_grad_(),
            eps: 1e-5,
        }
    }
}

impl Module for LayerNorm {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let dims = self.weight.rank();
        let s = x.shape();
        assert!(
            s.len() >= dims && s[s.len() - dims..] == *self.weight.shape(),
            "LayerNorm: input {s:?} does not end in the normalised shape {:?}",
            self.weight.shape()
        );
        x.layer_norm(dims, Some(&self.weight), Some(&self.bias), self.eps)
    }
    fn params(&self) -> Params {
        vec![
            ("weight".to_string(), self.weight.clone()),
            ("bias".to_string(), self.bias.clone()),
        ]
    }
}
