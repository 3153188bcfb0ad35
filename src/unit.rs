//! UNIT, unsupervised image-to-image translation (Liu, Breuel & Kautz 2017): two VAE-GANs, one
//! per image domain, that share a latent space. Each domain has its own encoder layers, then
//! both encoders end in the same layers; both generators start in the same layers, then each
//! has its own. An image of either domain encodes to a code that either generator can draw, so
//! `translate(A, B, x)` re-draws an A image in B's style with no paired examples.
//!
//! Losses, as the paper writes them (each term a mean, as its authors' code computes them):
//!
//! - VAE, per domain: λ₁·KL(q(z|x) ‖ N(0, I)) + λ₂·|G(z) − x|₁. The posterior is N(μ(x), I):
//!   only the mean is learnt, so the KL term is ½·mean(μ²) and z = μ + ε, ε ~ N(0, I).
//! - GAN, per domain: each discriminator tells its domain's images from the other domain's
//!   translations; each generator's translations try to pass (non-saturating cross-entropy),
//!   weighted by λ₀.
//! - Cycle consistency: A → B → A (and B → A → B) rebuilds the input: λ₃·KL of the translated
//!   image's code + λ₄·|x_aba − x_a|₁.
//!
//! The paper's weights are the defaults ([`Weights::default`]: λ₀ = 10, λ₁ = λ₃ = 0.1,
//! λ₂ = λ₄ = 100). Layers are MLPs with leaky ReLUs; images are flattened, values in [0, 1]
//! (the generators end in a sigmoid).
//!
//! ```
//! use wgrad::unit::{Domain, Shape, Unit};
//! use wgrad::optim::Adam;
//! use wgrad::{Device, Tensor};
//! let dev = Device::cpu();
//! let shape = Shape { input: 16, private: 8, shared: 8, latent: 4, discriminator: vec![8] };
//! let unit = Unit::new(&dev, &shape);
//! let mut opt_gen = Adam::new(&unit.generator_params(), 1e-4).betas(0.5, 0.999);
//! let mut opt_dis = Adam::new(&unit.discriminator_params(), 1e-4).betas(0.5, 0.999);
//! let (a, b) = (Tensor::rand(&dev, &[4, 16]), Tensor::rand(&dev, &[4, 16]));
//! let step = unit.step(&mut opt_gen, &mut opt_dis, &a, &b)?;
//! assert!(step.losses.total.item()?.is_finite());
//! assert_eq!(unit.translate(Domain::B, Domain::A, &b).shape(), [4, 16]);
//! # Ok::<(), wgrad::Error>(())
//! ```

use crate::nn::generative::{
    Discriminator, DiscriminatorOptions, discriminator_loss, generator_loss, set_trainable,
};
use crate::nn::{Activation, Init, Linear, Module, Params, Sequential, prefixed};
use crate::optim::Optimizer;
use crate::{Device, Result, Tensor};

/// One of the two image domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// The first domain (MNIST in `examples/unit.rs`).
    A,
    /// The second domain (the UCI digits in `examples/unit.rs`).
    B,
}

impl Domain {
    /// The other domain.
    pub fn other(self) -> Domain {
        match self {
            Domain::A => Domain::B,
            Domain::B => Domain::A,
        }
    }
}

/// The widths of a [`Unit`]. Each encoder is `input → private` (its own) then
/// `private → shared → latent` (shared); each generator is `latent → shared → private`
/// (shared) then `private → input` (its own); each discriminator is `input → discriminator… → 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Values per image (both domains).
    pub input: usize,
    /// Width of the layers each domain has to itself.
    pub private: usize,
    /// Width of the shared hidden layer.
    pub shared: usize,
    /// Width of the shared latent code.
    pub latent: usize,
    /// Hidden widths of the discriminators.
    pub discriminator: Vec<usize>,
}

/// The loss weights λ₀ … λ₄ of the paper (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// λ₀: the adversarial terms.
    pub gan: f32,
    /// λ₁: KL of the within-domain codes.
    pub kl: f32,
    /// λ₂: within-domain reconstruction (mean absolute error).
    pub reconstruction: f32,
    /// λ₃: KL of the translated images' codes.
    pub cycle_kl: f32,
    /// λ₄: cycle reconstruction (mean absolute error).
    pub cycle: f32,
}

impl Default for Weights {
    /// The paper's: λ₀ = 10, λ₁ = λ₃ = 0.1, λ₂ = λ₄ = 100.
    fn default() -> Weights {
        Weights {
            gan: 10.0,
            kl: 0.1,
            reconstruction: 100.0,
            cycle_kl: 0.1,
            cycle: 100.0,
        }
    }
}

/// The generator side's loss terms of one step, unweighted, each the sum over both domains.
pub struct Losses {
    /// Within-domain reconstruction: mean |G_A(E_A(a)) − a| + mean |G_B(E_B(b)) − b|.
    pub reconstruction: Tensor,
    /// ½·mean(μ²) of both domains' codes.
    pub kl: Tensor,
    /// The generators' adversarial loss on both translations.
    pub gan: Tensor,
    /// Cycle reconstruction: mean |a_aba − a| + mean |b_bab − b|.
    pub cycle: Tensor,
    /// ½·mean(μ²) of the translated images' codes.
    pub cycle_kl: Tensor,
    /// The weighted sum the generators minimise.
    pub total: Tensor,
    /// A → B translations of the batch (for the discriminator step).
    pub ab: Tensor,
    /// B → A translations of the batch.
    pub ba: Tensor,
}

/// What one [`Unit::step`] trained on.
pub struct Step {
    /// The generator side's terms (before the update).
    pub losses: Losses,
    /// The discriminators' loss on the step's translations (before their update).
    pub discriminator: Tensor,
}

/// Two VAE-GANs with a shared latent space (see the module docs).
pub struct Unit {
    /// A's own encoder layers (`input → private`, leaky ReLU).
    pub encoder_a: Sequential,
    /// B's own encoder layers.
    pub encoder_b: Sequential,
    /// The encoders' shared top (`private → shared → latent`): one set of parameters.
    pub encoder_shared: Sequential,
    /// The generators' shared bottom (`latent → shared → private`): one set of parameters.
    pub generator_shared: Sequential,
    /// A's own generator layer (`private → input` logits).
    pub generator_a: Sequential,
    /// B's own generator layer.
    pub generator_b: Sequential,
    /// Tells A's images from B → A translations.
    pub discriminator_a: Discriminator,
    /// Tells B's images from A → B translations.
    pub discriminator_b: Discriminator,
    /// λ₀ … λ₄.
    pub weights: Weights,
    shape: Shape,
}

const LEAK: Activation = Activation::LeakyRelu(0.2);

fn layers(device: &Device, widths: &[usize], last: Option<Activation>) -> Sequential {
    let mut s = Sequential::new();
    for (k, w) in widths.windows(2).enumerate() {
        s.push(Linear::new(device, w[0], w[1], Init::HeUniform));
        if k + 2 < widths.len() {
            s.push(LEAK);
        } else if let Some(act) = last {
            s.push(act);
        }
    }
    s
}

impl Unit {
    /// A UNIT of the given widths, the paper's loss weights, discriminators with the
    /// minibatch-variance feature (so a generator that draws one image for every input is easy
    /// to spot). Parameters come from the device's seed stream.
    #[track_caller]
    pub fn new(device: &Device, shape: &Shape) -> Unit {
        let s = shape;
        assert!(
            s.input > 0 && s.private > 0 && s.shared > 0 && s.latent > 0,
            "Unit::new: every width must be positive, got {s:?}"
        );
        let dis = || {
            Discriminator::new(
                device,
                s.input,
                &s.discriminator,
                Init::HeUniform,
                DiscriminatorOptions {
                    dropout: 0.0,
                    minibatch_variance: true,
                },
            )
        };
        Unit {
            encoder_a: layers(device, &[s.input, s.private], Some(LEAK)),
            encoder_b: layers(device, &[s.input, s.private], Some(LEAK)),
            encoder_shared: layers(device, &[s.private, s.shared, s.latent], None),
            generator_shared: layers(device, &[s.latent, s.shared, s.private], Some(LEAK)),
            generator_a: layers(device, &[s.private, s.input], None),
            generator_b: layers(device, &[s.private, s.input], None),
            discriminator_a: dis(),
            discriminator_b: dis(),
            weights: Weights::default(),
            shape: shape.clone(),
        }
    }

    /// Give B's own layers (its encoder's first, its generator's last) A's values, so both
    /// domains start from the same mapping between images and codes and train apart from there;
    /// [`Unit::new`] draws them independently. With MLPs nothing else ties a B digit's code to
    /// the A digit of the same shape (convolutions' locality does, in the paper's networks), so
    /// `examples/unit.rs` starts alike by default.
    pub fn start_alike(&self) {
        let pairs = [
            (&self.encoder_a, &self.encoder_b),
            (&self.generator_a, &self.generator_b),
        ];
        for (a, b) in pairs {
            for ((_, pa), (_, pb)) in a.params().iter().zip(b.params()) {
                pb.assign(pa);
            }
        }
    }

    /// The widths it was built with.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The code's mean μ `[n, latent]` of images `x` `[n, input]` from `domain`.
    #[track_caller]
    pub fn encode(&self, domain: Domain, x: &Tensor) -> Tensor {
        let own = match domain {
            Domain::A => &self.encoder_a,
            Domain::B => &self.encoder_b,
        };
        self.encoder_shared.forward(&own.forward(x))
    }

    /// Images in [0, 1] of `domain` drawn from codes `z` `[n, latent]`.
    #[track_caller]
    pub fn generate(&self, domain: Domain, z: &Tensor) -> Tensor {
        let own = match domain {
            Domain::A => &self.generator_a,
            Domain::B => &self.generator_b,
        };
        own.forward(&self.generator_shared.forward(z)).sigmoid()
    }

    /// Images `x` of domain `from` re-drawn in domain `to` through the code's mean (no noise):
    /// a translation when the domains differ, a reconstruction when they are the same.
    #[track_caller]
    pub fn translate(&self, from: Domain, to: Domain, x: &Tensor) -> Tensor {
        self.generate(to, &self.encode(from, x))
    }

    /// The generator side's loss terms on a batch `a` of A and a batch `b` of B (the two
    /// batches unpaired, of any sizes). Codes are drawn as μ + ε with ε from the device's
    /// seed stream.
    #[track_caller]
    pub fn losses(&self, a: &Tensor, b: &Tensor) -> Losses {
        let w = self.weights;
        let noisy = |mu: &Tensor| mu + Tensor::randn(mu.device(), mu.shape());
        let half_mean_square = |mu: &Tensor| mu.square().mean_all() * 0.5;
        let l1 = |x: &Tensor, y: &Tensor| x.sub(y).abs().mean_all();
        let (mu_a, mu_b) = (self.encode(Domain::A, a), self.encode(Domain::B, b));
        let (z_a, z_b) = (noisy(&mu_a), noisy(&mu_b));
        let aa = self.generate(Domain::A, &z_a);
        let bb = self.generate(Domain::B, &z_b);
        let ab = self.generate(Domain::B, &z_a);
        let ba = self.generate(Domain::A, &z_b);
        let reconstruction = l1(&aa, a) + l1(&bb, b);
        let kl = half_mean_square(&mu_a) + half_mean_square(&mu_b);
        let gan =
            generator_loss(&self.discriminator_b, &ab) + generator_loss(&self.discriminator_a, &ba);
        let (mu_ab, mu_ba) = (self.encode(Domain::B, &ab), self.encode(Domain::A, &ba));
        let aba = self.generate(Domain::A, &noisy(&mu_ab));
        let bab = self.generate(Domain::B, &noisy(&mu_ba));
        let cycle = l1(&aba, a) + l1(&bab, b);
        let cycle_kl = half_mean_square(&mu_ab) + half_mean_square(&mu_ba);
        let total = &gan * w.gan
            + &kl * w.kl
            + &reconstruction * w.reconstruction
            + &cycle_kl * w.cycle_kl
            + &cycle * w.cycle;
        Losses {
            reconstruction,
            kl,
            gan,
            cycle,
            cycle_kl,
            total,
            ab,
            ba,
        }
    }

    /// The discriminators' loss: each tells its domain's `real` images from the other domain's
    /// translations `fake` (labels 1 and 0, cross-entropy), weighted by λ₀.
    #[track_caller]
    pub fn discriminator_loss(&self, a: &Tensor, b: &Tensor, ba: &Tensor, ab: &Tensor) -> Tensor {
        let term = |d: &Discriminator, real: &Tensor, fake: &Tensor| {
            let ones = Tensor::ones(real.device(), &[real.shape()[0], 1]);
            let zeros = Tensor::zeros(fake.device(), &[fake.shape()[0], 1]);
            discriminator_loss(d, real, fake, &ones, &zeros)
        };
        (term(&self.discriminator_a, a, ba) + term(&self.discriminator_b, b, ab)) * self.weights.gan
    }

    /// One training step on batches `a` and `b`: the generators' update (with the
    /// discriminators frozen, its gradient passing through them), then the discriminators'
    /// update on this step's translations, detached. Nothing is read back.
    pub fn step(
        &self,
        opt_gen: &mut impl Optimizer,
        opt_dis: &mut impl Optimizer,
        a: &Tensor,
        b: &Tensor,
    ) -> Result<Step> {
        let dis = self.discriminator_params();
        set_trainable(&dis, false);
        let losses = self.losses(a, b);
        let grads = losses.total.backward();
        set_trainable(&dis, true);
        opt_gen.step(&grads)?;
        let discriminator = self.discriminator_loss(a, b, &losses.ba.detach(), &losses.ab.detach());
        opt_dis.step(&discriminator.backward())?;
        Ok(Step {
            losses,
            discriminator,
        })
    }

    /// The encoders' and generators' parameters, each shared one once.
    pub fn generator_params(&self) -> Params {
        let mut p = prefixed("encoder_a", self.encoder_a.params());
        p.extend(prefixed("encoder_b", self.encoder_b.params()));
        p.extend(prefixed("encoder_shared", self.encoder_shared.params()));
        p.extend(prefixed("generator_shared", self.generator_shared.params()));
        p.extend(prefixed("generator_a", self.generator_a.params()));
        p.extend(prefixed("generator_b", self.generator_b.params()));
        p
    }

    /// Both discriminators' parameters.
    pub fn discriminator_params(&self) -> Params {
        let mut p = prefixed("discriminator_a", self.discriminator_a.params());
        p.extend(prefixed("discriminator_b", self.discriminator_b.params()));
        p
    }

    /// Every parameter, generators' first.
    pub fn params(&self) -> Params {
        let mut p = self.generator_params();
        p.extend(self.discriminator_params());
        p
    }
}
