//! Per-sample gradient statistics: for a batch of N samples with per-sample losses ℓₙ, the sums
//! Σₙ gₙ² and Σₙ |gₙ| of each parameter's per-sample gradients gₙ = ∂ℓₙ/∂θ, without N backward
//! passes where the layers allow it. They are what importance measures of continual learning
//! need: EWC's diagonal Fisher is Σₙ gₙ² / N with ℓₙ = −log p(yₙ | xₙ), MAS's importance is
//! Σₙ |gₙ| / N with ℓₙ = ‖f(xₙ)‖². (The gradient of the batch's summed loss gives |Σₙ gₙ|,
//! which is neither.)
//!
//! For a stack of `Linear` layers with elementwise modules between them, one backward pass of
//! Σₙ ℓₙ gives each layer's output gradients G (row n is sample n's, since nothing mixes the
//! samples), and with the layer's inputs X the statistics of y = xWᵀ + b are exact products:
//! Σₙ gₙ² of W is (G∘G)ᵀ(X∘X), Σₙ |gₙ| is |G|ᵀ|X|, and of b the column sums of G∘G and |G|.
//! Any other model takes the slow path: one backward pass per sample.

use super::{Module, Params, Sequential};
use crate::{Result, Tensor};

/// Σₙ gₙ² and Σₙ |gₙ| of one parameter, each of the parameter's shape.
#[derive(Clone, Debug)]
pub struct GradStats {
    /// Σₙ gₙ², elementwise.
    pub sum_sq: Tensor,
    /// Σₙ |gₙ|, elementwise.
    pub sum_abs: Tensor,
}

/// Per-sample gradient statistics of every parameter of `model` (named as `model.params()`
/// names them) over the batch `x` (`[n, ...]`) with per-sample `targets` (`[n, ...]`: labels,
/// or `x` itself where the loss needs none), for the per-sample losses
/// `loss(outputs, targets)` (`[n]`, each row's loss depending on that row alone). The exact
/// fast path where `model` is linear layers and elementwise modules, [`gradient_stats_slow`]
/// otherwise. Parameters that do not require gradients are left out.
///
/// ```
/// use wgrad::nn::per_sample::gradient_stats;
/// use wgrad::nn::{Mlp, Module};
/// use wgrad::{Device, Tensor};
/// # fn main() -> wgrad::Result<()> {
/// let dev = Device::cpu();
/// let model = Mlp::new(&[4, 8, 3]).build(&dev);
/// let (x, y) = (Tensor::randn(&dev, &[16, 4]), Tensor::zeros(&dev, &[16]));
/// // EWC's diagonal Fisher: the mean squared per-sample gradient of −log p(y | x).
/// let stats = gradient_stats(&model, &x, &y, |out, y| out.cross_entropy_rows(y))?;
/// let fisher: Vec<Tensor> = stats.iter().map(|(_, s)| &s.sum_sq / 16.0).collect();
/// assert_eq!(fisher[0].shape(), &[8, 4]);
/// # Ok(()) }
/// ```
#[track_caller]
pub fn gradient_stats(
    model: &Sequential,
    x: &Tensor,
    targets: &Tensor,
    loss: impl Fn(&Tensor, &Tensor) -> Tensor,
) -> Result<Vec<(String, GradStats)>> {
    let fast = model
        .layers()
        .all(|l| l.as_linear().is_some() || l.is_elementwise());
    if !fast {
        return gradient_stats_slow(model, x, targets, loss);
    }
    // Forward layer by layer, unfused, keeping each linear layer's input and output.
    let mut h = x.clone();
    let mut kept = Vec::new();
    for (i, layer) in model.layers().enumerate() {
        match layer.as_linear() {
            Some(lin) => {
                let z = layer.forward(&h);
                z.retain_grad();
                kept.push((i, lin, h.clone(), z.clone()));
                h = z;
            }
            None => h = layer.forward(&h),
        }
    }
    let losses = loss(&h, targets);
    check_losses(&losses, x);
    let grads = losses.sum_all().backward();
    let mut out = Vec::new();
    for (i, lin, input, z) in kept {
        let Some(g) = grads.get(&z) else {
            continue;
        };
        let rows = g.numel() / g.dim(-1);
        let g = g.reshape(&[rows, g.dim(-1)]);
        let input = input.reshape(&[rows, input.dim(-1)]);
        if lin.weight.requires_grad() {
            out.push((
                format!("{i}.weight"),
                GradStats {
                    sum_sq: g.square().t().matmul(&input.square()),
                    sum_abs: g.abs().t().matmul(&input.abs()),
                },
            ));
        }
        if lin.bias.as_ref().is_some_and(Tensor::requires_grad) {
            out.push((
                format!("{i}.bias"),
                GradStats {
                    sum_sq: g.square().sum(0),
                    sum_abs: g.abs().sum(0),
                },
            ));
        }
    }
    Ok(out)
}

/// The same statistics the slow way, for any module: one forward and backward pass per sample
/// of `x` (with its row of `targets`), the squares and absolute values summed on the device
/// (flushed every 64 samples, so the tape stays short).
#[track_caller]
pub fn gradient_stats_slow(
    model: &dyn Module,
    x: &Tensor,
    targets: &Tensor,
    loss: impl Fn(&Tensor, &Tensor) -> Tensor,
) -> Result<Vec<(String, GradStats)>> {
    assert_eq!(
        targets.shape()[..1],
        x.shape()[..1],
        "gradient_stats: {} targets for {} samples",
        targets.shape().first().copied().unwrap_or(0),
        x.shape()[0]
    );
    let params: Params = model
        .params()
        .into_iter()
        .filter(|(_, p)| p.requires_grad())
        .collect();
    let mut sums: Vec<(Tensor, Tensor)> = params
        .iter()
        .map(|(_, p)| (p.zeros_like(), p.zeros_like()))
        .collect();
    let n = x.shape()[0];
    for s in 0..n {
        let one = x.narrow(0, s, 1);
        let l = loss(&model.forward(&one), &targets.narrow(0, s, 1));
        check_losses(&l, &one);
        let grads = l.sum_all().backward();
        for ((_, p), (sq, abs)) in params.iter().zip(&mut sums) {
            if let Some(g) = grads.get(p) {
                *sq = &*sq + g.square();
                *abs = &*abs + g.abs();
            }
        }
        if (s + 1) % 64 == 0 {
            x.device().flush()?;
        }
    }
    Ok(params
        .into_iter()
        .zip(sums)
        .map(|((name, _), (sum_sq, sum_abs))| (name, GradStats { sum_sq, sum_abs }))
        .collect())
}

/// The per-sample losses must be one per row of the batch.
#[track_caller]
fn check_losses(losses: &Tensor, x: &Tensor) {
    assert_eq!(
        losses.shape(),
        &x.shape()[..1],
        "gradient_stats: the loss function must give one loss per sample ([{}]), got shape {:?}",
        x.shape()[0],
        losses.shape()
    );
}
