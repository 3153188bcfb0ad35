//! Neuroevolution on the GPU: a deep GA over seed-encoded genomes (Such et al. 2017) and
//! OpenAI-ES (Salimans et al. 2017) solving CartPole, every member's episodes stepped together
//! on the device, and ES training an MLP on MNIST, every member's forward pass one batched
//! matmul per layer.
//!
//!     cargo run --release --example neuroevolution
//!     cargo run --release --example neuroevolution -- --tasks cartpole-ga,cartpole-es
//!     cargo run --release --example neuroevolution -- --resume    # reuse finished tasks
//!     cargo run --release --example neuroevolution -- --quick     # small populations, seconds
//!
//! CartPole counts as solved when the generation's best candidate (the GA's best member, ES's
//! centre θ) has a mean return ≥ 475 over 100 fresh episodes; that check runs whenever the best
//! fitness reaches 475. Writes to `--out`: `<task>.txt` (the result, reused by `--resume`),
//! `<task>.csv` (fitness per generation) and `cartpole.png`, `mnist.png` (the curves).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use wgrad::data::{Dataset, Split};
use wgrad::evolve::{
    EsConfig, EvolutionStrategy, GaConfig, Generation, GeneticAlgorithm, PopulationMlp, cartpole,
};
use wgrad::nn::Activation;
use wgrad::progress::{Bar, Progress};
use wgrad::rng::Rng;
use wgrad::train::options::{existing_dir, output_dir, positive};
use wgrad::viz::Scale;
use wgrad::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Task {
    CartpoleGa,
    CartpoleEs,
    MnistEs,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::CartpoleGa => "cartpole-ga",
            Task::CartpoleEs => "cartpole-es",
            Task::MnistEs => "mnist-es",
        }
    }
}

#[derive(Parser)]
#[command(
    about = "A deep GA and OpenAI-ES on CartPole and MNIST",
    allow_negative_numbers = true
)]
struct Args {
    /// The tasks to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "cartpole-ga,cartpole-es,mnist-es"
    )]
    tasks: Vec<Task>,
    /// The most generations a CartPole search may take [default: 200, or 5 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    generations: Option<usize>,
    /// GA members per generation [default: 1000 (the paper's), or 64 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    ga_population: Option<usize>,
    /// GA parents per generation (the paper's 20).
    #[arg(long, default_value_t = 20, value_parser = positive::<usize>)]
    truncation: usize,
    /// GA mutation power σ (the paper's 0.002 is for networks of millions of parameters).
    #[arg(long, default_value_t = 0.1, value_parser = positive::<f32>)]
    ga_sigma: f32,
    /// ES members per CartPole generation, even [default: 5000 (the paper's), or 64 with --quick].
    #[arg(long, value_parser = even)]
    es_population: Option<usize>,
    /// ES noise σ (the paper's 0.02).
    #[arg(long, default_value_t = 0.02, value_parser = positive::<f32>)]
    es_sigma: f32,
    /// ES Adam learning rate.
    #[arg(long, default_value_t = 0.01, value_parser = positive::<f32>)]
    es_lr: f32,
    /// Episodes per member for its fitness.
    #[arg(long, default_value_t = 1, value_parser = positive::<usize>)]
    episodes: usize,
    /// Hidden units of the CartPole policy (4-h-1, tanh).
    #[arg(long, default_value_t = 16, value_parser = positive::<usize>)]
    hidden: usize,
    /// MNIST: ES generations [default: 1000, or 3 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    mnist_generations: Option<usize>,
    /// MNIST: ES members per generation, even [default: 200, or 16 with --quick].
    #[arg(long, value_parser = even)]
    mnist_population: Option<usize>,
    /// MNIST: hidden units of the 784-h-10 ReLU MLP.
    #[arg(long, default_value_t = 32, value_parser = positive::<usize>)]
    mnist_hidden: usize,
    /// MNIST: training images every member is scored on per generation.
    #[arg(long, default_value_t = 256, value_parser = positive::<usize>)]
    mnist_batch: usize,
    /// MNIST: ES Adam learning rate at the start, cosine-decayed to 0 over the generations.
    #[arg(long, default_value_t = 0.01, value_parser = positive::<f32>)]
    mnist_lr: f32,
    /// MNIST IDX folder.
    #[arg(long, default_value = "data/mnist", value_parser = existing_dir)]
    data: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run on the CPU reference backend instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// Small populations and a few generations, for a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Where everything goes [default: runs/neuroevolution, or runs/neuroevolution-quick].
    #[arg(long, value_parser = output_dir)]
    out: Option<PathBuf>,
    /// Reuse each task's finished result in --out instead of running it again.
    #[arg(long)]
    resume: bool,
}

/// An even population of at least 2 (ES samples in mirrored pairs).
fn even(s: &str) -> Result<usize, String> {
    let n: usize = positive(s)?;
    if n % 2 == 1 {
        return Err(format!("must be even (mirrored pairs), got {n}"));
    }
    Ok(n)
}

/// What one task gives the table (saved as `<task>.txt`, one `key value` a line).
#[derive(Clone, Debug, Default)]
struct Outcome {
    /// The options that shaped the run; `--resume` reuses a result only for the same ones.
    config: String,
    /// Generations run.
    generations: usize,
    /// CartPole: the generation that solved it (0 if none).
    solved_at: usize,
    /// CartPole: the mean return over 100 episodes of the last candidate checked, if any was.
    eval_return: Option<f64>,
    /// MNIST: test accuracy of the final θ.
    test_accuracy: f64,
    /// Episodes (CartPole) or member evaluations on a batch (MNIST) spent.
    evaluations: u64,
    /// The best member's genome (GA) in bytes.
    genome_bytes: usize,
    /// Parameters per network.
    params: usize,
    population: usize,
    wall: f64,
    /// Best and mean fitness per generation.
    best: Vec<f32>,
    mean: Vec<f32>,
}

impl Outcome {
    fn save(&self, dir: &Path, task: Task) -> std::io::Result<()> {
        let text = format!(
            "config {}\ngenerations {}\nsolved_at {}\neval_return {}\ntest_accuracy {}\nevaluations {}\n\
             genome_bytes {}\nparams {}\npopulation {}\nwall {}\n",
            self.config,
            self.generations,
            self.solved_at,
            self.eval_return.unwrap_or(f64::NAN),
            self.test_accuracy,
            self.evaluations,
            self.genome_bytes,
            self.params,
            self.population,
            self.wall
        );
        let mut csv = String::from("generation,best,mean\n");
        for (i, (b, m)) in self.best.iter().zip(&self.mean).enumerate() {
            csv.push_str(&format!("{},{b},{m}\n", i + 1));
        }
        std::fs::write(dir.join(format!("{}.csv", task.name())), csv)?;
        // The result last: its presence marks the task finished.
        std::fs::write(dir.join(format!("{}.txt", task.name())), text)
    }

    fn load(dir: &Path, task: Task, config: &str) -> Option<Outcome> {
        let text = std::fs::read_to_string(dir.join(format!("{}.txt", task.name()))).ok()?;
        if text.lines().next()?.strip_prefix("config ")? != config {
            return None;
        }
        let csv = std::fs::read_to_string(dir.join(format!("{}.csv", task.name()))).ok()?;
        let get = |key: &str| -> Option<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        };
        let mut o = Outcome {
            generations: get("generations")? as usize,
            solved_at: get("solved_at")? as usize,
            eval_return: get("eval_return").filter(|r| r.is_finite()),
            config: config.to_string(),
            test_accuracy: get("test_accuracy")?,
            evaluations: get("evaluations")? as u64,
            genome_bytes: get("genome_bytes")? as usize,
            params: get("params")? as usize,
            population: get("population")? as usize,
            wall: get("wall")?,
            ..Outcome::default()
        };
        for line in csv.lines().skip(1) {
            let v: Vec<f32> = line.split(',').filter_map(|x| x.parse().ok()).collect();
            if let [_, b, m] = v[..] {
                o.best.push(b);
                o.mean.push(m);
            }
        }
        Some(o)
    }
}

fn main() {
    let args = Args::parse();
    let out = wgrad::train::options::out_dir(args.out.clone(), "neuroevolution", args.quick);
    if let Err(e) = run(&args, &out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

type Failure = Box<dyn std::error::Error>;

fn run(args: &Args, out: &Path) -> Result<(), Failure> {
    let dev = wgrad::train::options::device(args.cpu);
    let mut results: Vec<(Task, Outcome)> = Vec::new();
    for &task in &args.tasks {
        let config = task_config(args, task);
        if args.resume
            && let Some(o) = Outcome::load(out, task, &config)
        {
            println!(
                "{}: reused the finished result in {}",
                task.name(),
                out.display()
            );
            results.push((task, o));
            continue;
        }
        dev.manual_seed(args.seed);
        let started = Instant::now();
        let mut o = match task {
            Task::CartpoleGa | Task::CartpoleEs => cartpole_search(args, &dev, task)?,
            Task::MnistEs => mnist_es(args, &dev)?,
        };
        o.wall = started.elapsed().as_secs_f64();
        o.config = config;
        o.save(out, task)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        results.push((task, o));
    }
    report(out, &results)
}

/// The seed of ES's starting point, from `--seed`.
fn init_seed(dev: &Device, seed: u64) -> wgrad::Result<Tensor> {
    let s = (seed % u64::from(wgrad::evolve::SEED_LIMIT)) as f32;
    Tensor::from_slice(dev, &[s], &[1])
}

/// The options a task's result depends on, as one line.
fn task_config(args: &Args, task: Task) -> String {
    let common = format!("seed {} cpu {} quick {}", args.seed, args.cpu, args.quick);
    match task {
        Task::CartpoleGa => format!(
            "{common} generations {:?} population {:?} truncation {} sigma {} episodes {} hidden {}",
            args.generations,
            args.ga_population,
            args.truncation,
            args.ga_sigma,
            args.episodes,
            args.hidden
        ),
        Task::CartpoleEs => format!(
            "{common} generations {:?} population {:?} sigma {} lr {} episodes {} hidden {}",
            args.generations,
            args.es_population,
            args.es_sigma,
            args.es_lr,
            args.episodes,
            args.hidden
        ),
        Task::MnistEs => format!(
            "{common} generations {:?} population {:?} hidden {} batch {} sigma {} lr {} data {}",
            args.mnist_generations,
            args.mnist_population,
            args.mnist_hidden,
            args.mnist_batch,
            args.es_sigma,
            args.mnist_lr,
            args.data.display()
        ),
    }
}

/// Mean return over 100 fresh episodes of one parameter row `[1, D]`.
fn evaluate(policy: &PopulationMlp, row: &Tensor) -> wgrad::Result<f64> {
    let r = cartpole::returns(policy, row, 100, cartpole::MAX_STEPS).item()?;
    Ok(f64::from(r))
}

fn cartpole_search(args: &Args, dev: &Device, task: Task) -> Result<Outcome, Failure> {
    let policy = PopulationMlp::new(&[4, args.hidden, 1], Activation::Tanh);
    let scale = policy.init_scale(dev)?;
    let generations = args.generations.unwrap_or(if args.quick { 5 } else { 200 });
    let ga = task == Task::CartpoleGa;
    let population = if ga {
        args.ga_population
            .unwrap_or(if args.quick { 64 } else { 1000 })
    } else {
        args.es_population
            .unwrap_or(if args.quick { 64 } else { 5000 })
    };
    let mut o = Outcome {
        params: policy.params(),
        population,
        ..Outcome::default()
    };
    if ga {
        println!(
            "\n{}: population {population}, truncation {}, σ {}, 1 elite, policy 4-{}-1 tanh \
             ({} parameters), {} episode(s) per member",
            task.name(),
            args.truncation.min(population),
            args.ga_sigma,
            args.hidden,
            policy.params(),
            args.episodes
        );
    } else {
        println!(
            "\n{}: population {population} (mirrored), σ {}, Adam {}, policy 4-{}-1 tanh \
             ({} parameters), {} episode(s) per member",
            task.name(),
            args.es_sigma,
            args.es_lr,
            args.hidden,
            policy.params(),
            args.episodes
        );
    }
    let mut search_ga = ga
        .then(|| {
            let config = GaConfig {
                population,
                truncation: args.truncation.min(population),
                sigma: args.ga_sigma,
                elites: 1,
            };
            GeneticAlgorithm::new(&scale, config, args.seed)
        })
        .transpose()?;
    let mut search_es = if ga {
        None
    } else {
        let theta = Tensor::randn_rows(&init_seed(dev, args.seed)?, policy.params())
            .reshape(&[policy.params()])
            * &scale;
        let config = EsConfig {
            population,
            sigma: args.es_sigma,
            lr: args.es_lr,
            ..EsConfig::default()
        };
        Some(EvolutionStrategy::new(&theta, config, args.seed)?)
    };
    let mut bar = Bar::new();
    bar.start(task.name(), generations as u64);
    for g in 1..=generations {
        let members = match (&mut search_ga, &mut search_es) {
            (Some(s), _) => s.population().clone(),
            (_, Some(s)) => s.ask()?,
            _ => unreachable!("one search runs"),
        };
        let fitness =
            cartpole::returns(&policy, &members, args.episodes, cartpole::MAX_STEPS).to_vec()?;
        o.evaluations += (population * args.episodes) as u64;
        // The candidate: the best member (GA, before breeding replaces it) or the centre (ES).
        let stats: Generation;
        let candidate = match (&mut search_ga, &mut search_es) {
            (Some(s), _) => {
                let best = fitness
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                let row = members.narrow(0, best, 1);
                o.genome_bytes = s.genomes()[best].bytes();
                stats = s.tell(&fitness)?;
                row
            }
            (_, Some(s)) => {
                stats = s.tell(&fitness)?;
                s.theta().reshape(&[1, policy.params()])
            }
            _ => unreachable!("one search runs"),
        };
        o.generations = g;
        o.best.push(stats.best);
        o.mean.push(stats.mean);
        bar.update(
            g as u64,
            &format!("best {:.0}, mean {:.1}", stats.best, stats.mean),
        );
        if stats.best >= cartpole::SOLVED {
            let r = evaluate(&policy, &candidate)?;
            o.eval_return = Some(r);
            o.evaluations += 100;
            bar.println(&format!(
                "  generation {g}: best fitness {:.0}, mean {:.1}; candidate over 100 episodes: \
                 {r:.1}",
                stats.best, stats.mean
            ));
            if r >= f64::from(cartpole::SOLVED) {
                o.solved_at = g;
                break;
            }
        }
    }
    bar.finish();
    if o.solved_at == 0 {
        println!("  not solved in {generations} generations");
    }
    Ok(o)
}

fn mnist_es(args: &Args, dev: &Device) -> Result<Outcome, Failure> {
    let generations = args
        .mnist_generations
        .unwrap_or(if args.quick { 3 } else { 1000 });
    let population = args
        .mnist_population
        .unwrap_or(if args.quick { 16 } else { 200 });
    let mut train = Dataset::mnist(&args.data, Split::Train)?.flattened();
    let mut test = Dataset::mnist(&args.data, Split::Test)?.flattened();
    if args.quick {
        train = train.slice(0, 2000);
        test = test.slice(0, 500);
    }
    let (test_x, test_y) = test.tensors(dev)?;
    let net = PopulationMlp::new(&[784, args.mnist_hidden, 10], Activation::Relu);
    let d = net.params();
    println!(
        "\nmnist-es: MLP 784-{}-10 ReLU ({d} parameters), population {population} (mirrored), \
         σ {}, Adam {} (cosine-decayed), {} training images per generation, {generations} \
         generations",
        args.mnist_hidden, args.es_sigma, args.mnist_lr, args.mnist_batch
    );
    let scale = net.init_scale(dev)?;
    let theta = Tensor::randn_rows(&init_seed(dev, args.seed)?, d).reshape(&[d]) * &scale;
    let config = EsConfig {
        population,
        sigma: args.es_sigma,
        lr: args.mnist_lr,
        ..EsConfig::default()
    };
    let mut es = EvolutionStrategy::new(&theta, config, args.seed)?;
    let mut rng = Rng::new(args.seed ^ 0x6d6e_6973);
    let batch = args.mnist_batch.min(train.len());
    let mut o = Outcome {
        params: d,
        population,
        ..Outcome::default()
    };
    let mut bar = Bar::new();
    bar.start("mnist-es", generations as u64);
    let accuracy = |theta: &Tensor| -> wgrad::Result<f64> {
        let _no_grad = dev.no_grad();
        let a = net
            .accuracy(&theta.reshape(&[1, d]), &test_x, &test_y)
            .item()?;
        Ok(f64::from(a))
    };
    for g in 1..=generations {
        let start = rng.below(train.len() - batch + 1);
        // One batch uploaded a generation (the whole training set is larger than a binding).
        let (x, y) = train.slice(start, batch).tensors(dev)?;
        let decay =
            0.5 * (1.0 + (std::f32::consts::PI * (g - 1) as f32 / generations as f32).cos());
        es.set_lr(args.mnist_lr * decay);
        let members = es.ask()?;
        let loss = net.cross_entropy(&members, &x, &y).to_vec()?;
        let fitness: Vec<f32> = loss.iter().map(|l| -l).collect();
        let stats = es.tell(&fitness)?;
        o.evaluations += population as u64;
        o.generations = g;
        o.best.push(stats.best);
        o.mean.push(stats.mean);
        bar.update(g as u64, &format!("batch loss {:.3}", -stats.mean));
        if g % 100 == 0 && g < generations {
            bar.println(&format!(
                "  generation {g}: test accuracy {:.2}%",
                100.0 * accuracy(es.theta())?
            ));
        }
    }
    bar.finish();
    o.test_accuracy = accuracy(es.theta())?;
    Ok(o)
}

fn report(out: &Path, results: &[(Task, Outcome)]) -> Result<(), Failure> {
    let searches: Vec<&(Task, Outcome)> = results
        .iter()
        .filter(|(t, _)| *t != Task::MnistEs)
        .collect();
    if !searches.is_empty() {
        println!(
            "\n{:<12} {:>10} {:>7} {:>12} {:>12} {:>14} {:>12} {:>8}",
            "task",
            "population",
            "params",
            "generations",
            "solved at",
            "100-ep return",
            "episodes",
            "wall s"
        );
    }
    for (task, o) in searches {
        println!(
            "{:<12} {:>10} {:>7} {:>12} {:>12} {:>14} {:>12} {:>8.0}",
            task.name(),
            o.population,
            o.params,
            o.generations,
            if o.solved_at > 0 {
                o.solved_at.to_string()
            } else {
                "not solved".into()
            },
            o.eval_return
                .map_or_else(|| "none checked".to_string(), |r| format!("{r:.1}")),
            o.evaluations,
            o.wall
        );
        if *task == Task::CartpoleGa {
            println!(
                "  the best genome: {} bytes ({} seeds) for {} f32 parameters ({} bytes)",
                o.genome_bytes,
                o.genome_bytes / 4,
                o.params,
                4 * o.params
            );
        }
    }
    if results.iter().any(|(t, _)| *t != Task::MnistEs) {
        println!("(solved: mean return ≥ 475 over 100 episodes of 500 steps, as CartPole-v1)");
    }
    if let Some((_, o)) = results.iter().find(|(t, _)| *t == Task::MnistEs) {
        println!(
            "\nmnist-es: {:.2}% test accuracy after {} generations of {} members ({} parameters, \
             {:.0} s); target ≥ 90%; Zhang, Clune & Stanley 2017: ≈ 99% with far more compute",
            100.0 * o.test_accuracy,
            o.generations,
            o.population,
            o.params,
            o.wall
        );
    }
    let names: Vec<(String, String)> = results
        .iter()
        .map(|(t, _)| (format!("{} best", t.name()), format!("{} mean", t.name())))
        .collect();
    let cartpole: Vec<(&str, &[f32])> = results
        .iter()
        .zip(&names)
        .filter(|((t, _), _)| *t != Task::MnistEs)
        .flat_map(|((_, o), (best, mean))| {
            [
                (best.as_str(), o.best.as_slice()),
                (mean.as_str(), o.mean.as_slice()),
            ]
        })
        .collect();
    if !cartpole.is_empty() {
        wgrad::viz::save_line_chart(
            out.join("cartpole.png"),
            "CartPole: best and mean fitness (return) per generation",
            "generation",
            1.0,
            &cartpole,
            Scale::Linear,
        )?;
    }
    if let Some((_, o)) = results.iter().find(|(t, _)| *t == Task::MnistEs) {
        let loss: Vec<f32> = o.mean.iter().map(|m| -m).collect();
        wgrad::viz::save_line_chart(
            out.join("mnist.png"),
            "MNIST by ES: mean batch cross-entropy of the population",
            "generation",
            1.0,
            &[("mean loss", &loss)],
            Scale::Log,
        )?;
    }
    println!("saved the curves and results in {}", out.display());
    Ok(())
}
