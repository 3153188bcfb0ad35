//! The `wgrad` command: `info` (adapters and the limits that matter), `check` (every kernel
//! against the CPU reference on this adapter).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wgrad::check::{self, Comparison};
use wgrad::{Device, DeviceOptions};

#[derive(Parser)]
#[command(
    name = "wgrad",
    version,
    about = "GPU training engine: adapter info and kernel checks"
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info => info(),
        Command::Check { op, verbose } => check(cli.adapter, op, verbose),
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
    let rows: Vec<_> = check::cases()
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
    let bar = indicatif::ProgressBar::new(rows.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    // Per op: rows, worst forward, worst gradient, failures.
    let mut ops: BTreeMap<&str, (usize, Comparison, Comparison, Vec<String>)> = BTreeMap::new();
    for case in &rows {
        bar.set_message(case.label());
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
            bar.println(format!("{} {line}", if r.pass() { "ok  " } else { "FAIL" }));
        }
        if !r.pass() {
            e.3.push(r.label.clone());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
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
