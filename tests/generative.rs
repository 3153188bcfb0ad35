//! Generative models: the pieces (reparameterisation, KL, minibatch variance, L2-pooling
//! sparsity) against finite differences on the CPU reference; the autoencoder, VAE and GAN of the
//! examples stepping identically on the GPU and the CPU reference; the history buffer, noisy
//! labels, the PCA baseline and the sample judge against what they promise.

mod common;

use wgrad::check::Comparison;
use wgrad::data::{Dataset, Split};
use wgrad::nn::generative::{
    Autoencoder, Discriminator, DiscriminatorOptions, Generator, HistoryBuffer, Judge, Pca, Vae,
    append_minibatch_variance, discriminator_loss, generator_loss, l2_pool_penalty,
    minibatch_variance, noisy_labels, reparameterize, reparameterize_with, set_trainable, xcov,
};
use wgrad::nn::{self, Activation, Init, Module, kl_unit_gaussian};
use wgrad::optim::{Adam, Optimizer};
use wgrad::rng::Rng;
use wgrad::{Device, Tensor};

fn mnist(n: usize) -> Dataset {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    Dataset::mnist(dir, Split::Train)
        .expect("MNIST is vendored in data/mnist")
        .flattened()
        .slice(0, n)
}

fn normals(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| wgrad::rng::normal([rng.next_u32(), rng.next_u32(), 0, 0]) as f32 as f64)
        .collect()
}

/// Finite differences on the CPU reference (f64): for L = Σ f(inputs) · w with fixed random w,
/// (L(x + ε) − L(x − ε)) / 2ε for every element of every input against the backward rule.
/// `f` may draw random numbers: the device is reseeded before every evaluation.
fn gradcheck(name: &str, shapes: &[&[usize]], f: impl Fn(&[Tensor]) -> Tensor) {
    let cpu = Device::cpu();
    let mut rng = Rng::new(7);
    let values: Vec<Vec<f64>> = shapes
        .iter()
        .map(|s| normals(&mut rng, s.iter().product()))
        .collect();
    let tensors = |vals: &[Vec<f64>], grad: bool| -> Vec<Tensor> {
        vals.iter()
            .zip(shapes)
            .map(|(v, s)| {
                let t = Tensor::from_f64(&cpu, v, s).unwrap();
                t.set_requires_grad(grad);
                t
            })
            .collect()
    };
    let mut weights = None;
    let mut loss = |x: &[Tensor]| -> Tensor {
        cpu.manual_seed(11);
        let out = f(x);
        let w = weights.get_or_insert_with(|| {
            let w = normals(&mut Rng::new(13), out.numel());
            Tensor::from_f64(&cpu, &w, out.shape()).unwrap()
        });
        out.mul(w).sum_all()
    };
    let x = tensors(&values, true);
    let grads = loss(&x).backward();
    for (i, xi) in x.iter().enumerate() {
        let analytic = grads.wrt(xi).to_vec_f64().unwrap();
        let mut numeric = Vec::new();
        for e in 0..values[i].len() {
            let eps = 1e-6 * values[i][e].abs().max(1.0);
            let mut at = |delta: f64| {
                let mut v = values.clone();
                v[i][e] += delta;
                let _no_grad = cpu.no_grad();
                loss(&tensors(&v, false)).to_vec_f64().unwrap()[0]
            };
            numeric.push((at(eps) - at(-eps)) / (2.0 * eps));
        }
        let cmp = Comparison::new(&analytic, &numeric, 1e-6, 1e-5);
        eprintln!("gradcheck {name}, input {i}: {cmp}");
        assert!(cmp.pass, "gradcheck {name}, input {i}: {cmp}");
    }
}

#[test]
fn reparameterisation_gradients_match_finite_differences() {
    gradcheck("reparameterize", &[&[3, 4], &[3, 4]], |x| {
        reparameterize(&x[0], &x[1])
    });
}

#[test]
fn kl_gradients_match_finite_differences() {
    gradcheck("kl_unit_gaussian", &[&[3, 4], &[3, 4]], |x| {
        kl_unit_gaussian(&x[0], &x[1])
    });
}

#[test]
fn minibatch_variance_gradients_match_finite_differences() {
    gradcheck("minibatch_variance", &[&[5, 6]], |x| {
        minibatch_variance(&x[0])
    });
    gradcheck("append_minibatch_variance", &[&[4, 2, 3]], |x| {
        append_minibatch_variance(&x[0])
    });
}

#[test]
fn l2_pool_penalty_gradients_match_finite_differences() {
    gradcheck("l2_pool_penalty", &[&[3, 8]], |x| {
        l2_pool_penalty(&x[0], 4, 1e-3)
    });
}

#[test]
fn xcov_gradients_match_finite_differences() {
    gradcheck("xcov", &[&[6, 3], &[6, 2]], |x| xcov(&x[0], &x[1]));
}

#[test]
fn xcov_is_half_the_squared_cross_covariance_computed_directly() {
    // ½ Σᵢⱼ [(1/N) Σₙ (yₙᵢ − ȳᵢ)(zₙⱼ − z̄ⱼ)]², in plain loops over f64.
    let direct = |y: &[f64], z: &[f64], n: usize, a: usize, b: usize| -> f64 {
        let mean =
            |v: &[f64], w: usize, j: usize| (0..n).map(|k| v[k * w + j]).sum::<f64>() / n as f64;
        let mut total = 0.0;
        for i in 0..a {
            for j in 0..b {
                let (my, mz) = (mean(y, a, i), mean(z, b, j));
                let c: f64 = (0..n)
                    .map(|k| (y[k * a + i] - my) * (z[k * b + j] - mz))
                    .sum::<f64>()
                    / n as f64;
                total += c * c;
            }
        }
        0.5 * total
    };
    let mut rng = Rng::new(3);
    let (n, a, b) = (50, 10, 4);
    let (yv, zv) = (normals(&mut rng, n * a), normals(&mut rng, n * b));
    let want = direct(&yv, &zv, n, a, b);
    let cpu = Device::cpu();
    let got = xcov(
        &Tensor::from_f64(&cpu, &yv, &[n, a]).unwrap(),
        &Tensor::from_f64(&cpu, &zv, &[n, b]).unwrap(),
    )
    .to_vec_f64()
    .unwrap()[0];
    // Ops take scalars as f32 (the 1/N of `mean` is rounded once), so agreement is to ~1e-8.
    assert!(
        (got - want).abs() <= 1e-7 * want.abs(),
        "{got} against {want}"
    );
    // Independent columns give a small penalty, a copied one a large one.
    let same = xcov(
        &Tensor::from_f64(&cpu, &zv, &[n, b]).unwrap(),
        &Tensor::from_f64(&cpu, &zv, &[n, b]).unwrap(),
    )
    .item()
    .unwrap();
    assert!(
        f64::from(same) > 5.0 * want,
        "xcov(z, z) {same} against xcov(y, z) {want}"
    );
    let Some(gpu) = common::gpu() else { return };
    let y = Tensor::from_f64(&gpu, &yv, &[n, a])
        .unwrap()
        .requires_grad_();
    let z = Tensor::from_f64(&gpu, &zv, &[n, b]).unwrap();
    let v = xcov(&y, &z);
    let on_gpu = f64::from(v.item().unwrap());
    assert!(
        (on_gpu - want).abs() <= 1e-5 * want,
        "GPU {on_gpu} against {want}"
    );
    let gy = v.backward().wrt(&y).to_vec_f64().unwrap();
    let yc = Tensor::from_f64(&cpu, &yv, &[n, a])
        .unwrap()
        .requires_grad_();
    let zc = Tensor::from_f64(&cpu, &zv, &[n, b]).unwrap();
    let want_g = xcov(&yc, &zc).backward().wrt(&yc).to_vec_f64().unwrap();
    let cmp = Comparison::new(&gy, &want_g, 1e-6, 1e-4);
    assert!(cmp.pass, "xcov gradient, GPU against CPU: {cmp}");
}

#[test]
fn the_pieces_compute_what_they_say() {
    let cpu = Device::cpu();
    let t = |v: &[f32], s: &[usize]| Tensor::from_slice(&cpu, v, s).unwrap();
    // z = μ + e^(logvar/2) ε.
    let z = reparameterize_with(
        &t(&[1.0, -2.0], &[1, 2]),
        &t(&[0.0, 2.0], &[1, 2]),
        &t(&[0.5, 0.5], &[1, 2]),
    );
    let want = [1.5, -2.0 + 0.5 * 1f64.exp()];
    let got = z.to_vec_f64().unwrap();
    assert!(
        (got[0] - want[0]).abs() < 1e-12 && (got[1] - want[1]).abs() < 1e-12,
        "{got:?}"
    );
    // KL of N(0, 1) to itself is 0; of N(1, e²) it is ½(e² + 1 − 1 − 2) per dim.
    let kl = kl_unit_gaussian(&t(&[0.0, 1.0], &[1, 2]), &t(&[0.0, 2.0], &[1, 2]));
    let want = 0.5 * (2f64.exp() + 1.0 - 1.0 - 2.0);
    assert!((kl.to_vec_f64().unwrap()[0] - want).abs() < 1e-12);
    // Minibatch variance: identical rows give 0; rows (0, 0) and (2, 4) give mean(1, 4) = 2.5.
    let same = minibatch_variance(&t(&[3.0, 1.0, 3.0, 1.0], &[2, 2]));
    assert_eq!(same.to_vec().unwrap(), vec![0.0, 0.0]);
    let two = append_minibatch_variance(&t(&[0.0, 0.0, 2.0, 4.0], &[2, 2]));
    assert_eq!(two.shape(), [2, 3]);
    assert_eq!(two.to_vec().unwrap(), vec![0.0, 0.0, 2.5, 2.0, 4.0, 2.5]);
    // L2 pooling: groups (3, 4) and (0, 0) cost √(ε + 25) + √ε.
    let p = l2_pool_penalty(&t(&[3.0, 4.0, 0.0, 0.0], &[1, 4]), 2, 1e-4);
    let want = (25.0f64 + 1e-4).sqrt() + 1e-4f64.sqrt();
    assert!((p.to_vec_f64().unwrap()[0] - want).abs() < 1e-6);
}

#[test]
fn noisy_labels_flip_and_soften_as_asked() {
    let cpu = Device::cpu();
    cpu.manual_seed(5);
    let clean = noisy_labels(&cpu, 100, 1.0, 0.0, 0.0).to_vec().unwrap();
    assert!(clean.iter().all(|&v| v == 1.0));
    let n = 20_000;
    let flipped = noisy_labels(&cpu, n, 1.0, 0.1, 0.0).to_vec().unwrap();
    assert!(flipped.iter().all(|&v| v == 0.0 || v == 1.0));
    let share = flipped.iter().filter(|&&v| v == 0.0).count() as f32 / n as f32;
    assert!((share - 0.1).abs() < 0.01, "flipped share {share}");
    let soft = noisy_labels(&cpu, n, 0.0, 0.0, 0.2).to_vec().unwrap();
    assert!(soft.iter().all(|&v| (0.0..=0.2).contains(&v)));
    let mean = soft.iter().sum::<f32>() / n as f32;
    assert!((mean - 0.1).abs() < 0.005, "mean soft fake label {mean}");
}

#[test]
fn the_history_buffer_keeps_its_capacity_and_only_what_was_pushed() {
    let cpu = Device::cpu();
    let mut buffer = HistoryBuffer::new(6, 1);
    assert!(buffer.sample(1).unwrap().is_none());
    // Batch k holds rows filled with 10k + i.
    let batch = |k: usize| {
        let v: Vec<f32> = (0..4)
            .flat_map(|i| [10.0 * k as f32 + i as f32; 3])
            .collect();
        Tensor::from_vec(&cpu, v, &[4, 3]).unwrap()
    };
    buffer.push(&batch(0)).unwrap();
    assert_eq!(buffer.len(), 4);
    assert!(buffer.sample(5).unwrap().is_none(), "only 4 held");
    let mut seen_old = false;
    for k in 1..8 {
        let old = buffer.sample(4).unwrap().expect("4 held").to_vec().unwrap();
        let rows: Vec<f32> = old.chunks(3).map(|r| r[0]).collect();
        for r in old.chunks(3) {
            assert!(
                r.iter().all(|&v| v == r[0]),
                "a stored row was mixed: {r:?}"
            );
            assert!(
                r[0] < 10.0 * k as f32,
                "row {} was not pushed before batch {k}",
                r[0]
            );
        }
        let mut distinct = rows.clone();
        distinct.sort_by(f32::total_cmp);
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "drawn with repeats: {rows:?}");
        seen_old |= k >= 3 && rows.iter().any(|&r| r < 10.0 * (k as f32 - 1.0));
        buffer.push(&batch(k)).unwrap();
        assert_eq!(buffer.len(), 6);
    }
    assert!(seen_old, "older batches never came back out of the buffer");
}

#[test]
fn pca_recovers_a_plane_and_reports_what_it_drops() {
    // Points on a plane in 6 dimensions: a·u + b·v + m, with var(a) ≫ var(b).
    let dim = 6;
    let u = [0.5, 0.5, 0.5, 0.5, 0.0, 0.0];
    let v = [0.5, -0.5, 0.5, -0.5, 0.0, 0.0];
    let m = [1.0, 0.0, 0.0, 2.0, 0.0, -1.0];
    let mut rng = Rng::new(3);
    let mut data = Vec::new();
    for _ in 0..500 {
        let (a, b) = (3.0 * (rng.uniform() - 0.5), rng.uniform() - 0.5);
        data.extend((0..dim).map(|i| a * u[i] + b * v[i] + m[i]));
    }
    let two = Pca::fit(&data, dim, 2);
    assert!(
        two.mse(&data) < 1e-12,
        "a plane is exact with 2 components: {}",
        two.mse(&data)
    );
    assert!(
        (two.variances.iter().sum::<f64>() - two.total_variance).abs() < 1e-9,
        "all variance in 2 components"
    );
    let dot: f64 = two.components[..dim]
        .iter()
        .zip(&u)
        .map(|(a, &b)| a * b as f64)
        .sum();
    assert!(dot.abs() > 0.999, "first component is u up to sign: {dot}");
    // With one component the error is the second variance spread over the dimensions.
    let one = Pca::fit(&data, dim, 1);
    let want = two.variances[1] / dim as f64;
    assert!(
        (one.mse(&data) - want).abs() < 1e-6 * want,
        "{} vs {want}",
        one.mse(&data)
    );
}

#[test]
fn the_judge_loads_an_mlp_checkpoint_and_scores_samples() {
    let dir = std::env::temp_dir().join(format!("wgrad-judge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mlp.safetensors");
    let cpu = Device::cpu();
    cpu.manual_seed(2);
    // With dropout, as examples/mnist.rs builds it: layers 0, 3 and 6.
    let model = nn::Mlp::new(&[784, 12, 8, 10])
        .activation(Activation::Relu)
        .init(Init::XavierUniform)
        .dropout(0.1)
        .build(&cpu);
    let opt = Adam::new(&model.params(), 1e-3);
    wgrad::checkpoint::save(&path, &model.params(), Some(&opt)).unwrap();
    let judge = Judge::load(&cpu, &path, Activation::Relu, 0.1, 0.3).unwrap();
    let data = mnist(20);
    let (x, y) = data.tensors(&cpu).unwrap();
    model.set_training(false);
    let want = model
        .forward(&x.affine(1.0 / 0.3, -0.1 / 0.3))
        .to_vec_f64()
        .unwrap();
    let got = judge.logits(&x).to_vec_f64().unwrap();
    let cmp = Comparison::new(&got, &want, 1e-6, 1e-5);
    assert!(cmp.pass, "judge logits against the model: {cmp}");
    let v = judge.judge(&x, 0.0).unwrap();
    assert_eq!(v.samples, 20);
    assert_eq!(v.confident, 1.0);
    assert!((v.class_shares.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    let acc = judge.accuracy(&x, &y).unwrap();
    assert!((0.0..=1.0).contains(&acc));
    // A checkpoint that is not an MLP is refused with a message.
    wgrad::checkpoint::save(&path, &[("w".to_string(), x.clone())], None).unwrap();
    let err = Judge::load(&cpu, &path, Activation::Relu, 0.0, 1.0)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not an MLP"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

// ----- the examples' models, a few steps on the GPU and on the CPU reference ---------------------

/// Per-step losses and the parameters afterwards.
struct Run {
    losses: Vec<f64>,
    params: Vec<(String, Vec<f64>)>,
}

fn compare(what: &str, gpu: &Run, cpu: &Run, atol: f64, rtol: f64) {
    let cmp = Comparison::new(&gpu.losses, &cpu.losses, atol, rtol);
    eprintln!("{what}: losses {:?}; {cmp}", cpu.losses);
    assert!(cmp.pass, "{what}: losses: {cmp}");
    let mut worst = (String::new(), Comparison::default());
    for ((name, g), (_, c)) in gpu.params.iter().zip(&cpu.params) {
        let cmp = Comparison::new(g, c, atol, rtol);
        assert!(cmp.pass, "{what}: parameter {name}: {cmp}");
        if cmp.max_abs >= worst.1.max_abs {
            worst = (name.clone(), cmp);
        }
    }
    eprintln!("{what}: worst parameter {}: {}", worst.0, worst.1);
}

fn params_of(model: &impl Module) -> Vec<(String, Vec<f64>)> {
    model
        .params()
        .iter()
        .map(|(n, p)| (n.clone(), p.to_vec_f64().unwrap()))
        .collect()
}

fn autoencoder_steps(dev: &Device, data: &Dataset) -> Run {
    dev.manual_seed(1);
    let model = Autoencoder::new(dev, 784, &[16], 8, Activation::Relu, Init::XavierUniform);
    let mut opt = Adam::new(&model.params(), 1e-3);
    let mut losses = Vec::new();
    for step in 0..3 {
        let (x, _) = data
            .batch(dev, &(step * 6..step * 6 + 6).collect::<Vec<_>>())
            .unwrap();
        let code = model.encode(&x);
        let loss = model
            .decode(&code)
            .mse(&x)
            .add(&(l2_pool_penalty(&code, 4, 1e-4) * 0.05));
        opt.step(&loss.backward()).unwrap();
        losses.push(loss.item().unwrap() as f64);
    }
    Run {
        losses,
        params: params_of(&model),
    }
}

fn vae_steps(dev: &Device, data: &Dataset) -> Run {
    dev.manual_seed(2);
    let vae = Vae::new(dev, 784, &[16], 3, Activation::Relu, Init::XavierUniform);
    let mut opt = Adam::new(&vae.params(), 1e-3);
    let mut losses = Vec::new();
    for step in 0..3 {
        let (x, _) = data
            .batch(dev, &(step * 6..step * 6 + 6).collect::<Vec<_>>())
            .unwrap();
        let loss = vae.loss(&x, 2.0);
        opt.step(&loss.total.backward()).unwrap();
        losses.push(loss.reconstruction.item().unwrap() as f64);
        losses.push(loss.kl.item().unwrap() as f64);
    }
    Run {
        losses,
        params: params_of(&vae),
    }
}

/// The GAN example's loop with every stabiliser on, at a small size.
fn gan_steps(dev: &Device, data: &Dataset) -> Run {
    dev.manual_seed(3);
    let g = Generator::new(dev, 4, &[16], 784, Init::XavierUniform);
    let d = Discriminator::new(
        dev,
        784,
        &[16],
        Init::XavierUniform,
        DiscriminatorOptions {
            dropout: 0.3,
            minibatch_variance: true,
        },
    );
    let d_params = d.params();
    let mut opt_g = Adam::new(&g.params(), 2e-4).betas(0.5, 0.999);
    let mut opt_d = Adam::new(&d_params, 2e-4).betas(0.5, 0.999);
    let mut buffer = HistoryBuffer::new(8, 4);
    let mut losses = Vec::new();
    for step in 0..4 {
        let (real, _) = data
            .batch(dev, &(step * 4..step * 4 + 4).collect::<Vec<_>>())
            .unwrap();
        let real = real.affine(2.0, -1.0);
        let fake = g.sample(dev, 4);
        let mut fakes = fake.detach();
        if let Some(old) = buffer.sample(4).unwrap() {
            fakes = Tensor::concat(&[&fakes, &old], 0);
        }
        buffer.push(&fake).unwrap();
        let rt = noisy_labels(dev, 4, 1.0, 0.05, 0.1);
        let ft = noisy_labels(dev, fakes.shape()[0], 0.0, 0.05, 0.1);
        let d_loss = discriminator_loss(&d, &real, &fakes, &rt, &ft);
        opt_d.step(&d_loss.backward()).unwrap();
        set_trainable(&d_params, false);
        let g_loss = generator_loss(&d, &fake);
        opt_g.step(&g_loss.backward()).unwrap();
        set_trainable(&d_params, true);
        losses.push(d_loss.item().unwrap() as f64);
        losses.push(g_loss.item().unwrap() as f64);
    }
    let mut params = params_of(&g);
    params.extend(params_of(&d));
    Run { losses, params }
}

#[test]
fn the_autoencoder_steps_the_same_on_the_gpu_and_the_cpu_reference() {
    let Some(gpu) = common::gpu() else { return };
    let data = mnist(18);
    let (g, c) = (
        autoencoder_steps(&gpu, &data),
        autoencoder_steps(&Device::cpu(), &data),
    );
    compare("autoencoder", &g, &c, 1e-4, 1e-3);
}

#[test]
fn the_vae_steps_the_same_on_the_gpu_and_the_cpu_reference() {
    let Some(gpu) = common::gpu() else { return };
    let data = mnist(18);
    let (g, c) = (vae_steps(&gpu, &data), vae_steps(&Device::cpu(), &data));
    compare("vae", &g, &c, 1e-4, 1e-3);
}

#[test]
fn the_gan_steps_the_same_on_the_gpu_and_the_cpu_reference() {
    let Some(gpu) = common::gpu() else { return };
    let data = mnist(16);
    let (g, c) = (gan_steps(&gpu, &data), gan_steps(&Device::cpu(), &data));
    compare("gan", &g, &c, 1e-4, 1e-3);
}

/// The DCGAN-style networks: 784-wide images in and out, PyTorch-style names with batch norm's
/// buffers in the state, and a generator step that moves the generator through the frozen
/// discriminator while the discriminator stays put.
#[test]
fn the_convolutional_gan_maps_noise_to_images_and_trains_through_the_discriminator() {
    let dev = Device::cpu();
    dev.manual_seed(4);
    let g = Generator::conv(&dev, 8, 4);
    let options = DiscriminatorOptions {
        dropout: 0.0,
        minibatch_variance: true,
    };
    let d = Discriminator::conv(&dev, 4, options);
    let fake = g.sample(&dev, 3);
    assert_eq!(fake.shape(), &[3, 784]);
    let v = fake.to_vec().unwrap();
    assert!(
        v.iter().all(|x| x.abs() <= 1.0),
        "a tanh output stays in [−1, 1]"
    );
    assert_eq!(d.forward(&fake).shape(), &[3, 1]);
    let names: Vec<String> = d.state_dict().into_iter().map(|(n, _)| n).collect();
    for want in ["features.1.weight", "features.4.running_var", "0.weight"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert!(g.buffers().iter().any(|(n, _)| n == "2.running_mean"));
    let before = |m: &dyn Module| -> Vec<Vec<f32>> {
        m.params()
            .iter()
            .map(|(_, t)| t.to_vec().unwrap())
            .collect()
    };
    let (g0, d0) = (before(&g), before(&d));
    let mut opt = Adam::new(&g.params(), 1e-2);
    let d_params = d.params();
    set_trainable(&d_params, false);
    opt.step(&generator_loss(&d, &g.sample(&dev, 4)).backward())
        .unwrap();
    set_trainable(&d_params, true);
    assert!(
        before(&g).iter().zip(&g0).all(|(a, b)| a != b),
        "every generator parameter moved"
    );
    assert_eq!(before(&d), d0, "the discriminator's parameters stayed put");
}
