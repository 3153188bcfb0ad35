//! A VAE whose latent code is split into a supervised part y (the class, a softmax over 10) and an
//! unsupervised part z (the style, a few Gaussian units), kept apart by the cross-covariance
//! penalty XCov of Cheung, Livezey, Bansal & Olshausen (2015).
//!
//!     cargo run --release --example xcov
//!     cargo run --release --example xcov -- --resume      # reuse the trained models
//!     cargo run --release --example xcov -- --quick       # a small slice, seconds
//!
//! Encoder 784-500-500 → y logits (10), z mean and log-variance; decoder [softmax(y), z] →
//! 500-500-784. Loss = [reconstruction (Bernoulli) + KL(z)] / 784 + α·CE(y, label) +
//! β·XCov(softmax(y), μ_z), α = β = 10: the VAE's terms per pixel, on the scale of the per-pixel
//! MSE of the public reproduction these weights come from. The same model is trained with β = 0 beside it. Each is
//! judged by y's test accuracy, the test XCov, and class swapping: a test digit's z is kept, y set
//! to each class in turn, and the MNIST classifier of `examples/mnist.rs` (if its checkpoint
//! exists) reads the decoded digits. Writes to `--out`: both models' checkpoints and logs,
//! `styles.png` (a row per class, one z unit swept across the columns) and `swaps.png` (test
//! digits, then the same style drawn as 0 … 9) for each model.

use std::path::{Path, PathBuf};

use clap::Parser;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::{Judge, reparameterize, xcov};
use wgrad::nn::{Activation, Init, Mlp, Module, Sequential, kl_unit_gaussian, prefixed};
use wgrad::optim::{Adam, Optimizer, Schedule};
use wgrad::progress::Bar;
use wgrad::train::options::{existing_dir, output_dir, positive};
use wgrad::train::{self, Config, Metric, Task};
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(
    about = "A VAE with supervised (class) and unsupervised (style) latents, kept apart by XCov",
    allow_negative_numbers = true
)]
struct Args {
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    /// Epochs of each model [default: 10, or 1 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 100, value_parser = positive::<usize>)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive::<f32>)]
    lr: f32,
    /// Style units (z).
    #[arg(long, default_value_t = 2, value_parser = positive::<usize>)]
    style: usize,
    /// Weight of the classification loss.
    #[arg(long, default_value_t = 10.0, value_parser = positive::<f32>)]
    alpha: f32,
    /// Weight of XCov (the β = 0 model is trained beside it).
    #[arg(long, default_value_t = 10.0, value_parser = positive::<f32>)]
    beta: f32,
    /// MNIST classifier that reads the class-swapped digits, written by `cargo run --release
    /// --example mnist` [default: runs/mnist/mnist.safetensors, skipped if it is not there].
    #[arg(long)]
    judge: Option<PathBuf>,
    /// Do not score class swaps with a classifier.
    #[arg(long, conflicts_with = "judge")]
    no_judge: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// 2,000 training and 1,000 test images, one epoch.
    #[arg(long)]
    quick: bool,
    /// Where everything goes [default: runs/xcov, or runs/xcov-quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue (or reuse, when finished) both models' checkpoints in --out.
    #[arg(long)]
    resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping.
    #[arg(long)]
    keep_going: bool,
}

const CLASSES: usize = 10;
/// Test images XCov is measured on (one batch: XCov is a batch statistic).
const XCOV_BATCH: usize = 1000;

/// Encoder to [y logits | μ | log σ²], decoder from [softmax(y) | z].
struct XcovVae {
    encoder: Sequential,
    decoder: Sequential,
    style: usize,
}

/// One pass: y's logits, z's posterior and the reconstruction's logits.
struct Pass {
    y: Tensor,
    mu: Tensor,
    logvar: Tensor,
    logits: Tensor,
}

impl XcovVae {
    fn new(dev: &Device, style: usize) -> XcovVae {
        let build = |widths: &[usize]| {
            Mlp::new(widths)
                .activation(Activation::Relu)
                .init(Init::HeUniform)
                .build(dev)
        };
        XcovVae {
            encoder: build(&[784, 500, 500, CLASSES + 2 * style]),
            decoder: build(&[CLASSES + style, 500, 500, 784]),
            style,
        }
    }

    fn encode(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let h = self.encoder.forward(x);
        (
            h.narrow(1, 0, CLASSES),
            h.narrow(1, CLASSES, self.style),
            h.narrow(1, CLASSES + self.style, self.style),
        )
    }

    /// Images in [0, 1] from class probabilities (or one-hot classes) and styles.
    fn decode(&self, y: &Tensor, z: &Tensor) -> Tensor {
        self.decoder.forward(&Tensor::concat(&[y, z], 1)).sigmoid()
    }

    fn run(&self, x: &Tensor) -> Pass {
        let (y, mu, logvar) = self.encode(x);
        let z = reparameterize(&mu, &logvar);
        let logits = self
            .decoder
            .forward(&Tensor::concat(&[&y.softmax(), &z], 1));
        Pass {
            y,
            mu,
            logvar,
            logits,
        }
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("encoder", self.encoder.params());
        p.extend(prefixed("decoder", self.decoder.params()));
        p
    }
}

struct Training {
    model: XcovVae,
    opt: Adam,
    alpha: f32,
    beta: f32,
    test: (Tensor, Tensor),
}

impl Training {
    /// y's accuracy on the test set and XCov on its first images (μ for z, no sampling).
    fn measure(&self) -> wgrad::Result<(f64, f64)> {
        let dev = self.test.0.device();
        let _no_grad = dev.no_grad();
        let (x, labels) = &self.test;
        let (y, mu, _) = self.model.encode(x);
        let hits = y.argmax(1).eq(labels).sum_all().item()?;
        let n = XCOV_BATCH.min(x.shape()[0]);
        let penalty = xcov(&y.narrow(0, 0, n).softmax(), &mu.narrow(0, 0, n)).item()?;
        Ok((f64::from(hits) / x.shape()[0] as f64, f64::from(penalty)))
    }
}

impl Task for Training {
    fn step(&mut self, x: &Tensor, labels: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let p = self.model.run(x);
        let rows = x.shape()[0] as f32;
        let reconstruction = p.logits.bce_logits_elementwise(x).sum_all() / rows;
        let kl = kl_unit_gaussian(&p.mu, &p.logvar);
        let ce = p.y.cross_entropy(labels);
        let penalty = xcov(&p.y.softmax(), &p.mu);
        // The reconstruction and KL per pixel, as the reference's per-pixel MSE: α and β weigh
        // the class and XCov terms against that scale.
        let per_pixel = (&reconstruction + &kl) / x.shape()[1] as f32;
        let total = per_pixel + &ce * self.alpha + &penalty * self.beta;
        self.opt.step(&total.backward())?;
        Ok(vec![
            ("loss", total),
            ("reconstruction", reconstruction),
            ("ce", ce),
            ("xcov", penalty),
        ])
    }

    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let (acc, penalty) = self.measure()?;
        Ok(vec![
            Metric::percent("test_y_accuracy", acc),
            Metric::new("test_xcov", penalty),
        ])
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        self.model.params()
    }

    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

fn main() {
    let args = Args::parse();
    if let Some(j) = &args.judge
        && !j.is_file()
    {
        train::options::exit_usage(&format!("--judge: no checkpoint at {}", j.display()));
    }
    let out = train::options::out_dir(args.out.clone(), "xcov", args.quick);
    if args.resume {
        for part in ["xcov", "plain"] {
            train::options::require_checkpoint(&out.join(part), part);
        }
    }
    if let Err(e) = run(&args, &out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let dev = train::options::device(args.cpu);
    let mut train_set = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let mut test_set = Dataset::mnist(&args.data, Split::Test)?.flattened();
    // The judge standardises as examples/mnist.rs did: with the full training set's statistics.
    let (mean, std) = train_set.mean_std();
    if args.quick {
        train_set = train_set.slice(0, 2000);
        test_set = test_set.slice(0, 1000);
    }
    let test = test_set.tensors(&dev)?;
    println!(
        "data: {} training and {} test images",
        train_set.len(),
        test_set.len()
    );
    let judge_path = args
        .judge
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/mnist/mnist.safetensors"));
    let judge = if args.no_judge {
        println!("judge: none (--no-judge)");
        None
    } else if judge_path.exists() {
        let judge = Judge::load(&dev, &judge_path, Activation::Relu, mean, std)?;
        let rebuild = "cargo run --release --example mnist";
        let acc = judge.require_accuracy(&judge_path, &test.0, &test.1, 0.9, rebuild)?;
        println!(
            "judge: {} ({:.2}% on these test images)",
            judge_path.display(),
            100.0 * acc
        );
        Some(judge)
    } else {
        println!(
            "judge: no classifier at {}; class swaps will not be scored (make one with \
             `cargo run --release --example mnist`)",
            judge_path.display()
        );
        None
    };

    let epochs = args.epochs.unwrap_or(if args.quick { 1 } else { 10 });
    let mut results = Vec::new();
    for (part, beta) in [("xcov", args.beta), ("plain", 0.0)] {
        dev.manual_seed(args.seed);
        let model = XcovVae::new(&dev, args.style);
        let opt = Adam::new(&model.params(), args.lr);
        let mut task = Training {
            model,
            opt,
            alpha: args.alpha,
            beta,
            test: test.clone(),
        };
        println!("\n{part}: α = {}, β = {beta}, {epochs} epochs", args.alpha);
        let folder = out.join(part);
        std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        let config = Config {
            epochs,
            batch: args.batch,
            lr: args.lr,
            seed: args.seed,
            schedule: Schedule::Constant,
            out: Some(folder.clone()),
            name: part.into(),
            resume: args.resume,
            keep_going: args.keep_going,
            log_every: (train_set.num_batches(args.batch) / 20).max(1),
            interrupt: Some(train::ctrl_c()?),
            fingerprint: format!(
                "784-500-500 style {} alpha {} beta {beta} per-pixel",
                args.style, args.alpha
            ),
            shard: Default::default(),
        };
        if train::fit(&mut task, &train_set, &config, &mut Bar::new())?.interrupted {
            return Ok(());
        }
        let (acc, penalty) = task.measure()?;
        let swap = match &judge {
            Some(j) => Some(class_swap_accuracy(&task.model, j, &test.0)?),
            None => None,
        };
        save_pictures(&task.model, &test.0, &folder)?;
        results.push((part, beta, acc, penalty, swap));
    }

    println!(
        "\n{:<6} {:>5} {:>16} {:>14} {:>22}",
        "model", "β", "y test accuracy", "test XCov", "class-swap accuracy"
    );
    for (part, beta, acc, penalty, swap) in &results {
        let swap = swap.map_or("(no judge)".to_string(), |s| format!("{:.2}%", 100.0 * s));
        println!(
            "{part:<6} {beta:>5} {:>15.2}% {penalty:>14.3e} {swap:>22}",
            100.0 * acc
        );
    }
    let ratio = results[1].3 / results[0].3.max(f64::MIN_POSITIVE);
    let compared = if ratio >= 1.0 {
        format!("{ratio:.0}× smaller")
    } else {
        format!("{:.1}× larger", 1.0 / ratio)
    };
    println!(
        "XCov with the penalty is {compared} than without (XCov over the first {} test images, \
         y as softmax, z as μ; the class swap decodes the first 1,000 test digits' z with each \
         of the 10 classes: chance is 10%)",
        XCOV_BATCH.min(test_set.len())
    );
    println!(
        "saved styles.png and swaps.png in {} and {}",
        out.join("xcov").display(),
        out.join("plain").display()
    );
    Ok(())
}

/// The share of decoded digits the judge reads as the class they were decoded with, when the z
/// of each of the first 1,000 test digits is kept and y is set to each class.
fn class_swap_accuracy(model: &XcovVae, judge: &Judge, x: &Tensor) -> wgrad::Result<f64> {
    let dev = x.device();
    let _no_grad = dev.no_grad();
    let n = 1000.min(x.shape()[0]);
    let (_, mu, _) = model.encode(&x.narrow(0, 0, n));
    let mut hits = 0.0;
    for class in 0..CLASSES {
        let labels = Tensor::full(dev, &[n], class as f32);
        let images = model.decode(&labels.one_hot(CLASSES), &mu);
        hits += f64::from(
            judge
                .logits(&images)
                .argmax(1)
                .eq(&labels)
                .sum_all()
                .item()?,
        );
    }
    Ok(hits / (n * CLASSES) as f64)
}

/// `styles.png`: a row per class, the first z unit swept from −2.5 to 2.5 (the others 0);
/// `swaps.png`: a row per test digit, the digit and then its z decoded as each class.
fn save_pictures(model: &XcovVae, x: &Tensor, folder: &Path) -> wgrad::Result<()> {
    let dev = x.device();
    let _no_grad = dev.no_grad();
    let (cols, style) = (9usize, model.style);
    let mut z = vec![0.0f32; CLASSES * cols * style];
    let mut y = vec![0.0f32; CLASSES * cols * CLASSES];
    for class in 0..CLASSES {
        for c in 0..cols {
            let row = class * cols + c;
            z[row * style] = -2.5 + 5.0 * c as f32 / (cols - 1) as f32;
            y[row * CLASSES + class] = 1.0;
        }
    }
    let styles = model.decode(
        &Tensor::from_vec(dev, y, &[CLASSES * cols, CLASSES])?,
        &Tensor::from_vec(dev, z, &[CLASSES * cols, style])?,
    );
    wgrad::viz::save_image_grid(
        folder.join("styles.png"),
        &styles.to_vec()?,
        28,
        28,
        cols,
        2,
    )?;

    let digits = 10.min(x.shape()[0]);
    let originals = x.narrow(0, 0, digits);
    let (_, mu, _) = model.encode(&originals);
    let mut images = Vec::new();
    let original = originals.to_vec()?;
    let mut swapped = Vec::new();
    for class in 0..CLASSES {
        let labels = Tensor::full(dev, &[digits], class as f32);
        swapped.push(model.decode(&labels.one_hot(CLASSES), &mu).to_vec()?);
    }
    for d in 0..digits {
        images.extend_from_slice(&original[d * 784..(d + 1) * 784]);
        for s in &swapped {
            images.extend_from_slice(&s[d * 784..(d + 1) * 784]);
        }
    }
    wgrad::viz::save_image_grid(folder.join("swaps.png"), &images, 28, 28, 1 + CLASSES, 2)
}
