//! The machine itself: its parameters, conditionals, sampling and free energy.

use crate::nn::Params;
use crate::{Device, Result, Tensor};

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
pub(super) fn bernoulli(p: &Tensor) -> Tensor {
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

/// The visible bias log(p / (1 − p)) of a unit on with frequency `p` (clipped to
/// [0.001, 0.999]): what [`Rbm::with_visible_bias_from`] starts from, and the biases of the
/// base-rate model [`ais`](super::ais) anneals from.
pub fn base_rate_bias(p: f32) -> f32 {
    let p = p.clamp(1e-3, 1.0 - 1e-3);
    (p / (1.0 - p)).ln()
}
