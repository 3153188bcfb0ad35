//! The timing harness behind `wgrad bench` and `benches/`, public so users time their own ops the
//! same way: a [`Figure`] is the median of repetitions with every sample kept, and, where known,
//! a ceiling beside it. [`throughput`] times any recorded op in GFLOP/s or GB/s from a work count
//! the caller gives; [`fma_peak`] measures the adapter's own arithmetic ceiling (registers only),
//! the figure kernels are compared with. Speed is compared within one run; tests never assert on
//! time.
//!
//! ```no_run
//! use wgrad::bench::{self, Work};
//! use wgrad::{Device, Tensor};
//! # fn main() -> wgrad::Result<()> {
//! let dev = Device::gpu()?;
//! let (a, b) = (Tensor::rand(&dev, &[512, 512]), Tensor::rand(&dev, &[512, 512]));
//! let flops = 2.0 * 512f64.powi(3);
//! let fig = bench::throughput(&dev, "matmul 512", Work::Flops(flops), 5, || a.matmul(&b))?;
//! println!("{}: {:.1} {}", fig.name, fig.value, fig.unit);
//! # Ok(()) }
//! ```

use std::time::Instant;

use crate::{Device, Result, Tensor};

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The median.
    pub value: f64,
    /// "GFLOP/s", "GB/s", "steps/s", "us", …
    pub unit: &'static str,
    /// Every repetition.
    pub samples: Vec<f64>,
    /// A ceiling for this figure on this machine, and what it is.
    pub ceiling: Option<(f64, String)>,
    /// How it was measured (queue depth, steps per repetition, …).
    pub note: String,
}

impl Figure {
    /// A figure whose value is the median of `samples`.
    pub fn new(name: impl Into<String>, unit: &'static str, samples: Vec<f64>) -> Figure {
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

/// The median of `v` (NaN for none).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// How many calls of `f` take about `secs` (at least 1, at most 1000), from one timed call.
pub fn calls_for(secs: f64, mut f: impl FnMut() -> Result<()>) -> Result<usize> {
    let t = Instant::now();
    f()?;
    let once = t.elapsed().as_secs_f64().max(1e-6);
    Ok(((secs / once).ceil() as usize).clamp(1, 1000))
}

/// The work one call does, for [`throughput`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Work {
    /// Floating-point operations: the figure is in GFLOP/s.
    Flops(f64),
    /// Bytes moved: the figure is in GB/s.
    Bytes(f64),
}

/// Time `record` (which records one op, or a few, and returns the result): after a warm-up call
/// and any background compiles, `reps` samples of as many calls as take about half a second,
/// queued together and waited for once. The figure is `work` per call over the time taken.
pub fn throughput(
    dev: &Device,
    name: &str,
    work: Work,
    reps: usize,
    mut record: impl FnMut() -> Tensor,
) -> Result<Figure> {
    let mut run = |times: usize| -> Result<()> {
        let outs: Vec<Tensor> = (0..times).map(|_| record()).collect();
        dev.synchronize()?;
        drop(outs);
        Ok(())
    };
    run(1)?;
    dev.wait_for_compiles();
    let calls = calls_for(0.5, || run(1))?;
    let (amount, unit) = match work {
        Work::Flops(f) => (f, "GFLOP/s"),
        Work::Bytes(b) => (b, "GB/s"),
    };
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        run(calls)?;
        samples.push(amount * calls as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    let mut f = Figure::new(name, unit, samples);
    f.note = format!("{calls} calls queued per sync");
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
    fn cpu(&self, ins: &[crate::op::Input], outs: &mut [&mut [f64]]) {
        let ins: Vec<&[f64]> = ins.iter().map(|i| i.values).collect();
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
    fn kernel(&self, _: &[&crate::op::Layout], _: &crate::op::Layout) -> crate::op::Kernel {
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
