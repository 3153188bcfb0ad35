use wgrad::nn::conv::{Conv2d, Flatten, MaxPool2d};
use wgrad::nn::norm::BatchNorm2d;
use wgrad::nn::{Activation, Dropout, Init, Linear, Module, Sequential};
use wgrad::optim::{Adam, Optimizer};
use wgrad::{Device, DeviceOptions, Tensor};
fn main() {
    let dev = Device::gpu_with(DeviceOptions {
        profile: true,
        ..Default::default()
    })
    .unwrap();
    let c: Vec<usize> = std::env::args()
        .nth(1)
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or(vec![32, 64]);
    let mut m = Sequential::new();
    let (mut ch, mut side) = (1, 28);
    for &k in &c {
        m.push(Conv2d::new(&dev, ch, k, 3).padding(1).bias(false));
        m.push(BatchNorm2d::new(&dev, k));
        m.push(Activation::Relu);
        m.push(MaxPool2d::new(2));
        ch = k;
        side /= 2;
    }
    m.push(Flatten);
    m.push(Dropout::new(0.25));
    m.push(Linear::new(&dev, ch * side * side, 128, Init::TorchDefault));
    m.push(Activation::Relu);
    m.push(Dropout::new(0.25));
    m.push(Linear::new(&dev, 128, 10, Init::TorchDefault));
    let mut opt = Adam::new(&m.params(), 1e-3);
    let x = Tensor::uniform(&dev, &[128, 1, 28, 28], -1.0, 1.0);
    let y = Tensor::from_vec(&dev, (0..128).map(|i| (i % 10) as f32).collect(), &[128]).unwrap();
    for it in 0..5 {
        let t = std::time::Instant::now();
        let loss = m.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward()).unwrap();
        dev.synchronize().unwrap();
        println!("step {it}: {:.3}s", t.elapsed().as_secs_f64());
    }
    for p in dev.profile().iter().take(25) {
        println!(
            "{:40} {:6} {:10.1} ms",
            p.shader, p.dispatches, p.milliseconds
        );
    }
}
