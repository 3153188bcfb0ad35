//! RBMs: the CD-1 update against a hand computation with the same random draws, the free
//! energy's gradient by finite differences and as the CD update, one PCD step alike on lavapipe
//! and the CPU reference, AIS against the exact partition function, and the unrolled DBN.

use wgrad::check::{self, Case, Comparison, Input};
use wgrad::rbm::{self, Ais, Dbn, Rbm, Visible};
use wgrad::{Device, Grads, Tensor};

fn gpu() -> Device {
    Device::gpu().expect("a GPU adapter (lavapipe in CI)")
}

fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    let c = Comparison::new(got, want, atol, rtol);
    assert!(c.pass, "{what}: {c}");
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// An RBM with weights of a useful size (N(0, σ²)) and random biases.
fn random_rbm(dev: &Device, nv: usize, nh: usize, sigma: f32, kind: Visible) -> Rbm {
    let mut r = Rbm::new(dev, nv, nh, kind);
    r.weight = Tensor::normal(dev, &[nv, nh], 0.0, sigma).requires_grad_();
    r.visible_bias = Tensor::normal(dev, &[nv], 0.0, 0.5).requires_grad_();
    r.hidden_bias = Tensor::normal(dev, &[nh], 0.0, 0.5).requires_grad_();
    r
}

fn binary_data(dev: &Device, n: usize, nv: usize) -> Tensor {
    Tensor::bernoulli(dev, &[n, nv], 0.4)
}

fn grads_of(g: &Grads, r: &Rbm) -> Vec<Vec<f64>> {
    [&r.weight, &r.visible_bias, &r.hidden_bias]
        .iter()
        .map(|p| g.wrt(p).to_vec_f64().unwrap())
        .collect()
}

#[test]
fn the_cd1_update_equals_a_hand_computed_one_with_the_same_draws() {
    let cpu = Device::cpu();
    cpu.manual_seed(1);
    let (n, nv, nh) = (5, 6, 4);
    let r = random_rbm(&cpu, nv, nh, 1.0, Visible::Binary);
    let v0 = binary_data(&cpu, n, nv);
    cpu.manual_seed(42);
    let step = rbm::contrastive_divergence(&r, &v0, 1);
    let got = grads_of(&step.grads, &r);
    let negative = step.negative.to_vec_f64().unwrap();
    // The same two uniform draws the Gibbs step makes (hidden, then visible).
    cpu.manual_seed(42);
    let u1 = Tensor::rand(&cpu, &[n, nh]).to_vec_f64().unwrap();
    let u2 = Tensor::rand(&cpu, &[n, nv]).to_vec_f64().unwrap();
    let w = r.weight.to_vec_f64().unwrap();
    let b = r.visible_bias.to_vec_f64().unwrap();
    let c = r.hidden_bias.to_vec_f64().unwrap();
    let v0 = v0.to_vec_f64().unwrap();
    let ph = |v: &[f64]| -> Vec<f64> {
        (0..n * nh)
            .map(|k| {
                let (s, j) = (k / nh, k % nh);
                sigmoid(c[j] + (0..nv).map(|i| v[s * nv + i] * w[i * nh + j]).sum::<f64>())
            })
            .collect()
    };
    let ph0 = ph(&v0);
    let h0: Vec<f64> = (0..n * nh).map(|k| f64::from(u1[k] < ph0[k])).collect();
    let v1: Vec<f64> = (0..n * nv)
        .map(|k| {
            let (s, i) = (k / nv, k % nv);
            let p = sigmoid(b[i] + (0..nh).map(|j| h0[s * nh + j] * w[i * nh + j]).sum::<f64>());
            f64::from(u2[k] < p)
        })
        .collect();
    assert_eq!(negative, v1, "the negative states are the Gibbs sample");
    let ph1 = ph(&v1);
    let mut dw = vec![0.0; nv * nh];
    for s in 0..n {
        for i in 0..nv {
            for j in 0..nh {
                let data = v0[s * nv + i] * ph0[s * nh + j];
                let model = v1[s * nv + i] * ph1[s * nh + j];
                dw[i * nh + j] -= (data - model) / n as f64;
            }
        }
    }
    let db: Vec<f64> = (0..nv)
        .map(|i| -(0..n).map(|s| v0[s * nv + i] - v1[s * nv + i]).sum::<f64>() / n as f64)
        .collect();
    let dc: Vec<f64> = (0..nh)
        .map(|j| {
            -(0..n)
                .map(|s| ph0[s * nh + j] - ph1[s * nh + j])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    // 1/n reaches the ops as an f32 scalar (0.2 is not exact in f32).
    assert_close("∂W", &got[0], &dw, 1e-6, 1e-6);
    assert_close("∂b", &got[1], &db, 1e-6, 1e-6);
    assert_close("∂c", &got[2], &dc, 1e-6, 1e-6);
}

#[test]
fn the_free_energy_gradient_passes_the_gradcheck() {
    for kind in [Visible::Binary, Visible::Gaussian] {
        let v = match kind {
            Visible::Binary => Input::mask(&[4, 5]),
            Visible::Gaussian => Input::normal(&[4, 5]).fixed(),
        };
        let case = Case::new(
            "free_energy",
            vec![
                Input::normal(&[5, 3]),
                Input::normal(&[5]),
                Input::normal(&[3]),
                v,
            ],
            move |_, x| {
                let r = Rbm {
                    weight: x[0].clone(),
                    visible_bias: x[1].clone(),
                    hidden_bias: x[2].clone(),
                    visible: kind,
                };
                r.free_energy(&x[3])
            },
        );
        for c in check::gradcheck(&case).unwrap() {
            assert!(c.pass, "{kind:?}: {c}");
        }
    }
}

#[test]
fn the_cd_update_is_the_gradient_of_the_free_energy_difference() {
    for dev in [gpu(), Device::cpu()] {
        for kind in [Visible::Binary, Visible::Gaussian] {
            dev.manual_seed(3);
            let r = random_rbm(&dev, 7, 5, 0.5, kind);
            let data = match kind {
                Visible::Binary => binary_data(&dev, 6, 7),
                Visible::Gaussian => Tensor::randn(&dev, &[6, 7]),
            };
            let step = rbm::contrastive_divergence(&r, &data, 2);
            let direct = grads_of(&step.grads, &r);
            let loss = r.free_energy(&data).mean(0) - r.free_energy(&step.negative).mean(0);
            let autograd = grads_of(&loss.backward(), &r);
            let tol = if dev.is_gpu() { 1e-5 } else { 1e-12 };
            for (name, (a, d)) in ["∂W", "∂b", "∂c"].iter().zip(autograd.iter().zip(&direct))
            {
                assert_close(&format!("{} {kind:?} {name}", dev.name()), a, d, tol, tol);
            }
        }
    }
}

#[test]
fn a_pcd_step_runs_the_same_on_lavapipe_and_the_cpu_reference() {
    let mut runs = Vec::new();
    for dev in [gpu(), Device::cpu()] {
        dev.manual_seed(8);
        let r = random_rbm(&dev, 9, 6, 0.3, Visible::Binary);
        let data = binary_data(&dev, 4, 9);
        let mut chains = binary_data(&dev, 3, 9);
        let mut opt = wgrad::optim::Sgd::new(&r.params(), 0.1).momentum(0.5);
        for _ in 0..2 {
            let step = rbm::persistent_cd(&r, &data, &mut chains, 3);
            wgrad::optim::Optimizer::step(&mut opt, &step.grads).unwrap();
        }
        runs.push((
            chains.to_vec_f64().unwrap(),
            r.weight.to_vec_f64().unwrap(),
            r.reconstruction_error(&data).item().unwrap(),
        ));
    }
    // The chains persist: a step moves them on from where the last one left them.
    let cpu = Device::cpu();
    cpu.manual_seed(4);
    let r = random_rbm(&cpu, 9, 6, 0.3, Visible::Binary);
    let data = binary_data(&cpu, 4, 9);
    let mut chains = binary_data(&cpu, 3, 9);
    for _ in 0..2 {
        let before = chains.to_vec_f64().unwrap();
        let before = Tensor::from_f64(&cpu, &before, &[3, 9]).unwrap();
        cpu.manual_seed(77);
        let step = rbm::persistent_cd(&r, &data, &mut chains, 3);
        cpu.manual_seed(77);
        let want = r.gibbs(&before, 3).to_vec_f64().unwrap();
        assert_eq!(step.negative.to_vec_f64().unwrap(), want);
        assert_eq!(chains.to_vec_f64().unwrap(), want);
    }
    let ((c_gpu, w_gpu, e_gpu), (c_cpu, w_cpu, e_cpu)) = (&runs[0], &runs[1]);
    assert_eq!(
        c_gpu, c_cpu,
        "the chains: the same Bernoulli draws on both backends"
    );
    assert_close("weights after two PCD steps", w_gpu, w_cpu, 1e-5, 1e-5);
    assert_close(
        "reconstruction error",
        &[f64::from(*e_gpu)],
        &[f64::from(*e_cpu)],
        1e-4,
        1e-5,
    );
}

#[test]
fn probabilities_from_the_free_energy_and_the_exact_partition_function_sum_to_one() {
    let cpu = Device::cpu();
    cpu.manual_seed(5);
    // 10 visible and 6 hidden (log Z sums over the hidden states), then 6 visible and 10
    // hidden (over the visible states); the check sums p(v) over every visible state.
    for (nv, nh) in [(10, 6), (6, 10)] {
        let r = random_rbm(&cpu, nv, nh, 1.0, Visible::Binary);
        let log_z = rbm::exact_log_partition(&r).unwrap();
        let states: Vec<f32> = (0..1u32 << nv)
            .flat_map(|s| (0..nv).map(move |i| (s >> i & 1) as f32))
            .collect();
        let all = Tensor::from_vec(&cpu, states, &[1 << nv, nv]).unwrap();
        let f = r.free_energy(&all).to_vec_f64().unwrap();
        let total: f64 = f.iter().map(|f| (-f - log_z).exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{nv}×{nh}: Σ p(v) = {total}");
        let (mean, _) = rbm::log_likelihood(&r, &all, log_z).unwrap();
        let direct = f.iter().map(|f| -f - log_z).sum::<f64>() / f.len() as f64;
        assert!((mean - direct).abs() < 1e-9, "{mean} vs {direct}");
    }
}

#[test]
fn ais_estimates_log_z_of_a_small_rbm_within_its_error() {
    for (dev, nv, nh) in [
        (gpu(), 12, 10),
        (Device::cpu(), 12, 10),
        (Device::cpu(), 8, 14),
    ] {
        dev.manual_seed(6);
        let r = random_rbm(&dev, nv, nh, 0.7, Visible::Binary);
        let exact = rbm::exact_log_partition(&r).unwrap();
        // A base-rate model with biases of its own, as the example anneals from.
        let base = Tensor::normal(&dev, &[nv], 0.0, 0.8);
        let est = rbm::ais(
            &r,
            &base,
            &Ais::uniform(1000, 100),
            &mut wgrad::progress::Silent,
        )
        .unwrap();
        let softplus = |x: f64| (1.0 + x.exp()).ln();
        let base_exact = nh as f64 * std::f64::consts::LN_2
            + base
                .to_vec_f64()
                .unwrap()
                .iter()
                .map(|&b| softplus(b))
                .sum::<f64>();
        assert!((est.log_z_base - base_exact).abs() < 1e-9);
        let err = (est.log_z - exact).abs();
        assert!(
            err < 0.1 && err < 4.0 * est.std_err + 0.02,
            "{} {nv}×{nh}: AIS {} ± {} vs exact {exact}",
            dev.name(),
            est.log_z,
            est.std_err
        );
    }
}

#[test]
fn the_unrolled_dbn_computes_the_hidden_probabilities() {
    let cpu = Device::cpu();
    cpu.manual_seed(2);
    let dbn = Dbn {
        layers: vec![
            random_rbm(&cpu, 8, 6, 0.5, Visible::Binary),
            random_rbm(&cpu, 6, 4, 0.5, Visible::Binary),
        ],
    };
    let x = binary_data(&cpu, 3, 8);
    let want = dbn.up(&x, 2).to_vec_f64().unwrap();
    let layers = dbn.unrolled().unwrap();
    let got = layers.iter().fold(x.clone(), |h, l| {
        wgrad::nn::Module::forward(l, &h).sigmoid()
    });
    assert_close("unrolled", &got.to_vec_f64().unwrap(), &want, 1e-6, 1e-6);
}
