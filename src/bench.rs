//! Benchmarks shared by `wgrad bench` and `benches/`: matmul GFLOP/s, elementwise and reduction
//! GB/s, MLP training steps per second, host cost per recorded dispatch. Each figure is a median
//! over repetitions, and where a ceiling is known it is reported beside it: on a CPU-backed
//! adapter the `gemm` crate's f32 GEMM on the same cores (feature `ceiling`) and the host's
//! memory bandwidth. Speed is compared within one run; tests never assert on time.

use std::time::Instant;

use crate::nn::{self, Activation, Init, Module};
use crate::ops::matmul::Variant;
use crate::optim::{Adam, Optimizer, Sgd};
use crate::{Device, Result, Tensor};

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    /// The median.
    pub value: f64,
    pub unit: &'static str,
    /// Every repetition.
    pub samples: Vec<f64>,
    /// A ceiling for this figure on this machine, and what it is.
    pub ceiling: Option<(f64, String)>,
    pub note: String,
}

impl Figure {
    fn new(name: impl Into<String>, unit: &'static str, samples: Vec<f64>) -> Figure {
        Figure {
            name: name.into(),
            value: median(&samples),
            unit,
            samples,
            ceiling: None,
            note: String::new(),
        }
    }

    /// The figure as a share of its ceiling.
    pub fn fraction(&self) -> Option<f64> {
        self.ceiling.as_ref().map(|(c, _)| self.value / c)
    }

    /// One JSON object (no dependency needed for a flat record).
    pub fn to_json(&self) -> String {
        let samples: Vec<String> = self.samples.iter().map(|s| format!("{s:.6}")).collect();
        let ceiling = match &self.ceiling {
            Some((v, what)) => format!(
                r#""ceiling":{v:.4},"ceiling_of":"{what}","fraction":{:.4},"#,
                self.value / v
            ),
            None => String::new(),
        };
        format!(
            r#"{{"name":"{}","value":{:.6},"unit":"{}",{ceiling}"samples":[{}],"note":"{}"}}"#,
            self.name,
            self.value,
            self.unit,
            samples.join(","),
            self.note.replace('"', "'")
        )
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Run `f` until it has taken about `secs`, at least once; the number of calls.
fn calls_for(secs: f64, mut f: impl FnMut() -> Result<()>) -> Result<usize> {
    let t = Instant::now();
    f()?;
    let once = t.elapsed().as_secs_f64().max(1e-6);
    Ok(((secs / once).ceil() as usize).clamp(1, 1000))
}

/// C = A·B for square f32 matrices of size `n`: `k` products queued, one sync, GFLOP/s.
pub fn matmul(dev: &Device, n: usize, reps: usize, kernel: Variant) -> Result<Figure> {
    matmul_shape(
        dev,
        &format!("matmul {n}x{n}x{n}"),
        (n, n, n),
        (false, false),
        reps,
        kernel,
    )
}

/// A product of an `m×k` by a `k×n` matrix (either transposed), GFLOP/s.
pub fn matmul_shape(
    dev: &Device,
    name: &str,
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    reps: usize,
    kernel: Variant,
) -> Result<Figure> {
    dev.manual_seed(0);
    let a = Tensor::rand(dev, &if ta { [k, m] } else { [m, k] });
    let b = Tensor::rand(dev, &if tb { [n, k] } else { [k, n] });
    let run = |times: usize| -> Result<()> {
        let outs: Vec<Tensor> = (0..times)
            .map(|_| a.matmul_variant(&b, ta, tb, kernel))
            .collect();
        dev.synchronize()?;
        drop(outs);
        Ok(())
    };
    run(1)?;
    dev.wait_for_compiles();
    let k_ops = calls_for(0.5, || run(1))?;
    let flop = 2.0 * (m * n * k) as f64;
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        run(k_ops)?;
        samples.push(flop * k_ops as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    let name = match kernel {
        Variant::Auto => name.to_string(),
        k => format!("{name} ({k:?} kernel)"),
    };
    let mut f = Figure::new(name, "GFLOP/s", samples);
    f.note = format!("{k_ops} products queued per sync");
    Ok(f)
}

/// c = a + b over `n` f32 values, synchronised after every add; GB/s counting 3 × 4n bytes.
pub fn add(dev: &Device, n: usize, reps: usize) -> Result<Figure> {
    let (a, b) = (Tensor::rand(dev, &[n]), Tensor::rand(dev, &[n]));
    dev.synchronize()?;
    let once = || -> Result<()> {
        let c = a.add(&b);
        dev.synchronize()?;
        drop(c);
        Ok(())
    };
    for _ in 0..3 {
        once()?;
    }
    let bytes = 12.0 * n as f64;
    let mut samples = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..5 {
            once()?;
        }
        samples.push(bytes * 5.0 / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok(Figure::new(format!("add {n} f32"), "GB/s", samples))
}

/// The sum of `n` f32 values (two passes for a long axis); GB/s counting 4n bytes read.
pub fn sum(dev: &Device, n: usize, reps: usize) -> Result<Figure> {
    let a = Tensor::rand(dev, &[n]);
    dev.synchronize()?;
    let once = || -> Result<()> {
        let s = a.sum_all();
        dev.synchronize()?;
        drop(s);
        Ok(())
    };
    for _ in 0..3 {
        once()?;
    }
    let mut samples = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..5 {
            once()?;
        }
        samples.push(4.0 * n as f64 * 5.0 / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok(Figure::new(format!("sum {n} f32"), "GB/s", samples))
}

/// Training steps per second of an MLP 784-256-256-10 (ReLU, softmax cross-entropy, batch 128),
/// `steps` steps then one loss read per repetition (or a read every step). Also returns the
/// time to the end of the first step.
pub fn mlp_step(
    dev: &Device,
    optimizer: &str,
    reps: usize,
    read_every_step: bool,
) -> Result<Figure> {
    let start = Instant::now();
    dev.manual_seed(0);
    let model = nn::mlp(
        dev,
        &[784, 256, 256, 10],
        Activation::Relu,
        Init::HeUniform,
        0.0,
    );
    let mut opt: Box<dyn Optimizer> = match optimizer {
        "adam" => Box::new(Adam::new(&model.params(), 1e-3)),
        _ => Box::new(Sgd::new(&model.params(), 1e-2)),
    };
    let batch = 128;
    let x = Tensor::rand(dev, &[batch, 784]);
    let labels: Vec<f32> = (0..batch).map(|i| ((i * 7) % 10) as f32).collect();
    let y = Tensor::from_vec(dev, labels, &[batch])?;
    let mut step = |read: bool| -> Result<f32> {
        let loss = model.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward())?;
        if read { loss.item() } else { Ok(0.0) }
    };
    step(true)?;
    let first = start.elapsed().as_secs_f64();
    dev.wait_for_compiles();
    for _ in 0..5 {
        step(true)?;
    }
    let steps = calls_for(1.0, || step(true).map(|_| ()))?.max(10);
    let mut samples = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for i in 0..steps {
            step(read_every_step || i + 1 == steps)?;
        }
        samples.push(steps as f64 / t.elapsed().as_secs_f64());
    }
    let how = if read_every_step {
        "loss read every step"
    } else {
        "loss read at the end"
    };
    let mut f = Figure::new(
        format!("mlp step 784-256-256-10 b128 {optimizer} ({how})"),
        "steps/s",
        samples,
    );
    f.note = format!(
        "{steps} steps per repetition; first step done {:.0} ms after model creation",
        first * 1e3
    );
    Ok(f)
}

static FMA_PEAK: crate::op::Shader = crate::op::shader!("fma_peak", "fma_peak.wgsl");

/// [`FMA_PEAK`] over `n` invocations of `iters` rounds.
struct FmaPeak {
    n: usize,
    iters: u32,
}

impl crate::op::Op for FmaPeak {
    fn name(&self) -> &'static str {
        "fma_peak"
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        let x = |j: usize, c: usize| ins[0][(j % 64) * 4 + c];
        for i in 0..self.n {
            for c in 0..4 {
                let (m, add) = (x(i + 1, c), x(i + 2, c));
                let mut sum = 0.0;
                for chain in 0..8 {
                    let mut a = x(i, c) + chain as f64;
                    for _ in 0..self.iters {
                        a = a.mul_add(m, add);
                    }
                    sum += a;
                }
                outs[0][i * 4 + c] = sum;
            }
        }
    }
    fn kernel(&self) -> crate::op::Kernel {
        let p = [self.n as u32, self.iters, 0, 0];
        crate::op::Kernel::new(&FMA_PEAK, &p, self.n.div_ceil(64) as u64)
    }
}

/// The adapter's arithmetic ceiling as WGSL reaches it: GFLOP/s of a kernel doing nothing but
/// independent FMAs on registers. On a CPU-backed adapter it bounds every kernel far below the
/// host's hand-written GEMM.
pub fn fma_peak(dev: &Device, reps: usize) -> Result<Figure> {
    let x = Tensor::full(dev, &[256], 0.999);
    // Under llvmpipe's loop limit; enough invocations to fill any adapter.
    let (n, iters) = (1usize << 16, 20_000u32);
    let run = || -> Result<f64> {
        let t = Instant::now();
        let y = Tensor::apply_op(FmaPeak { n, iters }, &[&x], &[n * 4]);
        y.narrow(0, 0, 1).to_vec()?;
        Ok(t.elapsed().as_secs_f64())
    };
    run()?;
    let flops = n as f64 * iters as f64 * 64.0;
    let mut samples = Vec::new();
    for _ in 0..reps {
        samples.push(flops / run()? / 1e9);
    }
    let mut f = Figure::new("fma peak (registers only)", "GFLOP/s", samples);
    f.note = "8 independent vec4 FMA chains per invocation, no memory traffic".into();
    Ok(f)
}

/// Host cost of recording and submitting one dispatch: a chain of `n` tiny ops recorded and
/// flushed (without waiting for the device), in µs per dispatch.
pub fn host_overhead(dev: &Device, reps: usize) -> Result<Figure> {
    let n = 500;
    let x = Tensor::rand(dev, &[64]);
    let chain = || -> Result<f64> {
        let t = Instant::now();
        let mut y = x.clone();
        for _ in 0..n {
            y = y.add_scalar(1.0);
        }
        dev.flush()?;
        let host = t.elapsed().as_secs_f64();
        dev.synchronize()?;
        Ok(host)
    };
    chain()?;
    let mut samples = Vec::new();
    for _ in 0..reps {
        samples.push(chain()? * 1e6 / n as f64);
    }
    let mut f = Figure::new("host cost per recorded dispatch", "us", samples);
    f.note = format!("{n} dependent tiny ops recorded, encoded and submitted");
    Ok(f)
}

/// Single-threaded host bandwidth of c = a + b over `n` f32 values (GB/s, 3 × 4n bytes): the
/// memory ceiling of elementwise kernels on a CPU-backed adapter.
pub fn host_add_bandwidth(n: usize, reps: usize) -> f64 {
    let a = vec![1.0f32; n];
    let b = vec![2.0f32; n];
    let mut c = vec![0.0f32; n];
    let mut samples = Vec::new();
    for _ in 0..reps.max(3) {
        let t = Instant::now();
        for ((c, a), b) in c.iter_mut().zip(&a).zip(&b) {
            *c = a + b;
        }
        std::hint::black_box(&c);
        samples.push(12.0 * n as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    median(&samples)
}

/// f32 GEMM GFLOP/s of the `gemm` crate on all host threads (the ceiling of matmul on a
/// CPU-backed adapter); `None` without the `ceiling` feature.
pub fn gemm_ceiling(n: usize, reps: usize) -> Option<f64> {
    #[cfg(feature = "ceiling")]
    {
        let a = vec![1.0f32; n * n];
        let b = vec![0.5f32; n * n];
        let mut c = vec![0.0f32; n * n];
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
        let run = |c: &mut [f32]| unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            )
        };
        run(&mut c);
        let mut samples = Vec::new();
        for _ in 0..reps.max(3) {
            let t = Instant::now();
            run(&mut c);
            samples.push(2.0 * (n as f64).powi(3) / t.elapsed().as_secs_f64() / 1e9);
        }
        Some(median(&samples))
    }
    #[cfg(not(feature = "ceiling"))]
    {
        let _ = (n, reps);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peak kernel computes what its reference does (so its flop count is real work).
    #[test]
    fn fma_peak_matches_its_reference() {
        let Some(gpu) = crate::testing::gpu() else {
            return;
        };
        let run = |dev: &Device| {
            let x = Tensor::uniform(dev, &[256], 0.5, 0.9);
            let n = 130;
            let y = Tensor::apply_op(FmaPeak { n, iters: 50 }, &[&x], &[n * 4]);
            y.to_vec().expect("values")
        };
        let (cpu, gpu) = (Device::cpu(), gpu);
        cpu.manual_seed(5);
        gpu.manual_seed(5);
        let (want, got) = (run(&cpu), run(&gpu));
        let (i, err) = crate::testing::worst(
            got.iter()
                .zip(&want)
                .map(|(g, w)| (g - w).abs() / w.abs().max(1.0)),
        );
        assert!(
            err < 1e-5,
            "fma_peak: worst element {i}: got {}, want {} (relative error {err})",
            got[i],
            want[i]
        );
    }
}
