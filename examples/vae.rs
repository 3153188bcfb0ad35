//! A variational autoencoder on MNIST: the encoder gives a Gaussian over a latent code, a sample
//! is drawn by the reparameterisation trick, the decoder gives Bernoulli pixel probabilities, and
//! training maximises the ELBO = E[log p(x | z)] − KL(q(z | x) ‖ N(0, I)).
//!
//!     cargo run --release --example vae
//!     cargo run --release --example vae -- --beta 4            # β-VAE: a stronger pull to the prior
//!     cargo run --release --example vae -- --epochs 30
//!     cargo run --release --example vae -- --quick
//!
//! Prints the test ELBO after every epoch, its reconstruction and KL terms separately (nats per
//! image; the reconstruction term is the binary cross-entropy against grey levels, so it does not
//! reach 0), and the number of active latents: those whose posterior mean varies over the test set
//! (variance > `--active`), and at the end how the KL is spread over the latents. A larger β
//! concentrates it in fewer latents and leaves the rest inactive (they collapse to the prior
//! over the first few epochs: the default 10 epochs over all 60,000 images show it). Saves samples from the prior
//! and latent traversals (one latent varied from −3 to 3, the others held at a test digit's code)
//! as PNGs in `--out`, beside the checkpoint and the metric logs.

use std::path::PathBuf;

use clap::Parser;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::Vae;
use wgrad::nn::{Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer};
use wgrad::progress::Bar;
use wgrad::train::options::{existing_dir, non_negative, output_dir, positive};
use wgrad::train::{self, Config, Metric, Task};
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(
    about = "Train a (β-)VAE on MNIST with wgrad",
    allow_negative_numbers = true
)]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    /// Passes over the data [default: 10, or 2 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Use only the first N training images (0: all 60,000, or 2,000 with --quick).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    #[arg(long, default_value_t = 100, value_parser = positive::<usize>)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive::<f32>)]
    lr: f32,
    /// Hidden widths of the encoder, comma separated (mirrored in the decoder).
    #[arg(long, default_value = "400", value_delimiter = ',', value_parser = positive::<usize>)]
    hidden: Vec<usize>,
    /// Latent dimensions.
    #[arg(long, default_value_t = 20, value_parser = positive::<usize>)]
    latent: usize,
    /// Weight of the KL term: 1 is the VAE, more than 1 a β-VAE.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    beta: f32,
    /// A latent is active if its posterior mean's variance over the test set exceeds this.
    #[arg(long, default_value_t = 0.01, value_parser = non_negative)]
    active: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// A small slice (2,000 training and 1,000 test images, 2 epochs) for a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Where the pictures, the checkpoint and the logs go [default: runs/vae, or runs/vae-quick
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

fn main() {
    let args = Args::parse();
    let out = train::options::out_dir(args.out.clone(), "vae", args.quick);
    if args.resume {
        train::options::require_checkpoint(&out, "vae");
    }
    if let Err(e) = run(args, out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The VAE, its optimizer and what the last evaluation found.
struct Elbo {
    dev: Device,
    vae: Vae,
    opt: Adam,
    test: Dataset,
    beta: f32,
    active: f32,
    last: Option<Eval>,
}

impl Task for Elbo {
    fn step(&mut self, x: &Tensor, _: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let loss = self.vae.loss(x, self.beta);
        self.opt.step(&loss.total.backward())?; // forward, backward and update: one submit
        Ok(vec![
            ("loss", loss.total),
            ("reconstruction", loss.reconstruction),
            ("kl", loss.kl),
        ])
    }

    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let e = evaluate(&self.dev, &self.vae, &self.test)?;
        let active = e
            .mean_variance
            .iter()
            .filter(|&&v| v > self.active as f64)
            .count();
        let m = vec![
            Metric::new("test_elbo", -(e.reconstruction + e.kl)),
            Metric::new("test_reconstruction", e.reconstruction),
            Metric::new("test_kl", e.kl),
            Metric::new("active_latents", active as f64),
        ];
        self.last = Some(e);
        Ok(m)
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        self.vae.params()
    }

    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

fn run(args: Args, out: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let dev = if args.cpu {
        Device::cpu()
    } else {
        Device::gpu()?
    };
    println!("device: {}", dev.name());

    let mut train = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let mut test = Dataset::mnist(&args.data, Split::Test)?.flattened();
    let train_size = match (args.train_size, args.quick) {
        (0, true) => 2000,
        (n, _) => n,
    };
    if train_size > 0 {
        train = train.slice(0, train_size);
    }
    if args.quick {
        test = test.slice(0, 1000);
    }
    let pixels = train.sample_size();
    println!(
        "data: {} training and {} test images, pixels in [0, 1]",
        train.len(),
        test.len()
    );

    dev.manual_seed(args.seed);
    let vae = Vae::new(
        &dev,
        pixels,
        &args.hidden,
        args.latent,
        Activation::Relu,
        Init::XavierUniform,
    );
    let params = vae.params();
    let opt = Adam::new(&params, args.lr);
    println!(
        "model: {pixels} → {:?} → 2×{} (μ, log σ²) → back; {} parameters; β {}, Adam lr {}",
        args.hidden,
        args.latent,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>(),
        args.beta,
        args.lr
    );

    let epochs = args.epochs.unwrap_or(if args.quick { 2 } else { 10 });
    let config = Config {
        epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        out: Some(out.clone()),
        name: "vae".into(),
        resume: args.resume,
        keep_going: args.keep_going,
        interrupt: Some(train::ctrl_c()?),
        fingerprint: format!(
            "{:?} latent {} beta {}",
            args.hidden, args.latent, args.beta
        ),
        ..Config::default()
    };
    let mut task = Elbo {
        dev: dev.clone(),
        vae,
        opt,
        test,
        beta: args.beta,
        active: args.active,
        last: None,
    };
    let outcome = train::fit(&mut task, &train, &config, &mut Bar::new())?;
    let Some(eval) = task.last.take().filter(|_| !outcome.interrupted) else {
        return Ok(());
    };
    let (vae, test) = (&task.vae, &task.test);

    // How the KL is spread over the latents: β > 1 concentrates it in fewer of them.
    let mut spread = eval.kl_per_latent.clone();
    spread.sort_by(|a, b| b.total_cmp(a));
    let shown: Vec<String> = spread.iter().map(|k| format!("{k:.2}")).collect();
    println!("KL per latent, largest first (nats): {}", shown.join(" "));
    let total: f64 = spread.iter().sum();
    let carriers = spread
        .iter()
        .scan(0.0, |acc, k| {
            *acc += k;
            Some(*acc)
        })
        .position(|acc| acc >= 0.9 * total)
        .map_or(0, |i| i + 1);
    println!("{carriers} of {} latents carry 90% of the KL", args.latent);

    let _no_grad = dev.no_grad();
    // Samples: z from the prior N(0, I), decoded.
    let samples = vae.decode(&Tensor::randn(&dev, &[64, args.latent]));
    let path = out.join("samples.png");
    wgrad::viz::save_image_grid(&path, &samples.to_vec()?, 28, 28, 8, 2)?;
    println!("saved {} (64 samples from the prior)", path.display());

    // Traversals: the most active latents, most active first, one per row, each varied over
    // [−3, 3] while the rest stay at the posterior mean of the first test digit.
    let variances = &eval.mean_variance;
    let mut order: Vec<usize> = (0..args.latent).collect();
    order.sort_by(|&a, &b| variances[b].total_cmp(&variances[a]));
    let rows = order.len().min(10);
    let cols = 11;
    let (first, _) = test.slice(0, 1).tensors(&dev)?;
    let base = vae.encode(&first).0.to_vec()?;
    let mut codes = Vec::with_capacity(rows * cols * args.latent);
    for &latent in &order[..rows] {
        for c in 0..cols {
            let mut z = base.clone();
            z[latent] = -3.0 + 6.0 * c as f32 / (cols - 1) as f32;
            codes.extend(z);
        }
    }
    let z = Tensor::from_vec(&dev, codes, &[rows * cols, args.latent])?;
    let path = out.join("traversals.png");
    wgrad::viz::save_image_grid(&path, &vae.decode(&z).to_vec()?, 28, 28, cols, 2)?;
    println!(
        "saved {} (rows: latents {:?}, by decreasing activity; columns: −3 … 3)",
        path.display(),
        &order[..rows]
    );
    Ok(())
}

struct Eval {
    reconstruction: f64,
    kl: f64,
    /// Per latent: the variance of the posterior mean over the set.
    mean_variance: Vec<f64>,
    /// Per latent: KL(q(z_j | x) ‖ N(0, 1)) averaged over the set, in nats.
    kl_per_latent: Vec<f64>,
}

/// The loss terms per image over `data` (one z sample per image), and how much each latent's
/// posterior mean varies across it.
fn evaluate(dev: &Device, vae: &Vae, data: &Dataset) -> wgrad::Result<Eval> {
    let _no_grad = dev.no_grad();
    let (mut rec, mut kl) = (0.0f64, 0.0f64);
    let mut sum = vec![0.0f64; vae.latent];
    let mut sum_sq = vec![0.0f64; vae.latent];
    let mut kl_j = vec![0.0f64; vae.latent];
    for batch in data.batches(dev, 1000, None) {
        let (x, _) = batch?;
        let rows = x.shape()[0] as f64;
        let out = vae.run(&x);
        let loss = out.loss(&x, 1.0);
        rec += loss.reconstruction.item()? as f64 * rows;
        kl += loss.kl.item()? as f64 * rows;
        let (mu, logvar) = (out.mu.to_vec()?, out.logvar.to_vec()?);
        for (row, lv) in mu
            .chunks_exact(vae.latent)
            .zip(logvar.chunks_exact(vae.latent))
        {
            for (j, (&m, &l)) in row.iter().zip(lv).enumerate() {
                let (m, l) = (m as f64, l as f64);
                sum[j] += m;
                sum_sq[j] += m * m;
                kl_j[j] += 0.5 * (m * m + l.exp() - 1.0 - l);
            }
        }
    }
    let n = data.len() as f64;
    Ok(Eval {
        reconstruction: rec / n,
        kl: kl / n,
        mean_variance: sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| q / n - (s / n).powi(2))
            .collect(),
        kl_per_latent: kl_j.iter().map(|k| k / n).collect(),
    })
}
