//! Shape ops. Views share their source's storage and change only its layout — `reshape` (of a
//! contiguous tensor), `detach`, `permute` / `transpose` / `t`, `broadcast_to` and `narrow`: no
//! kernel runs, no buffer is allocated. `contiguous()` is the one strided copy
//! (`shape/strided_copy.wgsl`), made when an op that cannot read strides is given a view. Then
//! the copies: `pad`, `concat`, gathering and scattering rows by index, one-hot.

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, Op, Shader, pack8, shader};
use crate::shape::{broadcasts_to, numel, resolve_axis, split_at_axis};

static STRIDED_COPY: Shader = shader!("shape/strided_copy", "shape/strided_copy.wgsl");
static STRIDED_COPY_ROWS: Shader =
    shader!("shape/strided_copy_rows", "shape/strided_copy_rows.wgsl");
static PAD: Shader = shader!("shape/pad", "shape/pad.wgsl");
static CONCAT: Shader = shader!("shape/concat", "shape/concat.wgsl");
static GATHER_ROWS: Shader = shader!("shape/gather_rows", "shape/gather_rows.wgsl");
static SCATTER_ADD_ROWS: Shader = shader!("shape/scatter_add_rows", "shape/scatter_add_rows.wgsl");
static ONE_HOT: Shader = shader!("shape/one_hot", "shape/one_hot.wgsl");

/// What a view is, for its backward rule.
enum ViewKind {
    Reshape(Vec<usize>),
    Detach,
    Permute(Vec<usize>),
    Broadcast,
    Narrow {
        axis: usize,
        start: usize,
        total: usize,
    },
}

/// A view: the output is input 0's storage under another layout, set when it is recorded.
struct View {
    name: &'static str,
    kind: ViewKind,
}

impl Op for View {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu(&self, _: &[Input], _: &mut [&mut [f64]]) {
        unreachable!("views run no reference loop")
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        unreachable!("views run no kernel")
    }
    fn is_view(&self) -> bool {
        true
    }
    fn differentiable(&self) -> bool {
        !matches!(self.kind, ViewKind::Detach)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let g = ctx.grad;
        let gx = match &self.kind {
            ViewKind::Reshape(from) => g.reshape(from),
            ViewKind::Detach => unreachable!("detach passes no gradient"),
            ViewKind::Permute(perm) => {
                let mut inverse = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inverse[p] = i;
                }
                g.permute(&inverse)
            }
            // The tape sums the gradient back to the input's shape.
            ViewKind::Broadcast => g.clone(),
            &ViewKind::Narrow { axis, start, total } => {
                let len = ctx.output.shape()[axis];
                g.pad(axis as isize, start, total - start - len)
            }
        };
        vec![Some(gx)]
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

/// out[i] = x[offset + idx(i) · strides]: a view's elements, copied into row-major order.
struct Contiguous;

impl Op for Contiguous {
    fn name(&self) -> &'static str {
        "contiguous"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        for (i, y) in outs[0].iter_mut().enumerate() {
            *y = ins[0].at(i);
        }
    }
    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let x = ins[0];
        let p = CopyParams {
            n: out.numel() as u32,
            rank: x.shape.len() as u32,
            offset: u32::try_from(x.offset).expect("offsets fit u32 indices"),
            _pad: 0,
            shape: pack8(&x.shape, 1),
            strides: pack8(&x.strides, 0),
        };
        // Rows of 16 or more: one invocation per row (a row's loop must fit; see MAX_LOOP).
        let len = x.shape.last().copied().unwrap_or(1);
        if (16..=crate::op::MAX_LOOP).contains(&len) {
            Kernel::per_element(&STRIDED_COPY_ROWS, &p, out.numel() / len)
        } else {
            Kernel::per_element(&STRIDED_COPY, &p, out.numel())
        }
    }
    fn strided(&self) -> bool {
        true
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        vec![Some(ctx.grad.clone())]
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

/// Zeros before and after the input along `axis`.
struct Pad {
    axis: usize,
    before: usize,
    after: usize,
}

impl Pad {
    /// (outer, len, inner, total) of the input seen around the axis, and the padded length.
    fn dims(&self, input: &[usize]) -> (usize, usize, usize, usize) {
        let (outer, len, inner) = split_at_axis(input, self.axis);
        (outer, len, inner, len + self.before + self.after)
    }
}

impl Op for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (_, len, inner, total) = self.dims(&ins[0].layout.shape);
        let start = self.before;
        for (i, y) in outs[0].iter_mut().enumerate() {
            let k = i % inner;
            let j = (i / inner) % total;
            let o = i / (inner * total);
            *y = if j >= start && j < start + len {
                ins[0].values[(o * len + j - start) * inner + k]
            } else {
                0.0
            };
        }
    }
    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let (_, len, inner, total) = self.dims(&ins[0].shape);
        let n = out.numel();
        let p = PadParams {
            n: n as u32,
            len: len as u32,
            inner: inner as u32,
            total: total as u32,
            start: self.before as u32,
        };
        Kernel::per_element(&PAD, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let len = ctx.inputs[0].shape()[self.axis];
        vec![Some(ctx.grad.narrow(self.axis as isize, self.before, len))]
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

/// Two inputs joined along `axis`.
struct Concat {
    axis: usize,
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (_, la, inner) = split_at_axis(&ins[0].layout.shape, self.axis);
        let lb = ins[1].layout.shape[self.axis];
        let total = la + lb;
        for (i, y) in outs[0].iter_mut().enumerate() {
            let k = i % inner;
            let j = (i / inner) % total;
            let o = i / (inner * total);
            *y = if j < la {
                ins[0].values[(o * la + j) * inner + k]
            } else {
                ins[1].values[(o * lb + j - la) * inner + k]
            };
        }
    }
    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let (_, la, inner) = split_at_axis(&ins[0].shape, self.axis);
        let n = out.numel();
        let p = ConcatParams {
            n: n as u32,
            la: la as u32,
            lb: ins[1].shape[self.axis] as u32,
            inner: inner as u32,
        };
        Kernel::per_element(&CONCAT, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let a = self.axis as isize;
        let (la, lb) = (
            ctx.inputs[0].shape()[self.axis],
            ctx.inputs[1].shape()[self.axis],
        );
        vec![
            Some(ctx.grad.narrow(a, 0, la)),
            Some(ctx.grad.narrow(a, la, lb)),
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

/// (rows, values per row) of a tensor `[rows, ...]`.
fn rows_of(shape: &[usize]) -> (usize, usize) {
    (shape[0], numel(&shape[1..]))
}

/// Rows of input 0 picked by the indices of input 1.
struct GatherRows;

impl Op for GatherRows {
    fn name(&self) -> &'static str {
        "gather_rows"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (rows, width) = rows_of(&ins[0].layout.shape);
        for (i, y) in outs[0].iter_mut().enumerate() {
            *y = match valid_index(ins[1].values[i / width], rows) {
                Some(r) => ins[0].values[r * width + i % width],
                None => f64::NAN,
            };
        }
    }
    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let (rows, width) = rows_of(&ins[0].shape);
        let n = out.numel();
        let p = RowsParams {
            n: n as u32,
            count: rows as u32,
            width: width as u32,
            _pad: 0,
        };
        Kernel::per_element(&GATHER_ROWS, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (x, idx) = (&ctx.inputs[0], &ctx.inputs[1]);
        let (rows, width) = rows_of(x.shape());
        let picks = idx.shape()[0];
        let g = ctx.grad.reshape(&[picks, width]);
        // Each output element loops over the picks: more than one kernel loop allows are
        // scattered in pieces, and the pieces summed.
        let scatter =
            |g: &Tensor, idx: &Tensor| Tensor::record(ScatterAddRows, &[g, idx], vec![rows, width]);
        let gx = if picks <= crate::op::MAX_LOOP {
            scatter(&g, idx)
        } else {
            (0..picks)
                .step_by(crate::op::MAX_LOOP)
                .map(|start| {
                    let len = (picks - start).min(crate::op::MAX_LOOP);
                    scatter(&g.narrow(0, start, len), &idx.narrow(0, start, len))
                })
                .reduce(|sum, part| sum + part)
                .expect("more picks than one piece")
        };
        vec![Some(gx.reshape(x.shape())), None]
    }
}

/// out[r] = Σ of the rows of input 0 whose index (input 1) is r: the gradient of gather_rows.
struct ScatterAddRows;

impl Op for ScatterAddRows {
    fn name(&self) -> &'static str {
        "scatter_add_rows"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (picks, width) = rows_of(&ins[0].layout.shape);
        for (i, y) in outs[0].iter_mut().enumerate() {
            let (r, c) = (i / width, i % width);
            *y = (0..picks)
                .filter(|&m| ins[1].values[m] == r as f64)
                .map(|m| ins[0].values[m * width + c])
                .sum();
        }
    }
    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let (picks, width) = rows_of(&ins[0].shape);
        let n = out.numel();
        let p = RowsParams {
            n: n as u32,
            count: picks as u32,
            width: width as u32,
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
}

impl Op for OneHot {
    fn name(&self) -> &'static str {
        "one_hot"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        for (i, y) in outs[0].iter_mut().enumerate() {
            *y = match valid_index(ins[0].values[i / self.classes], self.classes) {
                Some(c) => (c == i % self.classes) as u8 as f64,
                None => f64::NAN,
            };
        }
    }
    fn kernel(&self, _: &[&Layout], out: &Layout) -> Kernel {
        let p = OneHotParams {
            n: out.numel() as u32,
            classes: self.classes as u32,
        };
        Kernel::per_element(&ONE_HOT, &p, out.numel())
    }
    fn differentiable(&self) -> bool {
        false
    }
}

impl Tensor {
    /// A view of this tensor under `layout` (which addresses the same storage).
    #[track_caller]
    fn view(&self, name: &'static str, kind: ViewKind, layout: Layout) -> Tensor {
        Tensor::record_view(View { name, kind }, &[self], layout)
    }

    /// The same values in a new shape with as many elements: a view of a contiguous tensor,
    /// a contiguous copy of any other.
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
        let source = if self.layout().is_contiguous() {
            self.clone()
        } else {
            self.contiguous()
        };
        let layout = Layout {
            offset: source.layout().offset,
            ..Layout::contiguous(shape)
        };
        let kind = ViewKind::Reshape(self.shape().to_vec());
        source.view("reshape", kind, layout)
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

    /// The same values cut off from the graph: no gradient flows through (a view).
    #[track_caller]
    pub fn detach(&self) -> Tensor {
        self.view("detach", ViewKind::Detach, self.layout().clone())
    }

    /// This tensor's values in row-major order from the start of a storage of its own: itself
    /// if it is already so, otherwise one strided copy (the only one; every op that cannot read
    /// a view gets its input through here).
    #[track_caller]
    pub fn contiguous(&self) -> Tensor {
        if self.layout().is_plain() {
            return self.clone();
        }
        Tensor::record(Contiguous, &[self], self.shape().to_vec())
    }

    /// Reorder dimensions: output dim i is input dim `perm[i]` (a view).
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
        let l = self.layout();
        let layout = Layout {
            shape: perm.iter().map(|&p| l.shape[p]).collect(),
            strides: perm.iter().map(|&p| l.strides[p]).collect(),
            offset: l.offset,
        };
        self.view("permute", ViewKind::Permute(perm.to_vec()), layout)
    }

    /// Swap two dimensions (a view).
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

    /// Swap the last two dimensions (a view): `a.matmul(&b.t())` reads `b` transposed in place.
    #[track_caller]
    pub fn t(&self) -> Tensor {
        assert!(
            self.rank() >= 2,
            "t: needs rank ≥ 2, got shape {:?}",
            self.shape()
        );
        self.transpose(-2, -1)
    }

    /// Repeat along broadcast dimensions to `shape` (NumPy rules): a view with stride 0 along
    /// them, so nothing is copied.
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
        let layout = Layout {
            shape: shape.to_vec(),
            strides: self.layout().broadcast_strides(shape),
            offset: self.layout().offset,
        };
        self.view("broadcast_to", ViewKind::Broadcast, layout)
    }

    /// Elements `start..start + len` along `axis` (a view).
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
        let mut layout = self.layout().clone();
        layout.shape[a] = len;
        if len > 0 {
            layout.offset += start * layout.strides[a];
        }
        let kind = ViewKind::Narrow {
            axis: a,
            start,
            total,
        };
        self.view("narrow", kind, layout)
    }

    /// Zeros before and after along `axis` (the gradient of `narrow`).
    #[track_caller]
    pub fn pad(&self, axis: isize, before: usize, after: usize) -> Tensor {
        let a = self.axis_of("pad", axis);
        let mut out = self.shape().to_vec();
        out[a] += before + after;
        let op = Pad {
            axis: a,
            before,
            after,
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
        let mut out = self.shape().to_vec();
        out[a] += other.shape()[a];
        Tensor::record(Concat { axis: a }, &[self, other], out)
    }

    /// Rows of `self` (shape `[rows, ...]`) picked by `index` (shape `[k]`, integer values):
    /// result `[k, ...]`. An index out of range gives a row of NaN.
    #[track_caller]
    pub fn gather_rows(&self, index: &Tensor) -> Tensor {
        assert!(
            self.rank() >= 1 && index.rank() == 1,
            "gather_rows: needs a tensor of rank ≥ 1 and an index of rank 1, got {:?} and {:?}",
            self.shape(),
            index.shape()
        );
        let mut out = self.shape().to_vec();
        out[0] = index.shape()[0];
        Tensor::record(GatherRows, &[self, index], out)
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
        Tensor::record(OneHot { classes }, &[self], vec![self.numel(), classes])
    }
}
