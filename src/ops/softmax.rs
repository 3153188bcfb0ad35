//! Row-wise ops over the last axis: softmax, log-softmax, cross-entropy from integer labels (all
//! max-subtracted, finite for any logits), their backward kernels, and the standard losses.

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, Op, Shader, shader};

static SOFTMAX: Shader = shader!("softmax/softmax", "softmax/softmax.wgsl");
static LOG_SOFTMAX: Shader = shader!("softmax/log_softmax", "softmax/log_softmax.wgsl");
static SOFTMAX_BACKWARD: Shader =
    shader!("softmax/softmax_backward", "softmax/softmax_backward.wgsl");
static LOG_SOFTMAX_BACKWARD: Shader = shader!(
    "softmax/log_softmax_backward",
    "softmax/log_softmax_backward.wgsl"
);
static CROSS_ENTROPY: Shader = shader!("softmax/cross_entropy", "softmax/cross_entropy.wgsl");
static CROSS_ENTROPY_BACKWARD: Shader = shader!(
    "softmax/cross_entropy_backward",
    "softmax/cross_entropy_backward.wgsl"
);

/// Invocations per workgroup of the row kernels.
const ROWS_PER_GROUP: u64 = 64;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Softmax,
    LogSoftmax,
    SoftmaxBackward,
    LogSoftmaxBackward,
    CrossEntropy,
    CrossEntropyBackward,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
}

struct RowOp {
    kind: Kind,
    rows: usize,
    cols: usize,
}

/// (max, ln Σ e^(x - max)) of one row.
fn max_lse(row: &[f64]) -> (f64, f64) {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
    (m, s.ln())
}

fn label_index(v: f64, cols: usize) -> Option<usize> {
    (v >= 0.0 && v < cols as f64 && v.fract() == 0.0).then_some(v as usize)
}

impl Op for RowOp {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Softmax => "softmax",
            Kind::LogSoftmax => "log_softmax",
            Kind::SoftmaxBackward => "softmax_backward",
            Kind::LogSoftmaxBackward => "log_softmax_backward",
            Kind::CrossEntropy => "cross_entropy",
            Kind::CrossEntropyBackward => "cross_entropy_backward",
        }
    }

    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let ins: Vec<&[f64]> = ins.iter().map(|i| i.values).collect();
        let c = self.cols;
        for r in 0..self.rows {
            let row = |t: &[f64]| -> Vec<f64> { t[r * c..(r + 1) * c].to_vec() };
            match self.kind {
                Kind::Softmax | Kind::LogSoftmax => {
                    let x = row(ins[0]);
                    let (m, lse) = max_lse(&x);
                    for (j, &v) in x.iter().enumerate() {
                        let ls = v - m - lse;
                        outs[0][r * c + j] = if self.kind == Kind::Softmax {
                            ls.exp()
                        } else {
                            ls
                        };
                    }
                }
                Kind::SoftmaxBackward => {
                    let (y, dy) = (row(ins[0]), row(ins[1]));
                    let dot: f64 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
                    for j in 0..c {
                        outs[0][r * c + j] = y[j] * (dy[j] - dot);
                    }
                }
                Kind::LogSoftmaxBackward => {
                    let (y, dy) = (row(ins[0]), row(ins[1]));
                    let s: f64 = dy.iter().sum();
                    for j in 0..c {
                        outs[0][r * c + j] = dy[j] - y[j].exp() * s;
                    }
                }
                Kind::CrossEntropy => {
                    let x = row(ins[0]);
                    let (m, lse) = max_lse(&x);
                    outs[0][r] = match label_index(ins[1][r], c) {
                        Some(l) => m + lse - x[l],
                        None => f64::NAN,
                    };
                }
                Kind::CrossEntropyBackward => {
                    let x = row(ins[0]);
                    let (m, lse) = max_lse(&x);
                    let g = ins[2][r];
                    for (j, &v) in x.iter().enumerate() {
                        let hit = if ins[1][r] == j as f64 { 1.0 } else { 0.0 };
                        outs[0][r * c + j] = g * ((v - m - lse).exp() - hit);
                    }
                }
            }
        }
    }

    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        let shader = match self.kind {
            Kind::Softmax => &SOFTMAX,
            Kind::LogSoftmax => &LOG_SOFTMAX,
            Kind::SoftmaxBackward => &SOFTMAX_BACKWARD,
            Kind::LogSoftmaxBackward => &LOG_SOFTMAX_BACKWARD,
            Kind::CrossEntropy => &CROSS_ENTROPY,
            Kind::CrossEntropyBackward => &CROSS_ENTROPY_BACKWARD,
        };
        let p = Params {
            rows: self.rows as u32,
            cols: self.cols as u32,
        };
        let groups = if self.cols == 0 {
            0
        } else {
            (self.rows as u64).div_ceil(ROWS_PER_GROUP)
        };
        Kernel::new(shader, &p, groups)
    }

    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (y, g) = (ctx.output, ctx.grad);
        let shape = ctx.inputs[0].shape().to_vec();
        let rows = |kind| RowOp {
            kind,
            rows: self.rows,
            cols: self.cols,
        };
        match self.kind {
            Kind::Softmax => vec![Some(Tensor::record(
                rows(Kind::SoftmaxBackward),
                &[y, g],
                shape,
            ))],
            Kind::LogSoftmax => {
                vec![Some(Tensor::record(
                    rows(Kind::LogSoftmaxBackward),
                    &[y, g],
                    shape,
                ))]
            }
            Kind::CrossEntropy => {
                let (x, labels) = (&ctx.inputs[0], &ctx.inputs[1]);
                let op = rows(Kind::CrossEntropyBackward);
                vec![Some(Tensor::record(op, &[x, labels, g], shape)), None]
            }
            _ => panic!("{}: second-order gradients are not supported", self.name()),
        }
    }
}

impl Tensor {
    #[track_caller]
    fn rows_op(&self, kind: Kind, name: &str) -> Tensor {
        assert!(self.rank() >= 1, "{name}: needs rank ≥ 1, got a scalar");
        let cols = self.shape()[self.rank() - 1];
        let rows = self.numel().checked_div(cols).unwrap_or(0);
        if cols > crate::op::MAX_LOOP {
            return self.wide_rows(kind);
        }
        Tensor::record(RowOp { kind, rows, cols }, &[self], self.shape().to_vec())
    }

    /// Softmax and log-softmax of rows too wide for one kernel loop, from ordinary ops (the
    /// reductions are chunked). The row maximum is a constant for the gradient: both functions
    /// are invariant to shifting a row.
    fn wide_rows(&self, kind: Kind) -> Tensor {
        let shifted = self.sub(&self.max_keepdim(-1).detach());
        match kind {
            Kind::Softmax => {
                let e = shifted.exp();
                e.div(&e.sum_keepdim(-1))
            }
            _ => shifted.sub(&shifted.exp().sum_keepdim(-1).log()),
        }
    }

    /// Softmax over the last axis.
    #[track_caller]
    pub fn softmax(&self) -> Tensor {
        self.rows_op(Kind::Softmax, "softmax")
    }

    /// Log-softmax over the last axis (stable for any logits).
    #[track_caller]
    pub fn log_softmax(&self) -> Tensor {
        self.rows_op(Kind::LogSoftmax, "log_softmax")
    }

    /// Per-row cross-entropy of logits `[n, classes]` against integer labels `[n]`: shape `[n]`.
    #[track_caller]
    pub fn cross_entropy_rows(&self, labels: &Tensor) -> Tensor {
        assert!(
            self.rank() == 2 && labels.shape() == [self.shape()[0]],
            "cross_entropy: logits must be [n, classes] and labels [n], got {:?} and {:?}",
            self.shape(),
            labels.shape()
        );
        let (rows, cols) = (self.shape()[0], self.shape()[1]);
        if cols > crate::op::MAX_LOOP {
            let picked = self.wide_rows(Kind::LogSoftmax).mul(&labels.one_hot(cols));
            return picked.sum(-1).neg();
        }
        let op = RowOp {
            kind: Kind::CrossEntropy,
            rows,
            cols,
        };
        Tensor::record(op, &[self, labels], vec![rows])
    }

    /// Mean cross-entropy of logits `[n, classes]` against integer labels `[n]` (a scalar).
    #[track_caller]
    pub fn cross_entropy(&self, labels: &Tensor) -> Tensor {
        self.cross_entropy_rows(labels).mean(0)
    }

    /// Mean squared error, mean((self − target)²).
    #[track_caller]
    pub fn mse(&self, target: &Tensor) -> Tensor {
        assert_eq!(
            self.shape(),
            target.shape(),
            "mse: prediction {:?} and target {:?} differ in shape",
            self.shape(),
            target.shape()
        );
        self.sub(target).square().mean_all()
    }

    /// Mean binary cross-entropy of logits against targets in [0, 1] (stable for any logit).
    #[track_caller]
    pub fn bce_with_logits(&self, target: &Tensor) -> Tensor {
        assert_eq!(
            self.shape(),
            target.shape(),
            "bce_with_logits: logits {:?} and targets {:?} differ in shape",
            self.shape(),
            target.shape()
        );
        self.bce_logits_elementwise(target).mean_all()
    }
}
