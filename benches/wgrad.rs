//! Criterion benchmarks of the default adapter: square matmuls, the products of an MLP's
//! training step, convolutions forward and backward, elementwise add, a reduction and a whole
//! MLP training step. The same figures,
//! as a table with ceilings and peers, come from `wgrad bench`.
//!
//! `cargo bench` runs everything; `cargo bench -- matmul/1024` one figure.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wgrad::nn::{self, Activation, Init, Module};
use wgrad::optim::{Optimizer, Sgd};
use wgrad::{Conv, Device, Tensor};

fn device() -> Device {
    Device::gpu().unwrap_or_else(|e| panic!("benchmarks need an adapter: {e}"))
}

/// Run `f` once and wait for the device, keeping the outputs alive until then.
fn synced<T>(dev: &Device, f: impl FnOnce() -> T) -> T {
    let out = f();
    dev.synchronize().expect("device stays usable");
    out
}

fn matmul(c: &mut Criterion) {
    let dev = device();
    let mut g = c.benchmark_group("matmul");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    for n in [128, 256, 512, 1024, 2048] {
        let (a, b) = (Tensor::rand(&dev, &[n, n]), Tensor::rand(&dev, &[n, n]));
        synced(&dev, || a.matmul(&b));
        dev.wait_for_compiles();
        // Elements here are floating-point operations: criterion's elem/s is FLOP/s.
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| synced(&dev, || a.matmul(&b)))
        });
    }
    g.finish();

    // The products of one training step of an MLP 784-256-256-10 at batch 128.
    let mut g = c.benchmark_group("mlp_products");
    g.sample_size(20).warm_up_time(Duration::from_secs(1));
    let shapes = [
        ("x·W1ᵀ", [128, 784], [256, 784], false, true),
        ("h·W2ᵀ", [128, 256], [256, 256], false, true),
        ("Gᵀ·x", [128, 256], [128, 784], true, false),
        ("G·W2", [128, 256], [256, 256], false, false),
    ];
    for (name, sa, sb, ta, tb) in shapes {
        let (a, b) = (Tensor::rand(&dev, &sa), Tensor::rand(&dev, &sb));
        // A transposed operand is a `t()` view, which matmul reads in place.
        let op = |x: &Tensor, t: bool| if t { x.t() } else { x.clone() };
        let out = synced(&dev, || op(&a, ta).matmul(&op(&b, tb)));
        let k = if ta { sa[0] } else { sa[1] };
        g.throughput(Throughput::Elements(2 * (out.numel() * k) as u64));
        g.bench_function(name, |bench| {
            bench.iter(|| synced(&dev, || op(&a, ta).matmul(&op(&b, tb))))
        });
    }
    g.finish();
}

/// `examples/cnn.rs`'s second layer (32→64, 3×3, 14×14, batch 128) and a ResNet-like layer
/// (64→64, 3×3, 56×56, batch 8), forward and forward + backward, in FLOPs of their products.
fn convolution(c: &mut Criterion) {
    let dev = device();
    let mut g = c.benchmark_group("conv");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    for (name, xs, ws) in [
        ("cnn_conv2_b128", [128, 32, 14, 14], [64, 32, 3, 3]),
        ("resnet_64_56x56_b8", [8, 64, 56, 56], [64, 64, 3, 3]),
    ] {
        let x = Tensor::rand(&dev, &xs).requires_grad_();
        let w = Tensor::rand(&dev, &ws).requires_grad_();
        let flops = 2 * (xs[0] * xs[2] * xs[3] * ws[0] * ws[1] * ws[2] * ws[3]) as u64;
        let pad = Conv::default().padding(1);
        g.throughput(Throughput::Elements(flops));
        g.bench_function(format!("{name}_fwd"), |bench| {
            bench.iter(|| synced(&dev, || x.conv2d(&w, None, pad)))
        });
        g.throughput(Throughput::Elements(3 * flops));
        g.bench_function(format!("{name}_fwd_bwd"), |bench| {
            bench.iter(|| {
                synced(&dev, || {
                    let y = x.conv2d(&w, None, pad);
                    let grads = y.backward_with(Tensor::ones(&dev, y.shape()));
                    grads.wrt(&x).sum_all() + grads.wrt(&w).sum_all()
                })
            })
        });
    }
    g.finish();
}

fn elementwise_and_reduce(c: &mut Criterion) {
    let dev = device();
    let n = 16 << 20;
    let (a, b) = (Tensor::rand(&dev, &[n]), Tensor::rand(&dev, &[n]));
    let mut g = c.benchmark_group("memory");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes(12 * n as u64));
    g.bench_function("add_16M", |bench| bench.iter(|| synced(&dev, || a.add(&b))));
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.bench_function("sum_16M", |bench| {
        bench.iter(|| synced(&dev, || a.sum_all()))
    });
    g.finish();
}

fn training_step(c: &mut Criterion) {
    let dev = device();
    dev.manual_seed(0);
    let model = nn::Mlp::new(&[784, 256, 256, 10])
        .activation(Activation::Relu)
        .init(Init::HeUniform)
        .build(&dev);
    let mut opt = Sgd::new(&model.params(), 1e-2);
    let x = Tensor::rand(&dev, &[128, 784]);
    let labels: Vec<f32> = (0..128).map(|i| ((i * 7) % 10) as f32).collect();
    let y = Tensor::from_vec(&dev, labels, &[128]).expect("128 labels");
    let mut step = || {
        let loss = model.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward()).expect("step runs");
        loss.item().expect("loss reads back")
    };
    step();
    dev.wait_for_compiles();
    let mut g = c.benchmark_group("training");
    g.sample_size(20);
    g.bench_function("mlp_784_256_256_10_b128_sgd", |bench| bench.iter(&mut step));
    g.finish();
}

criterion_group!(
    benches,
    matmul,
    convolution,
    elementwise_and_reduce,
    training_step
);
criterion_main!(benches);
