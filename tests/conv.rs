//! Convolution layers and batch norm as modules: PyTorch's names, shapes, initialisation and
//! running statistics (against a direct computation), checkpoints holding the buffers, and a
//! small convnet learning real digits on the GPU.

mod common;

use wgrad::data::{Dataset, Split};
use wgrad::nn::conv::{Conv2d, Flatten, MaxPool2d};
use wgrad::nn::norm::BatchNorm2d;
use wgrad::nn::{Activation, Init, Linear, Module, Sequential};
use wgrad::optim::{Adam, Optimizer};
use wgrad::{Conv, Device, Tensor};

/// |got − want| ≤ atol + rtol·|want| elementwise; the failure names the worst element.
fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let worst = got
        .iter()
        .zip(want)
        .enumerate()
        .map(|(i, (g, w))| (i, (g - w).abs() - (atol + rtol * w.abs())))
        .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
    assert!(
        worst.1 <= 0.0,
        "{what}: worst element {}: got {}, want {} (atol {atol}, rtol {rtol})",
        worst.0,
        got[worst.0],
        want[worst.0]
    );
}

fn convnet(dev: &Device) -> Sequential {
    Sequential::new()
        .with(Conv2d::new(dev, 1, 8, 3).padding(1).bias(false))
        .with(BatchNorm2d::new(dev, 8))
        .with(Activation::Relu)
        .with(MaxPool2d::new(2))
        .with(Flatten)
        .with(Linear::new(dev, 8 * 14 * 14, 10, Init::TorchDefault))
}

/// PyTorch's layouts, by hand: x is `[n, c, h, w]`, conv2d's weight `[out, in, kh, kw]`,
/// conv_transpose2d's `[in, out, kh, kw]`; values worked out on paper, on both backends.
#[test]
fn convolutions_read_pytorchs_layouts_as_worked_out_by_hand() {
    for dev in std::iter::once(Device::cpu()).chain(common::gpu()) {
        // Channel 0 holds 1..9, channel 1 is all 10.
        let mut x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        x.extend([10.0; 9]);
        let x = Tensor::from_vec(&dev, x, &[1, 2, 3, 3]).unwrap();
        // Output 0: channel 0's top-left tap plus channel 1's bottom-right; output 1: channel
        // 0's top-right tap.
        let w = Tensor::from_slice(
            &dev,
            &[
                1., 0., 0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0., 0.,
            ],
            &[2, 2, 2, 2],
        )
        .unwrap();
        let y = x.conv2d(&w, None, Conv::default()).to_vec().unwrap();
        assert_eq!(
            y,
            [11., 12., 14., 15., 2., 3., 5., 6.],
            "conv2d on {}",
            dev.name()
        );
        // A transposed convolution with stride 2 stamps the kernel scaled by each input.
        let x = Tensor::from_slice(&dev, &[1., 2., 3., 4.], &[1, 1, 2, 2]).unwrap();
        let w = Tensor::from_slice(&dev, &[1., 10., 100., 1000.], &[1, 1, 2, 2]).unwrap();
        let y = x
            .conv_transpose2d(&w, None, Conv::default().stride(2))
            .to_vec()
            .unwrap();
        let want = [
            1., 10., 2., 20., 100., 1000., 200., 2000., 3., 30., 4., 40., 300., 3000., 400., 4000.,
        ];
        assert_eq!(y, want, "conv_transpose2d on {}", dev.name());
    }
}

#[test]
fn layers_have_pytorchs_names_shapes_and_initial_values() {
    let dev = Device::cpu();
    dev.manual_seed(1);
    let model = convnet(&dev);
    let names = |p: Vec<(String, Tensor)>| -> Vec<(String, Vec<usize>)> {
        p.into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect()
    };
    let want = |v: &[(&str, &[usize])]| -> Vec<(String, Vec<usize>)> {
        v.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
    };
    assert_eq!(
        names(model.params()),
        want(&[
            ("0.weight", &[8, 1, 3, 3]),
            ("1.weight", &[8]),
            ("1.bias", &[8]),
            ("5.weight", &[10, 1568]),
            ("5.bias", &[10]),
        ])
    );
    assert_eq!(
        names(model.state_dict()),
        want(&[
            ("0.weight", &[8, 1, 3, 3]),
            ("1.weight", &[8]),
            ("1.bias", &[8]),
            ("1.running_mean", &[8]),
            ("1.running_var", &[8]),
            ("1.num_batches_tracked", &[]),
            ("5.weight", &[10, 1568]),
            ("5.bias", &[10]),
        ])
    );
    // PyTorch's default draws: U(−1/√fan_in, 1/√fan_in), fan_in = 1·3·3 for the convolution.
    let conv = Conv2d::new(&dev, 4, 16, 5);
    let bound = 1.0 / (4.0f32 * 25.0).sqrt();
    for (what, t) in conv.params() {
        let v = t.to_vec().unwrap();
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // 1,600 weights come within 1% of the bound; 16 biases only within it.
        let near = if what == "weight" { 0.99 * bound } else { 0.0 };
        assert!(
            max <= bound && max > near,
            "{what}: largest |value| {max}, want in ({near}, {bound}]"
        );
    }
    let bn = BatchNorm2d::new(&dev, 3);
    assert_eq!(bn.running_var.to_vec().unwrap(), vec![1.0; 3]);
    assert_eq!(bn.weight.as_ref().unwrap().to_vec().unwrap(), vec![1.0; 3]);
}

/// PyTorch's rule, computed directly: per channel, the batch mean and biased variance
/// normalise; the running mean and the unbiased variance move by `momentum`.
#[test]
fn batch_norm_running_statistics_follow_pytorchs_update_rule_on_both_backends() {
    let devices: Vec<Device> = std::iter::once(Device::cpu())
        .chain(common::gpu())
        .collect();
    let (n, c, hw) = (4, 3, 6);
    let batches: Vec<Vec<f32>> = (0..2)
        .map(|b| {
            (0..n * c * hw)
                .map(|i| ((i * 7 + b * 13) % 11) as f32 * 0.3 - 1.0 + b as f32)
                .collect()
        })
        .collect();
    // The direct computation.
    let (mut rm, mut rv) = (vec![0.0f64; c], vec![1.0f64; c]);
    let mut want_train = Vec::new();
    for x in &batches {
        let mut y = vec![0.0; x.len()];
        for ch in 0..c {
            let vals: Vec<(usize, f64)> = (0..n)
                .flat_map(|s| (0..hw).map(move |p| (s * c + ch) * hw + p))
                .map(|i| (i, x[i] as f64))
                .collect();
            let m = vals.iter().map(|v| v.1).sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v.1 - m).powi(2)).sum::<f64>() / vals.len() as f64;
            for &(i, v) in &vals {
                y[i] = (v - m) / (var + 1e-5).sqrt();
            }
            let unbiased = var * vals.len() as f64 / (vals.len() - 1) as f64;
            rm[ch] = 0.9 * rm[ch] + 0.1 * m;
            rv[ch] = 0.9 * rv[ch] + 0.1 * unbiased;
        }
        want_train.push(y);
    }
    let want_eval: Vec<f64> = batches[0]
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / hw) % c;
            (v as f64 - rm[ch]) / (rv[ch] + 1e-5).sqrt()
        })
        .collect();
    for dev in &devices {
        let bn = BatchNorm2d::new(dev, c);
        let input = |b: usize| Tensor::from_slice(dev, &batches[b], &[n, c, 2, 3]).unwrap();
        for (b, want) in want_train.iter().enumerate() {
            let y = bn.forward(&input(b)).to_vec_f64().unwrap();
            assert_close(
                &format!("{} training output {b}", dev.name()),
                &y,
                want,
                1e-5,
                1e-4,
            );
        }
        let got = |t: &Tensor| t.to_vec_f64().unwrap();
        assert_close("running_mean", &got(&bn.running_mean), &rm, 1e-6, 1e-5);
        assert_close("running_var", &got(&bn.running_var), &rv, 1e-6, 1e-5);
        assert_eq!(bn.num_batches_tracked.item().unwrap(), 2.0);
        bn.set_training(false);
        let y = bn.forward(&input(0)).to_vec_f64().unwrap();
        assert_close(
            &format!("{} evaluation output", dev.name()),
            &y,
            &want_eval,
            1e-5,
            1e-4,
        );
        assert_eq!(
            bn.num_batches_tracked.item().unwrap(),
            2.0,
            "evaluation counts no batch"
        );
    }
}

/// A conv-bn-relu-pool net learns real MNIST digits on the GPU, and a checkpoint of its state
/// (running statistics included) gives a fresh net the same evaluation outputs.
#[test]
fn a_small_convnet_learns_digits_and_its_checkpoint_holds_the_running_statistics() {
    let Some(dev) = common::gpu() else { return };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let train = Dataset::mnist(root.join("data/mnist"), Split::Train)
        .unwrap()
        .slice(0, 512)
        .single_channel();
    dev.manual_seed(3);
    let model = convnet(&dev);
    let mut opt = Adam::new(&model.params(), 3e-3);
    let mut losses = Vec::new();
    for epoch in 0..3 {
        for (i, batch) in train.batches(&dev, 64, Some(epoch)).enumerate() {
            let (x, y) = batch.unwrap();
            let loss = model.forward(&x).cross_entropy(&y);
            opt.step(&loss.backward()).unwrap();
            if epoch == 0 && i == 0 || epoch == 2 {
                losses.push(loss.item().unwrap());
            }
        }
    }
    let last = losses[1..].iter().sum::<f32>() / (losses.len() - 1) as f32;
    assert!(
        last < 0.5 * losses[0],
        "the loss should at least halve over 3 epochs: first batch {}, last epoch mean {last}",
        losses[0]
    );
    let dir = std::env::temp_dir().join(format!("wgrad-conv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("convnet.safetensors");
    wgrad::checkpoint::save(&path, &model.state_dict(), None).unwrap();
    let fresh = convnet(&dev);
    wgrad::checkpoint::load(&path, &fresh.state_dict(), None).unwrap();
    model.set_training(false);
    fresh.set_training(false);
    let x = train.batches(&dev, 32, None).next().unwrap().unwrap().0;
    let (a, b) = (model.forward(&x), fresh.forward(&x));
    assert_close(
        "outputs after loading",
        &b.to_vec_f64().unwrap(),
        &a.to_vec_f64().unwrap(),
        0.0,
        0.0,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
