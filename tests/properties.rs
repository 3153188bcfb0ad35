//! Property test: random small graphs of ops, forward and backward, give the same numbers on the
//! GPU as on the CPU reference. Seeds of failing cases are kept in
//! `tests/properties.proptest-regressions` and replayed first on every run.

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use wgrad::{Device, Tensor};

/// One step of a graph acting on the running value `x` (shape `[r, c]`) and a second input `b`
/// of the same shape. Every step keeps the shape and is smooth, so f32 and f64 agree closely.
#[derive(Clone, Copy, Debug)]
enum Step {
    Unary(u8),
    Binary(u8),
    /// x · bᵀ · b / c: two matmuls, one reading a transpose in place.
    Matmuls,
    /// x − mean over the last axis (a reduction broadcast back).
    Centre,
    Softmax,
    LogSoftmax,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..7).prop_map(Step::Unary),
        (0u8..4).prop_map(Step::Binary),
        Just(Step::Matmuls),
        Just(Step::Centre),
        Just(Step::Softmax),
        Just(Step::LogSoftmax),
    ]
}

#[derive(Clone, Debug)]
struct Graph {
    rows: usize,
    cols: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    steps: Vec<Step>,
}

fn graph() -> impl Strategy<Value = Graph> {
    (1usize..6, 1usize..9)
        .prop_flat_map(|(rows, cols)| {
            let n = rows * cols;
            (
                Just((rows, cols)),
                prop::collection::vec(-2.0f32..2.0, n),
                prop::collection::vec(-2.0f32..2.0, n),
                prop::collection::vec(step(), 1..7),
            )
        })
        .prop_map(|((rows, cols), a, b, steps)| Graph {
            rows,
            cols,
            a,
            b,
            steps,
        })
}

/// The graph's output, and the gradients of its loss with respect to both inputs.
fn run(dev: &Device, g: &Graph) -> [Vec<f32>; 3] {
    let shape = [g.rows, g.cols];
    let a = Tensor::from_slice(dev, &g.a, &shape)
        .unwrap()
        .requires_grad_();
    let b = Tensor::from_slice(dev, &g.b, &shape)
        .unwrap()
        .requires_grad_();
    let mut x = a.clone();
    for s in &g.steps {
        x = match *s {
            Step::Unary(0) => x.tanh(),
            Step::Unary(1) => x.sigmoid(),
            Step::Unary(2) => x.sin(),
            Step::Unary(3) => x.softplus(),
            Step::Unary(4) => x.tanh().exp(),
            Step::Unary(5) => x.square() * 0.25,
            Step::Unary(_) => x.gelu(),
            Step::Binary(0) => x.add(&b),
            Step::Binary(1) => x.sub(&b),
            Step::Binary(2) => x.mul(&b),
            Step::Binary(_) => x / (b.square() + 1.0),
            Step::Matmuls => x.matmul(&b.t()).matmul(&b) * (1.0 / g.cols as f32),
            Step::Centre => x.sub(&x.mean_keepdim(1)),
            Step::Softmax => x.softmax(),
            Step::LogSoftmax => x.log_softmax(),
        };
    }
    let loss = x.square().mean_all() + x.sum_all() * 0.1;
    let grads = loss.backward();
    let read = |t: &Tensor| t.to_vec().unwrap();
    // An input the graph never uses gets no gradient: zeros.
    let grad = |t: &Tensor| grads.get(t).map_or(vec![0.0; t.numel()], read);
    [read(&x), grad(&a), grad(&b)]
}

const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-3;

fn compare(g: &Graph, gpu: &Device) -> Result<(), TestCaseError> {
    let got = run(gpu, g);
    let want = run(&Device::cpu(), g);
    for (part, (got, want)) in ["output", "grad a", "grad b"]
        .iter()
        .zip(got.iter().zip(&want))
    {
        let worst = got
            .iter()
            .zip(want)
            .enumerate()
            .map(|(i, (g, w))| (i, (g - w).abs() - (ATOL + RTOL * w.abs())))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, excess)) = worst
            && (excess > 0.0 || excess.is_nan())
        {
            return Err(TestCaseError::fail(format!(
                "{part}: worst element {i}: GPU {}, CPU {} (atol {ATOL}, rtol {RTOL})",
                got[i], want[i]
            )));
        }
    }
    Ok(())
}

#[test]
fn random_graphs_agree_on_gpu_and_cpu_forward_and_backward() {
    let Some(gpu) = common::gpu() else { return };
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/properties.proptest-regressions",
        ))),
        ..Config::default()
    });
    runner
        .run(&graph(), |g| compare(&g, &gpu))
        .unwrap_or_else(|e| panic!("{e}"));
}
