//! Each optimizer against its textbook formula, on numbers worked out by hand, on both backends.

mod common;

use wgrad::optim::{Adam, Optimizer, Rprop, Schedule, Sgd};
use wgrad::{Device, Grads, Tensor};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(common::gpu());
    d
}

/// Run `opt` on one scalar parameter starting at 1.0 with the given gradients; the value after
/// each step.
fn trajectory(
    dev: &Device,
    make: impl Fn(&[(String, Tensor)]) -> Box<dyn Optimizer>,
    grads: &[f32],
) -> Vec<f32> {
    let p = Tensor::from_slice(dev, &[1.0], &[1])
        .unwrap()
        .requires_grad_();
    let mut opt = make(&[("p".to_string(), p.clone())]);
    grads
        .iter()
        .map(|&g| {
            let mut gs = Grads::new();
            gs.insert(&p, Tensor::from_slice(dev, &[g], &[1]).unwrap());
            opt.step(&gs).unwrap();
            p.item().unwrap()
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            ((*g as f64) - w).abs() < 1e-6,
            "{what}: step {}: got {g}, want {w}",
            i + 1
        );
    }
}

#[test]
fn sgd_with_weight_decay() {
    for dev in devices() {
        // p ← 1 − 0.1·(0.5 + 0.1·1) = 0.94
        let got = trajectory(
            &dev,
            |p| Box::new(Sgd::new(p, 0.1).weight_decay(0.1)),
            &[0.5],
        );
        assert_close(&got, &[0.94], "sgd");
    }
}

#[test]
fn sgd_with_momentum_and_nesterov() {
    for dev in devices() {
        // v1 = 0.5, p1 = 1 − 0.05 = 0.95;  v2 = 0.9·0.5 + 0.5 = 0.95, p2 = 0.95 − 0.095 = 0.855
        let got = trajectory(
            &dev,
            |p| Box::new(Sgd::new(p, 0.1).momentum(0.9)),
            &[0.5, 0.5],
        );
        assert_close(&got, &[0.95, 0.855], "momentum");
        // p1 = 1 − 0.1·(0.5 + 0.9·0.5) = 0.905;  p2 = 0.905 − 0.1·(0.5 + 0.9·0.95) = 0.7695
        let got = trajectory(
            &dev,
            |p| Box::new(Sgd::new(p, 0.1).momentum(0.9).nesterov()),
            &[0.5, 0.5],
        );
        assert_close(&got, &[0.905, 0.7695], "nesterov");
    }
}

#[test]
fn adam_and_adamw() {
    for dev in devices() {
        // t=1: m̂ = 0.5, v̂ = 0.25 → p = 1 − 0.1·0.5/0.5 = 0.9
        // t=2, g=−1: m = 0.045 − 0.1 = −0.055, v = 0.00024975 + 0.001 = 0.00124975,
        //   m̂ = −0.055/0.19 = −0.2894737, v̂ = 0.00124975/0.001999 = 0.6251876, √v̂ = 0.7906881
        //   → p = 0.9 + 0.1·0.2894737/0.7906881 = 0.9366101
        let got = trajectory(&dev, |p| Box::new(Adam::new(p, 0.1)), &[0.5, -1.0]);
        assert_close(&got, &[0.9, 0.9366101], "adam");
        // AdamW: p ← 1·(1 − 0.1·0.5) = 0.95, then − 0.1·0.5/0.5 → 0.85
        let got = trajectory(&dev, |p| Box::new(Adam::adamw(p, 0.1, 0.5)), &[0.5]);
        assert_close(&got, &[0.85], "adamw");
    }
}

#[test]
fn rprop_grows_steps_while_the_sign_holds_and_backs_off_when_it_flips() {
    for dev in devices() {
        // Δ0 = 0.0125. g=.5 (no history): p = 0.9875. g=.5 again: Δ = 0.015, p = 0.9725.
        // g=−.5 (flip): Δ = 0.0075, the step is skipped, p = 0.9725. g=−.5: p = 0.9725 + 0.0075.
        let got = trajectory(&dev, |p| Box::new(Rprop::new(p)), &[0.5, 0.5, -0.5, -0.5]);
        assert_close(&got, &[0.9875, 0.9725, 0.9725, 0.98], "rprop");
    }
}

#[test]
fn learning_rate_schedules() {
    let step = Schedule::Step {
        every: 10,
        gamma: 0.1,
    };
    assert!((step.lr(1.0, 9) - 1.0).abs() < 1e-7);
    assert!((step.lr(1.0, 25) - 0.01).abs() < 1e-7);
    let cos = Schedule::Cosine {
        total: 100,
        min_lr: 0.0,
    };
    assert!((cos.lr(1.0, 0) - 1.0).abs() < 1e-7);
    assert!((cos.lr(1.0, 50) - 0.5).abs() < 1e-6);
    assert!(cos.lr(1.0, 100).abs() < 1e-7);
    assert_eq!(
        "cosine:20".parse::<Schedule>().unwrap(),
        Schedule::Cosine {
            total: 20,
            min_lr: 0.0
        }
    );
    assert_eq!(
        "step:5:0.5".parse::<Schedule>().unwrap(),
        Schedule::Step {
            every: 5,
            gamma: 0.5
        }
    );
    assert!("bogus".parse::<Schedule>().is_err());
}
