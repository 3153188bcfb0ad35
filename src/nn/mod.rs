//! Layers and models: a `Module` maps a tensor to a tensor and names its parameters (PyTorch's
//! naming, so checkpoints line up). A parameter is a `Tensor` handle: two modules holding the
//! same handle share it, and its gradients from both add up.

pub mod generative;
mod init;

use std::cell::Cell;

pub use init::Init;

use crate::{Device, Tensor};

/// Named parameters, in a stable order.
pub type Params = Vec<(String, Tensor)>;

/// A layer or a model.
pub trait Module {
    fn forward(&self, x: &Tensor) -> Tensor;

    /// Named parameters (none by default).
    fn params(&self) -> Params {
        Vec::new()
    }

    /// Switch between training and evaluation behaviour (dropout); no-op by default.
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
}

/// y = x Wᵀ + b, with W of shape `[out, in]` as in PyTorch.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with weights from `init` and a zero bias (if `bias`).
    #[track_caller]
    pub fn new(device: &Device, inputs: usize, outputs: usize, init: Init, bias: bool) -> Linear {
        Linear {
            weight: init.param(device, &[outputs, inputs], inputs, outputs),
            bias: bias.then(|| Init::Zeros.param(device, &[outputs], inputs, outputs)),
        }
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
    fn params(&self) -> Params {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// Elementwise activations as modules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Gelu,
    Softplus,
    Elu(f32),
}

impl Module for Activation {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        match *self {
            Activation::Identity => x.clone(),
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(s) => x.leaky_relu(s),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu(),
            Activation::Softplus => x.softplus(),
            Activation::Elu(a) => x.elu(a),
        }
    }
    fn as_activation(&self) -> Option<Activation> {
        Some(*self)
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
            "softplus" => Activation::Softplus,
            "elu" => Activation::Elu(1.0),
            _ => {
                return Err(format!(
                    "unknown activation `{s}` (relu, sigmoid, tanh, leaky-relu, gelu, softplus, elu, identity)"
                ));
            }
        })
    }
}

/// Inverted dropout: in training, zero each value with probability `p` and scale the rest by
/// 1/(1 − p); in evaluation, the identity.
pub struct Dropout {
    pub p: f32,
    training: Cell<bool>,
}

impl Dropout {
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
}

/// Modules applied in order; parameters named `<index>.<name>` as in PyTorch's `Sequential`.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Append a layer (builder style).
    pub fn with(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    pub fn push(&mut self, layer: impl Module + 'static) {
        self.layers.push(Box::new(layer));
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
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
    fn set_training(&self, on: bool) {
        for l in &self.layers {
            l.set_training(on);
        }
    }
}

/// A multilayer perceptron: `Linear` layers of the given widths with `activation` between them
/// (none after the last), optional dropout after each hidden activation.
pub fn mlp(
    device: &Device,
    widths: &[usize],
    activation: Activation,
    init: Init,
    dropout: f32,
) -> Sequential {
    assert!(
        widths.len() >= 2,
        "mlp: needs at least input and output widths, got {widths:?}"
    );
    let mut s = Sequential::new();
    for (i, w) in widths.windows(2).enumerate() {
        s.push(Linear::new(device, w[0], w[1], init, true));
        if i + 2 < widths.len() {
            s.push(activation);
            if dropout > 0.0 {
                s.push(Dropout::new(dropout));
            }
        }
    }
    s
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
    let terms = logvar.add_scalar(1.0).sub(&mu.square()).sub(&logvar.exp());
    terms.sum_all().mul_scalar(-0.5 / rows as f32)
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
        self.sub(target).square().sum_all().mul_scalar(0.5)
    }
}
