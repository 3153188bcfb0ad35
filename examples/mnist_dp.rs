//! The MNIST MLP of `examples/mnist.rs`, trained data-parallel over MPI: every rank holds the
//! model, reads its shard of each global batch, and averages its gradients with the others
//! before the update. Needs the `mpi` feature (an MPI library and libclang to build; see the
//! README):
//!
//!     cargo build --release --features mpi --example mnist_dp
//!     mpirun -n 2 target/release/examples/mnist_dp                # 2 ranks, batch 128 = 2 × 64
//!     mpirun -n 2 target/release/examples/mnist_dp --quick
//!     mpirun -n 4 --oversubscribe target/release/examples/mnist_dp --epochs 1 --timing
//!     mpirun -n 2 target/release/examples/mnist_dp --resume       # continue an interrupted run
//!
//! As root (in a container), OpenMPI also wants `--allow-run-as-root`. Run without `mpirun`, it
//! is a job of one rank.
//!
//! Rank 0 prints, draws the progress bar and writes `<out>/metrics.csv` and the curves; every
//! rank writes its checkpoint to `<out>/rank<r>/` (they hold the same bits, which the run checks
//! after every epoch), so `--resume` works as in the single-process example.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use wgrad::data::{Dataset, Split};
use wgrad::dist::{Comm, DataParallel, Reduction, Timing};
use wgrad::nn::{Activation, Init, Mlp, Module, Sequential};
use wgrad::optim::{Optimizer, Schedule, Sgd};
use wgrad::progress::{Bar, Silent};
use wgrad::train::options::{existing_dir, output_dir, positive, probability};
use wgrad::train::{self, Config, Metric, Task};
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(about = "Train the MNIST MLP data-parallel over MPI with wgrad")]
struct Args {
    /// Folder holding the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    /// Passes over the data [default: 12, or 2 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// The global batch: the samples of one update over all ranks (each rank reads its share).
    #[arg(long, default_value_t = 128, value_parser = positive::<usize>)]
    batch: usize,
    /// Learning rate of SGD with Nesterov momentum 0.9, cosine-decayed over the epochs.
    #[arg(long, default_value_t = 0.05, value_parser = positive::<f32>)]
    lr: f32,
    /// Hidden layer widths, comma separated.
    #[arg(long, default_value = "512,256", value_delimiter = ',', value_parser = positive::<usize>)]
    hidden: Vec<usize>,
    /// Dropout after each hidden layer, in [0, 1) (each rank draws its own masks).
    #[arg(long, default_value_t = 0.1, value_parser = probability)]
    dropout: f32,
    /// How the ranks' gradients are summed: ordered (rank order, the same bits everywhere) or
    /// allreduce (MPI's own algorithm).
    #[arg(long, value_enum, default_value_t = Sum::Ordered)]
    reduction: Sum,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// Use only the first N training images (0: all, or 2,048 with --quick).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    /// A small slice (2,048 training and 1,000 test images, 2 epochs) for a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Print where each step's time went (compute, readback, allreduce, write-back, the rest).
    #[arg(long)]
    timing: bool,
    /// Where the checkpoints, the logs and the curves go [default: runs/mnist-dp, or
    /// runs/mnist-dp-quick with --quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue from the checkpoints in --out (same options and number of ranks).
    #[arg(long)]
    resume: bool,
    /// Gradient elements per collective [default: 4 Mi].
    #[arg(long, hide = true, value_parser = positive::<usize>)]
    bucket: Option<usize>,
    /// For testing the fault handling: `exit:R` (rank R leaves after the broadcast),
    /// `crash:R[:STEP]` (rank R aborts at its step STEP, 3 by default) or `shapes:R` (rank R
    /// builds a wider first layer).
    #[arg(long, hide = true, value_parser = fault)]
    fault: Option<(Fault, usize)>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Sum {
    Ordered,
    Allreduce,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Exit,
    /// At this step (from 1).
    Crash(u64),
    Shapes,
}

fn fault(s: &str) -> Result<(Fault, usize), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let number = |t: &str| {
        t.parse::<u64>()
            .map_err(|_| format!("{t:?} is not a number"))
    };
    let (kind, rank) = match parts[..] {
        ["exit", r] => (Fault::Exit, number(r)?),
        ["shapes", r] => (Fault::Shapes, number(r)?),
        ["crash", r] => (Fault::Crash(3), number(r)?),
        ["crash", r, step] => (Fault::Crash(number(step)?.max(1)), number(r)?),
        _ => return Err(format!("{s:?} is not exit:R, crash:R[:STEP] or shapes:R")),
    };
    Ok((kind, rank as usize))
}

fn main() {
    let args = Args::parse();
    let comm = Comm::init().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let out = train::options::out_dir(args.out.clone(), "mnist-dp", args.quick);
    let rank_dir = output_dir(&out.join(format!("rank{}", comm.rank())).to_string_lossy())
        .unwrap_or_else(|e| train::options::exit_usage(&format!("--out: {e}")));
    if args.resume {
        train::options::require_checkpoint(&rank_dir, "mnist");
    }
    if let Err(e) = run(&comm, args, out, rank_dir) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

struct Classifier {
    comm: Comm,
    dev: Device,
    model: Sequential,
    opt: DataParallel<Sgd>,
    test: Dataset,
    root: bool,
    /// Wall time inside `step`, steps taken in this process, and the step that should crash
    /// (fault testing).
    stepping: Duration,
    steps: u64,
    crash_at: Option<u64>,
}

impl Task for Classifier {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let started = Instant::now();
        self.steps += 1;
        if self.crash_at == Some(self.steps) {
            eprintln!("rank with --fault crash: aborting at step {}", self.steps);
            std::process::abort();
        }
        let loss = self.model.forward(x).cross_entropy(y);
        self.opt.step(&loss.backward())?; // gradients averaged over the ranks, then the update
        self.stepping += started.elapsed();
        Ok(vec![("loss", loss)])
    }

    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        // Every rank, every epoch: the same bits everywhere, or an error naming the parameter.
        self.comm.check_identical(&self.model.params())?;
        if !self.root {
            return Ok(vec![]);
        }
        self.model.set_training(false);
        let acc = train::accuracy(&self.dev, &self.model, &self.test);
        self.model.set_training(true);
        Ok(vec![Metric::percent("test_accuracy", acc? as f64)])
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        self.model.params()
    }

    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

fn run(
    comm: &Comm,
    args: Args,
    out: PathBuf,
    rank_dir: PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = comm.is_root();
    let say = |s: &str| {
        if root {
            println!("{s}");
        }
    };
    let dev = comm.device(args.cpu)?;
    say(&format!(
        "{} rank(s); rank 0 on {}; gradients summed {:?}",
        comm.size(),
        dev.name(),
        args.reduction
    ));
    let mut train = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let mut test = Dataset::mnist(&args.data, Split::Test)?.flattened();
    let train_size = match (args.train_size, args.quick) {
        (0, true) => 2048,
        (n, _) => n,
    };
    if train_size > 0 {
        train = train.slice(0, train_size.min(train.len()));
    }
    if args.quick {
        test = test.slice(0, 1000);
    }
    let (mean, std) = train.mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    if args.batch < comm.size() {
        train::options::exit_usage(&format!(
            "--batch {} is smaller than the number of ranks ({})",
            args.batch,
            comm.size()
        ));
    }
    let epochs = args.epochs.unwrap_or(if args.quick { 2 } else { 12 });
    say(&format!(
        "data: {} training and {} test images; global batch {} ({} per rank)",
        train.len(),
        test.len(),
        args.batch,
        args.batch / comm.size()
    ));

    // Every rank builds the model; rank 0's initial values are then copied to all.
    dev.manual_seed(args.seed);
    let mut widths = vec![train.sample_size()];
    widths.extend(&args.hidden);
    widths.push(train.classes);
    if args.fault == Some((Fault::Shapes, comm.rank())) {
        widths[1] += 1;
    }
    let model = Mlp::new(&widths)
        .activation(Activation::Relu)
        .init(Init::XavierUniform)
        .dropout(args.dropout)
        .build(&dev);
    let params = model.params();
    comm.broadcast_parameters(&params)?;
    comm.check_identical(&params)?;
    if args.fault == Some((Fault::Exit, comm.rank())) {
        eprintln!(
            "rank {} with --fault exit: leaving after the broadcast",
            comm.rank()
        );
        return Ok(());
    }
    // Dropout masks: rank 0 keeps the seed's stream (as a single process would), the others
    // draw their own.
    if comm.rank() > 0 {
        dev.manual_seed(
            args.seed
                .wrapping_add(0x9e37_79b9_7f4a_7c15u64.wrapping_mul(comm.rank() as u64)),
        );
    }
    let reduction = match args.reduction {
        Sum::Ordered => Reduction::Ordered,
        Sum::Allreduce => Reduction::Allreduce,
    };
    let mut opt = DataParallel::new(Sgd::new(&params, args.lr).momentum(0.9).nesterov(), comm)
        .reduction(reduction)
        .timed(args.timing);
    if let Some(b) = args.bucket {
        opt = opt.bucket(b);
    }
    say(&format!(
        "model: {widths:?} ReLU, dropout {}, {} parameters; SGD Nesterov 0.9, lr {} cosine",
        args.dropout,
        params.iter().map(|(_, p)| p.numel()).sum::<usize>(),
        args.lr
    ));

    let config = Config {
        epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        schedule: Schedule::Cosine {
            total: epochs,
            min_lr: 0.0,
        },
        out: Some(rank_dir.clone()),
        name: "mnist".into(),
        resume: args.resume,
        log_every: (train.num_shard_batches(args.batch, comm.size()) / 50).max(1),
        fingerprint: format!(
            "{widths:?} relu dropout {} nesterov ranks {} {:?}",
            args.dropout,
            comm.size(),
            args.reduction
        ),
        shard: comm.shard(),
        // No Ctrl-C flag: a rank that stopped alone would leave the others waiting. mpirun
        // ends every rank on Ctrl-C; the checkpoints of the last finished epoch remain.
        ..Config::default()
    };
    let crash_at = match args.fault {
        Some((Fault::Crash(step), r)) if r == comm.rank() => Some(step),
        _ => None,
    };
    let mut task = Classifier {
        comm: comm.clone(),
        dev,
        model,
        opt,
        test,
        root,
        stepping: Duration::ZERO,
        steps: 0,
        crash_at,
    };
    let started = Instant::now();
    let outcome = if root {
        train::fit(&mut task, &train, &config, &mut Bar::new())?
    } else {
        train::fit(&mut task, &train, &config, &mut Silent)?
    };
    let wall = started.elapsed();
    comm.check_identical(&task.model.params())?;
    say(&format!(
        "the parameters are bit-identical on all {} rank(s)",
        comm.size()
    ));
    if args.timing {
        report_timing(comm, task.opt.timing(), task.stepping, wall);
    }
    if root {
        let acc: Vec<f32> = outcome
            .epoch_column("test_accuracy")
            .iter()
            .map(|&a| (100.0 * a) as f32)
            .collect();
        if let Some(last) = acc.last() {
            println!("test accuracy after {epochs} epochs: {last:.2}%");
        }
        let acc_png = out.join("accuracy.png");
        wgrad::viz::save_line_chart(
            &acc_png,
            &format!(
                "test accuracy (%) after each epoch, {} rank(s)",
                comm.size()
            ),
            "epoch",
            1.0,
            &[("test", &acc)],
            wgrad::viz::Scale::Linear,
        )?;
        println!(
            "saved {}, {} and {}",
            rank_dir.join("mnist.safetensors").display(),
            rank_dir.join("metrics.csv").display(),
            acc_png.display()
        );
    }
    Ok(())
}

/// Rank 0's time per step, by phase (the slowest rank shows up as rank 0's allreduce wait).
fn report_timing(comm: &Comm, t: Timing, stepping: Duration, wall: Duration) {
    if !comm.is_root() || t.steps == 0 {
        return;
    }
    let per = |d: Duration| 1e3 * d.as_secs_f64() / t.steps as f64;
    let parts = t.compute + t.readback + t.allreduce + t.writeback;
    let rest = stepping.saturating_sub(parts);
    println!(
        "timing over {} steps, ms per step on rank 0 ({} ranks): step {:.2} = compute {:.2} + \
         readback {:.3} + allreduce {:.3} + write-back {:.3} + rest (recording, update submit) \
         {:.2}; whole run {:.1} s",
        t.steps,
        comm.size(),
        per(stepping),
        per(t.compute),
        per(t.readback),
        per(t.allreduce),
        per(t.writeback),
        per(rest),
        wall.as_secs_f64()
    );
}
