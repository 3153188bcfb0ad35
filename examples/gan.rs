//! A generative adversarial network on MNIST: a generator turns noise into digits, a
//! discriminator tells them from real ones, and the two are trained in turn — the generator's
//! loss is the discriminator's verdict on its samples, so its gradient passes through the
//! discriminator.
//!
//!     cargo run --release --example gan
//!     cargo run --release --example gan -- --plain                 # every stabiliser off
//!     cargo run --release --example gan -- --epochs 30
//!     cargo run --release --example gan -- --conv               # DCGAN-style networks
//!     cargo run --release --example gan -- --quick
//!
//! Four stabilisers are on by default, each with a switch to turn it off:
//!
//! - a history buffer of old fakes: the discriminator sees new fakes beside as many old ones
//!   drawn from a buffer of twice that many (`--no-history`);
//! - dropout in the discriminator (`--no-dropout`);
//! - label noise: the discriminator's targets are flipped now and then and softened
//!   (`--no-label-noise`);
//! - the minibatch-variance feature: the mean per-pixel variance of the batch is one more input
//!   of the discriminator, so a generator that makes the same digit every time is easy to spot
//!   (`--no-minibatch-variance`).
//!
//! After every epoch it saves a grid of samples (the same noise each time) and, if a classifier
//! checkpoint from `examples/mnist.rs` exists, judges fresh samples with it: the share classified
//! with confidence above 0.9, and the share of each class — a collapsed generator leaves some
//! classes (nearly) empty. A judge that holds a NaN, or classifies under 90% of the test set, is
//! refused. The checkpoint (both networks, both optimizers, the history buffer) and the metric
//! logs go to `--out`; `--resume` continues a run.

use std::path::{Path, PathBuf};

use clap::Parser;
use wgrad::checkpoint::Checkpoint;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::{
    Discriminator, DiscriminatorOptions, Generator, HistoryBuffer, Judge, discriminator_loss,
    generator_loss, noisy_labels, set_trainable,
};
use wgrad::nn::{Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer};
use wgrad::progress::Bar;
use wgrad::train::options::{existing_dir, output_dir, positive, probability};
use wgrad::train::{self, Config, Metric, State, Task};
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(
    about = "Train a GAN on MNIST with wgrad",
    allow_negative_numbers = true
)]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    /// Passes over the data (with the stabilisers, no class falls below 3% from about the
    /// 11th) [default: 15, or 1 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Use only the first N training images (0: all 60,000, or 1,000 with --quick).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    /// Real images per step (and new fakes per step).
    #[arg(long, default_value_t = 100, value_parser = positive::<usize>)]
    batch: usize,
    /// Adam's learning rate, for both networks (β₁ = 0.5).
    #[arg(long, default_value_t = 2e-4, value_parser = positive::<f32>)]
    lr: f32,
    /// Noise dimensions.
    #[arg(long, default_value_t = 64, value_parser = positive::<usize>)]
    latent: usize,
    /// Hidden widths of the generator, comma separated.
    #[arg(long, default_value = "256,512", value_delimiter = ',', value_parser = positive::<usize>)]
    g_hidden: Vec<usize>,
    /// Hidden widths of the discriminator, comma separated.
    #[arg(long, default_value = "512,256", value_delimiter = ',', value_parser = positive::<usize>)]
    d_hidden: Vec<usize>,
    /// DCGAN-style networks: a generator of transposed convolutions with batch norm and a
    /// discriminator of strided convolutions (the stabilisers as for the MLPs).
    #[arg(long)]
    conv: bool,
    /// Feature maps of the convolutional networks' first layer (the other has twice as many).
    #[arg(long, default_value_t = 32, value_parser = positive::<usize>)]
    width: usize,
    /// Old fakes kept in the history buffer (the discriminator sees `batch` of them per step).
    #[arg(long, default_value_t = 200, value_parser = positive::<usize>)]
    history: usize,
    /// Dropout after each hidden layer of the discriminator, in [0, 1).
    #[arg(long, default_value_t = 0.3, value_parser = probability)]
    dropout: f32,
    /// Probability that a discriminator target is flipped, in [0, 1).
    #[arg(long, default_value_t = 0.05, value_parser = probability)]
    label_flip: f32,
    /// Targets move towards ½ by a uniform amount up to this, in [0, 1).
    #[arg(long, default_value_t = 0.1, value_parser = probability)]
    label_smooth: f32,
    #[arg(long)]
    no_history: bool,
    #[arg(long)]
    no_dropout: bool,
    #[arg(long)]
    no_label_noise: bool,
    #[arg(long)]
    no_minibatch_variance: bool,
    /// Every stabiliser off.
    #[arg(long)]
    plain: bool,
    /// Classifier checkpoint written by `cargo run --release --example mnist` (default options)
    /// [default: runs/mnist/mnist.safetensors, skipped if it is not there].
    #[arg(long)]
    judge: Option<PathBuf>,
    /// Do not judge samples with a classifier.
    #[arg(long, conflicts_with = "judge")]
    no_judge: bool,
    /// Samples the classifier judges after each epoch [default: 1000, or 200 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    judge_samples: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// A small slice (1,000 training images, 1 epoch) for a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Where the pictures, the checkpoint and the logs go [default: runs/gan, or runs/gan-quick
    /// with --quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue from the checkpoint in --out (same options).
    #[arg(long)]
    resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping.
    #[arg(long)]
    keep_going: bool,
}

/// The least test accuracy of a classifier that judges samples.
const JUDGE_ACCURACY: f32 = 0.9;

fn main() {
    let args = Args::parse();
    let usage = train::options::exit_usage;
    if let Some(j) = &args.judge
        && !j.is_file()
    {
        usage(&format!("--judge: no checkpoint at {}", j.display()));
    }
    if !(args.plain || args.no_history) && args.history < args.batch {
        usage(&format!(
            "--history {} holds fewer old fakes than a step draws (--batch {})",
            args.history, args.batch
        ));
    }
    let samples = args.judge_samples.unwrap_or(1000);
    if samples.saturating_mul(args.latent.max(args.batch)) > u32::MAX as usize {
        usage("--judge-samples times --latent is more noise than one draw holds (2³²)");
    }
    let out = train::options::out_dir(args.out.clone(), "gan", args.quick);
    if args.resume {
        train::options::require_checkpoint(&out, "gan");
    }
    if let Err(e) = run(args, out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The two networks, their optimizers, the stabilisers and what each epoch looks at.
struct Adversaries {
    dev: Device,
    g: Generator,
    d: Discriminator,
    opt_g: Adam,
    opt_d: Adam,
    /// Old fakes, when the history buffer is on.
    buffer: Option<HistoryBuffer>,
    /// Label flip probability and smoothing.
    noise: (f32, f32),
    fixed_noise: Tensor,
    real_test: Tensor,
    judge: Option<Judge>,
    judge_samples: usize,
    out: PathBuf,
}

impl Task for Adversaries {
    fn step(&mut self, real: &Tensor, _: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let (dev, n) = (&self.dev, real.shape()[0]);
        let (flip, smooth) = self.noise;
        // Discriminator step: real images against new fakes (and old ones from the buffer).
        let fake = self.g.sample(dev, n);
        let mut fakes = fake.detach();
        if let Some(buffer) = &mut self.buffer {
            if let Some(old) = buffer.sample(n)? {
                fakes = Tensor::concat(&[&fakes, &old], 0);
            }
            buffer.push(&fake)?;
        }
        let real_targets = noisy_labels(dev, n, 1.0, flip, smooth);
        let fake_targets = noisy_labels(dev, fakes.shape()[0], 0.0, flip, smooth);
        let d_loss = discriminator_loss(&self.d, real, &fakes, &real_targets, &fake_targets);
        self.opt_d.step(&d_loss.backward())?;

        // Generator step: its loss passes through the (frozen) discriminator.
        let d_params = self.d.params();
        set_trainable(&d_params, false);
        let g_loss = generator_loss(&self.d, &fake);
        self.opt_g.step(&g_loss.backward())?;
        set_trainable(&d_params, true);
        Ok(vec![("d_loss", d_loss), ("g_loss", g_loss)])
    }

    fn evaluate(&mut self, epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let dev = &self.dev;
        let _no_grad = dev.no_grad();
        self.d.set_training(false);
        self.g.set_training(false);
        // How the discriminator sees real test digits and fresh fakes, as a mean probability.
        let d_real = self
            .d
            .forward(&self.real_test)
            .sigmoid()
            .mean_all()
            .item()?;
        let fakes = self.g.sample(dev, self.real_test.shape()[0]);
        let d_fake = self.d.forward(&fakes).sigmoid().mean_all().item()?;
        self.d.set_training(true);
        let mut m = vec![
            Metric::new("d_real", d_real as f64),
            Metric::new("d_fake", d_fake as f64),
        ];
        let grid = self.g.forward(&self.fixed_noise) * 0.5 + 0.5;
        let png = self.out.join(format!("samples_epoch{epoch:02}.png"));
        wgrad::viz::save_image_grid(&png, &grid.to_vec()?, 28, 28, 8, 2)?;
        if let Some(judge) = &self.judge {
            let samples = self.g.sample(dev, self.judge_samples) * 0.5 + 0.5;
            let v = judge.judge(&samples, 0.9)?;
            m.push(Metric::percent("confident", v.confident as f64));
            m.push(Metric::percent("rarest_class", v.min_class_share() as f64));
            m.push(Metric::percent(
                "commonest_class",
                v.max_class_share() as f64,
            ));
        }
        self.g.set_training(true);
        Ok(m)
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("generator", self.g.state_dict());
        p.extend(prefixed("discriminator", self.d.state_dict()));
        p
    }

    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt_g, &mut self.opt_d]
    }

    fn extra_state(&self) -> wgrad::Result<State> {
        Ok(self
            .buffer
            .as_ref()
            .map_or_else(State::default, |b| b.state("history")))
    }

    fn restore_extra(&mut self, checkpoint: &Checkpoint, path: &Path) -> wgrad::Result<()> {
        match &mut self.buffer {
            Some(b) => b.restore(checkpoint, path, "history", &self.dev),
            None => Ok(()),
        }
    }
}

fn prefixed(prefix: &str, params: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    params
        .into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect()
}

fn run(args: Args, out: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let history = !(args.plain || args.no_history);
    let dropout = if args.plain || args.no_dropout {
        0.0
    } else {
        args.dropout
    };
    let (flip, smooth) = if args.plain || args.no_label_noise {
        (0.0, 0.0)
    } else {
        (args.label_flip, args.label_smooth)
    };
    let minibatch_variance = !(args.plain || args.no_minibatch_variance);

    let dev = if args.cpu {
        Device::cpu()
    } else {
        Device::gpu()?
    };
    println!("device: {}", dev.name());
    let mut train = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let test = Dataset::mnist(&args.data, Split::Test)?.flattened();
    // The judge standardises as examples/mnist.rs did: with the full training set's statistics.
    let (mean, std) = train.mean_std();
    let train_size = match (args.train_size, args.quick) {
        (0, true) => 1000,
        (n, _) => n,
    };
    if train_size > 0 {
        train = train.slice(0, train_size);
    }
    // The generator's tanh makes values in [−1, 1]; real images are scaled to match.
    train.inputs.iter_mut().for_each(|v| *v = 2.0 * *v - 1.0);
    let pixels = train.sample_size();
    println!("data: {} training images, scaled to [−1, 1]", train.len());

    let judge_path = args
        .judge
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/mnist/mnist.safetensors"));
    let judge = if args.no_judge {
        println!("judge: none (--no-judge)");
        None
    } else if judge_path.exists() {
        let judge = Judge::load(&dev, &judge_path, Activation::Relu, mean, std)?;
        let (x, y) = test.tensors(&dev)?;
        let rebuild = "cargo run --release --example mnist";
        let acc = judge.require_accuracy(&judge_path, &x, &y, JUDGE_ACCURACY, rebuild)?;
        println!(
            "judge: {} ({:.2}% on the MNIST test set)",
            judge_path.display(),
            100.0 * acc
        );
        Some(judge)
    } else {
        println!(
            "judge: no classifier at {}; samples will not be scored. Make one with\n  \
             cargo run --release --example mnist\n\
             (or pass --judge PATH to a checkpoint of that example)",
            judge_path.display()
        );
        None
    };

    dev.manual_seed(args.seed);
    let options = DiscriminatorOptions {
        dropout,
        minibatch_variance,
    };
    let (g, d) = if args.conv {
        (
            Generator::conv(&dev, args.latent, args.width),
            Discriminator::conv(&dev, args.width, options),
        )
    } else {
        (
            Generator::new(
                &dev,
                args.latent,
                &args.g_hidden,
                pixels,
                Init::XavierUniform,
            ),
            Discriminator::new(&dev, pixels, &args.d_hidden, Init::XavierUniform, options),
        )
    };
    let opt_g = Adam::new(&g.params(), args.lr).betas(0.5, 0.999);
    let opt_d = Adam::new(&d.params(), args.lr).betas(0.5, 0.999);
    if args.conv {
        let w = args.width;
        println!(
            "generator {} → {}×7×7 → (transposed conv 4×4/2, batch norm, ReLU) {w}×14×14 → \
             1×28×28 tanh; discriminator 1×28×28 → (conv 4×4/2, leaky ReLU) {w}×14×14 → \
             (conv 4×4/2, batch norm, leaky ReLU) {}×7×7{} → 1; Adam lr {}",
            args.latent,
            2 * w,
            2 * w,
            if minibatch_variance { " +1" } else { "" },
            args.lr
        );
    } else {
        println!(
            "generator {} → {:?} → {pixels}, discriminator {pixels}{} → {:?} → 1; Adam lr {}",
            args.latent,
            args.g_hidden,
            if minibatch_variance { "+1" } else { "" },
            args.d_hidden,
            args.lr
        );
    }
    println!(
        "stabilisers: history buffer {}, dropout {}, label noise {}, minibatch variance {}",
        on_off(history, &format!("{} kept", args.history)),
        on_off(dropout > 0.0, &format!("p = {dropout}")),
        on_off(
            flip > 0.0 || smooth > 0.0,
            &format!("flip {flip}, smooth {smooth}")
        ),
        on_off(minibatch_variance, "as an extra input"),
    );

    let fixed_noise = Tensor::randn(&dev, &[64, args.latent]);
    let (real_test, _) = test.slice(0, 1000).tensors(&dev)?;
    let epochs = args.epochs.unwrap_or(if args.quick { 1 } else { 15 });
    let config = Config {
        epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        out: Some(out.clone()),
        name: "gan".into(),
        resume: args.resume,
        keep_going: args.keep_going,
        interrupt: Some(train::ctrl_c()?),
        fingerprint: format!(
            "latent {} {}G {:?} D {:?} history {} dropout {dropout} flip {flip} smooth {smooth} \
             minibatch variance {minibatch_variance} judged {}",
            args.latent,
            if args.conv {
                format!("conv width {} ", args.width)
            } else {
                String::new()
            },
            args.g_hidden,
            args.d_hidden,
            if history { args.history } else { 0 },
            judge.is_some()
        ),
        ..Config::default()
    };
    let mut task = Adversaries {
        dev,
        g,
        d,
        opt_g,
        opt_d,
        buffer: history.then(|| HistoryBuffer::new(args.history, args.seed)),
        noise: (flip, smooth),
        fixed_noise,
        real_test: real_test * 2.0 - 1.0,
        judge,
        judge_samples: args
            .judge_samples
            .unwrap_or(if args.quick { 200 } else { 1000 }),
        out: out.clone(),
    };
    let outcome = train::fit(&mut task, &train, &config, &mut Bar::new())?;
    if let Some(last) = outcome.epochs.last()
        && last.get("rarest_class").is_some_and(|s| s < 0.03)
    {
        println!("a class below 3% of the judged samples: mode collapse");
    }
    println!(
        "saved samples_epoch01.png … samples_epoch{:02}.png and metrics.csv in {}",
        outcome.epochs.len(),
        out.display()
    );
    Ok(())
}

fn on_off(on: bool, detail: &str) -> String {
    if on {
        format!("on ({detail})")
    } else {
        "off".to_string()
    }
}
