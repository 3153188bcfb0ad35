//! Restricted Boltzmann machines and deep belief nets (Hinton, Osindero & Teh 2006; Hinton's
//! "practical guide to training RBMs", 2010), with annealed importance sampling of the partition
//! function (Salakhutdinov & Murray 2008).
//!
//! - [`Rbm`]: binary hidden units, binary or Gaussian (unit-variance) visible units; the
//!   conditionals, Gibbs sampling from wgrad's uniform stream (the same seed gives the same
//!   uniforms on every backend; a draw flips only where a probability lies within f32 rounding
//!   of its uniform), and the free energy, whose autograd gradient is the CD update.
//! - [`contrastive_divergence`] (CD-k) and [`persistent_cd`] (PCD, Tieleman 2008): the negative
//!   log-likelihood gradient estimates as [`Grads`], for any optimizer (SGD with momentum and
//!   weight decay, as the guide trains them).
//! - [`ais`]: log Z by annealed importance sampling from a base-rate model, with its standard
//!   error; [`exact_log_partition`] by enumeration for small models (the check of AIS), and
//!   [`log_likelihood`] of data in nats.
//! - [`Dbn`]: RBMs stacked greedily, and unrolled into sigmoid layers for fine-tuning.

mod ais;

pub use ais::{Ais, AisEstimate, ais, exact_log_partition, log_likelihood};

use crate::nn::{Init, Linear, Params};
use crate::{Device, Grads, Result, Tensor};

/// The kind of visible unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visible {
    /// 0 or 1, p(vᵢ = 1 | h) = σ(bᵢ + Wᵢ·h).
    Binary,
    /// Real, unit variance: vᵢ | h ~ N(bᵢ + Wᵢ·h, 1) (standardise the data first).
    Gaussian,
}

/// A restricted Boltzmann machine: energy E(v, h) = −bᵀv − cᵀh − vᵀWh for binary visible units
/// (½‖v − b‖² − cᵀh − vᵀWh for Gaussian ones).
pub struct Rbm {
    /// `[visible, hidden]`.
    pub weight: Tensor,
    /// `[visible]`: b.
    pub visible_bias: Tensor,
    /// `[hidden]`: c.
    pub hidden_bias: Tensor,
    /// The visible units' kind.
    pub visible: Visible,
}

/// 1 with probability `p` (elementwise), from the device's stream.
fn bernoulli(p: &Tensor) -> Tensor {
    Tensor::rand(p.device(), p.shape()).lt(p)
}

impl Rbm {
    /// Weights from N(0, 0.01²) and zero biases, as the practical guide starts.
    #[track_caller]
    pub fn new(device: &Device, visible: usize, hidden: usize, kind: Visible) -> Rbm {
        assert!(
            visible > 0 && hidden > 0,
            "Rbm: needs at least one visible and one hidden unit, got {visible} and {hidden}"
        );
        Rbm {
            weight: Tensor::normal(device, &[visible, hidden], 0.0, 0.01).requires_grad_(),
            visible_bias: Tensor::zeros(device, &[visible]).requires_grad_(),
            hidden_bias: Tensor::zeros(device, &[hidden]).requires_grad_(),
            visible: kind,
        }
    }

    /// Visible biases log(pᵢ / (1 − pᵢ)) from the fraction pᵢ of training images with pixel i on
    /// (clipped to [0.001, 0.999]), as the guide advises for binary units; call before making an
    /// optimizer for the parameters.
    pub fn with_visible_bias_from(mut self, on_fraction: &[f32]) -> Result<Rbm> {
        assert_eq!(
            on_fraction.len(),
            self.visibles(),
            "Rbm::with_visible_bias_from: {} fractions for {} visible units",
            on_fraction.len(),
            self.visibles()
        );
        let b: Vec<f32> = on_fraction.iter().map(|&p| base_rate_bias(p)).collect();
        let v = self.visibles();
        self.visible_bias = Tensor::from_vec(self.weight.device(), b, &[v])?.requires_grad_();
        Ok(self)
    }

    /// Visible units.
    pub fn visibles(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Hidden units.
    pub fn hiddens(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Its parameters: `weight` `[visible, hidden]`, `visible_bias`, `hidden_bias`.
    pub fn params(&self) -> Params {
        vec![
            ("weight".into(), self.weight.clone()),
            ("visible_bias".into(), self.visible_bias.clone()),
            ("hidden_bias".into(), self.hidden_bias.clone()),
        ]
    }

    /// p(h = 1 | v) `[n, hidden]` for visible states `v` `[n, visible]`.
    #[track_caller]
    pub fn hidden_probs(&self, v: &Tensor) -> Tensor {
        (v.matmul(&self.weight) + &self.hidden_bias).sigmoid()
    }

    /// E[v | h] `[n, visible]`: σ(b + Wh) for binary units, b + Wh for Gaussian ones.
    #[track_caller]
    pub fn visible_mean(&self, h: &Tensor) -> Tensor {
        let z = h.matmul(&self.weight.t()) + &self.visible_bias;
        match self.visible {
            Visible::Binary => z.sigmoid(),
            Visible::Gaussian => z,
        }
    }

    /// A sample of h given v.
    #[track_caller]
    pub fn sample_hidden(&self, v: &Tensor) -> Tensor {
        bernoulli(&self.hidden_probs(v))
    }

    /// A sample of v given h.
    #[track_caller]
    pub fn sample_visible(&self, h: &Tensor) -> Tensor {
        let mean = self.visible_mean(h);
        match self.visible {
            Visible::Binary => bernoulli(&mean),
            Visible::Gaussian => &mean + Tensor::randn(mean.device(), mean.shape()),
        }
    }

    /// `k` steps of block Gibbs sampling v → h → v from `v` (sampled states throughout).
    #[track_caller]
    pub fn gibbs(&self, v: &Tensor, k: usize) -> Tensor {
        (0..k).fold(v.clone(), |v, _| {
            self.sample_visible(&self.sample_hidden(&v))
        })
    }

    /// The free energy F(v) = −log Σₕ e^(−E(v, h)) `[n]`: −bᵀv − Σⱼ softplus(cⱼ + vᵀW·ⱼ) for
    /// binary visible units, ½‖v − b‖² − Σⱼ softplus(·) for Gaussian ones. Differentiable: the
    /// gradient of mean F(data) − mean F(samples) is the CD update.
    #[track_caller]
    pub fn free_energy(&self, v: &Tensor) -> Tensor {
        assert!(
            v.rank() == 2 && v.shape()[1] == self.visibles(),
            "Rbm::free_energy: needs [n, {}], got {:?}",
            self.visibles(),
            v.shape()
        );
        let hidden = (v.matmul(&self.weight) + &self.hidden_bias)
            .softplus()
            .sum(1);
        let visible = match self.visible {
            Visible::Binary => -v.matmul(&self.visible_bias.reshape(&[self.visibles(), 1])),
            Visible::Gaussian => (v - &self.visible_bias).square().sum_keepdim(1) * 0.5,
        };
        visible.reshape(&[v.shape()[0]]) - hidden
    }

    /// Mean over the rows of `v` of the squared error Σᵢ (vᵢ − E[vᵢ | p(h | v)])², the
    /// reconstruction through the hidden probabilities (a scalar; a rough gauge of training,
    /// not of likelihood).
    #[track_caller]
    pub fn reconstruction_error(&self, v: &Tensor) -> Tensor {
        let r = self.visible_mean(&self.hidden_probs(v));
        (v - r).square().sum(1).mean(0)
    }
}

/// log(p / (1 − p)) with p clipped to [0.001, 0.999].
pub(crate) fn base_rate_bias(p: f32) -> f32 {
    let p = p.clamp(1e-3, 1.0 - 1e-3);
    (p / (1.0 - p)).ln()
}

/// The gradient estimate of the negative log-likelihood from positive states `data`
/// `[n, visible]` and negative states `negative` `[m, visible]` (m may differ: PCD's chains),
/// with hidden probabilities in both phases: ∂W = −(dataᵀ p(h|data)/n − negativeᵀ
/// p(h|negative)/m), ∂b = −(mean data − mean negative), ∂c = −(mean p(h|data) − mean
/// p(h|negative)).
#[track_caller]
pub fn cd_grads(rbm: &Rbm, data: &Tensor, negative: &Tensor) -> Grads {
    let _no_grad = rbm.weight.device().no_grad();
    grads_from(rbm, data, &rbm.hidden_probs(data), negative)
}

/// [`cd_grads`] with p(h | data) already computed.
fn grads_from(rbm: &Rbm, data: &Tensor, pos: &Tensor, negative: &Tensor) -> Grads {
    let (n, m) = (data.shape()[0] as f32, negative.shape()[0] as f32);
    let neg = rbm.hidden_probs(negative);
    let dw = negative.t().matmul(&neg) * (1.0 / m) - data.t().matmul(pos) * (1.0 / n);
    let db = negative.mean(0) - data.mean(0);
    let dc = neg.mean(0) - pos.mean(0);
    let mut g = Grads::new();
    g.insert(&rbm.weight, dw);
    g.insert(&rbm.visible_bias, db);
    g.insert(&rbm.hidden_bias, dc);
    g
}

/// What a CD or PCD step gives: the gradient estimate and the negative-phase states.
pub struct CdStep {
    /// Gradients of the negative log-likelihood estimate, for an optimizer.
    pub grads: Grads,
    /// The negative states `[n, visible]` the estimate used.
    pub negative: Tensor,
}

/// CD-k: the negative states are `k` Gibbs steps from the data (p(h | data) is computed once,
/// for the first step and for the statistics).
#[track_caller]
pub fn contrastive_divergence(rbm: &Rbm, data: &Tensor, k: usize) -> CdStep {
    assert!(k >= 1, "contrastive_divergence: k must be ≥ 1");
    let _no_grad = rbm.weight.device().no_grad();
    let pos = rbm.hidden_probs(data);
    let first = rbm.sample_visible(&bernoulli(&pos));
    let negative = rbm.gibbs(&first, k - 1);
    CdStep {
        grads: grads_from(rbm, data, &pos, &negative),
        negative,
    }
}

/// PCD-k: the negative states are `chains` (`[chains, visible]`, any number of them) moved `k`
/// Gibbs steps on; `chains` is replaced by the moved states.
#[track_caller]
pub fn persistent_cd(rbm: &Rbm, data: &Tensor, chains: &mut Tensor, k: usize) -> CdStep {
    assert!(k >= 1, "persistent_cd: k must be ≥ 1");
    let negative = {
        let _no_grad = rbm.weight.device().no_grad();
        rbm.gibbs(chains, k)
    };
    *chains = negative.clone();
    CdStep {
        grads: cd_grads(rbm, data, &negative),
        negative,
    }
}

/// A deep belief net: RBMs stacked so that each one's visible units are the hidden units of
/// the one below, trained greedily bottom-up on the hidden probabilities of the layer below.
pub struct Dbn {
    /// The RBMs, bottom first.
    pub layers: Vec<Rbm>,
}

impl Dbn {
    /// Hidden probabilities of the first `depth` RBMs, one above the other, for data `v`.
    #[track_caller]
    pub fn up(&self, v: &Tensor, depth: usize) -> Tensor {
        self.layers[..depth]
            .iter()
            .fold(v.clone(), |h, rbm| rbm.hidden_probs(&h))
    }

    /// The stack as feed-forward layers (weight `[hidden, visible]` = Wᵀ, bias c; sigmoid
    /// units), new parameters initialised from the RBMs, for fine-tuning by backprop.
    pub fn unrolled(&self) -> Result<Vec<Linear>> {
        self.layers
            .iter()
            .map(|rbm| {
                let dev = rbm.weight.device();
                let (v, h) = (rbm.visibles(), rbm.hiddens());
                let mut l = Linear::new(dev, v, h, Init::XavierUniform);
                let w = rbm.weight.t().contiguous().to_vec()?;
                l.weight = Tensor::from_vec(dev, w, &[h, v])?.requires_grad_();
                l.bias =
                    Some(Tensor::from_vec(dev, rbm.hidden_bias.to_vec()?, &[h])?.requires_grad_());
                Ok(l)
            })
            .collect()
    }
}
