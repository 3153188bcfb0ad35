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
mod machine;

pub use ais::{Ais, AisEstimate, ais, exact_log_partition, log_likelihood};
pub use machine::{Rbm, Visible, base_rate_bias};

use machine::bernoulli;

use crate::nn::{Init, Linear};
use crate::{Grads, Result, Tensor};

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
