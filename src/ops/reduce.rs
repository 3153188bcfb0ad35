//! Reductions along one axis (sum, mean, max, min, argmax, variance) and over all elements.
//! A long axis with few outputs is reduced in parts first, then the partial results, so every
//! pass keeps many invocations busy. Parts are contiguous chunks of about √len elements, except
//! for sums on hardware GPUs: there they are 64 elements each, interleaved in groups of 8 so
//! that neighbouring invocations read neighbouring addresses (see `reduce/_axis.wgsl`), and the
//! passes go on until 256 values are left. On lavapipe the long contiguous chunks measure
//! faster. Maxima and minima keep one partition on
//! every device, because how their gradient shares ties depends on it. Every loop runs in a
//! fixed order, so results repeat bit for bit on one device.

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, Op, Shader, shader};
use crate::shape::{numel, resolve_axis, split_at_axis};

static SUM: Shader = shader!("reduce/sum", "reduce/_axis.wgsl", "reduce/sum.wgsl");
static MAX: Shader = shader!("reduce/max", "reduce/_axis.wgsl", "reduce/max.wgsl");
static MIN: Shader = shader!("reduce/min", "reduce/_axis.wgsl", "reduce/min.wgsl");
static ARGMAX: Shader = shader!("argmax", "argmax.wgsl");

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Sum,
    Max,
    Min,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    parts: u32,
    chunk: u32,
    width: u32,
    scale: f32,
}

/// Reduce `x` seen as [outer, len, inner] around `axis` to [outer, parts, inner]. The axis is
/// cut into blocks of `width`·`chunk` elements shared by `width` parts in turn: part q, at lane
/// l = q % width, holds the elements (q − l)·chunk + l + i·width of its block (parts is a
/// multiple of width).
#[derive(Clone)]
struct Reduce {
    kind: Kind,
    axis: usize,
    parts: usize,
    chunk: usize,
    width: usize,
    scale: f32,
}

/// Axes longer than this, over fewer outputs than [`FEW_OUTPUTS`], are reduced in two passes.
const LONG_AXIS: usize = 4096;
const FEW_OUTPUTS: usize = 256;
/// Elements each invocation of a first-pass sum folds on a hardware GPU (at most): few enough
/// that a long axis fills the GPU, enough that the passes stay few.
const GPU_PART_LEN: usize = 64;
/// Parts sharing a block in a first-pass sum on a hardware GPU.
const GPU_WIDTH: usize = 8;
/// On a hardware GPU, sums over axes longer than this (with few outputs) take more than one pass:
/// a single invocation walking a long axis waits on memory at every step.
const GPU_LONG_AXIS: usize = 256;

impl Reduce {
    /// The first of several passes over a long axis: parts of at most `GPU_PART_LEN` elements
    /// interleaved in groups of `GPU_WIDTH` if `interleaved`, otherwise contiguous chunks of
    /// about √len. Its sums are partial (scale 1).
    fn first_pass(kind: Kind, axis: usize, len: usize, interleaved: bool) -> Reduce {
        let (parts, chunk, width) = if interleaved {
            let blocks = len.div_ceil(GPU_WIDTH * GPU_PART_LEN);
            (
                blocks * GPU_WIDTH,
                len.div_ceil(blocks * GPU_WIDTH),
                GPU_WIDTH,
            )
        } else {
            let chunk = ((len as f64).sqrt().ceil() as usize).clamp(1024, crate::op::MAX_LOOP);
            (len.div_ceil(chunk), chunk, 1)
        };
        Reduce {
            kind,
            axis,
            parts,
            chunk,
            width,
            scale: 1.0,
        }
    }

    /// The elements of part q of an axis of `len`: a range of its block stepped by the width.
    fn part(&self, q: usize, len: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        let (lane, block) = (q % self.width, q - q % self.width);
        let end = ((block + self.width) * self.chunk).min(len);
        (block * self.chunk + lane..end).step_by(self.width)
    }

    /// Broadcast a tensor holding one value per part back over the elements of each part of an
    /// input of `input_shape`.
    fn expand(&self, t: &Tensor, input_shape: &[usize]) -> Tensor {
        let (outer, len, inner) = split_at_axis(input_shape, self.axis);
        let (blocks, w) = (self.parts / self.width, self.width);
        let wide = t
            .reshape(&[outer, blocks, 1, w, inner])
            .broadcast_to(&[outer, blocks, self.chunk, w, inner])
            .reshape(&[outer, self.parts * self.chunk, inner]);
        let wide = if self.parts * self.chunk > len {
            wide.narrow(1, 0, len)
        } else {
            wide
        };
        wide.reshape(input_shape)
    }
}

impl Op for Reduce {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Sum => "sum",
            Kind::Max => "max",
            Kind::Min => "min",
        }
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let x = ins[0].values;
        let (outer, len, inner) = split_at_axis(&ins[0].layout.shape, self.axis);
        for o in 0..outer {
            for q in 0..self.parts {
                for k in 0..inner {
                    let vals = self.part(q, len).map(|j| x[(o * len + j) * inner + k]);
                    let v = match self.kind {
                        Kind::Sum => vals.sum::<f64>() * self.scale as f64,
                        Kind::Max => vals.fold(f64::NEG_INFINITY, |a, b| {
                            if a.is_nan() || b.is_nan() {
                                f64::NAN
                            } else {
                                a.max(b)
                            }
                        }),
                        Kind::Min => vals.fold(f64::INFINITY, |a, b| {
                            if a.is_nan() || b.is_nan() {
                                f64::NAN
                            } else {
                                a.min(b)
                            }
                        }),
                    };
                    outs[0][(o * self.parts + q) * inner + k] = v;
                }
            }
        }
    }
    fn kernel(&self, ins: &[&Layout], _: &Layout) -> Kernel {
        let shader = match self.kind {
            Kind::Sum => &SUM,
            Kind::Max => &MAX,
            Kind::Min => &MIN,
        };
        let (outer, len, inner) = split_at_axis(&ins[0].shape, self.axis);
        let p = Params {
            outer: outer as u32,
            len: len as u32,
            inner: inner as u32,
            parts: self.parts as u32,
            chunk: self.chunk as u32,
            width: self.width as u32,
            scale: self.scale,
        };
        Kernel::per_element(shader, &p, outer * self.parts * inner)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let x = &ctx.inputs[0];
        let g = self.expand(ctx.grad, x.shape());
        let gx = match self.kind {
            Kind::Sum if self.scale == 1.0 => g,
            Kind::Sum => g * self.scale,
            Kind::Max | Kind::Min => {
                // Ties share the gradient equally.
                let hit = x.eq(&self.expand(ctx.output, x.shape()));
                let count = Reduce {
                    kind: Kind::Sum,
                    scale: 1.0,
                    ..self.clone()
                };
                let count = Tensor::record(count, &[&hit], ctx.output.shape().to_vec());
                g.mul(&hit).div(&self.expand(&count, x.shape()))
            }
        };
        vec![Some(gx)]
    }
}

struct ArgMax {
    axis: usize,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ArgMaxParams {
    outer: u32,
    len: u32,
    inner: u32,
    _pad: u32,
}

impl Op for ArgMax {
    fn name(&self) -> &'static str {
        "argmax"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (outer, len, inner) = split_at_axis(&ins[0].layout.shape, self.axis);
        for o in 0..outer {
            for k in 0..inner {
                let at = |j: usize| ins[0].values[(o * len + j) * inner + k];
                let mut best = 0;
                for j in 1..len {
                    if !at(best).is_nan() && (at(j) > at(best) || at(j).is_nan()) {
                        best = j;
                    }
                }
                outs[0][o * inner + k] = best as f64;
            }
        }
    }
    fn kernel(&self, ins: &[&Layout], _: &Layout) -> Kernel {
        let (outer, len, inner) = split_at_axis(&ins[0].shape, self.axis);
        let p = ArgMaxParams {
            outer: outer as u32,
            len: len as u32,
            inner: inner as u32,
            _pad: 0,
        };
        Kernel::per_element(&ARGMAX, &p, outer * inner)
    }
    fn differentiable(&self) -> bool {
        false
    }
}

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

impl Tensor {
    /// `axis` resolved against this tensor's rank; panics naming `op` if out of range.
    #[track_caller]
    pub(crate) fn axis_of(&self, op: &str, axis: isize) -> usize {
        match resolve_axis(axis, self.rank()) {
            Some(a) => a,
            None => panic!(
                "{op}: axis {axis} out of range for shape {:?}",
                self.shape()
            ),
        }
    }

    #[track_caller]
    fn reduce(&self, kind: Kind, name: &str, axis: isize, keepdim: bool, scale: f32) -> Tensor {
        let axis = self.axis_of(name, axis);
        let (outer, len, inner) = split_at_axis(self.shape(), axis);
        let out_shape = reduced_shape(self.shape(), axis, keepdim);
        let interleaved = kind == Kind::Sum && self.device().is_hardware_gpu();
        let long = if interleaved {
            GPU_LONG_AXIS
        } else {
            LONG_AXIS
        };
        if (len > long && outer * inner < FEW_OUTPUTS) || len > crate::op::MAX_LOOP {
            let partial = Reduce::first_pass(kind, axis, len, interleaved);
            let parts = partial.parts;
            let partial = Tensor::record(partial, &[self], vec![outer, parts, inner]);
            return partial
                .reduce(kind, name, 1, false, scale)
                .reshape(&out_shape);
        }
        let op = Reduce {
            kind,
            axis,
            parts: 1,
            chunk: len.max(1),
            width: 1,
            scale,
        };
        Tensor::record(op, &[self], out_shape)
    }

    /// Sum along `axis` (negative counts from the end), which is removed.
    #[track_caller]
    pub fn sum(&self, axis: isize) -> Tensor {
        self.reduce(Kind::Sum, "sum", axis, false, 1.0)
    }

    /// Sum along `axis`, kept with length 1 (PyTorch's `keepdim=True`).
    #[track_caller]
    pub fn sum_keepdim(&self, axis: isize) -> Tensor {
        self.reduce(Kind::Sum, "sum", axis, true, 1.0)
    }

    /// Mean along `axis`, which is removed (NaN for an empty axis).
    #[track_caller]
    pub fn mean(&self, axis: isize) -> Tensor {
        self.mean_dim(axis, false)
    }

    /// Mean along `axis`, kept with length 1.
    #[track_caller]
    pub fn mean_keepdim(&self, axis: isize) -> Tensor {
        self.mean_dim(axis, true)
    }

    #[track_caller]
    fn mean_dim(&self, axis: isize, keepdim: bool) -> Tensor {
        let len = self.dim_for("mean", axis);
        self.reduce(Kind::Sum, "mean", axis, keepdim, 1.0 / len as f32)
    }

    /// Maximum along `axis`, which is removed (−inf for an empty axis; NaN if any element is
    /// NaN). Tied maxima share the gradient equally.
    #[track_caller]
    pub fn max(&self, axis: isize) -> Tensor {
        self.reduce(Kind::Max, "max", axis, false, 1.0)
    }

    /// Maximum along `axis`, kept with length 1.
    #[track_caller]
    pub fn max_keepdim(&self, axis: isize) -> Tensor {
        self.reduce(Kind::Max, "max", axis, true, 1.0)
    }

    /// Minimum along `axis`, which is removed (+inf for an empty axis).
    #[track_caller]
    pub fn min(&self, axis: isize) -> Tensor {
        self.reduce(Kind::Min, "min", axis, false, 1.0)
    }

    /// Minimum along `axis`, kept with length 1.
    #[track_caller]
    pub fn min_keepdim(&self, axis: isize) -> Tensor {
        self.reduce(Kind::Min, "min", axis, true, 1.0)
    }

    /// Index of the first maximum along `axis`, which is removed, as f32 (no gradient).
    #[track_caller]
    pub fn argmax(&self, axis: isize) -> Tensor {
        self.argmax_dim(axis, false)
    }

    /// Index of the first maximum along `axis`, kept with length 1.
    #[track_caller]
    pub fn argmax_keepdim(&self, axis: isize) -> Tensor {
        self.argmax_dim(axis, true)
    }

    #[track_caller]
    fn argmax_dim(&self, axis: isize, keepdim: bool) -> Tensor {
        let a = self.axis_of("argmax", axis);
        let len = self.shape()[a];
        assert!(
            len > 0,
            "argmax: axis {axis} of shape {:?} is empty",
            self.shape()
        );
        let out = reduced_shape(self.shape(), a, keepdim);
        if len > crate::op::MAX_LOOP {
            // Too long for one kernel loop: the smallest index where the (chunked) maximum is hit.
            assert!(
                len <= 1 << 24,
                "argmax: axis {axis} of shape {:?} is longer than 2^24 (indices are f32)",
                self.shape()
            );
            let x = self.detach();
            let dev = self.device();
            let hit = x.eq(&x.max_keepdim(a as isize));
            let mut iota_shape = vec![len];
            iota_shape.extend(std::iter::repeat_n(1, self.rank() - a - 1));
            let iota = Tensor::from_vec(dev, (0..len).map(|i| i as f32).collect(), &iota_shape)
                .expect("the shape holds len values");
            let never = Tensor::scalar(dev, f32::INFINITY);
            let first = hit.where_cond(&iota, &never);
            let first = if keepdim {
                first.min_keepdim(a as isize)
            } else {
                first.min(a as isize)
            };
            return first.detach();
        }
        Tensor::record(ArgMax { axis: a }, &[self], out)
    }

    /// Population variance along `axis`, which is removed (divides by n, PyTorch's
    /// `correction=0`): mean((x − mean)²).
    #[track_caller]
    pub fn var(&self, axis: isize) -> Tensor {
        let mu = self.mean_keepdim(axis);
        (self - &mu).square().mean(axis)
    }

    /// Population variance along `axis`, kept with length 1.
    #[track_caller]
    pub fn var_keepdim(&self, axis: isize) -> Tensor {
        let mu = self.mean_keepdim(axis);
        (self - &mu).square().mean_keepdim(axis)
    }

    /// Sum of all elements (a scalar; 0 for an empty tensor).
    #[track_caller]
    pub fn sum_all(&self) -> Tensor {
        self.reshape(&[self.numel()]).sum(0)
    }

    /// Mean of all elements.
    #[track_caller]
    pub fn mean_all(&self) -> Tensor {
        self.reshape(&[self.numel()]).mean(0)
    }

    /// Maximum of all elements.
    #[track_caller]
    pub fn max_all(&self) -> Tensor {
        self.reshape(&[self.numel()]).max(0)
    }

    #[track_caller]
    fn dim_for(&self, op: &str, axis: isize) -> usize {
        self.shape()[self.axis_of(op, axis)]
    }

    /// Sum over broadcast dimensions so the result has `shape` (the inverse of broadcasting).
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        assert!(
            crate::shape::broadcasts_to(shape, self.shape()),
            "sum_to: shape {:?} does not broadcast to {:?}",
            shape,
            self.shape()
        );
        let lead = self.rank() - shape.len();
        let mut t = if lead > 0 {
            let rest = &self.shape()[lead..];
            self.reshape(&[&[numel(&self.shape()[..lead])], rest].concat())
                .sum(0)
        } else {
            self.clone()
        };
        for (d, &n) in shape.iter().enumerate() {
            if n == 1 && t.shape()[d] != 1 {
                t = t.sum_keepdim(d as isize);
            }
        }
        t.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    /// The interleaved first pass that long sums take on hardware GPUs, run on whatever adapter
    /// is here: every element lies in exactly one part, the kernel agrees with the reference,
    /// and each element's gradient comes from its own part.
    #[test]
    fn interleaved_parts_cover_the_axis_once_and_match_the_reference() {
        let Some(gpu) = crate::testing::gpu() else {
            return;
        };
        for (outer, len, inner) in [(1, 70_001, 1), (2, 4097, 3), (1, 16_384, 1)] {
            let op = Reduce::first_pass(Kind::Sum, 1, len, true);
            let parts = op.parts;
            let mut owner = vec![usize::MAX; len];
            for q in 0..parts {
                for j in op.part(q, len) {
                    assert_eq!(
                        owner[j],
                        usize::MAX,
                        "len {len}: element {j} is in two parts"
                    );
                    owner[j] = q;
                }
            }
            assert!(
                owner.iter().all(|&q| q < parts),
                "len {len}: an element is in no part"
            );

            // The gradient of Σ w·partial at element (o, j, k) is w[o, part of j, k].
            let run = |dev: &Device| {
                dev.manual_seed(3);
                let x = Tensor::uniform(dev, &[outer, len, inner], -1.0, 1.0).requires_grad_();
                let w = Tensor::uniform(dev, &[outer, parts, inner], -1.0, 1.0);
                let partial = Tensor::record(op.clone(), &[&x], vec![outer, parts, inner]);
                let grads = partial.mul(&w).sum_all().backward();
                let values = |t: &Tensor| t.to_vec().expect("values");
                (values(&partial), values(grads.wrt(&x)), values(&w))
            };
            let (want, _, w) = run(&Device::cpu());
            let (got, grad, _) = run(&gpu);
            let (i, err) = crate::testing::worst(got.iter().zip(&want).map(|(g, w)| (g - w).abs()));
            assert!(
                err < 1e-4,
                "len {len}: part sums differ at {i}: got {}, want {} (error {err})",
                got[i],
                want[i]
            );
            for (e, g) in grad.iter().enumerate() {
                let (o, j, k) = (e / (len * inner), e / inner % len, e % inner);
                let want = w[(o * parts + owner[j]) * inner + k];
                assert_eq!(*g, want, "len {len}: gradient at ({o}, {j}, {k})");
            }
        }
    }
}
