//! Train a small convolutional network on MNIST or Fashion-MNIST.
//!
//!     cargo run --release --example cnn                     # MNIST
//!     cargo run --release --example cnn -- --data fashion   # Fashion-MNIST
//!     cargo run --release --example cnn -- --resume         # continue an interrupted run
//!     cargo run --release --example cnn -- --quick          # a small slice, seconds
//!
//! The network: for each width in `--channels`, a 3×3 convolution (padding 1, no bias), batch
//! norm, ReLU and 2×2 max pooling; then dropout, a hidden linear layer with ReLU, dropout and a
//! linear layer to the 10 classes. Adam with a cosine-decayed rate. Prints the test accuracy
//! after every epoch and, at the end, the confusion matrix and the published figures beside
//! the result. Writes to `--out`: the checkpoint (PyTorch's names and layouts: it loads into
//! the same `nn.Sequential` with `load_state_dict`), `metrics.csv`, `steps.csv`, and PNGs of
//! the first layer's filters, the confusion matrix and the curves.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use wgrad::Device;
use wgrad::data::{Dataset, Split};
use wgrad::nn::conv::{Conv2d, Flatten, MaxPool2d};
use wgrad::nn::norm::BatchNorm2d;
use wgrad::nn::{Activation, Dropout, Init, Linear, Module, Sequential};
use wgrad::optim::{Adam, Optimizer, Schedule};
use wgrad::progress::Bar;
use wgrad::train::options::{output_dir, positive, probability};
use wgrad::train::{self, Classifier, Config};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Data {
    Mnist,
    Fashion,
}

#[derive(Parser)]
#[command(
    about = "Train a convnet on MNIST or Fashion-MNIST with wgrad",
    allow_negative_numbers = true
)]
struct Args {
    /// Which images: mnist (data/mnist) or fashion (data/fashion-mnist).
    #[arg(long, value_enum, default_value_t = Data::Mnist)]
    data: Data,
    /// A folder holding that set's IDX files instead of the vendored one.
    #[arg(long, value_parser = wgrad::train::options::existing_dir)]
    data_dir: Option<PathBuf>,
    /// Passes over the data [default: 12, or 1 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Samples per update.
    #[arg(long, default_value_t = 128, value_parser = positive::<usize>)]
    batch: usize,
    /// Adam's learning rate, decayed to 0 by a cosine over the epochs.
    #[arg(long, default_value_t = 2e-3, value_parser = positive::<f32>)]
    lr: f32,
    /// Output channels of each conv block, comma separated.
    #[arg(long, default_value = "32,64", value_delimiter = ',', value_parser = positive::<usize>)]
    channels: Vec<usize>,
    /// Width of the hidden linear layer.
    #[arg(long, default_value_t = 128, value_parser = positive::<usize>)]
    hidden: usize,
    /// Dropout before each linear layer, in [0, 1).
    #[arg(long, default_value_t = 0.25, value_parser = probability)]
    dropout: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// Use only the first N training images (0: all, or 2,000 with --quick).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    /// A small slice (2,000 training and 1,000 test images, one epoch).
    #[arg(long)]
    quick: bool,
    /// Where everything goes [default: runs/cnn-<data>, with -quick after it for --quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue from the checkpoint in --out (same options), ending as the uninterrupted run.
    #[arg(long)]
    resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping.
    #[arg(long)]
    keep_going: bool,
}

/// The published figures a run compares against: (what, test accuracy in %).
fn anchors(data: Data) -> &'static [(&'static str, f64)] {
    match data {
        Data::Mnist => &[
            ("Keras mnist_cnn, 12 epochs", 99.25),
            ("this project's MLP (examples/mnist.rs)", 98.56),
        ],
        Data::Fashion => &[
            ("Fashion-MNIST benchmark: 2 conv, < 100k parameters", 92.5),
            ("Fashion-MNIST benchmark: 2 conv + 3 FC", 93.2),
        ],
    }
}

const FASHION: [&str; 10] = [
    "T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot",
];

fn main() {
    let args = Args::parse();
    let name = match args.data {
        Data::Mnist => "cnn-mnist",
        Data::Fashion => "cnn-fashion",
    };
    // Both sets are 28×28: each block halves the side.
    if 28 >> args.channels.len() == 0 {
        train::options::exit_usage(&format!(
            "--channels: {} pooling blocks leave nothing of a 28×28 image",
            args.channels.len()
        ));
    }
    let out = train::options::out_dir(args.out.clone(), name, args.quick);
    if args.resume {
        train::options::require_checkpoint(&out, name);
    }
    if let Err(e) = run(args, out, name) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The convnet: conv-bn-relu-pool blocks, then dropout, linear, relu, dropout, linear.
fn convnet(dev: &Device, args: &Args, side: usize, classes: usize) -> Sequential {
    let mut model = Sequential::new();
    let (mut channels, mut side) = (1, side);
    for &c in &args.channels {
        model.push(Conv2d::new(dev, channels, c, 3).padding(1).bias(false));
        model.push(BatchNorm2d::new(dev, c));
        model.push(Activation::Relu);
        model.push(MaxPool2d::new(2));
        (channels, side) = (c, side / 2);
    }
    model.push(Flatten);
    model.push(Dropout::new(args.dropout));
    model.push(Linear::new(
        dev,
        channels * side * side,
        args.hidden,
        Init::TorchDefault,
    ));
    model.push(Activation::Relu);
    model.push(Dropout::new(args.dropout));
    model.push(Linear::new(dev, args.hidden, classes, Init::TorchDefault));
    model
}

fn run(args: Args, out: PathBuf, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let dev = train::options::device(args.cpu);
    let dir = args.data_dir.clone().unwrap_or_else(|| match args.data {
        Data::Mnist => PathBuf::from("data/mnist"),
        Data::Fashion => PathBuf::from("data/fashion-mnist"),
    });
    let mut train = Dataset::mnist(&dir, Split::Train)?.single_channel();
    let mut test = Dataset::mnist(&dir, Split::Test)?.single_channel();
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
    let side = train.sample_shape[1];
    let (mean, std) = train.mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    println!(
        "data: {} training and {} test images from {}",
        train.len(),
        test.len(),
        dir.display()
    );

    let epochs = args.epochs.unwrap_or(if args.quick { 1 } else { 12 });
    dev.manual_seed(args.seed);
    let model = convnet(&dev, &args, side, train.classes);
    let params = model.params();
    let opt: Box<dyn Optimizer> = Box::new(Adam::new(&params, args.lr));
    println!(
        "model: conv blocks {:?}, hidden {}, dropout {}, {} parameters; Adam {} (cosine), batch {}",
        args.channels,
        args.hidden,
        args.dropout,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>(),
        args.lr,
        args.batch
    );

    let config = Config {
        epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        schedule: Schedule::Cosine {
            total: epochs,
            min_lr: 0.0,
        },
        out: Some(out.clone()),
        name: name.into(),
        resume: args.resume,
        keep_going: args.keep_going,
        log_every: (train.num_batches(args.batch) / 50).max(1),
        interrupt: Some(train::ctrl_c()?),
        fingerprint: format!(
            "{:?} channels {:?} hidden {} dropout {}",
            args.data, args.channels, args.hidden, args.dropout
        ),
        shard: Default::default(),
    };
    let mut task = Classifier {
        dev: dev.clone(),
        model,
        opt,
        test,
    };
    let outcome = train::fit(&mut task, &train, &config, &mut Bar::new())?;
    let (model, test) = (&task.model, &task.test);
    model.set_training(false);

    // The confusion matrix over the test set: rows are true classes, columns predictions.
    let classes = test.classes;
    let mut confusion = vec![0usize; classes * classes];
    {
        let _no_grad = dev.no_grad();
        for batch in test.batches(&dev, 1000, None) {
            let (x, y) = batch?;
            let predicted = model.forward(&x).argmax(1).to_vec()?;
            for (p, t) in predicted.iter().zip(y.to_vec()?) {
                confusion[t as usize * classes + *p as usize] += 1;
            }
        }
    }
    let correct: usize = (0..classes).map(|c| confusion[c * classes + c]).sum();
    let accuracy = 100.0 * correct as f64 / test.len().max(1) as f64;
    let label = |c: usize| match args.data {
        Data::Mnist => c.to_string(),
        Data::Fashion => FASHION[c].to_string(),
    };
    println!("\nconfusion matrix (rows: true class, columns: predicted)");
    print!("{:>9}", "");
    for c in 0..classes {
        print!("{:>6}", c);
    }
    println!();
    for t in 0..classes {
        print!("{:>9}", label(t));
        for p in 0..classes {
            print!("{:>6}", confusion[t * classes + p]);
        }
        println!();
    }

    println!("\n| model | test accuracy |");
    println!("|---|---|");
    println!(
        "| this convnet, {} epochs, {} parameters | **{accuracy:.2}%** |",
        epochs,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>()
    );
    for (what, figure) in anchors(args.data) {
        println!("| {what} | {figure:.2}% |");
    }

    // Pictures: the first layer's filters, the confusion matrix, the curves.
    let filters = out.join("filters.png");
    let w = model.params()[0].1.to_vec()?;
    let taps = 9;
    let scaled: Vec<f32> = w
        .chunks(taps)
        .flat_map(|f| {
            let (lo, hi) = f
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            f.iter().map(move |v| (v - lo) / (hi - lo).max(1e-12))
        })
        .collect();
    wgrad::viz::save_image_grid(&filters, &scaled, 3, 3, 8, 12)?;
    let matrix = out.join("confusion.png");
    let shares: Vec<f32> = (0..classes * classes)
        .map(|e| {
            let row: usize = confusion[(e / classes) * classes..][..classes].iter().sum();
            // Square-root scale, so that the few mistakes show beside the diagonal.
            (confusion[e] as f32 / row.max(1) as f32).sqrt()
        })
        .collect();
    wgrad::viz::save_image_grid(&matrix, &shares, classes, classes, 1, 24)?;
    let (loss_png, acc_png) = outcome.save_classifier_curves(&out, "convnet", config.log_every)?;
    println!(
        "\nsaved {}, {}, {}, {}, {} and {}",
        config
            .checkpoint_path()
            .expect("an output folder")
            .display(),
        out.join("metrics.csv").display(),
        filters.display(),
        matrix.display(),
        loss_png.display(),
        acc_png.display()
    );
    Ok(())
}
