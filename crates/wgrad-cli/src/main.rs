//! The `wgrad` command: `info` (adapters and the limits that matter), `check` (every kernel
//! against the CPU reference on this adapter), `bench` (kernels and a training step, timed).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wgrad::check::{self, Comparison};
use wgrad::progress::{Bar, Progress, Silent};
use wgrad::{Device, DeviceOptions, Variant};
use wgrad_cli::{figures, rows};

#[derive(Parser)]
#[command(
    name = "wgrad",
    version,
    about = "GPU training engine: adapter info, kernel checks and benchmarks"
)]
struct Cli {
    /// Adapter: an index from `wgrad info` or part of its name (default: WGRAD_ADAPTER, then
    /// the best adapter found).
    #[arg(long, global = true)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List adapters and the limits and features that matter to wgrad.
    Info,
    /// Measure kernels and a training step on the adapter (median of repetitions).
    Bench {
        /// Print one JSON object per figure instead of a table.
        #[arg(long)]
        json: bool,
        /// Only these groups: matmul, shapes, conv, mlp, add, sum, overhead, peak (comma
        /// separated).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Square matmul sizes.
        #[arg(long, value_delimiter = ',', default_value = "128,256,512,1024,2048")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// The adapter's FP32 peak in GFLOP/s, to report matmul as a share of it.
        #[arg(long)]
        peak_gflops: Option<f64>,
        /// Time every dispatch and print GPU time per kernel after the run.
        #[arg(long)]
        profile: bool,
        /// Matmul kernel: auto (chosen by shape and adapter), naive, tiled, subgroup, shared.
        #[arg(long, default_value = "auto", value_parser = parse_kernel)]
        kernel: Variant,
    },
    /// Run every kernel on the adapter against the CPU reference; exit 1 on any failure.
    Check {
        /// Only rows for this op (e.g. `matmul`).
        #[arg(long)]
        op: Option<String>,
        /// Print every row, not one line per op.
        #[arg(long)]
        verbose: bool,
    },
}

fn parse_kernel(s: &str) -> Result<Variant, String> {
    Ok(match s {
        "auto" => Variant::Auto,
        "naive" => Variant::Naive,
        "tiled" => Variant::Tiled,
        "subgroup" => Variant::Subgroup,
        "shared" => Variant::Shared,
        _ => {
            return Err(format!(
                "unknown kernel `{s}` (auto, naive, tiled, subgroup, shared)"
            ));
        }
    })
}

/// Mesa's device-select layer looks for a display to pick a default GPU, and on a headless
/// machine without `XDG_RUNTIME_DIR` prints an error line for each Vulkan instance. wgrad picks
/// its adapter itself, so the layer is switched off unless the user has configured it.
fn quiet_display_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // SAFETY: the first thing `main` does, before any other thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

fn main() -> ExitCode {
    quiet_display_probe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Check { op, verbose } => check(cli.adapter, op, verbose),
        Command::Bench {
            json,
            only,
            sizes,
            reps,
            peak_gflops,
            profile,
            kernel,
        } => bench(
            cli.adapter,
            json,
            only,
            sizes,
            (reps, kernel),
            peak_gflops,
            profile,
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn info() -> wgrad::Result<ExitCode> {
    let adapters = wgrad::gpu::adapters();
    if adapters.is_empty() {
        return Err(wgrad::Error::NoAdapter {
            detail: String::new(),
        });
    }
    for (i, a) in adapters.iter().enumerate() {
        let info = a.get_info();
        let l = a.limits();
        let f = a.features();
        println!(
            "[{i}] {} ({:?}, {:?})",
            info.name, info.backend, info.device_type
        );
        println!("    driver: {} {}", info.driver, info.driver_info);
        println!(
            "    max storage binding      {:>14} bytes",
            l.max_storage_buffer_binding_size
        );
        println!(
            "    max buffer               {:>14} bytes",
            l.max_buffer_size
        );
        println!(
            "    max workgroups per dim   {:>14}",
            l.max_compute_workgroups_per_dimension
        );
        println!(
            "    max invocations / group  {:>14}",
            l.max_compute_invocations_per_workgroup
        );
        println!(
            "    workgroup memory         {:>14} bytes",
            l.max_compute_workgroup_storage_size
        );
        println!(
            "    uniform offset alignment {:>14} bytes",
            l.min_uniform_buffer_offset_alignment
        );
        let has = |x: wgpu::Features| if f.contains(x) { "yes" } else { "no" };
        println!(
            "    f16 {}, subgroups {}, timestamps {}",
            has(wgpu::Features::SHADER_F16),
            has(wgpu::Features::SUBGROUP),
            has(wgpu::Features::TIMESTAMP_QUERY)
        );
    }
    match Device::gpu() {
        Ok(d) => println!("Device::gpu() picks: {}", d.name()),
        Err(e) => println!("Device::gpu() fails: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn check(adapter: Option<String>, only: Option<String>, verbose: bool) -> wgrad::Result<ExitCode> {
    let gpu = Device::gpu_with(DeviceOptions {
        adapter,
        ..Default::default()
    })?;
    let rows: Vec<_> = rows::cases()
        .into_iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.op == o))
        .collect();
    if rows.is_empty() {
        eprintln!("no rows for op {only:?}");
        return Ok(ExitCode::from(2));
    }
    println!(
        "checking {} rows on {} against the CPU reference (f64)",
        rows.len(),
        gpu.name()
    );
    let mut bar = Bar::new();
    bar.start("checking", rows.len() as u64);
    // Per op: rows, worst forward, worst gradient, failures.
    let mut ops: BTreeMap<&str, (usize, Comparison, Comparison, Vec<String>)> = BTreeMap::new();
    for (i, case) in rows.iter().enumerate() {
        bar.update(i as u64, &case.label());
        let r = check::differential(case, &gpu)?;
        let e = ops.entry(case.op).or_default();
        e.0 += 1;
        merge(&mut e.1, &r.forward);
        for b in &r.backward {
            merge(&mut e.2, b);
        }
        if verbose || !r.pass() {
            let line = format!(
                "{:<44} forward {}{}",
                r.label,
                r.forward,
                r.backward
                    .iter()
                    .map(|b| format!(" | grad {b}"))
                    .collect::<String>()
            );
            bar.println(&format!(
                "{} {line}",
                if r.pass() { "ok  " } else { "FAIL" }
            ));
        }
        if !r.pass() {
            e.3.push(r.label.clone());
        }
    }
    bar.finish();
    println!(
        "{:<22} {:>4}  {:>10} {:>10}  {:>10} {:>10}  result",
        "op", "rows", "fwd abs", "fwd rel", "grad abs", "grad rel"
    );
    let mut failed = 0;
    for (op, (n, f, g, fails)) in &ops {
        let grad = |v: f64| {
            if g.pass || g.max_abs > 0.0 {
                format!("{v:>10.2e}")
            } else {
                format!("{:>10}", "-")
            }
        };
        println!(
            "{op:<22} {n:>4}  {:>10.2e} {:>10.2e}  {} {}  {}",
            f.max_abs,
            f.max_rel,
            grad(g.max_abs),
            grad(g.max_rel),
            if fails.is_empty() { "PASS" } else { "FAIL" }
        );
        failed += fails.len();
    }
    if failed > 0 {
        println!("{failed} rows failed");
        return Ok(ExitCode::FAILURE);
    }
    println!("all {} rows passed", rows.len());
    Ok(ExitCode::SUCCESS)
}

/// Fold one comparison into a running worst case.
fn merge(acc: &mut Comparison, c: &Comparison) {
    acc.max_abs = acc.max_abs.max(c.max_abs);
    acc.max_rel = acc.max_rel.max(c.max_rel);
    acc.pass = true;
}

fn bench(
    adapter: Option<String>,
    json: bool,
    only: Vec<String>,
    sizes: Vec<usize>,
    (reps, kernel): (usize, Variant),
    peak_gflops: Option<f64>,
    profile: bool,
) -> wgrad::Result<ExitCode> {
    let dev = Device::gpu_with(DeviceOptions {
        adapter,
        profile,
        ..Default::default()
    })?;
    let want = |g: &str| only.is_empty() || only.iter().any(|o| o == g);
    let cpu_adapter = dev.is_gpu() && !dev.is_hardware_gpu();
    if !json {
        println!("benchmarks on {} (median of {reps})", dev.name());
    }
    type Job<'a> = Box<dyn Fn() -> wgrad::Result<wgrad::bench::Figure> + 'a>;
    let mut jobs: Vec<(String, Job)> = Vec::new();
    let dev = &dev;
    if want("matmul") {
        for &n in &sizes {
            jobs.push((
                format!("matmul {n}"),
                Box::new(move || {
                    let mut f = figures::matmul(dev, n, reps, kernel)?;
                    if let Some(peak) = peak_gflops {
                        f.ceiling = Some((peak, "adapter FP32 peak".into()));
                    } else if cpu_adapter && let Some(c) = figures::gemm_ceiling(n, reps) {
                        f.ceiling = Some((c, "gemm crate f32 GEMM on the host".into()));
                    }
                    Ok(f)
                }),
            ));
        }
    }
    if want("shapes") {
        // The products of one training step of an MLP 784-256-256-10 at batch 128.
        let shapes = [
            ("mlp fwd x·W1ᵀ 128x784x256", (128, 784, 256), (false, true)),
            ("mlp fwd h·W2ᵀ 128x256x256", (128, 256, 256), (false, true)),
            (
                "mlp bwd dW1 = Gᵀ·x 256x128x784",
                (256, 128, 784),
                (true, false),
            ),
            (
                "mlp bwd dh = G·W2 128x256x256",
                (128, 256, 256),
                (false, false),
            ),
            ("mlp fwd h·W3ᵀ 128x256x10", (128, 256, 10), (false, true)),
        ];
        for (name, mkn, t) in shapes {
            jobs.push((
                name.to_string(),
                Box::new(move || figures::matmul_shape(dev, name, mkn, t, reps, kernel)),
            ));
        }
    }
    if want("conv") {
        for layer in figures::CONVS {
            let (m, k, n) = figures::conv_product(layer.1, layer.2);
            let matmul = format!("matmul of {}'s product {m}x{k}x{n}", layer.0);
            // Each convolution beside the matmul of its product shape, measured just before it.
            let reference = std::rc::Rc::new(std::cell::Cell::new(f64::NAN));
            let r = reference.clone();
            jobs.push((
                matmul.clone(),
                Box::new(move || {
                    let f = figures::matmul_shape(
                        dev,
                        &matmul,
                        (m, k, n),
                        (false, false),
                        reps,
                        kernel,
                    )?;
                    r.set(f.value);
                    Ok(f)
                }),
            ));
            for (backward, implicit) in [(false, false), (true, false), (false, true)] {
                let r = reference.clone();
                jobs.push((
                    format!("conv {}", layer.0),
                    Box::new(move || {
                        let mut f = figures::conv(dev, layer, backward, implicit, reps)?;
                        f.ceiling = Some((r.get(), "matmul of the same product shape".into()));
                        Ok(f)
                    }),
                ));
            }
        }
        jobs.push((
            "cnn step".into(),
            Box::new(move || figures::cnn_step(dev, reps)),
        ));
    }
    if want("mlp") {
        for (opt, every) in [("sgd", false), ("sgd", true), ("adam", false)] {
            jobs.push((
                format!("mlp {opt}"),
                Box::new(move || figures::mlp_step(dev, opt, reps, every)),
            ));
        }
    }
    let n = 16 << 20;
    if want("add") {
        jobs.push((
            "add".into(),
            Box::new(move || {
                let mut f = figures::add(dev, n, reps)?;
                if cpu_adapter {
                    f.ceiling = Some((
                        figures::host_add_bandwidth(n, reps),
                        "host c = a + b, one thread".into(),
                    ));
                }
                Ok(f)
            }),
        ));
    }
    if want("sum") {
        jobs.push(("sum".into(), Box::new(move || figures::sum(dev, n, reps))));
    }
    if want("peak") {
        jobs.push((
            "fma peak".into(),
            Box::new(move || wgrad::bench::fma_peak(dev, reps)),
        ));
    }
    if want("overhead") {
        jobs.push((
            "overhead".into(),
            Box::new(move || figures::host_overhead(dev, reps)),
        ));
    }
    // JSON goes to stdout line by line for other programs: no bar then.
    let mut bar: Box<dyn Progress> = if json {
        Box::new(Silent)
    } else {
        Box::new(Bar::new())
    };
    bar.start("measuring", jobs.len() as u64);
    let mut figures = Vec::new();
    for (i, (label, job)) in jobs.into_iter().enumerate() {
        bar.update(i as u64, &label);
        let f = job()?;
        if json {
            println!("{}", f.to_json());
        } else {
            let ceiling = match (&f.ceiling, f.fraction()) {
                (Some((c, what)), Some(frac)) => {
                    format!("{:>6.1}% of {c:.1} ({what})", 100.0 * frac)
                }
                _ => String::new(),
            };
            bar.println(&format!(
                "{:<46} {:>10.2} {:<8} {ceiling}",
                f.name, f.value, f.unit
            ));
        }
        figures.push(f);
    }
    bar.finish();
    if profile {
        let entries = dev.profile();
        let total: f64 = entries.iter().map(|e| e.milliseconds).sum();
        println!("GPU time per kernel (timestamps around each dispatch):");
        for e in entries {
            println!(
                "  {:<32} {:>8} dispatches {:>10.1} ms {:>6.1}%  {:>8.1} us each",
                e.shader,
                e.dispatches,
                e.milliseconds,
                100.0 * e.milliseconds / total,
                1e3 * e.milliseconds / e.dispatches as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
