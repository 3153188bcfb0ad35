//! Squeeze MNIST digits through a narrow bottleneck and back out: an MLP autoencoder
//! (784 → 256 → 128 → 32 → 128 → 256 → 784), optionally sparse.
//!
//!     cargo run --release --example autoencoder
//!     cargo run --release --example autoencoder -- --epochs 20
//!     cargo run --release --example autoencoder -- --sparse 0.001 --pool 4 --code 64
//!
//! Prints the test reconstruction MSE after every epoch, beside that of PCA with as many
//! components as the bottleneck has units (the best *linear* code of that size, fitted on the
//! same training images). With `--sparse λ` the code also pays λ·Σ√(ε + pooled²) over groups of
//! `--pool` units (L2 pooling), and the example counts how many groups a digit uses. Saves test
//! digits above their reconstructions (autoencoder, then PCA) as a PNG in `--out`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use wgrad::Device;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::{Autoencoder, Pca, l2_pool_penalty, l2_pooled};
use wgrad::nn::{Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer};
use wgrad::progress::{Bar, Progress};

#[derive(Parser)]
#[command(about = "Train an MLP autoencoder on MNIST with wgrad")]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Use only the first N training images (0: all 60,000).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Widths between the input and the bottleneck, comma separated (mirrored in the decoder).
    #[arg(long, default_value = "256,128", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Units in the bottleneck (the code).
    #[arg(long, default_value_t = 32)]
    code: usize,
    /// relu, sigmoid, tanh (or gelu, leaky-relu, elu, softplus).
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// λ of the L2-pooling sparsity penalty on the code (0: a plain autoencoder).
    #[arg(long, default_value_t = 0.0)]
    sparse: f32,
    /// Code units per pooling group.
    #[arg(long, default_value_t = 4)]
    pool: usize,
    /// ε inside the square root of the penalty.
    #[arg(long, default_value_t = 1e-4)]
    eps: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// Where the picture goes.
    #[arg(long, default_value = "runs/autoencoder")]
    out: PathBuf,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.code % args.pool != 0 {
        return Err(format!(
            "--code {} is not a multiple of --pool {}",
            args.code, args.pool
        )
        .into());
    }
    let dev = if args.cpu {
        Device::cpu()
    } else {
        Device::gpu()?
    };
    println!("device: {}", dev.name());

    let mut train = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let test = Dataset::mnist(&args.data, Split::Test)?.flattened();
    if args.train_size > 0 {
        train = train.slice(0, args.train_size);
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
    let mut opt = Adam::new(&params, args.lr);
    let groups = args.code / args.pool;
    println!(
        "model: {pixels} → {:?} → {} → back, {:?}; {} parameters; Adam lr {}{}",
        args.hidden,
        args.code,
        args.activation,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>(),
        args.lr,
        if args.sparse > 0.0 {
            format!(
                "; sparsity λ {} over {groups} groups of {}",
                args.sparse, args.pool
            )
        } else {
            String::new()
        }
    );

    std::fs::create_dir_all(&args.out)?;
    let steps = train.num_batches(args.batch);
    let mut bar = Bar::new();
    for epoch in 0..args.epochs {
        bar.start(&format!("epoch {:>2}", epoch + 1), steps as u64);
        let mut status = String::new();
        let start = Instant::now();
        for (step, batch) in train
            .batches(&dev, args.batch, Some(args.seed + epoch as u64))
            .enumerate()
        {
            let (x, _) = batch?;
            let code = model.encode(&x);
            let mut loss = model.decode(&code).mse(&x);
            if args.sparse > 0.0 {
                loss = &loss + l2_pool_penalty(&code, args.pool, args.eps) * args.sparse;
            }
            let grads = loss.backward();
            opt.step(&grads)?; // forward, backward and update: one submit
            if (step + 1) % 20 == 0 {
                status = format!("loss {:.5}", loss.item()?);
            }
            bar.update(step as u64 + 1, &status);
        }
        bar.finish();
        let secs = start.elapsed().as_secs_f64();
        let eval = evaluate(&dev, &model, &test, args.pool)?;
        print!(
            "epoch {:>2}: test MSE {:.5} (PCA {:.5}), {:.1} s ({:.0} images/s)",
            epoch + 1,
            eval.mse,
            pca_mse,
            secs,
            train.len() as f64 / secs
        );
        if args.sparse > 0.0 {
            print!(
                "; penalty {:.3}, groups used per digit {:.1} of {groups}",
                eval.penalty, eval.groups_used
            );
        }
        println!();
    }

    // Twelve test digits, their reconstructions and PCA's, in rows of three.
    let shown = test.slice(0, 36);
    let (x, _) = shown.tensors(&dev)?;
    let recon = {
        let _no_grad = dev.no_grad();
        model.forward(&x).to_vec()?
    };
    let pca_recon = pca.reconstruct(&shown.inputs);
    let mut grid = Vec::new();
    for row in 0..3 {
        let part = |v: &[f32]| v[row * 12 * pixels..(row + 1) * 12 * pixels].to_vec();
        grid.extend(part(&shown.inputs));
        grid.extend(part(&recon));
        grid.extend(part(&pca_recon));
    }
    let png = args.out.join(if args.sparse > 0.0 {
        "reconstructions_sparse.png"
    } else {
        "reconstructions.png"
    });
    wgrad::viz::save_image_grid(&png, &grid, 28, 28, 12, 2)?;
    println!(
        "saved {} (rows of three: test digits, autoencoder, PCA)",
        png.display()
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
