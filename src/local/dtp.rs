//! Difference target propagation (Lee, Zhang, Fischer & Bengio 2015) in the form Bartunov et
//! al. (2018) assess: hidden layers hᵢ = f(Wᵢhᵢ₋₁ + bᵢ), a softmax output trained by its
//! gradient, and learned inverses gᵢ(hᵢ) = f(Vᵢhᵢ + cᵢ) ≈ hᵢ₋₁ between hidden layers.
//!
//! - The last hidden layer's target is a gradient step on it: ĥ_H = h_H − η̂·∂ℓ/∂h_H (ℓ the
//!   per-example loss).
//! - Targets go down with the difference correction: ĥᵢ₋₁ = hᵢ₋₁ + gᵢ(ĥᵢ) − gᵢ(hᵢ).
//! - Each hidden layer is trained on ‖hᵢ − ĥᵢ‖² through its own weights alone.
//! - Each inverse on the reconstruction of corrupted activations, ‖gᵢ(f(Wᵢ(hᵢ₋₁ + ε))) − (hᵢ₋₁ + ε)‖²,
//!   ε ~ N(0, σ²), through its own weights alone.
//!
//! All of these are built from detached inputs, so their sum's gradient is every layer's local
//! update and one `backward()` trains the network (the "parallel" schedule);
//! [`Losses::inverse`] and [`Losses::forward`] apart give the "alternating" one.

use crate::nn::{Activation, Init, Linear, Module, Params, prefixed};
use crate::{Device, Tensor};

/// A DTP network.
pub struct Net {
    /// Hidden layers, then the output layer (logits).
    pub layers: Vec<Linear>,
    /// `inverses[i]` maps hidden layer i + 2's output back to hidden layer i + 1's (counting
    /// hidden layers from 1): one fewer than the hidden layers.
    pub inverses: Vec<Linear>,
    /// The hidden layers' and the inverses' activation.
    pub activation: Activation,
    /// η̂: the size of the gradient step that makes the last hidden layer's target.
    pub target_step: f32,
    /// σ of the noise the inverses learn to undo.
    pub noise: f32,
}

/// One batch's local losses (each its own mean over the batch).
pub struct Losses {
    /// Cross-entropy of the output layer.
    pub output: Tensor,
    /// ‖hᵢ − ĥᵢ‖² per hidden layer.
    pub layers: Vec<Tensor>,
    /// The reconstruction loss of each inverse.
    pub inverses: Vec<Tensor>,
}

impl Losses {
    /// Output and hidden-layer losses: their gradient trains the forward weights.
    pub fn forward(&self) -> Tensor {
        self.layers.iter().fold(self.output.clone(), |a, l| a + l)
    }

    /// The inverses' losses: their gradient trains the inverses.
    pub fn inverse(&self) -> Tensor {
        let mut it = self.inverses.iter();
        let first = it
            .next()
            .expect("a DTP net has at least one inverse")
            .clone();
        it.fold(first, |a, l| a + l)
    }

    /// Everything: one step of the parallel schedule.
    pub fn total(&self) -> Tensor {
        self.forward() + self.inverse()
    }
}

impl Net {
    /// A net of `widths` (input, hidden…, classes) with at least two hidden layers.
    #[track_caller]
    pub fn new(device: &Device, widths: &[usize], activation: Activation, init: Init) -> Net {
        assert!(
            widths.len() >= 4,
            "dtp::Net: needs input, at least two hidden layers and an output, got {widths:?}"
        );
        let layers = widths
            .windows(2)
            .map(|w| Linear::new(device, w[0], w[1], init))
            .collect();
        let hidden = &widths[1..widths.len() - 1];
        let inverses = hidden
            .windows(2)
            .map(|w| Linear::new(device, w[1], w[0], init))
            .collect();
        Net {
            layers,
            inverses,
            activation,
            target_step: 0.1,
            noise: 0.1,
        }
    }

    fn act(&self, layer: &Linear, x: &Tensor) -> Tensor {
        layer
            .forward_then(x, self.activation)
            .expect("a linear layer fuses")
    }

    /// Logits of `x`.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        let (out, hidden) = self.layers.split_last().expect("layers");
        let h = hidden.iter().fold(x.clone(), |h, l| self.act(l, &h));
        out.forward(&h)
    }

    /// The hidden activations of `x` (each from a detached input) and the targets DTP gives them
    /// for the integer labels `labels`, with the output layer's loss.
    pub fn losses(&self, x: &Tensor, labels: &Tensor) -> Losses {
        let (out, hidden) = self.layers.split_last().expect("layers");
        let mut h: Vec<Tensor> = Vec::with_capacity(hidden.len());
        for (i, l) in hidden.iter().enumerate() {
            let input = if i == 0 {
                x.detach()
            } else {
                h[i - 1].detach()
            };
            h.push(self.act(l, &input));
        }
        let top = h.last().expect("hidden layers").detach().requires_grad_();
        let output = out.forward(&top).cross_entropy(labels);
        // ∂ℓ/∂h for the per-example loss ℓ: the mean's gradient times the batch size.
        let rows = x.shape()[0] as f32;
        let step = output.grad_wrt(&[&top]).remove(0) * (self.target_step * rows);
        let mut targets = vec![(&top - step).detach()];
        for i in (1..h.len()).rev() {
            // ĥᵢ₋₁ = hᵢ₋₁ + g(ĥᵢ) − g(hᵢ), with g the inverse from layer i to i − 1.
            let g = &self.inverses[i - 1];
            let above = targets.last().expect("a target");
            let t = h[i - 1].detach() + self.act(g, above) - self.act(g, &h[i].detach());
            targets.push(t.detach());
        }
        targets.reverse();
        let layers = h
            .iter()
            .zip(&targets)
            .map(|(hi, ti)| (hi - ti).square().sum_all() / rows)
            .collect();
        let inverses = (1..h.len())
            .map(|i| {
                let below = h[i - 1].detach();
                let corrupted = &below + Tensor::normal(x.device(), below.shape(), 0.0, self.noise);
                let up = self.act(&hidden[i], &corrupted).detach();
                (self.act(&self.inverses[i - 1], &up) - corrupted)
                    .square()
                    .sum_all()
                    / rows
            })
            .collect();
        Losses {
            output,
            layers,
            inverses,
        }
    }

    /// The forward layers' parameters (`layers.<i>.weight`, …).
    pub fn forward_params(&self) -> Params {
        named("layers", &self.layers)
    }

    /// The inverses' parameters (`inverses.<i>.weight`, …).
    pub fn inverse_params(&self) -> Params {
        named("inverses", &self.inverses)
    }
}

/// The parameters of numbered layers, `<prefix>.<i>.weight`, … (as a `Sequential` names them).
pub fn named(prefix: &str, layers: &[Linear]) -> Params {
    layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| prefixed(&format!("{prefix}.{i}"), l.params()))
        .collect()
}
