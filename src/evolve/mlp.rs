//! A multilayer perceptron evaluated for a whole population at once.

use crate::nn::{Activation, Module};
use crate::{Device, Result, Tensor};

/// An MLP whose parameters are one row per population member, `[P, D]`. Each row holds, layer by
/// layer, the weight `[in, out]` (row-major, so a layer is `x · W + b`) and then the bias `[out]`.
/// The forward pass of all P members is one batched matmul per layer.
#[derive(Clone, Debug)]
pub struct PopulationMlp {
    widths: Vec<usize>,
    activation: Activation,
}

impl PopulationMlp {
    /// Layers of `widths` (input first), `activation` after every layer but the last.
    #[track_caller]
    pub fn new(widths: &[usize], activation: Activation) -> PopulationMlp {
        assert!(
            widths.len() >= 2 && widths.iter().all(|&w| w > 0),
            "PopulationMlp: needs at least two positive widths, got {widths:?}"
        );
        PopulationMlp {
            widths: widths.to_vec(),
            activation,
        }
    }

    /// The widths, input first.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Parameters per member, D.
    pub fn params(&self) -> usize {
        self.widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// (offset of the weight in a row, in, out) of every layer.
    fn layers(&self) -> Vec<(usize, usize, usize)> {
        let mut offset = 0;
        self.widths
            .windows(2)
            .map(|w| {
                let at = offset;
                offset += w[0] * w[1] + w[1];
                (at, w[0], w[1])
            })
            .collect()
    }

    /// The standard deviation each parameter is initialised with, `[D]`: 1/√in for weights
    /// (LeCun's normal initialisation), 0 for biases.
    pub fn init_scale(&self, device: &Device) -> Result<Tensor> {
        let mut s = Vec::with_capacity(self.params());
        for (_, i, o) in self.layers() {
            s.extend(std::iter::repeat_n(1.0 / (i as f32).sqrt(), i * o));
            s.extend(std::iter::repeat_n(0.0, o));
        }
        Tensor::from_vec(device, s, &[self.params()])
    }

    /// Outputs `[P, B, out]` of every member for inputs `x`: `[B, in]` shared by all members,
    /// or `[P, B, in]`, one batch each. `params` is `[P, D]`.
    #[track_caller]
    pub fn forward(&self, params: &Tensor, x: &Tensor) -> Tensor {
        self.forward_layers(&self.unpack(params), x)
    }

    /// Every layer's weights `[P, in, out]` and biases `[P, 1, out]` from `params` `[P, D]`: do
    /// this once where the same population runs many forward passes (an episode's steps).
    #[track_caller]
    pub fn unpack(&self, params: &Tensor) -> Vec<(Tensor, Tensor)> {
        let d = self.params();
        assert!(
            params.rank() == 2 && params.shape()[1] == d,
            "PopulationMlp: params must be [P, {d}], got {:?}",
            params.shape()
        );
        let p = params.shape()[0];
        self.layers()
            .into_iter()
            .map(|(at, i, o)| {
                let w = params.narrow(1, at, i * o).reshape(&[p, i, o]);
                let b = params.narrow(1, at + i * o, o).reshape(&[p, 1, o]);
                (w, b)
            })
            .collect()
    }

    /// [`forward`](Self::forward) from [`unpack`](Self::unpack)ed layers.
    #[track_caller]
    pub fn forward_layers(&self, layers: &[(Tensor, Tensor)], x: &Tensor) -> Tensor {
        let p = layers.first().map_or(0, |(w, _)| w.shape()[0]);
        let input = self.widths[0];
        assert!(
            (x.rank() == 2 && x.shape()[1] == input)
                || (x.rank() == 3 && x.shape()[0] == p && x.shape()[2] == input),
            "PopulationMlp::forward: inputs must be [B, {input}] or [{p}, B, {input}], got {:?}",
            x.shape()
        );
        let mut h = x.clone();
        for (k, (w, b)) in layers.iter().enumerate() {
            h = h.matmul(w) + b;
            if k + 1 < layers.len() {
                h = self.activation.forward(&h);
            }
        }
        h
    }

    /// One member's outputs `[B, out]` from its parameters `[D]`, with plain matrix products (the
    /// batched [`forward`](Self::forward) equals this row by row).
    #[track_caller]
    pub fn forward_one(&self, params: &Tensor, x: &Tensor) -> Tensor {
        assert!(
            params.shape() == [self.params()] && x.rank() == 2,
            "PopulationMlp::forward_one: params must be [{}] and inputs [B, in], got {:?} and {:?}",
            self.params(),
            params.shape(),
            x.shape()
        );
        let layers = self.layers();
        let mut h = x.clone();
        for (k, &(at, i, o)) in layers.iter().enumerate() {
            let w = params.narrow(0, at, i * o).reshape(&[i, o]);
            let b = params.narrow(0, at + i * o, o);
            h = h.matmul(&w) + b;
            if k + 1 < layers.len() {
                h = self.activation.forward(&h);
            }
        }
        h
    }

    /// Mean cross-entropy `[P]` of every member's logits on inputs `x` `[B, in]` with integer
    /// labels `[B]`.
    #[track_caller]
    pub fn cross_entropy(&self, params: &Tensor, x: &Tensor, labels: &Tensor) -> Tensor {
        let logits = self.forward(params, x);
        let (p, b, c) = (logits.shape()[0], logits.shape()[1], logits.shape()[2]);
        let labels = labels
            .reshape(&[1, b])
            .broadcast_to(&[p, b])
            .reshape(&[p * b]);
        logits
            .reshape(&[p * b, c])
            .cross_entropy_rows(&labels)
            .reshape(&[p, b])
            .mean(1)
    }

    /// Accuracy `[P]` (a fraction) of every member on inputs `x` `[B, in]` with labels `[B]`.
    #[track_caller]
    pub fn accuracy(&self, params: &Tensor, x: &Tensor, labels: &Tensor) -> Tensor {
        let logits = self.forward(params, x);
        let b = logits.shape()[1];
        logits.argmax(2).eq(&labels.reshape(&[1, b])).mean(1)
    }
}
