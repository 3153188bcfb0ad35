//! Squeeze MNIST digits through a narrow bottleneck and back out: an MLP autoencoder
//! (784 → 256 → 128 → 32 → 128 → 256 → 784), optionally sparse.
//!
//!     cargo run --release --example autoencoder
//!     cargo run --release --example autoencoder -- --epochs 20
//!     cargo run --release --example autoencoder -- --sparse 0.001 --pool 4 --code 64
//!     cargo run --release --example autoencoder -- --quick
//!
//! Prints the test reconstruction MSE after every epoch, beside that of PCA with as many
//! components as the bottleneck has units (the best *linear* code of that size, fitted on the
//! same training images). With `--sparse λ` the code also pays λ·Σ√(ε + pooled²) over groups of
//! `--pool` units (L2 pooling), and the example counts how many groups a digit uses. Saves test
//! digits above their reconstructions (autoencoder, then PCA) as a PNG, the checkpoint and the
//! metric logs in `--out`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::{Autoencoder, Pca, l2_pool_penalty, l2_pooled};
use wgrad::nn::{Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer};
use wgrad::progress::Bar;
use wgrad::train::options::{existing_dir, non_negative, output_dir, positive};
use wgrad::train::{self, Config, Metric, Task};
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(
    about = "Train an MLP autoencoder on MNIST with wgrad",
    allow_negative_numbers = true
)]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    /// Passes over the data [default: 5, or 2 with --quick].
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
    /// Widths between the input and the bottleneck, comma separated (mirrored in the decoder).
    #[arg(long, default_value = "256,128", value_delimiter = ',', value_parser = positive::<usize>)]
    hidden: Vec<usize>,
    /// Units in the bottleneck (the code).
    #[arg(long, default_value_t = 32, value_parser = positive::<usize>)]
    code: usize,
    /// relu, sigmoid, tanh (or gelu, gelu-tanh, leaky-relu, elu, softplus).
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// λ of the L2-pooling sparsity penalty on the code (0: a plain autoencoder).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    sparse: f32,
    /// Code units per pooling group (must divide --code).
    #[arg(long, default_value_t = 4, value_parser = positive::<usize>)]
    pool: usize,
    /// ε inside the square root of the penalty.
    #[arg(long, default_value_t = 1e-4, value_parser = positive::<f32>)]
    eps: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// A small slice (2,000 training and 1,000 test images, 2 epochs) for a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Where the picture, the checkpoint and the logs go [default: runs/autoencoder, or
    /// runs/autoencoder-quick with --quick].
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
    // MNIST's digits are 28×28.
    if args.code > 28 * 28 {
        train::options::exit_usage(&format!(
            "--code {} is wider than the 784 pixels it encodes",
            args.code
        ));
    }
    if args.code % args.pool != 0 {
        train::options::exit_usage(&format!(
            "--code {} is not a multiple of --pool {}",
            args.code, args.pool
        ));
    }
    let out = train::options::out_dir(args.out.clone(), "autoencoder", args.quick);
    if args.resume {
        train::options::require_checkpoint(&out, "autoencoder");
    }
    if let Err(e) = run(args, out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The autoencoder, its optimizer and what it is judged on.
struct Squeeze {
    dev: Device,
    model: Autoencoder,
    opt: Adam,
    test: Dataset,
    /// λ, units per group and ε of the sparsity penalty.
    sparse: (f32, usize, f32),
    pca_mse: f64,
}

impl Task for Squeeze {
    fn step(&mut self, x: &Tensor, _: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let (lambda, pool, eps) = self.sparse;
        let code = self.model.encode(x);
        let mut loss = self.model.decode(&code).mse(x);
        if lambda > 0.0 {
            loss = &loss + l2_pool_penalty(&code, pool, eps) * lambda;
        }
        self.opt.step(&loss.backward())?; // forward, backward and update: one submit
        Ok(vec![("loss", loss)])
    }

    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let e = evaluate(&self.dev, &self.model, &self.test, self.sparse.1)?;
        let mut m = vec![
            Metric::new("test_mse", e.mse),
            Metric::new("pca_mse", self.pca_mse),
        ];
        if self.sparse.0 > 0.0 {
            m.push(Metric::new("penalty", e.penalty));
            m.push(Metric::new("groups_used", e.groups_used));
        }
        Ok(m)
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        self.model.params()
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

    // The baseline: PCA with as many components as the code has units, on the same images.
    let start = Instant::now();
    let pca = Pca::fit(&train.inputs, pixels, args.code);
    let pca_mse = pca.mse(&test.inputs);
    println!(
        "PCA, {} components: test MSE {:.5} ({:.1}% of the variance kept; {:.1} s on the CPU)",
        args.code,
        pca_mse,
        100.0 * pca.variances.iter().sum::<f64>() / pca.total_variance,
        start.elapsed().as_secs_f64()
    );

    dev.manual_seed(args.seed);
    let model = Autoencoder::new(
        &dev,
        pixels,
        &args.hidden,
        args.code,
        args.activation,
        Init::XavierUniform,
    );
    let params = model.params();
    let opt = Adam::new(&params, args.lr);
    println!(
        "model: {pixels} → {:?} → {} → back, {:?}; {} parameters; Adam lr {}{}",
        args.hidden,
        args.code,
        args.activation,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>(),
        args.lr,
        if args.sparse > 0.0 {
            format!(
                "; sparsity λ {} over {} groups of {}",
                args.sparse,
                args.code / args.pool,
                args.pool
            )
        } else {
            String::new()
        }
    );

    let epochs = args.epochs.unwrap_or(if args.quick { 2 } else { 5 });
    let config = Config {
        epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        out: Some(out.clone()),
        name: "autoencoder".into(),
        resume: args.resume,
        keep_going: args.keep_going,
        interrupt: Some(train::ctrl_c()?),
        fingerprint: format!(
            "{:?} code {} {:?} sparse {} pool {} eps {}",
            args.hidden, args.code, args.activation, args.sparse, args.pool, args.eps
        ),
        ..Config::default()
    };
    let mut task = Squeeze {
        dev: dev.clone(),
        model,
        opt,
        test,
        sparse: (args.sparse, args.pool, args.eps),
        pca_mse,
    };
    train::fit(&mut task, &train, &config, &mut Bar::new())?;

    // Twelve test digits, their reconstructions and PCA's, in rows of three.
    let shown = task.test.slice(0, 36);
    let (x, _) = shown.tensors(&dev)?;
    let recon = {
        let _no_grad = dev.no_grad();
        task.model.forward(&x).to_vec()?
    };
    let pca_recon = pca.reconstruct(&shown.inputs);
    let mut grid = Vec::new();
    for row in 0..3 {
        let part = |v: &[f32]| v[row * 12 * pixels..(row + 1) * 12 * pixels].to_vec();
        grid.extend(part(&shown.inputs));
        grid.extend(part(&recon));
        grid.extend(part(&pca_recon));
    }
    let png = out.join(if args.sparse > 0.0 {
        "reconstructions_sparse.png"
    } else {
        "reconstructions.png"
    });
    wgrad::viz::save_image_grid(&png, &grid, 28, 28, 12, 2)?;
    println!(
        "saved {} (rows of three: test digits, autoencoder, PCA) and {}",
        png.display(),
        out.join("metrics.csv").display()
    );
    Ok(())
}

struct Eval {
    mse: f64,
    penalty: f64,
    groups_used: f64,
}

/// Test MSE per pixel, the mean sparsity penalty, and how many code groups a digit uses
/// (pooled norm above a tenth of that digit's largest).
fn evaluate(dev: &Device, model: &Autoencoder, data: &Dataset, pool: usize) -> wgrad::Result<Eval> {
    let _no_grad = dev.no_grad();
    let (mut sse, mut penalty, mut used) = (0.0f64, 0.0f64, 0.0f64);
    for batch in data.batches(dev, 1000, None) {
        let (x, _) = batch?;
        let rows = x.shape()[0];
        let code = model.encode(&x);
        sse += (model.decode(&code) - &x).square().sum_all().item()? as f64;
        penalty += l2_pool_penalty(&code, pool, 0.0).item()? as f64 * rows as f64;
        let pooled = l2_pooled(&code, pool);
        let largest = pooled.max_keepdim(1);
        let active = pooled.gt(&(largest * 0.1));
        used += active.sum_all().item()? as f64;
    }
    let n = data.len() as f64;
    Ok(Eval {
        mse: sse / (n * data.sample_size() as f64),
        penalty: penalty / n,
        groups_used: used / n,
    })
}
