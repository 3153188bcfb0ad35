//! Elementwise functions of two tensors with NumPy broadcasting, `where`, and constant fills.
//! Gradients are written with ordinary ops; the tape sums them back to each input's shape.

use crate::Tensor;
use crate::op::{BackwardCtx, Kernel, Op, Shader, shader};
use crate::shape::{self, broadcast_shapes, broadcast_strides, numel};

/// How a kernel finds input element `i` of the broadcast output (see `binary/_forward.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Addressing {
    n: u32,
    rank: u32,
    _pad: [u32; 2],
    mode: [u32; 4],
    div: [u32; 4],
    len: [u32; 4],
    shape: [[u32; 4]; 2],
    strides: [[[u32; 4]; 2]; 3],
}

impl Addressing {
    pub(crate) fn new(out: &[usize], inputs: &[&[usize]]) -> Addressing {
        let mut a = Addressing {
            n: numel(out) as u32,
            rank: out.len() as u32,
            _pad: [0; 2],
            mode: [0; 4],
            div: [1; 4],
            len: [1; 4],
            shape: crate::op::pack8(out, 1),
            strides: [[[0; 4]; 2]; 3],
        };
        for (k, input) in inputs.iter().enumerate() {
            let st = broadcast_strides(input, out);
            a.strides[k] = crate::op::pack8(&st, 0);
            (a.mode[k], a.div[k], a.len[k]) = mode(input, out, &st);
        }
        a
    }
}

/// Visit every output element with the offsets of each broadcast input (the CPU reference).
fn walk_broadcast(out: &[usize], inputs: &[&[usize]], f: impl FnMut(usize, &[usize])) {
    let strides: Vec<Vec<usize>> = inputs.iter().map(|s| broadcast_strides(s, out)).collect();
    shape::walk(out, &strides, f);
}

/// The cheapest addressing rule that reads `input` as broadcast to `out`.
fn mode(input: &[usize], out: &[usize], strides: &[usize]) -> (u32, u32, u32) {
    let n_in = numel(input);
    if n_in == numel(out) {
        return (0, 1, 1);
    }
    if n_in == 1 {
        return (1, 1, 1);
    }
    // One contiguous run of output dims [lo, hi) where the input is not broadcast.
    let live: Vec<usize> = (0..out.len())
        .filter(|&d| strides[d] != 0 && out[d] != 1)
        .collect();
    let (lo, hi) = (live[0], live[live.len() - 1] + 1);
    if live.len() == hi - lo {
        let div = numel(&out[hi..]);
        return (2, div as u32, n_in as u32);
    }
    (3, 1, 1)
}

/// A two-input elementwise function: its WGSL body in `shaders/binary/` and its reference.
pub(crate) struct BinaryDef {
    pub name: &'static str,
    shader: Shader,
    /// The same function four elements at a time, for inputs of the output's shape or scalars.
    shader4: Shader,
    f: fn(f64, f64) -> f64,
    differentiable: bool,
}

macro_rules! binary_row {
    ($name:literal, $f:expr, $diff:expr) => {
        BinaryDef {
            name: $name,
            shader: shader!(
                concat!("binary/", $name),
                "binary/_forward.wgsl",
                concat!("binary/", $name, ".wgsl")
            ),
            shader4: shader!(
                concat!("binary/", $name, ".vec4"),
                "binary/_forward4.wgsl",
                concat!("binary/", $name, ".wgsl")
            ),
            f: $f,
            differentiable: $diff,
        }
    };
}

fn mask(c: bool) -> f64 {
    if c { 1.0 } else { 0.0 }
}

pub(crate) static BINARY: [BinaryDef; 14] = [
    binary_row!("add", |a, b| a + b, true),
    binary_row!("sub", |a, b| a - b, true),
    binary_row!("mul", |a, b| a * b, true),
    binary_row!("div", |a, b| a / b, true),
    binary_row!("pow", |a, b| if b == 0.0 { 1.0 } else { a.powf(b) }, true),
    binary_row!(
        "maximum",
        |a, b| if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.max(b)
        },
        true
    ),
    binary_row!(
        "minimum",
        |a, b| if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.min(b)
        },
        true
    ),
    binary_row!("lt", |a, b| mask(a < b), false),
    binary_row!("le", |a, b| mask(a <= b), false),
    binary_row!("gt", |a, b| mask(a > b), false),
    binary_row!("ge", |a, b| mask(a >= b), false),
    binary_row!("eq", |a, b| mask(a == b), false),
    binary_row!("ne", |a, b| mask(a != b), false),
    binary_row!(
        "bce_logits",
        |x, t| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p(),
        true
    ),
];

struct Binary {
    f: usize,
    out: Vec<usize>,
    a: Vec<usize>,
    b: Vec<usize>,
}

impl Op for Binary {
    fn name(&self) -> &'static str {
        BINARY[self.f].name
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        let f = BINARY[self.f].f;
        let y = &mut *outs[0];
        walk_broadcast(&self.out, &[&self.a, &self.b], |i, o| {
            y[i] = f(ins[0][o[0]], ins[1][o[1]]);
        });
    }
    fn kernel(&self) -> Kernel {
        let p = Addressing::new(&self.out, &[&self.a, &self.b]);
        if p.mode[..2].iter().all(|&m| m <= 1) {
            Kernel::per_vec4(&BINARY[self.f].shader4, &p, numel(&self.out))
        } else {
            Kernel::per_element(&BINARY[self.f].shader, &p, numel(&self.out))
        }
    }
    fn differentiable(&self) -> bool {
        BINARY[self.f].differentiable
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (a, b, g, y) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad, ctx.output);
        // The mask of maximum and minimum, made once if either side needs it.
        let picked = std::cell::OnceCell::new();
        let mask = |f: fn(&Tensor, &Tensor) -> Tensor| picked.get_or_init(|| f(a, b)).clone();
        // Each side's rule, recorded only if that input needs a gradient.
        type Rule<'a> = Box<dyn Fn() -> Tensor + 'a>;
        let (ga, gb): (Rule, Rule) = match BINARY[self.f].name {
            "add" => (Box::new(|| g.clone()), Box::new(|| g.clone())),
            "sub" => (Box::new(|| g.clone()), Box::new(|| g.neg())),
            "mul" => (Box::new(|| g * b), Box::new(|| g * a)),
            "div" => (Box::new(|| g / b), Box::new(|| -(g * y / b))),
            // d/da a^b = b·a^(b-1); d/db a^b = a^b · ln a
            "pow" => (
                Box::new(|| g * b * a.pow(&(b - 1.0))),
                Box::new(|| g * (y * a.log())),
            ),
            "maximum" => (
                Box::new(|| g * mask(Tensor::ge)),
                Box::new(|| g * (1.0 - mask(Tensor::ge))),
            ),
            "minimum" => (
                Box::new(|| g * mask(Tensor::le)),
                Box::new(|| g * (1.0 - mask(Tensor::le))),
            ),
            // d/dx = σ(x) − t, d/dt = −x
            "bce_logits" => (Box::new(|| g * (a.sigmoid() - b)), Box::new(|| g * a.neg())),
            other => unreachable!("{other} is not differentiable"),
        };
        vec![ctx.needs[0].then(ga), ctx.needs[1].then(gb)]
    }
}

impl Tensor {
    #[track_caller]
    pub(crate) fn binary(&self, name: &str, other: &Tensor) -> Tensor {
        let f = BINARY
            .iter()
            .position(|d| d.name == name)
            .unwrap_or_else(|| panic!("no binary function `{name}`"));
        let Some(out) = broadcast_shapes(self.shape(), other.shape()) else {
            panic!(
                "{name}: shapes {:?} and {:?} cannot be broadcast together",
                self.shape(),
                other.shape()
            )
        };
        let op = Binary {
            f,
            out: out.clone(),
            a: self.shape().to_vec(),
            b: other.shape().to_vec(),
        };
        Tensor::record(op, &[self, other], out)
    }

    /// a + b, broadcasting.
    #[track_caller]
    pub fn add(&self, other: &Tensor) -> Tensor {
        self.binary("add", other)
    }
    #[track_caller]
    /// a − b, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.binary("sub", other)
    }
    #[track_caller]
    /// a · b elementwise, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.binary("mul", other)
    }
    #[track_caller]
    /// a / b elementwise, broadcasting.
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.binary("div", other)
    }
    /// aᵇ elementwise (a > 0).
    #[track_caller]
    pub fn pow(&self, other: &Tensor) -> Tensor {
        self.binary("pow", other)
    }
    #[track_caller]
    /// The larger of a and b elementwise (NaN if either is); ties send the gradient to a.
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.binary("maximum", other)
    }
    #[track_caller]
    /// The smaller of a and b elementwise (NaN if either is); ties send the gradient to a.
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.binary("minimum", other)
    }
    /// 1 where a < b, else 0.
    #[track_caller]
    pub fn lt(&self, other: &Tensor) -> Tensor {
        self.binary("lt", other)
    }
    #[track_caller]
    /// 1 where a ≤ b, else 0.
    pub fn le(&self, other: &Tensor) -> Tensor {
        self.binary("le", other)
    }
    #[track_caller]
    /// 1 where a > b, else 0.
    pub fn gt(&self, other: &Tensor) -> Tensor {
        self.binary("gt", other)
    }
    #[track_caller]
    /// 1 where a ≥ b, else 0.
    pub fn ge(&self, other: &Tensor) -> Tensor {
        self.binary("ge", other)
    }
    /// 1 where a == b, else 0 (PyTorch's `torch.eq`; NaN equals nothing).
    #[track_caller]
    pub fn eq(&self, other: &Tensor) -> Tensor {
        self.binary("eq", other)
    }
    /// 1 where a != b, else 0.
    #[track_caller]
    pub fn ne(&self, other: &Tensor) -> Tensor {
        self.binary("ne", other)
    }
    /// Elementwise binary cross-entropy of logits `self` against targets in [0, 1]
    /// (stable for any logit); see `bce_with_logits` for the mean loss.
    #[track_caller]
    pub fn bce_logits_elementwise(&self, target: &Tensor) -> Tensor {
        self.binary("bce_logits", target)
    }

    /// `self != 0 ? on_true : on_false` elementwise, broadcasting all three: the function
    /// `torch.where(condition, input, other)`, in that order, with the condition as the receiver
    /// (`where` is a Rust keyword, and a trailing underscore means in-place in PyTorch; torch's
    /// method `input.where(condition, other)` puts the input first instead). The condition gets
    /// no gradient.
    #[track_caller]
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Tensor {
        let Some(out) = broadcast_shapes(on_true.shape(), on_false.shape())
            .and_then(|s| broadcast_shapes(&s, self.shape()))
        else {
            panic!(
                "where: shapes {:?} (cond), {:?} and {:?} cannot be broadcast together",
                self.shape(),
                on_true.shape(),
                on_false.shape()
            )
        };
        let op = Where {
            out: out.clone(),
            shapes: [
                self.shape().to_vec(),
                on_true.shape().to_vec(),
                on_false.shape().to_vec(),
            ],
        };
        Tensor::record(op, &[self, on_true, on_false], out)
    }

    /// A tensor of `shape` filled with `value`.
    #[track_caller]
    pub fn full(device: &crate::Device, shape: &[usize], value: f32) -> Tensor {
        let n = numel(shape);
        Tensor::record_on(device, Full { n, value }, &[], shape.to_vec())
    }
    #[track_caller]
    /// A tensor of `shape` holding zeros.
    pub fn zeros(device: &crate::Device, shape: &[usize]) -> Tensor {
        Tensor::full(device, shape, 0.0)
    }
    #[track_caller]
    /// A tensor of `shape` holding ones.
    pub fn ones(device: &crate::Device, shape: &[usize]) -> Tensor {
        Tensor::full(device, shape, 1.0)
    }
    /// Zeros of this tensor's shape, on its device.
    #[track_caller]
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros(self.device(), self.shape())
    }
}

static WHERE: Shader = shader!("where", "where.wgsl");

struct Where {
    out: Vec<usize>,
    shapes: [Vec<usize>; 3],
}

impl Op for Where {
    fn name(&self) -> &'static str {
        "where"
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        let s = &self.shapes;
        let y = &mut *outs[0];
        walk_broadcast(&self.out, &[&s[0], &s[1], &s[2]], |i, o| {
            y[i] = if ins[0][o[0]] != 0.0 {
                ins[1][o[1]]
            } else {
                ins[2][o[2]]
            };
        });
    }
    fn kernel(&self) -> Kernel {
        let s = &self.shapes;
        let p = Addressing::new(&self.out, &[&s[0], &s[1], &s[2]]);
        Kernel::per_element(&WHERE, &p, numel(&self.out))
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (c, g) = (&ctx.inputs[0], ctx.grad);
        let zero = Tensor::zeros(g.device(), &[]);
        vec![
            None,
            Some(c.where_cond(g, &zero)),
            Some(c.where_cond(&zero, g)),
        ]
    }
}

static FULL: Shader = shader!("full", "full.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FullParams {
    n: u32,
    value: f32,
}

struct Full {
    n: usize,
    value: f32,
}

impl Op for Full {
    fn name(&self) -> &'static str {
        "full"
    }
    fn cpu(&self, _: &[&[f64]], outs: &mut [&mut [f64]]) {
        outs[0].fill(self.value as f64);
    }
    fn kernel(&self) -> Kernel {
        let p = FullParams {
            n: self.n as u32,
            value: self.value,
        };
        Kernel::per_vec4(&FULL, &p, self.n)
    }
    fn differentiable(&self) -> bool {
        false
    }
}
