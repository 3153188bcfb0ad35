//! UNIT (`wgrad::unit`): the shared layers are one set of parameters that both domains' networks
//! use, the loss terms are what the module docs define (recomputed directly on the host), and
//! a training step runs the same on lavapipe and the CPU reference.

use wgrad::check::Comparison;
use wgrad::nn::Module;
use wgrad::optim::{Optimizer, Sgd};
use wgrad::unit::{Domain, Shape, Unit};
use wgrad::{Device, Tensor};

fn shape() -> Shape {
    Shape {
        input: 12,
        private: 7,
        shared: 6,
        latent: 3,
        discriminator: vec![5],
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let c = Comparison::new(got, want, tol, tol);
    assert!(c.pass, "{what}: {c}");
}

#[test]
fn the_shared_layers_are_one_set_of_parameters_moved_by_either_domain() {
    let dev = Device::cpu();
    dev.manual_seed(3);
    let unit = Unit::new(&dev, &shape());
    let x = Tensor::rand(&dev, &[4, 12]);
    // Every parameter is listed once, under one name, though two networks use the shared ones.
    let params = unit.params();
    let mut ids: Vec<u64> = params.iter().map(|(_, p)| p.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), params.len(), "a parameter is listed twice");
    let snapshot =
        |u: &Unit| -> Vec<Vec<f64>> { u.params().iter().map(|(_, p)| values(p)).collect() };
    for domain in [Domain::A, Domain::B] {
        let other = domain.other();
        let before = snapshot(&unit);
        let other_before = values(&unit.translate(other, other, &x));
        // A loss of this domain's network alone, one SGD step on every generator parameter.
        let loss = unit.translate(domain, domain, &x).sum_all();
        let mut opt = Sgd::new(&unit.generator_params(), 0.5);
        opt.step(&loss.backward()).unwrap();
        let after = snapshot(&unit);
        for (((name, _), b), a) in params.iter().zip(&before).zip(&after) {
            let moved = a != b;
            let own = |d: Domain| {
                let tag = if d == Domain::A { "_a." } else { "_b." };
                name.contains(tag) && !name.starts_with("discriminator")
            };
            let shared = name.contains("_shared.");
            let want = shared || own(domain);
            assert_eq!(
                moved,
                want,
                "{domain:?}'s loss {} `{name}`",
                if moved { "moved" } else { "left" }
            );
        }
        // The other domain's network runs through the moved shared layers.
        let other_after = values(&unit.translate(other, other, &x));
        assert_ne!(
            other_before, other_after,
            "{other:?}'s network did not change when {domain:?}'s shared layers moved"
        );
    }
}

#[test]
fn the_loss_terms_are_the_documented_means_recomputed_on_the_host() {
    let dev = Device::cpu();
    dev.manual_seed(5);
    let unit = Unit::new(&dev, &shape());
    let (a, b) = (Tensor::rand(&dev, &[3, 12]), Tensor::rand(&dev, &[5, 12]));
    dev.manual_seed(9);
    let l = unit.losses(&a, &b);
    // The same draws: ε for z_a, then z_b, then the two cycle codes, in that order.
    dev.manual_seed(9);
    let mu = |d: Domain, x: &Tensor| values(&unit.encode(d, x));
    let (mu_a, mu_b) = (mu(Domain::A, &a), mu(Domain::B, &b));
    let eps_a = values(&Tensor::randn(&dev, &[3, 3]));
    let eps_b = values(&Tensor::randn(&dev, &[5, 3]));
    let add = |m: &[f64], e: &[f64], n: usize| {
        let v: Vec<f64> = m.iter().zip(e).map(|(x, y)| x + y).collect();
        Tensor::from_f64(&dev, &v, &[n, 3]).unwrap()
    };
    let (z_a, z_b) = (add(&mu_a, &eps_a, 3), add(&mu_b, &eps_b, 5));
    let l1 = |x: &[f64], y: &[f64]| {
        x.iter().zip(y).map(|(p, q)| (p - q).abs()).sum::<f64>() / x.len() as f64
    };
    let half_ms = |m: &[f64]| 0.5 * m.iter().map(|v| v * v).sum::<f64>() / m.len() as f64;
    let (va, vb) = (values(&a), values(&b));
    let aa = values(&unit.generate(Domain::A, &z_a));
    let bb = values(&unit.generate(Domain::B, &z_b));
    let rec = l1(&aa, &va) + l1(&bb, &vb);
    let kl = half_ms(&mu_a) + half_ms(&mu_b);
    let ab = unit.generate(Domain::B, &z_a);
    let ba = unit.generate(Domain::A, &z_b);
    assert_close("A → B", &values(&l.ab), &values(&ab), 1e-12);
    assert_close("B → A", &values(&l.ba), &values(&ba), 1e-12);
    // The non-saturating GAN term: −mean log σ(D(fake)) for each domain.
    let gen_term = |d: &wgrad::nn::generative::Discriminator, fake: &Tensor| {
        let logits = values(&d.forward(fake));
        logits.iter().map(|&s| (1.0 + (-s).exp()).ln()).sum::<f64>() / logits.len() as f64
    };
    let gan = gen_term(&unit.discriminator_b, &ab) + gen_term(&unit.discriminator_a, &ba);
    let (mu_ab, mu_ba) = (mu(Domain::B, &ab), mu(Domain::A, &ba));
    let eps_ab = values(&Tensor::randn(&dev, &[3, 3]));
    let eps_ba = values(&Tensor::randn(&dev, &[5, 3]));
    let aba = values(&unit.generate(Domain::A, &add(&mu_ab, &eps_ab, 3)));
    let bab = values(&unit.generate(Domain::B, &add(&mu_ba, &eps_ba, 5)));
    let cycle = l1(&aba, &va) + l1(&bab, &vb);
    let cycle_kl = half_ms(&mu_ab) + half_ms(&mu_ba);
    let w = unit.weights;
    let total = w.gan as f64 * gan
        + w.kl as f64 * kl
        + w.reconstruction as f64 * rec
        + w.cycle_kl as f64 * cycle_kl
        + w.cycle as f64 * cycle;
    for (name, got, want) in [
        ("reconstruction", &l.reconstruction, rec),
        ("kl", &l.kl, kl),
        ("gan", &l.gan, gan),
        ("cycle", &l.cycle, cycle),
        ("cycle_kl", &l.cycle_kl, cycle_kl),
        ("total", &l.total, total),
    ] {
        // Tensors hold f32 between ops on every backend: agreement to f32 rounding.
        assert_close(name, &values(got), &[want], 1e-6);
    }
    // The discriminators' term: real against label 1, translations against 0, times λ₀.
    let d_term = |d: &wgrad::nn::generative::Discriminator, real: &Tensor, fake: &Tensor| {
        let mean = |t: &Tensor, sign: f64| {
            let s = values(&d.forward(t));
            s.iter()
                .map(|&v| (1.0 + (sign * v).exp()).ln())
                .sum::<f64>()
                / s.len() as f64
        };
        mean(real, -1.0) + mean(fake, 1.0)
    };
    let want = w.gan as f64
        * (d_term(&unit.discriminator_a, &a, &ba) + d_term(&unit.discriminator_b, &b, &ab));
    let got = unit.discriminator_loss(&a, &b, &ba, &ab);
    assert_close("discriminator", &values(&got), &[want], 1e-6);
}

#[test]
fn a_unit_step_runs_the_same_on_lavapipe_and_the_cpu_reference() {
    let gpu = Device::gpu().expect("a GPU adapter (lavapipe in CI)");
    let mut runs = Vec::new();
    for dev in [gpu, Device::cpu()] {
        dev.manual_seed(11);
        let unit = Unit::new(&dev, &shape());
        let (a, b) = (Tensor::rand(&dev, &[6, 12]), Tensor::rand(&dev, &[4, 12]));
        // SGD: its update is proportional to the gradient, so the backends' rounding stays
        // rounding (Adam's first step divides a gradient by its own size).
        let mut opt_gen = Sgd::new(&unit.generator_params(), 0.05);
        let mut opt_dis = Sgd::new(&unit.discriminator_params(), 0.05);
        let mut losses = Vec::new();
        for _ in 0..2 {
            let step = unit.step(&mut opt_gen, &mut opt_dis, &a, &b).unwrap();
            losses.push(step.losses.total.item().unwrap() as f64);
            losses.push(step.discriminator.item().unwrap() as f64);
        }
        let params: Vec<(String, Vec<f64>)> = unit
            .params()
            .iter()
            .map(|(n, p)| (n.clone(), values(p)))
            .collect();
        runs.push((losses, params));
    }
    let ((l_gpu, p_gpu), (l_cpu, p_cpu)) = (&runs[0], &runs[1]);
    assert_close("losses of two steps", l_gpu, l_cpu, 1e-4);
    for ((name, g), (_, c)) in p_gpu.iter().zip(p_cpu) {
        assert_close(&format!("`{name}` after two steps"), g, c, 1e-4);
    }
    // The steps did something: the parameters moved.
    dev_moved(p_cpu);
}

/// The CPU run's parameters differ from a fresh model of the same seed.
fn dev_moved(after: &[(String, Vec<f64>)]) {
    let dev = Device::cpu();
    dev.manual_seed(11);
    let fresh = Unit::new(&dev, &shape());
    for ((name, p), (_, q)) in fresh.params().iter().zip(after) {
        assert_ne!(&values(p), q, "`{name}` did not move in two steps");
    }
}

#[test]
fn starting_alike_copies_a_s_own_layers_into_b_s_which_still_train_apart() {
    let dev = Device::cpu();
    dev.manual_seed(4);
    let unit = Unit::new(&dev, &shape());
    let x = Tensor::rand(&dev, &[3, 12]);
    let (a, b) = (Domain::A, Domain::B);
    assert_ne!(
        values(&unit.translate(a, a, &x)),
        values(&unit.translate(b, b, &x))
    );
    unit.start_alike();
    // The same values: both domains' autoencoders are one function at the start.
    assert_eq!(
        values(&unit.translate(a, a, &x)),
        values(&unit.translate(b, b, &x))
    );
    assert_eq!(
        values(&unit.translate(a, b, &x)),
        values(&unit.translate(a, a, &x))
    );
    // Separate parameters: a step on A's reconstruction leaves B's own layers where they were.
    let own_b = |u: &Unit| -> Vec<Vec<f64>> {
        u.encoder_b
            .params()
            .iter()
            .chain(u.generator_b.params().iter())
            .map(|(_, p)| values(p))
            .collect()
    };
    let before = own_b(&unit);
    let loss = unit.translate(a, a, &x).sub(&x).abs().mean_all();
    Sgd::new(&unit.generator_params(), 0.5)
        .step(&loss.backward())
        .unwrap();
    assert_eq!(before, own_b(&unit));
    assert_ne!(
        values(&unit.translate(a, a, &x)),
        values(&unit.translate(b, b, &x))
    );
}
