//! Normalisation, as PyTorch's `batch_norm` and `layer_norm`. Batch norm has its own kernels:
//! the channel statistics and the channel sums of its backward pass (each a pass over rows,
//! then one over channels), and the per-channel affine map; each backward rule is written with them, so a training
//! step's batch norm is a handful of dispatches. Shapes past their loop limits, and layer norm,
//! are written with ordinary ops.

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, MAX_LOOP, Op, Shader, shader};

static ROWS: Shader = shader!(
    "norm/batch_norm_rows",
    "norm/_batch_norm.wgsl",
    "norm/batch_norm_rows.wgsl"
);
static GRAD_ROWS: Shader = shader!(
    "norm/batch_norm_grad_rows",
    "norm/_batch_norm.wgsl",
    "norm/batch_norm_grad_rows.wgsl"
);
static COMBINE: Shader = shader!(
    "norm/batch_norm_combine",
    "norm/_batch_norm.wgsl",
    "norm/batch_norm_combine.wgsl"
);
static APPLY: Shader = shader!(
    "norm/batch_norm_apply",
    "norm/_batch_norm.wgsl",
    "norm/batch_norm_apply.wgsl"
);

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    l: u32,
    eps: f32,
    mode: u32,
    _pad: [u32; 3],
}

/// Which batch-norm kernel, over x `[n, c, l]` (see `norm/_batch_norm.wgsl`).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// (x) → partial `[n, c, 2]`: each row's Σ d and Σ d², d = x − x[0, c, 0].
    Rows,
    /// (x, stats, g) → partial `[n, c, 2]`: each row's Σ g and Σ g·x̂.
    GradRows,
    /// (partial of `Rows`, x) → stats `[2, c]`: mean and biased variance per channel.
    Stats,
    /// (partial of `GradRows`, x) → `[2, c]`: Σ g and Σ g·x̂ per channel.
    Sums,
    /// (x, stats, w, b) → y = x̂·w + b.
    Apply,
}

#[derive(Clone, Copy)]
struct BatchNorm {
    kind: Kind,
    n: usize,
    c: usize,
    l: usize,
    eps: f32,
}

impl BatchNorm {
    fn with(self, kind: Kind) -> BatchNorm {
        BatchNorm { kind, ..self }
    }

    fn record(self, inputs: &[&Tensor]) -> Tensor {
        let shape = match self.kind {
            Kind::Apply => vec![self.n, self.c, self.l],
            Kind::Rows | Kind::GradRows => vec![self.n, self.c, 2],
            Kind::Stats | Kind::Sums => vec![2, self.c],
        };
        Tensor::record(self, inputs, shape)
    }

    /// The statistics of x `[n, c, l]`.
    fn stats(self, x: &Tensor) -> Tensor {
        let partial = self.with(Kind::Rows).record(&[x]);
        self.with(Kind::Stats).record(&[&partial, x])
    }

    /// Σ g and Σ g·x̂ per channel.
    fn sums(self, x: &Tensor, stats: &Tensor, g: &Tensor) -> Tensor {
        let partial = self.with(Kind::GradRows).record(&[x, stats, g]);
        self.with(Kind::Sums).record(&[&partial, x])
    }

    /// Whether the kernels' loops fit: a row loops l times, a channel n times.
    fn fits(n: usize, l: usize) -> bool {
        n <= MAX_LOOP && l <= MAX_LOOP
    }
}

impl Op for BatchNorm {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Rows => "batch_norm_rows",
            Kind::GradRows => "batch_norm_grad_rows",
            Kind::Stats => "batch_norm_stats",
            Kind::Sums => "batch_norm_sums",
            Kind::Apply => "batch_norm_apply",
        }
    }

    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (n, c, l) = (self.n, self.c, self.l);
        let eps = self.eps as f64;
        let out = &mut *outs[0];
        let row = |t: &'_ [f64], r: usize| -> Vec<f64> { t[r * l..(r + 1) * l].to_vec() };
        match self.kind {
            Kind::Rows => {
                for r in 0..n * c {
                    let shift = ins[0].values[(r % c) * l];
                    let d: Vec<f64> = row(ins[0].values, r).iter().map(|v| v - shift).collect();
                    out[2 * r] = d.iter().sum();
                    out[2 * r + 1] = d.iter().map(|v| v * v).sum();
                }
            }
            Kind::GradRows => {
                let stats = ins[1].values;
                for r in 0..n * c {
                    let ch = r % c;
                    let rstd = 1.0 / (stats[c + ch] + eps).sqrt();
                    let (x, g) = (row(ins[0].values, r), row(ins[2].values, r));
                    out[2 * r] = g.iter().sum();
                    out[2 * r + 1] = g
                        .iter()
                        .zip(&x)
                        .map(|(g, x)| g * (x - stats[ch]) * rstd)
                        .sum();
                }
            }
            Kind::Stats | Kind::Sums => {
                let partial = ins[0].values;
                for ch in 0..c {
                    let s1: f64 = (0..n).map(|i| partial[2 * (i * c + ch)]).sum();
                    let s2: f64 = (0..n).map(|i| partial[2 * (i * c + ch) + 1]).sum();
                    if self.kind == Kind::Stats {
                        let count = (n * l) as f64;
                        let d = s1 / count;
                        out[ch] = ins[1].values[ch * l] + d;
                        out[c + ch] = (s2 / count - d * d).max(0.0);
                    } else {
                        out[ch] = s1;
                        out[c + ch] = s2;
                    }
                }
            }
            Kind::Apply => {
                let stats = ins[1].values;
                for r in 0..n * c {
                    let ch = r % c;
                    let scale = ins[2].values[ch] / (stats[c + ch] + eps).sqrt();
                    let x = &ins[0].values[r * l..(r + 1) * l];
                    for (y, x) in out[r * l..(r + 1) * l].iter_mut().zip(x) {
                        *y = (x - stats[ch]) * scale + ins[3].values[ch];
                    }
                }
            }
        }
    }

    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        let u = |v: usize| u32::try_from(v).expect("batch-norm sizes fit u32");
        let p = Params {
            n: u(self.n),
            c: u(self.c),
            l: u(self.l),
            eps: self.eps,
            mode: (self.kind == Kind::Sums) as u32,
            _pad: [0; 3],
        };
        let rows = self.n * self.c;
        match self.kind {
            Kind::Rows => Kernel::per_element(&ROWS, &p, rows),
            Kind::GradRows => Kernel::per_element(&GRAD_ROWS, &p, rows),
            Kind::Stats | Kind::Sums => Kernel::per_element(&COMBINE, &p, self.c),
            Kind::Apply => Kernel::per_element(&APPLY, &p, rows),
        }
    }

    fn differentiable(&self) -> bool {
        !matches!(self.kind, Kind::Rows | Kind::GradRows)
    }

    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let g = ctx.grad;
        let (c, count) = (self.c, (self.n * self.l) as f32);
        match self.kind {
            // The statistics of x (input 1; input 0, the row sums, carries no gradient):
            // d x = g_mean / m + g_var · 2 (x − mean) / m, the affine map with
            // w' = 2 g_var √(var + eps) / m and b' = g_mean / m.
            Kind::Stats => {
                let (x, stats) = (&ctx.inputs[1], ctx.output);
                let (gm, gv) = (
                    g.narrow(0, 0, 1).reshape(&[c]),
                    g.narrow(0, 1, 1).reshape(&[c]),
                );
                let sd = (stats.narrow(0, 1, 1).reshape(&[c]) + self.eps).sqrt();
                let w = gv * sd * (2.0 / count);
                let b = gm * (1.0 / count);
                vec![
                    None,
                    Some(self.with(Kind::Apply).record(&[x, stats, &w, &b])),
                ]
            }
            // y = x̂ w + b with x̂ = (x − mean) r, r = (var + eps)^−½:
            // d x = g w r (the affine map with mean 0 and shift 0), d mean = −w r Σ g,
            // d var = −½ w r² Σ g x̂, d w = Σ g x̂, d b = Σ g.
            Kind::Apply => {
                let (x, stats, w) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]);
                let var = stats.narrow(0, 1, 1).reshape(&[c]);
                let dx = ctx.needs[0].then(|| {
                    let centred = Tensor::concat(&[&var.zeros_like(), &var], 0).reshape(&[2, c]);
                    let zero = var.zeros_like();
                    self.with(Kind::Apply).record(&[g, &centred, w, &zero])
                });
                let sums = ctx.needs[1..]
                    .iter()
                    .any(|&n| n)
                    .then(|| self.sums(x, stats, g));
                let part = |i: usize| sums.as_ref().map(|s| s.narrow(0, i, 1).reshape(&[c]));
                let (s1, s2) = (part(0), part(1));
                let dstats = ctx.needs[1].then(|| {
                    let r = (&var + self.eps).sqrt().recip();
                    let wr = w * &r;
                    let dm = (&wr * s1.as_ref().expect("sums")).neg();
                    let dv = wr * r * s2.as_ref().expect("sums") * -0.5;
                    Tensor::concat(&[&dm, &dv], 0).reshape(&[2, c])
                });
                vec![
                    dx,
                    dstats,
                    ctx.needs[2].then(|| s2.clone().expect("sums")),
                    ctx.needs[3].then(|| s1.clone().expect("sums")),
                ]
            }
            _ => panic!("{}: second-order gradients are not supported", self.name()),
        }
    }
}

/// Channel `c`'s values of `[n, c, …]` as `[n, c, rest]`.
fn per_channel(x: &Tensor) -> Tensor {
    let s = x.shape();
    x.reshape(&[s[0], s[1], s[2..].iter().product()])
}

impl Tensor {
    /// Batch normalisation of `[n, c, …]` over every axis but the channels (PyTorch's
    /// `batch_norm`). In training the batch's mean and biased variance normalise it, and the
    /// running statistics, when given, are updated in place: r ← (1 − momentum)·r + momentum·s,
    /// with the unbiased variance for `running_var`. In evaluation the running statistics
    /// normalise it (they must be given). Then `weight` and `bias` (each `[c]`) scale and shift.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn batch_norm(
        &self,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Tensor {
        let s = self.shape().to_vec();
        assert!(
            s.len() >= 2,
            "batch_norm: input {s:?} must be at least rank 2 ([n, c, …])"
        );
        let c = s[1];
        for (what, t) in [
            ("running_mean", running_mean),
            ("running_var", running_var),
            ("weight", weight),
            ("bias", bias),
        ] {
            if let Some(t) = t {
                assert_eq!(
                    t.shape(),
                    [c],
                    "batch_norm: {what} {:?} does not match input {s:?} (want [{c}])",
                    t.shape()
                );
            }
        }
        let x = per_channel(self);
        let (n, l) = (x.shape()[0], x.shape()[2]);
        let count = n * l;
        if training {
            assert!(
                count > 1,
                "batch_norm: input {s:?} has one value per channel; training needs more"
            );
        } else {
            assert!(
                running_mean.is_some() && running_var.is_some(),
                "batch_norm: evaluation needs running_mean and running_var"
            );
        }
        let ones = || Tensor::ones(self.device(), &[c]);
        let zeros = || Tensor::zeros(self.device(), &[c]);
        let (w, b) = (
            weight.cloned().unwrap_or_else(ones),
            bias.cloned().unwrap_or_else(zeros),
        );
        if !BatchNorm::fits(n, l) {
            return self.batch_norm_composed(
                running_mean,
                running_var,
                &w,
                &b,
                training,
                momentum,
                eps,
            );
        }
        let op = BatchNorm {
            kind: Kind::Apply,
            n,
            c,
            l,
            eps,
        };
        let stats = if training {
            let stats = op.stats(&x);
            if let (Some(rm), Some(rv)) = (running_mean, running_var) {
                let _no_grad = self.device().no_grad();
                let st = stats.detach();
                let (m, v) = (
                    st.narrow(0, 0, 1).reshape(&[c]),
                    st.narrow(0, 1, 1).reshape(&[c]),
                );
                let unbiased = v * (count as f32 / (count - 1) as f32);
                rm.assign(&(rm * (1.0 - momentum) + m * momentum));
                rv.assign(&(rv * (1.0 - momentum) + unbiased * momentum));
            }
            stats
        } else {
            let (rm, rv) = (
                running_mean.expect("checked"),
                running_var.expect("checked"),
            );
            Tensor::concat(&[rm, rv], 0).reshape(&[2, c])
        };
        op.with(Kind::Apply)
            .record(&[&x, &stats, &w, &b])
            .reshape(&s)
    }

    /// [`Tensor::batch_norm`] from ordinary ops (shapes past the kernels' loop limits).
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_composed(
        &self,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        weight: &Tensor,
        bias: &Tensor,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Tensor {
        let s = self.shape().to_vec();
        let c = s[1];
        let x = per_channel(self);
        let count = x.shape()[0] * x.shape()[2];
        let column = |t: &Tensor| t.reshape(&[1, c, 1]);
        let (mean, var) = if training {
            let mean = x.mean_keepdim(2).mean_keepdim(0);
            let var = (&x - &mean).square().mean_keepdim(2).mean_keepdim(0);
            if let (Some(rm), Some(rv)) = (running_mean, running_var) {
                let _no_grad = self.device().no_grad();
                let (m, v) = (mean.detach().reshape(&[c]), var.detach().reshape(&[c]));
                let unbiased = v * (count as f32 / (count - 1) as f32);
                rm.assign(&(rm * (1.0 - momentum) + m * momentum));
                rv.assign(&(rv * (1.0 - momentum) + unbiased * momentum));
            }
            (mean, var)
        } else {
            let (Some(rm), Some(rv)) = (running_mean, running_var) else {
                panic!("batch_norm: evaluation needs running_mean and running_var")
            };
            (column(rm), column(rv))
        };
        let y = (&x - &mean) * (var + eps).sqrt().recip() * column(weight) + column(bias);
        y.reshape(&s)
    }

    /// Layer normalisation over the last `dims` axes (PyTorch's `layer_norm` with
    /// `normalized_shape` the last `dims` sizes): each sample's mean and biased variance over
    /// them normalise it, then `weight` and `bias` (of those sizes) scale and shift.
    #[track_caller]
    pub fn layer_norm(
        &self,
        dims: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Tensor {
        let s = self.shape().to_vec();
        assert!(
            dims >= 1 && dims <= s.len(),
            "layer_norm: cannot normalise the last {dims} axes of {s:?}"
        );
        let tail = &s[s.len() - dims..];
        for (what, t) in [("weight", weight), ("bias", bias)] {
            if let Some(t) = t {
                assert_eq!(
                    t.shape(),
                    tail,
                    "layer_norm: {what} {:?} does not match the normalised axes {tail:?}",
                    t.shape()
                );
            }
        }
        let width: usize = tail.iter().product();
        let x = self.reshape(&[self.numel() / width.max(1), width]);
        let mean = x.mean_keepdim(1);
        let centred = &x - &mean;
        let var = centred.square().mean_keepdim(1);
        let mut y = centred * (var + eps).sqrt().recip();
        if let Some(w) = weight {
            y = y * w.reshape(&[width]);
        }
        if let Some(b) = bias {
            y = y + b.reshape(&[width]);
        }
        y.reshape(&s)
    }
}
