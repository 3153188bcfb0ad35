//! The differential-check harness: a [`Case`] (a row) names an op, the shapes and kinds of its
//! inputs and its tolerances; [`differential`] runs it on a GPU device and on the CPU reference
//! (f64) and compares outputs and gradients, and [`gradcheck`] compares its backward rule with
//! finite differences on the CPU reference. Every [`Comparison`] names its worst element.
//! [`validate_shader`] checks a kernel's WGSL and its binding contract without a GPU.
//! wgrad's own table of rows (every built-in op) lives in the `wgrad-cli` crate, which `wgrad
//! check` and the test suite run; users build rows for their own ops the same way:
//!
//! ```
//! use wgrad::check::{self, Case, Input};
//! let row = Case::new("softplus", vec![Input::normal(&[3, 5])], |_, x| x[0].softplus());
//! for c in check::gradcheck(&row)? {
//!     assert!(c.pass, "{}: {c}", row.label());
//! }
//! // On a GPU: check::differential(&row, &wgrad::Device::gpu()?)?.pass()
//! # Ok::<(), wgrad::Error>(())
//! ```

use std::fmt;
use std::rc::Rc;

mod wgsl;
pub use wgsl::{Bindings, validate_shader, validate_source};

use crate::rng::Rng;
use crate::{Device, Result, Tensor};

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
    /// The input's shape.
    pub shape: Vec<usize>,
    /// How its values are drawn.
    pub values: Gen,
    /// Whether the gradient with respect to this input is checked.
    pub grad: bool,
}

impl Input {
    fn new(shape: &[usize], values: Gen, grad: bool) -> Input {
        Input {
            shape: shape.to_vec(),
            values,
            grad,
        }
    }

    /// Standard normal values, gradient checked.
    pub fn normal(shape: &[usize]) -> Input {
        Input::new(shape, Gen::Normal, true)
    }

    /// Normal values at least 0.05 away from each of `kinks` (where the op is not
    /// differentiable), gradient checked.
    pub fn away(shape: &[usize], kinks: &'static [f64]) -> Input {
        Input::new(shape, Gen::Away(kinks), true)
    }

    /// Values in [0.5, 2] (logarithms, roots, divisors), gradient checked.
    pub fn positive(shape: &[usize]) -> Input {
        Input::new(shape, Gen::Positive, true)
    }

    /// Integers in [0, n) (labels, indices); no gradient.
    pub fn integers(shape: &[usize], n: usize) -> Input {
        Input::new(shape, Gen::Integers(n), false)
    }

    /// 0 or 1 (conditions, masks); no gradient.
    pub fn mask(shape: &[usize]) -> Input {
        Input::new(shape, Gen::Mask, false)
    }

    /// The same input without a gradient check.
    pub fn fixed(self) -> Input {
        Input {
            grad: false,
            ..self
        }
    }
}

type Build = Rc<dyn Fn(&Device, &[Tensor]) -> Tensor>;

/// One row of the table.
#[derive(Clone)]
pub struct Case {
    /// The op under test, as `Tensor` names it.
    pub op: &'static str,
    /// The inputs, in the order `build` receives them.
    pub inputs: Vec<Input>,
    build: Build,
    /// Forward tolerance, GPU (f32) against CPU (f64): |gpu − cpu| ≤ atol + rtol·|cpu|.
    pub atol: f64,
    /// See `atol`.
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
    /// A row: `build` maps the inputs (drawn as `inputs` say, on the device under test) to the
    /// op's output. Gradients are checked for the inputs marked so, by finite differences when
    /// the row is small. Tolerances default to 1e-5 absolute and relative.
    pub fn new(
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

    /// Forward tolerances |gpu − cpu| ≤ atol + rtol·|cpu| (gradients get four times these).
    pub fn tol(mut self, atol: f64, rtol: f64) -> Case {
        self.atol = atol;
        self.rtol = rtol;
        self
    }

    /// Compare forward values only (rows too large for gradients, or ops without one).
    pub fn forward_only(mut self) -> Case {
        self.gradcheck = false;
        self.backward = false;
        self
    }

    /// "op \[shape\] \[shape\]": the op and the shape of each input.
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

    /// The seed of the inputs, the loss weights and any random op in the row.
    pub fn seed(mut self, seed: u64) -> Case {
        self.seed = seed;
        self
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
    /// Largest |got − want|.
    pub max_abs: f64,
    /// Largest |got − want| / |want| over elements whose reference is not zero.
    pub max_rel: f64,
    /// The element that most exceeds the tolerance (or is largest in error): index, got, want.
    pub worst: Option<(usize, f64, f64)>,
    /// Whether every element is within the tolerance (and the lengths match).
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
    /// The row's label (op and input shapes).
    pub label: String,
    /// The op under test.
    pub op: &'static str,
    /// The output on the GPU against the CPU reference.
    pub forward: Comparison,
    /// One per input whose gradient is checked.
    pub backward: Vec<Comparison>,
}

impl Report {
    /// Whether the forward values and every gradient passed.
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
