//! How the engine behaves, on both backends: laziness, one submit per flush, gradients that add
//! up, broadcasting undone, detach and no_grad, empty tensors and scalars.

mod common;

use wgrad::{Device, Tensor};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(common::gpu());
    d
}

fn t(dev: &Device, v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(dev, v, shape).unwrap()
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 + 1e-5 * w.abs(),
            "element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn gradients_of_a_tensor_used_twice_add_up() {
    for dev in devices() {
        let w = t(&dev, &[1.0, 2.0, 3.0], &[3]).requires_grad_();
        let (x, y) = (
            t(&dev, &[0.5, -1.0, 2.0], &[3]),
            t(&dev, &[4.0, 0.0, -3.0], &[3]),
        );
        let loss = w.mul(&x).add(&w.mul(&y)).sum_all();
        let g = loss.backward();
        close(&g.wrt(&w).to_vec().unwrap(), &[4.5, -1.0, -1.0]);
    }
}

#[test]
fn broadcast_gradients_are_summed_back_to_the_input_shape() {
    for dev in devices() {
        let b = t(&dev, &[0.0, 0.0, 0.0], &[3]).requires_grad_();
        let s = t(&dev, &[2.0], &[]).requires_grad_();
        let x = t(&dev, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let loss = x.add(&b).mul(&s).sum_all();
        let g = loss.backward();
        assert_eq!(g.wrt(&b).shape(), &[3]);
        close(&g.wrt(&b).to_vec().unwrap(), &[4.0, 4.0, 4.0]);
        assert_eq!(g.wrt(&s).shape(), &[] as &[usize]);
        close(&g.wrt(&s).to_vec().unwrap(), &[21.0]);
    }
}

#[test]
fn input_gradients_are_available_on_request() {
    for dev in devices() {
        let x = t(&dev, &[1.0, -2.0], &[1, 2]).requires_grad_();
        let w = t(&dev, &[3.0, 4.0], &[2, 1]);
        let g = x.matmul(&w).square().sum_all().backward();
        // d/dx (x·w)² = 2 (x·w) wᵀ = 2·(−5)·[3, 4]
        close(&g.wrt(&x).to_vec().unwrap(), &[-30.0, -40.0]);
        assert!(g.get(&w).is_none(), "w does not require grad");
    }
}

#[test]
fn detach_and_no_grad_stop_gradients() {
    for dev in devices() {
        let w = t(&dev, &[2.0], &[]).requires_grad_();
        let y = w.square();
        assert!(y.requires_grad());
        assert!(!y.detach().requires_grad());
        // d/dw (w² · detach(w²)) = 2w · w² only: the detached factor is a constant.
        let g = y.mul(&y.detach()).backward();
        close(&g.wrt(&w).to_vec().unwrap(), &[16.0]);
        let z = {
            let _off = dev.no_grad();
            w.square()
        };
        assert!(!z.requires_grad());
        assert!(w.square().requires_grad(), "the guard restores recording");
        close(&z.to_vec().unwrap(), &[4.0]);
    }
}

#[test]
fn nothing_runs_until_a_value_is_read() {
    for dev in devices() {
        let x = Tensor::rand(&dev, &[10]);
        let y = (x.exp() + 1.0).log();
        assert!(dev.pending() >= 3, "ops are recorded, not run");
        let _ = y.to_vec().unwrap();
        assert_eq!(dev.pending(), 0);
    }
}

#[test]
fn a_flush_is_one_submit_and_unread_dead_results_are_never_run() {
    let Some(dev) = common::gpu() else { return };
    let x = Tensor::rand(&dev, &[1000]);
    let y = (x.relu() * 2.0).sin().cos();
    let dead = x.exp();
    drop(dead);
    let before = dev.gpu_stats().unwrap();
    dev.flush().unwrap();
    let after = dev.gpu_stats().unwrap();
    assert_eq!(after.submits - before.submits, 1, "one submit per flush");
    // rand, relu, affine, sin, cos: the dropped exp is not dispatched.
    assert_eq!(after.dispatches - before.dispatches, 5);
    assert_eq!(y.shape(), &[1000]);
}

#[test]
fn empty_tensors_dispatch_nothing_and_reduce_to_the_identity() {
    for dev in devices() {
        let e = Tensor::zeros(&dev, &[0, 3]);
        let before = dev.gpu_stats();
        let y = e.add(&e).relu();
        assert_eq!(y.shape(), &[0, 3]);
        assert!(y.to_vec().unwrap().is_empty());
        if let (Some(b), Some(a)) = (before, dev.gpu_stats()) {
            assert_eq!(
                a.dispatches, b.dispatches,
                "an empty result dispatches nothing"
            );
        }
        let rows = Tensor::zeros(&dev, &[2, 0]);
        close(&rows.sum(1).to_vec().unwrap(), &[0.0, 0.0]);
        assert_eq!(rows.max(1).to_vec().unwrap(), vec![f32::NEG_INFINITY; 2]);
        assert!(rows.mean(1).to_vec().unwrap().iter().all(|v| v.is_nan()));
        close(
            &Tensor::zeros(&dev, &[0]).sum_all().to_vec().unwrap(),
            &[0.0],
        );
        let mm = Tensor::zeros(&dev, &[2, 0]).matmul(&Tensor::zeros(&dev, &[0, 3]));
        close(&mm.to_vec().unwrap(), &[0.0; 6]);
        assert!(
            Tensor::zeros(&dev, &[0, 5])
                .softmax()
                .to_vec()
                .unwrap()
                .is_empty()
        );
        let empty_grad = Tensor::zeros(&dev, &[0, 2]).sum_all();
        close(&empty_grad.to_vec().unwrap(), &[0.0]);
    }
}

#[test]
fn scalars_are_rank_zero() {
    for dev in devices() {
        let s = Tensor::scalar(&dev, 3.0);
        assert_eq!(s.shape(), &[] as &[usize]);
        assert_eq!(s.rank(), 0);
        assert_eq!(s.numel(), 1);
        assert_eq!(s.mul(&s).item().unwrap(), 9.0);
        let v = t(&dev, &[1.0, 2.0], &[2]);
        close(&v.add(&s).to_vec().unwrap(), &[4.0, 5.0]);
    }
}

#[test]
fn wrong_data_length_is_an_error_not_a_panic() {
    let dev = Device::cpu();
    let e = Tensor::from_vec(&dev, vec![1.0; 5], &[2, 3]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("5 values") && msg.contains("[2, 3]"), "{msg}");
}

#[test]
fn the_same_seed_gives_the_same_numbers_on_every_backend() {
    let devs = devices();
    let draws: Vec<Vec<f32>> = devs
        .iter()
        .map(|d| {
            d.manual_seed(42);
            let u = Tensor::rand(d, &[64]);
            let m = Tensor::bernoulli(d, &[64], 0.5);
            [u.to_vec().unwrap(), m.to_vec().unwrap()].concat()
        })
        .collect();
    for d in &draws[1..] {
        assert_eq!(
            d, &draws[0],
            "uniform and Bernoulli draws are bit-identical"
        );
    }
    let d = &devs[0];
    d.manual_seed(42);
    let again = Tensor::rand(d, &[64]).to_vec().unwrap();
    assert_eq!(again, draws[0][..64]);
    d.manual_seed(43);
    assert_ne!(Tensor::rand(d, &[64]).to_vec().unwrap(), draws[0][..64]);
}

#[test]
fn assign_updates_a_parameter_in_place_and_guards_stale_backward_passes() {
    for dev in devices() {
        let w = Tensor::full(&dev, &[2], 1.0).requires_grad_();
        let loss = w.square().sum_all();
        let g = loss.backward();
        {
            let _ng = dev.no_grad();
            w.assign(&(&w - g.wrt(&w) * 0.25));
        }
        close(&w.to_vec().unwrap(), &[0.5, 0.5]);
        // The old loss was recorded before the update: its backward would read new values.
        let stale = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loss.backward()));
        let msg = stale
            .err()
            .and_then(|e| e.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("updated in place"), "{msg}");
        // A fresh forward pass sees the new values.
        close(
            &w.square().sum_all().backward().wrt(&w).to_vec().unwrap(),
            &[1.0, 1.0],
        );
    }
}

#[test]
fn every_matmul_kernel_gives_the_same_bits_so_switching_kernels_is_invisible() {
    use wgrad::Variant;
    let Some(dev) = common::gpu() else { return };
    dev.manual_seed(5);
    let a = Tensor::randn(&dev, &[2, 100, 70]);
    let b = Tensor::randn(&dev, &[70, 90]);
    let runs: Vec<Vec<f32>> = [
        Variant::Naive,
        Variant::Tiled,
        Variant::Subgroup,
        Variant::Shared,
        Variant::Auto,
    ]
    .into_iter()
    .map(|v| {
        dev.wait_for_compiles();
        a.matmul_variant(&b, false, false, v).to_vec().unwrap()
    })
    .collect();
    let exact = dev.name().contains("llvmpipe");
    for (i, r) in runs.iter().enumerate().skip(1) {
        for (j, (x, y)) in r.iter().zip(&runs[0]).enumerate() {
            let ok = if exact {
                x.to_bits() == y.to_bits()
            } else {
                (x - y).abs() <= 1e-4 * y.abs().max(1.0)
            };
            assert!(
                ok,
                "kernel {i} differs from the naive kernel at {j}: {x} vs {y}"
            );
        }
    }
}
