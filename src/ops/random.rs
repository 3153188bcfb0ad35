//! Random tensors: uniform, normal and Bernoulli, drawn from the device's seed stream with the
//! Philox generator of [`crate::rng`], identical on every backend (uniform on [0, 1) and
//! Bernoulli bit for bit; normal and scaled uniform to f32 rounding).

use crate::op::{Input, Kernel, Layout, Op, Shader, shader};
use crate::{Device, Tensor, rng};

static UNIFORM: Shader = shader!(
    "random/uniform",
    "random/_philox_core.wgsl",
    "random/_philox.wgsl",
    "random/uniform.wgsl"
);
static NORMAL: Shader = shader!(
    "random/normal",
    "random/_philox_core.wgsl",
    "random/_philox.wgsl",
    "random/normal.wgsl"
);
static BERNOULLI: Shader = shader!(
    "random/bernoulli",
    "random/_philox_core.wgsl",
    "random/_philox.wgsl",
    "random/bernoulli.wgsl"
);
static NORMAL_ROWS: Shader = shader!(
    "random/normal_rows",
    "random/_philox_core.wgsl",
    "random/normal_rows.wgsl"
);

#[derive(Clone, Copy)]
enum Dist {
    Uniform,
    Normal,
    Bernoulli,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    _pad: u32,
    a: f32,
    b: f32,
}

struct Random {
    dist: Dist,
    seed: u64,
    a: f32,
    b: f32,
}

impl Op for Random {
    fn name(&self) -> &'static str {
        match self.dist {
            Dist::Uniform => "uniform",
            Dist::Normal => "normal",
            Dist::Bernoulli => "bernoulli",
        }
    }
    fn cpu(&self, _: &[Input], outs: &mut [&mut [f64]]) {
        let (a, b) = (self.a as f64, self.b as f64);
        for (i, y) in outs[0].iter_mut().enumerate() {
            let w = rng::words(self.seed, i as u32);
            *y = match self.dist {
                Dist::Uniform => a + (b - a) * rng::unit(w[0]) as f64,
                Dist::Normal => a + b * rng::normal(w),
                Dist::Bernoulli => (rng::unit(w[0]) < self.a) as u8 as f64,
            };
        }
    }
    fn kernel(&self, _: &[&Layout], out: &Layout) -> Kernel {
        let n = out.numel();
        let shader = match self.dist {
            Dist::Uniform => &UNIFORM,
            Dist::Normal => &NORMAL,
            Dist::Bernoulli => &BERNOULLI,
        };
        let p = Params {
            n: n as u32,
            seed_lo: self.seed as u32,
            seed_hi: (self.seed >> 32) as u32,
            _pad: 0,
            a: self.a,
            b: self.b,
        };
        Kernel::per_element(shader, &p, n)
    }
    fn differentiable(&self) -> bool {
        false
    }
}

/// Rows of standard normals, each from its own seed (an input tensor).
struct NormalRows {
    cols: usize,
}

impl Op for NormalRows {
    fn name(&self) -> &'static str {
        "randn_rows"
    }
    fn cpu(&self, inputs: &[Input], outs: &mut [&mut [f64]]) {
        for (r, row) in outs[0].chunks_mut(self.cols.max(1)).enumerate() {
            let seed = inputs[0].values[r] as u64;
            for (j, y) in row.iter_mut().enumerate() {
                *y = rng::normal(rng::words(seed, j as u32));
            }
        }
    }
    fn kernel(&self, _: &[&Layout], out: &Layout) -> Kernel {
        let n = out.numel();
        Kernel::per_element(&NORMAL_ROWS, &[n as u32, self.cols as u32, 0, 0], n)
    }
    fn differentiable(&self) -> bool {
        false
    }
}

impl Tensor {
    /// `[k, cols]` standard normals where row `r` is the start of the stream of seed `seeds[r]`
    /// (`seeds` `[k]`, integers below [`SEED_LIMIT`](crate::evolve::SEED_LIMIT) = 2²⁴, exact in f32): the same seed gives the same row whatever
    /// the other rows, in one dispatch. Seed-encoded genomes ([`crate::evolve`]) are built on it.
    #[track_caller]
    pub fn randn_rows(seeds: &Tensor, cols: usize) -> Tensor {
        assert!(
            seeds.rank() == 1 && cols >= 1,
            "randn_rows: needs seeds of shape [k] and cols ≥ 1, got {:?} and {cols}",
            seeds.shape()
        );
        assert!(
            seeds.numel() * cols <= u32::MAX as usize,
            "randn_rows: {} × {cols} elements exceed the kernel's 32-bit index",
            seeds.numel()
        );
        Tensor::record(NormalRows { cols }, &[seeds], vec![seeds.numel(), cols])
    }

    #[track_caller]
    fn random(device: &Device, shape: &[usize], dist: Dist, a: f32, b: f32) -> Tensor {
        let n = crate::shape::numel(shape);
        assert!(
            n <= u32::MAX as usize,
            "random: {n} elements exceed the generator's 32-bit counter"
        );
        let op = Random {
            dist,
            seed: device.next_seed(),
            a,
            b,
        };
        Tensor::record_on(device, op, &[], shape.to_vec())
    }

    /// Uniform on [0, 1).
    #[track_caller]
    pub fn rand(device: &Device, shape: &[usize]) -> Tensor {
        Tensor::random(device, shape, Dist::Uniform, 0.0, 1.0)
    }

    /// Uniform on [lo, hi).
    #[track_caller]
    pub fn uniform(device: &Device, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        assert!(lo <= hi, "uniform: lo {lo} > hi {hi}");
        Tensor::random(device, shape, Dist::Uniform, lo, hi)
    }

    /// Standard normal.
    #[track_caller]
    pub fn randn(device: &Device, shape: &[usize]) -> Tensor {
        Tensor::random(device, shape, Dist::Normal, 0.0, 1.0)
    }

    /// Normal with the given mean and standard deviation.
    #[track_caller]
    pub fn normal(device: &Device, shape: &[usize], mean: f32, std: f32) -> Tensor {
        assert!(std >= 0.0, "normal: negative standard deviation {std}");
        Tensor::random(device, shape, Dist::Normal, mean, std)
    }

    /// 1 with probability `p`, else 0.
    #[track_caller]
    pub fn bernoulli(device: &Device, shape: &[usize], p: f32) -> Tensor {
        assert!(
            (0.0..=1.0).contains(&p),
            "bernoulli: probability {p} outside [0, 1]"
        );
        Tensor::random(device, shape, Dist::Bernoulli, p, 0.0)
    }

    /// Inverted dropout: zero each element with probability `p` and scale the rest by
    /// 1/(1 − p), so the expectation is unchanged. The identity when `p` is 0.
    #[track_caller]
    pub fn dropout(&self, p: f32) -> Tensor {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout: probability {p} outside [0, 1)"
        );
        if p == 0.0 {
            return self.clone();
        }
        let keep = Tensor::bernoulli(self.device(), self.shape(), 1.0 - p);
        self * (keep * (1.0 / (1.0 - p)))
    }
}
