//! Restricted Boltzmann machines on binarized MNIST, scored by annealed importance sampling,
//! and a deep belief net fine-tuned as a classifier beside the same network from random init.
//!
//!     cargo run --release --example rbm
//!     cargo run --release --example rbm -- --models cd1,pcd --epochs 10
//!     cargo run --release --example rbm -- --resume     # reuse finished models and AIS runs
//!     cargo run --release --example rbm -- --quick      # small slices, seconds
//!
//! Each RBM (784-500, binary units) trains by CD-1, CD-k or PCD with SGD, momentum 0.9 and
//! weight decay 2·10⁻⁴ on the weights (Hinton's practical guide), a cosine-decayed rate, visible
//! biases started at the pixels' log-odds. Pixels are binarized once by sampling (fixed seed).
//! AIS (Salakhutdinov & Murray's 14,500 temperatures, 100 runs by default) gives log Z and the
//! test log-likelihood in nats. The DBN 784-500-500-2000 is pretrained greedily by CD-1 (its first
//! layer is the CD-1 model), then unrolled, topped with a 10-way softmax layer and fine-tuned by
//! backprop on the pixel intensities; the same network from random init trains beside it.
//!
//! Writes to `--out`: each model's checkpoint and logs, `<model>/ais.txt`, `filters-<model>.png`
//! (the first 100 hidden units' weights) and `samples-<model>.png` (Gibbs samples).

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use wgrad::checkpoint::Checkpoint;
use wgrad::data::{Dataset, Split};
use wgrad::nn::{Init, Linear, Module};
use wgrad::optim::{Adam, Optimizer, Schedule, Sgd};
use wgrad::progress::Bar;
use wgrad::rbm::{self, Ais, Dbn, Rbm, Visible};
use wgrad::rng::Rng;
use wgrad::train::options::{existing_dir, output_dir, positive};
use wgrad::train::{self, Config, Metric, State, Task};
use wgrad::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    /// CD-1.
    Cd1,
    /// CD-k with k = --k.
    Cdk,
    /// Persistent CD-1 with 100 chains.
    Pcd,
    /// The deep belief net (and the same net from random init).
    Dbn,
}

#[derive(Parser)]
#[command(
    about = "RBMs by CD and PCD scored by AIS, and a deep belief net, on MNIST",
    allow_negative_numbers = true
)]
struct Args {
    /// What to train, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cd1,pcd,dbn")]
    models: Vec<Model>,
    /// Gibbs steps of the CD-k model.
    #[arg(long, default_value_t = 10, value_parser = positive::<usize>)]
    k: usize,
    /// Epochs of each RBM [default: 10, or 1 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Hidden units of the RBMs (the DBN's first layer).
    #[arg(long, default_value_t = 500, value_parser = positive::<usize>)]
    hidden: usize,
    #[arg(long, default_value_t = 100, value_parser = positive::<usize>)]
    batch: usize,
    /// SGD learning rate of the RBMs.
    #[arg(long, default_value_t = 0.05, value_parser = positive::<f32>)]
    lr: f32,
    /// AIS: intermediate temperatures [default: 14,500 (Salakhutdinov & Murray), or 100 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    temperatures: Option<usize>,
    /// AIS: independent runs, at least 2 [default: 100, or 20 with --quick].
    #[arg(long, value_parser = at_least_two)]
    runs: Option<usize>,
    /// DBN: epochs of each upper RBM [default: 5, or 1 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    dbn_epochs: Option<usize>,
    /// DBN: epochs of backprop fine-tuning (and of the random-init net) [default: 10, or 1].
    #[arg(long, value_parser = positive::<usize>)]
    finetune_epochs: Option<usize>,
    /// DBN: Adam's learning rate for fine-tuning.
    #[arg(long, default_value_t = 3e-4, value_parser = positive::<f32>)]
    finetune_lr: f32,
    /// MNIST IDX folder.
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// 2,000 training and 500 test images, one epoch each, a short AIS.
    #[arg(long)]
    quick: bool,
    /// Where everything goes [default: runs/rbm, or runs/rbm-quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue (or reuse, when finished) each model's checkpoint and AIS result in --out.
    #[arg(long)]
    resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping.
    #[arg(long)]
    keep_going: bool,
}

fn at_least_two(s: &str) -> Result<usize, String> {
    let n: usize = positive(s)?;
    if n < 2 {
        return Err(format!(
            "must be at least 2 (a standard error needs two runs), got {n}"
        ));
    }
    Ok(n)
}

/// How an RBM's negative phase is drawn.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Cd(usize),
    Pcd(usize),
}

struct RbmTask {
    rbm: Rbm,
    rule: Rule,
    chains: Option<Tensor>,
    weights: Sgd,
    biases: Sgd,
    /// Images held out of training for the reconstruction error.
    val: Tensor,
}

impl RbmTask {
    fn new(rbm: Rbm, rule: Rule, lr: f32, dev: &Device, val: Tensor, batch: usize) -> RbmTask {
        let (w, b): (Vec<_>, Vec<_>) = rbm.params().into_iter().partition(|(n, _)| n == "weight");
        let chains = matches!(rule, Rule::Pcd(_))
            .then(|| Tensor::bernoulli(dev, &[batch, rbm.visibles()], 0.5));
        RbmTask {
            weights: Sgd::new(&w, lr).momentum(0.9).weight_decay(2e-4),
            biases: Sgd::new(&b, lr).momentum(0.9),
            rbm,
            rule,
            chains,
            val,
        }
    }
}

impl Task for RbmTask {
    fn step(&mut self, x: &Tensor, _y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let step = match (self.rule, &mut self.chains) {
            (Rule::Pcd(k), Some(chains)) => rbm::persistent_cd(&self.rbm, x, chains, k),
            (Rule::Cd(k), _) | (Rule::Pcd(k), None) => rbm::contrastive_divergence(&self.rbm, x, k),
        };
        // ‖mean data − mean negative state‖² (the visible biases' gradient, squared): a gauge
        // that needs no product beyond the update's and fits PCD's chains too.
        let gap = (x.mean(0) - step.negative.mean(0)).square().sum_all();
        self.weights.record(&step.grads);
        self.biases.step(&step.grads)?;
        Ok(vec![("mean_gap", gap)])
    }
    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let _no_grad = self.val.device().no_grad();
        let e = self.rbm.reconstruction_error(&self.val).item()?;
        Ok(vec![Metric::new("val_reconstruction", f64::from(e))])
    }
    fn params(&self) -> Vec<(String, Tensor)> {
        self.rbm.params()
    }
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.weights, &mut self.biases]
    }
    fn extra_state(&self) -> wgrad::Result<State> {
        Ok(State {
            tensors: self
                .chains
                .iter()
                .map(|c| ("chains".to_string(), c.clone()))
                .collect(),
            values: vec![],
        })
    }
    fn restore_extra(&mut self, checkpoint: &Checkpoint, path: &Path) -> wgrad::Result<()> {
        if let (Some(chains), Some((shape, values))) =
            (&mut self.chains, checkpoint.tensors.get("chains"))
        {
            *chains = Tensor::from_f64(chains.device(), values, shape)?;
        } else if self.chains.is_some() {
            return Err(wgrad::Error::BadFile {
                path: path.to_path_buf(),
                message: "a PCD checkpoint without its `chains`".into(),
            });
        }
        Ok(())
    }
}

/// A classifier of sigmoid layers and a softmax output, from a DBN or from random init.
struct Classifier {
    layers: Vec<Linear>,
    head: Linear,
    opt: Adam,
    test: (Tensor, Tensor),
}

impl Classifier {
    fn new(layers: Vec<Linear>, dev: &Device, lr: f32, test: (Tensor, Tensor)) -> Classifier {
        let width = layers.last().map_or(784, |l| l.weight.shape()[0]);
        let head = Linear::new(dev, width, 10, Init::XavierUniform);
        let mut c = Classifier {
            layers,
            head,
            opt: Adam::new(&[], lr),
            test,
        };
        c.opt = Adam::new(&c.params(), lr);
        c
    }
    fn logits(&self, x: &Tensor) -> Tensor {
        let h = self
            .layers
            .iter()
            .fold(x.clone(), |h, l| l.forward(&h).sigmoid());
        self.head.forward(&h)
    }
}

impl Task for Classifier {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let loss = self.logits(x).cross_entropy(y);
        self.opt.step(&loss.backward())?;
        Ok(vec![("loss", loss)])
    }
    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let _no_grad = self.test.0.device().no_grad();
        let hits = self
            .logits(&self.test.0)
            .argmax(1)
            .eq(&self.test.1)
            .sum_all();
        let error = 1.0 - f64::from(hits.item()?) / self.test.1.numel() as f64;
        Ok(vec![Metric::percent("test_error", error)])
    }
    fn params(&self) -> Vec<(String, Tensor)> {
        let mut p = wgrad::local::dtp::named("layers", &self.layers);
        p.extend(wgrad::nn::prefixed("head", self.head.params()));
        p
    }
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

/// Every pixel set to 1 with its intensity as probability, once, from a fixed stream.
fn binarized(set: &Dataset, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut out = set.clone();
    for v in &mut out.inputs {
        *v = f32::from(rng.uniform() < *v);
    }
    out
}

/// A dataset whose inputs are `inputs` (rows of `width`), labels kept.
fn with_inputs(set: &Dataset, inputs: Vec<f32>, width: usize) -> Dataset {
    Dataset {
        inputs,
        labels: set.labels.clone(),
        sample_shape: vec![width],
        classes: set.classes,
    }
}

/// Hidden probabilities of `rbm` for every row of `set`, in batches of 1,000.
fn transformed(rbm: &Rbm, set: &Dataset, dev: &Device) -> wgrad::Result<Dataset> {
    let _no_grad = dev.no_grad();
    let mut inputs = Vec::with_capacity(set.len() * rbm.hiddens());
    for start in (0..set.len()).step_by(1000) {
        let (x, _) = set.slice(start, 1000.min(set.len() - start)).tensors(dev)?;
        inputs.extend(rbm.hidden_probs(&x).to_vec()?);
    }
    Ok(with_inputs(set, inputs, rbm.hiddens()))
}

/// One finished RBM's row of the table.
struct Scored {
    name: String,
    epochs: usize,
    reconstruction: f64,
    log_z: f64,
    log_z_err: f64,
    test_ll: f64,
    test_sem: f64,
    train_ll: f64,
    published: &'static str,
}

fn main() {
    let args = Args::parse();
    let out = train::options::out_dir(args.out.clone(), "rbm", args.quick);
    if let Err(e) = run(&args, &out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

type Failure = Box<dyn std::error::Error>;

fn run(args: &Args, out: &Path) -> Result<(), Failure> {
    let dev = train::options::device(args.cpu);
    let mut train_set = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let mut test_set = Dataset::mnist(&args.data, Split::Test)?.flattened();
    if args.quick {
        train_set = train_set.slice(0, 2000);
        test_set = test_set.slice(0, 500);
    }
    let (train_bin, test_bin) = (
        binarized(&train_set, 0xB1_0000 + 1),
        binarized(&test_set, 0xB1_0000 + 2),
    );
    let epochs = args.epochs.unwrap_or(if args.quick { 1 } else { 10 });
    let temperatures = args
        .temperatures
        .unwrap_or(if args.quick { 100 } else { 14_500 });
    let runs = args.runs.unwrap_or(if args.quick { 20 } else { 100 });
    let schedule = if temperatures == 14_500 {
        Ais {
            runs,
            ..Ais::standard()
        }
    } else {
        Ais::uniform(temperatures, runs)
    };
    println!(
        "data: {} training and {} test images, binarized by sampling; AIS with {} temperatures \
         and {} runs",
        train_bin.len(),
        test_bin.len(),
        schedule.betas.len() - 1,
        schedule.runs
    );
    // Fraction of training images with each pixel on: the visible biases and the AIS base rate.
    let n = train_bin.len() as f32;
    let on: Vec<f32> = (0..784)
        .map(|i| {
            (0..train_bin.len())
                .map(|s| train_bin.inputs[s * 784 + i])
                .sum::<f32>()
                / n
        })
        .collect();
    let base = Tensor::from_vec(
        &dev,
        on.iter().map(|&p| rbm::base_rate_bias(p)).collect(),
        &[784],
    )?;
    let (val_x, _) = test_bin.slice(0, 1000.min(test_bin.len())).tensors(&dev)?;
    let config = |name: &str, epochs: usize, batch: usize, lr: f32, dir: &Path| Config {
        epochs,
        batch,
        lr,
        seed: args.seed,
        schedule: Schedule::Cosine {
            total: epochs,
            min_lr: 0.0,
        },
        out: Some(dir.to_path_buf()),
        name: name.into(),
        resume: args.resume && dir.join(format!("{name}.safetensors")).exists(),
        keep_going: args.keep_going,
        log_every: 0,
        interrupt: train::ctrl_c().ok(),
        fingerprint: format!("{name} {epochs} {batch} {lr}"),
        shard: Default::default(),
    };

    let mut scored = Vec::new();
    let mut cd1: Option<Rbm> = None;
    let wanted = |m: Model| args.models.contains(&m);
    let rbm_models: Vec<(Model, Rule, String, &'static str)> = vec![
        (
            Model::Cd1,
            Rule::Cd(1),
            "cd1".into(),
            "CD-1: clearly worse than CD-25",
        ),
        (
            Model::Cdk,
            Rule::Cd(args.k),
            format!("cd{}", args.k),
            if args.k == 25 {
                "CD-25: −86.34"
            } else {
                "n/a (CD-25: −86.34)"
            },
        ),
        (Model::Pcd, Rule::Pcd(1), "pcd".into(), "n/a"),
    ];
    for (model, rule, name, published) in rbm_models {
        // The DBN's first layer is the CD-1 model.
        let needed = wanted(model) || (model == Model::Cd1 && wanted(Model::Dbn));
        if !needed {
            continue;
        }
        dev.manual_seed(args.seed);
        let dir = out.join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        println!(
            "\n{name}: RBM 784-{} by {rule:?}, {epochs} epochs",
            args.hidden
        );
        let machine =
            Rbm::new(&dev, 784, args.hidden, Visible::Binary).with_visible_bias_from(&on)?;
        let mut task = RbmTask::new(machine, rule, args.lr, &dev, val_x.clone(), args.batch);
        let c = config(&name, epochs, args.batch, args.lr, &dir);
        let outcome = train::fit(&mut task, &train_bin, &c, &mut Bar::new())?;
        if outcome.interrupted {
            return Ok(());
        }
        let reconstruction = outcome
            .epochs
            .last()
            .and_then(|r| r.get("val_reconstruction"))
            .unwrap_or(f64::NAN);
        pictures(
            &task.rbm,
            &dev,
            out,
            &name,
            if args.quick { 20 } else { 1000 },
        )?;
        if wanted(model) {
            let trained = format!(
                "{} seed {} hidden {}",
                c.fingerprint, args.seed, args.hidden
            );
            let (log_z, log_z_err) =
                log_partition(&task.rbm, &base, &schedule, &dir, args.resume, &trained)?;
            let (test_x, _) = test_bin.tensors(&dev)?;
            let (test_ll, test_sem) = rbm::log_likelihood(&task.rbm, &test_x, log_z)?;
            let (train_x, _) = train_bin
                .slice(0, 10_000.min(train_bin.len()))
                .tensors(&dev)?;
            let (train_ll, _) = rbm::log_likelihood(&task.rbm, &train_x, log_z)?;
            println!(
                "  log Z = {log_z:.2} ± {log_z_err:.2}; test log-likelihood {test_ll:.2} ± \
                 {test_sem:.2} nats (training images {train_ll:.2})"
            );
            scored.push(Scored {
                name,
                epochs,
                reconstruction,
                log_z,
                log_z_err,
                test_ll,
                test_sem,
                train_ll,
                published,
            });
        }
        if model == Model::Cd1 {
            cd1 = Some(task.rbm);
        }
    }

    let mut dbn_rows = Vec::new();
    if wanted(Model::Dbn) {
        let first = cd1.expect("the CD-1 model trains when the DBN is asked for");
        let dbn_epochs = args.dbn_epochs.unwrap_or(if args.quick { 1 } else { 5 });
        let mut dbn = Dbn {
            layers: vec![first],
        };
        let mut below = transformed(&dbn.layers[0], &train_bin, &dev)?;
        for (i, width) in [(2, 500), (3, 2000)] {
            let name = format!("dbn-layer{i}");
            let dir = out.join(&name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            println!(
                "\n{name}: RBM {}-{width} by CD-1, {dbn_epochs} epochs",
                below.sample_size()
            );
            dev.manual_seed(args.seed + i as u64);
            let machine = Rbm::new(&dev, below.sample_size(), width, Visible::Binary);
            let (val, _) = below.slice(0, 1000.min(below.len())).tensors(&dev)?;
            let mut task = RbmTask::new(machine, Rule::Cd(1), args.lr, &dev, val, args.batch);
            let c = config(&name, dbn_epochs, args.batch, args.lr, &dir);
            if train::fit(&mut task, &below, &c, &mut Bar::new())?.interrupted {
                return Ok(());
            }
            if i == 2 {
                below = transformed(&task.rbm, &below, &dev)?;
            }
            dbn.layers.push(task.rbm);
        }
        let finetune = args
            .finetune_epochs
            .unwrap_or(if args.quick { 1 } else { 10 });
        let test = test_set.tensors(&dev)?;
        for (name, pretrained) in [("dbn-finetuned", true), ("random-init", false)] {
            dev.manual_seed(args.seed);
            let layers = if pretrained {
                dbn.unrolled()?
            } else {
                [(784, args.hidden), (args.hidden, 500), (500, 2000)]
                    .iter()
                    .map(|&(i, o)| Linear::new(&dev, i, o, Init::XavierUniform))
                    .collect()
            };
            println!(
                "\n{name}: 784-{}-500-2000-10 sigmoid, Adam {}, {finetune} epochs",
                args.hidden, args.finetune_lr
            );
            let mut task = Classifier::new(layers, &dev, args.finetune_lr, test.clone());
            let dir = out.join(name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let c = config(name, finetune, args.batch, args.finetune_lr, &dir);
            let outcome = train::fit(&mut task, &train_set, &c, &mut Bar::new())?;
            if outcome.interrupted {
                return Ok(());
            }
            let error = outcome
                .epochs
                .last()
                .and_then(|r| r.get("test_error"))
                .unwrap_or(f64::NAN);
            dbn_rows.push((name, finetune, error));
        }
    }

    if !scored.is_empty() {
        println!(
            "\n{:<8} {:>6} {:>9} {:>16} {:>22} {:>10} {:>34}",
            "RBM",
            "epochs",
            "recon",
            "log Z",
            "test log-lik (nats)",
            "train",
            "Salakhutdinov & Murray 2008"
        );
        for s in &scored {
            println!(
                "{:<8} {:>6} {:>9.2} {:>9.2} ± {:<4.2} {:>13.2} ± {:<5.2} {:>10.2} {:>34}",
                s.name,
                s.epochs,
                s.reconstruction,
                s.log_z,
                s.log_z_err,
                s.test_ll,
                s.test_sem,
                s.train_ll,
                s.published
            );
        }
        println!(
            "({} hidden units; recon: squared reconstruction error per held-out image; ± are \
             standard errors: of log Z over the AIS runs, of the mean over the test images)",
            args.hidden
        );
    }
    if !dbn_rows.is_empty() {
        println!(
            "\n{:<14} {:>7} {:>13}",
            "classifier", "epochs", "test error %"
        );
        for (name, epochs, error) in &dbn_rows {
            println!("{name:<14} {epochs:>7} {:>13.2}", 100.0 * error);
        }
        println!(
            "(Hinton, Osindero & Teh 2006: 1.25% with up-down fine-tuning; about 1.15–1.2% with \
             backprop fine-tuning)"
        );
    }
    println!("saved pictures and logs in {}", out.display());
    Ok(())
}

/// log Z by AIS, or as saved in `dir/ais.txt` with `--resume` by a run that trained the same
/// model (`trained`: its training fingerprint, seed and width) and annealed it the same way.
fn log_partition(
    machine: &Rbm,
    base: &Tensor,
    schedule: &Ais,
    dir: &Path,
    resume: bool,
    trained: &str,
) -> Result<(f64, f64), Failure> {
    let path = dir.join("ais.txt");
    let key = format!(
        "{trained} | AIS {} temperatures {} runs",
        schedule.betas.len() - 1,
        schedule.runs
    );
    if resume && let Ok(text) = std::fs::read_to_string(&path) {
        let mut lines = text.lines();
        if lines.next() == Some(key.as_str()) {
            let f: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
            if let [z, e] = f[..] {
                println!("  log Z reused from {}", path.display());
                return Ok((z.parse()?, e.parse()?));
            }
        }
    }
    let est = rbm::ais(machine, base, schedule, &mut Bar::new())?;
    std::fs::write(&path, format!("{key}\n{} {}\n", est.log_z, est.std_err))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((est.log_z, est.std_err))
}

/// The first 100 hidden units' weights (each scaled to [0, 1]) and 100 samples after `steps`
/// Gibbs steps from noise, as PNGs.
fn pictures(
    machine: &Rbm,
    dev: &Device,
    out: &Path,
    name: &str,
    steps: usize,
) -> Result<(), Failure> {
    let _no_grad = dev.no_grad();
    let units = 100.min(machine.hiddens());
    let w = machine
        .weight
        .narrow(1, 0, units)
        .t()
        .contiguous()
        .to_vec()?;
    let mut filters = Vec::with_capacity(w.len());
    for f in w.chunks(784) {
        let (lo, hi) = f
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        filters.extend(f.iter().map(|v| (v - lo) / (hi - lo).max(1e-12)));
    }
    wgrad::viz::save_image_grid(
        out.join(format!("filters-{name}.png")),
        &filters,
        28,
        28,
        10,
        2,
    )?;
    let mut v = Tensor::bernoulli(dev, &[100, 784], 0.5);
    for i in 0..steps {
        v = machine.gibbs(&v, 1);
        if i % 100 == 99 {
            dev.flush()?;
        }
    }
    let mean = machine.visible_mean(&machine.hidden_probs(&v)).to_vec()?;
    wgrad::viz::save_image_grid(
        out.join(format!("samples-{name}.png")),
        &mean,
        28,
        28,
        10,
        2,
    )?;
    Ok(())
}
