//! Training end to end: the same steps give the same parameters on the GPU and the CPU
//! reference, a real MNIST slice trains to a stated accuracy, and a long run allocates nothing
//! after its first steps.

mod common;

use wgrad::data::{Dataset, Split};
use wgrad::nn::{self, Activation, Init, Module, Params};
use wgrad::optim::{Adam, Optimizer, Rprop, Sgd};
use wgrad::{Device, Tensor};

fn mnist(split: Split, n: usize) -> Dataset {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    Dataset::mnist(dir, split)
        .expect("MNIST is vendored in data/mnist")
        .flattened()
        .slice(0, n)
}

type MakeOpt = fn(&Params) -> Box<dyn Optimizer>;

/// Five steps of a small MLP (with dropout) on `dev`; the parameters afterwards.
fn five_steps(dev: &Device, make: MakeOpt, data: &Dataset) -> Vec<Vec<f64>> {
    dev.manual_seed(3);
    let model = nn::Mlp::new(&[784, 16, 12, 10])
        .activation(Activation::Tanh)
        .init(Init::XavierUniform)
        .dropout(0.2)
        .build(dev);
    let mut opt = make(&model.params());
    for step in 0..5 {
        let idx: Vec<usize> = (step * 8..step * 8 + 8).collect();
        let (x, y) = data.batch(dev, &idx).unwrap();
        let loss = model.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward()).unwrap();
    }
    model
        .params()
        .iter()
        .map(|(_, p)| p.to_vec_f64().unwrap())
        .collect()
}

#[test]
fn training_steps_match_the_cpu_reference_for_every_optimizer() {
    let Some(gpu) = common::gpu() else { return };
    let data = mnist(Split::Train, 40);
    let optimizers: [(&str, MakeOpt); 5] = [
        ("sgd", |p| Box::new(Sgd::new(p, 0.1))),
        ("nesterov", |p| {
            Box::new(Sgd::new(p, 0.1).momentum(0.9).nesterov().weight_decay(1e-3))
        }),
        ("adam", |p| Box::new(Adam::new(p, 1e-2))),
        ("adamw", |p| Box::new(Adam::adamw(p, 1e-2, 0.05))),
        ("rprop", |p| Box::new(Rprop::new(p))),
    ];
    for (name, make) in optimizers {
        let (g, c) = (
            five_steps(&gpu, make, &data),
            five_steps(&Device::cpu(), make, &data),
        );
        for (i, (pg, pc)) in g.iter().zip(&c).enumerate() {
            let cmp = wgrad::check::Comparison::new(pg, pc, 1e-4, 1e-3);
            assert!(cmp.pass, "{name}: parameter {i} after 5 steps: {cmp}");
        }
    }
}

#[test]
fn a_real_mnist_slice_trains_to_over_85_percent() {
    let dev = common::gpu().unwrap_or_else(Device::cpu);
    let (mut train, mut test) = (mnist(Split::Train, 2000), mnist(Split::Test, 500));
    let (mean, std) = train.mean_std();
    train.normalize(mean, std);
    test.normalize(mean, std);
    dev.manual_seed(0);
    let model = nn::Mlp::new(&[784, 64, 10])
        .activation(Activation::Relu)
        .init(Init::HeUniform)
        .build(&dev);
    let mut opt = Adam::new(&model.params(), 3e-3);
    for epoch in 0..5 {
        for batch in train.batches(&dev, 50, Some(epoch)) {
            let (x, y) = batch.unwrap();
            opt.step(&model.forward(&x).cross_entropy(&y).backward())
                .unwrap();
        }
    }
    let (x, y) = test.tensors(&dev).unwrap();
    let hits = model.forward(&x).argmax(1).eq(&y).sum_all().item().unwrap();
    let acc = hits / test.len() as f32;
    eprintln!(
        "MNIST 2000/500 slice, 5 epochs on {}: test accuracy {:.1}%",
        dev.name(),
        100.0 * acc
    );
    assert!(acc > 0.85, "test accuracy {acc}");
}

#[test]
fn a_long_training_run_allocates_nothing_after_its_first_steps() {
    let Some(dev) = common::gpu() else { return };
    dev.manual_seed(1);
    let model = nn::Mlp::new(&[12, 16, 4])
        .activation(Activation::Relu)
        .init(Init::HeUniform)
        .dropout(0.1)
        .build(&dev);
    let mut opt = Adam::new(&model.params(), 1e-3);
    let x = Tensor::randn(&dev, &[8, 12]);
    let y = Tensor::from_slice(&dev, &[0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0], &[8]).unwrap();
    let mut after_warmup = None;
    for step in 0..2000 {
        let loss = model.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward()).unwrap();
        if step == 9 {
            after_warmup = dev.gpu_stats();
        }
    }
    let _ = Tensor::zeros(&dev, &[1]).to_vec().unwrap();
    let (a, b) = (after_warmup.unwrap(), dev.gpu_stats().unwrap());
    eprintln!("after 10 steps: {a:?}\nafter 2000:     {b:?}");
    assert_eq!(
        b.buffers_created, a.buffers_created,
        "buffers created after warm-up"
    );
    assert_eq!(
        b.bytes_created, a.bytes_created,
        "bytes allocated after warm-up"
    );
    assert!(
        b.buffers_live <= a.buffers_live + 2,
        "live buffers grew: {} → {}",
        a.buffers_live,
        b.buffers_live
    );
    assert_eq!(
        b.submits - a.submits,
        1990 + 1,
        "one submit per step (plus the final read)"
    );
}

/// A task whose logged loss is NaN at one global step (counted from 1), for the loop's checks.
struct NanAt {
    model: nn::Sequential,
    opt: Sgd,
    at: usize,
    steps: usize,
}

impl wgrad::train::Task for NanAt {
    fn step(&mut self, x: &Tensor, y: &Tensor) -> wgrad::Result<Vec<(&'static str, Tensor)>> {
        self.steps += 1;
        let loss = self.model.forward(x).cross_entropy(y);
        self.opt.step(&loss.backward())?;
        let logged = if self.steps == self.at {
            Tensor::scalar(x.device(), f32::NAN)
        } else {
            loss
        };
        Ok(vec![("loss", logged)])
    }
    fn evaluate(&mut self, _epoch: usize) -> wgrad::Result<Vec<wgrad::train::Metric>> {
        Ok(vec![])
    }
    fn params(&self) -> Vec<(String, Tensor)> {
        self.model.params()
    }
    fn optimizers(&mut self) -> Vec<&mut dyn Optimizer> {
        vec![&mut self.opt]
    }
}

#[test]
fn the_training_loop_names_the_exact_step_of_a_nan_loss_or_keeps_going_if_told() {
    use wgrad::train::{self, Config};
    let dev = Device::cpu();
    let data = mnist(Split::Train, 100);
    let task = |at| {
        dev.manual_seed(0);
        let model = nn::Mlp::new(&[784, 8, 10]).build(&dev);
        let opt = Sgd::new(&model.params(), 0.05);
        NanAt {
            model,
            opt,
            at,
            steps: 0,
        }
    };
    // 100 samples in batches of 10: 10 steps an epoch, checked every 4 steps; NaN at step 7 of
    // epoch 2 (global 17), in the middle of an interval.
    let config = Config {
        epochs: 3,
        batch: 10,
        lr: 0.05,
        log_every: 4,
        ..Config::default()
    };
    match train::fit(&mut task(17), &data, &config, &mut wgrad::progress::Silent) {
        Err(wgrad::Error::NonFiniteLoss {
            epoch, step, steps, ..
        }) => assert_eq!((epoch, step, steps), (2, 7, 10)),
        other => panic!("want the NaN at epoch 2, step 7, got {other:?}"),
    }
    let keep = Config {
        keep_going: true,
        ..config
    };
    let outcome = train::fit(&mut task(17), &data, &keep, &mut wgrad::progress::Silent)
        .expect("keep_going trains on");
    assert_eq!(outcome.epochs.len(), 3);
    let loss = |e: usize| outcome.epochs[e].get("train_loss").unwrap();
    assert!(loss(0).is_finite() && loss(1).is_nan() && loss(2).is_finite());
}

#[test]
fn a_run_is_not_resumed_with_other_options() {
    use wgrad::train::{self, Config};
    let dev = Device::cpu();
    let data = mnist(Split::Train, 40);
    let out = std::env::temp_dir().join(format!("wgrad-resume-batch-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let task = || {
        dev.manual_seed(0);
        let model = nn::Mlp::new(&[784, 8, 10]).build(&dev);
        let opt = Sgd::new(&model.params(), 0.05);
        NanAt {
            model,
            opt,
            at: usize::MAX,
            steps: 0,
        }
    };
    let first = Config {
        epochs: 1,
        batch: 10,
        lr: 0.05,
        out: Some(out.clone()),
        fingerprint: "784-8-10 sgd".into(),
        ..Config::default()
    };
    train::fit(&mut task(), &data, &first, &mut wgrad::progress::Silent).unwrap();
    let resume = Config {
        resume: true,
        epochs: 2,
        ..first.clone()
    };
    let cosine = wgrad::optim::Schedule::Cosine {
        total: 2,
        min_lr: 0.0,
    };
    let changes: [(&str, Config); 5] = [
        (
            "batch 10",
            Config {
                batch: 20,
                ..resume.clone()
            },
        ),
        (
            "seed 0",
            Config {
                seed: 1,
                ..resume.clone()
            },
        ),
        (
            "lr 0.05",
            Config {
                lr: 0.1,
                ..resume.clone()
            },
        ),
        (
            "schedule Constant",
            Config {
                schedule: cosine,
                ..resume.clone()
            },
        ),
        (
            "fingerprint 784-8-10 sgd",
            Config {
                fingerprint: "784-8-10 adam".into(),
                ..resume.clone()
            },
        ),
    ];
    for (want, config) in changes {
        match train::fit(&mut task(), &data, &config, &mut wgrad::progress::Silent) {
            Err(wgrad::Error::Resume { message, .. }) => {
                assert!(message.contains(want), "want `{want}` in: {message}")
            }
            other => panic!("resuming with a changed {want}: {other:?}"),
        }
    }
    // The same options resume.
    let outcome = train::fit(&mut task(), &data, &resume, &mut wgrad::progress::Silent).unwrap();
    assert_eq!(outcome.epochs.len(), 2);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn data_parallel_shards_split_every_global_batch_once_in_the_same_order() {
    use wgrad::data::Shard;
    let data = Dataset {
        inputs: (0..203).map(|i| i as f32).collect(),
        labels: (0..203).map(|i| (i % 10) as f32).collect(),
        sample_shape: vec![1],
        classes: 10,
    };
    let dev = Device::cpu();
    let seed = Some(11);
    let global: Vec<Vec<f32>> = data
        .batches(&dev, 20, seed)
        .map(|b| b.unwrap().0.to_vec().unwrap())
        .collect();
    assert_eq!(data.num_shard_batches(20, 1), global.len());
    for ranks in [1, 2, 3, 4] {
        // The last global batch holds 3 samples: kept for up to 3 ranks, left out for 4.
        let steps = data.num_shard_batches(20, ranks);
        assert_eq!(steps, if ranks <= 3 { 11 } else { 10 }, "{ranks} ranks");
        let shards: Vec<Vec<Vec<f32>>> = (0..ranks)
            .map(|rank| {
                data.shard_batches(&dev, 20, seed, Shard { rank, ranks })
                    .map(|b| b.unwrap().0.to_vec().unwrap())
                    .collect()
            })
            .collect();
        for (step, whole) in global.iter().take(steps).enumerate() {
            let joined: Vec<f32> = shards.iter().flat_map(|s| s[step].clone()).collect();
            assert_eq!(&joined, whole, "{ranks} ranks, step {step}");
            let sizes: Vec<usize> = shards.iter().map(|s| s[step].len()).collect();
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(
                hi - lo <= 1,
                "{ranks} ranks, step {step}: shard sizes {sizes:?}"
            );
        }
        assert!(shards.iter().all(|s| s.len() == steps));
    }
}
