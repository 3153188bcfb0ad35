//! Neuroevolution: seed-encoded genomes rebuilt alike on the GPU and the CPU reference, the
//! population-batched MLP against per-member forwards, the cart-pole kernel against its f64
//! dynamics, and the ES gradient estimate against a direct computation.

use wgrad::check::Comparison;
use wgrad::evolve::{
    EsConfig, EvolutionStrategy, GaConfig, GeneticAlgorithm, Genome, PopulationMlp, cartpole,
};
use wgrad::nn::Activation;
use wgrad::{Device, Tensor};

fn gpu() -> Device {
    Device::gpu().expect("a GPU adapter (lavapipe in CI)")
}

fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    let c = Comparison::new(got, want, atol, rtol);
    assert!(c.pass, "{what}: {c}");
}

/// randn's differential tolerance: the bits come from integer Philox, alike on both backends;
/// Box–Muller runs in f32 on the GPU and f64 on the CPU.
const NORMAL_TOL: (f64, f64) = (1e-5, 1e-4);

#[test]
fn a_genome_rebuilds_the_same_parameters_on_the_gpu_and_the_cpu() {
    let net = PopulationMlp::new(&[6, 5, 3], Activation::Tanh);
    let genome = Genome::new(12_345).child(7).child(16_777_215).child(0);
    assert_eq!(genome.bytes(), 16);
    let mut rebuilt = Vec::new();
    for dev in [gpu(), Device::cpu()] {
        let scale = net.init_scale(&dev).unwrap();
        let theta = genome.parameters(&scale, 0.05).unwrap();
        assert_eq!(theta.shape(), [net.params()]);
        rebuilt.push(theta.to_vec_f64().unwrap());
    }
    let (atol, rtol) = NORMAL_TOL;
    assert_close("genome on GPU vs CPU", &rebuilt[0], &rebuilt[1], atol, rtol);
    // The mutations moved the parameters: the same genome without them differs.
    let cpu = Device::cpu();
    let scale = net.init_scale(&cpu).unwrap();
    let base = Genome::new(12_345).parameters(&scale, 0.05).unwrap();
    let base = base.to_vec_f64().unwrap();
    let moved = base
        .iter()
        .zip(&rebuilt[1])
        .filter(|(a, b)| (*a - *b).abs() > 1e-3)
        .count();
    assert!(moved > net.params() / 2, "only {moved} parameters moved");
}

#[test]
fn a_seeded_row_is_the_same_wherever_it_sits() {
    let dev = gpu();
    let seeds = Tensor::from_slice(&dev, &[3.0, 99.0, 3.0], &[3]).unwrap();
    let rows = Tensor::randn_rows(&seeds, 1000).to_vec().unwrap();
    assert_eq!(rows[..1000], rows[2000..], "one seed, two rows");
    assert_ne!(rows[..1000], rows[1000..2000], "two seeds, one row");
    let alone = Tensor::randn_rows(&Tensor::from_slice(&dev, &[99.0], &[1]).unwrap(), 1000);
    assert_eq!(alone.to_vec().unwrap()[..], rows[1000..2000]);
    let mean = rows.iter().map(|&v| f64::from(v)).sum::<f64>() / rows.len() as f64;
    let var = rows.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / rows.len() as f64;
    assert!(
        mean.abs() < 0.1 && (var - 1.0).abs() < 0.1,
        "mean {mean}, variance {var}"
    );
}

#[test]
fn the_ga_caches_what_its_genomes_encode() {
    let cpu = Device::cpu();
    let net = PopulationMlp::new(&[3, 4, 2], Activation::Tanh);
    let scale = net.init_scale(&cpu).unwrap();
    let config = GaConfig {
        population: 8,
        truncation: 3,
        sigma: 0.1,
        elites: 1,
    };
    let mut ga = GeneticAlgorithm::new(&scale, config, 5).unwrap();
    let mut best_before = None;
    for g in 0..3 {
        let fitness: Vec<f32> = (0..8).map(|i| ((i * 7 + g) % 8) as f32).collect();
        let best = (0..8)
            .max_by(|&a, &b| fitness[a].total_cmp(&fitness[b]))
            .unwrap();
        best_before = Some((
            ga.genomes()[best].clone(),
            ga.population().narrow(0, best, 1).to_vec_f64().unwrap(),
        ));
        let stats = ga.tell(&fitness).unwrap();
        assert_eq!((stats.best, stats.best_member), (7.0, best));
    }
    // Row 0 is the elite: the best of the last generation, unchanged.
    let (elite, row) = best_before.unwrap();
    assert_eq!(ga.genomes()[0], elite);
    let now = ga.population().narrow(0, 0, 1).to_vec_f64().unwrap();
    assert_close("elite row", &now, &row, 0.0, 0.0);
    // Every cached row is what its genome decodes to (f64 on the CPU: only the order of the
    // additions differs).
    let params = ga.population().to_vec_f64().unwrap();
    let d = net.params();
    for (i, genome) in ga.genomes().iter().enumerate() {
        assert!(genome.seeds.len() >= 2 && genome.seeds.len() <= 4);
        let rebuilt = genome
            .parameters(&scale, 0.1)
            .unwrap()
            .to_vec_f64()
            .unwrap();
        assert_close(
            &format!("member {i}"),
            &params[i * d..(i + 1) * d],
            &rebuilt,
            1e-12,
            1e-12,
        );
    }
}

#[test]
fn the_batched_population_forward_equals_each_member_on_its_own() {
    let net = PopulationMlp::new(&[7, 9, 4], Activation::Relu);
    for dev in [gpu(), Device::cpu()] {
        dev.manual_seed(3);
        let params = Tensor::randn(&dev, &[5, net.params()]);
        let x = Tensor::randn(&dev, &[6, 7]);
        let per_member_x = Tensor::randn(&dev, &[5, 6, 7]);
        let shared = net.forward(&params, &x).to_vec_f64().unwrap();
        let own = net.forward(&params, &per_member_x).to_vec_f64().unwrap();
        let labels = Tensor::from_slice(&dev, &[0.0, 3.0, 1.0, 2.0, 3.0, 0.0], &[6]).unwrap();
        let ce = net
            .cross_entropy(&params, &x, &labels)
            .to_vec_f64()
            .unwrap();
        let acc = net.accuracy(&params, &x, &labels).to_vec_f64().unwrap();
        for m in 0..5 {
            let row = params.narrow(0, m, 1).reshape(&[net.params()]);
            let one = net.forward_one(&row, &x);
            let want = one.to_vec_f64().unwrap();
            assert_close(
                &format!("{} member {m}, shared inputs", dev.name()),
                &shared[m * 24..(m + 1) * 24],
                &want,
                1e-5,
                1e-5,
            );
            let xm = per_member_x.narrow(0, m, 1).reshape(&[6, 7]);
            let want_own = net.forward_one(&row, &xm).to_vec_f64().unwrap();
            assert_close(
                &format!("{} member {m}, own inputs", dev.name()),
                &own[m * 24..(m + 1) * 24],
                &want_own,
                1e-5,
                1e-5,
            );
            let want_ce = one.cross_entropy(&labels).to_vec_f64().unwrap();
            assert_close("cross-entropy", &ce[m..=m], &want_ce, 1e-5, 1e-5);
            let hits = one.argmax(1).eq(&labels).mean(0).to_vec_f64().unwrap();
            assert_close("accuracy", &acc[m..=m], &hits, 1e-6, 0.0);
        }
    }
}

#[test]
fn one_cartpole_step_on_the_gpu_matches_the_f64_dynamics() {
    let dev = gpu();
    // States across the range, some about to end, one already ended, both pushes.
    let mut states = Vec::new();
    let mut actions = Vec::new();
    for i in 0..64 {
        let f = i as f64 / 63.0 - 0.5;
        let alive = if i == 10 { 0.0 } else { 1.0 };
        states.extend([4.8 * f, 2.0 * f, 0.42 * f, -3.0 * f, alive]);
        actions.push(if i % 3 == 0 { 1.0 } else { -0.5 });
    }
    // Right at the limits: one step carries these past them.
    states.extend([2.399, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.2094, 0.5, 1.0]);
    actions.extend([1.0, 1.0]);
    let s32: Vec<f32> = states.iter().map(|&v| v as f32).collect();
    let a32: Vec<f32> = actions.iter().map(|&v| v as f32).collect();
    let n = actions.len();
    let s = Tensor::from_vec(&dev, s32.clone(), &[n, 5]).unwrap();
    let a = Tensor::from_vec(&dev, a32.clone(), &[n]).unwrap();
    let got = cartpole::step(&s, &a).to_vec_f64().unwrap();
    let mut want = Vec::new();
    for i in 0..n {
        let row: [f64; 5] = std::array::from_fn(|k| f64::from(s32[5 * i + k]));
        want.extend(cartpole::step_one(row, f64::from(a32[i])));
    }
    assert_close("cartpole step", &got, &want, 1e-5, 1e-5);
    // The ended episode stayed as it was; the two at the limits ended.
    assert_eq!(&got[50..55], &want[50..55]);
    assert_eq!(
        got[50..55].iter().map(|&v| v as f32).collect::<Vec<_>>(),
        s32[50..55]
    );
    assert_eq!((got[5 * 64 + 4], got[5 * 65 + 4]), (0.0, 0.0));
}

#[test]
fn returns_count_the_steps_each_episode_lasted() {
    // A policy that always pushes right ends every episode early, after the same number of
    // steps on both backends from these near-still starts; the counts are the CPU dynamics'.
    let net = PopulationMlp::new(&[4, 2, 1], Activation::Tanh);
    let mut row = vec![0.0f32; net.params()];
    *row.last_mut().unwrap() = 1.0; // output bias: always > 0
    for dev in [gpu(), Device::cpu()] {
        dev.manual_seed(11);
        let params = Tensor::from_slice(&dev, &row, &[1, net.params()]).unwrap();
        let r = cartpole::returns(&net, &params, 8, cartpole::MAX_STEPS)
            .item()
            .unwrap();
        assert!((5.0..60.0).contains(&r), "{}: return {r}", dev.name());
        // The same episodes by hand: reset with the same seed, then the f64 dynamics.
        dev.manual_seed(11);
        let start = cartpole::reset(&dev, 8).to_vec_f64().unwrap();
        let mut total = 0.0;
        for e in 0..8 {
            let mut s: [f64; 5] = std::array::from_fn(|k| start[5 * e + k]);
            for _ in 0..cartpole::MAX_STEPS {
                total += s[4];
                s = cartpole::step_one(s, 1.0);
            }
        }
        assert!(
            (f64::from(r) - total / 8.0).abs() < 1e-3,
            "{}: {r} vs {}",
            dev.name(),
            total / 8.0
        );
    }
}

#[test]
fn the_es_step_follows_the_mirrored_rank_estimate() {
    let cpu = Device::cpu();
    let d = 6;
    let theta0: Vec<f32> = (0..d).map(|i| 0.1 * i as f32 - 0.2).collect();
    let theta = Tensor::from_slice(&cpu, &theta0, &[d]).unwrap();
    let config = EsConfig {
        population: 8,
        sigma: 0.05,
        lr: 0.01,
        weight_decay: 0.005,
    };
    let mut es = EvolutionStrategy::new(&theta, config, 9).unwrap();
    let members = es.ask().unwrap().to_vec_f64().unwrap();
    let fitness: Vec<f32> = (0..8)
        .map(|i| [3.0, -1.0, 0.5, 2.0][i % 4] + i as f32)
        .collect();
    es.tell(&fitness).unwrap();
    let got = es.theta().to_vec_f64().unwrap();
    // Directly: εₖ from the members, centred ranks, the estimate, one Adam step from zero
    // moments (m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε)).
    let t0: Vec<f64> = theta0.iter().map(|&v| f64::from(v)).collect();
    let mut order: Vec<usize> = (0..8).collect();
    order.sort_by(|&a, &b| fitness[a].total_cmp(&fitness[b]));
    let mut u = [0.0f64; 8];
    for (rank, &i) in order.iter().enumerate() {
        u[i] = rank as f64 / 7.0 - 0.5;
    }
    let sigma = f64::from(config.sigma);
    let mut want = Vec::new();
    for j in 0..d {
        let mut g = 0.0;
        for k in 0..4 {
            let eps = (members[k * d + j] - t0[j]) / sigma;
            let mirror = (members[(k + 4) * d + j] - t0[j]) / sigma;
            assert!(
                (eps + mirror).abs() < 1e-5,
                "member {} mirrors member {k}",
                k + 4
            );
            g += (u[k] - u[k + 4]) * eps;
        }
        let g = -g / (8.0 * sigma) + f64::from(config.weight_decay) * t0[j];
        want.push(t0[j] - f64::from(config.lr) * g / (g.abs() + 1e-8));
    }
    assert_close("θ after one ES step", &got, &want, 1e-6, 1e-5);
}

#[test]
fn es_climbs_a_smooth_fitness() {
    // Fitness −‖θ − target‖²: the search must close most of the distance.
    let dev = gpu();
    let target: Vec<f32> = (0..20).map(|i| (i as f32 * 0.7).sin()).collect();
    let target_t = Tensor::from_slice(&dev, &target, &[1, 20]).unwrap();
    let config = EsConfig {
        population: 64,
        sigma: 0.1,
        lr: 0.05,
        weight_decay: 0.0,
    };
    let mut es = EvolutionStrategy::new(&Tensor::zeros(&dev, &[20]), config, 1).unwrap();
    let distance = |t: &Tensor| (t.reshape(&[1, 20]) - &target_t).square().sum_all().item();
    let before = distance(es.theta()).unwrap();
    for _ in 0..150 {
        let members = es.ask().unwrap();
        let fitness = (members - &target_t)
            .square()
            .sum(1)
            .neg()
            .to_vec()
            .unwrap();
        es.tell(&fitness).unwrap();
    }
    let after = distance(es.theta()).unwrap();
    assert!(after < 0.05 * before, "‖θ − target‖² {before} → {after}");
}
