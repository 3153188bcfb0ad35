//! Train a multilayer perceptron on MNIST: the project's main job.
//!
//!     cargo run --release --example mnist
//!     cargo run --release --example mnist -- --optimizer adam --lr 1e-3 --epochs 5
//!     cargo run --release --example mnist -- --batch 1        # online: one sample per update
//!     cargo run --release --example mnist -- --batch 60000 --optimizer rprop --epochs 50
//!     cargo run --release --example mnist -- --resume         # continue an interrupted run
//!     cargo run --release --example mnist -- --quick          # a small slice, a few seconds
//!
//! Prints the test accuracy after every epoch. Writes to `--out`: the checkpoint (safetensors,
//! after every epoch and on Ctrl-C), `metrics.csv` (a row per epoch), `steps.csv` (a row per
//! logging interval) and PNGs of the loss and accuracy curves drawn from those rows.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use wgrad::data::{Dataset, Split};
use wgrad::nn::{Activation, Init, Mlp, Module};
use wgrad::optim::{Adam, Optimizer, Rprop, Schedule, Sgd};
use wgrad::progress::Bar;
use wgrad::train::options::{existing_dir, output_dir, positive, probability};
use wgrad::train::{self, Classifier, Config};

#[derive(Parser)]
#[command(
    about = "Train an MLP on MNIST with wgrad",
    allow_negative_numbers = true
)]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    /// Passes over the data [default: 12, or 2 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Samples per update: 1 is online learning; 60000 is full-batch.
    #[arg(long, default_value_t = 128, value_parser = positive::<usize>)]
    batch: usize,
    #[arg(long, value_enum, default_value_t = Opt::Nesterov)]
    optimizer: Opt,
    /// Learning rate (ignored by rprop).
    #[arg(long, default_value_t = 0.05, value_parser = positive::<f32>)]
    lr: f32,
    /// Learning-rate schedule over epochs: cosine, constant, or step:N:GAMMA.
    #[arg(long, default_value = "cosine")]
    schedule: String,
    /// Hidden layer widths, comma separated.
    #[arg(long, default_value = "512,256", value_delimiter = ',', value_parser = positive::<usize>)]
    hidden: Vec<usize>,
    /// relu, sigmoid, tanh (or gelu, gelu-tanh, leaky-relu, elu, softplus).
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// Weight init: xavier, xavier-normal, he, he-normal.
    #[arg(long, default_value = "xavier")]
    init: Init,
    /// Dropout after each hidden layer, in [0, 1).
    #[arg(long, default_value_t = 0.1, value_parser = probability)]
    dropout: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// Use only the first N training images (0: all, or 2,000 with --quick).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    /// A small slice (2,000 training and 1,000 test images, 2 epochs) for a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Where the checkpoint, the logs and the curves go [default: runs/mnist, or
    /// runs/mnist-quick with --quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue from the checkpoint in --out (same options), ending as the uninterrupted run.
    #[arg(long)]
    resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping.
    #[arg(long)]
    keep_going: bool,
    /// Check every op's output for NaN and infinity and name the first that makes one.
    #[arg(long)]
    detect_anomaly: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Opt {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
    Adamw,
    Rprop,
}

fn main() {
    let args = Args::parse();
    let schedule = match args.schedule.as_str() {
        "cosine" => None,
        s => Some(
            s.parse::<Schedule>()
                .unwrap_or_else(|e| train::options::exit_usage(&format!("--schedule: {e}"))),
        ),
    };
    let out = train::options::out_dir(args.out.clone(), "mnist", args.quick);
    if args.resume {
        train::options::require_checkpoint(&out, "mnist");
    }
    if let Err(e) = run(args, out, schedule) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(
    args: Args,
    out: PathBuf,
    schedule: Option<Schedule>,
) -> Result<(), Box<dyn std::error::Error>> {
    let dev = train::options::device(args.cpu);
    dev.set_anomaly_detection(args.detect_anomaly);

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
    let (mean, std) = train.mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    println!(
        "data: {} training and {} test images from {}",
        train.len(),
        test.len(),
        args.data.display()
    );

    let epochs = args.epochs.unwrap_or(if args.quick { 2 } else { 12 });
    dev.manual_seed(args.seed);
    let mut widths = vec![train.sample_size()];
    widths.extend(&args.hidden);
    widths.push(train.classes);
    let model = Mlp::new(&widths)
        .activation(args.activation)
        .init(args.init)
        .dropout(args.dropout)
        .build(&dev);
    let params = model.params();
    let opt: Box<dyn Optimizer> = match args.optimizer {
        Opt::Sgd => Box::new(Sgd::new(&params, args.lr)),
        Opt::Momentum => Box::new(Sgd::new(&params, args.lr).momentum(0.9)),
        Opt::Nesterov => Box::new(Sgd::new(&params, args.lr).momentum(0.9).nesterov()),
        Opt::Adam => Box::new(Adam::new(&params, args.lr)),
        Opt::Adamw => Box::new(Adam::adamw(&params, args.lr, 0.01)),
        Opt::Rprop => Box::new(Rprop::new(&params)),
    };
    println!(
        "model: {widths:?} {:?}, {} parameters; optimizer {}, batch {}",
        args.activation,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>(),
        args.optimizer
            .to_possible_value()
            .expect("every optimizer has a name")
            .get_name(),
        args.batch
    );

    let config = Config {
        epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        schedule: schedule.unwrap_or(Schedule::Cosine {
            total: epochs,
            min_lr: 0.0,
        }),
        out: Some(out.clone()),
        name: "mnist".into(),
        resume: args.resume,
        keep_going: args.keep_going,
        log_every: (train.num_batches(args.batch) / 50).max(1),
        interrupt: Some(train::ctrl_c()?),
        fingerprint: format!(
            "{widths:?} {:?} {:?} dropout {} {:?}",
            args.activation, args.init, args.dropout, args.optimizer
        ),
        shard: Default::default(),
    };
    let mut task = Classifier {
        dev,
        model,
        opt,
        test,
    };
    let outcome = train::fit(&mut task, &train, &config, &mut Bar::new())?;

    // The curves, from the rows of steps.csv and metrics.csv.
    let (loss_png, acc_png) = outcome.save_classifier_curves(&out, "mnist", config.log_every)?;
    println!(
        "saved {}, {}, {} and {}",
        config
            .checkpoint_path()
            .expect("an output folder")
            .display(),
        out.join("metrics.csv").display(),
        loss_png.display(),
        acc_png.display()
    );
    Ok(())
}
