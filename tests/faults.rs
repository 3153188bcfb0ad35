//! What the environment can do to a training run, and what wgrad does about it: a lost device, a
//! device with small limits, grids over the per-dimension limit, empty and oversized tensors, a
//! readback that times out, a shader the driver rejects, errors while dropping, extreme inputs to
//! softmax and the activations, anomaly mode, and runs that must repeat bit for bit (also under
//! another lavapipe thread count, in a child process). `RELIABILITY.md` lists each case.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::time::Duration;

use wgrad::nn::{self, Activation, Init, Module};
use wgrad::op::{Input, Kernel, Layout, Op, Shader};
use wgrad::optim::{Adam, Optimizer};
use wgrad::{Conv, Device, DeviceOptions, Error, Tensor};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(common::gpu());
    d
}

/// A GPU device on the default adapter with options changed by `tune`, which also sees the
/// adapter's own limits; `None` (the test skips) where `common::gpu` would skip.
fn gpu_with(tune: impl FnOnce(&mut DeviceOptions, &wgpu::Limits)) -> Option<Device> {
    let name = common::gpu()?.adapter_info()?.name;
    let adapter = wgrad::gpu::adapters()
        .into_iter()
        .find(|a| a.get_info().name == name)?;
    let mut options = DeviceOptions {
        adapter: Some(name),
        ..DeviceOptions::default()
    };
    tune(&mut options, &adapter.limits());
    Some(Device::gpu_with(options).expect("a device on the same adapter"))
}

/// Element-wise comparison `|got − want| ≤ atol + rtol·|want|`, treating equal infinities as
/// equal; the failure names the worst element.
fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = if g == w { 0.0 } else { (g - w).abs() };
        let excess = if err.is_nan() {
            f32::INFINITY
        } else {
            err - (atol + rtol * w.abs())
        };
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: worst element {i}: got {}, want {} (atol {atol}, rtol {rtol})",
            got[i], want[i]
        );
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_vec().expect("read")
}

// ----- 1. errors instead of panics -------------------------------------------------------------

#[test]
fn a_lost_device_is_reported_as_lost_and_nothing_panics() {
    let Some(dev) = common::gpu() else { return };
    let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[3]).unwrap();
    let y = x.exp();
    assert_close(
        "before the loss",
        &values(&y),
        &[1f32.exp(), 2f32.exp(), 3f32.exp()],
        0.0,
        1e-6,
    );
    let pending = &x * 2.0;
    dev.simulate_device_loss();
    let lost = |what: &str, r: wgrad::Result<Vec<f32>>| match r {
        Err(Error::DeviceLost { reason }) => {
            let msg = Error::DeviceLost { reason }.to_string();
            assert!(msg.contains("create a new Device"), "{what}: {msg}");
        }
        other => panic!("{what}: expected Error::DeviceLost, got {other:?}"),
    };
    lost("running a pending op", pending.to_vec());
    lost("reading a computed tensor", y.to_vec());
    lost("recording after the loss", x.add(&x).to_vec());
    lost(
        "uploading after the loss",
        Tensor::from_slice(&dev, &[1.0], &[1]).and_then(|t| t.to_vec()),
    );
    // The error repeats instead of turning into something else, and dropping is quiet.
    lost("reading again", y.to_vec());
    drop((x, y, pending, dev));
    // A new device works.
    let fresh = common::gpu().expect("a second device");
    assert_eq!(Tensor::scalar(&fresh, 2.0).square().item().unwrap(), 4.0);
}

/// A custom op running whatever shader it is given: the way to hand the driver a bad one.
struct Raw(&'static Shader);

impl Op for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn cpu(&self, inputs: &[Input], outputs: &mut [&mut [f64]]) {
        outputs[0].copy_from_slice(inputs[0].values);
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        Kernel::per_element(self.0, &[4u32, 0, 0, 0], 4)
    }
}

static NOT_WGSL: Shader = Shader {
    name: "faults/not_wgsl",
    source: "@compute @workgroup_size(64) fn main( { this is not WGSL }",
};

/// Valid WGSL whose bindings do not match the layout wgrad gives it (binding 1 is the output,
/// declared read-only here): the pipeline, not the parser, is refused.
static WRONG_LAYOUT: Shader = Shader {
    name: "faults/wrong_layout",
    source: "
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<uniform> y: vec4<f32>;
@group(0) @binding(2) var<uniform> p: vec4<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let v = x[g.x] + y.x + f32(p.x);
}
",
};

#[test]
fn an_adapter_that_is_not_there_is_an_error_listing_those_that_are() {
    let Some(dev) = common::gpu() else { return };
    let present = dev
        .adapter_info()
        .expect("a GPU device has an adapter")
        .name;
    // Neither a name nor an index of any adapter here.
    let wanted = "no-such-adapter-7f3a".to_string();
    let options = DeviceOptions {
        adapter: Some(wanted.clone()),
        ..DeviceOptions::default()
    };
    match Device::gpu_with(options) {
        Err(Error::AdapterNotFound {
            wanted: w,
            present: list,
        }) => {
            assert_eq!(w, wanted);
            assert!(list.contains(&present), "{present} missing from {list}");
        }
        other => panic!(
            "expected AdapterNotFound, got {:?}",
            other.map(|d| d.name())
        ),
    }
    // An index past the end is not an adapter either.
    let options = DeviceOptions {
        adapter: Some("999".into()),
        ..DeviceOptions::default()
    };
    assert!(
        matches!(
            Device::gpu_with(options),
            Err(Error::AdapterNotFound { .. })
        ),
        "adapter index 999 must not be found"
    );
}

#[test]
fn a_rejected_shader_is_an_error_naming_it_and_the_device_stays_usable() {
    let Some(dev) = common::gpu() else { return };
    let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[4]).unwrap();
    for shader in [&NOT_WGSL, &WRONG_LAYOUT] {
        for attempt in 0..2 {
            let bad = Tensor::apply_op(Raw(shader), &[&x], &[4]);
            match bad.to_vec() {
                Err(Error::ShaderRejected {
                    shader: name,
                    message,
                }) => {
                    assert_eq!(name, shader.name, "attempt {attempt}");
                    assert!(!message.is_empty());
                }
                other => panic!("{}: expected ShaderRejected, got {other:?}", shader.name),
            }
            // Once the failed tensor is gone, the device runs other work.
            drop(bad);
            assert_close(
                "after the rejection",
                &values(&(&x * 2.0)),
                &[2.0, 4.0, 6.0, 8.0],
                0.0,
                0.0,
            );
        }
    }
    let stats = dev.gpu_stats().unwrap();
    assert!(stats.pipelines >= 1, "good pipelines still compile");
}

#[test]
fn a_rejected_shader_among_good_ops_in_one_step_is_the_one_named() {
    let Some(dev) = common::gpu() else { return };
    let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0, 4.0], &[4]).unwrap();
    for shader in [&NOT_WGSL, &WRONG_LAYOUT] {
        // Good kernels before and after the bad one, all in one submission.
        let before = x.exp() * 3.0;
        let bad = Tensor::apply_op(Raw(shader), &[&before], &[4]);
        let after = (bad.sin() + &before).sum_all();
        match after.to_vec() {
            Err(Error::ShaderRejected { shader: name, .. }) => {
                assert_eq!(name, shader.name, "the error names the rejected shader")
            }
            other => panic!("{}: expected ShaderRejected, got {other:?}", shader.name),
        }
        drop((before, bad, after));
        assert_close(
            "after the step",
            &values(&x.sqrt()),
            &[1.0, 2f32.sqrt(), 3f32.sqrt(), 2.0],
            0.0,
            0.0,
        );
    }
}

/// Read `t` on a device whose waits time out at once: retry every 20 ms, up to `tries` times,
/// while the GPU is still busy.
fn read_when_done(t: &Tensor, tries: usize) -> Vec<f32> {
    for _ in 0..tries {
        match t.to_vec() {
            Ok(v) => return v,
            Err(Error::Readback(_)) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("retry: {e}"),
        }
    }
    panic!("the GPU did not finish within {} ms", 20 * tries)
}

/// A kernel that keeps the GPU busy for a long time and then writes a known value: each of its
/// invocations adds 1 to a running value 65,535 times (multiplying by the input, 1.0, on the
/// way, so no compiler can fold the loop; 65,535 is the longest loop llvmpipe runs). Every output
/// is 65,535 exactly.
static SLOW: Shader = Shader {
    name: "faults/slow",
    source: "
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: vec4<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    if g.x >= p.x {
        return;
    }
    var v = 0.0;
    for (var k = 0u; k < p.y; k++) {
        v = v * x[g.x] + 1.0;
    }
    y[g.x] = v;
}
",
};

const SLOW_ITERS: u32 = wgrad::op::MAX_LOOP as u32;

struct Slow(usize);

impl Op for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn cpu(&self, _: &[Input], outputs: &mut [&mut [f64]]) {
        outputs[0].fill(SLOW_ITERS as f64);
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        Kernel::new(
            &SLOW,
            &[self.0 as u32, SLOW_ITERS, 0, 0],
            self.0.div_ceil(64) as u64,
        )
    }
}

#[test]
fn a_readback_that_times_out_is_an_error_and_a_retry_reads_the_right_values() {
    let Some(dev) = gpu_with(|o, _| o.timeout = Some(Duration::ZERO)) else {
        return;
    };
    // 4,096 invocations × 65,535 dependent steps: never zero time. lavapipe sometimes runs a
    // submission to the end inside the submit call, so a zero-time wait can find it done: each
    // attempt is checked, and at least one of them must time out.
    let n = 4096;
    let mut timeouts = 0;
    for attempt in 0..30 {
        let ones = Tensor::full(&dev, &[n], 1.0);
        let c = Tensor::apply_op(Slow(n), &[&ones], &[n]);
        let got = match c.to_vec() {
            Ok(v) => v,
            Err(Error::Readback(m)) => {
                assert!(m.contains("WGRAD_TIMEOUT_SECS"), "{m}");
                timeouts += 1;
                // Nothing was lost or run twice: retrying until the GPU is done gives the
                // exact values.
                read_when_done(&c, 3000)
            }
            Err(e) => panic!("attempt {attempt}: expected a readback timeout or values, got {e}"),
        };
        assert_close(
            "65,535 steps of v = v·1 + 1",
            &got,
            &vec![SLOW_ITERS as f32; n],
            0.0,
            0.0,
        );
        if timeouts > 0 {
            break;
        }
    }
    assert!(
        timeouts > 0,
        "30 reads with a zero timeout and none timed out"
    );
}

#[test]
fn an_update_is_applied_once_even_when_waiting_for_it_times_out() {
    let Some(dev) = gpu_with(|o, _| {
        o.timeout = Some(Duration::ZERO);
        o.profile = true;
    }) else {
        return;
    };
    let w = Tensor::zeros(&dev, &[256, 256]);
    let big = Tensor::full(&dev, &[256, 4096], 1.0);
    // Flushes that queue more work than may be in flight wait for the oldest; with a zero
    // timeout that wait fails after the step was submitted. The update must not run again.
    let mut errors = 0;
    for _ in 0..6 {
        let _ng = dev.no_grad();
        let step = big.matmul(&big.t()) * (1.0 / 4096.0); // all ones, slowly
        w.assign(&w.add(&step));
        let r = dev.flush();
        if r.is_err() {
            errors += 1;
        }
    }
    let got = read_when_done(&w, 600);
    // Profiling makes each flush wait for its step; lavapipe never finishes one in zero time.
    assert!(
        errors > 0 || !dev.name().contains("llvmpipe"),
        "no flush timed out: the test proves nothing"
    );
    assert_close("six updates of +1", &got, &vec![6.0; 256 * 256], 0.0, 0.0);
}

/// Run `f` in a child process of this test binary (the test named `child`, with
/// `WGRAD_FAULTS_CHILD` set to `role` and `env` applied); its stdout.
fn in_child(role: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env("WGRAD_FAULTS_CHILD", role);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child `{role}` {env:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The body of the child processes; does nothing when run as an ordinary test.
#[test]
fn child() {
    match std::env::var("WGRAD_FAULTS_CHILD").as_deref() {
        Ok("drop") => drops_on_a_lost_device_and_during_a_panic(),
        Ok("bits") => {
            let dev = common::gpu().expect("a GPU in the child");
            println!("BITS {}", hex(&training_bits(&dev)));
        }
        _ => {}
    }
}

fn drops_on_a_lost_device_and_during_a_panic() {
    let dev = common::gpu().expect("a GPU in the child");
    // Unwinding through live GPU tensors and a pending tape drops them all mid-panic: a second
    // panic there would abort the process.
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        let x = Tensor::randn(&dev, &[1000]);
        let _y = x.exp().sum_all();
        let _z = x.relu();
        panic!("deliberate");
    }));
    assert!(r.is_err());
    let x = Tensor::randn(&dev, &[1000]);
    let y = x.exp();
    y.to_vec().unwrap();
    let pending = y.mul(&x);
    dev.simulate_device_loss();
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        let _keep = (&pending, x.add(&y));
        panic!("deliberate, on a lost device");
    }));
    assert!(r.is_err());
    drop((x, y, pending));
    drop(dev);
    println!("DROPPED CLEANLY");
}

#[test]
fn errors_while_dropping_never_abort_the_process() {
    if common::gpu().is_none() {
        return;
    }
    let out = in_child("drop", &[]);
    assert!(out.contains("DROPPED CLEANLY"), "{out}");
}

// ----- 2. limits handled, never hit --------------------------------------------------------------

#[test]
fn a_tensor_over_a_small_binding_limit_is_refused_naming_the_limit() {
    let Some(dev) = gpu_with(|o, l| {
        o.limits = Some(wgpu::Limits {
            max_storage_buffer_binding_size: 4096,
            ..l.clone()
        })
    }) else {
        return;
    };
    let check = |what: &str, r: wgrad::Result<Vec<f32>>, needed: u64| match r {
        Err(e @ Error::TooLarge { .. }) => {
            let Error::TooLarge {
                needed: n,
                limit,
                limit_name,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(
                (*n, *limit, *limit_name),
                (needed, 4096, "max_storage_buffer_binding_size"),
                "{what}"
            );
            assert!(
                e.to_string().contains("DeviceOptions::limits"),
                "{what}: {e}"
            );
        }
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    };
    check(
        "upload",
        Tensor::from_slice(&dev, &[0.5; 1025], &[1025]).and_then(|t| t.to_vec()),
        4100,
    );
    let small = Tensor::full(&dev, &[1024], 1.0);
    small.to_vec().unwrap();
    let before = dev.gpu_stats().unwrap();
    let big = small.broadcast_to(&[2, 1024]) + 1.0;
    check("an op's output", big.to_vec(), 8192);
    assert_eq!(
        dev.gpu_stats().unwrap().bytes_created,
        before.bytes_created,
        "nothing over the limit was allocated"
    );
    // Within the limit everything works, once the refused tensor is dropped.
    drop(big);
    assert_close(
        "within the limit",
        &values(&small.sum_all()),
        &[1024.0],
        0.0,
        0.0,
    );
}

#[test]
fn a_tensor_over_a_small_buffer_limit_is_refused_naming_that_limit() {
    let Some(dev) = gpu_with(|o, l| {
        o.limits = Some(wgpu::Limits {
            max_buffer_size: 8192,
            max_storage_buffer_binding_size: 8192,
            ..l.clone()
        })
    }) else {
        return;
    };
    let r = Tensor::zeros(&dev, &[3000]).to_vec();
    match r {
        Err(Error::TooLarge {
            limit_name, needed, ..
        }) => {
            assert_eq!(
                (limit_name, needed),
                ("max_storage_buffer_binding_size", 12000)
            )
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_close(
        "within the limit",
        &values(&Tensor::full(&dev, &[2048], 2.0).sum_all()),
        &[4096.0],
        0.0,
        0.0,
    );
}

#[test]
fn grids_over_a_tiny_per_dimension_limit_are_split_over_y_and_z() {
    // 7 workgroups per dimension: 51 workgroups become a 7×4×2 grid, 343 is the most there is.
    let Some(dev) = gpu_with(|o, l| {
        o.limits = Some(wgpu::Limits {
            max_compute_workgroups_per_dimension: 7,
            ..l.clone()
        })
    }) else {
        return;
    };
    let cpu = Device::cpu();
    let run = |d: &Device| -> Vec<Vec<f32>> {
        d.manual_seed(3);
        let n = 256 * 50 + 3;
        let x = Tensor::uniform(d, &[n], -2.0, 2.0).requires_grad_();
        let rows = x.narrow(0, 0, 100 * 64).reshape(&[100, 64]);
        let a = Tensor::uniform(d, &[70, 33], -1.0, 1.0);
        let b = Tensor::uniform(d, &[33, 90], -1.0, 1.0);
        let y = x.tanh() * &x + 0.5;
        // A convolution of 8 tiles and a pooling of 10 workgroups.
        let image = Tensor::uniform(d, &[2, 3, 40, 40], -1.0, 1.0).requires_grad_();
        let kernel = Tensor::uniform(d, &[40, 3, 3, 3], -1.0, 1.0).requires_grad_();
        let small = image.narrow(2, 0, 9).narrow(3, 0, 9);
        let conv = small.conv2d(&kernel, None, Conv::default());
        let pooled = image.max_pool2d(2, 2, 0);
        let loss = y
            .sum_all()
            .add(&rows.softmax().square().sum_all())
            .add(&conv.square().sum_all())
            .add(&pooled.square().sum_all());
        let g = loss.backward();
        vec![
            values(&y),
            values(&rows.sum(1)),
            values(&rows.log_softmax()),
            values(&a.matmul(&b)),
            values(g.wrt(&x)),
            values(&conv),
            values(&pooled),
            values(g.wrt(&image)),
            values(g.wrt(&kernel)),
        ]
    };
    let (got, want) = (run(&dev), run(&cpu));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("output {i}"), g, w, 1e-5, 1e-4);
    }
    // More workgroups than 7³ cannot be spread: an error naming the limit, not a bad dispatch.
    // (A fill does four elements per invocation, 256 invocations per workgroup.)
    match Tensor::zeros(&dev, &[4 * 256 * 400]).to_vec() {
        Err(Error::TooLarge {
            limit_name, needed, ..
        }) => {
            assert_eq!(
                (limit_name, needed),
                ("max_compute_workgroups_per_dimension", 400)
            )
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|v| v.len())),
    }
}

/// A convolution's weight gradient sums over every image and output pixel: past llvmpipe's
/// loop limit it is split over images (many images) or over output rows (one large image), and
/// agrees with the CPU reference.
#[test]
fn conv_weight_gradients_longer_than_a_kernel_loop_are_split_and_right() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = Device::cpu();
    // 20 images of 58 × 58 outputs (67,280 terms), and one of 258 × 258 (66,564).
    for (x_shape, w_shape) in [
        ([20, 1, 60, 60], [2, 1, 3, 3]),
        ([1, 1, 260, 260], [1, 1, 3, 3]),
    ] {
        let run = |d: &Device| -> Vec<f32> {
            d.manual_seed(5);
            let x = Tensor::uniform(d, &x_shape, -1.0, 1.0);
            let w = Tensor::uniform(d, &w_shape, -1.0, 1.0).requires_grad_();
            let loss = x.conv2d(&w, None, Conv::default()).square().sum_all() * 1e-4;
            values(loss.backward().wrt(&w))
        };
        assert_close(
            &format!("d weight of x {x_shape:?}"),
            &run(&gpu),
            &run(&cpu),
            1e-5,
            1e-3,
        );
    }
}

/// A batch whose column matrix would not fit one storage binding (4 images of 16 × 256 × 256
/// read by a 3 × 3 kernel: 149 MB of columns, over lavapipe's 128 MiB) is convolved in parts,
/// forward and backward, and agrees with the CPU reference.
#[test]
fn a_convolution_whose_columns_exceed_a_binding_runs_in_parts_and_is_right() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = Device::cpu();
    let run = |d: &Device| -> Vec<Vec<f32>> {
        d.manual_seed(9);
        let x = Tensor::uniform(d, &[4, 16, 256, 256], -1.0, 1.0).requires_grad_();
        let w = Tensor::uniform(d, &[2, 16, 3, 3], -1.0, 1.0).requires_grad_();
        let y = x.conv2d(&w, None, Conv::default());
        let g = (y.square().sum_all() * 1e-4).backward();
        vec![
            values(&y.narrow(2, 250, 4)),
            values(&g.wrt(&x).narrow(2, 0, 3)),
            values(g.wrt(&w)),
        ]
    };
    let (got, want) = (run(&gpu), run(&cpu));
    for (what, (g, w)) in ["y", "d x", "d w"].iter().zip(got.iter().zip(&want)) {
        assert_close(what, g, w, 1e-5, 1e-3);
    }
}

/// Ops whose kernels loop over an axis longer than llvmpipe runs a loop (65,535 iterations; it
/// stops there without a word) agree with the CPU reference, forward and backward.
#[test]
fn loops_longer_than_llvmpipe_allows_are_split_and_right() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = Device::cpu();
    let long = 70_000;
    let run = |d: &Device| -> Vec<(&'static str, Vec<f32>)> {
        d.manual_seed(11);
        let x = Tensor::uniform(d, &[2, long], -1.0, 1.0).requires_grad_();
        // The largest element sits past the loop limit.
        let bump: Vec<f32> = (0..long)
            .map(|i| if i == 69_000 { 9.0 } else { 0.0 })
            .collect();
        let bumped = x.add(&Tensor::from_vec(d, bump, &[long]).unwrap());
        let w = Tensor::uniform(d, &[long, 3], -1.0, 1.0).requires_grad_();
        let wide = Tensor::uniform(d, &[300, long], 0.0, 1.0);
        let labels = Tensor::from_slice(d, &[69_999.0, 3.0], &[2]).unwrap();
        let picks: Vec<f32> = (0..long).map(|i| (i % 5) as f32).collect();
        let index = Tensor::from_vec(d, picks, &[long]).unwrap();
        let table = Tensor::uniform(d, &[5, 2], -1.0, 1.0).requires_grad_();
        let softmax = bumped.softmax();
        let log_softmax = x.log_softmax();
        let ce = x.cross_entropy(&labels);
        let product = x.matmul(&w); // k = 70,000: a 2-row product (the row-wise kernel)
        let wide_product = wide.matmul(&w); // and a 300-row one (the tiled kernels)
        let gathered = table.gather_rows(&index);
        let loss = softmax
            .narrow(1, 68_990, 20)
            .sum_all()
            .add(&log_softmax.narrow(1, 0, 7).sum_all())
            .add(&ce)
            .add(&(product.square().sum_all() * 1e-4))
            .add(&gathered.mul(&gathered).sum_all());
        let g = loss.backward();
        vec![
            ("sum over 70,000 × 300 rows", values(&wide.sum(1))),
            ("argmax past the limit", values(&bumped.argmax(1))),
            ("softmax", values(&softmax.narrow(1, 68_990, 20))),
            ("log_softmax", values(&log_softmax.narrow(1, 69_990, 10))),
            ("cross_entropy", values(&ce)),
            ("matmul k = 70,000", values(&product)),
            (
                "matmul k = 70,000, 300 rows",
                values(&wide_product.narrow(0, 290, 10)),
            ),
            ("d x", values(g.wrt(&x))),
            ("d w", values(g.wrt(&w))),
            ("d table (scatter of 70,000 picks)", values(g.wrt(&table))),
        ]
    };
    let (got, want) = (run(&gpu), run(&cpu));
    assert_eq!(got[1].1, vec![69_000.0, 69_000.0], "argmax on the GPU");
    for ((what, g), (_, w)) in got.iter().zip(&want) {
        // The table's gradient adds 14,000 f32 terms per element in sequence; a truncated
        // loop would be off by several percent.
        let rtol = if what.starts_with("d table") {
            1e-3
        } else {
            1e-4
        };
        assert_close(what, g, w, 1e-5, rtol);
    }
}

#[test]
fn u32_index_overflow_and_absurd_shapes_are_refused_on_the_host() {
    if let Some(dev) = common::gpu() {
        let before = dev.gpu_stats().unwrap();
        // 2³² + 64 elements: every kernel indexes with u32, so this must never reach one.
        let huge = Tensor::zeros(&dev, &[1 << 26, 65]);
        match huge.to_vec() {
            Err(Error::TooLarge {
                limit_name, what, ..
            }) => {
                assert_eq!(
                    (limit_name, what),
                    ("u32 element index", "u32-indexed tensor")
                )
            }
            other => panic!("expected TooLarge, got {:?}", other.map(|v| v.len())),
        }
        assert_eq!(dev.gpu_stats().unwrap().bytes_created, before.bytes_created);
    }
    // The CPU reference cannot hold 2⁶¹ f64 values: an error, not an allocation failure abort.
    let cpu = Device::cpu();
    match Tensor::zeros(&cpu, &[1 << 61]).to_vec() {
        Err(Error::OutOfMemory { op, message }) => {
            assert!(
                op == "full" && message.contains("CPU reference"),
                "{op}: {message}"
            )
        }
        other => panic!("expected OutOfMemory, got {:?}", other.map(|v| v.len())),
    }
    // A shape whose element count overflows is misuse: a panic that says so, never a wrapped count.
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        Tensor::zeros(&cpu, &[1 << 40, 1 << 40]).numel()
    }));
    let msg = r
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("more elements than a usize"), "{msg:?}");
}

#[test]
fn empty_tensors_never_bind_an_empty_buffer() {
    // Each case has an empty input beside a non-empty one (the empty one is bound to a
    // placeholder buffer, never a zero-size binding); GPU against CPU.
    let run = |d: &Device| -> Vec<Vec<f32>> {
        let x = Tensor::from_slice(d, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let e = Tensor::zeros(d, &[0, 3]);
        let w = Tensor::zeros(d, &[3, 0]).requires_grad_();
        let wide = x.matmul(&w); // [2, 0]
        let g = wide.sum_all().add(&x.sum_all()).backward();
        vec![
            values(&Tensor::concat(&[&e, &x, &e], 0)),
            values(&x.narrow(0, 1, 0)),
            values(&e.pad(0, 1, 1)),
            values(&e.sum(0)),
            values(&wide),
            values(g.wrt(&w)),
            values(&Tensor::zeros(d, &[0]).one_hot(4)),
            values(&x.gather_rows(&Tensor::zeros(d, &[0]))),
        ]
    };
    let Some(dev) = common::gpu() else { return };
    let (got, want) = (run(&dev), run(&Device::cpu()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("case {i}"), g, w, 0.0, 0.0);
    }
    assert_eq!(
        want[2],
        vec![0.0; 6],
        "padding an empty tensor gives the padding"
    );
}

// ----- 3. numerical safety -----------------------------------------------------------------------

#[test]
fn softmax_and_log_sum_exp_are_stable_for_logits_of_1e4() {
    let logits = [1e4, -1e4, 0.0, -1e4, -1e4, -1e4, 1e4, 1e4, 0.0];
    let labels = [1.0, 0.0, 2.0];
    let (ln2, ln3) = (2f32.ln(), 3f32.ln());
    for dev in devices() {
        let x = Tensor::from_slice(&dev, &logits, &[3, 3])
            .unwrap()
            .requires_grad_();
        let y = Tensor::from_slice(&dev, &labels, &[3]).unwrap();
        let name = dev.name();
        assert_close(
            &format!("softmax on {name}"),
            &values(&x.softmax()),
            &[
                1.0,
                0.0,
                0.0,
                1.0 / 3.0,
                1.0 / 3.0,
                1.0 / 3.0,
                0.5,
                0.5,
                0.0,
            ],
            1e-7,
            1e-6,
        );
        assert_close(
            &format!("log_softmax on {name}"),
            &values(&x.log_softmax()),
            &[0.0, -2e4, -1e4, -ln3, -ln3, -ln3, -ln2, -ln2, -1e4 - ln2],
            1e-6,
            1e-6,
        );
        let loss = x.cross_entropy(&y);
        assert_close(
            &format!("cross_entropy on {name}"),
            &values(&loss),
            &[(2e4 + ln3 + 1e4 + ln2) / 3.0],
            0.0,
            1e-6,
        );
        // d/dx mean CE = (softmax − one_hot) / 3
        let t = 1.0 / 9.0;
        assert_close(
            &format!("cross_entropy gradient on {name}"),
            &values(loss.backward().wrt(&x)),
            &[
                1.0 / 3.0,
                -1.0 / 3.0,
                0.0,
                -2.0 * t,
                t,
                t,
                1.0 / 6.0,
                1.0 / 6.0,
                -1.0 / 3.0,
            ],
            1e-7,
            1e-5,
        );
        let targets = Tensor::from_slice(&dev, &[0.0, 1.0, 1.0, 0.0], &[4]).unwrap();
        let z = Tensor::from_slice(&dev, &[1e4, -1e4, 1e4, -1e4], &[4]).unwrap();
        assert_close(
            &format!("bce_with_logits on {name}"),
            &values(&z.bce_with_logits(&targets)),
            &[(1e4 + 1e4) / 4.0],
            0.0,
            1e-6,
        );
    }
}

#[test]
fn activations_of_extreme_inputs_are_finite_where_the_maths_is() {
    let xs = [
        -f32::MAX,
        -1e30,
        -1e4,
        -100.0,
        -20.0,
        -1e-30,
        0.0,
        1e-30,
        20.0,
        100.0,
        1e4,
        1e30,
        f32::MAX,
    ];
    let positive = [f32::MIN_POSITIVE, 1e-30, 1e-10, 1.0, 1e10, 1e30, f32::MAX];
    type F = fn(&Tensor) -> Tensor;
    let ops: [(&str, F, &[f32]); 10] = [
        ("sigmoid", |t| t.sigmoid(), &xs),
        ("tanh", |t| t.tanh(), &xs),
        ("softplus", |t| t.softplus(), &xs),
        ("elu", |t| t.elu(1.0), &xs),
        ("gelu", |t| t.gelu(), &xs),
        ("gelu_tanh", |t| t.gelu_tanh(), &xs),
        ("exp of negatives", |t| t.neg().abs().neg().exp(), &xs),
        ("log", |t| t.log(), &positive),
        ("sqrt", |t| t.sqrt(), &positive),
        (
            "bce_with_logits",
            |t| t.bce_logits_elementwise(&t.gt(&t.zeros_like())),
            &xs,
        ),
    ];
    let Some(gpu) = common::gpu() else { return };
    let cpu = Device::cpu();
    let mut failures = Vec::new();
    for (name, f, inputs) in ops {
        let eval = |d: &Device| {
            let x = Tensor::from_slice(d, inputs, &[inputs.len()])
                .unwrap()
                .requires_grad_();
            let y = f(&x);
            let grads = y.sum_all().backward();
            let g = grads.wrt(&x);
            (values(&y), values(g))
        };
        let (want_y, want_g) = eval(&cpu);
        let (got_y, got_g) = eval(&gpu);
        for (part, got, want) in [("value", &got_y, &want_y), ("gradient", &got_g, &want_g)] {
            for (i, (&g, &w)) in got.iter().zip(want.iter()).enumerate() {
                // The reference works in f64: where its answer is a finite f32, ours must be too,
                // and close to it.
                if w.is_finite() && !(g.is_finite() && (g - w).abs() <= 1e-6 + 1e-5 * w.abs()) {
                    failures.push(format!(
                        "{name} {part} at x = {:e}: got {g}, want {w}",
                        inputs[i]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn anomaly_mode_names_the_first_op_to_produce_a_non_finite_value_and_its_line() {
    for dev in devices() {
        let name = dev.name();
        let x = Tensor::from_slice(&dev, &[1.0, 0.0, 4.0], &[3]).unwrap();
        // Off by default: the same program runs and returns the infinity.
        let quiet = (&x * 2.0).log();
        assert_eq!(values(&quiet)[1], f32::NEG_INFINITY, "{name}");

        dev.set_anomaly_detection(true);
        let doubled = &x * 2.0;
        let line = line!() + 1;
        let logged = doubled.log(); // −inf at 0
        let after = (&logged * 0.0).exp(); // NaN, but later
        match after.to_vec() {
            Err(Error::Anomaly {
                op,
                location,
                value,
            }) => {
                assert_eq!(op, "log", "{name}");
                assert!(
                    location.contains(&format!("faults.rs:{line}:")),
                    "{name}: {location}"
                );
                assert_eq!(value, "-inf", "{name}");
            }
            other => panic!("{name}: expected an anomaly, got {other:?}"),
        }
        // On the CPU reference the nodes after the anomaly did not run; dropping them takes
        // them off the tape.
        drop((doubled, logged, after));
        // NaN from a kernel (0/0) is caught too.
        let zero = Tensor::zeros(&dev, &[2]);
        match zero.div(&zero).to_vec() {
            Err(Error::Anomaly { op, value, .. }) => {
                assert_eq!((op.as_str(), value.as_str()), ("div", "NaN"), "{name}")
            }
            other => panic!("{name}: expected an anomaly, got {other:?}"),
        }
        // Extreme finite values are never flagged: ±f32::MAX, the smallest normal and subnormal,
        // −0; and one infinity in the last element of a tensor spanning many workgroups is.
        let mut extremes = vec![1.0f32; 70_001];
        let edge = [f32::MAX, -f32::MAX, f32::MIN_POSITIVE, 1e-45, -0.0, 0.0];
        extremes[..edge.len()].copy_from_slice(&edge);
        let t = Tensor::from_slice(&dev, &extremes, &[70_001]).unwrap();
        assert_eq!(
            values(&(&t * 1.0)),
            extremes,
            "{name}: finite extremes must pass anomaly mode unchanged"
        );
        let mut last = vec![0.5f32; 70_001];
        last[70_000] = f32::INFINITY;
        let t = Tensor::from_slice(&dev, &last, &[70_001]).unwrap();
        match (&t * 1.0).to_vec() {
            Err(Error::Anomaly { op, value, .. }) => {
                assert_eq!((op.as_str(), value.as_str()), ("affine", "inf"), "{name}")
            }
            other => panic!("{name}: expected an anomaly in the last element, got {other:?}"),
        }
        // Finite work passes, and the device carries on.
        assert_close(
            &name,
            &values(&(&x + 1.0).log()),
            &[2f32.ln(), 0.0, 5f32.ln()],
            0.0,
            1e-6,
        );
        dev.set_anomaly_detection(false);
    }
}

// ----- 4. determinism ----------------------------------------------------------------------------

/// Bit patterns of a short seeded training run: dropout, matmuls, reductions, softmax, Adam.
fn training_bits(dev: &Device) -> Vec<u32> {
    dev.manual_seed(11);
    let model = nn::Mlp::new(&[20, 64, 10])
        .activation(Activation::Tanh)
        .init(Init::XavierUniform)
        .dropout(0.2)
        .build(dev);
    let mut opt = Adam::new(&model.params(), 0.01);
    let x = Tensor::randn(dev, &[300, 20]);
    let labels: Vec<f32> = (0..300).map(|i| (i * 7 % 10) as f32).collect();
    let y = Tensor::from_slice(dev, &labels, &[300]).unwrap();
    let mut bits = Vec::new();
    for _ in 0..3 {
        let loss = model.forward(&x).cross_entropy(&y);
        opt.step(&loss.backward()).unwrap();
        bits.push(loss.item().unwrap().to_bits());
    }
    for (_, p) in model.params() {
        bits.extend(values(&p).iter().map(|v| v.to_bits()));
    }
    bits.extend(values(&x.sum(0)).iter().map(|v| v.to_bits()));
    bits
}

fn hex(bits: &[u32]) -> String {
    bits.iter().map(|b| format!("{b:08x}")).collect()
}

#[test]
fn the_same_seed_gives_bit_identical_training_runs() {
    let Some(a) = common::gpu() else { return };
    let b = common::gpu().unwrap();
    let (first, second, again) = (training_bits(&a), training_bits(&b), training_bits(&a));
    let diff = |x: &[u32], y: &[u32]| x.iter().zip(y).position(|(p, q)| p != q);
    assert_eq!(first.len(), second.len());
    assert_eq!(
        diff(&first, &second),
        None,
        "two devices, same seed: first differing word"
    );
    assert_eq!(
        diff(&first, &again),
        None,
        "the same device reseeded: first differing word"
    );
}

#[test]
fn lavapipe_thread_counts_do_not_change_the_bits() {
    let Some(dev) = common::gpu() else { return };
    if !dev.name().contains("llvmpipe") {
        eprintln!("not lavapipe: LP_NUM_THREADS has no effect here");
        return;
    }
    let here = hex(&training_bits(&dev));
    for threads in ["1", "3"] {
        let out = in_child("bits", &[("LP_NUM_THREADS", threads)]);
        let there = out
            .split_once("BITS ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no BITS from the child:\n{out}"));
        let first = here
            .as_bytes()
            .iter()
            .zip(there.as_bytes())
            .position(|(a, b)| a != b);
        assert_eq!(
            (here.len(), first),
            (there.len(), None),
            "LP_NUM_THREADS={threads}: first differing hex digit (word = digit / 8)"
        );
    }
}

// ----- 5. bad input to constructors ---------------------------------------------------------------

#[test]
fn from_vec_with_the_wrong_length_is_an_error_and_allocates_nothing() {
    for dev in devices() {
        let before = dev.gpu_stats();
        for (len, shape) in [
            (5usize, vec![2usize, 3]),
            (7, vec![2, 3]),
            (1, vec![0]),
            (0, vec![]),
        ] {
            match Tensor::from_vec(&dev, vec![1.0; len], &shape) {
                Err(Error::DataLength {
                    op,
                    len: l,
                    shape: s,
                    numel,
                }) => {
                    assert_eq!(
                        (op, l, s.as_slice(), numel),
                        ("from_vec", len, shape.as_slice(), shape.iter().product())
                    )
                }
                other => panic!("{len} values for {shape:?}: expected DataLength, got {other:?}"),
            }
        }
        assert!(matches!(
            Tensor::from_f64(&dev, &[1.0; 3], &[4]),
            Err(Error::DataLength { op: "from_f64", .. })
        ));
        if let (Some(b), Some(a)) = (before, dev.gpu_stats()) {
            assert_eq!(
                a.bytes_created, b.bytes_created,
                "a rejected upload allocates nothing"
            );
        }
    }
}
