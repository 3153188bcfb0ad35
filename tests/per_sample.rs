//! Per-sample gradient statistics (Σₙ gₙ², Σₙ |gₙ|) against N single-sample backward passes on
//! the CPU reference, for the losses of EWC (cross-entropy of the labels) and MAS (the squared
//! norm of the output), on the fast path (linear layers) and the slow one (anything else); and
//! the fast path on the GPU against the CPU.

mod common;

use wgrad::nn::per_sample::{GradStats, gradient_stats, gradient_stats_slow};
use wgrad::nn::{Activation, Init, Mlp, Module, Params, Sequential};
use wgrad::{Device, Tensor};

fn model(dev: &Device) -> Sequential {
    dev.manual_seed(11);
    Mlp::new(&[6, 5, 3])
        .activation(Activation::Tanh)
        .init(Init::XavierNormal)
        .build(dev)
}

fn batch(dev: &Device) -> (Tensor, Tensor) {
    dev.manual_seed(12);
    let x = Tensor::randn(dev, &[7, 6]);
    let y = Tensor::from_slice(dev, &[0.0, 1.0, 2.0, 1.0, 0.0, 2.0, 2.0], &[7]).unwrap();
    (x, y)
}

/// Σₙ gₙ² and Σₙ |gₙ| by N separate backward passes, summed on the host.
fn by_hand(
    m: &Sequential,
    x: &Tensor,
    loss: &dyn Fn(&Tensor, usize) -> Tensor,
) -> Vec<(String, Vec<f64>, Vec<f64>)> {
    let params: Params = m.params();
    let mut out: Vec<(String, Vec<f64>, Vec<f64>)> = params
        .iter()
        .map(|(n, p)| (n.clone(), vec![0.0; p.numel()], vec![0.0; p.numel()]))
        .collect();
    for s in 0..x.shape()[0] {
        let g = loss(&m.forward(&x.narrow(0, s, 1)), s).sum_all().backward();
        for ((_, p), (_, sq, abs)) in params.iter().zip(&mut out) {
            for (i, v) in g.wrt(p).to_vec_f64().unwrap().into_iter().enumerate() {
                sq[i] += v * v;
                abs[i] += v.abs();
            }
        }
    }
    out
}

#[track_caller]
fn assert_matches(
    what: &str,
    got: &[(String, GradStats)],
    want: &[(String, Vec<f64>, Vec<f64>)],
    tol: f64,
) {
    assert_eq!(got.len(), want.len(), "{what}: parameters");
    for ((name, stats), (wname, sq, abs)) in got.iter().zip(want) {
        assert_eq!(name, wname, "{what}: parameter order");
        for (kind, t, w) in [("Σg²", &stats.sum_sq, sq), ("Σ|g|", &stats.sum_abs, abs)] {
            let g = t.to_vec_f64().unwrap();
            assert_eq!(g.len(), w.len(), "{what} {name} {kind}: size");
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                assert!(
                    (a - b).abs() <= tol * b.abs().max(1.0),
                    "{what} {name} {kind}: element {i}: got {a}, want {b}"
                );
            }
        }
    }
}

#[test]
fn the_fast_path_matches_n_single_sample_backward_passes_to_1e_9() {
    let dev = Device::cpu();
    let m = model(&dev);
    let (x, y) = batch(&dev);
    // EWC: the per-sample negative log-likelihood of the labels.
    let ewc_hand = by_hand(&m, &x, &|out, s| out.cross_entropy_rows(&y.narrow(0, s, 1)));
    let ewc = gradient_stats(&m, &x, &y, |out, y| out.cross_entropy_rows(y)).unwrap();
    assert_matches("EWC", &ewc, &ewc_hand, 1e-9);
    // MAS: the squared L2 norm of the output, no labels.
    let mas_hand = by_hand(&m, &x, &|out, _| out.square().sum(1));
    let mas = gradient_stats(&m, &x, &x, |out, _| out.square().sum(1)).unwrap();
    assert_matches("MAS", &mas, &mas_hand, 1e-9);
    // Σ|gₙ| is not |Σgₙ|, which the batch's summed loss would give.
    let summed = m.forward(&x).square().sum(1).sum_all().backward();
    let w = &m.params()[0].1;
    let batch_abs: Vec<f64> = summed
        .wrt(w)
        .to_vec_f64()
        .unwrap()
        .iter()
        .map(|v| v.abs())
        .collect();
    let per_sample = mas[0].1.sum_abs.to_vec_f64().unwrap();
    assert!(per_sample.iter().zip(&batch_abs).any(|(a, b)| a - b > 1e-6));
}

/// A module the fast path does not know: the MLP behind a wrapper.
struct Wrapped(Sequential);

impl Module for Wrapped {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.0.forward(x)
    }
    fn params(&self) -> Params {
        self.0.params()
    }
}

#[test]
fn the_slow_path_takes_any_module_and_agrees() {
    let dev = Device::cpu();
    let m = model(&dev);
    let (x, y) = batch(&dev);
    let hand = by_hand(&m, &x, &|out, s| out.cross_entropy_rows(&y.narrow(0, s, 1)));
    let wrapped = Wrapped(model(&dev));
    let slow = gradient_stats_slow(&wrapped, &x, &y, |out, y| out.cross_entropy_rows(y)).unwrap();
    assert_matches("slow path", &slow, &hand, 1e-12);
    // A Sequential holding a module the fast path does not know takes the slow path by itself.
    let mixed = Sequential::new().with(Wrapped(model(&dev)));
    let stats = gradient_stats(&mixed, &x, &y, |out, y| out.cross_entropy_rows(y)).unwrap();
    let renamed: Vec<(String, Vec<f64>, Vec<f64>)> = hand
        .into_iter()
        .map(|(n, a, b)| (format!("0.{n}"), a, b))
        .collect();
    assert_matches("mixed", &stats, &renamed, 1e-12);
}

#[test]
fn the_fast_path_on_the_gpu_matches_the_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = Device::cpu();
    let run = |dev: &Device| {
        let m = model(dev);
        let (x, y) = batch(dev);
        gradient_stats(&m, &x, &y, |out, y| out.cross_entropy_rows(y)).unwrap()
    };
    let want: Vec<(String, Vec<f64>, Vec<f64>)> = run(&cpu)
        .into_iter()
        .map(|(n, s)| {
            (
                n,
                s.sum_sq.to_vec_f64().unwrap(),
                s.sum_abs.to_vec_f64().unwrap(),
            )
        })
        .collect();
    assert_matches("GPU", &run(&gpu), &want, 1e-5);
}
