//! Layers and models: a `Module` maps a tensor to a tensor and names its parameters (PyTorch's
//! naming, so checkpoints line up). A parameter is a `Tensor` handle: two modules holding the
//! same handle share it, and its gradients from both add up.

pub mod conv;
pub mod generative;
mod init;
pub mod norm;
pub mod per_sample;

use std::cell::Cell;

pub use init::Init;

use crate::{Device, Tensor};

/// Named parameters, in a stable order.
pub type Params = Vec<(String, Tensor)>;

/// `params` with every name prefixed `<prefix>.` (the parameters of a part of a model).
pub fn prefixed(prefix: &str, params: Params) -> Params {
    params
        .into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect()
}

/// A layer or a model.
pub trait Module {
    /// The module applied to a batch `x`.
    fn forward(&self, x: &Tensor) -> Tensor;

    /// Named parameters (none by default).
    fn params(&self) -> Params {
        Vec::new()
    }

    /// Named state that is not trained but belongs to the model (batch norm's running
    /// statistics): saved in checkpoints beside the parameters, never handed to an optimizer.
    fn buffers(&self) -> Params {
        Vec::new()
    }

    /// Parameters then buffers, as PyTorch's `state_dict` lists them: what a checkpoint of
    /// the model holds.
    fn state_dict(&self) -> Params {
        let mut p = self.params();
        p.extend(self.buffers());
        p
    }

    /// Switch between training and evaluation behaviour (dropout, batch norm); no-op by
    /// default.
    fn set_training(&self, on: bool) {
        let _ = on;
    }

    /// `act(self.forward(x))` in fewer dispatches, for layers that can fuse an activation into
    /// their output (`Linear`); `None` when this layer cannot. `Sequential` uses it to fuse a
    /// layer with the activation module that follows it.
    fn forward_then(&self, x: &Tensor, act: Activation) -> Option<Tensor> {
        let _ = (x, act);
        None
    }

    /// The activation this module applies, if it is nothing but an elementwise activation.
    fn as_activation(&self) -> Option<Activation> {
        None
    }

    /// This module as a `Linear` layer, if it is one (per-sample statistics use its weights).
    fn as_linear(&self) -> Option<&Linear> {
        None
    }

    /// Whether the module works on each element alone (activations, dropout), so that no
    /// sample of a batch affects another's output.
    fn is_elementwise(&self) -> bool {
        false
    }
}

/// y = x Wᵀ + b, with W of shape `[out, in]` as in PyTorch (parameter names `weight`, `bias`).
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`, or none for a layer built with `.bias(false)`.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with weights drawn by `init` and a zero bias:
    /// `Linear::new(&dev, 784, 256, Init::HeUniform)`, or `.bias(false)` for none.
    #[track_caller]
    pub fn new(device: &Device, inputs: usize, outputs: usize, init: Init) -> Linear {
        assert!(
            inputs > 0 && outputs > 0,
            "Linear: widths must be at least 1, got {inputs} inputs and {outputs} outputs"
        );
        Linear {
            weight: init.param(device, &[outputs, inputs], inputs, outputs),
            bias: Some(Init::Zeros.param(device, &[outputs], inputs, outputs)),
        }
    }

    /// Keep the bias (`true`, the default) or drop it (`false`).
    pub fn bias(mut self, on: bool) -> Linear {
        if !on {
            self.bias = None;
        }
        self
    }

    /// A layer sharing another's parameters (gradients from both uses add up).
    pub fn shared(other: &Linear) -> Linear {
        Linear {
            weight: other.weight.clone(),
            bias: other.bias.clone(),
        }
    }
}

impl Module for Linear {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref(), Activation::Identity)
    }
    #[track_caller]
    fn forward_then(&self, x: &Tensor, act: Activation) -> Option<Tensor> {
        Some(x.linear(&self.weight, self.bias.as_ref(), act))
    }
    fn as_linear(&self) -> Option<&Linear> {
        Some(self)
    }
    fn params(&self) -> Params {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// Elementwise activations as modules, each the `Tensor` method of the same name. A `Linear`
/// followed by one in a `Sequential` runs as one fused dispatch where it can (see
/// [`Tensor::linear`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// x.
    Identity,
    /// max(x, 0).
    Relu,
    /// x for x > 0, slope·x otherwise.
    LeakyRelu(f32),
    /// 1 / (1 + e⁻ˣ).
    Sigmoid,
    /// tanh x.
    Tanh,
    /// x·Φ(x), the exact (erf) form of GELU.
    Gelu,
    /// GELU's tanh approximation.
    GeluTanh,
    /// ln(1 + eˣ).
    Softplus,
    /// x for x > 0, α(eˣ − 1) otherwise.
    Elu(f32),
}

impl Activation {
    /// The row of the unary table that computes it, and its parameter (`None`: the identity).
    pub(crate) fn unary_row(self) -> Option<(&'static str, f32)> {
        Some(match self {
            Activation::Identity => return None,
            Activation::Relu => ("relu", 0.0),
            Activation::LeakyRelu(s) => ("leaky_relu", s),
            Activation::Sigmoid => ("sigmoid", 0.0),
            Activation::Tanh => ("tanh", 0.0),
            Activation::Gelu => ("gelu", 0.0),
            Activation::GeluTanh => ("gelu_tanh", 0.0),
            Activation::Softplus => ("softplus", 0.0),
            Activation::Elu(a) => ("elu", a),
        })
    }
}

impl Module for Activation {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        match self.unary_row() {
            None => x.clone(),
            Some((row, a)) => x.unary(row, a, 0.0),
        }
    }
    fn as_activation(&self) -> Option<Activation> {
        Some(*self)
    }
    fn is_elementwise(&self) -> bool {
        true
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Activation, String> {
        Ok(match s {
            "identity" | "linear" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky-relu" | "leaky_relu" => Activation::LeakyRelu(0.01),
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "gelu" => Activation::Gelu,
            "gelu-tanh" | "gelu_tanh" => Activation::GeluTanh,
            "softplus" => Activation::Softplus,
            "elu" => Activation::Elu(1.0),
            _ => {
                return Err(format!(
                    "unknown activation `{s}` (relu, sigmoid, tanh, leaky-relu, gelu, gelu-tanh, softplus, elu, identity)"
                ));
            }
        })
    }
}

/// Inverted dropout: in training, zero each value with probability `p` and scale the rest by
/// 1/(1 − p); in evaluation, the identity.
pub struct Dropout {
    /// The probability of zeroing a value, in [0, 1).
    pub p: f32,
    training: Cell<bool>,
}

impl Dropout {
    /// Dropout with probability `p` in [0, 1), in training mode.
    pub fn new(p: f32) -> Dropout {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: probability {p} outside [0, 1)"
        );
        Dropout {
            p,
            training: Cell::new(true),
        }
    }
}

impl Module for Dropout {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        if self.training.get() {
            x.dropout(self.p)
        } else {
            x.clone()
        }
    }
    fn set_training(&self, on: bool) {
        self.training.set(on);
    }
    fn is_elementwise(&self) -> bool {
        true
    }
}

/// Modules applied in order; parameters named `<index>.<name>` as in PyTorch's `Sequential`.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// No layers yet.
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Append a layer (builder style).
    pub fn with(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Append a layer.
    pub fn push(&mut self, layer: impl Module + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// Number of layers (activations and dropout count as layers).
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers, in order.
    pub fn layers(&self) -> impl Iterator<Item = &dyn Module> {
        self.layers.iter().map(|l| l.as_ref())
    }
}

impl Module for Sequential {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        let mut layers = self.layers.iter().peekable();
        while let Some(layer) = layers.next() {
            let next_act = layers.peek().and_then(|l| l.as_activation());
            if let Some(fused) = next_act.and_then(|act| layer.forward_then(&h, act)) {
                h = fused;
                layers.next();
            } else {
                h = layer.forward(&h);
            }
        }
        h
    }
    fn params(&self) -> Params {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(l.params().into_iter().map(|(n, t)| (format!("{i}.{n}"), t)));
        }
        out
    }
    fn buffers(&self) -> Params {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(
                l.buffers()
                    .into_iter()
                    .map(|(n, t)| (format!("{i}.{n}"), t)),
            );
        }
        out
    }
    fn state_dict(&self) -> Params {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(
                l.state_dict()
                    .into_iter()
                    .map(|(n, t)| (format!("{i}.{n}"), t)),
            );
        }
        out
    }
    fn set_training(&self, on: bool) {
        for l in &self.layers {
            l.set_training(on);
        }
    }
}

/// A multilayer perceptron's shape: `Linear` layers of the given widths with an activation
/// between them (none after the last) and optional dropout after each hidden activation.
/// [`Mlp::build`] makes it a [`Sequential`] (parameters `0.weight`, `0.bias`, `2.weight`, … as
/// in PyTorch's `nn.Sequential`):
///
/// ```
/// use wgrad::nn::{Activation, Init, Mlp, Module};
/// let dev = wgrad::Device::cpu();
/// let model = Mlp::new(&[784, 256, 10])
///     .activation(Activation::Relu)
///     .init(Init::HeUniform)
///     .dropout(0.1)
///     .build(&dev);
/// assert_eq!(model.params().len(), 4);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    widths: Vec<usize>,
    activation: Activation,
    init: Init,
    dropout: f32,
}

impl Mlp {
    /// Widths from input to output (at least two, each ≥ 1); ReLU, He-uniform init, no dropout.
    #[track_caller]
    pub fn new(widths: &[usize]) -> Mlp {
        assert!(
            widths.len() >= 2,
            "Mlp: needs at least input and output widths, got {widths:?}"
        );
        assert!(
            widths.iter().all(|&w| w > 0),
            "Mlp: every width must be at least 1, got {widths:?}"
        );
        Mlp {
            widths: widths.to_vec(),
            activation: Activation::Relu,
            init: Init::HeUniform,
            dropout: 0.0,
        }
    }

    /// The activation between layers.
    pub fn activation(mut self, activation: Activation) -> Mlp {
        self.activation = activation;
        self
    }

    /// How the weights are drawn (biases start at zero).
    pub fn init(mut self, init: Init) -> Mlp {
        self.init = init;
        self
    }

    /// Dropout probability after each hidden activation, in [0, 1).
    #[track_caller]
    pub fn dropout(mut self, p: f32) -> Mlp {
        assert!(
            (0.0..1.0).contains(&p),
            "Mlp: dropout probability {p} outside [0, 1)"
        );
        self.dropout = p;
        self
    }

    /// The layers, with weights drawn from `device`'s seed stream.
    #[track_caller]
    pub fn build(&self, device: &Device) -> Sequential {
        let mut s = Sequential::new();
        for (i, w) in self.widths.windows(2).enumerate() {
            s.push(Linear::new(device, w[0], w[1], self.init));
            if i + 2 < self.widths.len() {
                s.push(self.activation);
                if self.dropout > 0.0 {
                    s.push(Dropout::new(self.dropout));
                }
            }
        }
        s
    }
}

/// KL(N(μ, σ²) ‖ N(0, 1)) summed over latent dims and averaged over rows, from `mu` and
/// `logvar` = ln σ² of shape `[batch, latent]`: −½ Σ (1 + logvar − μ² − e^logvar).
#[track_caller]
pub fn kl_unit_gaussian(mu: &Tensor, logvar: &Tensor) -> Tensor {
    assert_eq!(
        mu.shape(),
        logvar.shape(),
        "kl_unit_gaussian: mu {:?} and logvar {:?} differ in shape",
        mu.shape(),
        logvar.shape()
    );
    let rows = if mu.rank() >= 2 { mu.shape()[0] } else { 1 };
    let terms = logvar + 1.0 - mu.square() - logvar.exp();
    terms.sum_all() * (-0.5 / rows as f32)
}

impl Tensor {
    /// ½ Σ (self − target)², the squared-error form of classic backpropagation texts.
    #[track_caller]
    pub fn half_sse(&self, target: &Tensor) -> Tensor {
        assert_eq!(
            self.shape(),
            target.shape(),
            "half_sse: prediction {:?} and target {:?} differ in shape",
            self.shape(),
            target.shape()
        );
        (self - target).square().sum_all() * 0.5
    }
}
