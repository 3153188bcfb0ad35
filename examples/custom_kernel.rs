//! A kernel of your own, checked and timed the way wgrad checks and times its own: a fused swish
//! y = x·σ(βx) (SiLU at β = 1), a kernel wgrad does not have, with its own WGSL in
//! `examples/kernels/`, an f64 CPU reference and a backward that is a second fused kernel.
//!
//!     cargo run --release --example custom_kernel
//!     cargo run --release --example custom_kernel -- --quick     # small rows, a few seconds
//!
//! 1. Both shaders are validated as wgrad's are (naga, and the binding contract by reflection).
//! 2. The CPU reference is checked against a direct computation from wgrad's built-in ops.
//! 3. Rows of shapes and tolerances run on the GPU against the CPU reference, forward and
//!    backward, and through a finite-difference gradcheck; each line names its worst element.
//! 4. The fused kernels are timed against the same function composed of built-in ops.
//!
//! Exits with 1 if any check fails.

use clap::Parser;
use wgrad::bench::{self, Work};
use wgrad::check::{self, Case, Comparison, Input};
use wgrad::op::{self, BackwardCtx, Kernel, Layout, Op, Shader};
use wgrad::train::options::positive;
use wgrad::{Device, Tensor};

static SWISH: Shader = wgrad::shader!("custom_kernel/swish", in "examples/kernels", "swish.wgsl");
static SWISH_GRAD: Shader = wgrad::shader!(
    "custom_kernel/swish_grad",
    in "examples/kernels",
    "swish_grad.wgsl"
);

/// The parameters both shaders read: `struct Params { n: u32, beta: f32, _pad0, _pad1 }`.
fn params(n: usize, beta: f32) -> [u32; 4] {
    let n = u32::try_from(n).expect("swish: at most 2³² − 1 elements");
    [n, beta.to_bits(), 0, 0]
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// y = x·σ(βx).
struct Swish {
    beta: f32,
}

impl Op for Swish {
    fn name(&self) -> &'static str {
        "swish"
    }
    fn cpu(&self, inputs: &[op::Input], outputs: &mut [&mut [f64]]) {
        let beta = f64::from(self.beta);
        for (y, &x) in outputs[0].iter_mut().zip(inputs[0].values) {
            *y = x * sigmoid(beta * x);
        }
    }
    fn kernel(&self, _inputs: &[&Layout], output: &Layout) -> Kernel {
        let n = output.numel();
        Kernel::per_element(&SWISH, &params(n, self.beta), n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let dx = ctx.needs[0].then(|| {
            Tensor::apply_op(
                SwishGrad { beta: self.beta },
                &[&ctx.inputs[0], ctx.grad],
                ctx.grad.shape(),
            )
        });
        vec![dx]
    }
}

/// dx = g·(s + βx·s·(1 − s)), s = σ(βx). A gradient kernel: it has no backward of its own.
struct SwishGrad {
    beta: f32,
}

impl Op for SwishGrad {
    fn name(&self) -> &'static str {
        "swish_grad"
    }
    fn cpu(&self, inputs: &[op::Input], outputs: &mut [&mut [f64]]) {
        let beta = f64::from(self.beta);
        let (x, g) = (inputs[0].values, inputs[1].values);
        for (i, dx) in outputs[0].iter_mut().enumerate() {
            let s = sigmoid(beta * x[i]);
            *dx = g[i] * (s + beta * x[i] * s * (1.0 - s));
        }
    }
    fn kernel(&self, _inputs: &[&Layout], output: &Layout) -> Kernel {
        let n = output.numel();
        Kernel::per_element(&SWISH_GRAD, &params(n, self.beta), n)
    }
}

/// The op as users call it.
#[track_caller]
fn swish(x: &Tensor, beta: f32) -> Tensor {
    Tensor::apply_op(Swish { beta }, &[x], x.shape())
}

/// The same function from built-in ops (three dispatches instead of one).
fn swish_composed(x: &Tensor, beta: f32) -> Tensor {
    x * (x * beta).sigmoid()
}

#[derive(Parser)]
#[command(
    about = "Check and time a user-defined fused swish kernel",
    allow_negative_numbers = true
)]
struct Args {
    /// Small rows and a small timing size, for a check in seconds.
    #[arg(long)]
    quick: bool,
    /// Elements of the timed tensor [default: 4,194,304, or 65,536 with --quick].
    #[arg(long, value_parser = positive::<usize>)]
    elements: Option<usize>,
    /// Repetitions per timing (the median is printed).
    #[arg(long, default_value_t = 5, value_parser = positive::<usize>)]
    reps: usize,
}

/// The rows: each β at a few shapes (one past a workgroup, a matrix, a large tensor).
fn rows(quick: bool) -> Vec<Case> {
    let mut shapes: Vec<Vec<usize>> = vec![vec![7], vec![3, 5], vec![64, 33]];
    if !quick {
        shapes.push(vec![1000, 300]);
    }
    let mut rows = Vec::new();
    for (label, beta) in [("swish β=1", 1.0f32), ("swish β=1.702", 1.702)] {
        for s in &shapes {
            rows.push(Case::new(label, vec![Input::normal(s)], move |_, x| {
                swish(&x[0], beta)
            }));
        }
    }
    rows
}

fn verdict(pass: bool) -> &'static str {
    if pass { "ok" } else { "FAILED" }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> wgrad::Result<()> {
    let mut failed = 0;

    println!("shaders (naga validation, binding contract):");
    for shader in [&SWISH, &SWISH_GRAD] {
        let b = check::validate_shader(shader)?;
        println!(
            "  {:<26} {} input(s), {} output(s), {} B of parameters, {} invocations per workgroup",
            shader.name, b.inputs, b.outputs, b.params_bytes, b.invocations
        );
    }

    // The reference against a direct computation from built-in ops, both on the CPU in f64.
    let cpu = Device::cpu();
    cpu.manual_seed(7);
    let x = Tensor::randn(&cpu, &[257]).requires_grad_();
    println!("\nCPU reference against x·sigmoid(βx) from built-in ops (f64):");
    for beta in [1.0f32, 1.702] {
        let (mine, direct) = (swish(&x, beta), swish_composed(&x, beta));
        let w = Tensor::randn(&cpu, &[257]);
        let (gm, gd) = (
            (&mine * &w).sum_all().backward(),
            (&direct * &w).sum_all().backward(),
        );
        let forward = Comparison::new(&mine.to_vec_f64()?, &direct.to_vec_f64()?, 1e-12, 1e-12);
        let grad = Comparison::new(
            &gm.wrt(&x).to_vec_f64()?,
            &gd.wrt(&x).to_vec_f64()?,
            1e-12,
            1e-12,
        );
        for (what, c) in [("forward", &forward), ("gradient", &grad)] {
            println!("  β={beta:<6} {what:<9} {:<6} {c}", verdict(c.pass));
            failed += usize::from(!c.pass);
        }
    }

    let gpu = Device::gpu()?;
    println!(
        "\non {}: GPU (f32) against the CPU reference (f64)",
        gpu.name()
    );
    println!(
        "  {:<26} {:<8} {:<10} gradcheck (CPU, finite differences)",
        "row", "forward", "backward"
    );
    for row in rows(args.quick) {
        let report = check::differential(&row, &gpu)?;
        let grads = if row.gradcheck {
            check::gradcheck(&row)?
        } else {
            Vec::new()
        };
        let grad_pass = grads.iter().all(|c| c.pass);
        let pass = report.pass() && grad_pass;
        failed += usize::from(!pass);
        println!(
            "  {:<26} {:<8} {:<10} {}",
            row.label(),
            verdict(report.forward.pass),
            verdict(report.backward.iter().all(|c| c.pass)),
            if row.gradcheck {
                verdict(grad_pass)
            } else {
                "(row too large)"
            }
        );
        if !pass {
            println!("    forward: {}", report.forward);
            for c in report.backward.iter().chain(&grads) {
                println!("    gradient: {c}");
            }
        }
    }

    let n = args
        .elements
        .unwrap_or(if args.quick { 1 << 16 } else { 1 << 22 });
    gpu.manual_seed(1);
    let x = Tensor::randn(&gpu, &[n]);
    let g = Tensor::randn(&gpu, &[n]);
    println!(
        "\ntiming, {n} elements (median of {}; GB/s counts the fused kernel's bytes, so both \
         columns measure the same work):",
        args.reps
    );
    let forward_bytes = Work::Bytes(8.0 * n as f64);
    let backward_bytes = Work::Bytes(12.0 * n as f64);
    let figures = [
        (
            "forward",
            bench::throughput(&gpu, "swish", forward_bytes, args.reps, || swish(&x, 1.0))?,
            bench::throughput(&gpu, "composed", forward_bytes, args.reps, || {
                swish_composed(&x, 1.0)
            })?,
        ),
        (
            "backward",
            bench::throughput(&gpu, "swish_grad", backward_bytes, args.reps, || {
                Tensor::apply_op(SwishGrad { beta: 1.0 }, &[&x, &g], &[n])
            })?,
            bench::throughput(&gpu, "composed", backward_bytes, args.reps, || {
                let s = x.sigmoid();
                &g * (&s + &x * &s * (1.0 - &s))
            })?,
        ),
    ];
    println!(
        "  {:<9} {:>12} {:>12} {:>8}",
        "", "fused", "composed", "ratio"
    );
    for (what, fused, composed) in &figures {
        println!(
            "  {what:<9} {:>7.2} {} {:>7.2} {} {:>7.2}×",
            fused.value,
            fused.unit,
            composed.value,
            composed.unit,
            fused.value / composed.value
        );
    }

    if failed > 0 {
        eprintln!("{failed} check(s) failed");
        std::process::exit(1);
    }
    println!("\nevery check passed");
    Ok(())
}
