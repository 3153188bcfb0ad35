//! Learning without end-to-end backprop on MNIST (or Fashion-MNIST): backprop, feedback
//! alignment, direct feedback alignment and difference target propagation (both schedules) on
//! Bartunov et al.'s network (5×256 tanh + softmax, Adam) at one budget of epochs for all rules,
//! and the HSIC bottleneck on its authors' network (5×128 ReLU), then its one-layer "format"
//! output trained by SGD on the frozen representation.
//!
//!     cargo run --release --example beyond_backprop
//!     cargo run --release --example beyond_backprop -- --data fashion
//!     cargo run --release --example beyond_backprop -- --resume     # reuse finished rules
//!     cargo run --release --example beyond_backprop -- --quick      # a small slice, seconds
//!
//! Each rule's epoch is chosen on a validation split held out of the training set (its last
//! 10,000 images), as the paper does; the table gives the test error at that epoch. Writes to
//! `--out`: each rule's checkpoint and logs (`<rule>/`), `test_error.png` (the curves) and
//! `fa_angle.png` (the angle between FA's update and the true gradient of the hidden weights).

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use wgrad::data::{Dataset, Split};
use wgrad::local::{self, KernelWidth, dtp};
use wgrad::nn::{Activation, Init, Linear, Module};
use wgrad::optim::{Adam, Optimizer, Schedule, Sgd};
use wgrad::progress::Bar;
use wgrad::train::options::{existing_dir, output_dir, positive};
use wgrad::train::{self, Config, Metric, Task};
use wgrad::viz::Scale;
use wgrad::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Rule {
    Bp,
    Fa,
    Dfa,
    Dtp,
    DtpAlternating,
    Hsic,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Bp => "bp",
            Rule::Fa => "fa",
            Rule::Dfa => "dfa",
            Rule::Dtp => "dtp",
            Rule::DtpAlternating => "dtp-alternating",
            Rule::Hsic => "hsic",
        }
    }
    /// Bartunov et al. 2018, Table 1 (MNIST test error %), and the HSIC reimplementation.
    fn published(self) -> &'static str {
        match self {
            Rule::Bp => "1.48",
            Rule::Fa => "1.85",
            Rule::Dfa => "2.75",
            Rule::Dtp => "2.86 (parallel)",
            Rule::DtpAlternating => "1.83",
            Rule::Hsic => "2–3 (reimpl.)",
        }
    }
}

#[derive(Parser)]
#[command(
    about = "Backprop, FA, DFA, DTP and the HSIC bottleneck on MNIST",
    allow_negative_numbers = true
)]
struct Args {
    /// `mnist`, `fashion`, or a folder of IDX files.
    #[arg(long, default_value = "mnist", value_parser = data_folder)]
    data: PathBuf,
    /// The rules to train, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "bp,fa,dfa,dtp,dtp-alternating,hsic"
    )]
    rules: Vec<Rule>,
    /// Epochs of every Bartunov-network rule [default: 10, or 1 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    epochs: Option<usize>,
    /// Epochs of the HSIC bottleneck, then of its format layer [default: 5, or 1 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    hsic_epochs: Option<usize>,
    #[arg(long, default_value_t = 128, value_parser = positive::<usize>)]
    batch: usize,
    /// Adam's learning rate for the Bartunov-network rules.
    #[arg(long, default_value_t = 1e-3, value_parser = positive::<f32>)]
    lr: f32,
    /// DTP: the gradient step that makes the last hidden layer's target.
    #[arg(long, default_value_t = 0.1, value_parser = positive::<f32>)]
    target_step: f32,
    /// The HSIC format layer's SGD learning rate (momentum 0.9).
    #[arg(long, default_value_t = 0.01, value_parser = positive::<f32>)]
    format_lr: f32,
    /// DTP: σ of the noise the inverses learn to undo.
    #[arg(long, default_value_t = 0.1, value_parser = positive::<f32>)]
    noise: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// 2,000 training, 500 validation and 500 test images, one epoch.
    #[arg(long)]
    quick: bool,
    /// Where everything goes [default: runs/beyond_backprop, or runs/beyond_backprop-quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Continue (or reuse, when finished) each rule's checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Train on after a NaN or infinite loss instead of stopping.
    #[arg(long)]
    keep_going: bool,
}

fn data_folder(s: &str) -> Result<PathBuf, String> {
    match s {
        "mnist" => existing_dir("data/mnist"),
        "fashion" => existing_dir("data/fashion-mnist"),
        other => existing_dir(other),
    }
}

/// The HSIC bottleneck's released configuration.
const HSIC_WIDTH: usize = 128;
const HSIC_SIGMA: f32 = 5.0;
const HSIC_BETA: f32 = 50.0;
const HSIC_BATCH: usize = 512;
const HSIC_LR: f32 = 1e-4;

/// 784-256-256-256-256-256-10 (Bartunov) or 784-128×5 (HSIC), as plain layers.
fn layers(dev: &Device, widths: &[usize], init: Init) -> Vec<Linear> {
    widths
        .windows(2)
        .map(|w| Linear::new(dev, w[0], w[1], init))
        .collect()
}

/// BP, FA or DFA on the Bartunov network.
struct Feedback {
    rule: Rule,
    layers: Vec<Linear>,
    /// FA: one matrix per layer above the first, of that layer's weight shape. DFA: one
    /// `[classes, width]` per hidden layer.
    feedback: Vec<Tensor>,
    opt: Adam,
    val: (Tensor, Tensor),
    test: (Tensor, Tensor),
}

fn error(logits: &Tensor, labels: &Tensor) -> wgrad::Result<f64> {
    let hits = logits.argmax(1).eq(labels).sum_all().item()?;
    Ok(1.0 - f64::from(hits) / labels.numel() as f64)
}

impl Feedback {
    fn logits(&self, x: &Tensor) -> Tensor {
        let (out, hidden) = self.layers.split_last().expect("layers");
        let h = hidden.iter().fold(x.clone(), |h, l| {
            l.forward_then(&h, Activation::Tanh).expect("fuses")
        });
        out.forward(&h)
    }

    /// The loss to report and the one whose gradient is the rule's update.
    fn losses(&self, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
        let (out, hidden) = self.layers.split_last().expect("layers");
        match self.rule {
            Rule::Bp => {
                let l = self.logits(x).cross_entropy(y);
                (l.clone(), l)
            }
            Rule::Fa => {
                let mut h = x.clone();
                for (i, l) in self.layers.iter().enumerate() {
                    let b = l.bias.as_ref().expect("a bias");
                    h = if i == 0 {
                        h.linear(&l.weight, Some(b), Activation::Identity)
                    } else {
                        local::feedback_linear(&h, &l.weight, b, &self.feedback[i - 1])
                    };
                    if i + 1 < self.layers.len() {
                        h = h.tanh();
                    }
                }
                let l = h.cross_entropy(y);
                (l.clone(), l)
            }
            _ => {
                let mut hs: Vec<Tensor> = Vec::new();
                for l in hidden {
                    let input = hs.last().map_or_else(|| x.clone(), Tensor::detach);
                    hs.push(l.forward_then(&input, Activation::Tanh).expect("fuses"));
                }
                let logits = out.forward(&hs.last().expect("hidden").detach());
                let loss = logits.cross_entropy(y);
                let surrogate = local::dfa_surrogate(&loss, &logits, &hs, &self.feedback);
                (loss, surrogate)
            }
        }
    }

    /// The angle (degrees) between FA's update of the hidden layers' weights and backprop's,
    /// on one batch.
    fn fa_angle(&self, x: &Tensor, y: &Tensor) -> wgrad::Result<f64> {
        let (_, fa) = self.losses(x, y);
        let bp = self.logits(x).cross_entropy(y);
        let weights: Vec<&Tensor> = self.layers[..self.layers.len() - 1]
            .iter()
            .map(|l| &l.weight)
            .collect();
        let (gf, gb) = (fa.grad_wrt(&weights), bp.grad_wrt(&weights));
        let (mut dot, mut nf, mut nb) = (0.0, 0.0, 0.0);
        for (a, b) in gf.iter().zip(&gb) {
            dot += f64::from((a * b).sum_all().item()?);
            nf += f64::from(a.square().sum_all().item()?);
            nb += f64::from(b.square().sum_all().item()?);
        }
        Ok((dot / (nf.sqrt() * nb.sqrt()))
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees())
    }
}

impl Task for Feedback {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let (loss, update) = self.losses(x, y);
        self.opt.step(&update.backward())?;
        Ok(vec![("loss", loss)])
    }
    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let mut m = {
            let _no_grad = self.val.0.device().no_grad();
            vec![
                Metric::percent("val_error", error(&self.logits(&self.val.0), &self.val.1)?),
                Metric::percent(
                    "test_error",
                    error(&self.logits(&self.test.0), &self.test.1)?,
                ),
            ]
        };
        if self.rule == Rule::Fa {
            let n = 1000.min(self.val.0.shape()[0]);
            let (x, y) = (self.val.0.narrow(0, 0, n), self.val.1.narrow(0, 0, n));
            m.push(Metric::new("fa_angle_deg", self.fa_angle(&x, &y)?));
        }
        Ok(m)
    }
    fn params(&self) -> Vec<(String, Tensor)> {
        dtp::named("layers", &self.layers)
    }
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

/// DTP, parallel (one step on every local loss) or alternating (an inverse step, then a forward
/// step with the updated inverses, on each batch).
struct TargetProp {
    net: dtp::Net,
    alternating: bool,
    forward_opt: Adam,
    inverse_opt: Adam,
    val: (Tensor, Tensor),
    test: (Tensor, Tensor),
}

impl Task for TargetProp {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let losses = self.net.losses(x, y);
        if self.alternating {
            self.inverse_opt.step(&losses.inverse().backward())?;
            let losses = self.net.losses(x, y);
            self.forward_opt.step(&losses.forward().backward())?;
            return Ok(vec![("loss", losses.output)]);
        }
        let grads = losses.total().backward();
        self.forward_opt.step(&grads)?;
        self.inverse_opt.step(&grads)?;
        let inverse = losses.inverse();
        Ok(vec![("loss", losses.output), ("inverse", inverse)])
    }
    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let _no_grad = self.val.0.device().no_grad();
        Ok(vec![
            Metric::percent(
                "val_error",
                error(&self.net.logits(&self.val.0), &self.val.1)?,
            ),
            Metric::percent(
                "test_error",
                error(&self.net.logits(&self.test.0), &self.test.1)?,
            ),
        ])
    }
    fn params(&self) -> Vec<(String, Tensor)> {
        let mut p = self.net.forward_params();
        p.extend(self.net.inverse_params());
        p
    }
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.forward_opt, &mut self.inverse_opt]
    }
}

/// The HSIC bottleneck: every layer on HSIC(x, tᵢ) − β·HSIC(tᵢ, y) from its detached input.
struct Bottleneck {
    layers: Vec<Linear>,
    opt: Adam,
}

impl Bottleneck {
    fn representation(&self, x: &Tensor) -> Tensor {
        self.layers.iter().fold(x.clone(), |h, l| {
            l.forward_then(&h, Activation::Relu).expect("fuses")
        })
    }
}

impl Task for Bottleneck {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let onehot = y.one_hot(10);
        let mut h = x.clone();
        let mut total: Option<Tensor> = None;
        let mut last = None;
        for l in &self.layers {
            h = l
                .forward_then(&h.detach(), Activation::Relu)
                .expect("fuses");
            let loss = local::hsic_bottleneck(
                x,
                &h,
                &onehot,
                HSIC_SIGMA,
                HSIC_BETA,
                KernelWidth::PerDimension,
            );
            total = Some(total.map_or(loss.clone(), |t| t + &loss));
            last = Some(loss);
        }
        let total = total.expect("layers");
        self.opt.step(&total.backward())?;
        Ok(vec![
            ("objective", total),
            ("last_layer", last.expect("layers")),
        ])
    }
    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        Ok(vec![])
    }
    fn params(&self) -> Vec<(String, Tensor)> {
        dtp::named("layers", &self.layers)
    }
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

/// The format layer: a linear softmax classifier on the frozen HSIC representation.
struct Format<'a> {
    body: &'a Bottleneck,
    head: Linear,
    opt: Sgd,
    val: (Tensor, Tensor),
    test: (Tensor, Tensor),
}

impl Format<'_> {
    fn logits(&self, x: &Tensor) -> Tensor {
        self.head.forward(&self.body.representation(x).detach())
    }
}

impl Task for Format<'_> {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        let loss = self.logits(x).cross_entropy(y);
        self.opt.step(&loss.backward())?;
        Ok(vec![("loss", loss)])
    }
    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<Metric>> {
        let _no_grad = self.val.0.device().no_grad();
        Ok(vec![
            Metric::percent("val_error", error(&self.logits(&self.val.0), &self.val.1)?),
            Metric::percent(
                "test_error",
                error(&self.logits(&self.test.0), &self.test.1)?,
            ),
        ])
    }
    fn params(&self) -> Vec<(String, Tensor)> {
        self.head.params()
    }
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

fn main() {
    let args = Args::parse();
    let out = train::options::out_dir(args.out.clone(), "beyond_backprop", args.quick);
    if args.resume {
        for r in &args.rules {
            train::options::require_checkpoint(&out.join(r.name()), r.name());
        }
    }
    if let Err(e) = run(&args, &out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// What one rule's run gives the table.
struct RuleRun {
    rule: Rule,
    network: &'static str,
    /// (epoch, validation error, test error) of every epoch.
    epochs: Vec<(usize, f64, f64)>,
    fa_angles: Vec<f64>,
    wall: f64,
}

fn run(args: &Args, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let dev = train::options::device(args.cpu);
    let all = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let mut test_set = Dataset::mnist(&args.data, Split::Test)?.flattened();
    let (mut train_set, val_set) = if args.quick {
        test_set = test_set.slice(0, 500);
        (all.slice(0, 2000), all.slice(2000, 500))
    } else {
        (all.slice(0, 50_000), all.slice(50_000, 10_000))
    };
    // Pixels standardised with the training split's statistics.
    let (mean, std) = train_set.mean_std();
    train_set.normalize(mean, std);
    let (mut val_set, mut test_norm) = (val_set, test_set);
    val_set.normalize(mean, std);
    test_norm.normalize(mean, std);
    let (val, test) = (val_set.tensors(&dev)?, test_norm.tensors(&dev)?);
    println!(
        "data: {} ({} training, {} validation, {} test images)",
        args.data.display(),
        train_set.len(),
        val_set.len(),
        test_norm.len()
    );
    let epochs = args.epochs.unwrap_or(if args.quick { 1 } else { 10 });
    let hsic_epochs = args.hsic_epochs.unwrap_or(if args.quick { 1 } else { 5 });
    let bartunov = [784, 256, 256, 256, 256, 256, 10];

    let mut results = Vec::new();
    for &rule in &args.rules {
        dev.manual_seed(args.seed);
        let folder = out.join(rule.name());
        std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        let config =
            |name: &str, epochs: usize, batch: usize, lr: f32, fingerprint: String| Config {
                epochs,
                batch,
                lr,
                seed: args.seed,
                schedule: Schedule::Constant,
                out: Some(if name == "format" {
                    folder.join("format")
                } else {
                    folder.clone()
                }),
                name: name.into(),
                resume: args.resume,
                keep_going: args.keep_going,
                log_every: 0,
                interrupt: train::ctrl_c().ok(),
                fingerprint,
                shard: Default::default(),
            };
        println!("\n{}:", rule.name());
        let started = std::time::Instant::now();
        let (outcome, network) = match rule {
            Rule::Bp | Rule::Fa | Rule::Dfa => {
                let layers = layers(&dev, &bartunov, Init::XavierUniform);
                let feedback: Vec<Tensor> = match rule {
                    Rule::Fa => layers[1..]
                        .iter()
                        .map(|l| Tensor::randn(&dev, l.weight.shape()) * (1.0 / 16.0))
                        .collect(),
                    Rule::Dfa => layers[1..]
                        .iter()
                        .map(|_| Tensor::randn(&dev, &[10, 256]) * (1.0 / 16.0))
                        .collect(),
                    _ => Vec::new(),
                };
                let opt = Adam::new(&dtp::named("layers", &layers), args.lr);
                let mut task = Feedback {
                    rule,
                    layers,
                    feedback,
                    opt,
                    val: val.clone(),
                    test: test.clone(),
                };
                let c = config(
                    rule.name(),
                    epochs,
                    args.batch,
                    args.lr,
                    format!("{rule:?} {}", args.lr),
                );
                (
                    train::fit(&mut task, &train_set, &c, &mut Bar::new())?,
                    "5×256 tanh",
                )
            }
            Rule::Dtp | Rule::DtpAlternating => {
                let mut net = dtp::Net::new(&dev, &bartunov, Activation::Tanh, Init::XavierUniform);
                net.target_step = args.target_step;
                net.noise = args.noise;
                let (forward_opt, inverse_opt) = (
                    Adam::new(&net.forward_params(), args.lr),
                    Adam::new(&net.inverse_params(), args.lr),
                );
                let mut task = TargetProp {
                    net,
                    alternating: rule == Rule::DtpAlternating,
                    forward_opt,
                    inverse_opt,
                    val: val.clone(),
                    test: test.clone(),
                };
                let fp = format!("{rule:?} {} {} {}", args.lr, args.target_step, args.noise);
                let c = config(rule.name(), epochs, args.batch, args.lr, fp);
                (
                    train::fit(&mut task, &train_set, &c, &mut Bar::new())?,
                    "5×256 tanh",
                )
            }
            Rule::Hsic => {
                let widths = [
                    784, HSIC_WIDTH, HSIC_WIDTH, HSIC_WIDTH, HSIC_WIDTH, HSIC_WIDTH,
                ];
                let body_layers = layers(&dev, &widths, Init::HeUniform);
                let opt = Adam::new(&dtp::named("layers", &body_layers), HSIC_LR);
                let mut body = Bottleneck {
                    layers: body_layers,
                    opt,
                };
                let c = config("hsic", hsic_epochs, HSIC_BATCH, HSIC_LR, "hsic".into());
                println!(
                    "  the bottleneck: σ = {HSIC_SIGMA}, β = {HSIC_BETA}, batch {HSIC_BATCH}, \
                     Adam {HSIC_LR}, kernel 2σ²d as in the authors' code"
                );
                if train::fit(&mut body, &train_set, &c, &mut Bar::new())?.interrupted {
                    return Ok(());
                }
                println!(
                    "  the format layer (SGD {} with momentum 0.9 on the frozen representation):",
                    args.format_lr
                );
                let dir = folder.join("format");
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let head = Linear::new(&dev, HSIC_WIDTH, 10, Init::XavierUniform);
                let opt = Sgd::new(&head.params(), args.format_lr).momentum(0.9);
                let mut format = Format {
                    body: &body,
                    head,
                    opt,
                    val: val.clone(),
                    test: test.clone(),
                };
                let mut c = config(
                    "format",
                    hsic_epochs,
                    args.batch,
                    args.format_lr,
                    format!("format {}", args.format_lr),
                );
                // A finished bottleneck can get a new format layer.
                c.resume &= dir.join("format.safetensors").exists();
                (
                    train::fit(&mut format, &train_set, &c, &mut Bar::new())?,
                    "5×128 ReLU + format",
                )
            }
        };
        if outcome.interrupted {
            return Ok(());
        }
        let epochs: Vec<(usize, f64, f64)> = outcome
            .epochs
            .iter()
            .filter_map(|r| Some((r.epoch, r.get("val_error")?, r.get("test_error")?)))
            .collect();
        let fa_angles = outcome.epoch_column("fa_angle_deg");
        results.push(RuleRun {
            rule,
            network,
            epochs,
            fa_angles,
            wall: started.elapsed().as_secs_f64(),
        });
    }

    let mnist = args.data.ends_with("mnist") && !args.data.ends_with("fashion-mnist");
    println!(
        "\n{:<16} {:<20} {:>15} {:>15} {:>7} {:>9}",
        "rule", "network", "test error %", "paper % (MNIST)", "epoch", "wall s"
    );
    for r in &results {
        let best = r
            .epochs
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .copied()
            .unwrap_or((0, f64::NAN, f64::NAN));
        println!(
            "{:<16} {:<20} {:>15.2} {:>15} {:>3} of {:<3} {:>7.0}",
            r.rule.name(),
            r.network,
            100.0 * best.2,
            if mnist { r.rule.published() } else { "n/a" },
            best.0,
            r.epochs.len(),
            r.wall
        );
    }
    println!(
        "(test error at the epoch of least validation error; paper: Bartunov et al. 2018, \
         Table 1, best within 500 epochs; HSIC: 97–98% accuracy in a public reimplementation; \
         wall s is this run's, about 0 for a rule reused from its checkpoint)"
    );
    if let Some(fa) = results.iter().find(|r| r.rule == Rule::Fa) {
        let angles: Vec<String> = fa.fa_angles.iter().map(|a| format!("{a:.1}")).collect();
        println!(
            "angle between FA's update and the gradient of the hidden weights, per epoch (°): {}",
            angles.join(", ")
        );
        let series: Vec<f32> = fa.fa_angles.iter().map(|&a| a as f32).collect();
        wgrad::viz::save_line_chart(
            out.join("fa_angle.png"),
            "angle (degrees) between the FA update and the true gradient",
            "epoch",
            1.0,
            &[("hidden weights", &series)],
            Scale::Linear,
        )?;
    }
    let curves: Vec<(String, Vec<f32>)> = results
        .iter()
        .map(|r| {
            let v = r.epochs.iter().map(|e| 100.0 * e.2 as f32).collect();
            (r.rule.name().to_string(), v)
        })
        .collect();
    let series: Vec<(&str, &[f32])> = curves
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    wgrad::viz::save_line_chart(
        out.join("test_error.png"),
        "test error (%) after each epoch",
        "epoch",
        1.0,
        &series,
        Scale::Log,
    )?;
    println!(
        "saved {} and each rule's logs",
        out.join("test_error.png").display()
    );
    Ok(())
}
