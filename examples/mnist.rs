//! Train a multilayer perceptron on MNIST: the project's main job.
//!
//!     cargo run --release --example mnist
//!     cargo run --release --example mnist -- --optimizer adam --lr 1e-3 --epochs 5
//!     cargo run --release --example mnist -- --batch 1        # online: one sample per update
//!     cargo run --release --example mnist -- --batch 60000 --optimizer rprop --epochs 50
//!
//! Prints the test accuracy after every epoch; writes a checkpoint (safetensors) and a PNG of the
//! loss curve to `--out`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use wgrad::data::{Dataset, Split};
use wgrad::nn::{self, Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer, Rprop, Schedule, Sgd};
use wgrad::progress::{Bar, Progress};
use wgrad::viz::Scale;
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(about = "Train an MLP on MNIST with wgrad")]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    /// Samples per update: 1 is online learning; 60000 is full-batch.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// sgd, momentum, nesterov, adam, adamw or rprop.
    #[arg(long, default_value = "nesterov")]
    optimizer: String,
    /// Learning rate (ignored by rprop).
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    /// Learning-rate schedule over epochs: cosine, constant, or step:N:GAMMA.
    #[arg(long, default_value = "cosine")]
    schedule: String,
    /// Hidden layer widths, comma separated.
    #[arg(long, default_value = "512,256", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// relu, sigmoid, tanh (or gelu, leaky-relu, elu, softplus).
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// Weight init: xavier, xavier-normal, he, he-normal.
    #[arg(long, default_value = "xavier")]
    init: Init,
    /// Dropout after each hidden layer.
    #[arg(long, default_value_t = 0.1)]
    dropout: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// Use only the first N training images (0: all).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    /// Where the checkpoint and the loss curve go.
    #[arg(long, default_value = "runs/mnist")]
    out: PathBuf,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let dev = if args.cpu {
        Device::cpu()
    } else {
        Device::gpu().unwrap_or_else(|e| {
            eprintln!("warning: {e}\nwarning: training on the CPU reference backend (slow)");
            Device::cpu()
        })
    };
    println!("device: {}", dev.name());

    let mut train = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let mut test = Dataset::mnist(&args.data, Split::Test)?.flattened();
    if args.train_size > 0 {
        train = train.slice(0, args.train_size);
    }
    let (mean, std) = train.mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    println!(
        "data: {} training and {} test images from {}",
        train.len(),
        test.len(),
        args.data.display()
    );

    dev.manual_seed(args.seed);
    let mut widths = vec![train.sample_size()];
    widths.extend(&args.hidden);
    widths.push(train.classes);
    let model = nn::Mlp::new(&widths)
        .activation(args.activation)
        .init(args.init)
        .dropout(args.dropout)
        .build(&dev);
    let params = model.params();
    let mut opt: Box<dyn Optimizer> = match args.optimizer.as_str() {
        "sgd" => Box::new(Sgd::new(&params, args.lr)),
        "momentum" => Box::new(Sgd::new(&params, args.lr).momentum(0.9)),
        "nesterov" => Box::new(Sgd::new(&params, args.lr).momentum(0.9).nesterov()),
        "adam" => Box::new(Adam::new(&params, args.lr)),
        "adamw" => Box::new(Adam::adamw(&params, args.lr, 0.01)),
        "rprop" => Box::new(Rprop::new(&params)),
        other => return Err(format!("unknown optimizer `{other}`").into()),
    };
    let schedule: Schedule = match args.schedule.as_str() {
        "cosine" => Schedule::Cosine {
            total: args.epochs,
            min_lr: 0.0,
        },
        s => s.parse()?,
    };
    println!(
        "model: {widths:?} {:?}, {} parameters; optimizer {}, batch {}",
        args.activation,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>(),
        args.optimizer,
        args.batch
    );

    std::fs::create_dir_all(&args.out)?;
    let steps_per_epoch = train.num_batches(args.batch);
    let log_every = (steps_per_epoch / 50).max(1);
    let mut curve = Vec::new();
    let mut accuracy = Vec::new();
    let mut bar = Bar::new();
    for epoch in 0..args.epochs {
        opt.set_lr(schedule.lr(args.lr, epoch));
        model.set_training(true);
        bar.start(&format!("epoch {:>2}", epoch + 1), steps_per_epoch as u64);
        let mut status = String::new();
        let start = Instant::now();
        let mut seen = 0;
        // The mean loss since the last log, summed on the device: no extra sync per step.
        let (mut running, mut count) = (Tensor::zeros(&dev, &[]), 0);
        for (step, batch) in train
            .batches(&dev, args.batch, Some(args.seed + epoch as u64))
            .enumerate()
        {
            let (x, y) = batch?;
            seen += y.numel();
            let loss = model.forward(&x).cross_entropy(&y);
            let grads = loss.backward();
            running = running + loss.detach();
            count += 1;
            opt.step(&grads)?; // forward, backward and update: one submit
            if (step + 1) % log_every == 0 || step + 1 == steps_per_epoch {
                let l = running.item()? / count as f32;
                (running, count) = (Tensor::zeros(&dev, &[]), 0);
                curve.push(l);
                let rate = seen as f64 / start.elapsed().as_secs_f64();
                status = format!("loss {l:.4}  {rate:.0} samples/s");
            }
            bar.update(step as u64 + 1, &status);
        }
        let secs = start.elapsed().as_secs_f64();
        bar.finish();
        model.set_training(false);
        let acc = evaluate(&dev, &model, &test)?;
        accuracy.push(acc);
        println!(
            "epoch {:>2}: loss {:.4}, test accuracy {:.2}%, {:.1} s ({:.0} samples/s)",
            epoch + 1,
            curve.last().copied().unwrap_or(f32::NAN),
            100.0 * acc,
            secs,
            train.len() as f64 / secs
        );
    }

    let ckpt = args.out.join("mnist.safetensors");
    wgrad::checkpoint::save(&ckpt, &params, Some(opt.as_ref()))?;
    let chart = args.out.join("loss.png");
    wgrad::viz::save_line_chart(
        &chart,
        "mnist training loss (mean per logging interval)",
        "training step",
        log_every as f32,
        &[("cross-entropy", &curve)],
        Scale::Log,
    )?;
    let acc_chart = args.out.join("accuracy.png");
    let acc_pct: Vec<f32> = accuracy.iter().map(|a| 100.0 * a).collect();
    wgrad::viz::save_line_chart(
        &acc_chart,
        "test accuracy (%) after each epoch",
        "epoch",
        1.0,
        &[("test", &acc_pct)],
        Scale::Linear,
    )?;
    println!(
        "saved {}, {} and {}",
        ckpt.display(),
        chart.display(),
        acc_chart.display()
    );
    Ok(())
}

/// Share of `data` the model classifies correctly (counted on the device, one read per batch).
fn evaluate(dev: &Device, model: &impl Module, data: &Dataset) -> wgrad::Result<f32> {
    let _no_grad = dev.no_grad();
    let mut correct = 0.0;
    for batch in data.batches(dev, 1000, None) {
        let (x, y) = batch?;
        let hits = model.forward(&x).argmax(1).eq(&y).sum_all();
        correct += hits.item()?;
    }
    Ok(correct / data.len() as f32)
}
