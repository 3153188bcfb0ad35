//! A user's own kernel through the public API only, as a crate depending on wgrad would write
//! it: WGSL from its own folder (`tests/kernels/`) through `wgrad::shader!`, an `Op` with an f64
//! reference and a backward, validated like wgrad's shaders, checked against the CPU reference
//! and by finite differences, and timed. A deliberately wrong reference fails the check naming
//! the element it got wrong, and a second shader under a name already taken is refused.

mod common;

use wgrad::bench::{self, Work};
use wgrad::check::{self, Case, Input};
use wgrad::op::{self, BackwardCtx, Kernel, Layout, Op, Shader};
use wgrad::{Device, Error, Tensor};

static AXPY: Shader = wgrad::shader!("user_kernels/axpy", in "tests/kernels", "axpy.wgsl");

/// out = a·x + y; the reference adds `error` at element `wrong_at` when it is set.
struct Axpy {
    a: f32,
    wrong_at: Option<(usize, f64)>,
    shader: &'static Shader,
}

impl Op for Axpy {
    fn name(&self) -> &'static str {
        "axpy"
    }
    fn cpu(&self, inputs: &[op::Input], outputs: &mut [&mut [f64]]) {
        let (x, y) = (inputs[0].values, inputs[1].values);
        for (i, out) in outputs[0].iter_mut().enumerate() {
            *out = f64::from(self.a) * x[i] + y[i];
        }
        if let Some((i, error)) = self.wrong_at {
            outputs[0][i] += error;
        }
    }
    fn kernel(&self, _inputs: &[&Layout], output: &Layout) -> Kernel {
        let n = output.numel();
        let p = [n as u32, self.a.to_bits(), 0, 0];
        Kernel::per_element(self.shader, &p, n)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        vec![
            ctx.needs[0].then(|| ctx.grad * self.a),
            ctx.needs[1].then(|| ctx.grad.clone()),
        ]
    }
}

fn axpy(a: f32, x: &Tensor, y: &Tensor, wrong_at: Option<(usize, f64)>) -> Tensor {
    let op = Axpy {
        a,
        wrong_at,
        shader: &AXPY,
    };
    Tensor::apply_op(op, &[x, y], x.shape())
}

fn row(shape: &[usize], wrong_at: Option<(usize, f64)>) -> Case {
    Case::new(
        "axpy",
        vec![Input::normal(shape), Input::normal(shape)],
        move |_, t| axpy(-1.5, &t[0], &t[1], wrong_at),
    )
}

#[test]
fn a_users_shader_validates_like_wgrads_own() {
    let b = check::validate_shader(&AXPY).unwrap();
    assert_eq!((b.inputs, b.outputs, b.params_bytes), (2, 1, 16));
    static BROKEN: Shader = Shader {
        name: "user_kernels/broken",
        source: "@compute @workgroup_size(64) fn main() { let v = undefined_name; }",
    };
    match check::validate_shader(&BROKEN) {
        Err(Error::ShaderRejected { shader, message }) => {
            assert_eq!(shader, "user_kernels/broken");
            assert!(message.contains("undefined_name"), "{message}");
        }
        other => panic!("a broken shader validated: {other:?}"),
    }
}

#[test]
fn a_users_kernel_passes_the_differential_check_and_gradcheck() {
    let Some(gpu) = common::gpu() else { return };
    for shape in [&[5][..], &[17, 9], &[300, 301]] {
        let r = row(shape, None);
        let report = check::differential(&r, &gpu).unwrap();
        assert!(report.forward.pass, "{}: {}", r.label(), report.forward);
        assert_eq!(report.backward.len(), 2, "both inputs' gradients compared");
        for c in &report.backward {
            assert!(c.pass, "{} gradient: {c}", r.label());
        }
        if r.gradcheck {
            for c in check::gradcheck(&r).unwrap() {
                assert!(c.pass, "{} gradcheck: {c}", r.label());
            }
        }
    }
}

#[test]
fn a_wrong_reference_fails_the_check_naming_the_element() {
    let Some(gpu) = common::gpu() else { return };
    let r = row(&[17, 9], Some((40, 1e-3)));
    let report = check::differential(&r, &gpu).unwrap();
    assert!(!report.pass(), "a reference off by 1e-3 passed: {report:?}");
    let (i, got, want) = report.forward.worst.expect("a worst element");
    assert_eq!(
        i, 40,
        "the worst element is the one the reference got wrong"
    );
    assert!((want - got - 1e-3).abs() < 1e-5, "got {got}, want {want}");
    assert!(
        report.forward.to_string().contains("worst at [40]"),
        "{}",
        report.forward
    );
}

#[test]
fn a_second_shader_under_a_taken_name_is_refused() {
    let Some(gpu) = common::gpu() else { return };
    static IMPOSTOR: Shader = Shader {
        name: "user_kernels/axpy",
        source: concat!(include_str!("kernels/axpy.wgsl"), "\n// another source\n"),
    };
    let x = Tensor::ones(&gpu, &[4]);
    let first = axpy(2.0, &x, &x, None);
    assert_eq!(first.to_vec().unwrap(), vec![3.0; 4]);
    let op = Axpy {
        a: 2.0,
        wrong_at: None,
        shader: &IMPOSTOR,
    };
    let second = Tensor::apply_op(op, &[&x, &x], &[4]);
    match second.to_vec() {
        Err(Error::ShaderRejected { shader, message }) => {
            assert_eq!(shader, "user_kernels/axpy");
            assert!(message.contains("already has this name"), "{message}");
        }
        other => panic!("two sources under one name ran: {other:?}"),
    }
}

#[test]
fn a_users_kernel_is_timed_like_wgrads_own() {
    let dev = common::gpu().unwrap_or_else(Device::cpu);
    let n = 1 << 14;
    let (x, y) = (Tensor::randn(&dev, &[n]), Tensor::randn(&dev, &[n]));
    let f = bench::throughput(&dev, "axpy", Work::Bytes(12.0 * n as f64), 3, || {
        axpy(0.5, &x, &y, None)
    })
    .unwrap();
    assert_eq!((f.unit, f.samples.len()), ("GB/s", 3));
    assert!(
        f.samples.iter().all(|s| s.is_finite() && *s > 0.0),
        "{:?}",
        f.samples
    );
}
