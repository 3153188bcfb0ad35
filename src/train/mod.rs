//! One training loop the examples share: epochs over a [`Dataset`] in seeded shuffled batches,
//! the learning-rate schedule, an evaluation after each epoch, progress through the caller's
//! [`Progress`], a metrics log, and checkpoints that never lose work:
//!
//! - a NaN or infinite loss stops training with an error naming the epoch and step (with
//!   anomaly detection on, the op that produced it), before anything is saved over the last
//!   good checkpoint; [`Config::keep_going`] trains on instead;
//! - checkpoints are written atomically ([`crate::checkpoint::write()`]) after every epoch, and at
//!   the next step boundary when the interrupt flag is raised (Ctrl-C with [`ctrl_c`]);
//! - a checkpoint holds the parameters, every optimizer's state and step count, the epoch and
//!   step, the data order's seed and position, the device's random stream and whatever the task
//!   adds ([`Task::extra_state`]), so [`Config::resume`] continues a run and ends with the same
//!   bits as the run that was never interrupted;
//! - `metrics.csv` holds one row per epoch (step, epoch, the losses, the task's metrics, learning
//!   rate, samples/s, wall time) and `steps.csv` one row per logging interval, beside the
//!   checkpoint in [`Config::out`].
//!
//! The loop does not hide the tape: [`Task::step`] is the body of the hand-written loop (forward,
//! `backward`, the optimizer's `step`), and the README's loop without this module still works.
//!
//! ```
//! use wgrad::data::Dataset;
//! use wgrad::nn::{Mlp, Module, Sequential};
//! use wgrad::optim::{Optimizer, Sgd};
//! use wgrad::train::{self, Config, Metric, Task};
//! use wgrad::{Device, Result, Tensor};
//!
//! struct Classifier {
//!     model: Sequential,
//!     opt: Sgd,
//! }
//!
//! impl Task for Classifier {
//!     fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<Vec<(&'static str, Tensor)>> {
//!         let loss = self.model.forward(x).cross_entropy(y);
//!         self.opt.step(&loss.backward())?; // forward, backward and update: one submit
//!         Ok(vec![("loss", loss)])
//!     }
//!     fn evaluate(&mut self, _epoch: usize) -> Result<Vec<Metric>> {
//!         Ok(vec![])
//!     }
//!     fn params(&self) -> Vec<(String, Tensor)> {
//!         self.model.params()
//!     }
//!     fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
//!         vec![&mut self.opt]
//!     }
//! }
//!
//! # fn main() -> wgrad::Result<()> {
//! let dev = Device::cpu();
//! let data = Dataset {
//!     inputs: (0..64 * 4).map(|i| (i % 7) as f32 / 7.0).collect(),
//!     labels: (0..64).map(|i| (i % 2) as f32).collect(),
//!     sample_shape: vec![4],
//!     classes: 2,
//! };
//! let model = Mlp::new(&[4, 8, 2]).build(&dev);
//! let opt = Sgd::new(&model.params(), 0.1);
//! let mut task = Classifier { model, opt };
//! let config = Config::new(2, 16, 0.1);
//! let outcome = train::fit(&mut task, &data, &config, &mut wgrad::progress::Silent)?;
//! assert_eq!(outcome.epochs.len(), 2);
//! # Ok(()) }
//! ```

mod log;
pub mod options;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use log::Log;
pub use log::Row;

use crate::checkpoint::{self, Checkpoint};
use crate::data::Dataset;
use crate::optim::{Optimizer, Schedule};
use crate::progress::Progress;
use crate::{Device, Error, Result, Tensor};

/// What the loop trains: one step on a batch, an evaluation, and what its checkpoints hold.
pub trait Task {
    /// One training step on a batch `x` with labels `y`: the forward pass, `backward`, and the
    /// optimizer step(s). Returns the losses to log, by name (scalars; detached or not).
    fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<Vec<(&'static str, Tensor)>>;

    /// Figures after epoch `epoch` (from 1): test accuracy, ELBO, …; also the place for
    /// per-epoch pictures.
    fn evaluate(&mut self, epoch: usize) -> Result<Vec<Metric>>;

    /// The model's parameters, saved under their names (so the checkpoint loads in PyTorch).
    fn params(&self) -> Vec<(String, Tensor)>;

    /// The optimizers: the loop sets their learning rate from the schedule each epoch, and saves
    /// and restores their state.
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer>;

    /// Whatever else a checkpoint must hold for an exact resume (a buffer of old samples, a
    /// host-side random generator); nothing by default.
    fn extra_state(&self) -> Result<State> {
        Ok(State::default())
    }

    /// Restore what [`Task::extra_state`] saved, from the checkpoint being resumed (read from
    /// `path`, for errors).
    fn restore_extra(&mut self, checkpoint: &Checkpoint, path: &Path) -> Result<()> {
        let _ = (checkpoint, path);
        Ok(())
    }
}

/// Extra tensors and values for a checkpoint (see [`Task::extra_state`]). Names should not
/// collide with parameter names; a prefix such as `history.` keeps them apart.
#[derive(Default)]
pub struct State {
    /// Tensors, by name.
    pub tensors: Vec<(String, Tensor)>,
    /// Values stored as text in the checkpoint's metadata, by name.
    pub values: Vec<(String, String)>,
}

/// One figure of an evaluation: a name (a column of `metrics.csv`) and a value, shown as a
/// percentage or a plain number.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Column name (`test_accuracy`).
    pub name: String,
    /// The value (a fraction for percentages).
    pub value: f64,
    /// Printed as a percentage with two decimals (the log keeps the fraction).
    pub percent: bool,
}

impl Metric {
    /// A plain figure.
    pub fn new(name: &str, value: f64) -> Metric {
        Metric {
            name: name.to_string(),
            value,
            percent: false,
        }
    }

    /// A fraction shown as a percentage.
    pub fn percent(name: &str, fraction: f64) -> Metric {
        Metric {
            percent: true,
            ..Metric::new(name, fraction)
        }
    }

    fn shown(&self) -> String {
        if self.percent {
            format!("{} {:.2}%", self.name, 100.0 * self.value)
        } else {
            format!("{} {}", self.name, significant(self.value))
        }
    }
}

/// `v` with five significant digits (0.012346, 2.2936, 101.30).
fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (4 - v.abs().log10().floor() as i64).clamp(0, 9) as usize;
    format!("{v:.decimals$}")
}

/// How to train.
#[derive(Clone, Debug)]
pub struct Config {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step (the last batch of an epoch may be smaller).
    pub batch: usize,
    /// Batches of epoch `e` are shuffled by seed `seed + e`.
    pub seed: u64,
    /// The base learning rate the schedule starts from.
    pub lr: f32,
    /// How the rate changes over epochs.
    pub schedule: Schedule,
    /// Where the checkpoint and the logs go (`<out>/<name>.safetensors`, `<out>/metrics.csv`,
    /// `<out>/steps.csv`); `None` writes nothing.
    pub out: Option<PathBuf>,
    /// The checkpoint's file name, without `.safetensors`.
    pub name: String,
    /// Continue from the checkpoint in `out` (an error if there is none).
    pub resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping (non-finite parameters are
    /// still never saved).
    pub keep_going: bool,
    /// Steps between status updates, loss checks and rows of `steps.csv` (0: about 20 per
    /// epoch).
    pub log_every: usize,
    /// When raised, the loop saves a checkpoint at the next step boundary and returns.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Config {
    /// `epochs` passes in batches of `batch` at a constant rate `lr`; seed 0, nothing written.
    pub fn new(epochs: usize, batch: usize, lr: f32) -> Config {
        Config {
            epochs,
            batch,
            seed: 0,
            lr,
            schedule: Schedule::Constant,
            out: None,
            name: "checkpoint".to_string(),
            resume: false,
            keep_going: false,
            log_every: 0,
            interrupt: None,
        }
    }

    /// The checkpoint's path, if the run writes one.
    pub fn checkpoint_path(&self) -> Option<PathBuf> {
        self.out
            .as_ref()
            .map(|d| d.join(format!("{}.safetensors", self.name)))
    }
}

/// What a call of [`fit`] did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// One row per epoch, from the first epoch of the run (rows of a resumed run's earlier
    /// epochs come from its `metrics.csv`).
    pub epochs: Vec<Row>,
    /// One row per logging interval, likewise.
    pub steps: Vec<Row>,
    /// Whether the interrupt flag stopped the run (after saving a checkpoint).
    pub interrupted: bool,
}

/// A flag raised by Ctrl-C (SIGINT), for [`Config::interrupt`]: the first Ctrl-C asks the loop
/// to save and stop at the next step boundary, a second one ends the process at once (exit
/// code 130). The handler is installed once per process.
pub fn ctrl_c() -> Result<Arc<AtomicBool>> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    if let Some(f) = FLAG.get() {
        return Ok(f.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    ctrlc::set_handler(move || {
        if raised.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: saving at the end of this step (Ctrl-C again to quit now)");
    })
    .map_err(|e| Error::Io {
        path: PathBuf::from("<signal handler>"),
        source: std::io::Error::other(e),
    })?;
    Ok(FLAG.get_or_init(|| flag).clone())
}

/// Where a run stands: epochs finished, steps done in the current one, steps in all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Position {
    epoch: usize,
    step: usize,
    global: u64,
}

/// Train `task` on `data` as `config` says, reporting to `progress`. Returns the rows logged
/// and whether an interrupt stopped the run.
pub fn fit(
    task: &mut dyn Task,
    data: &Dataset,
    config: &Config,
    progress: &mut dyn Progress,
) -> Result<Outcome> {
    assert!(
        config.batch > 0 && config.epochs > 0,
        "train::fit: batch {} and epochs {} must be at least 1",
        config.batch,
        config.epochs
    );
    assert!(
        config.lr.is_finite() && config.lr > 0.0,
        "train::fit: learning rate {} must be finite and positive",
        config.lr
    );
    assert!(!data.is_empty(), "train::fit: the data set is empty");
    let device = match task.params().first() {
        Some((_, p)) => p.device().clone(),
        None => panic!("train::fit: the task has no parameters"),
    };
    let path = config.checkpoint_path();
    let steps = data.num_batches(config.batch);
    let log_every = if config.log_every > 0 {
        config.log_every
    } else {
        steps.div_ceil(20)
    };
    let mut log = Log::new(config.out.as_deref());
    let (mut at, mut wall_before) = (Position::default(), 0.0);
    let mut sums: HashMap<&'static str, Tensor> = HashMap::new();
    if config.resume {
        let path = path.as_ref().expect("resume needs an output folder");
        let ck = resume(task, &device, data, config, path)?;
        at = position(&ck, path)?;
        wall_before = meta(&ck, path, "wgrad.train.wall")?;
        for (name, (shape, values)) in &ck.tensors {
            if let Some(loss) = name.strip_prefix("wgrad.train.sum.") {
                let sum = Tensor::from_f64(&device, values, shape)?;
                sums.insert(leak(loss), sum);
            }
        }
        log.resume(at.epoch, at.global)?;
        progress.println(&format!(
            "resumed from {} after epoch {}{}",
            path.display(),
            at.epoch,
            if at.step > 0 {
                format!(", step {} of the next", at.step)
            } else {
                String::new()
            }
        ));
    }
    let started = Instant::now();
    let wall = |t: Instant| wall_before + t.elapsed().as_secs_f64();
    let (mut interrupted, mut warned) = (false, false);
    // The epochs of the checkpoint this run wrote or resumed from.
    let mut saved = config.resume.then_some(at.epoch);
    while at.epoch < config.epochs && !interrupted {
        let epoch = at.epoch;
        let lr = config.schedule.lr(config.lr, epoch);
        for opt in task.optimizers() {
            opt.set_lr(lr);
        }
        progress.start(
            &format!("epoch {:>2}/{}", epoch + 1, config.epochs),
            steps as u64,
        );
        let epoch_start = Instant::now();
        let (mut seen, mut counted) = (0usize, at.step);
        // Losses of the current interval, kept on the device until they are checked.
        let mut pending: Vec<(usize, Vec<(&'static str, Tensor)>)> = Vec::new();
        let batches = data.batches(&device, config.batch, Some(config.seed + epoch as u64));
        for (step, batch) in batches.enumerate().skip(at.step) {
            let at_step = |e: Error| Error::AtStep {
                epoch: epoch + 1,
                step: step + 1,
                source: Box::new(e),
            };
            let (x, y) = batch?;
            seen += y.numel();
            let named = task.step(&x, &y).map_err(at_step)?;
            for (name, loss) in &named {
                let loss = loss.detach();
                let sum = match sums.remove(name) {
                    Some(s) => s + &loss,
                    None => loss,
                };
                sums.insert(name, sum);
            }
            pending.push((step, named));
            counted += 1;
            at = Position {
                step: step + 1,
                global: at.global + 1,
                ..at
            };
            let last = step + 1 == steps;
            if (step + 1) % log_every == 0 || last {
                let interval = std::mem::take(&mut pending);
                let means = mean_losses(&sums, counted).map_err(at_step)?;
                if !warned && means.iter().any(|(_, v)| !v.is_finite()) {
                    let e = first_non_finite(&interval, epoch, steps, path.as_deref(), saved)
                        .map_err(at_step)?;
                    if !config.keep_going {
                        return Err(e);
                    }
                    progress.println(&format!("warning: {e}; keeping going"));
                    warned = true;
                }
                let rate = seen as f64 / epoch_start.elapsed().as_secs_f64();
                let status: Vec<String> = means
                    .iter()
                    .map(|(n, v)| format!("{n} {}", significant(*v)))
                    .collect();
                progress.update(
                    (step + 1) as u64,
                    &format!("{}  {rate:.0} samples/s", status.join("  ")),
                );
                log.step_row(at, &means, lr, rate, wall(started))?;
            }
            if raised(config, at.global) && !last {
                let sums_now = sums
                    .iter()
                    .map(|(n, t)| (format!("wgrad.train.sum.{n}"), t.clone()));
                save(task, &device, config, at, wall(started), sums_now.collect())?;
                progress.finish();
                progress.println(&format!(
                    "interrupted at epoch {}, step {} of {steps}: saved {}; --resume continues",
                    epoch + 1,
                    step + 1,
                    path.as_deref()
                        .map_or("nothing".into(), |p| p.display().to_string())
                ));
                interrupted = true;
                break;
            }
        }
        if interrupted {
            break;
        }
        progress.finish();
        let train_secs = epoch_start.elapsed().as_secs_f64();
        let means = mean_losses(&sums, counted)?;
        sums.clear();
        let metrics = task.evaluate(epoch + 1)?;
        at = Position {
            epoch: epoch + 1,
            step: 0,
            ..at
        };
        let rate = seen as f64 / train_secs;
        let mut line = format!("epoch {:>2}:", epoch + 1);
        for (n, v) in &means {
            line += &format!(" {n} {},", significant(*v));
        }
        for m in &metrics {
            line += &format!(" {},", m.shown());
        }
        line += &format!(" {train_secs:.1} s ({rate:.0} samples/s)");
        progress.println(&line);
        log.epoch_row(at, &means, &metrics, lr, rate, wall(started))?;
        match save(task, &device, config, at, wall(started), Vec::new()) {
            Ok(()) => saved = Some(at.epoch),
            Err(e @ Error::NonFinite { .. }) if config.keep_going => {
                progress.println(&format!("warning: {e}"));
            }
            Err(e) => return Err(e),
        }
        interrupted = raised(config, at.global) && at.epoch < config.epochs;
        if interrupted {
            progress.println(&format!(
                "interrupted after epoch {}: saved; --resume continues",
                at.epoch
            ));
        }
    }
    let (epochs, steps) = log.into_rows();
    Ok(Outcome {
        epochs,
        steps,
        interrupted,
    })
}

/// Whether the interrupt flag is up, or the test hook `WGRAD_INTERRUPT_AFTER_STEPS=N` says to
/// stop after `N` steps in all (a deterministic Ctrl-C for the resume tests).
fn raised(config: &Config, global: u64) -> bool {
    let flag = config
        .interrupt
        .as_ref()
        .is_some_and(|f| f.load(Ordering::SeqCst));
    let hook = std::env::var("WGRAD_INTERRUPT_AFTER_STEPS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|n| global == n);
    flag || hook
}

/// The error for the first non-finite loss of the interval (its running sum went non-finite),
/// found by reading the interval's losses one by one.
fn first_non_finite(
    interval: &[(usize, Vec<(&'static str, Tensor)>)],
    epoch: usize,
    steps: usize,
    path: Option<&Path>,
    saved: Option<usize>,
) -> Result<Error> {
    let mut first = None;
    'search: for (step, named) in interval {
        for (name, loss) in named {
            let v = loss.to_vec()?[0];
            if !v.is_finite() {
                first = Some((*step, *name, v));
                break 'search;
            }
        }
    }
    // The sums overflowed without any loss being infinite: blame the interval's last step.
    let (step, loss, value) = first.unwrap_or_else(|| {
        let (step, named) = interval.last().expect("an interval has steps");
        (
            *step,
            named.first().map_or("loss", |(n, _)| *n),
            f32::INFINITY,
        )
    });
    let saved = match (path, saved) {
        (Some(p), Some(done)) => format!(
            "the checkpoint {} (after epoch {done}) is untouched",
            p.display()
        ),
        (Some(p), None) if p.exists() => format!(
            "the checkpoint {} (from before this run) is untouched",
            p.display()
        ),
        (Some(_), None) => "this run has written no checkpoint".to_string(),
        (None, _) => "this run writes no checkpoints".to_string(),
    };
    Ok(Error::NonFiniteLoss {
        loss: loss.to_string(),
        value,
        epoch: epoch + 1,
        step: step + 1,
        steps,
        saved: format!(
            "{saved}; anomaly detection names the op that made it, and keep_going trains on \
             regardless"
        ),
    })
}

/// Each loss's running sum divided by the steps it covers, read in one go.
fn mean_losses(sums: &HashMap<&'static str, Tensor>, count: usize) -> Result<Vec<(String, f64)>> {
    let mut names: Vec<&&'static str> = sums.keys().collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let v = sums[name].to_vec_f64()?[0];
        out.push((name.to_string(), v / count.max(1) as f64));
    }
    Ok(out)
}

/// Write the run's checkpoint (if it has an output folder).
fn save(
    task: &mut dyn Task,
    device: &Device,
    config: &Config,
    at: Position,
    wall: f64,
    extra: Vec<(String, Tensor)>,
) -> Result<()> {
    let Some(path) = config.checkpoint_path() else {
        return Ok(());
    };
    let mut named = task.params();
    let mut meta: HashMap<String, String> = HashMap::new();
    for (i, opt) in task.optimizers().into_iter().enumerate() {
        named.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (format!("optimizer.{i}.{n}"), t)),
        );
        meta.insert(format!("optimizer.{i}.kind"), opt.kind().into());
        meta.insert(format!("optimizer.{i}.steps"), opt.steps().to_string());
    }
    let state = task.extra_state()?;
    named.extend(state.tensors);
    named.extend(extra);
    meta.extend(state.values);
    let (seed, draws) = device.rng_state();
    for (k, v) in [
        ("wgrad.train.epoch", at.epoch.to_string()),
        ("wgrad.train.step", at.step.to_string()),
        ("wgrad.train.global_step", at.global.to_string()),
        ("wgrad.train.batch", config.batch.to_string()),
        ("wgrad.train.seed", config.seed.to_string()),
        ("wgrad.train.wall", format!("{wall}")),
        ("wgrad.rng.seed", seed.to_string()),
        ("wgrad.rng.draws", draws.to_string()),
    ] {
        meta.insert(k.to_string(), v);
    }
    checkpoint::write(&path, &named, meta)
}

/// Load the checkpoint at `path` into `task` and `device`, refusing one written with another
/// batch size, seed or data set.
fn resume(
    task: &mut dyn Task,
    device: &Device,
    data: &Dataset,
    config: &Config,
    path: &Path,
) -> Result<Checkpoint> {
    let refuse = |message: String| Error::Resume {
        path: path.to_path_buf(),
        message,
    };
    if !path.exists() {
        return Err(refuse("there is no checkpoint there".into()));
    }
    let ck = checkpoint::read(path)?;
    for (key, want) in [
        ("wgrad.train.batch", config.batch as f64),
        ("wgrad.train.seed", config.seed as f64),
    ] {
        let got: f64 = meta(&ck, path, key)?;
        if got != want {
            return Err(refuse(format!(
                "it was written with {} {got}, this run has {want}; resume with the same options",
                key.trim_start_matches("wgrad.train.")
            )));
        }
    }
    let at = position(&ck, path)?;
    if at.global > 0 && at.global as usize > data.num_batches(config.batch) * (at.epoch + 1) {
        return Err(refuse(format!(
            "it is {} steps in, more than {} epochs of this data set hold",
            at.global,
            at.epoch + 1
        )));
    }
    let mut wanted = task.params();
    let mut steps = Vec::new();
    for (i, opt) in task.optimizers().into_iter().enumerate() {
        let kind = ck.metadata.get(&format!("optimizer.{i}.kind"));
        if kind.map(String::as_str) != Some(opt.kind()) {
            return Err(refuse(format!(
                "optimizer {i} is {kind:?} there, {:?} here",
                opt.kind()
            )));
        }
        wanted.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (format!("optimizer.{i}.{n}"), t)),
        );
        steps.push(meta::<u64>(&ck, path, &format!("optimizer.{i}.steps"))?);
    }
    ck.assign(path, &wanted)?;
    for (opt, n) in task.optimizers().into_iter().zip(steps) {
        opt.set_steps(n);
    }
    task.restore_extra(&ck, path)?;
    device.set_rng_state((
        meta(&ck, path, "wgrad.rng.seed")?,
        meta(&ck, path, "wgrad.rng.draws")?,
    ));
    Ok(ck)
}

fn position(ck: &Checkpoint, path: &Path) -> Result<Position> {
    Ok(Position {
        epoch: meta(ck, path, "wgrad.train.epoch")?,
        step: meta(ck, path, "wgrad.train.step")?,
        global: meta(ck, path, "wgrad.train.global_step")?,
    })
}

/// A metadata value of the checkpoint, parsed; an error naming the key if it is missing or bad.
pub fn meta<T: std::str::FromStr>(ck: &Checkpoint, path: &Path, key: &str) -> Result<T> {
    ck.metadata
        .get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Resume {
            path: path.to_path_buf(),
            message: format!("its metadata has no valid `{key}` (not a checkpoint of train::fit)"),
        })
}

/// A loss name read back from a checkpoint, as the `&'static str` the loop keys losses by (a
/// handful per run, so the leak is bounded).
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}
