//! Generative models and the pieces they are built from: the reparameterisation trick, the
//! L2-pooling sparsity penalty, the minibatch-variance feature, noisy discriminator labels, a
//! history buffer of generated samples; the models of the autoencoder, VAE and GAN examples; and
//! two ways to measure them — a PCA baseline (f64, on the host) and a judge that scores samples
//! with a classifier checkpoint. Everything on the device is written with ordinary tensor ops, so
//! it runs (and differentiates) on every backend.

mod pca;
mod xcov;

use std::path::Path;

pub use pca::Pca;
pub use xcov::xcov;

use super::conv::{Conv2d, ConvTranspose2d, Flatten, Unflatten};
use super::norm::BatchNorm2d;
use super::{
    Activation, Dropout, Init, Linear, Mlp, Module, Params, Sequential, kl_unit_gaussian, prefixed,
};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::{Conv, Device, Tensor};

// ----- pieces ------------------------------------------------------------------------------------

/// The reparameterisation trick: z = μ + e^(logvar/2) · ε with ε ~ N(0, 1) drawn from the
/// device's seed stream, so gradients reach μ and logvar through a random sample.
#[track_caller]
pub fn reparameterize(mu: &Tensor, logvar: &Tensor) -> Tensor {
    let eps = Tensor::randn(mu.device(), mu.shape());
    reparameterize_with(mu, logvar, &eps)
}

/// [`reparameterize`] with given noise `eps` (of the shape of `mu`).
#[track_caller]
pub fn reparameterize_with(mu: &Tensor, logvar: &Tensor, eps: &Tensor) -> Tensor {
    assert!(
        mu.shape() == logvar.shape() && mu.shape() == eps.shape(),
        "reparameterize: mu {:?}, logvar {:?} and eps {:?} must have one shape",
        mu.shape(),
        logvar.shape(),
        eps.shape()
    );
    mu + (logvar * 0.5).exp() * eps
}

/// The L2-pooling sparsity penalty on a code `[batch, units]`: units are pooled in adjacent
/// groups of `pool`, and each group costs √(ε + Σ h²) — near |h| for a lone unit, and a whole
/// group is pushed to zero together. Summed over groups, averaged over rows; multiply by λ.
#[track_caller]
pub fn l2_pool_penalty(code: &Tensor, pool: usize, eps: f32) -> Tensor {
    let rows = code.shape()[0];
    (pooled_squares("l2_pool_penalty", code, pool) + eps)
        .sqrt()
        .sum_all()
        * (1.0 / rows as f32)
}

/// The pooled norms √(Σ h²) of the code's groups of `pool` units: `[batch, units / pool]`.
#[track_caller]
pub fn l2_pooled(code: &Tensor, pool: usize) -> Tensor {
    pooled_squares("l2_pooled", code, pool).sqrt()
}

/// Σ h² over each group of `pool` adjacent units: `[batch, units / pool]`.
#[track_caller]
fn pooled_squares(op: &str, code: &Tensor, pool: usize) -> Tensor {
    assert!(
        code.rank() == 2 && pool > 0 && code.shape()[1] % pool == 0,
        "{op}: needs a code [batch, units] with units a multiple of the pool size, got {:?} \
         and pool {pool}",
        code.shape()
    );
    let (rows, units) = (code.shape()[0], code.shape()[1]);
    code.reshape(&[rows, units / pool, pool]).square().sum(-1)
}

/// The minibatch-variance feature of a batch `[batch, ...]`: each feature's variance across the
/// batch, averaged over features — one number for the whole batch, repeated as a column
/// `[batch, 1]`. A generator that collapses onto a few outputs makes it small, and the
/// discriminator can see that.
#[track_caller]
pub fn minibatch_variance(x: &Tensor) -> Tensor {
    let rows = x.shape()[0];
    x.flatten_from(1)
        .var_keepdim(0)
        .mean_keepdim(1)
        .broadcast_to(&[rows, 1])
}

/// The batch flattened to `[batch, features]` with [`minibatch_variance`] as one more column.
#[track_caller]
pub fn append_minibatch_variance(x: &Tensor) -> Tensor {
    Tensor::concat(&[&x.flatten_from(1), &minibatch_variance(x)], 1)
}

/// Discriminator targets `[n, 1]`: `value` (1 for real, 0 for fake), each flipped with
/// probability `flip`, then moved towards ½ by a uniform amount in [0, `smooth`].
#[track_caller]
pub fn noisy_labels(device: &Device, n: usize, value: f32, flip: f32, smooth: f32) -> Tensor {
    let mut labels = Tensor::full(device, &[n, 1], value);
    if flip > 0.0 {
        let flipped = Tensor::bernoulli(device, &[n, 1], flip);
        labels = flipped.where_cond(&Tensor::full(device, &[n, 1], 1.0 - value), &labels);
    }
    if smooth > 0.0 {
        let shift = Tensor::uniform(device, &[n, 1], 0.0, smooth);
        labels = labels.add(&shift.mul(&labels.affine(-2.0, 1.0)));
    }
    labels
}

/// Turn gradients of `params` on or off (a network that is only passed through, such as the
/// discriminator during the generator's step, then costs no weight gradients).
pub fn set_trainable(params: &Params, on: bool) {
    for (_, p) in params {
        p.set_requires_grad(on);
    }
}

/// A store of past generated samples, kept on the device: until it is full every pushed sample
/// is kept; after that each one replaces a stored sample at random. Showing the discriminator
/// old samples beside new ones keeps it from forgetting what the generator used to make.
pub struct HistoryBuffer {
    capacity: usize,
    stored: Option<Tensor>,
    rng: Rng,
}

impl HistoryBuffer {
    /// An empty buffer of `capacity` samples; `seed` drives which samples are replaced and drawn.
    pub fn new(capacity: usize, seed: u64) -> HistoryBuffer {
        assert!(capacity > 0, "HistoryBuffer: capacity must be positive");
        HistoryBuffer {
            capacity,
            stored: None,
            rng: Rng::new(seed),
        }
    }

    /// Most samples held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.stored.as_ref().map_or(0, |t| t.shape()[0])
    }

    /// Whether no sample is held yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What a checkpoint must hold to continue exactly: the stored samples (`<prefix>.samples`)
    /// and where the buffer's random stream stands (`<prefix>.rng.seed`, `<prefix>.rng.counter`).
    pub fn state(&self, prefix: &str) -> crate::train::State {
        let (seed, counter) = self.rng.state();
        crate::train::State {
            tensors: self
                .stored
                .iter()
                .map(|t| (format!("{prefix}.samples"), t.clone()))
                .collect(),
            values: vec![
                (format!("{prefix}.rng.seed"), seed.to_string()),
                (format!("{prefix}.rng.counter"), counter.to_string()),
            ],
        }
    }

    /// Continue from what [`HistoryBuffer::state`] saved in `checkpoint` (read from `path`),
    /// with the samples on `device`.
    pub fn restore(
        &mut self,
        checkpoint: &crate::checkpoint::Checkpoint,
        path: &Path,
        prefix: &str,
        device: &Device,
    ) -> Result<()> {
        let meta = |key: &str| checkpoint.meta::<u64>(path, &format!("{prefix}.{key}"));
        let counter = u32::try_from(meta("rng.counter")?).map_err(|_| Error::BadFile {
            path: path.to_path_buf(),
            message: format!("`{prefix}.rng.counter` is out of range"),
        })?;
        self.rng = Rng::from_state((meta("rng.seed")?, counter));
        self.stored = match checkpoint.tensors.get(&format!("{prefix}.samples")) {
            Some((shape, values)) => Some(Tensor::from_f64(device, values, shape)?),
            None => None,
        };
        Ok(())
    }

    /// `n` stored samples, drawn at random without repeats; `None` while fewer than `n` are held.
    pub fn sample(&mut self, n: usize) -> Result<Option<Tensor>> {
        let Some(stored) = &self.stored else {
            return Ok(None);
        };
        let held = stored.shape()[0];
        if n > held {
            return Ok(None);
        }
        let mut order: Vec<usize> = (0..held).collect();
        self.rng.shuffle(&mut order);
        let picks: Vec<f32> = order[..n].iter().map(|&i| i as f32).collect();
        let index = Tensor::from_vec(stored.device(), picks, &[n])?;
        Ok(Some(stored.gather_rows(&index)))
    }

    /// Store (detached) the samples of `batch` `[n, ...]`.
    pub fn push(&mut self, batch: &Tensor) -> Result<()> {
        let batch = batch.detach();
        let Some(stored) = &self.stored else {
            let keep = batch.shape()[0].min(self.capacity);
            self.stored = Some(batch.narrow(0, 0, keep));
            return Ok(());
        };
        assert_eq!(
            stored.shape()[1..],
            batch.shape()[1..],
            "HistoryBuffer::push: samples of shape {:?} into a buffer of {:?}",
            &batch.shape()[1..],
            &stored.shape()[1..]
        );
        let (held, new) = (stored.shape()[0], batch.shape()[0]);
        let mut index: Vec<usize> = (0..held).collect();
        for k in 0..new {
            if index.len() < self.capacity {
                index.push(held + k);
            } else {
                let slot = self.rng.below(self.capacity);
                index[slot] = held + k;
            }
        }
        let index: Vec<f32> = index.into_iter().map(|i| i as f32).collect();
        let n = index.len();
        let index = Tensor::from_vec(batch.device(), index, &[n])?;
        self.stored = Some(Tensor::concat(&[stored, &batch], 0).gather_rows(&index));
        Ok(())
    }
}

// ----- autoencoder -------------------------------------------------------------------------------

/// A narrowing MLP autoencoder: `input → hidden… → code → hidden reversed… → input`, with
/// `activation` between layers, a linear code and a sigmoid output (images in [0, 1]).
pub struct Autoencoder {
    /// `input → hidden… → code`.
    pub encoder: Sequential,
    /// `code → hidden reversed… → input`, ending in a sigmoid.
    pub decoder: Sequential,
}

impl Autoencoder {
    #[track_caller]
    /// An autoencoder of `input` values through `hidden` widths to a `code` of that width.
    pub fn new(
        device: &Device,
        input: usize,
        hidden: &[usize],
        code: usize,
        activation: Activation,
        init: Init,
    ) -> Autoencoder {
        let down: Vec<usize> = [&[input][..], hidden, &[code]].concat();
        let up: Vec<usize> = down.iter().rev().copied().collect();
        Autoencoder {
            encoder: Mlp::new(&down)
                .activation(activation)
                .init(init)
                .build(device),
            decoder: Mlp::new(&up)
                .activation(activation)
                .init(init)
                .build(device)
                .with(Activation::Sigmoid),
        }
    }

    /// The code `[batch, code]` of inputs `[batch, input]`.
    #[track_caller]
    pub fn encode(&self, x: &Tensor) -> Tensor {
        self.encoder.forward(x)
    }

    /// Images in [0, 1] from codes.
    #[track_caller]
    pub fn decode(&self, code: &Tensor) -> Tensor {
        self.decoder.forward(code)
    }
}

impl Module for Autoencoder {
    /// The reconstruction of `x`.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.decode(&self.encode(x))
    }
    fn params(&self) -> Params {
        let mut p = prefixed("encoder", self.encoder.params());
        p.extend(prefixed("decoder", self.decoder.params()));
        p
    }
}

// ----- variational autoencoder -------------------------------------------------------------------

/// A VAE with a diagonal Gaussian posterior and a Bernoulli decoder: the encoder maps
/// `input → hidden… → 2·latent` (μ, then log σ²), the decoder `latent → hidden reversed… → input`
/// logits.
pub struct Vae {
    /// `input → hidden… → 2·latent` (μ, then log σ²).
    pub encoder: Sequential,
    /// `latent → hidden reversed… → input` logits.
    pub decoder: Sequential,
    /// Width of the latent code.
    pub latent: usize,
}

/// One pass of a [`Vae`] over a batch.
pub struct VaeOutput {
    /// The posterior means `[batch, latent]`.
    pub mu: Tensor,
    /// The posterior log-variances.
    pub logvar: Tensor,
    /// The latent codes drawn by the reparameterisation trick.
    pub z: Tensor,
    /// Decoder logits; the reconstruction is their sigmoid.
    pub logits: Tensor,
}

/// The terms of the negative ELBO, per image (averaged over the batch), in nats.
pub struct VaeLoss {
    /// −log p(x | z) under the Bernoulli decoder (binary cross-entropy summed over pixels).
    pub reconstruction: Tensor,
    /// KL(q(z | x) ‖ N(0, I)).
    pub kl: Tensor,
    /// reconstruction + β·KL: what training minimises (the negative ELBO when β = 1).
    pub total: Tensor,
}

impl Vae {
    #[track_caller]
    /// A VAE of `input` values through `hidden` widths to `latent` Gaussian latents.
    pub fn new(
        device: &Device,
        input: usize,
        hidden: &[usize],
        latent: usize,
        activation: Activation,
        init: Init,
    ) -> Vae {
        let down: Vec<usize> = [&[input][..], hidden, &[2 * latent]].concat();
        let mut up: Vec<usize> = [&[input][..], hidden, &[latent]].concat();
        up.reverse();
        Vae {
            encoder: Mlp::new(&down)
                .activation(activation)
                .init(init)
                .build(device),
            decoder: Mlp::new(&up)
                .activation(activation)
                .init(init)
                .build(device),
            latent,
        }
    }

    /// The posterior's mean and log-variance, each `[batch, latent]`.
    #[track_caller]
    pub fn encode(&self, x: &Tensor) -> (Tensor, Tensor) {
        let h = self.encoder.forward(x);
        (
            h.narrow(1, 0, self.latent),
            h.narrow(1, self.latent, self.latent),
        )
    }

    /// Decoder logits of latent codes `[batch, latent]`.
    #[track_caller]
    pub fn decode_logits(&self, z: &Tensor) -> Tensor {
        self.decoder.forward(z)
    }

    /// Images in [0, 1] (the Bernoulli means) of latent codes.
    #[track_caller]
    pub fn decode(&self, z: &Tensor) -> Tensor {
        self.decode_logits(z).sigmoid()
    }

    /// Encode, draw z by the reparameterisation trick, decode.
    #[track_caller]
    pub fn run(&self, x: &Tensor) -> VaeOutput {
        let (mu, logvar) = self.encode(x);
        let z = reparameterize(&mu, &logvar);
        let logits = self.decode_logits(&z);
        VaeOutput {
            mu,
            logvar,
            z,
            logits,
        }
    }

    /// The loss of a batch `x` with values in [0, 1], with the KL term weighted by `beta`.
    #[track_caller]
    pub fn loss(&self, x: &Tensor, beta: f32) -> VaeLoss {
        self.run(x).loss(x, beta)
    }
}

impl VaeOutput {
    /// The loss terms of this pass over the batch `x`, with the KL term weighted by `beta`.
    #[track_caller]
    pub fn loss(&self, x: &Tensor, beta: f32) -> VaeLoss {
        let rows = x.shape()[0] as f32;
        let reconstruction = self.logits.bce_logits_elementwise(x).sum_all() * (1.0 / rows);
        let kl = kl_unit_gaussian(&self.mu, &self.logvar);
        let total = &reconstruction + &kl * beta;
        VaeLoss {
            reconstruction,
            kl,
            total,
        }
    }
}

impl Module for Vae {
    /// A reconstruction of `x` through one sampled z.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.run(x).logits.sigmoid()
    }
    fn params(&self) -> Params {
        let mut p = prefixed("encoder", self.encoder.params());
        p.extend(prefixed("decoder", self.decoder.params()));
        p
    }
}

// ----- generative adversarial network ------------------------------------------------------------

/// A GAN generator: noise `[batch, latent]` → `hidden…` → images `[batch, output]` in [−1, 1]
/// (a tanh output).
pub struct Generator {
    /// `latent → hidden… → output`, ending in a tanh.
    pub net: Sequential,
    /// Width of the noise.
    pub latent: usize,
}

impl Generator {
    #[track_caller]
    /// A generator of `output` values from `latent` standard-normal noise, ReLUs between layers.
    pub fn new(
        device: &Device,
        latent: usize,
        hidden: &[usize],
        output: usize,
        init: Init,
    ) -> Generator {
        let widths: Vec<usize> = [&[latent][..], hidden, &[output]].concat();
        Generator {
            net: Mlp::new(&widths)
                .init(init)
                .build(device)
                .with(Activation::Tanh),
            latent,
        }
    }

    /// `n` images from fresh noise.
    #[track_caller]
    pub fn sample(&self, device: &Device, n: usize) -> Tensor {
        self.forward(&Tensor::randn(device, &[n, self.latent]))
    }
}

impl Generator {
    /// A DCGAN-style generator of 28×28 images (flattened to 784, as [`Generator::new`]'s):
    /// noise → linear to `2·width` maps of 7×7 → batch norm, ReLU → a transposed convolution
    /// (4×4, stride 2) to `width` maps of 14×14 → batch norm, ReLU → one to 1 map of 28×28 →
    /// tanh. Weights drawn from N(0, 0.02²) as in Radford et al.; batch norm starts at 1 and 0.
    #[track_caller]
    pub fn conv(device: &Device, latent: usize, width: usize) -> Generator {
        assert!(
            latent > 0 && width > 0,
            "Generator::conv: latent {latent} and width {width} must be at least 1"
        );
        let dcgan = Init::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let up = Conv::default().stride(2).padding(1);
        let mut first = Linear::new(device, latent, 2 * width * 49, dcgan);
        first.bias = None;
        let mut mid = ConvTranspose2d::new(device, 2 * width, width, 4, up).bias(false);
        mid.weight = dcgan.param(device, mid.weight.shape(), 1, 1);
        let mut last = ConvTranspose2d::new(device, width, 1, 4, up);
        last.weight = dcgan.param(device, last.weight.shape(), 1, 1);
        let net = Sequential::new()
            .with(first)
            .with(Unflatten(vec![2 * width, 7, 7]))
            .with(BatchNorm2d::new(device, 2 * width))
            .with(Activation::Relu)
            .with(mid)
            .with(BatchNorm2d::new(device, width))
            .with(Activation::Relu)
            .with(last)
            .with(Activation::Tanh)
            .with(Flatten);
        Generator { net, latent }
    }
}

impl Module for Generator {
    #[track_caller]
    fn forward(&self, z: &Tensor) -> Tensor {
        self.net.forward(z)
    }
    fn params(&self) -> Params {
        self.net.params()
    }
    fn buffers(&self) -> Params {
        self.net.buffers()
    }
    fn state_dict(&self) -> Params {
        self.net.state_dict()
    }
    fn set_training(&self, on: bool) {
        self.net.set_training(on);
    }
}

/// A GAN discriminator: images `[batch, input]` → `hidden…` → one logit per image ("real"),
/// leaky ReLUs with optional dropout between layers, and optionally the minibatch-variance
/// feature as one more input.
pub struct Discriminator {
    /// Convolutional layers from the images to a feature vector, or none (an MLP on pixels).
    pub features: Option<Sequential>,
    /// The layers after the features (the first takes one more input with the
    /// minibatch-variance feature).
    pub net: Sequential,
    /// Whether the minibatch-variance feature is appended to every input.
    pub minibatch_variance: bool,
}

/// The switchable parts of a [`Discriminator`]; `Default` is neither.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiscriminatorOptions {
    /// Dropout probability after each hidden activation, in [0, 1).
    pub dropout: f32,
    /// Append the minibatch-variance feature (mean standard deviation over the batch) to every
    /// input, so the discriminator can see a collapsed batch.
    pub minibatch_variance: bool,
}

impl Discriminator {
    /// `input → hidden… → 1` with leaky ReLUs (slope 0.2):
    /// `Discriminator::new(&dev, 784, &[512, 256], Init::XavierUniform,
    /// DiscriminatorOptions { dropout: 0.3, minibatch_variance: true })`.
    #[track_caller]
    pub fn new(
        device: &Device,
        input: usize,
        hidden: &[usize],
        init: Init,
        options: DiscriminatorOptions,
    ) -> Discriminator {
        let minibatch_variance = options.minibatch_variance;
        let first = input + usize::from(minibatch_variance);
        let widths: Vec<usize> = [&[first][..], hidden, &[1]].concat();
        Discriminator {
            features: None,
            net: Mlp::new(&widths)
                .activation(Activation::LeakyRelu(0.2))
                .init(init)
                .dropout(options.dropout)
                .build(device),
            minibatch_variance,
        }
    }

    /// A DCGAN-style discriminator of 28×28 images (flattened to 784): a 4×4 convolution with
    /// stride 2 to `width` maps of 14×14 → leaky ReLU (0.2) → one to `2·width` maps of 7×7 →
    /// batch norm → leaky ReLU, with the options' dropout after each; then the features (and
    /// the minibatch-variance feature, when on) → one logit. Weights from N(0, 0.02²).
    #[track_caller]
    pub fn conv(device: &Device, width: usize, options: DiscriminatorOptions) -> Discriminator {
        assert!(
            width > 0,
            "Discriminator::conv: width {width} must be at least 1"
        );
        let dcgan = Init::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let mut first = Conv2d::new(device, 1, width, 4).stride(2).padding(1);
        first.weight = dcgan.param(device, first.weight.shape(), 1, 1);
        let mut second = Conv2d::new(device, width, 2 * width, 4)
            .stride(2)
            .padding(1)
            .bias(false);
        second.weight = dcgan.param(device, second.weight.shape(), 1, 1);
        let mut features = Sequential::new()
            .with(Unflatten(vec![1, 28, 28]))
            .with(first)
            .with(Activation::LeakyRelu(0.2));
        if options.dropout > 0.0 {
            features.push(Dropout::new(options.dropout));
        }
        features.push(second);
        features.push(BatchNorm2d::new(device, 2 * width));
        features.push(Activation::LeakyRelu(0.2));
        if options.dropout > 0.0 {
            features.push(Dropout::new(options.dropout));
        }
        features.push(Flatten);
        let inputs = 2 * width * 49 + usize::from(options.minibatch_variance);
        Discriminator {
            features: Some(features),
            net: Sequential::new().with(Linear::new(device, inputs, 1, dcgan)),
            minibatch_variance: options.minibatch_variance,
        }
    }
}

impl Module for Discriminator {
    /// Logits `[batch, 1]`. With the minibatch-variance feature the batch is seen as a whole:
    /// pass real and generated samples in separate calls.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = match &self.features {
            Some(f) => f.forward(x),
            None => x.flatten_from(1),
        };
        if self.minibatch_variance {
            self.net.forward(&append_minibatch_variance(&h))
        } else {
            self.net.forward(&h)
        }
    }
    fn params(&self) -> Params {
        self.parts(|m| m.params())
    }
    fn buffers(&self) -> Params {
        self.parts(|m| m.buffers())
    }
    fn state_dict(&self) -> Params {
        self.parts(|m| m.state_dict())
    }
    fn set_training(&self, on: bool) {
        if let Some(f) = &self.features {
            f.set_training(on);
        }
        self.net.set_training(on);
    }
}

impl Discriminator {
    /// `get` of the feature layers (named `features.…`) and of the rest (named as they are, so
    /// an MLP discriminator's names do not change).
    fn parts(&self, get: impl Fn(&Sequential) -> Params) -> Params {
        let mut p = match &self.features {
            Some(f) => prefixed("features", get(f)),
            None => Vec::new(),
        };
        p.extend(get(&self.net));
        p
    }
}

/// The discriminator's loss: binary cross-entropy of its logits on `real` against
/// `real_targets` and on `fake` against `fake_targets` (targets `[n, 1]`, see [`noisy_labels`]),
/// the two means added.
#[track_caller]
pub fn discriminator_loss(
    d: &Discriminator,
    real: &Tensor,
    fake: &Tensor,
    real_targets: &Tensor,
    fake_targets: &Tensor,
) -> Tensor {
    d.forward(real)
        .bce_with_logits(real_targets)
        .add(&d.forward(fake).bce_with_logits(fake_targets))
}

/// The generator's (non-saturating) loss: the discriminator's cross-entropy on `fake` against
/// the label "real". Gradients pass through the discriminator into the generator.
#[track_caller]
pub fn generator_loss(d: &Discriminator, fake: &Tensor) -> Tensor {
    let logits = d.forward(fake);
    logits.bce_with_logits(&Tensor::ones(fake.device(), logits.shape()))
}

// ----- judging samples with a classifier ---------------------------------------------------------

/// A classifier that scores generated digits: an MLP loaded from a checkpoint written by
/// `examples/mnist.rs`, with the input standardisation it was trained with.
pub struct Judge {
    /// The classifier, fed standardised images.
    pub net: Sequential,
    mean: f32,
    std: f32,
}

/// How a set of samples looks to a [`Judge`].
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Number of samples judged.
    pub samples: usize,
    /// Share of samples whose most likely class has probability above the confidence threshold.
    pub confident: f32,
    /// Share of samples assigned to each class (by the most likely class).
    pub class_shares: Vec<f32>,
}

impl Verdict {
    /// The rarest class's share (a collapsed generator leaves some classes near 0).
    pub fn min_class_share(&self) -> f32 {
        self.class_shares
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min)
    }
    /// The commonest class's share (a collapsed generator puts most samples in one class).
    pub fn max_class_share(&self) -> f32 {
        self.class_shares.iter().copied().fold(0.0, f32::max)
    }
}

impl Judge {
    /// Load the `<i>.weight` / `<i>.bias` pairs of `path` as `Linear` layers in index order with
    /// `activation` between them (optimizer state and other tensors are ignored). `mean` and
    /// `std` are the standardisation of the classifier's training inputs (pixels in [0, 1]).
    pub fn load(
        device: &Device,
        path: impl AsRef<Path>,
        activation: Activation,
        mean: f32,
        std: f32,
    ) -> Result<Judge> {
        let path = path.as_ref();
        let ck = crate::checkpoint::read(path)?;
        let bad = |message: String| Error::BadFile {
            path: path.to_path_buf(),
            message,
        };
        let mut layers: Vec<usize> = ck
            .tensors
            .keys()
            .filter_map(|n| n.strip_suffix(".weight")?.parse().ok())
            .collect();
        layers.sort_unstable();
        if layers.is_empty() {
            return Err(bad("no `<i>.weight` tensors: not an MLP checkpoint".into()));
        }
        let mut net = Sequential::new();
        let mut width = None;
        for (k, i) in layers.iter().enumerate() {
            let (wshape, w) = &ck.tensors[&format!("{i}.weight")];
            if wshape.len() != 2 || width.is_some_and(|prev| prev != wshape[1]) {
                return Err(bad(format!(
                    "`{i}.weight` has shape {wshape:?}, which does not follow the layer before"
                )));
            }
            width = Some(wshape[0]);
            let bias = match ck.tensors.get(&format!("{i}.bias")) {
                Some((bshape, b)) if bshape.as_slice() == [wshape[0]] => {
                    Some(Tensor::from_f64(device, b, bshape)?)
                }
                Some((bshape, _)) => {
                    return Err(bad(format!("`{i}.bias` has shape {bshape:?}")));
                }
                None => None,
            };
            net.push(Linear {
                weight: Tensor::from_f64(device, w, wshape)?,
                bias,
            });
            if k + 1 < layers.len() {
                net.push(activation);
            }
        }
        Ok(Judge { net, mean, std })
    }

    /// Class logits of images `[n, pixels]` with values in [0, 1].
    #[track_caller]
    pub fn logits(&self, images: &Tensor) -> Tensor {
        let x = images.affine(1.0 / self.std, -self.mean / self.std);
        self.net.forward(&x)
    }

    /// Share of `images` (values in [0, 1]) classified as `labels`.
    pub fn accuracy(&self, images: &Tensor, labels: &Tensor) -> Result<f32> {
        let _no_grad = images.device().no_grad();
        let hits = self.logits(images).argmax(1).eq(labels).sum_all().item()?;
        Ok(hits / images.shape()[0] as f32)
    }

    /// The judge's accuracy on `images` and `labels` if it is at least `min`; otherwise an
    /// [`Error::Unfit`] naming the checkpoint `path`, its score, the bar, and `rebuild` (the
    /// command that makes a fit one). A judge that scores like chance would rate any samples
    /// as garbage, or as anything.
    pub fn require_accuracy(
        &self,
        path: &Path,
        images: &Tensor,
        labels: &Tensor,
        min: f32,
        rebuild: &str,
    ) -> Result<f32> {
        let acc = self.accuracy(images, labels)?;
        if acc >= min {
            return Ok(acc);
        }
        Err(Error::Unfit {
            path: path.to_path_buf(),
            message: format!(
                "as a judge it classifies {:.2}% of the {} test images correctly, below the \
                 {:.0}% a judge needs; rebuild it with `{rebuild}`",
                100.0 * acc,
                images.shape()[0],
                100.0 * min
            ),
        })
    }

    /// Classify `images` (values in [0, 1]): the share classified with probability above
    /// `threshold` and the share given to each class.
    pub fn judge(&self, images: &Tensor, threshold: f32) -> Result<Verdict> {
        let _no_grad = images.device().no_grad();
        let probs = self.logits(images).softmax();
        let classes = probs.shape()[1];
        let top = probs.max(1).to_vec()?;
        let picks = probs.argmax(1).to_vec()?;
        let n = top.len();
        let mut counts = vec![0usize; classes];
        for &c in &picks {
            counts[c as usize] += 1;
        }
        Ok(Verdict {
            samples: n,
            confident: top.iter().filter(|&&p| p > threshold).count() as f32 / n.max(1) as f32,
            class_shares: counts.iter().map(|&c| c as f32 / n.max(1) as f32).collect(),
        })
    }
}
