//! Two-dimensional convolution in PyTorch's layouts and semantics (cross-correlation; `x`
//! `[n, c, h, w]`, weight `[o, c / groups, kh, kw]`), its transpose, and the pooling built on it.
//!
//! A convolution is three implicit matrix products, each a kernel that gathers its operands
//! from the tensors as it reads them (no im2col buffer): the forward product, the input
//! gradient (which is also `conv_transpose2d`) and the weight gradient. The first two are each
//! other's backward rule, with the weight gradient for the weight. Sums longer than a kernel loop may run
//! (see [`crate::op::MAX_LOOP`]) are split: the weight gradient's over images and output
//! rows, on the host; the others' (channels · taps per group) are refused with a message.

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, MAX_LOOP, Op, Shader, shader};

static FORWARD: Shader = shader!("conv/conv2d", "conv/_common.wgsl", "conv/conv2d.wgsl");
static INPUT_GRAD: Shader = shader!(
    "conv/conv2d_input_grad",
    "conv/_common.wgsl",
    "conv/conv2d_input_grad.wgsl"
);
static WEIGHT_GRAD: Shader = shader!(
    "conv/conv2d_weight_grad",
    "conv/_common.wgsl",
    "conv/conv2d_weight_grad.wgsl"
);

static IM2COL: Shader = shader!("cols/im2col", "cols/_cols.wgsl", "cols/im2col.wgsl");
static COL2IM: Shader = shader!("cols/col2im", "cols/_cols.wgsl", "cols/col2im.wgsl");

/// Output tile of the implicit-product kernels (rows and columns).
const TILE: usize = 64;

/// How a 2-D convolution moves over its input, as PyTorch's `conv2d` arguments: `stride`,
/// zero `padding` on both sides, `dilation`, `groups`, and for `conv_transpose2d` only,
/// `output_padding` (rows and columns added to one side of its output). Pairs are
/// (height, width); the builder methods set both.
///
/// ```
/// let c = wgrad::Conv::default().stride(2).padding(1);
/// assert_eq!((c.stride, c.padding, c.dilation, c.groups), ([2, 2], [1, 1], [1, 1], 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    /// Steps between windows, ≥ 1.
    pub stride: [usize; 2],
    /// Zeros added around the input on each side.
    pub padding: [usize; 2],
    /// Spacing between a kernel's taps, ≥ 1.
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels are split into this many groups, each
    /// convolved on its own (`groups = channels` is a depthwise convolution).
    pub groups: usize,
    /// `conv_transpose2d` only: extra output rows and columns, each below its stride or
    /// dilation (which output size of several a strided transpose gives).
    pub output_padding: [usize; 2],
}

impl Default for Conv {
    fn default() -> Conv {
        Conv {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            output_padding: [0, 0],
        }
    }
}

impl Conv {
    /// The same stride in both dimensions.
    pub fn stride(mut self, s: usize) -> Conv {
        self.stride = [s, s];
        self
    }
    /// The same padding in both dimensions.
    pub fn padding(mut self, p: usize) -> Conv {
        self.padding = [p, p];
        self
    }
    /// The same dilation in both dimensions.
    pub fn dilation(mut self, d: usize) -> Conv {
        self.dilation = [d, d];
        self
    }
    /// Channel groups.
    pub fn groups(mut self, g: usize) -> Conv {
        self.groups = g;
        self
    }
    /// The same output padding in both dimensions (`conv_transpose2d`).
    pub fn output_padding(mut self, p: usize) -> Conv {
        self.output_padding = [p, p];
        self
    }
}

/// Every size of one convolution `x [n, c, h, w] * weight [o, c/groups, kh, kw] → [n, o, oh, ow]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    conv: Conv,
}

impl Geom {
    fn cg(&self) -> usize {
        self.c / self.conv.groups
    }
    fn og(&self) -> usize {
        self.o / self.conv.groups
    }
    fn x_shape(&self) -> Vec<usize> {
        vec![self.n, self.c, self.h, self.w]
    }
    fn y_shape(&self) -> Vec<usize> {
        vec![self.n, self.o, self.oh, self.ow]
    }
    fn w_shape(&self) -> Vec<usize> {
        vec![self.o, self.cg(), self.kh, self.kw]
    }
    /// The input position that output `i` of a dimension reads through tap `a`, if inside.
    fn source(
        i: usize,
        a: usize,
        stride: usize,
        pad: usize,
        dil: usize,
        len: usize,
    ) -> Option<usize> {
        (i * stride + a * dil).checked_sub(pad).filter(|&v| v < len)
    }
}

/// Output length of a convolution along one dimension, if the window fits.
fn out_len(len: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    let span = dil * (k - 1) + 1;
    (len + 2 * pad).checked_sub(span).map(|v| v / stride + 1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// (x, weight, bias) → y.
    Forward,
    /// (dy, weight) → dx.
    InputGrad,
    /// (x, dy) → dweight, summed over images `n0..n1` and output rows `oh0..oh1`.
    WeightGrad {
        n0: usize,
        n1: usize,
        oh0: usize,
        oh1: usize,
    },
}

/// Where one term of a convolution reads and writes: x, y, y laid out `[n, oh, ow, o]`, the
/// weight laid out `[groups, cg·kh·kw, og]` (the forward product's and the weight gradient's
/// layout) and `[groups, og·kh·kw, cg]` (the input gradient's).
struct At {
    x: usize,
    y: usize,
    y_last: usize,
    w_cols: usize,
    w_rows: usize,
}

/// One of the three products. The forward product reads the weight laid out
/// `[groups, cg·kh·kw, og]`, the input gradient `[groups, og·kh·kw, cg]`, and the weight
/// gradient reads dy laid out `[n, oh, ow, o]` and writes `[groups, cg·kh·kw, og]`: each
/// kernel's second operand is contiguous along its columns. The host converts (small copies of
/// the weights, one of dy).
struct ConvOp {
    kind: Kind,
    g: Geom,
    has_bias: bool,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    oh: u32,
    ow: u32,
    groups: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    cg: u32,
    og: u32,
    rows: u32,
    cols: u32,
    k: u32,
    tiles_m: u32,
    tiles_n: u32,
    has_bias: u32,
    n0: u32,
    oh0: u32,
    oh1: u32,
    _pad: u32,
}

impl ConvOp {
    /// (rows, columns, terms) of this op's product, per group.
    fn product(&self) -> (usize, usize, usize) {
        let g = &self.g;
        let taps = g.kh * g.kw;
        match self.kind {
            Kind::Forward => (g.n * g.oh * g.ow, g.og(), g.cg() * taps),
            Kind::InputGrad => (g.n * g.h * g.w, g.cg(), g.og() * taps),
            Kind::WeightGrad { n0, n1, oh0, oh1 } => {
                (g.cg() * taps, g.og(), (n1 - n0) * (oh1 - oh0) * g.ow)
            }
        }
    }
}

impl Op for ConvOp {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Forward => "conv2d",
            Kind::InputGrad => "conv2d_input_grad",
            Kind::WeightGrad { .. } => "conv2d_weight_grad",
        }
    }

    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let g = &self.g;
        let (cg, og) = (g.cg(), g.og());
        let Conv {
            stride: [sh, sw],
            padding: [ph, pw],
            dilation: [dh, dw],
            ..
        } = g.conv;
        let taps = g.kh * g.kw;
        let out = &mut *outs[0];
        out.fill(0.0);
        // Every (image, output channel, output pixel, input channel, tap) term of the
        // convolution, handed to `term` with where it reads and writes in each layout.
        let each = |n_range: (usize, usize), i_range: (usize, usize), term: &mut dyn FnMut(&At)| {
            for n in n_range.0..n_range.1 {
                for o in 0..g.o {
                    let (grp, og_o) = (o / og, o % og);
                    for i in i_range.0..i_range.1 {
                        for j in 0..g.ow {
                            for c in 0..cg {
                                for a in 0..g.kh {
                                    let Some(y) = Geom::source(i, a, sh, ph, dh, g.h) else {
                                        continue;
                                    };
                                    for b in 0..g.kw {
                                        let Some(x) = Geom::source(j, b, sw, pw, dw, g.w) else {
                                            continue;
                                        };
                                        let tap = a * g.kw + b;
                                        term(&At {
                                            x: ((n * g.c + grp * cg + c) * g.h + y) * g.w + x,
                                            y: ((n * g.o + o) * g.oh + i) * g.ow + j,
                                            y_last: ((n * g.oh + i) * g.ow + j) * g.o + o,
                                            w_cols: ((grp * cg + c) * taps + tap) * og + og_o,
                                            w_rows: ((grp * og + og_o) * taps + tap) * cg + c,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        };
        match self.kind {
            Kind::Forward => {
                let (x, w) = (ins[0].values, ins[1].values);
                each((0, g.n), (0, g.oh), &mut |t| {
                    out[t.y] += x[t.x] * w[t.w_cols]
                });
                if self.has_bias {
                    for (e, v) in out.iter_mut().enumerate() {
                        *v += ins[2].values[(e / (g.oh * g.ow)) % g.o];
                    }
                }
            }
            Kind::InputGrad => {
                let (dy, w) = (ins[0].values, ins[1].values);
                each((0, g.n), (0, g.oh), &mut |t| {
                    out[t.x] += dy[t.y] * w[t.w_rows]
                });
            }
            Kind::WeightGrad { n0, n1, oh0, oh1 } => {
                let (x, dy) = (ins[0].values, ins[1].values);
                each((n0, n1), (oh0, oh1), &mut |t| {
                    out[t.w_cols] += dy[t.y_last] * x[t.x]
                });
            }
        }
    }

    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        let g = &self.g;
        let (rows, cols, k) = self.product();
        let (n0, oh0, oh1) = match self.kind {
            Kind::WeightGrad { n0, oh0, oh1, .. } => (n0, oh0, oh1),
            _ => (0, 0, g.oh),
        };
        let u = |v: usize| u32::try_from(v).expect("convolution sizes fit u32");
        let (tiles_m, tiles_n) = (rows.div_ceil(TILE), cols.div_ceil(TILE));
        let p = Params {
            n: u(g.n),
            c: u(g.c),
            h: u(g.h),
            w: u(g.w),
            o: u(g.o),
            oh: u(g.oh),
            ow: u(g.ow),
            groups: u(g.conv.groups),
            kh: u(g.kh),
            kw: u(g.kw),
            sh: u(g.conv.stride[0]),
            sw: u(g.conv.stride[1]),
            ph: u(g.conv.padding[0]),
            pw: u(g.conv.padding[1]),
            dh: u(g.conv.dilation[0]),
            dw: u(g.conv.dilation[1]),
            cg: u(g.cg()),
            og: u(g.og()),
            rows: u(rows),
            cols: u(cols),
            k: u(k),
            tiles_m: u(tiles_m),
            tiles_n: u(tiles_n),
            has_bias: self.has_bias as u32,
            n0: u(n0),
            oh0: u(oh0),
            oh1: u(oh1),
            _pad: 0,
        };
        let shader = match self.kind {
            Kind::Forward => &FORWARD,
            Kind::InputGrad => &INPUT_GRAD,
            Kind::WeightGrad { .. } => &WEIGHT_GRAD,
        };
        let groups = if rows == 0 || cols == 0 {
            0
        } else {
            (g.conv.groups * tiles_m * tiles_n) as u64
        };
        Kernel::new(shader, &p, groups)
    }

    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (a, b, gr) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
        let g = self.g;
        match self.kind {
            // y = conv(x, w): dx = T(gr, w), dw = W(x, gr), dbias = gr summed per channel.
            Kind::Forward => {
                let w = g.weight_from_cols(b);
                let dx = ctx.needs[0].then(|| input_grad(gr, &w, g));
                let dw = ctx.needs[1].then(|| g.weight_as_cols(&weight_grad(a, gr, g)));
                let db = (self.has_bias && ctx.needs[2])
                    .then(|| gr.reshape(&[g.n, g.o, g.oh * g.ow]).sum(2).sum(0));
                vec![dx, dw, db]
            }
            // dx = T(dy, w), linear in each: d(dy) = conv(gr, w), d(w) = W(gr, dy).
            Kind::InputGrad => {
                let w = g.weight_from_rows(b);
                vec![
                    ctx.needs[0].then(|| forward(gr, &w, None, g)),
                    ctx.needs[1].then(|| g.weight_as_rows(&weight_grad(gr, a, g))),
                    None,
                ]
            }
            Kind::WeightGrad { .. } => panic!(
                "conv2d_weight_grad: second-order gradients through a weight gradient are not \
                 supported"
            ),
        }
    }
}

impl Geom {
    /// A weight `[o, cg, kh, kw]` laid out `[groups, cg·kh·kw, og]` (the forward product's).
    fn weight_as_cols(&self, w: &Tensor) -> Tensor {
        self.weight_matrices(w).transpose(1, 2).contiguous()
    }
    /// A weight `[o, cg, kh, kw]` as one `[og, cg·kh·kw]` matrix per group (a view).
    fn weight_matrices(&self, w: &Tensor) -> Tensor {
        w.reshape(&[self.conv.groups, self.og(), self.cg() * self.kh * self.kw])
    }
    fn weight_from_cols(&self, w: &Tensor) -> Tensor {
        w.transpose(1, 2).reshape(&self.w_shape())
    }
    /// A weight `[o, cg, kh, kw]` laid out `[groups, og·kh·kw, cg]` (the input gradient's).
    fn weight_as_rows(&self, w: &Tensor) -> Tensor {
        let (groups, og, cg, taps) = (self.conv.groups, self.og(), self.cg(), self.kh * self.kw);
        w.reshape(&[groups, og, cg, taps])
            .permute(&[0, 1, 3, 2])
            .reshape(&[groups, og * taps, cg])
    }
    fn weight_from_rows(&self, w: &Tensor) -> Tensor {
        let (groups, og, cg, taps) = (self.conv.groups, self.og(), self.cg(), self.kh * self.kw);
        w.reshape(&[groups, og, taps, cg])
            .permute(&[0, 1, 3, 2])
            .reshape(&self.w_shape())
    }
}

/// The column matrix of a convolution and its adjoint (see `cols/_cols.wgsl`): `Im2col`
/// reads x `[n, c, h, w]` into `[groups, n·oh·ow, cg·kh·kw]`, `Col2im` sums such a matrix
/// back into x's shape. Each is the other's backward rule.
#[derive(Clone, Copy)]
struct Cols {
    to_cols: bool,
    g: Geom,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ColsParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    cg: u32,
    rows: u32,
}

impl Geom {
    fn cols_shape(&self) -> Vec<usize> {
        vec![
            self.conv.groups,
            self.n * self.oh * self.ow,
            self.cg() * self.kh * self.kw,
        ]
    }
}

impl Op for Cols {
    fn name(&self) -> &'static str {
        if self.to_cols { "im2col" } else { "col2im" }
    }

    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let g = &self.g;
        let Conv {
            stride: [sh, sw],
            padding: [ph, pw],
            dilation: [dh, dw],
            ..
        } = g.conv;
        let (taps, cg) = (g.kh * g.kw, g.cg());
        let out = &mut *outs[0];
        out.fill(0.0);
        for n in 0..g.n {
            for ch in 0..g.c {
                let (grp, c) = (ch / cg, ch % cg);
                for t in 0..taps {
                    for i in 0..g.oh {
                        for j in 0..g.ow {
                            let y = Geom::source(i, t / g.kw, sh, ph, dh, g.h);
                            let x = Geom::source(j, t % g.kw, sw, pw, dw, g.w);
                            if let (Some(y), Some(x)) = (y, x) {
                                let xi = ((n * g.c + ch) * g.h + y) * g.w + x;
                                let pixel = (grp * g.n + n) * g.oh * g.ow + i * g.ow + j;
                                let ci = pixel * cg * taps + c * taps + t;
                                if self.to_cols {
                                    out[ci] = ins[0].values[xi];
                                } else {
                                    out[xi] += ins[0].values[ci];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        let g = &self.g;
        let rows = if self.to_cols {
            g.conv.groups * g.n * g.oh * g.ow
        } else {
            g.n * g.c * g.h
        };
        let u = |v: usize| u32::try_from(v).expect("convolution sizes fit u32");
        let p = ColsParams {
            n: u(g.n),
            c: u(g.c),
            h: u(g.h),
            w: u(g.w),
            oh: u(g.oh),
            ow: u(g.ow),
            kh: u(g.kh),
            kw: u(g.kw),
            sh: u(g.conv.stride[0]),
            sw: u(g.conv.stride[1]),
            ph: u(g.conv.padding[0]),
            pw: u(g.conv.padding[1]),
            dh: u(g.conv.dilation[0]),
            dw: u(g.conv.dilation[1]),
            cg: u(g.cg()),
            rows: u(rows),
        };
        let shader = if self.to_cols { &IM2COL } else { &COL2IM };
        Kernel::per_element(shader, &p, rows)
    }

    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let adjoint = Cols {
            to_cols: !self.to_cols,
            ..*self
        };
        vec![Some(adjoint.apply(ctx.grad))]
    }
}

impl Cols {
    fn apply(self, t: &Tensor) -> Tensor {
        let shape = if self.to_cols {
            self.g.cols_shape()
        } else {
            self.g.x_shape()
        };
        Tensor::record(self, &[t], shape)
    }
}

/// The most elements one column matrix holds (64 MiB of f32, half the storage binding every
/// adapter offers): batches whose columns would be larger are convolved in parts of whole
/// images.
const COLS_BUDGET: usize = 1 << 24;

/// Images per part so that each part's column matrix fits [`COLS_BUDGET`] (at least one).
fn images_per_part(g: &Geom) -> usize {
    let per_image = g.c * g.kh * g.kw * g.oh * g.ow;
    (COLS_BUDGET / per_image.max(1)).max(1)
}

/// `f` applied to parts of whole images of `t` (its first axis), the results joined.
fn in_parts(t: &Tensor, g: Geom, f: impl Fn(&Tensor, Geom) -> Tensor) -> Tensor {
    let per = images_per_part(&g);
    if g.n <= per {
        return f(t, g);
    }
    let parts: Vec<Tensor> = (0..g.n)
        .step_by(per)
        .map(|n0| {
            let n = per.min(g.n - n0);
            f(&t.narrow(0, n0, n), Geom { n, ..g })
        })
        .collect();
    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
}

/// conv2d through column matrices: per group, the columns times the weight's transpose give y
/// with its channels last (one batched matrix product on the matmul kernels), then one copy
/// puts them in y's layout; every gradient follows from the ops' rules.
fn forward_cols(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, g: Geom) -> Tensor {
    // The matmul reads the weight's transpose in place.
    let wt = g.weight_matrices(w).transpose(1, 2);
    let y = in_parts(x, g, |x, g| {
        let (groups, og, plane) = (g.conv.groups, g.og(), g.oh * g.ow);
        Cols { to_cols: true, g }
            .apply(x)
            .matmul(&wt)
            .reshape(&[groups, g.n, plane, og])
            .permute(&[1, 0, 3, 2])
            .reshape(&g.y_shape())
    });
    match bias {
        Some(b) => y + b.reshape(&[g.o, 1, 1]),
        None => y,
    }
}

/// conv2d's input gradient through column matrices: dx = col2im(dy · w), per group.
fn input_grad_cols(dy: &Tensor, w: &Tensor, g: Geom) -> Tensor {
    let w = g.weight_matrices(w);
    in_parts(dy, g, |dy, g| {
        let (groups, og, plane) = (g.conv.groups, g.og(), g.oh * g.ow);
        let rows = dy
            .reshape(&[g.n, groups, og, plane])
            .permute(&[1, 0, 3, 2])
            .reshape(&[groups, g.n * plane, og]);
        Cols { to_cols: false, g }.apply(&rows.matmul(&w))
    })
}

/// y = conv2d(x, w) + bias, w `[o, cg, kh, kw]`.
fn forward(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, g: Geom) -> Tensor {
    let op = ConvOp {
        kind: Kind::Forward,
        g,
        has_bias: bias.is_some(),
    };
    let bias = match bias {
        Some(b) => b.clone(),
        None => Tensor::empty(x.device()),
    };
    Tensor::record(op, &[x, &g.weight_as_cols(w), &bias], g.y_shape())
}

/// dx of conv2d for dy, w `[o, cg, kh, kw]` (conv_transpose2d of dy).
fn input_grad(dy: &Tensor, w: &Tensor, g: Geom) -> Tensor {
    let op = ConvOp {
        kind: Kind::InputGrad,
        g,
        has_bias: false,
    };
    let empty = Tensor::empty(dy.device());
    Tensor::record(op, &[dy, &g.weight_as_rows(w), &empty], g.x_shape())
}

/// dw of conv2d `[o, cg, kh, kw]` for x and dy, as a sum of slices each short enough for one
/// kernel loop.
fn weight_grad(x: &Tensor, dy: &Tensor, g: Geom) -> Tensor {
    let dy_last = dy.permute(&[0, 2, 3, 1]).contiguous();
    let (groups, k) = (g.conv.groups, g.cg() * g.kh * g.kw);
    let slice = |n0, n1, oh0, oh1| {
        let op = ConvOp {
            kind: Kind::WeightGrad { n0, n1, oh0, oh1 },
            g,
            has_bias: false,
        };
        let empty = Tensor::empty(x.device());
        Tensor::record(op, &[x, &dy_last, &empty], vec![groups, k, g.og()])
    };
    let plane = g.oh * g.ow;
    let mut parts = Vec::new();
    if plane <= MAX_LOOP {
        let per = (MAX_LOOP / plane.max(1)).max(1);
        for n0 in (0..g.n).step_by(per) {
            parts.push(slice(n0, (n0 + per).min(g.n), 0, g.oh));
        }
    } else {
        let per = MAX_LOOP / g.ow;
        for n in 0..g.n {
            for oh0 in (0..g.oh).step_by(per) {
                parts.push(slice(n, n + 1, oh0, (oh0 + per).min(g.oh)));
            }
        }
    }
    match parts.into_iter().reduce(|sum, part| sum + part) {
        Some(cols) => g.weight_from_cols(&cols),
        None => Tensor::zeros(x.device(), &g.w_shape()),
    }
}

impl Tensor {
    /// Check a convolution's arguments and work out its sizes: `x` `[n, c, h, w]` (this
    /// tensor, or the transpose's output), `weight` `[o, c/groups, kh, kw]`.
    #[track_caller]
    fn conv_geom(name: &str, x: &[usize], weight: &[usize], conv: Conv) -> Geom {
        assert!(
            x.len() == 4 && weight.len() == 4,
            "{name}: input {x:?} and weight {weight:?} must both be rank 4 ([n, c, h, w] and \
             [out, in/groups, kh, kw])"
        );
        assert!(
            conv.groups >= 1
                && conv.stride.iter().chain(&conv.dilation).all(|&v| v >= 1)
                && weight[2] >= 1
                && weight[3] >= 1,
            "{name}: stride, dilation, groups and kernel sizes must be at least 1, got {conv:?} \
             and weight {weight:?}"
        );
        let (n, c, h, w) = (x[0], x[1], x[2], x[3]);
        let (o, kh, kw) = (weight[0], weight[2], weight[3]);
        let groups = conv.groups;
        assert!(
            c % groups == 0 && o % groups == 0 && weight[1] * groups == c,
            "{name}: input {x:?} and weight {weight:?} do not fit {groups} group(s) (want \
             channels divisible by groups and weight [out, in/groups, kh, kw])"
        );
        let sizes = (
            out_len(h, kh, conv.stride[0], conv.padding[0], conv.dilation[0]),
            out_len(w, kw, conv.stride[1], conv.padding[1], conv.dilation[1]),
        );
        let (Some(oh), Some(ow)) = sizes else {
            panic!(
                "{name}: kernel {:?} (dilation {:?}) is larger than the padded input {:?} \
                 (padding {:?})",
                [kh, kw],
                conv.dilation,
                [h, w],
                conv.padding
            )
        };
        let g = Geom {
            n,
            c,
            h,
            w,
            o,
            oh,
            ow,
            kh,
            kw,
            conv,
        };
        let taps = kh * kw;
        assert!(
            g.cg() * taps <= MAX_LOOP
                && g.og() * taps <= MAX_LOOP
                && ow <= MAX_LOOP
                && w * taps <= MAX_LOOP,
            "{name}: {} input and {} output channels per group, a {kh}×{kw} kernel and an input \
             {w} wide need kernel loops longer than {MAX_LOOP} iterations",
            g.cg(),
            g.og()
        );
        g
    }

    /// 2-D convolution (cross-correlation, as PyTorch's `conv2d`): this tensor `[n, c, h, w]`,
    /// `weight` `[out, c/groups, kh, kw]`, optional `bias` `[out]`, moved as `conv` says;
    /// the result is `[n, out, oh, ow]` with oh = ⌊(h + 2·pad − dil·(kh − 1) − 1) / stride⌋ + 1.
    /// Padding on one side only: [`Tensor::pad`] first.
    ///
    /// ```
    /// use wgrad::{Conv, Device, Tensor};
    /// let dev = Device::cpu();
    /// let x = Tensor::ones(&dev, &[1, 1, 4, 4]);
    /// let w = Tensor::ones(&dev, &[2, 1, 3, 3]);
    /// let y = x.conv2d(&w, None, Conv::default().padding(1));
    /// assert_eq!(y.shape(), &[1, 2, 4, 4]);
    /// assert_eq!(y.to_vec().unwrap()[..4], [4.0, 6.0, 6.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, conv: Conv) -> Tensor {
        self.conv2d_variant(weight, bias, conv, false)
    }

    /// [`Tensor::conv2d`] through the column matrix and the matmul kernels (`implicit` false,
    /// what `conv2d` uses) or through the implicit-product kernels, which read the image in
    /// place (the differential table checks both).
    #[doc(hidden)]
    #[track_caller]
    pub fn conv2d_variant(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        conv: Conv,
        implicit: bool,
    ) -> Tensor {
        assert!(
            conv.output_padding == [0, 0],
            "conv2d: output_padding {:?} is for conv_transpose2d only",
            conv.output_padding
        );
        let g = Tensor::conv_geom("conv2d", self.shape(), weight.shape(), conv);
        if let Some(b) = bias {
            assert_eq!(
                b.shape(),
                [g.o],
                "conv2d: bias {:?} does not match weight {:?} (want [out])",
                b.shape(),
                weight.shape()
            );
        }
        if implicit {
            forward(self, weight, bias, g)
        } else {
            forward_cols(self, weight, bias, g)
        }
    }

    /// Transposed 2-D convolution (PyTorch's `conv_transpose2d`): the gradient of
    /// [`Tensor::conv2d`] with respect to its input. This tensor `[n, c_in, h, w]`, `weight`
    /// `[c_in, c_out/groups, kh, kw]` (PyTorch's layout), optional `bias` `[c_out]`; the result
    /// is `[n, c_out, oh, ow]` with oh = (h − 1)·stride − 2·pad + dil·(kh − 1) + output_pad + 1.
    ///
    /// ```
    /// use wgrad::{Conv, Device, Tensor};
    /// let dev = Device::cpu();
    /// let x = Tensor::ones(&dev, &[1, 3, 4, 4]);
    /// let w = Tensor::ones(&dev, &[3, 2, 3, 3]);
    /// let y = x.conv_transpose2d(&w, None, Conv::default().stride(2).padding(1).output_padding(1));
    /// assert_eq!(y.shape(), &[1, 2, 8, 8]);
    /// ```
    #[track_caller]
    pub fn conv_transpose2d(&self, weight: &Tensor, bias: Option<&Tensor>, conv: Conv) -> Tensor {
        self.conv_transpose2d_variant(weight, bias, conv, false)
    }

    /// [`Tensor::conv_transpose2d`] through the column matrix (`implicit` false) or the
    /// implicit-product kernels.
    #[doc(hidden)]
    #[track_caller]
    pub fn conv_transpose2d_variant(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        conv: Conv,
        implicit: bool,
    ) -> Tensor {
        let (x, w) = (self.shape(), weight.shape());
        assert!(
            x.len() == 4 && w.len() == 4 && x[1] == w[0],
            "conv_transpose2d: input {x:?} and weight {w:?} do not fit (want [n, c_in, h, w] and \
             [c_in, c_out/groups, kh, kw])"
        );
        let groups = conv.groups.max(1);
        let c_out = w[1] * groups;
        // The output size, and the convolution whose input gradient this is.
        let size = |d: usize| -> Option<usize> {
            let len = x[2 + d];
            let full = (len.checked_sub(1)? * conv.stride[d]
                + conv.dilation[d] * (w[2 + d].max(1) - 1)
                + conv.output_padding[d]
                + 1)
            .checked_sub(2 * conv.padding[d])?;
            Some(full)
        };
        let (Some(oh), Some(ow)) = (size(0), size(1)) else {
            panic!(
                "conv_transpose2d: input {x:?} with weight {w:?} and {conv:?} has no output \
                 (padding larger than the result)"
            )
        };
        for d in 0..2 {
            assert!(
                conv.output_padding[d] < conv.stride[d].max(conv.dilation[d]),
                "conv_transpose2d: output_padding {:?} must be smaller than the stride {:?} or \
                 the dilation {:?}",
                conv.output_padding,
                conv.stride,
                conv.dilation
            );
        }
        let inner = Conv {
            output_padding: [0, 0],
            ..conv
        };
        let g = Tensor::conv_geom("conv_transpose2d", &[x[0], c_out, oh, ow], w, inner);
        assert!(
            [g.oh, g.ow] == [x[2], x[3]],
            "conv_transpose2d: input {x:?} does not fit weight {w:?} with {conv:?}"
        );
        if let Some(b) = bias {
            assert_eq!(
                b.shape(),
                [c_out],
                "conv_transpose2d: bias {:?} does not match weight {w:?} (want [c_out])",
                b.shape()
            );
        }
        let y = if implicit {
            input_grad(self, weight, g)
        } else {
            input_grad_cols(self, weight, g)
        };
        match bias {
            Some(b) => y + b.reshape(&[c_out, 1, 1]),
            None => y,
        }
    }
}
