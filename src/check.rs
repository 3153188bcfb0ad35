//! The differential table: one row per op and shape set. Each row drives three checks — a
//! finite-difference gradcheck of the backward rule on the CPU reference (f64), the GPU forward
//! against the CPU reference, and the GPU backward against the CPU backward. The test suite and
//! `wgrad check` run the same rows.

use std::fmt;
use std::rc::Rc;

use crate::nn::Activation;
use crate::ops::matmul::Variant;
use crate::optim::{Adam, Optimizer, Rprop, Sgd};
use crate::rng::Rng;
use crate::{Device, Grads, Result, Tensor};

/// How a row's input values are drawn (always f32-representable, so both backends see the same).
#[derive(Clone, Debug)]
pub enum Gen {
    /// Standard normal.
    Normal,
    /// Normal, but at least 0.05 away from each listed point (the kinks of relu, abs, clamp).
    Away(&'static [f64]),
    /// Uniform on [0.5, 2] (logarithms, roots, divisors).
    Positive,
    /// Integers in [0, n) (labels, row indices).
    Integers(usize),
    /// 0 or 1.
    Mask,
}

/// One input of a row.
#[derive(Clone, Debug)]
pub struct Input {
    pub shape: Vec<usize>,
    pub values: Gen,
    /// Whether the gradient with respect to this input is checked.
    pub grad: bool,
}

type Build = Rc<dyn Fn(&Device, &[Tensor]) -> Tensor>;

/// One row of the table.
#[derive(Clone)]
pub struct Case {
    /// The op under test, as `Tensor` names it.
    pub op: &'static str,
    pub inputs: Vec<Input>,
    build: Build,
    /// Forward tolerance, GPU (f32) against CPU (f64): |gpu − cpu| ≤ atol + rtol·|cpu|.
    pub atol: f64,
    pub rtol: f64,
    /// Run the finite-difference gradcheck (small rows with differentiable inputs).
    pub gradcheck: bool,
    /// Compare GPU and CPU gradients.
    pub backward: bool,
    /// Seed of the inputs, the loss weights and any random op in the row.
    pub seed: u64,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label())
    }
}

/// Rows with more elements than this skip the finite-difference gradcheck.
const GRADCHECK_MAX: usize = 300;

impl Case {
    fn new(
        op: &'static str,
        inputs: Vec<Input>,
        build: impl Fn(&Device, &[Tensor]) -> Tensor + 'static,
    ) -> Case {
        let any_grad = inputs.iter().any(|i| i.grad);
        let small = inputs
            .iter()
            .map(|i| crate::shape::numel(&i.shape))
            .sum::<usize>()
            <= GRADCHECK_MAX;
        Case {
            op,
            inputs,
            build: Rc::new(build),
            atol: 1e-5,
            rtol: 1e-5,
            gradcheck: any_grad && small,
            backward: any_grad,
            seed: 0,
        }
    }

    fn tol(mut self, atol: f64, rtol: f64) -> Case {
        self.atol = atol;
        self.rtol = rtol;
        self
    }

    fn forward_only(mut self) -> Case {
        self.gradcheck = false;
        self.backward = false;
        self
    }

    /// "op [shape] [shape]".
    pub fn label(&self) -> String {
        let shapes: Vec<String> = self
            .inputs
            .iter()
            .map(|i| format!("{:?}", i.shape))
            .collect();
        format!("{} {}", self.op, shapes.join(" "))
    }

    /// Total elements of the inputs.
    pub fn size(&self) -> usize {
        self.inputs
            .iter()
            .map(|i| crate::shape::numel(&i.shape))
            .sum()
    }

    fn values(&self) -> Vec<Vec<f64>> {
        let mut rng = Rng::new(crate::rng::mix(self.seed, 1));
        self.inputs
            .iter()
            .map(|input| {
                let n = crate::shape::numel(&input.shape);
                (0..n).map(|_| draw(&mut rng, &input.values)).collect()
            })
            .collect()
    }

    fn tensors(&self, dev: &Device, values: &[Vec<f64>]) -> Result<Vec<Tensor>> {
        self.inputs
            .iter()
            .zip(values)
            .map(|(input, v)| {
                let t = Tensor::from_f64(dev, v, &input.shape)?;
                t.set_requires_grad(input.grad);
                Ok(t)
            })
            .collect()
    }

    fn forward(&self, dev: &Device, inputs: &[Tensor]) -> Tensor {
        dev.manual_seed(self.seed);
        (self.build)(dev, inputs)
    }

    /// Σ out · w for fixed weights w, so every output element gets its own upstream gradient.
    fn loss(&self, dev: &Device, out: &Tensor) -> Result<Tensor> {
        let mut rng = Rng::new(crate::rng::mix(self.seed, 2));
        let w: Vec<f64> = (0..out.numel())
            .map(|_| draw(&mut rng, &Gen::Normal))
            .collect();
        let w = Tensor::from_f64(dev, &w, out.shape())?;
        Ok(out.mul(&w).sum_all())
    }
}

fn draw(rng: &mut Rng, how: &Gen) -> f64 {
    let normal = |rng: &mut Rng| {
        let w = [rng.next_u32(), rng.next_u32(), 0, 0];
        crate::rng::normal(w) as f32 as f64
    };
    match how {
        Gen::Normal => normal(rng),
        Gen::Away(points) => loop {
            let v = normal(rng);
            if points.iter().all(|p| (v - p).abs() >= 0.05) {
                break v;
            }
        },
        Gen::Positive => (0.5 + 1.5 * rng.uniform()) as f64,
        Gen::Integers(n) => rng.below(*n) as f64,
        Gen::Mask => rng.below(2) as f64,
    }
}

/// How far one set of values is from a reference.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub max_abs: f64,
    /// Largest |got − want| / |want| over elements whose reference is not zero.
    pub max_rel: f64,
    /// The element that most exceeds the tolerance (or is largest in error): index, got, want.
    pub worst: Option<(usize, f64, f64)>,
    pub pass: bool,
}

impl Comparison {
    /// Compare `got` with `want` elementwise: |got − want| ≤ atol + rtol·|want|; NaN matches NaN.
    pub fn new(got: &[f64], want: &[f64], atol: f64, rtol: f64) -> Comparison {
        let mut c = Comparison {
            pass: got.len() == want.len(),
            ..Default::default()
        };
        let mut worst_excess = f64::NEG_INFINITY;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let same = g == w || (g.is_nan() && w.is_nan());
            let err = if same { 0.0 } else { (g - w).abs() };
            let err = if err.is_nan() { f64::INFINITY } else { err };
            c.max_abs = c.max_abs.max(err);
            if w != 0.0 {
                c.max_rel = c.max_rel.max(err / w.abs());
            }
            let excess = err - (atol + rtol * w.abs());
            if excess > worst_excess {
                worst_excess = excess;
                c.worst = Some((i, g, w));
            }
            if excess > 0.0 {
                c.pass = false;
            }
        }
        c
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max abs {:.2e}, max rel {:.2e}",
            self.max_abs, self.max_rel
        )?;
        if let Some((i, g, w)) = self.worst {
            write!(f, "; worst at [{i}]: got {g:e}, want {w:e}")?;
        }
        Ok(())
    }
}

/// Results of one row on one adapter.
#[derive(Debug)]
pub struct Report {
    pub label: String,
    pub op: &'static str,
    pub forward: Comparison,
    /// One per input whose gradient is checked.
    pub backward: Vec<Comparison>,
}

impl Report {
    pub fn pass(&self) -> bool {
        self.forward.pass && self.backward.iter().all(|c| c.pass)
    }
}

/// Run a row on `gpu` and on the CPU reference and compare outputs (and gradients).
pub fn differential(case: &Case, gpu: &Device) -> Result<Report> {
    let cpu = Device::cpu();
    let values = case.values();
    let (xg, xc) = (case.tensors(gpu, &values)?, case.tensors(&cpu, &values)?);
    let (yg, yc) = (case.forward(gpu, &xg), case.forward(&cpu, &xc));
    let forward = Comparison::new(&yg.to_vec_f64()?, &yc.to_vec_f64()?, case.atol, case.rtol);
    let mut backward = Vec::new();
    if case.backward {
        let (gg, gc) = (
            case.loss(gpu, &yg)?.backward(),
            case.loss(&cpu, &yc)?.backward(),
        );
        for (i, input) in case.inputs.iter().enumerate() {
            if input.grad {
                let got = gg.wrt(&xg[i]).to_vec_f64()?;
                let want = gc.wrt(&xc[i]).to_vec_f64()?;
                // Gradients chain a few more f32 roundings than the forward value.
                backward.push(Comparison::new(
                    &got,
                    &want,
                    case.atol * 4.0,
                    case.rtol * 4.0,
                ));
            }
        }
    }
    Ok(Report {
        label: case.label(),
        op: case.op,
        forward,
        backward,
    })
}

/// Finite differences on the CPU reference: for every element of every differentiable input,
/// (L(x + ε) − L(x − ε)) / 2ε against the backward rule's gradient.
pub fn gradcheck(case: &Case) -> Result<Vec<Comparison>> {
    let cpu = Device::cpu();
    let values = case.values();
    let x = case.tensors(&cpu, &values)?;
    let grads = case.loss(&cpu, &case.forward(&cpu, &x))?.backward();
    let loss_at = |vals: &[Vec<f64>]| -> Result<f64> {
        let t = case.tensors(&cpu, vals)?;
        let _ng = cpu.no_grad();
        Ok(case.loss(&cpu, &case.forward(&cpu, &t))?.to_vec_f64()?[0])
    };
    let mut out = Vec::new();
    for (i, input) in case.inputs.iter().enumerate() {
        if !input.grad {
            continue;
        }
        let analytic = grads.wrt(&x[i]).to_vec_f64()?;
        let mut numeric = Vec::with_capacity(analytic.len());
        for e in 0..values[i].len() {
            let eps = 1e-6 * values[i][e].abs().max(1.0);
            let mut vals = values.clone();
            vals[i][e] = values[i][e] + eps;
            let up = loss_at(&vals)?;
            vals[i][e] = values[i][e] - eps;
            let down = loss_at(&vals)?;
            numeric.push((up - down) / (2.0 * eps));
        }
        out.push(Comparison::new(&analytic, &numeric, 1e-6, 1e-5));
    }
    Ok(out)
}

fn x(shape: &[usize]) -> Input {
    Input {
        shape: shape.to_vec(),
        values: Gen::Normal,
        grad: true,
    }
}
fn away(shape: &[usize], kinks: &'static [f64]) -> Input {
    Input {
        shape: shape.to_vec(),
        values: Gen::Away(kinks),
        grad: true,
    }
}
fn pos(shape: &[usize]) -> Input {
    Input {
        shape: shape.to_vec(),
        values: Gen::Positive,
        grad: true,
    }
}
fn ints(shape: &[usize], n: usize) -> Input {
    Input {
        shape: shape.to_vec(),
        values: Gen::Integers(n),
        grad: false,
    }
}
fn mask(shape: &[usize]) -> Input {
    Input {
        shape: shape.to_vec(),
        values: Gen::Mask,
        grad: false,
    }
}
fn fixed(input: Input) -> Input {
    Input {
        grad: false,
        ..input
    }
}

/// Elements in a tensor that needs more than 65,535 workgroups of 256 in one dimension.
pub const BIG: usize = 65_536 * 256 + 1;

/// Every row of the table, seeded by position.
pub fn cases() -> Vec<Case> {
    let mut t: Vec<Case> = Vec::new();
    let sizes: [&[usize]; 6] = [&[], &[1], &[63], &[64], &[65], &[3, 5]];

    // Unary functions: every size, plus a grid beyond 65,535 workgroups for one of them.
    type U = fn(&Tensor) -> Tensor;
    type In = fn(&[usize]) -> Input;
    let unary: [(&str, U, In); 20] = [
        ("neg", |a| a.neg(), x),
        ("exp", |a| a.exp(), x),
        ("log", |a| a.log(), pos),
        ("sqrt", |a| a.sqrt(), pos),
        ("abs", |a| a.abs(), |s| away(s, &[0.0])),
        ("relu", |a| a.relu(), |s| away(s, &[0.0])),
        ("leaky_relu", |a| a.leaky_relu(0.1), |s| away(s, &[0.0])),
        ("sigmoid", |a| a.sigmoid(), x),
        ("tanh", |a| a.tanh(), x),
        ("gelu", |a| a.gelu(), x),
        ("softplus", |a| a.softplus(), x),
        ("elu", |a| a.elu(1.0), |s| away(s, &[0.0])),
        ("affine", |a| a.affine(-1.5, 0.25), x),
        ("square", |a| a.square(), x),
        ("powf", |a| a.powf(3.0), x),
        ("recip", |a| a.recip(), pos),
        ("clamp", |a| a.clamp(-0.5, 0.5), |s| away(s, &[-0.5, 0.5])),
        ("sin", |a| a.sin(), x),
        ("cos", |a| a.cos(), x),
        ("copy", |a| a.copy(), x),
    ];
    for (op, f, input) in unary {
        for s in sizes {
            t.push(Case::new(op, vec![input(s)], move |_, v| f(&v[0])));
        }
    }
    t.push(Case::new("relu", vec![away(&[BIG], &[0.0])], |_, v| v[0].relu()).forward_only());

    // Binary functions with broadcasting.
    type B = fn(&Tensor, &Tensor) -> Tensor;
    let binary: [(&str, B, In, In); 8] = [
        ("add", |a, b| a.add(b), x, x),
        ("sub", |a, b| a.sub(b), x, x),
        ("mul", |a, b| a.mul(b), x, x),
        ("div", |a, b| a.div(b), x, pos),
        ("pow", |a, b| a.pow(b), pos, x),
        ("maximum", |a, b| a.maximum(b), x, x),
        ("minimum", |a, b| a.minimum(b), x, x),
        (
            "bce_logits",
            |a, b| a.bce_logits_elementwise(b),
            x,
            |s| fixed(pos(s)),
        ),
    ];
    let pairs: [(&[usize], &[usize]); 7] = [
        (&[], &[]),
        (&[65], &[65]),
        (&[4, 5], &[5]),
        (&[4, 1], &[1, 5]),
        (&[2, 3, 4], &[3, 1]),
        (&[3], &[2, 3]),
        (&[2, 1, 3, 1], &[4, 1, 2]),
    ];
    for (op, f, ia, ib) in binary {
        for (sa, sb) in pairs {
            t.push(Case::new(op, vec![ia(sa), ib(sb)], move |_, v| {
                f(&v[0], &v[1])
            }));
        }
    }
    t.push(Case::new("add", vec![x(&[BIG]), x(&[1])], |_, v| v[0].add(&v[1])).forward_only());
    type C = fn(&Tensor, &Tensor) -> Tensor;
    let compare: [(&str, C); 6] = [
        ("lt", |a, b| a.lt(b)),
        ("le", |a, b| a.le(b)),
        ("gt", |a, b| a.gt(b)),
        ("ge", |a, b| a.ge(b)),
        ("eq", |a, b| a.eq_(b)),
        ("ne", |a, b| a.ne_(b)),
    ];
    for (op, f) in compare {
        // Small integers, so equal pairs occur.
        let ins = vec![fixed(ints(&[4, 6], 3)), fixed(ints(&[6], 3))];
        t.push(Case::new(op, ins, move |_, v| f(&v[0], &v[1])));
    }
    for (sc, sa, sb) in [
        (&[5][..], &[5][..], &[5][..]),
        (&[3, 4], &[4], &[3, 1]),
        (&[2, 3], &[], &[2, 3]),
    ] {
        let ins = vec![mask(sc), x(sa), x(sb)];
        t.push(Case::new("where", ins, |_, v| v[1].where_(&v[0], &v[2])));
    }
    t.push(Case::new("full", vec![], |d, _| {
        Tensor::full(d, &[7, 9], 2.5)
    }));

    // Matrix products through every kernel: tile edges (1, 7, 8, 63, 64, 65), both transposes,
    // batches, broadcast batches, and matrices under 8 rows (computed transposed).
    let mm: [(&[usize], &[usize], bool, bool); 15] = [
        (&[1, 1], &[1, 1], false, false),
        (&[3, 4], &[4, 5], false, false),
        (&[63, 64], &[64, 65], false, false),
        (&[65, 17], &[17, 63], false, false),
        (&[4, 7], &[4, 5], true, false),
        (&[3, 4], &[5, 4], false, true),
        (&[7, 3], &[5, 7], true, true),
        (&[2, 3, 4], &[2, 4, 5], false, false),
        (&[2, 3, 4], &[4, 5], false, false),
        (&[4, 3], &[2, 4, 5], true, false),
        (&[2, 5, 3], &[2, 6, 5], true, true),
        (&[3, 20], &[20, 70], false, false),
        (&[9, 8], &[8, 129], false, false),
        // Whole 128×128 tiles with a partial last slab of k, plain and transposed.
        (&[130, 20], &[20, 131], false, false),
        (&[20, 130], &[131, 20], true, true),
    ];
    let variants = [
        ("matmul", Variant::Auto),
        ("matmul_naive", Variant::Naive),
        ("matmul_tiled", Variant::Tiled),
        ("matmul_subgroup", Variant::Subgroup),
        ("matmul_shared", Variant::Shared),
    ];
    for (sa, sb, ta, tb) in mm {
        for (op, variant) in variants {
            let ins = vec![x(sa), x(sb)];
            t.push(Case::new(op, ins, move |_, v| {
                v[0].matmul_variant(&v[1], ta, tb, variant)
            }));
        }
    }
    for (op, variant) in variants {
        let ins = vec![x(&[130, 257]), x(&[257, 70])];
        t.push(
            Case::new(op, ins, move |_, v| {
                v[0].matmul_variant(&v[1], false, false, variant)
            })
            .tol(1e-4, 1e-5),
        );
    }
    t.push(Case::new("matmul", vec![x(&[9, 6]), x(&[5, 6])], |_, v| {
        v[0].matmul(&v[1].t())
    }));
    t.push(
        Case::new(
            "matmul",
            vec![x(&[65_537, 2, 3]), x(&[65_537, 3, 2])],
            |_, v| v[0].matmul(&v[1]),
        )
        .forward_only(),
    );

    // A dense layer in one dispatch: act(x·Wᵀ + b) through every kernel and fused activation.
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Elu(1.0),
        Activation::Gelu,
    ];
    for act in acts {
        for (op, variant) in variants {
            let op = match op {
                "matmul" => "linear",
                "matmul_naive" => "linear_naive",
                "matmul_tiled" => "linear_tiled",
                "matmul_shared" => "linear_shared",
                _ => "linear_subgroup",
            };
            // Inputs away from 0 keep the kinks of relu-like activations out of finite differences.
            let ins = vec![away(&[5, 6], &[0.0]), x(&[7, 6]), x(&[7])];
            t.push(
                Case::new(op, ins, move |_, v| {
                    v[0].linear_variant(&v[1], Some(&v[2]), act, variant)
                })
                .tol(2e-5, 1e-5),
            );
        }
    }
    t.push(Case::new(
        "linear",
        vec![x(&[2, 3, 9]), x(&[4, 9])],
        |_, v| v[0].linear(&v[1], None, Activation::Tanh),
    ));
    t.push(Case::new(
        "linear",
        vec![x(&[70, 33]), x(&[66, 33]), x(&[66])],
        |_, v| v[0].linear(&v[1], Some(&v[2]), Activation::Sigmoid),
    ));

    // Reductions: axes, keepdim, long axes (two passes), empty results are tested apart.
    type R = fn(&Tensor, isize, bool) -> Tensor;
    let reduce: [(&str, R); 5] = [
        ("sum", |a, ax, k| a.sum(ax, k)),
        ("mean", |a, ax, k| a.mean(ax, k)),
        ("max", |a, ax, k| a.max(ax, k)),
        ("min", |a, ax, k| a.min(ax, k)),
        ("var", |a, ax, k| a.var(ax, k)),
    ];
    let axes: [(&[usize], isize, bool); 5] = [
        (&[1], 0, false),
        (&[7], 0, true),
        (&[4, 5], 1, false),
        (&[3, 4, 5], 1, true),
        (&[3, 4, 5], -3, false),
    ];
    for (op, f) in reduce {
        for (s, ax, k) in axes {
            t.push(Case::new(op, vec![x(s)], move |_, v| f(&v[0], ax, k)));
        }
        t.push(Case::new(op, vec![x(&[3, 5000])], move |_, v| f(&v[0], 1, false)).tol(1e-4, 1e-4));
    }
    t.push(Case::new("sum", vec![x(&[1_000_003])], |_, v| v[0].sum(0, false)).tol(1e-2, 1e-5));
    t.push(Case::new("sum", vec![x(&[BIG, 1])], |_, v| v[0].sum(1, false)).forward_only());
    t.push(Case::new("sum_all", vec![x(&[4, 5])], |_, v| {
        v[0].sum_all()
    }));
    t.push(Case::new("mean_all", vec![x(&[4, 5])], |_, v| {
        v[0].mean_all()
    }));
    t.push(Case::new("max_all", vec![x(&[4, 5])], |_, v| {
        v[0].max_all()
    }));
    t.push(Case::new("argmax", vec![fixed(x(&[6, 9]))], |_, v| {
        v[0].argmax(1, false)
    }));
    t.push(Case::new("argmax", vec![fixed(x(&[4, 3, 2]))], |_, v| {
        v[0].argmax(0, true)
    }));

    // Shape ops.
    t.push(Case::new("reshape", vec![x(&[2, 6])], |_, v| {
        v[0].reshape(&[3, 4]).square()
    }));
    t.push(Case::new("detach", vec![fixed(x(&[5]))], |_, v| {
        v[0].detach()
    }));
    t.push(Case::new("permute", vec![x(&[2, 3, 4])], |_, v| {
        v[0].permute(&[2, 0, 1])
    }));
    t.push(Case::new("transpose", vec![x(&[5, 7])], |_, v| v[0].t()));
    t.push(Case::new("transpose", vec![x(&[300, 301])], |_, v| {
        v[0].t()
    }));
    t.push(Case::new("broadcast_to", vec![x(&[3, 1])], |_, v| {
        v[0].broadcast_to(&[2, 3, 4])
    }));
    t.push(Case::new("narrow", vec![x(&[4, 6])], |_, v| {
        v[0].narrow(1, 2, 3)
    }));
    t.push(Case::new("narrow", vec![x(&[5, 2, 3])], |_, v| {
        v[0].narrow(0, 1, 3)
    }));
    t.push(Case::new("pad", vec![x(&[3, 2])], |_, v| v[0].pad(0, 1, 2)));
    t.push(Case::new("concat", vec![x(&[2, 3]), x(&[2, 4])], |_, v| {
        Tensor::concat(&[&v[0], &v[1]], 1)
    }));
    t.push(Case::new(
        "concat",
        vec![x(&[1, 3]), x(&[2, 3]), x(&[3, 3])],
        |_, v| Tensor::concat(&[&v[0], &v[1], &v[2]], 0),
    ));
    t.push(Case::new(
        "gather_rows",
        vec![x(&[5, 3]), ints(&[7], 5)],
        |_, v| v[0].gather_rows(&v[1]),
    ));
    t.push(Case::new("one_hot", vec![ints(&[9], 4)], |_, v| {
        v[0].one_hot(4)
    }));

    // Softmax family and losses.
    for s in [&[1, 1][..], &[4, 10], &[3, 65], &[2, 3, 5]] {
        t.push(Case::new("softmax", vec![x(s)], |_, v| v[0].softmax()));
        t.push(Case::new("log_softmax", vec![x(s)], |_, v| {
            v[0].log_softmax()
        }));
    }
    t.push(Case::new("softmax", vec![x(&[65_537 * 64, 2])], |_, v| v[0].softmax()).forward_only());
    t.push(Case::new(
        "cross_entropy",
        vec![x(&[6, 10]), ints(&[6], 10)],
        |_, v| v[0].cross_entropy(&v[1]),
    ));
    t.push(Case::new(
        "cross_entropy",
        vec![x(&[1, 3]), ints(&[1], 3)],
        |_, v| v[0].cross_entropy(&v[1]),
    ));
    t.push(Case::new("mse", vec![x(&[4, 6]), x(&[4, 6])], |_, v| {
        v[0].mse(&v[1])
    }));
    t.push(Case::new(
        "bce_with_logits",
        vec![x(&[8]), fixed(pos(&[8]))],
        |_, v| v[0].bce_with_logits(&v[1].affine(0.5, -0.2)),
    ));

    // Random numbers: the same seed must give the same values on every backend.
    t.push(Case::new("rand", vec![], |d, _| Tensor::rand(d, &[1000])).tol(0.0, 0.0));
    t.push(Case::new("uniform", vec![], |d, _| {
        Tensor::uniform(d, &[257], -2.0, 3.0)
    }));
    t.push(Case::new("randn", vec![], |d, _| Tensor::randn(d, &[1000])).tol(1e-5, 1e-4));
    t.push(
        Case::new("bernoulli", vec![], |d, _| {
            Tensor::bernoulli(d, &[1000], 0.3)
        })
        .tol(0.0, 0.0),
    );
    t.push(Case::new("dropout", vec![x(&[20])], |_, v| {
        v[0].dropout(0.25)
    }));

    // Optimizer updates: three steps with gradients g1, g2, g1; the row's output is the
    // parameter followed by the optimizer's state.
    type MakeOpt = fn(&[(String, Tensor)]) -> Box<dyn Optimizer>;
    let optimizers: [(&str, MakeOpt); 6] = [
        ("sgd", |p| Box::new(Sgd::new(p, 0.1).weight_decay(0.01))),
        ("sgd_momentum", |p| Box::new(Sgd::new(p, 0.1).momentum(0.9))),
        ("sgd_momentum", |p| {
            Box::new(Sgd::new(p, 0.05).momentum(0.8).nesterov().weight_decay(0.1))
        }),
        ("adam", |p| Box::new(Adam::new(p, 0.01).weight_decay(0.05))),
        ("adam", |p| Box::new(Adam::adamw(p, 0.01, 0.1))),
        ("rprop", |p| Box::new(Rprop::new(p))),
    ];
    for (op, make) in optimizers {
        for s in [&[1][..], &[65], &[3, 5]] {
            let ins = vec![fixed(x(s)), fixed(x(s)), fixed(x(s))];
            t.push(
                Case::new(op, ins, move |_, v| {
                    let mut opt = make(&[("p".to_string(), v[0].clone())]);
                    for g in [&v[1], &v[2], &v[1]] {
                        let mut grads = Grads::new();
                        grads.insert(&v[0], g.clone());
                        opt.record(&grads);
                    }
                    let mut parts = vec![v[0].reshape(&[v[0].numel()])];
                    parts.extend(opt.state().iter().map(|(_, t)| t.reshape(&[t.numel()])));
                    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
                })
                .tol(1e-5, 1e-4),
            );
        }
    }

    for (i, c) in t.iter_mut().enumerate() {
        c.seed = i as u64 + 1;
    }
    t
}

/// Rows of the table whose op is `name`.
pub fn cases_for(name: &str) -> Vec<Case> {
    cases().into_iter().filter(|c| c.op == name).collect()
}
