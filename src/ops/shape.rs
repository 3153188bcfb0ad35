//! Shape ops: reshape and detach (views: no kernel runs), permute / broadcast_to / narrow (one
//! strided copy kernel), pad, concat, gathering and scattering rows by index, one-hot.

use crate::Tensor;
use crate::op::{BackwardCtx, Kernel, Op, Shader, pack8, shader};
use crate::shape::{self, broadcasts_to, contiguous_strides, numel, resolve_axis, split_at_axis};

static STRIDED_COPY: Shader = shader!("shape/strided_copy", "shape/strided_copy.wgsl");
static PAD: Shader = shader!("shape/pad", "shape/pad.wgsl");
static CONCAT: Shader = shader!("shape/concat", "shape/concat.wgsl");
static GATHER_ROWS: Shader = shader!("shape/gather_rows", "shape/gather_rows.wgsl");
static SCATTER_ADD_ROWS: Shader = shader!("shape/scatter_add_rows", "shape/scatter_add_rows.wgsl");
static ONE_HOT: Shader = shader!("shape/one_hot", "shape/one_hot.wgsl");

/// Same values, new shape or no gradient: the output shares input 0's storage.
struct View {
    name: &'static str,
    from: Vec<usize>,
    differentiable: bool,
}

impl Op for View {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        outs[0].copy_from_slice(ins[0]);
    }
    fn kernel(&self) -> Kernel {
        unreachable!("views run no kernel")
    }
    fn is_view(&self) -> bool {
        true
    }
    fn differentiable(&self) -> bool {
        self.differentiable
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        vec![Some(ctx.grad.reshape(&self.from))]
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    n: u32,
    rank: u32,
    offset: u32,
    _pad: u32,
    shape: [[u32; 4]; 2],
    strides: [[u32; 4]; 2],
}

/// out[idx] = x[offset + idx · strides] over the output shape.
struct StridedCopy {
    name: &'static str,
    out: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
    /// What the backward pass needs to know.
    kind: CopyKind,
}

enum CopyKind {
    Permute(Vec<usize>),
    Broadcast,
    Narrow {
        axis: usize,
        start: usize,
        total: usize,
    },
}

impl Op for StridedCopy {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        let y = &mut *outs[0];
        shape::walk(&self.out, std::slice::from_ref(&self.strides), |i, o| {
            y[i] = ins[0][self.offset + o[0]];
        });
    }
    fn kernel(&self) -> Kernel {
        let p = CopyParams {
            n: numel(&self.out) as u32,
            rank: self.out.len() as u32,
            offset: self.offset as u32,
            _pad: 0,
            shape: pack8(&self.out, 1),
            strides: pack8(&self.strides, 0),
        };
        Kernel::per_element(&STRIDED_COPY, &p, numel(&self.out))
    }
    fn swaps_last_two(&self) -> bool {
        match &self.kind {
            CopyKind::Permute(perm) => {
                let r = perm.len();
                r >= 2
                    && perm[r - 2] == r - 1
                    && perm[r - 1] == r - 2
                    && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p)
            }
            _ => false,
        }
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let g = ctx.grad;
        let gx = match &self.kind {
            CopyKind::Permute(perm) => {
                let mut inverse = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inverse[p] = i;
                }
                g.permute(&inverse)
            }
            // The tape sums the gradient back to the input's shape.
            CopyKind::Broadcast => g.clone(),
            &CopyKind::Narrow { axis, start, total } => {
                let len = self.out[axis];
                g.pad(axis as isize, start, total - start - len)
            }
        };
        vec![Some(gx)]
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PadParams {
    n: u32,
    len: u32,
    inner: u32,
    total: u32,
    start: u32,
}

struct Pad {
    outer: usize,
    len: usize,
    inner: usize,
    total: usize,
    start: usize,
    axis: usize,
}

impl Op for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        for (i, y) in outs[0].iter_mut().enumerate() {
            let k = i % self.inner;
            let j = (i / self.inner) % self.total;
            let o = i / (self.inner * self.total);
            *y = if j >= self.start && j < self.start + self.len {
                ins[0][(o * self.len + j - self.start) * self.inner + k]
            } else {
                0.0
            };
        }
    }
    fn kernel(&self) -> Kernel {
        let n = self.outer * self.total * self.inner;
        let p = PadParams {
            n: n as u32,
            len: self.len as u32,
            inner: self.inner as u32,
            total: self.total as u32,
            start: self.start as u32,
        };
        Kernel::per_element(&PAD, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        vec![Some(ctx.grad.narrow(
            self.axis as isize,
            self.start,
            self.len,
        ))]
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConcatParams {
    n: u32,
    la: u32,
    lb: u32,
    inner: u32,
}

struct Concat {
    outer: usize,
    la: usize,
    lb: usize,
    inner: usize,
    axis: usize,
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        let total = self.la + self.lb;
        for (i, y) in outs[0].iter_mut().enumerate() {
            let k = i % self.inner;
            let j = (i / self.inner) % total;
            let o = i / (self.inner * total);
            *y = if j < self.la {
                ins[0][(o * self.la + j) * self.inner + k]
            } else {
                ins[1][(o * self.lb + j - self.la) * self.inner + k]
            };
        }
    }
    fn kernel(&self) -> Kernel {
        let n = self.outer * (self.la + self.lb) * self.inner;
        let p = ConcatParams {
            n: n as u32,
            la: self.la as u32,
            lb: self.lb as u32,
            inner: self.inner as u32,
        };
        Kernel::per_element(&CONCAT, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let a = self.axis as isize;
        vec![
            Some(ctx.grad.narrow(a, 0, self.la)),
            Some(ctx.grad.narrow(a, self.la, self.lb)),
        ]
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RowsParams {
    n: u32,
    count: u32,
    width: u32,
    _pad: u32,
}

/// Whether `v` is an integer index below `n`.
fn valid_index(v: f64, n: usize) -> Option<usize> {
    (v >= 0.0 && v < n as f64 && v.fract() == 0.0).then_some(v as usize)
}

struct GatherRows {
    rows: usize,
    width: usize,
    picks: usize,
}

impl Op for GatherRows {
    fn name(&self) -> &'static str {
        "gather_rows"
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        for (i, y) in outs[0].iter_mut().enumerate() {
            *y = match valid_index(ins[1][i / self.width], self.rows) {
                Some(r) => ins[0][r * self.width + i % self.width],
                None => f64::NAN,
            };
        }
    }
    fn kernel(&self) -> Kernel {
        let n = self.picks * self.width;
        let p = RowsParams {
            n: n as u32,
            count: self.rows as u32,
            width: self.width as u32,
            _pad: 0,
        };
        Kernel::per_element(&GATHER_ROWS, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let idx = &ctx.inputs[1];
        let op = ScatterAddRows {
            rows: self.rows,
            width: self.width,
            picks: self.picks,
        };
        let g = ctx.grad.reshape(&[self.picks, self.width]);
        // Each output element loops over the picks: more than one kernel loop allows are
        // scattered in pieces, and the pieces summed.
        let scatter = |picks: usize, g: &Tensor, idx: &Tensor| {
            let op = ScatterAddRows { picks, ..op };
            Tensor::record(op, &[g, idx], vec![self.rows, self.width])
        };
        let gx = if self.picks <= crate::op::MAX_LOOP {
            scatter(self.picks, &g, idx)
        } else {
            (0..self.picks)
                .step_by(crate::op::MAX_LOOP)
                .map(|start| {
                    let len = (self.picks - start).min(crate::op::MAX_LOOP);
                    scatter(len, &g.narrow(0, start, len), &idx.narrow(0, start, len))
                })
                .reduce(|sum, part| sum.add(&part))
                .expect("more picks than one piece")
        };
        vec![Some(gx.reshape(ctx.inputs[0].shape())), None]
    }
}

#[derive(Clone, Copy)]
struct ScatterAddRows {
    rows: usize,
    width: usize,
    picks: usize,
}

impl Op for ScatterAddRows {
    fn name(&self) -> &'static str {
        "scatter_add_rows"
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        for (i, y) in outs[0].iter_mut().enumerate() {
            let (r, c) = (i / self.width, i % self.width);
            *y = (0..self.picks)
                .filter(|&m| ins[1][m] == r as f64)
                .map(|m| ins[0][m * self.width + c])
                .sum();
        }
    }
    fn kernel(&self) -> Kernel {
        let n = self.rows * self.width;
        let p = RowsParams {
            n: n as u32,
            count: self.picks as u32,
            width: self.width as u32,
            _pad: 0,
        };
        Kernel::per_element(&SCATTER_ADD_ROWS, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        vec![Some(ctx.grad.gather_rows(&ctx.inputs[1])), None]
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct OneHotParams {
    n: u32,
    classes: u32,
}

struct OneHot {
    classes: usize,
    n: usize,
}

impl Op for OneHot {
    fn name(&self) -> &'static str {
        "one_hot"
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        for (i, y) in outs[0].iter_mut().enumerate() {
            *y = match valid_index(ins[0][i / self.classes], self.classes) {
                Some(c) => (c == i % self.classes) as u8 as f64,
                None => f64::NAN,
            };
        }
    }
    fn kernel(&self) -> Kernel {
        let p = OneHotParams {
            n: self.n as u32,
            classes: self.classes as u32,
        };
        Kernel::per_element(&ONE_HOT, &p, self.n)
    }
    fn differentiable(&self) -> bool {
        false
    }
}

impl Tensor {
    /// The same values in a new shape with as many elements (no copy).
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        assert_eq!(
            numel(shape),
            self.numel(),
            "reshape: cannot view shape {:?} ({} elements) as {:?} ({} elements)",
            self.shape(),
            self.numel(),
            shape,
            numel(shape)
        );
        if shape == self.shape() {
            return self.clone();
        }
        let op = View {
            name: "reshape",
            from: self.shape().to_vec(),
            differentiable: true,
        };
        Tensor::record(op, &[self], shape.to_vec())
    }

    /// Flatten all dimensions from `axis` on into one.
    #[track_caller]
    pub fn flatten_from(&self, axis: usize) -> Tensor {
        assert!(
            axis <= self.rank(),
            "flatten_from: axis {axis} > rank of {:?}",
            self.shape()
        );
        let mut s = self.shape()[..axis].to_vec();
        s.push(numel(&self.shape()[axis..]));
        self.reshape(&s)
    }

    /// The same values cut off from the graph: no gradient flows through (no copy).
    #[track_caller]
    pub fn detach(&self) -> Tensor {
        let op = View {
            name: "detach",
            from: self.shape().to_vec(),
            differentiable: false,
        };
        Tensor::record(op, &[self], self.shape().to_vec())
    }

    /// Reorder dimensions: output dim i is input dim `perm[i]`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let mut seen = vec![false; self.rank()];
        let ok = perm.len() == self.rank()
            && perm
                .iter()
                .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        assert!(
            ok,
            "permute: {perm:?} is not a permutation of the dims of {:?}",
            self.shape()
        );
        let own = contiguous_strides(self.shape());
        let out: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        let op = StridedCopy {
            name: "permute",
            out: out.clone(),
            strides: perm.iter().map(|&p| own[p]).collect(),
            offset: 0,
            kind: CopyKind::Permute(perm.to_vec()),
        };
        Tensor::record(op, &[self], out)
    }

    /// Swap two dimensions.
    #[track_caller]
    pub fn transpose(&self, a: isize, b: isize) -> Tensor {
        let r = self.rank();
        let (Some(a), Some(b)) = (resolve_axis(a, r), resolve_axis(b, r)) else {
            panic!(
                "transpose: axes {a}, {b} out of range for shape {:?}",
                self.shape()
            )
        };
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Swap the last two dimensions. `a.matmul(&b.t())` reads `b` transposed without copying it.
    #[track_caller]
    pub fn t(&self) -> Tensor {
        assert!(
            self.rank() >= 2,
            "t: needs rank ≥ 2, got shape {:?}",
            self.shape()
        );
        self.transpose(-2, -1)
    }

    /// Repeat along broadcast dimensions to `shape` (NumPy rules).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        assert!(
            broadcasts_to(self.shape(), shape),
            "broadcast_to: shape {:?} cannot be broadcast to {:?}",
            self.shape(),
            shape
        );
        if shape == self.shape() {
            return self.clone();
        }
        let op = StridedCopy {
            name: "broadcast_to",
            out: shape.to_vec(),
            strides: shape::broadcast_strides(self.shape(), shape),
            offset: 0,
            kind: CopyKind::Broadcast,
        };
        Tensor::record(op, &[self], shape.to_vec())
    }

    /// Elements `start..start + len` along `axis`.
    #[track_caller]
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Tensor {
        let a = self.axis_of("narrow", axis);
        let total = self.shape()[a];
        assert!(
            start + len <= total,
            "narrow: range {start}..{} is outside axis {axis} of shape {:?}",
            start + len,
            self.shape()
        );
        if start == 0 && len == total {
            return self.clone();
        }
        let own = contiguous_strides(self.shape());
        let mut out = self.shape().to_vec();
        out[a] = len;
        let op = StridedCopy {
            name: "narrow",
            out: out.clone(),
            strides: own.clone(),
            offset: start * own[a],
            kind: CopyKind::Narrow {
                axis: a,
                start,
                total,
            },
        };
        Tensor::record(op, &[self], out)
    }

    /// Zeros before and after along `axis` (the gradient of `narrow`).
    #[track_caller]
    pub fn pad(&self, axis: isize, before: usize, after: usize) -> Tensor {
        let a = self.axis_of("pad", axis);
        let (outer, len, inner) = split_at_axis(self.shape(), a);
        let mut out = self.shape().to_vec();
        out[a] = len + before + after;
        let op = Pad {
            outer,
            len,
            inner,
            total: out[a],
            start: before,
            axis: a,
        };
        Tensor::record(op, &[self], out)
    }

    /// Join tensors along `axis`; all other dimensions must agree.
    #[track_caller]
    pub fn concat(parts: &[&Tensor], axis: isize) -> Tensor {
        assert!(!parts.is_empty(), "concat: no tensors given");
        let mut acc = parts[0].clone();
        for p in &parts[1..] {
            acc = acc.concat2(p, axis);
        }
        acc
    }

    #[track_caller]
    fn concat2(&self, other: &Tensor, axis: isize) -> Tensor {
        let a = self.axis_of("concat", axis);
        let same_rest = self.rank() == other.rank()
            && (0..self.rank()).all(|d| d == a || self.shape()[d] == other.shape()[d]);
        assert!(
            same_rest,
            "concat: shapes {:?} and {:?} differ outside axis {axis}",
            self.shape(),
            other.shape()
        );
        let (outer, la, inner) = split_at_axis(self.shape(), a);
        let lb = other.shape()[a];
        let mut out = self.shape().to_vec();
        out[a] = la + lb;
        Tensor::record(
            Concat {
                outer,
                la,
                lb,
                inner,
                axis: a,
            },
            &[self, other],
            out,
        )
    }

    /// Rows of `self` (shape `[rows, ...]`) picked by `index` (shape `[k]`, integer values):
    /// result [k, ...]. An index out of range gives a row of NaN.
    #[track_caller]
    pub fn gather_rows(&self, index: &Tensor) -> Tensor {
        assert!(
            self.rank() >= 1 && index.rank() == 1,
            "gather_rows: needs a tensor of rank ≥ 1 and an index of rank 1, got {:?} and {:?}",
            self.shape(),
            index.shape()
        );
        let rows = self.shape()[0];
        let width = numel(&self.shape()[1..]);
        let picks = index.shape()[0];
        let mut out = self.shape().to_vec();
        out[0] = picks;
        Tensor::record(GatherRows { rows, width, picks }, &[self, index], out)
    }

    /// `[n]` integer labels as `[n, classes]` rows of 0 and 1 (a bad label gives a NaN row).
    #[track_caller]
    pub fn one_hot(&self, classes: usize) -> Tensor {
        assert_eq!(
            self.rank(),
            1,
            "one_hot: labels must have rank 1, got shape {:?}",
            self.shape()
        );
        let n = self.numel() * classes;
        Tensor::record(OneHot { classes, n }, &[self], vec![self.numel(), classes])
    }
}
