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
//! let config = Config {
//!     epochs: 2,
//!     batch: 16,
//!     lr: 0.1,
//!     ..Config::default()
//! };
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

pub use log::Row;
use log::{Log, Pace};

use crate::checkpoint::{self, Checkpoint};
use crate::data::{Dataset, Shard};
use crate::nn::{Module, Sequential};
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

    /// The model's parameters and buffers (`Module::state_dict`), saved under their names (so
    /// the checkpoint loads in PyTorch).
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

/// A classifier as a [`Task`]: cross-entropy steps, and test accuracy after each epoch (dropout
/// off while it is measured). `examples/mnist.rs` trains one of these.
pub struct Classifier {
    /// Where the model lives.
    pub dev: Device,
    /// The model: inputs to class logits.
    pub model: Sequential,
    /// Its optimizer.
    pub opt: Box<dyn Optimizer>,
    /// Scored after each epoch as `test_accuracy`.
    pub test: Dataset,
}

impl Task for Classifier {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> Result<Vec<(&'static str, Tensor)>> {
        let loss = self.model.forward(x).cross_entropy(y);
        self.opt.step(&loss.backward())?; // forward, backward and update: one submit
        Ok(vec![("loss", loss)])
    }

    fn evaluate(&mut self, _epoch: usize) -> Result<Vec<Metric>> {
        self.model.set_training(false);
        let acc = accuracy(&self.dev, &self.model, &self.test);
        self.model.set_training(true);
        Ok(vec![Metric::percent("test_accuracy", acc? as f64)])
    }

    fn params(&self) -> Vec<(String, Tensor)> {
        self.model.state_dict()
    }

    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![self.opt.as_mut()]
    }
}

/// Share of `data` that `model` (inputs to class logits, on `device`) classifies as labelled:
/// counted on the device in batches of 1,000, one read each.
pub fn accuracy(device: &Device, model: &impl Module, data: &Dataset) -> Result<f32> {
    let _no_grad = device.no_grad();
    let mut correct = 0.0;
    for batch in data.batches(device, 1000, None) {
        let (x, y) = batch?;
        let hits = model.forward(&x).argmax(1).eq(&y).sum_all();
        correct += hits.item()?;
    }
    Ok(correct / data.len().max(1) as f32)
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
    /// A plain figure (a comma in the name, which would split the CSV column, becomes `_`).
    pub fn new(name: &str, value: f64) -> Metric {
        Metric {
            name: name.replace(',', "_"),
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

/// How to train. `Config::default()` is one epoch in batches of 32 at a constant rate of 1e-3,
/// writing nothing; set the fields a run needs with struct-update syntax.
#[derive(Clone, Debug)]
pub struct Config {
    /// Passes over the data.
    pub epochs: usize,
    /// Samples per step (the last batch of an epoch may be smaller).
    pub batch: usize,
    /// Batches of epoch `e` are shuffled by seed `seed + e` (wrapping).
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
    /// Whatever else must be the same for a resumed run to continue the same run (the model's
    /// and optimizer's options, as text); a checkpoint with another fingerprint is refused.
    pub fingerprint: String,
    /// The part of every batch this process trains on, in data-parallel training
    /// ([`Shard::ALL`] by default: all of it). `batch` stays the global batch.
    pub shard: Shard,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            epochs: 1,
            batch: 32,
            seed: 0,
            lr: 1e-3,
            schedule: Schedule::Constant,
            out: None,
            name: "checkpoint".to_string(),
            resume: false,
            keep_going: false,
            log_every: 0,
            interrupt: None,
            fingerprint: String::new(),
            shard: Shard::ALL,
        }
    }
}

impl Config {
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
    /// One row per logging interval (the mean losses over the interval), likewise.
    pub steps: Vec<Row>,
    /// Whether the interrupt flag stopped the run (after saving a checkpoint).
    pub interrupted: bool,
}

impl Outcome {
    /// Column `name` of the epoch rows, in order (rows without it skipped).
    pub fn epoch_column(&self, name: &str) -> Vec<f64> {
        self.epochs.iter().filter_map(|r| r.get(name)).collect()
    }

    /// Column `name` of the step rows (one per logging interval), in order.
    pub fn step_column(&self, name: &str) -> Vec<f64> {
        self.steps.iter().filter_map(|r| r.get(name)).collect()
    }

    /// A classifier's two curves as PNGs in `dir`: `loss.png`, the training loss per logging
    /// interval of `log_every` steps (log scale, titled `"{what} training loss …"`), and
    /// `accuracy.png`, the test accuracy after each epoch. Returns their paths.
    #[cfg(feature = "viz")]
    pub fn save_classifier_curves(
        &self,
        dir: &Path,
        what: &str,
        log_every: usize,
    ) -> Result<(PathBuf, PathBuf)> {
        let f32s = |v: Vec<f64>, scale: f64| -> Vec<f32> {
            v.into_iter().map(|x| (scale * x) as f32).collect()
        };
        let loss = f32s(self.step_column("train_loss"), 1.0);
        let acc = f32s(self.epoch_column("test_accuracy"), 100.0);
        let (loss_png, acc_png) = (dir.join("loss.png"), dir.join("accuracy.png"));
        crate::viz::save_line_chart(
            &loss_png,
            &format!("{what} training loss (mean per logging interval)"),
            "training step",
            log_every as f32,
            &[("cross-entropy", &loss)],
            crate::viz::Scale::Log,
        )?;
        crate::viz::save_line_chart(
            &acc_png,
            "test accuracy (%) after each epoch",
            "epoch",
            1.0,
            &[("test", &acc)],
            crate::viz::Scale::Linear,
        )?;
        Ok((loss_png, acc_png))
    }
}

/// A flag raised by Ctrl-C (SIGINT), for [`Config::interrupt`]: the first Ctrl-C asks the loop
/// to save and stop at the next step boundary, a second one ends the process at once (exit
/// code 130). The handler is installed once per process; later calls return the same flag.
pub fn ctrl_c() -> Result<Arc<AtomicBool>> {
    static FLAG: std::sync::Mutex<Option<Arc<AtomicBool>>> = std::sync::Mutex::new(None);
    let mut slot = FLAG.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = slot.as_ref() {
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
    *slot = Some(flag.clone());
    Ok(flag)
}

/// Where a run stands: epochs finished, steps done in the current one, steps in all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Position {
    epoch: usize,
    step: usize,
    global: u64,
}

/// Train `task` on `data` as `config` says, reporting to `progress`. Returns the rows logged
/// and whether an interrupt stopped the run. Panics (at the caller) on a config no run could
/// use: no epochs, an empty batch, a rate that is not finite and positive, `resume` without an
/// output folder, an empty data set or a task without parameters.
#[track_caller]
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
    assert!(
        !config.resume || config.out.is_some(),
        "train::fit: resume needs an output folder (Config::out)"
    );
    assert!(!data.is_empty(), "train::fit: the data set is empty");
    let device = match task.params().first() {
        Some((_, p)) => p.device().clone(),
        None => panic!("train::fit: the task has no parameters"),
    };
    let result = Run::new(task, data, config, &device).and_then(|run| run.train(progress));
    if result.is_err() {
        progress.finish();
    }
    result
}

/// One call of [`fit`]: what it trains and where it stands.
struct Run<'a> {
    task: &'a mut dyn Task,
    data: &'a Dataset,
    config: &'a Config,
    device: Device,
    path: Option<PathBuf>,
    steps: usize,
    log_every: usize,
    log: Log,
    at: Position,
    /// Wall time of the run before this call (a resumed run's earlier sessions).
    wall_before: f64,
    /// Running sums of each loss over the current epoch, on the device.
    sums: HashMap<&'static str, Tensor>,
    /// Where the checkpoint this call wrote, or resumed from, stands.
    saved: Option<Position>,
    /// Whether a non-finite loss has been reported (keep_going reports it once).
    warned: bool,
}

impl<'a> Run<'a> {
    fn new(
        task: &'a mut dyn Task,
        data: &'a Dataset,
        config: &'a Config,
        device: &Device,
    ) -> Result<Run<'a>> {
        let steps = data.num_shard_batches(config.batch, config.shard.ranks);
        let mut run = Run {
            task,
            data,
            config,
            device: device.clone(),
            path: config.checkpoint_path(),
            steps,
            log_every: if config.log_every > 0 {
                config.log_every
            } else {
                steps.div_ceil(20)
            },
            log: Log::new(config.out.as_deref()),
            at: Position::default(),
            wall_before: 0.0,
            sums: HashMap::new(),
            saved: None,
            warned: false,
        };
        if config.resume {
            run.resume()?;
        }
        Ok(run)
    }

    fn train(mut self, progress: &mut dyn Progress) -> Result<Outcome> {
        if self.config.resume {
            let path = self.path.as_ref().expect("resume has a path");
            progress.println(&format!(
                "resumed from {} after epoch {}{}",
                path.display(),
                self.at.epoch,
                if self.at.step > 0 {
                    format!(", step {} of the next", self.at.step)
                } else {
                    String::new()
                }
            ));
        }
        let started = Instant::now();
        let mut interrupted = false;
        while self.at.epoch < self.config.epochs && !interrupted {
            interrupted = self.epoch(progress, started)?;
        }
        let (epochs, steps) = self.log.into_rows();
        Ok(Outcome {
            epochs,
            steps,
            interrupted,
        })
    }

    fn wall(&self, started: Instant) -> f64 {
        self.wall_before + started.elapsed().as_secs_f64()
    }

    /// One epoch (or the rest of one); whether an interrupt stopped it.
    fn epoch(&mut self, progress: &mut dyn Progress, started: Instant) -> Result<bool> {
        let (config, steps) = (self.config, self.steps);
        let epoch = self.at.epoch;
        let lr = config.schedule.lr(config.lr, epoch);
        for opt in self.task.optimizers() {
            opt.set_lr(lr);
        }
        progress.start(
            &format!("epoch {:>2}/{}", epoch + 1, config.epochs),
            steps as u64,
        );
        let epoch_start = Instant::now();
        let (mut seen, mut counted) = (0usize, self.at.step);
        // The losses of the current interval, detached, kept until they are checked; and the
        // sums and step count where the interval began.
        let mut pending: Vec<(usize, Vec<(&'static str, Tensor)>)> = Vec::new();
        let mut interval_start = (self.read_sums()?, counted);
        let order = config.seed.wrapping_add(epoch as u64);
        let (data, device) = (self.data, self.device.clone());
        let batches = data.shard_batches(&device, config.batch, Some(order), config.shard);
        for (step, batch) in batches.enumerate().skip(self.at.step) {
            let at_step = |e: Error| Error::AtStep {
                epoch: epoch + 1,
                step: step + 1,
                source: Box::new(e),
            };
            let (x, y) = batch?;
            seen += y.numel();
            let named = self.task.step(&x, &y).map_err(at_step)?;
            let named: Vec<(&'static str, Tensor)> =
                named.into_iter().map(|(n, t)| (n, t.detach())).collect();
            for (name, loss) in &named {
                let sum = match self.sums.remove(name) {
                    Some(s) => s + loss,
                    None => loss.clone(),
                };
                self.sums.insert(name, sum);
            }
            pending.push((step, named));
            counted += 1;
            self.at = Position {
                step: step + 1,
                global: self.at.global + 1,
                ..self.at
            };
            let last = step + 1 == steps;
            let stop = raised(config, self.at.global) && !last;
            if (step + 1) % self.log_every == 0 || last || stop {
                let interval = std::mem::take(&mut pending);
                let sums = self.read_sums().map_err(at_step)?;
                if !self.warned && sums.iter().any(|(_, v)| !v.is_finite()) {
                    let e = self.first_non_finite(&interval, epoch).map_err(at_step)?;
                    if !config.keep_going {
                        return Err(e);
                    }
                    progress.println(&format!("warning: {e}; keeping going"));
                    self.warned = true;
                }
                let (before, n_before) = &interval_start;
                let n = (counted - n_before).max(1) as f64;
                let means: Vec<(String, f64)> = sums
                    .iter()
                    .map(|(name, v)| {
                        let b = before
                            .iter()
                            .find(|(m, _)| m == name)
                            .map_or(0.0, |(_, b)| *b);
                        (name.clone(), (v - b) / n)
                    })
                    .collect();
                let rate = seen as f64 / epoch_start.elapsed().as_secs_f64();
                let status: Vec<String> = means
                    .iter()
                    .map(|(n, v)| format!("{n} {}", significant(*v)))
                    .collect();
                progress.update(
                    (step + 1) as u64,
                    &format!("{}  {rate:.0} samples/s", status.join("  ")),
                );
                let wall = self.wall(started);
                self.log.step_row(
                    self.at.global,
                    self.at.epoch + 1,
                    &means,
                    Pace {
                        lr,
                        samples_per_s: rate,
                        wall,
                    },
                )?;
                interval_start = (sums, counted);
            }
            if stop {
                // Sums of a run that kept going past a NaN are not saved (they would refuse to).
                let sums: Vec<(String, Tensor)> = self
                    .sums
                    .iter()
                    .map(|(n, t)| (format!("wgrad.train.sum.{n}"), t.clone()))
                    .collect();
                let sums = if self.warned { Vec::new() } else { sums };
                let wall = self.wall(started);
                let saved = self.save(wall, sums).map_err(at_step)?;
                progress.finish();
                progress.println(&format!(
                    "interrupted at epoch {}, step {} of {steps}: {}",
                    epoch + 1,
                    step + 1,
                    self.saved_line(saved)
                ));
                return Ok(true);
            }
        }
        progress.finish();
        let at_epoch = |e: Error| Error::AtEpoch {
            epoch: epoch + 1,
            source: Box::new(e),
        };
        let train_secs = epoch_start.elapsed().as_secs_f64();
        let means: Vec<(String, f64)> = self
            .read_sums()
            .map_err(at_epoch)?
            .into_iter()
            .map(|(n, v)| (n, v / counted.max(1) as f64))
            .collect();
        self.sums.clear();
        let metrics = self.task.evaluate(epoch + 1).map_err(at_epoch)?;
        self.at = Position {
            epoch: epoch + 1,
            step: 0,
            ..self.at
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
        let wall = self.wall(started);
        let saved = match self.save(wall, Vec::new()) {
            Ok(saved) => saved,
            Err(e @ Error::NonFinite { .. }) if config.keep_going => {
                progress.println(&format!("warning: {e}"));
                false
            }
            Err(e) => return Err(at_epoch(e)),
        };
        let named: Vec<(String, f64)> = metrics.iter().map(|m| (m.name.clone(), m.value)).collect();
        self.log.epoch_row(
            self.at.global,
            self.at.epoch,
            &means,
            &named,
            Pace {
                lr,
                samples_per_s: rate,
                wall,
            },
        )?;
        let stop = raised(config, self.at.global) && self.at.epoch < config.epochs;
        if stop {
            progress.println(&format!(
                "interrupted after epoch {}: {}",
                self.at.epoch,
                self.saved_line(saved)
            ));
        }
        Ok(stop)
    }

    /// "saved <path>; --resume continues", or what was not saved.
    fn saved_line(&self, saved: bool) -> String {
        match (&self.path, saved) {
            (Some(p), true) => format!("saved {}; --resume continues", p.display()),
            (Some(_), false) => "nothing saved (non-finite parameters)".to_string(),
            (None, _) => "nothing saved (the run writes no checkpoints)".to_string(),
        }
    }

    /// Each loss's running sum, read in one go, sorted by name.
    fn read_sums(&self) -> Result<Vec<(String, f64)>> {
        let mut names: Vec<&&'static str> = self.sums.keys().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push((name.to_string(), self.sums[name].to_vec_f64()?[0]));
        }
        Ok(out)
    }

    /// The error for the first non-finite loss of the interval (its running sum went
    /// non-finite), found by reading the interval's losses one by one.
    fn first_non_finite(
        &self,
        interval: &[(usize, Vec<(&'static str, Tensor)>)],
        epoch: usize,
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
        let saved = match (&self.path, self.saved) {
            (Some(p), Some(at)) if at.step > 0 => format!(
                "the checkpoint {} (epoch {}, step {}) is untouched",
                p.display(),
                at.epoch + 1,
                at.step
            ),
            (Some(p), Some(at)) => format!(
                "the checkpoint {} (after epoch {}) is untouched",
                p.display(),
                at.epoch
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
            steps: self.steps,
            saved: format!(
                "{saved}; anomaly detection names the op that made it, and keep_going trains on \
                 regardless"
            ),
        })
    }

    /// Write the run's checkpoint, if it has an output folder (whether it wrote one).
    fn save(&mut self, wall: f64, extra: Vec<(String, Tensor)>) -> Result<bool> {
        let Some(path) = self.path.clone() else {
            return Ok(false);
        };
        let (config, at) = (self.config, self.at);
        let mut named = self.task.params();
        let mut meta: HashMap<String, String> = HashMap::new();
        for (i, opt) in self.task.optimizers().into_iter().enumerate() {
            named.extend(
                opt.state()
                    .into_iter()
                    .map(|(n, t)| (format!("optimizer.{i}.{n}"), t)),
            );
            meta.insert(format!("optimizer.{i}.kind"), opt.kind().into());
            meta.insert(format!("optimizer.{i}.steps"), opt.steps().to_string());
        }
        let state = self.task.extra_state()?;
        named.extend(state.tensors);
        named.extend(extra);
        meta.extend(state.values);
        let (seed, draws) = self.device.rng_state();
        for (k, v) in [
            ("wgrad.train.epoch", at.epoch.to_string()),
            ("wgrad.train.step", at.step.to_string()),
            ("wgrad.train.global_step", at.global.to_string()),
            ("wgrad.train.wall", format!("{wall}")),
            ("wgrad.rng.seed", seed.to_string()),
            ("wgrad.rng.draws", draws.to_string()),
        ] {
            meta.insert(k.to_string(), v);
        }
        for (k, v) in fingerprint(config, self.data, &self.device) {
            meta.insert(k, v);
        }
        checkpoint::write(&path, &named, meta)?;
        self.saved = Some(at);
        Ok(true)
    }

    /// Load the run's checkpoint into the task and the device, refusing one written by another
    /// run (options, data or backend that differ).
    fn resume(&mut self) -> Result<()> {
        let path = self.path.clone().expect("resume needs a path");
        let refuse = |message: String| Error::Resume {
            path: path.clone(),
            message,
        };
        if !path.exists() {
            return Err(refuse("there is no checkpoint there".into()));
        }
        let ck = checkpoint::read(&path)?;
        let missing = |key: &str| {
            refuse(format!(
                "its metadata has no `{key}` (not a checkpoint of train::fit)"
            ))
        };
        for (key, want) in fingerprint(self.config, self.data, &self.device) {
            let got = ck.metadata.get(&key).ok_or_else(|| missing(&key))?;
            if *got != want {
                return Err(refuse(format!(
                    "it was written with {} {got}, this run has {want}; resume with the same \
                     options",
                    key.trim_start_matches("wgrad.train.")
                )));
            }
        }
        let get = |key: &str| -> Result<u64> { ck.meta(&path, key).map_err(|_| missing(key)) };
        let at = Position {
            epoch: get("wgrad.train.epoch")? as usize,
            step: get("wgrad.train.step")? as usize,
            global: get("wgrad.train.global_step")?,
        };
        if at.step >= self.steps && at.step > 0 {
            return Err(refuse(format!(
                "it stopped at step {} of an epoch of {} steps",
                at.step, self.steps
            )));
        }
        let mut wanted = self.task.params();
        let mut counts = Vec::new();
        for (i, opt) in self.task.optimizers().into_iter().enumerate() {
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
            counts.push(get(&format!("optimizer.{i}.steps"))?);
        }
        ck.assign(&path, &wanted)?;
        for (opt, n) in self.task.optimizers().into_iter().zip(counts) {
            opt.set_steps(n);
        }
        self.task.restore_extra(&ck, &path)?;
        self.device
            .set_rng_state((get("wgrad.rng.seed")?, get("wgrad.rng.draws")?));
        for (name, (shape, values)) in &ck.tensors {
            if let Some(loss) = name.strip_prefix("wgrad.train.sum.") {
                let sum = Tensor::from_f64(&self.device, values, shape)?;
                self.sums.insert(leak(loss), sum);
            }
        }
        self.wall_before = ck.meta(&path, "wgrad.train.wall").unwrap_or(0.0);
        self.log.resume(at.epoch, at.global)?;
        self.at = at;
        self.saved = Some(at);
        Ok(())
    }
}

/// What must match between a checkpoint and the run resuming it, as metadata entries: the
/// batch size, seed, base rate and schedule, the data set's size, the backend, and the run's
/// own fingerprint.
fn fingerprint(config: &Config, data: &Dataset, device: &Device) -> Vec<(String, String)> {
    [
        ("wgrad.train.batch", config.batch.to_string()),
        ("wgrad.train.seed", config.seed.to_string()),
        ("wgrad.train.lr", config.lr.to_string()),
        ("wgrad.train.schedule", format!("{:?}", config.schedule)),
        ("wgrad.train.samples", data.len().to_string()),
        (
            "wgrad.train.backend",
            if device.is_gpu() { "gpu" } else { "cpu" }.to_string(),
        ),
        ("wgrad.train.fingerprint", config.fingerprint.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
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

/// A loss name read back from a checkpoint, as the `&'static str` the loop keys losses by (a
/// handful per run, so the leak is bounded).
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}
