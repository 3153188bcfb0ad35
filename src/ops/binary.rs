//! Elementwise functions of two tensors with NumPy broadcasting, `where`, and constant fills.
//! Gradients are written with ordinary ops; the tape sums them back to each input's shape.

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, Op, Shader, shader};
use crate::shape::{self, broadcast_shapes, numel};

/// How a kernel finds input element `i` of the broadcast output (see `binary/_forward.wgsl`):
/// each input's strides as read in the output's index space (0 where it is broadcast), its
/// offset in its storage, and the cheapest addressing rule that fits.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Addressing {
    n: u32,
    rank: u32,
    _pad: [u32; 2],
    mode: [u32; 4],
    div: [u32; 4],
    len: [u32; 4],
    offset: [u32; 4],
    shape: [[u32; 4]; 2],
    strides: [[[u32; 4]; 2]; 3],
}

impl Addressing {
    pub(crate) fn new(out: &[usize], inputs: &[&Layout]) -> Addressing {
        let mut a = Addressing {
            n: numel(out) as u32,
            rank: out.len() as u32,
            _pad: [0; 2],
            mode: [0; 4],
            div: [1; 4],
            len: [1; 4],
            offset: [0; 4],
            shape: crate::op::pack8(out, 1),
            strides: [[[0; 4]; 2]; 3],
        };
        for (k, input) in inputs.iter().enumerate() {
            let st = input.broadcast_strides(out);
            a.strides[k] = crate::op::pack8(&st, 0);
            a.offset[k] = u32::try_from(input.offset).expect("offsets fit u32 indices");
            (a.mode[k], a.div[k], a.len[k]) = mode(out, &st);
        }
        a
    }

    /// Whether every input is the output's shape from offset 0 or a single value: the vec4
    /// kernel's case.
    fn vec4(&self, inputs: usize) -> bool {
        (0..inputs).all(|k| (self.mode[k] == 0 && self.offset[k] == 0) || self.mode[k] == 1)
    }
}

/// Visit every output element with the storage index of each input read as broadcast to it
/// (the CPU reference).
fn walk_broadcast(out: &[usize], inputs: &[&Layout], mut f: impl FnMut(usize, &[usize])) {
    let strides: Vec<Vec<usize>> = inputs.iter().map(|l| l.broadcast_strides(out)).collect();
    let offsets: Vec<usize> = inputs.iter().map(|l| l.offset).collect();
    let mut at = vec![0; inputs.len()];
    shape::walk(out, &strides, |i, o| {
        for ((a, o), off) in at.iter_mut().zip(o).zip(&offsets) {
            *a = o + off;
        }
        f(i, &at)
    });
}

/// The cheapest addressing rule for an input read with `strides` (in the output's index space):
/// 0, the same index (row-major in the output's shape); 1, a single value; 2, `(i / div) % len`
/// for one row-major run of output dims; 3, a strided walk.
fn mode(out: &[usize], strides: &[usize]) -> (u32, u32, u32) {
    let live: Vec<usize> = (0..out.len())
        .filter(|&d| strides[d] != 0 && out[d] != 1)
        .collect();
    if live.is_empty() {
        return (1, 1, 1);
    }
    let (lo, hi) = (live[0], live[live.len() - 1] + 1);
    // Row-major over [lo, hi): each live stride is the product of the dims after it in the run.
    let run_major =
        live.len() == hi - lo && live.iter().all(|&d| strides[d] == numel(&out[d + 1..hi]));
    if run_major && hi == out.len() && out[..lo].iter().all(|&d| d == 1) {
        return (0, 1, 1);
    }
    if run_major {
        let div = numel(&out[hi..]);
        return (2, div as u32, numel(&out[lo..hi]) as u32);
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

/// `f(a, b)` elementwise; reads its inputs through their layouts (views need no copy).
struct Binary {
    f: usize,
}

impl Op for Binary {
    fn name(&self) -> &'static str {
        BINARY[self.f].name
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let f = BINARY[self.f].f;
        let y = &mut *outs[0];
        let out = ins[0].layout.shape.clone();
        let out = broadcast_shapes(&out, &ins[1].layout.shape).expect("checked when recorded");
        walk_broadcast(&out, &[ins[0].layout, ins[1].layout], |i, o| {
            y[i] = f(ins[0].values[o[0]], ins[1].values[o[1]]);
        });
    }
    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let p = Addressing::new(&out.shape, &ins[..2]);
        if p.vec4(2) {
            Kernel::per_vec4(&BINARY[self.f].shader4, &p, out.numel())
        } else {
            Kernel::per_element(&BINARY[self.f].shader, &p, out.numel())
        }
    }
    fn strided(&self) -> bool {
        true
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
        Tensor::record(Binary { f }, &[self, other], out)
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
        Tensor::record(Where, &[self, on_true, on_false], out)
    }

    /// A tensor of `shape` filled with `value`.
    #[track_caller]
    pub fn full(device: &crate::Device, shape: &[usize], value: f32) -> Tensor {
        Tensor::record_on(device, Full { value }, &[], shape.to_vec())
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

/// `cond != 0 ? a : b`; reads its inputs through their layouts.
struct Where;

impl Op for Where {
    fn name(&self) -> &'static str {
        "where"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let y = &mut *outs[0];
        let out = [1, 2].iter().fold(ins[0].layout.shape.clone(), |s, &k| {
            broadcast_shapes(&s, &ins[k].layout.shape).expect("checked when recorded")
        });
        let layouts = [ins[0].layout, ins[1].layout, ins[2].layout];
        walk_broadcast(&out, &layouts, |i, o| {
            y[i] = if ins[0].values[o[0]] != 0.0 {
                ins[1].values[o[1]]
            } else {
                ins[2].values[o[2]]
            };
        });
    }
    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let p = Addressing::new(&out.shape, &ins[..3]);
        Kernel::per_element(&WHERE, &p, out.numel())
    }
    fn strided(&self) -> bool {
        true
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
    value: f32,
}

impl Op for Full {
    fn name(&self) -> &'static str {
        "full"
    }
    fn cpu(&self, _: &[Input], outs: &mut [&mut [f64]]) {
        outs[0].fill(self.value as f64);
    }
    fn kernel(&self, _: &[&Layout], out: &Layout) -> Kernel {
        let n = out.numel();
        let p = FullParams {
            n: n as u32,
            value: self.value,
        };
        Kernel::per_vec4(&FULL, &p, n)
    }
    fn differentiable(&self) -> bool {
        false
    }
}
