//! Gradients defined from user code through the public API (`Tensor::custom`, `BackwardCtx`):
//! feedback alignment, a straight-through estimator and gradient reversal, each checked against
//! the gradient it should give, on the CPU reference and the GPU; and backward rules that skip
//! what no input needs.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use wgrad::nn::Activation;
use wgrad::{Device, Tensor};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(common::gpu());
    d
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().expect("values")
}

#[track_caller]
fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let (i, err) = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .enumerate()
        .fold((0, 0.0), |a, (i, e)| if e > a.1 { (i, e) } else { a });
    assert!(
        err <= tol,
        "{what}: element {i}: got {}, want {} (relative error {err:e} over {tol:e})",
        got[i],
        want[i]
    );
}

/// A linear layer whose error goes back through a fixed matrix `feedback` ([out, in]) instead
/// of the weights: dx = G·B, while dW = Gᵀx and db = ΣG as for backprop. `seen` records which
/// inputs the rule was told need a gradient.
fn feedback_alignment(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    feedback: Tensor,
    seen: Rc<RefCell<Vec<bool>>>,
) -> Tensor {
    Tensor::custom(
        "feedback_alignment",
        &[x, w, b],
        |t| t[0].linear(&t[1], Some(&t[2]), Activation::Identity),
        move |ctx| {
            *seen.borrow_mut() = ctx.needs.to_vec();
            let (x, g) = (&ctx.inputs[0], ctx.grad);
            vec![
                ctx.needs[0].then(|| g.matmul(&feedback)),
                ctx.needs[1].then(|| g.t().matmul(x)),
                ctx.needs[2].then(|| g.clone()),
            ]
        },
    )
}

#[test]
fn feedback_alignment_sends_the_error_back_through_a_fixed_random_matrix() {
    for dev in devices() {
        dev.manual_seed(4);
        let x = Tensor::randn(&dev, &[5, 3]).requires_grad_();
        let w = Tensor::randn(&dev, &[2, 3]).requires_grad_();
        let b = Tensor::randn(&dev, &[2]).requires_grad_();
        let feedback = Tensor::randn(&dev, &[2, 3]);
        let r = Tensor::randn(&dev, &[5, 2]);
        let seen = Rc::new(RefCell::new(Vec::new()));
        let y = feedback_alignment(&x, &w, &b, feedback.clone(), seen.clone());
        // The forward pass is the layer's.
        let plain = x.linear(&w, Some(&b), Activation::Identity);
        assert_close("forward", &values(&y), &values(&plain), 1e-6);
        // With loss Σ y·r the output gradient is r.
        let g = (&y * &r).sum_all().backward();
        assert_eq!(*seen.borrow(), [true, true, true]);
        let want_dx = r.matmul(&feedback);
        let want_dw = r.t().matmul(&x);
        let want_db = r.sum(0);
        assert_close("dx = G·B", &values(g.wrt(&x)), &values(&want_dx), 1e-5);
        assert_close("dW = Gᵀx", &values(g.wrt(&w)), &values(&want_dw), 1e-5);
        assert_close("db = ΣG", &values(g.wrt(&b)), &values(&want_db), 1e-5);
        // Backprop would have sent G·W instead: the two differ.
        let backprop = values(&r.matmul(&w));
        let fa = values(g.wrt(&x));
        assert!(fa.iter().zip(&backprop).any(|(a, b)| (a - b).abs() > 1e-3));
        // An input that needs no gradient is not asked for one.
        let x0 = x.detach();
        let y = feedback_alignment(&x0, &w, &b, feedback.clone(), seen.clone());
        let g = (&y * &r).sum_all().backward();
        assert_eq!(*seen.borrow(), [false, true, true]);
        assert!(g.get(&x0).is_none());
    }
}

#[test]
fn a_straight_through_estimator_passes_the_gradient_round_a_step() {
    for dev in devices() {
        let xs = [-2.0, -0.5, 0.25, 0.75, 1.5];
        let x = Tensor::from_slice(&dev, &xs, &[5])
            .unwrap()
            .requires_grad_();
        // Forward: a hard 0/1 threshold. Backward: the gradient where |x| ≤ 1, else 0.
        let y = Tensor::custom(
            "binarize",
            &[&x],
            |t| t[0].gt(&Tensor::zeros(t[0].device(), &[])),
            |ctx| {
                let x = &ctx.inputs[0];
                vec![Some(ctx.grad * x.abs().le(&Tensor::ones(x.device(), &[])))]
            },
        );
        assert_eq!(values(&y), [0.0, 0.0, 1.0, 1.0, 1.0]);
        let w = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0, 5.0], &[5]).unwrap();
        let g = (&y * &w).sum_all().backward();
        assert_eq!(values(g.wrt(&x)), [0.0, 2.0, 3.0, 4.0, 0.0]);
    }
}

#[test]
fn gradient_reversal_is_the_identity_forward_and_minus_lambda_backward() {
    for dev in devices() {
        dev.manual_seed(9);
        let x = Tensor::randn(&dev, &[3, 4]).requires_grad_();
        let w = Tensor::randn(&dev, &[4, 2]).requires_grad_();
        let lambda = 0.3;
        let h = Tensor::custom(
            "reverse_gradient",
            &[&x],
            |t| t[0].clone(),
            move |ctx| vec![Some(ctx.grad * -lambda)],
        );
        assert_eq!(values(&h), values(&x));
        let loss = h.matmul(&w).tanh().sum_all();
        let g = loss.backward();
        let plain = x.matmul(&w).tanh().sum_all().backward();
        let want: Vec<f64> = values(plain.wrt(&x))
            .iter()
            .map(|v| -(lambda as f64) * v)
            .collect();
        assert_close("dx = −λ·backprop", &values(g.wrt(&x)), &want, 1e-5);
        // Layers after the reversal train as usual.
        assert_close("dW", &values(g.wrt(&w)), &values(plain.wrt(&w)), 1e-6);
    }
}

#[test]
fn a_matmul_records_no_product_for_an_input_that_needs_no_gradient() {
    let dev = Device::cpu();
    dev.manual_seed(1);
    let w = Tensor::randn(&dev, &[3, 4]).requires_grad_();
    let recorded = |x: &Tensor| {
        let loss = x.matmul(&w).sum_all();
        let before = dev.pending();
        let g = loss.backward();
        let n = dev.pending() - before;
        drop(g);
        dev.flush().unwrap();
        n
    };
    let both = recorded(&Tensor::randn(&dev, &[2, 3]).requires_grad_());
    let weight_only = recorded(&Tensor::randn(&dev, &[2, 3]));
    assert_eq!(
        both - weight_only,
        2,
        "the input gradient is one product with a transposed view of W, recorded only when the \
         input needs it"
    );
}
