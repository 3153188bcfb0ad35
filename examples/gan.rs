//! A generative adversarial network on MNIST: a generator turns noise into digits, a
//! discriminator tells them from real ones, and the two are trained in turn — the generator's
//! loss is the discriminator's verdict on its samples, so its gradient passes through the
//! discriminator.
//!
//!     cargo run --release --example gan
//!     cargo run --release --example gan -- --plain                 # every stabiliser off
//!     cargo run --release --example gan -- --epochs 30
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
//! classes (nearly) empty.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::{
    Discriminator, DiscriminatorOptions, Generator, HistoryBuffer, Judge, discriminator_loss,
    generator_loss, noisy_labels, set_trainable,
};
use wgrad::nn::{Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer};
use wgrad::progress::{Bar, Progress};
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(about = "Train a GAN on MNIST with wgrad")]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Passes over the data (with the stabilisers, no class falls below 3% from about the 11th).
    #[arg(long, default_value_t = 15)]
    epochs: usize,
    /// Use only the first N training images (0: all 60,000).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    /// Real images per step (and new fakes per step).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Adam's learning rate, for both networks (β₁ = 0.5).
    #[arg(long, default_value_t = 2e-4)]
    lr: f32,
    /// Noise dimensions.
    #[arg(long, default_value_t = 64)]
    latent: usize,
    /// Hidden widths of the generator, comma separated.
    #[arg(long, default_value = "256,512", value_delimiter = ',')]
    g_hidden: Vec<usize>,
    /// Hidden widths of the discriminator, comma separated.
    #[arg(long, default_value = "512,256", value_delimiter = ',')]
    d_hidden: Vec<usize>,
    /// Old fakes kept in the history buffer (the discriminator sees `batch` of them per step).
    #[arg(long, default_value_t = 200)]
    history: usize,
    /// Dropout after each hidden layer of the discriminator.
    #[arg(long, default_value_t = 0.3)]
    dropout: f32,
    /// Probability that a discriminator target is flipped.
    #[arg(long, default_value_t = 0.05)]
    label_flip: f32,
    /// Targets move towards ½ by a uniform amount up to this.
    #[arg(long, default_value_t = 0.1)]
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
    /// Classifier checkpoint written by `cargo run --release --example mnist` (default options).
    #[arg(long, default_value = "runs/mnist/mnist.safetensors")]
    judge: PathBuf,
    /// Samples the classifier judges after each epoch.
    #[arg(long, default_value_t = 1000)]
    judge_samples: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// Where the pictures go.
    #[arg(long, default_value = "runs/gan")]
    out: PathBuf,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
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
    if args.train_size > 0 {
        train = train.slice(0, args.train_size);
    }
    // The generator's tanh makes values in [−1, 1]; real images are scaled to match.
    train.inputs.iter_mut().for_each(|v| *v = 2.0 * *v - 1.0);
    let pixels = train.sample_size();
    println!("data: {} training images, scaled to [−1, 1]", train.len());

    let judge = if args.judge.exists() {
        let judge = Judge::load(&dev, &args.judge, Activation::Relu, mean, std)?;
        let (x, y) = test.tensors(&dev)?;
        println!(
            "judge: {} ({:.2}% on the MNIST test set)",
            args.judge.display(),
            100.0 * judge.accuracy(&x, &y)?
        );
        Some(judge)
    } else {
        println!(
            "judge: no classifier at {}; samples will not be scored. Make one with\n  \
             cargo run --release --example mnist -- --epochs 3\n\
             (or pass --judge PATH to a checkpoint of that example)",
            args.judge.display()
        );
        None
    };

    dev.manual_seed(args.seed);
    let g = Generator::new(
        &dev,
        args.latent,
        &args.g_hidden,
        pixels,
        Init::XavierUniform,
    );
    let d = Discriminator::new(
        &dev,
        pixels,
        &args.d_hidden,
        Init::XavierUniform,
        DiscriminatorOptions {
            dropout,
            minibatch_variance,
        },
    );
    let (g_params, d_params) = (g.params(), d.params());
    let mut opt_g = Adam::new(&g_params, args.lr).betas(0.5, 0.999);
    let mut opt_d = Adam::new(&d_params, args.lr).betas(0.5, 0.999);
    let mut buffer = HistoryBuffer::new(args.history, args.seed);
    println!(
        "generator {} → {:?} → {pixels}, discriminator {pixels}{} → {:?} → 1; Adam lr {}",
        args.latent,
        args.g_hidden,
        if minibatch_variance { "+1" } else { "" },
        args.d_hidden,
        args.lr
    );
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

    std::fs::create_dir_all(&args.out)?;
    let fixed_noise = Tensor::randn(&dev, &[64, args.latent]);
    let steps = train.num_batches(args.batch);
    let mut bar = Bar::new();
    for epoch in 0..args.epochs {
        bar.start(&format!("epoch {:>2}", epoch + 1), steps as u64);
        let start = Instant::now();
        // Loss sums over the epoch, kept on the device: no extra read per step.
        let (mut d_sum, mut g_sum) = (Tensor::zeros(&dev, &[]), Tensor::zeros(&dev, &[]));
        for (step, batch) in train
            .batches(&dev, args.batch, Some(args.seed + epoch as u64))
            .enumerate()
        {
            let (real, _) = batch?;
            let n = real.shape()[0];

            // Discriminator step: real images against new fakes (and old ones from the buffer).
            let fake = g.sample(&dev, n);
            let mut fakes = fake.detach();
            if history {
                if let Some(old) = buffer.sample(n)? {
                    fakes = Tensor::concat(&[&fakes, &old], 0);
                }
                buffer.push(&fake)?;
            }
            let real_targets = noisy_labels(&dev, n, 1.0, flip, smooth);
            let fake_targets = noisy_labels(&dev, fakes.shape()[0], 0.0, flip, smooth);
            let d_loss = discriminator_loss(&d, &real, &fakes, &real_targets, &fake_targets);
            opt_d.step(&d_loss.backward())?;

            // Generator step: its loss passes through the (frozen) discriminator.
            set_trainable(&d_params, false);
            let g_loss = generator_loss(&d, &fake);
            opt_g.step(&g_loss.backward())?;
            set_trainable(&d_params, true);

            d_sum = d_sum + d_loss.detach();
            g_sum = g_sum + g_loss.detach();
            bar.update(step as u64 + 1, "");
        }
        bar.finish();
        let secs = start.elapsed().as_secs_f64();

        let _no_grad = dev.no_grad();
        d.set_training(false);
        // How the discriminator sees real test digits and fresh fakes, as a mean probability.
        let (real, _) = test.slice(0, 1000).tensors(&dev)?;
        let d_real = d.forward(&(real * 2.0 - 1.0)).sigmoid().mean_all().item()?;
        let d_fake = d
            .forward(&g.sample(&dev, 1000))
            .sigmoid()
            .mean_all()
            .item()?;
        print!(
            "epoch {:>2}: D loss {:.3}, G loss {:.3}, D(real) {:.2}, D(fake) {:.2}; {:.1} s",
            epoch + 1,
            d_sum.item()? / steps as f32,
            g_sum.item()? / steps as f32,
            d_real,
            d_fake,
            secs
        );

        let grid = g.forward(&fixed_noise) * 0.5 + 0.5;
        let png = args.out.join(format!("samples_epoch{:02}.png", epoch + 1));
        wgrad::viz::save_image_grid(&png, &grid.to_vec()?, 28, 28, 8, 2)?;
        let mut verdict = None;
        if let Some(judge) = &judge {
            let samples = g.sample(&dev, args.judge_samples) * 0.5 + 0.5;
            let v = judge.judge(&samples, 0.9)?;
            print!(
                "; judged: {:.1}% confident, classes {:.1}%–{:.1}%{}",
                100.0 * v.confident,
                100.0 * v.min_class_share(),
                100.0 * v.max_class_share(),
                if v.min_class_share() < 0.03 {
                    " (a class below 3%: mode collapse)"
                } else {
                    ""
                }
            );
            verdict = Some(v);
        }
        println!();
        if let (Some(v), true) = (&verdict, epoch + 1 == args.epochs) {
            let shares: Vec<String> = v
                .class_shares
                .iter()
                .enumerate()
                .map(|(c, s)| format!("{c}: {:.1}%", 100.0 * s))
                .collect();
            println!("classes of the last samples: {}", shares.join(", "));
        }
        d.set_training(true);
    }
    println!(
        "saved samples_epoch01.png … samples_epoch{:02}.png in {}",
        args.epochs,
        args.out.display()
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
