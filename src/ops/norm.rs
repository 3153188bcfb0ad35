//! Normalisation, as PyTorch's `batch_norm` and `layer_norm`. Batch norm has its own kernels:
//! the channel statistics (one workgroup per channel), the per-channel affine map, and the
//! channel sums of its backward pass; each backward rule is written with them, so a training
//! step's batch norm is a handful of dispatches. Shapes past their loop limits, and layer norm,
//! are written with ordinary ops.

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, MAX_LOOP, Op, Shader, shader};

static STATS: Shader = shader!(
    "norm/batch_norm_stats",
    "norm/_batch_norm.wgsl",
    "norm/batch_norm_stats.wgsl"
);
static REDUCE: Shader = shader!(
    "norm/batch_norm_reduce",
    "norm/_batch_norm.wgsl",
    "norm/batch_norm_reduce.wgsl"
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
}

/// Which batch-norm kernel, over x `[n, c, l]`.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// (x) → stats `[2, c]`: mean and biased variance per channel.
    Stats,
    /// (x, stats, g) → `[2, c]`: Σ g and Σ g·x̂ per channel.
    Reduce,
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
            _ => vec![2, self.c],
        };
        Tensor::record(self, inputs, shape)
    }

    /// Whether the kernels' loops fit: a reduction loops n·⌈l/256⌉ times, an affine row l.
    fn fits(n: usize, l: usize) -> bool {
        n * l.div_ceil(256) + n <= MAX_LOOP && l <= MAX_LOOP
    }
}

impl Op for BatchNorm {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Stats => "batch_norm_stats",
            Kind::Reduce => "batch_norm_reduce",
            Kind::Apply => "batch_norm_apply",
        }
    }

    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (n, c, l) = (self.n, self.c, self.l);
        let at = |i: usize, ch: usize, j: usize| (i * c + ch) * l + j;
        let count = (n * l) as f64;
        let eps = self.eps as f64;
        let out = &mut *outs[0];
        for ch in 0..c {
            let values = |t: &[f64]| -> Vec<f64> {
                (0..n)
                    .flat_map(|i| (0..l).map(move |j| (i, j)))
                    .map(|(i, j)| t[at(i, ch, j)])
                    .collect()
            };
            match self.kind {
                Kind::Stats => {
                    let x = values(ins[0].values);
                    let mean = x.iter().sum::<f64>() / count;
                    out[ch] = mean;
                    out[c + ch] = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
                }
                Kind::Reduce => {
                    let (x, g) = (values(ins[0].values), values(ins[2].values));
                    let (mean, var) = (ins[1].values[ch], ins[1].values[c + ch]);
                    let r = 1.0 / (var + eps).sqrt();
                    out[ch] = g.iter().sum();
                    out[c + ch] = g.iter().zip(&x).map(|(g, x)| g * (x - mean) * r).sum();
                }
                Kind::Apply => {
                    let (mean, var) = (ins[1].values[ch], ins[1].values[c + ch]);
                    let scale = ins[2].values[ch] / (var + eps).sqrt();
                    for i in 0..n {
                        for j in 0..l {
                            let e = at(i, ch, j);
                            out[e] = (ins[0].values[e] - mean) * scale + ins[3].values[ch];
                        }
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
        };
        match self.kind {
            Kind::Stats => Kernel::new(&STATS, &p, self.c as u64),
            Kind::Reduce => Kernel::new(&REDUCE, &p, self.c as u64),
            Kind::Apply => Kernel::per_element(&APPLY, &p, self.n * self.c),
        }
    }

    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (x, g) = (&ctx.inputs[0], ctx.grad);
        let (c, count) = (self.c, (self.n * self.l) as f32);
        match self.kind {
            // d x = g_mean / m + g_var · 2 (x − mean) / m: the affine map with
            // w' = 2 g_var √(var + eps) / m and b' = g_mean / m.
            Kind::Stats => {
                let stats = ctx.output;
                let (gm, gv) = (
                    g.narrow(0, 0, 1).reshape(&[c]),
                    g.narrow(0, 1, 1).reshape(&[c]),
                );
                let sd = (stats.narrow(0, 1, 1).reshape(&[c]) + self.eps).sqrt();
                let w = gv * sd * (2.0 / count);
                let b = gm * (1.0 / count);
                vec![Some(self.with(Kind::Apply).record(&[x, stats, &w, &b]))]
            }
            // y = x̂ w + b with x̂ = (x − mean) r, r = (var + eps)^−½:
            // d x = g w r (the affine map with mean 0 and shift 0), d mean = −w r Σ g,
            // d var = −½ w r² Σ g x̂, d w = Σ g x̂, d b = Σ g.
            Kind::Apply => {
                let (stats, w) = (&ctx.inputs[1], &ctx.inputs[2]);
                let var = stats.narrow(0, 1, 1).reshape(&[c]);
                let dx = ctx.needs[0].then(|| {
                    let centred = Tensor::concat(&[&var.zeros_like(), &var], 0).reshape(&[2, c]);
                    let zero = var.zeros_like();
                    self.with(Kind::Apply).record(&[g, &centred, w, &zero])
                });
                let sums = ctx.needs[1..]
                    .iter()
                    .any(|&n| n)
                    .then(|| self.with(Kind::Reduce).record(&[x, stats, g]));
                let (s1, s2) = match &sums {
                    Some(s) => (
                        Some(s.narrow(0, 0, 1).reshape(&[c])),
                        Some(s.narrow(0, 1, 1).reshape(&[c])),
                    ),
                    None => (None, None),
                };
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
            Kind::Reduce => panic!("batch_norm_reduce: second-order gradients are not supported"),
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
            kind: Kind::Stats,
            n,
            c,
            l,
            eps,
        };
        let stats = if training {
            let stats = op.record(&[&x]);
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
