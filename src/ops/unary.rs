//! Elementwise functions of one tensor. Each row of [`UNARY`] is one function: its WGSL body
//! (`shaders/unary/<name>.wgsl`, defining `f` and `df`), its f64 reference and derivative.
//! The backward pass is one fused kernel, dx = dy · df(x, y).

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, Op, Shader, shader};

/// One elementwise function: kernels and reference. `a`, `b` are its scalar parameters.
pub(crate) struct UnaryDef {
    pub name: &'static str,
    forward: Shader,
    backward: Shader,
    f: fn(f64, f64, f64) -> f64,
    df: fn(f64, f64, f64, f64) -> f64,
}

macro_rules! unary_row {
    ($name:literal, $f:expr, $df:expr) => {
        UnaryDef {
            name: $name,
            forward: shader!(
                concat!("unary/", $name),
                "unary/_forward.wgsl",
                concat!("unary/", $name, ".wgsl")
            ),
            backward: shader!(
                concat!("unary/", $name, ".backward"),
                "unary/_backward.wgsl",
                concat!("unary/", $name, ".wgsl")
            ),
            f: $f,
            df: $df,
        }
    };
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

fn power(x: f64, e: f64) -> f64 {
    if e == 0.0 { 1.0 } else { x.powf(e) }
}

/// Φ(x), the standard normal CDF, from libm's erfc (accurate to the last bits of an f64, also in
/// the tails).
fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// √(2/π) and the cubic coefficient of GELU's tanh form.
const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_K: f64 = 0.044715;

/// The unary functions, in the order of [`Unary`]'s `f` index.
pub(crate) static UNARY: [UnaryDef; 22] = [
    unary_row!("neg", |x, _, _| -x, |_, _, _, _| -1.0),
    unary_row!("exp", |x, _, _| x.exp(), |_, y, _, _| y),
    unary_row!("log", |x, _, _| x.ln(), |x, _, _, _| 1.0 / x),
    unary_row!("sqrt", |x, _, _| x.sqrt(), |_, y, _, _| 0.5 / y),
    unary_row!("abs", |x, _, _| x.abs(), |x, _, _, _| if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }),
    unary_row!("relu", |x, _, _| x.max(0.0), |x, _, _, _| if x > 0.0 {
        1.0
    } else {
        0.0
    }),
    unary_row!(
        "leaky_relu",
        |x, a, _| if x > 0.0 { x } else { a * x },
        |x, _, a, _| if x > 0.0 { 1.0 } else { a }
    ),
    unary_row!("sigmoid", |x, _, _| sigmoid(x), |_, y, _, _| y * (1.0 - y)),
    unary_row!("tanh", |x, _, _| x.tanh(), |_, y, _, _| 1.0 - y * y),
    unary_row!(
        "gelu",
        |x, _, _| x * normal_cdf(x),
        |x, _, _, _| normal_cdf(x) + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
    ),
    unary_row!(
        "gelu_tanh",
        // (1 + tanh u)/2 = σ(2u): no cancellation in the negative tail.
        |x, _, _| x * sigmoid(2.0 * GELU_C * (x + GELU_K * x.powi(3))),
        |x, _, _, _| {
            let s = sigmoid(2.0 * GELU_C * (x + GELU_K * x.powi(3)));
            s + 2.0 * x * s * (1.0 - s) * GELU_C * (1.0 + 3.0 * GELU_K * x * x)
        }
    ),
    unary_row!(
        "softplus",
        |x, _, _| x.max(0.0) + (-x.abs()).exp().ln_1p(),
        |x, _, _, _| sigmoid(x)
    ),
    unary_row!(
        "elu",
        |x, a, _| if x > 0.0 { x } else { a * x.exp_m1() },
        |x, y, a, _| if x > 0.0 { 1.0 } else { y + a }
    ),
    unary_row!("affine", |x, a, b| a * x + b, |_, _, a, _| a),
    unary_row!("square", |x, _, _| x * x, |x, _, _, _| 2.0 * x),
    unary_row!("powf", |x, a, _| power(x, a), |x, _, a, _| a * power(
        x,
        a - 1.0
    )),
    unary_row!("recip", |x, _, _| 1.0 / x, |_, y, _, _| -y * y),
    unary_row!(
        "clamp",
        |x, a, b| x.max(a).min(b),
        |x, _, a, b| if x >= a && x <= b { 1.0 } else { 0.0 }
    ),
    unary_row!("sin", |x, _, _| x.sin(), |x, _, _, _| x.cos()),
    unary_row!("cos", |x, _, _| x.cos(), |x, _, _, _| -x.sin()),
    unary_row!("copy", |x, _, _| x, |_, _, _, _| 1.0),
    unary_row!(
        "sign",
        |x, _, _| if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        },
        |_, _, _, _| 0.0
    ),
];

fn def(name: &str) -> usize {
    UNARY
        .iter()
        .position(|d| d.name == name)
        .unwrap_or_else(|| panic!("no unary function `{name}`"))
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad: u32,
    a: f32,
    b: f32,
}

struct Unary {
    f: usize,
    a: f32,
    b: f32,
}

impl Op for Unary {
    fn name(&self) -> &'static str {
        UNARY[self.f].name
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (f, a, b) = (UNARY[self.f].f, self.a as f64, self.b as f64);
        for (y, &x) in outs[0].iter_mut().zip(ins[0].values) {
            *y = f(x, a, b);
        }
    }
    fn kernel(&self, _: &[&Layout], out: &Layout) -> Kernel {
        let n = out.numel();
        let p = Params {
            n: n as u32,
            _pad: 0,
            a: self.a,
            b: self.b,
        };
        Kernel::per_vec4(&UNARY[self.f].forward, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let op = UnaryGrad {
            f: self.f,
            a: self.a,
            b: self.b,
        };
        let shape = ctx.output.shape().to_vec();
        vec![Some(Tensor::record(
            op,
            &[&ctx.inputs[0], ctx.output, ctx.grad],
            shape,
        ))]
    }
}

/// dx = dy · df(x, y): the backward kernel of a [`Unary`].
struct UnaryGrad {
    f: usize,
    a: f32,
    b: f32,
}

impl Op for UnaryGrad {
    fn name(&self) -> &'static str {
        "unary_backward"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (df, a, b) = (UNARY[self.f].df, self.a as f64, self.b as f64);
        let (x, y, dy) = (ins[0].values, ins[1].values, ins[2].values);
        for (i, dx) in outs[0].iter_mut().enumerate() {
            *dx = dy[i] * df(x[i], y[i], a, b);
        }
    }
    fn kernel(&self, _: &[&Layout], out: &Layout) -> Kernel {
        let n = out.numel();
        let p = Params {
            n: n as u32,
            _pad: 0,
            a: self.a,
            b: self.b,
        };
        Kernel::per_vec4(&UNARY[self.f].backward, &p, n)
    }
}

/// The f64 reference of unary function `name` with parameter `a` (fused epilogues use it).
pub(crate) fn reference(name: &str, a: f32) -> impl Fn(f64) -> f64 {
    let f = UNARY[def(name)].f;
    move |x| f(x, a as f64, 0.0)
}

/// dx = dy · f'(x) computed from y = f(x) alone: exact for the functions whose derivative is a
/// function of their output (relu, leaky relu, sigmoid, tanh, elu), which fused epilogues use.
pub(crate) fn grad_from_output(name: &str, a: f32, y: &Tensor, dy: &Tensor) -> Tensor {
    let op = UnaryGrad {
        f: def(name),
        a,
        b: 0.0,
    };
    Tensor::record(op, &[y, y, dy], y.shape().to_vec())
}

/// Overwrite a leaf's values in place (`target ← value`), through the identity kernel.
struct Assign;

impl Op for Assign {
    fn name(&self) -> &'static str {
        "assign"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        outs[0].copy_from_slice(ins[0].values);
    }
    fn kernel(&self, ins: &[&Layout], _: &Layout) -> Kernel {
        let n = ins[0].numel();
        let p = Params {
            n: n as u32,
            _pad: 0,
            a: 0.0,
            b: 0.0,
        };
        Kernel::per_vec4(&UNARY[def("copy")].forward, &p, n)
    }
}

impl Tensor {
    /// Overwrite this leaf (a parameter) with `value`, in place, when the tape runs. Backward
    /// passes recorded before the assignment refuse to run afterwards, since they would read
    /// the new values.
    #[track_caller]
    pub fn assign(&self, value: &Tensor) {
        assert_eq!(
            self.shape(),
            value.shape(),
            "assign: target {:?} and value {:?} differ in shape",
            self.shape(),
            value.shape()
        );
        if self.numel() > 0 {
            Tensor::record_update(Assign, &[value], &[self]);
        }
    }

    /// Apply the elementwise function named `name` (a row of the unary table) with parameters.
    #[track_caller]
    pub(crate) fn unary(&self, name: &str, a: f32, b: f32) -> Tensor {
        let op = Unary { f: def(name), a, b };
        Tensor::record(op, &[self], self.shape().to_vec())
    }

    /// −x
    #[track_caller]
    pub fn neg(&self) -> Tensor {
        self.unary("neg", 0.0, 0.0)
    }
    /// eˣ
    #[track_caller]
    pub fn exp(&self) -> Tensor {
        self.unary("exp", 0.0, 0.0)
    }
    /// Natural logarithm.
    #[track_caller]
    pub fn log(&self) -> Tensor {
        self.unary("log", 0.0, 0.0)
    }
    #[track_caller]
    /// √x
    pub fn sqrt(&self) -> Tensor {
        self.unary("sqrt", 0.0, 0.0)
    }
    #[track_caller]
    /// |x| (the gradient at 0 is 0).
    pub fn abs(&self) -> Tensor {
        self.unary("abs", 0.0, 0.0)
    }
    /// −1, 0 or 1 by the sign of x (`torch.sign`); its gradient is 0 everywhere (FGSM's step).
    #[track_caller]
    pub fn sign(&self) -> Tensor {
        self.unary("sign", 0.0, 0.0)
    }
    #[track_caller]
    /// max(x, 0) (the gradient at 0 is 0).
    pub fn relu(&self) -> Tensor {
        self.unary("relu", 0.0, 0.0)
    }
    /// x for x > 0, `slope`·x otherwise.
    #[track_caller]
    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.unary("leaky_relu", slope, 0.0)
    }
    /// 1 / (1 + e⁻ˣ), stable for any input.
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        self.unary("sigmoid", 0.0, 0.0)
    }
    #[track_caller]
    /// tanh x, finite for every finite x.
    pub fn tanh(&self) -> Tensor {
        self.unary("tanh", 0.0, 0.0)
    }
    /// GELU, x·Φ(x) with Φ the standard normal CDF (the exact erf form: PyTorch's and JAX's
    /// default).
    #[track_caller]
    pub fn gelu(&self) -> Tensor {
        self.unary("gelu", 0.0, 0.0)
    }
    /// GELU in its tanh form, x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³))) (PyTorch's
    /// `approximate="tanh"`, JAX's `approximate=True`).
    #[track_caller]
    pub fn gelu_tanh(&self) -> Tensor {
        self.unary("gelu_tanh", 0.0, 0.0)
    }
    /// ln(1 + eˣ), stable for any input.
    #[track_caller]
    pub fn softplus(&self) -> Tensor {
        self.unary("softplus", 0.0, 0.0)
    }
    /// x for x > 0, α(eˣ − 1) otherwise.
    #[track_caller]
    pub fn elu(&self, alpha: f32) -> Tensor {
        self.unary("elu", alpha, 0.0)
    }
    /// a·x + b in one kernel.
    #[track_caller]
    pub fn affine(&self, a: f32, b: f32) -> Tensor {
        self.unary("affine", a, b)
    }
    #[track_caller]
    /// x²
    pub fn square(&self) -> Tensor {
        self.unary("square", 0.0, 0.0)
    }
    /// xᵉ; negative x is allowed when e is an integer.
    #[track_caller]
    pub fn powf(&self, e: f32) -> Tensor {
        self.unary("powf", e, 0.0)
    }
    /// 1/x
    #[track_caller]
    pub fn recip(&self) -> Tensor {
        self.unary("recip", 0.0, 0.0)
    }
    /// Limit to [lo, hi]; the gradient passes where lo ≤ x ≤ hi.
    #[track_caller]
    pub fn clamp(&self, lo: f32, hi: f32) -> Tensor {
        assert!(lo <= hi, "clamp: lo {lo} > hi {hi}");
        self.unary("clamp", lo, hi)
    }
    #[track_caller]
    /// sin x
    pub fn sin(&self) -> Tensor {
        self.unary("sin", 0.0, 0.0)
    }
    #[track_caller]
    /// cos x
    pub fn cos(&self) -> Tensor {
        self.unary("cos", 0.0, 0.0)
    }
    /// A copy (a new node with the same values; gradients pass unchanged).
    #[track_caller]
    pub fn copy(&self) -> Tensor {
        self.unary("copy", 0.0, 0.0)
    }
}
