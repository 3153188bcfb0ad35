//! wgrad's own benchmark figures for `wgrad bench` and `benches/`: matmul GFLOP/s, convolution
//! GFLOP/s beside the matmul of the same product shape, elementwise and reduction GB/s, MLP and
//! convnet training steps per second, host cost per recorded dispatch, and the
//! host's own ceilings on a CPU-backed adapter (the `gemm` crate's f32 GEMM on the same cores,
//! feature `ceiling`, and single-threaded memory bandwidth). Each is timed with the library's
//! harness ([`wgrad::bench`]).

use std::time::Instant;

use wgrad::bench::{Figure, Work, calls_for, median};
use wgrad::nn::conv::{Conv2d, Flatten, MaxPool2d};
use wgrad::nn::norm::BatchNorm2d;
use wgrad::nn::{Activation, Dropout, Init, Linear, Mlp, Module, Sequential};
use wgrad::optim::{Adam, Optimizer, Sgd};
use wgrad::{Conv, Device, Result, Tensor, Variant};

/// C = A·B for square f32 matrices of size `n`: `k` products queued, one sync, GFLOP/s.
pub fn matmul(dev: &Device, n: usize, reps: usize, kernel: Variant) -> Result<Figure> {
    matmul_shape(
        dev,
        &format!("matmul {n}x{n}x{n}"),
        (n, n, n),
        (false, false),
        reps,
        kernel,
    )
}

/// A product of an `m×k` by a `k×n` matrix (either transposed), GFLOP/s.
pub fn matmul_shape(
    dev: &Device,
    name: &str,
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    reps: usize,
    kernel: Variant,
) -> Result<Figure> {
    dev.manual_seed(0);
    let a = Tensor::rand(dev, &if ta { [k, m] } else { [m, k] });
    let b = Tensor::rand(dev, &if tb { [n, k] } else { [k, n] });
    let name = match kernel {
        Variant::Auto => name.to_string(),
        k => format!("{name} ({k:?} kernel)"),
    };
    let flops = 2.0 * (m * n * k) as f64;
    wgrad::bench::throughput(dev, &name, Work::Flops(flops), reps, || {
        a.matmul_variant(&b, ta, tb, kernel)
    })
}

/// c = a + b over `n` f32 values, synchronised after every add; GB/s counting 3 × 4n bytes.
pub fn add(dev: &Device, n: usize, reps: usize) -> Result<Figure> {
    let (a, b) = (Tensor::rand(dev, &[n]), Tensor::rand(dev, &[n]));
    dev.synchronize()?;
    let once = || -> Result<()> {
        let c = a.add(&b);
        dev.synchronize()?;
        drop(c);
        Ok(())
    };
    for _ in 0..3 {
        once()?;
    }
    let bytes = 12.0 * n as f64;
    let mut samples = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..5 {
            once()?;
        }
        samples.push(bytes * 5.0 / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok(Figure::new(format!("add {n} f32"), "GB/s", samples))
}

/// The sum of `n` f32 values (two passes for a long axis); GB/s counting 4n bytes read.
pub fn sum(dev: &Device, n: usize, reps: usize) -> Result<Figure> {
    let a = Tensor::rand(dev, &[n]);
    dev.synchronize()?;
    let once = || -> Result<()> {
        let s = a.sum_all();
        dev.synchronize()?;
        drop(s);
        Ok(())
    };
    for _ in 0..3 {
        once()?;
    }
    let mut samples = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..5 {
            once()?;
        }
        samples.push(4.0 * n as f64 * 5.0 / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok(Figure::new(format!("sum {n} f32"), "GB/s", samples))
}

/// Training steps per second of an MLP 784-256-256-10 (ReLU, softmax cross-entropy, batch 128),
/// `steps` steps then one loss read per repetition (or a read every step). Also returns the
/// time to the end of the first step.
pub fn mlp_step(
    dev: &Device,
    optimizer: &str,
    reps: usize,
    read_every_step: bool,
) -> Result<Figure> {
    let start = Instant::now();
    dev.manual_seed(0);
    let model = Mlp::new(&[784, 256, 256, 10])
        .activation(Activation::Relu)
        .init(Init::HeUniform)
        .build(dev);
    let mut opt: Box<dyn Optimizer> = match optimizer {
        "adam" => Box::new(Adam::new(&model.params(), 1e-3)),
        _ => Box::new(Sgd::new(&model.params(), 1e-2)),
    };
    let batch = 128;
    let x = Tensor::rand(dev, &[batch, 784]);
    let labels: Vec<f32> = (0..batch).map(|i| ((i * 7) % 10) as f32).collect();
    let y = Tensor::from_vec(dev, labels, &[batch])?;
    let mut step = |read: bool| -> Result<f32> {
        let loss = model.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward())?;
        if read { loss.item() } else { Ok(0.0) }
    };
    step(true)?;
    let first = start.elapsed().as_secs_f64();
    dev.wait_for_compiles();
    for _ in 0..5 {
        step(true)?;
    }
    let steps = calls_for(1.0, || step(true).map(|_| ()))?.max(10);
    let mut samples = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for i in 0..steps {
            step(read_every_step || i + 1 == steps)?;
        }
        samples.push(steps as f64 / t.elapsed().as_secs_f64());
    }
    let how = if read_every_step {
        "loss read every step"
    } else {
        "loss read at the end"
    };
    let mut f = Figure::new(
        format!("mlp step 784-256-256-10 b128 {optimizer} ({how})"),
        "steps/s",
        samples,
    );
    f.note = format!(
        "{steps} steps per repetition; first step done {:.0} ms after model creation",
        first * 1e3
    );
    Ok(f)
}

/// The convolutions `wgrad bench --only conv` times: `examples/cnn.rs`'s two layers at batch 128
/// (the first, with one input channel, is a thin product) and a ResNet-like 3×3 64→64 layer on
/// 56×56 at batch 8; each `(name, x, weight)`, stride 1, padding 1.
pub const CONVS: [(&str, [usize; 4], [usize; 4]); 3] = [
    ("cnn conv1 1→32 28x28 b128", [128, 1, 28, 28], [32, 1, 3, 3]),
    (
        "cnn conv2 32→64 14x14 b128",
        [128, 32, 14, 14],
        [64, 32, 3, 3],
    ),
    ("resnet 3x3 64→64 56x56 b8", [8, 64, 56, 56], [64, 64, 3, 3]),
];

/// The product shape (m, k, n) of a stride-1, padding-1 3×3 convolution of `x` by `w`: rows
/// are output pixels, columns output channels, terms input channels × taps.
pub fn conv_product(x: [usize; 4], w: [usize; 4]) -> (usize, usize, usize) {
    (x[0] * x[2] * x[3], w[1] * w[2] * w[3], w[0])
}

/// conv2d of `x` by `w` (stride 1, padding 1), forward only or forward and backward (the input
/// and the weight gradients: three products' worth of FLOPs), through the column matrices or
/// the implicit-product kernels; GFLOP/s.
pub fn conv(
    dev: &Device,
    (name, x, w): (&str, [usize; 4], [usize; 4]),
    backward: bool,
    implicit: bool,
    reps: usize,
) -> Result<Figure> {
    dev.manual_seed(0);
    let xt = Tensor::rand(dev, &x).requires_grad_();
    let wt = Tensor::rand(dev, &w).requires_grad_();
    let (m, k, n) = conv_product(x, w);
    let flops = 2.0 * (m * k * n) as f64 * if backward { 3.0 } else { 1.0 };
    let name = format!(
        "conv {name} {}{}",
        if backward { "fwd+bwd" } else { "fwd" },
        if implicit { " (implicit)" } else { "" }
    );
    let pad = Conv::default().padding(1);
    wgrad::bench::throughput(dev, &name, Work::Flops(flops), reps, || {
        let y = xt.conv2d_variant(&wt, None, pad, implicit);
        if backward {
            let g = y.backward_with(Tensor::ones(dev, y.shape()));
            g.wrt(&xt).sum_all() + g.wrt(&wt).sum_all()
        } else {
            y
        }
    })
}

/// Training steps per second of `examples/cnn.rs`'s default convnet (conv-bn-relu-pool 32 and
/// 64, hidden 128, dropout 0.25) on batches of 128, Adam, the loss read at the end.
pub fn cnn_step(dev: &Device, reps: usize) -> Result<Figure> {
    let start = Instant::now();
    dev.manual_seed(0);
    let mut model = Sequential::new();
    let (mut channels, mut side) = (1, 28);
    for c in [32, 64] {
        model.push(Conv2d::new(dev, channels, c, 3).padding(1).bias(false));
        model.push(BatchNorm2d::new(dev, c));
        model.push(Activation::Relu);
        model.push(MaxPool2d::new(2));
        (channels, side) = (c, side / 2);
    }
    model.push(Flatten);
    model.push(Dropout::new(0.25));
    model.push(Linear::new(
        dev,
        channels * side * side,
        128,
        Init::TorchDefault,
    ));
    model.push(Activation::Relu);
    model.push(Dropout::new(0.25));
    model.push(Linear::new(dev, 128, 10, Init::TorchDefault));
    let mut opt = Adam::new(&model.params(), 1e-3);
    let batch = 128;
    let x = Tensor::rand(dev, &[batch, 1, 28, 28]);
    let labels: Vec<f32> = (0..batch).map(|i| ((i * 7) % 10) as f32).collect();
    let y = Tensor::from_vec(dev, labels, &[batch])?;
    let mut step = |read: bool| -> Result<f32> {
        let loss = model.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward())?;
        if read { loss.item() } else { Ok(0.0) }
    };
    step(true)?;
    let first = start.elapsed().as_secs_f64();
    dev.wait_for_compiles();
    step(true)?;
    let steps = calls_for(1.0, || step(true).map(|_| ()))?.max(3);
    let mut samples = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for i in 0..steps {
            step(i + 1 == steps)?;
        }
        samples.push(steps as f64 / t.elapsed().as_secs_f64());
    }
    let mut f = Figure::new(
        "cnn step 32-64 conv-bn-relu-pool b128 adam",
        "steps/s",
        samples,
    );
    f.note = format!(
        "{steps} steps per repetition; first step done {:.0} ms after model creation",
        first * 1e3
    );
    Ok(f)
}

/// Host cost of recording and submitting one dispatch: a chain of `n` tiny ops recorded and
/// flushed (without waiting for the device), in µs per dispatch.
pub fn host_overhead(dev: &Device, reps: usize) -> Result<Figure> {
    let n = 500;
    let x = Tensor::rand(dev, &[64]);
    let chain = || -> Result<f64> {
        let t = Instant::now();
        let mut y = x.clone();
        for _ in 0..n {
            y = y + 1.0;
        }
        dev.flush()?;
        let host = t.elapsed().as_secs_f64();
        dev.synchronize()?;
        Ok(host)
    };
    chain()?;
    let mut samples = Vec::new();
    for _ in 0..reps {
        samples.push(chain()? * 1e6 / n as f64);
    }
    let mut f = Figure::new("host cost per recorded dispatch", "us", samples);
    f.note = format!("{n} dependent tiny ops recorded, encoded and submitted");
    Ok(f)
}

/// Single-threaded host bandwidth of c = a + b over `n` f32 values (GB/s, 3 × 4n bytes): the
/// memory ceiling of elementwise kernels on a CPU-backed adapter.
pub fn host_add_bandwidth(n: usize, reps: usize) -> f64 {
    let a = vec![1.0f32; n];
    let b = vec![2.0f32; n];
    let mut c = vec![0.0f32; n];
    let mut samples = Vec::new();
    for _ in 0..reps.max(3) {
        let t = Instant::now();
        for ((c, a), b) in c.iter_mut().zip(&a).zip(&b) {
            *c = a + b;
        }
        std::hint::black_box(&c);
        samples.push(12.0 * n as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    median(&samples)
}

/// f32 GEMM GFLOP/s of the `gemm` crate on all host threads (the ceiling of matmul on a
/// CPU-backed adapter); `None` without the `ceiling` feature.
pub fn gemm_ceiling(n: usize, reps: usize) -> Option<f64> {
    #[cfg(feature = "ceiling")]
    {
        let a = vec![1.0f32; n * n];
        let b = vec![0.5f32; n * n];
        let mut c = vec![0.0f32; n * n];
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
        let run = |c: &mut [f32]| unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            )
        };
        run(&mut c);
        let mut samples = Vec::new();
        for _ in 0..reps.max(3) {
            let t = Instant::now();
            run(&mut c);
            samples.push(2.0 * (n as f64).powi(3) / t.elapsed().as_secs_f64() / 1e9);
        }
        Some(median(&samples))
    }
    #[cfg(not(feature = "ceiling"))]
    {
        let _ = (n, reps);
        None
    }
}
