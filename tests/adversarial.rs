//! Adversarial attacks against direct computations: the input gradient by `grad_wrt` equals the
//! full backward pass's and records less; FGSM's perturbation is ε·sign of an input gradient
//! written out by hand on the CPU reference; PGD and BIM stay in the ε-ball and the pixel range;
//! a targeted attack moves toward its target; GPU and CPU agree.

mod common;

use wgrad::adversarial::{self, Attack, Goal};
use wgrad::nn::{Init, Linear, Mlp, Module};
use wgrad::{Device, Tensor};

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

/// A batch of 12 "images" of 20 pixels in [0, 1] and labels of 5 classes, the same on every
/// device.
fn batch(dev: &Device) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..12 * 20)
        .map(|i| ((i * 37 + 11) % 97) as f32 / 96.0)
        .collect();
    let y: Vec<f32> = (0..12).map(|i| (i % 5) as f32).collect();
    (
        Tensor::from_vec(dev, x, &[12, 20]).unwrap(),
        Tensor::from_vec(dev, y, &[12]).unwrap(),
    )
}

/// A linear classifier with fixed weights (no gradient wanted for them).
fn linear(dev: &Device) -> Linear {
    let w: Vec<f32> = (0..5 * 20)
        .map(|i| (((i * 53 + 7) % 41) as f32 - 20.0) / 10.0)
        .collect();
    Linear {
        weight: Tensor::from_vec(dev, w, &[5, 20]).unwrap(),
        bias: Some(Tensor::from_vec(dev, vec![0.1, -0.2, 0.3, 0.0, -0.1], &[5]).unwrap()),
    }
}

/// ∇ₓ of the mean cross-entropy of softmax(x·Wᵀ + b), written out: (p − onehot(y))·W / n.
fn hand_gradient(x: &[f64], y: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let (n, d, k) = (y.len(), 20, 5);
    let mut g = vec![0.0; n * d];
    for s in 0..n {
        let z: Vec<f64> = (0..k)
            .map(|c| b[c] + (0..d).map(|j| x[s * d + j] * w[c * d + j]).sum::<f64>())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        for c in 0..k {
            let delta = e[c] / sum - f64::from(u8::from(y[s] as usize == c));
            for j in 0..d {
                g[s * d + j] += delta * w[c * d + j] / n as f64;
            }
        }
    }
    g
}

#[test]
fn grad_wrt_equals_the_full_backward_and_records_no_weight_gradient() {
    for dev in [Some(Device::cpu()), common::gpu()].into_iter().flatten() {
        dev.manual_seed(5);
        let model = Mlp::new(&[20, 16, 5]).build(&dev);
        let (x, y) = batch(&dev);
        let x = x.requires_grad_();
        let full = model.forward(&x).cross_entropy(&y).backward();
        let want = values(full.wrt(&x));
        drop(full);
        dev.flush().unwrap();
        let before = dev.pending();
        let loss = model.forward(&x).cross_entropy(&y);
        let forward = dev.pending() - before;
        let only = loss.grad_wrt(&[&x]).remove(0);
        let recorded = dev.pending() - before - forward;
        let got = values(&only);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= 1e-6,
            "{}: grad_wrt differs by {worst:e}",
            dev.name()
        );
        // Full backward of two linear layers: dW₂, db₂, dh, relu', dW₁, db₁, dx and the softmax
        // seed; the input gradient alone needs no dW or db.
        let full_count = {
            dev.flush().unwrap();
            let b = dev.pending();
            let g = model.forward(&x).cross_entropy(&y).backward();
            let n = dev.pending() - b - forward;
            drop(g);
            n
        };
        assert!(
            recorded + 4 <= full_count,
            "{}: grad_wrt recorded {recorded} ops, the full backward {full_count}",
            dev.name()
        );
    }
}

#[test]
fn fgsm_is_eps_times_the_sign_of_a_hand_written_input_gradient() {
    let cpu = Device::cpu();
    let model = linear(&cpu);
    let (x, y) = batch(&cpu);
    let eps = 0.07;
    let adv = adversarial::attack(
        &|t| model.forward(t),
        &x,
        Goal::Untargeted(&y),
        &Attack::fgsm(eps),
    )
    .unwrap();
    let (xv, yv) = (values(&x), values(&y));
    let g = hand_gradient(
        &xv,
        &yv,
        &values(&model.weight),
        &values(model.bias.as_ref().unwrap()),
    );
    let mut changed = 0;
    for (i, ((a, x0), gi)) in values(&adv).iter().zip(&xv).zip(&g).enumerate() {
        let step = f64::from(eps) * gi.signum() * f64::from(u8::from(*gi != 0.0));
        let want = (x0 + step).clamp(0.0, 1.0);
        assert!(
            (a - want).abs() <= 1e-6,
            "element {i}: got {a}, want {want} (x {x0}, ∇ {gi:e})"
        );
        changed += usize::from((a - x0).abs() > 1e-9);
    }
    assert!(changed > 150, "only {changed} of 240 pixels moved");

    // The same on the GPU, except where the gradient is too small for f32 to fix its sign.
    let Some(gpu) = common::gpu() else { return };
    let gm = linear(&gpu);
    let (gx, gy) = batch(&gpu);
    let gadv = adversarial::attack(
        &|t| gm.forward(t),
        &gx,
        Goal::Untargeted(&gy),
        &Attack::fgsm(eps),
    )
    .unwrap();
    let scale = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, ((a, b), gi)) in values(&gadv).iter().zip(values(&adv)).zip(&g).enumerate() {
        if gi.abs() > 1e-5 * scale {
            assert!((a - b).abs() <= 1e-6, "element {i}: GPU {a}, CPU {b}");
        }
    }
}

#[test]
fn iterated_attacks_stay_in_the_ball_and_the_pixel_range_and_raise_the_loss() {
    for dev in [Some(Device::cpu()), common::gpu()].into_iter().flatten() {
        dev.manual_seed(2);
        let model = Mlp::new(&[20, 32, 5]).init(Init::HeNormal).build(&dev);
        let f = |t: &Tensor| model.forward(t);
        let (x, y) = batch(&dev);
        let loss = |t: &Tensor| f(t).cross_entropy(&y).item().unwrap();
        let clean = loss(&x);
        let eps = 0.1;
        let fgsm =
            loss(&adversarial::attack(&f, &x, Goal::Untargeted(&y), &Attack::fgsm(eps)).unwrap());
        for a in [Attack::pgd(eps, 10), Attack::bim(eps)] {
            let adv = adversarial::attack(&f, &x, Goal::Untargeted(&y), &a).unwrap();
            let (av, xv) = (values(&adv), values(&x));
            for (i, (p, q)) in av.iter().zip(&xv).enumerate() {
                assert!(
                    (p - q).abs() <= f64::from(eps) + 1e-6 && (0.0..=1.0).contains(p),
                    "{a:?} on {}: pixel {i} is {p}, from {q}",
                    dev.name()
                );
            }
            let l = loss(&adv);
            assert!(
                l > clean && l >= fgsm * 0.999,
                "{a:?} on {}: loss {l} against clean {clean}, FGSM {fgsm}",
                dev.name()
            );
        }
    }
}

#[test]
fn a_targeted_attack_raises_the_targets_probability() {
    for dev in [Some(Device::cpu()), common::gpu()].into_iter().flatten() {
        let model = linear(&dev);
        let f = |t: &Tensor| model.forward(t);
        let (x, _) = batch(&dev);
        let target = Tensor::full(&dev, &[12], 3.0);
        let log_p = |t: &Tensor| -f(t).cross_entropy(&target).item().unwrap();
        let adv =
            adversarial::attack(&f, &x, Goal::Targeted(&target), &Attack::pgd(0.2, 20)).unwrap();
        let (before, after) = (log_p(&x), log_p(&adv));
        assert!(
            after > before + 0.5,
            "{}: mean log p(target) {before} → {after}",
            dev.name()
        );
    }
}

#[test]
fn the_attacks_follow_their_papers_schedules() {
    // Kurakin et al.: steps of one grey level, min(ε + 4, 1.25ε) of them with ε in grey levels.
    let bim = Attack::bim(16.0 / 255.0);
    assert_eq!((bim.steps, bim.step_size), (20, 1.0 / 255.0));
    let pgd = Attack::pgd(0.3, 40);
    assert!((pgd.step_size - 2.5 * 0.3 / 40.0).abs() < 1e-9 && pgd.random_start);
    let fgsm = Attack::fgsm(0.25);
    assert_eq!(
        (fgsm.steps, fgsm.step_size, fgsm.random_start),
        (1, 0.25, false)
    );
}

#[test]
fn grad_wrt_handles_repeated_intermediate_and_unused_targets() {
    let dev = Device::cpu();
    let x = Tensor::from_vec(&dev, vec![1.0, -2.0, 3.0], &[3])
        .unwrap()
        .requires_grad_();
    let unused = Tensor::ones(&dev, &[2]).requires_grad_();
    let h = &x * 2.0;
    let loss = (&h * &h).sum_all();
    let g = loss.grad_wrt(&[&x, &h, &x, &unused]);
    // d(Σ 4x²)/dx = 8x; d(Σ h²)/dh = 2h = 4x; the unused input's gradient is zero.
    assert_eq!(g[0].to_vec().unwrap(), vec![8.0, -16.0, 24.0]);
    assert_eq!(g[1].to_vec().unwrap(), vec![4.0, -8.0, 12.0]);
    assert_eq!(
        g[2].to_vec().unwrap(),
        g[0].to_vec().unwrap(),
        "a repeated target"
    );
    assert_eq!(g[3].to_vec().unwrap(), vec![0.0, 0.0]);
}

#[test]
#[should_panic(
    expected = "grad_wrt: the loss does not depend on any tensor that requires gradients"
)]
fn grad_wrt_of_a_loss_built_under_no_grad_is_refused() {
    let dev = Device::cpu();
    let x = Tensor::ones(&dev, &[3]).requires_grad_();
    let loss = {
        let _no_grad = dev.no_grad();
        (&x * 2.0).sum_all()
    };
    let _ = loss.grad_wrt(&[&x]);
}
