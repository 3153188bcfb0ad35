//! Learning rules without end-to-end backprop against hand-written updates on the CPU reference:
//! feedback alignment's and direct feedback alignment's weight gradients, HSIC's value against
//! its O(m²) definition with an explicit centring matrix and its gradient by finite differences,
//! DTP's targets and local losses; and each on lavapipe against the CPU reference.

mod common;

use wgrad::check::{self, Case, Comparison, Input};
use wgrad::local::{self, KernelWidth, dtp};
use wgrad::nn::{Activation, Init};
use wgrad::{Device, Tensor};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(common::gpu());
    d
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

#[track_caller]
fn close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let c = Comparison::new(&values(got), &values(want), tol, tol);
    assert!(c.pass, "{what}: {c}");
}

fn tanh_grad(h: &Tensor) -> Tensor {
    1.0 - h * h
}

#[test]
fn feedback_alignment_equals_a_hand_written_backward_with_b() {
    for dev in devices() {
        dev.manual_seed(1);
        let x = Tensor::randn(&dev, &[6, 5]);
        let (w1, b1) = (
            Tensor::randn(&dev, &[4, 5]).requires_grad_(),
            Tensor::randn(&dev, &[4]).requires_grad_(),
        );
        let (w2, b2) = (
            Tensor::randn(&dev, &[3, 4]).requires_grad_(),
            Tensor::randn(&dev, &[3]).requires_grad_(),
        );
        let (f1, f2) = (Tensor::randn(&dev, &[4, 5]), Tensor::randn(&dev, &[3, 4]));
        let r = Tensor::randn(&dev, &[6, 3]);
        let h1 = local::feedback_linear(&x, &w1, &b1, &f1).tanh();
        let y = local::feedback_linear(&h1, &w2, &b2, &f2);
        let g = (&y * &r).sum_all().backward();
        // By hand: δ₂ = r; dW₂ = δ₂ᵀh₁; δ₁ = (δ₂·B₂) ∘ tanh′; dW₁ = δ₁ᵀx.
        let d1 = r.matmul(&f2) * tanh_grad(&h1);
        let tol = if dev.is_gpu() { 1e-5 } else { 1e-12 };
        close("dW2", g.wrt(&w2), &r.t().matmul(&h1), tol);
        close("db2", g.wrt(&b2), &r.sum(0), tol);
        close("dW1", g.wrt(&w1), &d1.t().matmul(&x), tol);
        close("db1", g.wrt(&b1), &d1.sum(0), tol);
    }
}

#[test]
fn direct_feedback_alignment_equals_a_hand_written_update() {
    for dev in devices() {
        dev.manual_seed(2);
        let x = Tensor::rand(&dev, &[8, 6]);
        let labels = Tensor::from_vec(&dev, vec![0., 1., 2., 0., 1., 2., 0., 1.], &[8]).unwrap();
        let w: Vec<Tensor> = [[5, 6], [4, 5], [3, 4]]
            .iter()
            .map(|s| Tensor::randn(&dev, s).requires_grad_())
            .collect();
        let feedback = [Tensor::randn(&dev, &[3, 5]), Tensor::randn(&dev, &[3, 4])];
        let h1 = x.matmul(&w[0].t()).tanh();
        let h2 = h1.detach().matmul(&w[1].t()).tanh();
        let logits = h2.detach().matmul(&w[2].t());
        let loss = logits.cross_entropy(&labels);
        let surrogate = local::dfa_surrogate(&loss, &logits, &[h1.clone(), h2.clone()], &feedback);
        let g = surrogate.backward();
        // e = (softmax − onehot)/n; δₗ = (e·Bₗ) ∘ tanh′(aₗ); the output layer gets eᵀh₂.
        let e = (logits.softmax() - labels.one_hot(3)) / 8.0;
        let tol = if dev.is_gpu() { 1e-5 } else { 1e-12 };
        close("dW3", g.wrt(&w[2]), &e.t().matmul(&h2), tol);
        let d2 = e.matmul(&feedback[1]) * tanh_grad(&h2);
        close("dW2", g.wrt(&w[1]), &d2.t().matmul(&h1), tol);
        let d1 = e.matmul(&feedback[0]) * tanh_grad(&h1);
        close("dW1", g.wrt(&w[0]), &d1.t().matmul(&x), tol);
    }
}

/// (m − 1)⁻² tr(Kx H Ky H) with H = I − 11ᵀ/m formed and multiplied out, over f64.
fn hsic_direct(x: &[f64], y: &[f64], m: usize, dx: usize, dy: usize, sx: f64, sy: f64) -> f64 {
    let kernel = |v: &[f64], d: usize, s: f64| -> Vec<f64> {
        let mut k = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..m {
                let d2: f64 = (0..d).map(|c| (v[i * d + c] - v[j * d + c]).powi(2)).sum();
                k[i * m + j] = (-d2 / (2.0 * s * s)).exp();
            }
        }
        k
    };
    let (kx, ky) = (kernel(x, dx, sx), kernel(y, dy, sy));
    let h: Vec<f64> = (0..m * m)
        .map(|i| f64::from(u8::from(i / m == i % m)) - 1.0 / m as f64)
        .collect();
    let mul = |a: &[f64], b: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0; m * m];
        for i in 0..m {
            for k in 0..m {
                for j in 0..m {
                    c[i * m + j] += a[i * m + k] * b[k * m + j];
                }
            }
        }
        c
    };
    let p = mul(&mul(&mul(&kx, &h), &ky), &h);
    (0..m).map(|i| p[i * m + i]).sum::<f64>() / ((m - 1) as f64).powi(2)
}

#[test]
fn hsic_equals_its_definition_and_its_gradient_finite_differences() {
    let cpu = Device::cpu();
    cpu.manual_seed(3);
    let (m, dx, dy) = (9, 4, 3);
    let x = Tensor::randn(&cpu, &[m, dx]);
    let y = (x.narrow(1, 0, dy) + Tensor::randn(&cpu, &[m, dy]) * 0.5).detach();
    let got = local::hsic(&x, &y, 1.5, 2.0, KernelWidth::Paper)
        .to_vec_f64()
        .unwrap()[0];
    let want = hsic_direct(&values(&x), &values(&y), m, dx, dy, 1.5, 2.0);
    // Ops take scalars as f32 (1/(2σ²), 1/m), so agreement is to f32's rounding of those.
    assert!(
        (got - want).abs() <= 1e-7 * want.abs(),
        "{got} against {want}"
    );
    // The code's form divides by the dimension too: the paper's with σ√d.
    let per_dim = local::hsic(&x, &y, 1.5, 2.0, KernelWidth::PerDimension)
        .to_vec_f64()
        .unwrap()[0];
    let scaled = hsic_direct(
        &values(&x),
        &values(&y),
        m,
        dx,
        dy,
        1.5 * 2.0,
        2.0 * 3f64.sqrt(),
    );
    assert!(
        (per_dim - scaled).abs() <= 1e-7 * scaled.abs(),
        "{per_dim} against {scaled}"
    );

    let row = Case::new(
        "hsic",
        vec![Input::normal(&[7, 3]), Input::normal(&[7, 2])],
        |_, t| local::hsic(&t[0], &t[1], 1.2, 0.9, KernelWidth::Paper),
    );
    for c in check::gradcheck(&row).unwrap() {
        assert!(c.pass, "hsic gradcheck: {c}");
    }
    let Some(gpu) = common::gpu() else { return };
    let r = check::differential(&row.tol(1e-5, 1e-4), &gpu).unwrap();
    assert!(r.pass(), "hsic on the GPU: {:?}", r);
}

#[test]
fn hsic_is_near_zero_for_independent_inputs_and_large_for_identical_ones() {
    for dev in devices() {
        dev.manual_seed(4);
        let x = Tensor::randn(&dev, &[256, 5]);
        let z = Tensor::randn(&dev, &[256, 5]);
        let same = local::hsic(&x, &x, 2.0, 2.0, KernelWidth::Paper)
            .item()
            .unwrap();
        let independent = local::hsic(&x, &z, 2.0, 2.0, KernelWidth::Paper)
            .item()
            .unwrap();
        assert!(
            independent < 0.1 * same,
            "{}: HSIC(x, z) {independent} against HSIC(x, x) {same}",
            dev.name()
        );
    }
}

#[test]
fn dtp_targets_use_the_difference_correction_and_each_loss_trains_its_own_layer() {
    let run = |dev: &Device| {
        dev.manual_seed(5);
        let mut net = dtp::Net::new(dev, &[6, 5, 4, 4, 3], Activation::Tanh, Init::XavierUniform);
        net.target_step = 0.5;
        let x = Tensor::rand(dev, &[10, 6]);
        let labels =
            Tensor::from_vec(dev, (0..10).map(|i| (i % 3) as f32).collect(), &[10]).unwrap();
        (net.losses(&x, &labels), net, x, labels)
    };
    let cpu = Device::cpu();
    let (losses, net, x, labels) = run(&cpu);
    // By hand: h, the top target by a gradient step, then ĥᵢ₋₁ = hᵢ₋₁ + g(ĥᵢ) − g(hᵢ).
    let f = |i: usize, t: &Tensor| {
        t.linear(
            &net.layers[i].weight,
            net.layers[i].bias.as_ref(),
            Activation::Tanh,
        )
    };
    let g = |i: usize, t: &Tensor| {
        t.linear(
            &net.inverses[i].weight,
            net.inverses[i].bias.as_ref(),
            Activation::Tanh,
        )
    };
    let h1 = f(0, &x);
    let h2 = f(1, &h1);
    let h3 = f(2, &h2);
    let p = h3
        .linear(
            &net.layers[3].weight,
            net.layers[3].bias.as_ref(),
            Activation::Identity,
        )
        .softmax();
    // ∂ℓ/∂h₃ per example: (p − onehot)·W₄.
    let t3 = &h3 - (p - labels.one_hot(3)).matmul(&net.layers[3].weight) * 0.5;
    let t2 = &h2 + g(1, &t3) - g(1, &h3);
    let t1 = &h1 + g(0, &t2) - g(0, &h2);
    for (i, (h, t)) in [(&h1, &t1), (&h2, &t2), (&h3, &t3)].into_iter().enumerate() {
        let want = (h - t).square().sum_all() / 10.0;
        // The library scales the mean's gradient by the batch size in f32 (1/10 is rounded).
        close(
            &format!("layer {} loss", i + 1),
            &losses.layers[i],
            &want,
            1e-7,
        );
    }
    // The parallel step's gradient for layer 2's weights is that of its own loss alone.
    let all = losses.total().backward();
    let own = losses.layers[1].backward();
    close(
        "layer 2's update",
        all.wrt(&net.layers[1].weight),
        own.wrt(&net.layers[1].weight),
        1e-12,
    );
    let inv = losses.inverses[0].backward();
    close(
        "inverse 1's update",
        all.wrt(&net.inverses[0].weight),
        inv.wrt(&net.inverses[0].weight),
        1e-12,
    );

    let Some(gpu) = common::gpu() else { return };
    let (gl, ..) = run(&gpu);
    close("total on the GPU", &gl.total(), &losses.total(), 1e-4);
}
