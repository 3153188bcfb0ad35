//! UNIT (Liu, Breuel & Kautz 2017) between two handwriting domains, with no paired examples:
//! A is MNIST, B the UCI optical digits (8×8, 17 grey levels, 13 other writers). Then the
//! quantitative test of the paper's domain adaptation: a classifier trained on MNIST labels only
//! reads B's held-out digits directly ("source only"), and the same digits translated B → A.
//!
//!     cargo run --release --example unit
//!     cargo run --release --example unit -- --seed 1
//!     cargo run --release --example unit -- --quick
//!
//! - B is framed as MNIST is: each 8×8 digit resized (bilinear) to a 20×20 box centred in 28×28
//!   (`Dataset::framed(20, 28)`), the one framing both arms of the test see.
//! - B's last 500 digits are held out for the test. B's labels are dropped before training:
//!   nothing in training, nor the choice of the epoch to report (always the last one), sees
//!   them. 500 digits give a standard error of about ±1.3 points at 90%.
//! - The classifier is `--classifier` (default: the checkpoint of `examples/mnist.rs` in
//!   `runs/mnist/`); without one, a classifier of the same shape is trained on MNIST first and
//!   kept in `<out>/classifier/` for later runs.
//! - The networks are MLPs (784 → 256 own → 256 → 64 shared, and back), B's own layers start
//!   from A's values (`Unit::start_alike`); the loss weights are the paper's but for λ₀ (GAN),
//!   lowered from 10 to 1 (with 10, nothing reconstructs in the first thousand steps).
//! - Each epoch saves `ab_epochNN.png` and `ba_epochNN.png` (rows of inputs, each above its
//!   translation) and logs the losses and the held-out accuracy of the translations; the
//!   checkpoint (the six networks, both optimizers, B's data position) goes to `--out`,
//!   `--resume` continues a run.

use std::path::{Path, PathBuf};

use clap::Parser;
use wgrad::checkpoint::Checkpoint;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::Judge;
use wgrad::nn::{Activation, Init, Mlp, Module};
use wgrad::optim::{Adam, Optimizer, Schedule, Sgd};
use wgrad::progress::{Bar, Progress};
use wgrad::rng::Rng;
use wgrad::train::options::{existing_dir, output_dir, positive};
use wgrad::train::{self, Classifier, Config, Metric, State, Task};
use wgrad::unit::{Domain, Shape, Unit, Weights};
use wgrad::{Device, Tensor};

#[derive(Parser)]
#[command(
    about = "UNIT between MNIST and the UCI digits, and domain adaptation by translation",
    allow_negative_numbers = true
)]
struct Args {
    /// Folder holding the MNIST IDX files (domain A).
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    /// The UCI digits' CSV (domain B).
    #[arg(long, default_value = "data/uci-digits/digits.csv.gz")]
    digits: PathBuf,
    /// Passes over A's training images (937 steps each with all 60,000) [default: 1].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Use only the first N of A's training images (0: all 60,000, or 1,000 with --quick).
    #[arg(long, default_value_t = 0)]
    train_size: usize,
    /// Images of each domain per step.
    #[arg(long, default_value_t = 64, value_parser = positive::<usize>)]
    batch: usize,
    /// Adam's learning rate for every network (β = 0.5, 0.999 and weight decay 1e-4 as the
    /// paper; the paper's rate is 1e-4, for many more steps).
    #[arg(long, default_value_t = 1e-3, value_parser = positive::<f32>)]
    lr: f32,
    /// Width of each domain's own encoder and generator layers.
    #[arg(long, default_value_t = 256, value_parser = positive::<usize>)]
    private: usize,
    /// Width of the shared hidden layers.
    #[arg(long, default_value_t = 256, value_parser = positive::<usize>)]
    shared: usize,
    /// Width of the shared latent code.
    #[arg(long, default_value_t = 64, value_parser = positive::<usize>)]
    latent: usize,
    /// Hidden widths of the discriminators, comma separated.
    #[arg(long, default_value = "256", value_delimiter = ',', value_parser = positive::<usize>)]
    d_hidden: Vec<usize>,
    /// The loss weights λ₀ (GAN), λ₁ (KL), λ₂ (reconstruction), λ₃ (cycle KL), λ₄ (cycle
    /// reconstruction), comma separated. The paper's are 10,0.1,100,0.1,100; with λ₀ = 10 these
    /// MLPs' reconstructions learn nothing in the first thousand steps (BENCHMARKS.md), so the
    /// default lowers λ₀ to 1.
    #[arg(long, value_delimiter = ',', default_value = "1,0.1,100,0.1,100")]
    weights: Vec<f32>,
    /// Draw B's own layers independently of A's instead of starting them from A's values
    /// (`Unit::start_alike`).
    #[arg(long)]
    independent_start: bool,
    /// MNIST classifier checkpoint written by `examples/mnist.rs` [default:
    /// runs/mnist/mnist.safetensors; trained here when it is not there].
    #[arg(long)]
    classifier: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// 1,000 of A's images, one epoch, narrow networks, a classifier of its own trained on 2,000
    /// images: a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Where the pictures, the checkpoints and the logs go [default: runs/unit, or
    /// runs/unit-quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue from the checkpoint in --out (same options).
    #[arg(long)]
    resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping.
    #[arg(long)]
    keep_going: bool,
}

/// B's digits held out for the test (the file's last ones).
const HELD_OUT: usize = 500;
/// Digits of each domain in a picture.
const SHOWN: usize = 24;

fn main() {
    let args = Args::parse();
    let usage = train::options::exit_usage;
    if let Some(c) = &args.classifier
        && !c.is_file()
    {
        usage(&format!("--classifier: no checkpoint at {}", c.display()));
    }
    if !args.digits.is_file() {
        usage(&format!("--digits: no file at {}", args.digits.display()));
    }
    let w = &args.weights;
    if w.len() != 5 || w.iter().any(|v| !v.is_finite() || *v < 0.0) {
        usage(&format!("--weights: {w:?} must be five finite values ≥ 0"));
    }
    let out = train::options::out_dir(args.out.clone(), "unit", args.quick);
    if args.resume {
        train::options::require_checkpoint(&out, "unit");
    }
    if let Err(e) = run(args, out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The model, its optimizers, B's unlabelled training digits and what each epoch looks at.
struct Translation {
    dev: Device,
    unit: Unit,
    opt_gen: Adam,
    opt_dis: Adam,
    /// B's training digits (labels removed).
    b_train: Dataset,
    /// B's digits drawn so far, in an endless stream that reshuffles B at every pass (seeded
    /// by the run's seed and the pass): where the next batch starts.
    b_drawn: u64,
    /// The current pass's order of B (derived from `b_drawn`, so not saved).
    b_order: Option<(u64, Vec<usize>)>,
    seed: u64,
    /// A's test digits and B's held-out digits shown in the pictures.
    shown_a: Tensor,
    shown_b: Tensor,
    /// B's held-out digits and their labels (for the test only).
    test_b: (Tensor, Tensor),
    /// A's test digits (for the reconstruction figures).
    test_a: Tensor,
    judge: Judge,
    out: PathBuf,
}

impl Translation {
    /// The next `n` digits of B's stream.
    fn b_batch(&mut self, n: usize) -> wgrad::Result<Tensor> {
        let len = self.b_train.len() as u64;
        let mut idx = Vec::with_capacity(n);
        for at in self.b_drawn..self.b_drawn + n as u64 {
            let pass = at / len;
            if self.b_order.as_ref().is_none_or(|(p, _)| *p != pass) {
                let mut o: Vec<usize> = (0..len as usize).collect();
                Rng::new(wgrad::rng::mix(self.seed ^ 0x756e_6974, pass)).shuffle(&mut o);
                self.b_order = Some((pass, o));
            }
            let (_, order) = self.b_order.as_ref().expect("set above");
            idx.push(order[(at % len) as usize]);
        }
        self.b_drawn += n as u64;
        Ok(self.b_train.batch(&self.dev, &idx)?.0)
    }
}

impl Task for Translation {
    fn step(&mut self, a: &Tensor, _: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let b = self.b_batch(a.shape()[0])?;
        let step = self
            .unit
            .step(&mut self.opt_gen, &mut self.opt_dis, a, &b)?;
        let l = step.losses;
        Ok(vec![
            ("total", l.total),
            ("rec", l.reconstruction),
            ("cyc", l.cycle),
            ("gan", l.gan),
            ("dis", step.discriminator),
        ])
    }

    fn evaluate(&mut self, epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let _no_grad = self.dev.no_grad();
        let u = &self.unit;
        let (xb, yb) = &self.test_b;
        let ba = u.translate(Domain::B, Domain::A, xb);
        let acc = self.judge.accuracy(&ba, yb)?;
        let l1 = |x: &Tensor, y: &Tensor| x.sub(y).abs().mean_all().item();
        let a = &self.test_a;
        let rec_a = l1(&u.translate(Domain::A, Domain::A, a), a)?;
        let rec_b = l1(&u.translate(Domain::B, Domain::B, xb), xb)?;
        let aba = u.translate(Domain::B, Domain::A, &u.translate(Domain::A, Domain::B, a));
        let cyc_a = l1(&aba, a)?;
        for (from, to, shown) in [
            (Domain::A, Domain::B, &self.shown_a),
            (Domain::B, Domain::A, &self.shown_b),
        ] {
            let translated = u.translate(from, to, shown);
            let name = format!(
                "{}_epoch{epoch:02}.png",
                if from == Domain::A { "ab" } else { "ba" }
            );
            save_pairs(
                &self.out.join(name),
                &shown.to_vec()?,
                &translated.to_vec()?,
            )?;
        }
        Ok(vec![
            Metric::percent("b_to_a_accuracy", acc as f64),
            Metric::new("test_rec_a", rec_a as f64),
            Metric::new("test_rec_b", rec_b as f64),
            Metric::new("test_cycle_a", cyc_a as f64),
        ])
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        self.unit.params()
    }

    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt_gen, &mut self.opt_dis]
    }

    fn extra_state(&self) -> wgrad::Result<State> {
        Ok(State {
            tensors: vec![],
            values: vec![("b_drawn".into(), self.b_drawn.to_string())],
        })
    }

    fn restore_extra(&mut self, checkpoint: &Checkpoint, path: &Path) -> wgrad::Result<()> {
        self.b_drawn = checkpoint.meta(path, "b_drawn")?;
        Ok(())
    }
}

/// A grid of 28×28 images: rows of 12 inputs, each row above the row of their translations.
fn save_pairs(path: &Path, inputs: &[f32], translated: &[f32]) -> wgrad::Result<()> {
    const COLS: usize = 12;
    let row = COLS * 784;
    let mut grid = Vec::with_capacity(inputs.len() * 2);
    for (i, t) in inputs.chunks(row).zip(translated.chunks(row)) {
        grid.extend_from_slice(i);
        grid.extend_from_slice(t);
    }
    wgrad::viz::save_image_grid(path, &grid, 28, 28, COLS, 2)
}

/// A progress bar whose lines are prefixed `<name>: `, apart from the run's own epoch lines.
struct Prefixed(&'static str, Bar);

impl Progress for Prefixed {
    fn start(&mut self, label: &str, total: u64) {
        self.1.start(&format!("{}: {label}", self.0), total);
    }
    fn update(&mut self, done: u64, status: &str) {
        self.1.update(done, status);
    }
    fn println(&mut self, line: &str) {
        self.1.println(&format!("{}: {line}", self.0));
    }
    fn finish(&mut self) {
        self.1.finish();
    }
}

/// The MNIST classifier (`None` when interrupted): the given checkpoint, or `examples/mnist.rs`'s, or one trained here
/// with that example's default shape (784-512-256-10 ReLU, dropout 0.1, Nesterov SGD 0.05 with
/// a cosine schedule) on MNIST's labels.
fn classifier(
    dev: &Device,
    args: &Args,
    out: &Path,
    mnist: &Dataset,
) -> Result<Option<Judge>, Box<dyn std::error::Error>> {
    let (mean, std) = mnist.mean_std();
    let test = Dataset::mnist(&args.data, Split::Test)?.flattened();
    // --quick trains its own small one unless told otherwise, so that it runs alike anywhere.
    let given = match (&args.classifier, args.quick) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => Some(PathBuf::from("runs/mnist/mnist.safetensors")),
        (None, true) => None,
    };
    let dir = out.join("classifier");
    let path = if let Some(given) = given.filter(|p| p.is_file()) {
        given
    } else {
        let path = dir.join("classifier.safetensors");
        // A finished classifier is reused; an interrupted one is trained on to the end.
        let resume = path.is_file();
        {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let (epochs, train) = if args.quick {
                (1, mnist.slice(0, 2000))
            } else {
                (3, mnist.clone())
            };
            if !resume {
                println!(
                    "classifier: training one on {} MNIST images ({epochs} epochs)",
                    train.len()
                );
            }
            let (mut train, mut test) = (train, test.clone());
            train.normalize(mean, std);
            test.normalize(mean, std);
            dev.manual_seed(0);
            let model = Mlp::new(&[784, 512, 256, 10])
                .activation(Activation::Relu)
                .init(Init::XavierUniform)
                .dropout(0.1)
                .build(dev);
            let opt = Box::new(Sgd::new(&model.params(), 0.05).momentum(0.9).nesterov());
            let mut task = Classifier {
                dev: dev.clone(),
                model,
                opt,
                test,
            };
            let config = Config {
                epochs,
                batch: 128,
                lr: 0.05,
                schedule: Schedule::Cosine {
                    total: epochs,
                    min_lr: 0.0,
                },
                out: Some(dir.clone()),
                name: "classifier".into(),
                resume,
                interrupt: Some(train::ctrl_c()?),
                ..Config::default()
            };
            let outcome = train::fit(
                &mut task,
                &train,
                &config,
                &mut Prefixed("classifier", Bar::new()),
            )?;
            if outcome.interrupted {
                return Ok(None);
            }
        }
        path
    };
    // The classifier standardises as it was trained: with all of MNIST's training statistics.
    let judge = Judge::load(dev, &path, Activation::Relu, mean, std)?;
    let (x, y) = test.tensors(dev)?;
    let acc = judge.accuracy(&x, &y)?;
    println!(
        "classifier: {} ({:.2}% on the MNIST test set)",
        path.display(),
        100.0 * acc
    );
    Ok(Some(judge))
}

fn run(args: Args, out: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let dev = train::options::device(args.cpu);
    let mnist = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let uci = Dataset::uci_digits(&args.digits)?;
    let b_all = uci.framed(20, 28).flattened();
    if b_all.len() <= HELD_OUT {
        return Err(format!(
            "{}: {} digits, but {HELD_OUT} are held out for the test and some must be left to \
             train on",
            args.digits.display(),
            b_all.len()
        )
        .into());
    }
    let split = b_all.len() - HELD_OUT;
    let test_b = b_all.slice(split, HELD_OUT);
    let mut b_train = b_all.slice(0, split);
    b_train.labels.iter_mut().for_each(|l| *l = 0.0); // B's labels never reach training
    let Some(judge) = classifier(&dev, &args, &out, &mnist)? else {
        println!("interrupted while training the classifier: continue with --resume");
        return Ok(());
    };

    let train_size = match (args.train_size, args.quick) {
        (0, true) => 1000,
        (n, _) => n,
    };
    let a_train = if train_size > 0 {
        mnist.slice(0, train_size)
    } else {
        mnist
    };
    let a_test = Dataset::mnist(&args.data, Split::Test)?
        .flattened()
        .slice(0, 1000);
    println!(
        "data: A = {} MNIST training images; B = {} UCI digits to train on (labels dropped), \
         {HELD_OUT} held out; B framed 8×8 → 20×20 in 28×28",
        a_train.len(),
        b_train.len()
    );

    let (xb, yb) = test_b.tensors(&dev)?;
    let source_only = judge.accuracy(&xb, &yb)?;
    println!(
        "source only: the classifier reads {:.2}% of B's held-out digits",
        100.0 * source_only
    );

    let (private, shared, latent, d_hidden) = if args.quick {
        (64, 64, 16, vec![64])
    } else {
        (
            args.private,
            args.shared,
            args.latent,
            args.d_hidden.clone(),
        )
    };
    let shape = Shape {
        input: 784,
        private,
        shared,
        latent,
        discriminator: d_hidden,
    };
    dev.manual_seed(args.seed);
    let mut unit = Unit::new(&dev, &shape);
    if !args.independent_start {
        unit.start_alike();
    }
    let w = &args.weights;
    unit.weights = Weights {
        gan: w[0],
        kl: w[1],
        reconstruction: w[2],
        cycle_kl: w[3],
        cycle: w[4],
    };
    let adam = |p: &[(String, Tensor)]| Adam::new(p, args.lr).betas(0.5, 0.999).weight_decay(1e-4);
    let (opt_gen, opt_dis) = (
        adam(&unit.generator_params()),
        adam(&unit.discriminator_params()),
    );
    let w = unit.weights;
    println!(
        "UNIT: encoders 784 → {private} (own) → {shared} → {latent} (shared), generators \
         {latent} → {shared} → {private} (shared) → 784 (own), discriminators 784 → {:?} → 1; \
         λ = {}, {}, {}, {}, {}; Adam lr {}; B's own layers start {}",
        shape.discriminator,
        w.gan,
        w.kl,
        w.reconstruction,
        w.cycle_kl,
        w.cycle,
        args.lr,
        if args.independent_start {
            "independent of A's"
        } else {
            "as A's"
        }
    );

    let shown_b = b_all.slice(split, SHOWN).tensors(&dev)?.0;
    let shown_a = a_test.slice(0, SHOWN).tensors(&dev)?.0;
    let test_a = a_test.tensors(&dev)?.0;
    let epochs = args.epochs.unwrap_or(1);
    let config = Config {
        epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        out: Some(out.clone()),
        name: "unit".into(),
        resume: args.resume,
        keep_going: args.keep_going,
        interrupt: Some(train::ctrl_c()?),
        fingerprint: format!(
            "{shape:?} {w:?} B {} digits, start {}",
            b_train.len(),
            if args.independent_start {
                "independent"
            } else {
                "alike"
            }
        ),
        ..Config::default()
    };
    let mut task = Translation {
        dev,
        unit,
        opt_gen,
        opt_dis,
        b_train,
        b_drawn: 0,
        b_order: None,
        seed: args.seed,
        shown_a,
        shown_b,
        test_b: (xb, yb),
        test_a,
        judge,
        out: out.clone(),
    };
    let start = std::time::Instant::now();
    let outcome = train::fit(&mut task, &a_train, &config, &mut Bar::new())?;
    if outcome.interrupted {
        println!("interrupted: continue with --resume");
        return Ok(());
    }
    let last = outcome.epochs.last().ok_or("no epoch was trained")?;
    let translated = last.get("b_to_a_accuracy").ok_or("no accuracy logged")?;
    println!();
    println!(
        "domain adaptation, B's {HELD_OUT} held-out digits (±{:.1} points s.e.), MNIST-only \
         classifier, epoch {} (the last):",
        100.0 * (translated * (1.0 - translated) / HELD_OUT as f64).sqrt(),
        outcome.epochs.len()
    );
    println!("  {:<28} {:>8}", "input", "accuracy");
    println!(
        "  {:<28} {:>7.2}%",
        "B as it is (source only)",
        100.0 * source_only
    );
    println!(
        "  {:<28} {:>7.2}%",
        "B translated B → A by UNIT",
        100.0 * translated
    );
    println!(
        "  {:<28} {:>+7.2} points",
        "gain",
        100.0 * (translated - source_only as f64)
    );
    println!(
        "wall time {:.0} s; pictures ab_epochNN.png, ba_epochNN.png and metrics.csv in {}",
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
