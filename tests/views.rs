//! Views (`t()`, `permute`, `narrow`, `broadcast_to`, `reshape`) share their source's storage:
//! taking one allocates nothing and dispatches nothing, and the ops that read strides (matrix
//! products, elementwise ops, `where`) read them in place, with the same values as the CPU
//! reference.

mod common;

use wgrad::{Device, Tensor};

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec().unwrap().into_iter().map(f64::from).collect()
}

/// The worst element of `got` against `want`, by |got − want| / (1 + |want|).
fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let (i, err) = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
        .enumerate()
        .fold(
            (0, 0.0),
            |best, (i, e)| if e > best.1 { (i, e) } else { best },
        );
    assert!(
        err <= tol,
        "{what}: element {i} is {} against {} (error {err:.2e} > {tol:.0e})",
        got.get(i).copied().unwrap_or_default(),
        want.get(i).copied().unwrap_or_default()
    );
}

/// A computation mixing views and strided readers: two products of views, an elementwise op on
/// a permuted and a broadcast operand, a selection over transposed and narrowed ones.
fn mixed(d: &Device) -> Vec<Tensor> {
    let ramp = |n: usize, shape: &[usize]| {
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        Tensor::from_vec(d, v, shape).unwrap()
    };
    let x = ramp(64 * 48, &[64, 48]);
    let w = ramp(40 * 64, &[40, 64]);
    let cube = ramp(3 * 4 * 5, &[3, 4, 5]);
    let row = ramp(4, &[4]);
    vec![
        // [48, 64] · [64, 40]: both operands transposed views.
        x.t().matmul(&w.t()),
        // Rows 8..40 of x, columns 5..45 of it again as the right operand.
        x.narrow(0, 8, 32)
            .matmul(&x.narrow(1, 5, 40).narrow(0, 0, 48)),
        cube.permute(&[2, 0, 1]) * row.broadcast_to(&[3, 4]),
        x.narrow(0, 0, 48)
            .gt(&x.t().narrow(1, 0, 48))
            .where_cond(&x.t().narrow(1, 0, 48), &x.narrow(0, 16, 48)),
    ]
}

#[test]
fn views_allocate_nothing_and_dispatch_nothing() {
    let Some(dev) = common::gpu() else { return };
    let x = Tensor::randn(&dev, &[64, 48]);
    dev.flush().unwrap();
    let before = dev.gpu_stats().unwrap();
    let views = [
        x.t(),
        x.permute(&[1, 0]),
        x.narrow(0, 3, 20),
        x.narrow(1, 2, 7).t(),
        x.reshape(&[48, 64]),
        x.narrow(0, 0, 1).broadcast_to(&[5, 64, 48]),
    ];
    dev.flush().unwrap();
    let after = dev.gpu_stats().unwrap();
    assert_eq!(
        after.dispatches, before.dispatches,
        "a view dispatches no kernel"
    );
    assert_eq!(
        after.buffers_created, before.buffers_created,
        "a view allocates no buffer"
    );
    assert_eq!(
        after.buffers_live, before.buffers_live,
        "a view holds no buffer of its own"
    );
    drop(views);
}

#[test]
fn strided_readers_take_views_in_place_and_match_the_cpu_reference() {
    let Some(dev) = common::gpu() else { return };
    let cpu = Device::cpu();
    let want: Vec<Vec<f64>> = mixed(&cpu).iter().map(values).collect();
    // Upload first, so the count below is of the computation alone.
    let results = mixed(&dev);
    let before = dev.gpu_stats().unwrap();
    let got: Vec<Vec<f64>> = results.iter().map(values).collect();
    let after = dev.gpu_stats().unwrap();
    // Two products, one multiply, one comparison, one selection; no copy of any view.
    assert_eq!(
        after.dispatches - before.dispatches,
        5,
        "one dispatch per op, none for copying views"
    );
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("result {i}"), g, w, 1e-5);
    }
}

#[test]
fn an_op_that_reads_no_strides_gets_a_view_copied_once() {
    // Softmax reads rows of contiguous memory: a transposed input is copied for it (one copy
    // dispatch), with the same values as softmax of the copied tensor.
    let Some(dev) = common::gpu() else { return };
    let x = Tensor::randn(&dev, &[6, 9]);
    dev.flush().unwrap();
    let before = dev.gpu_stats().unwrap();
    let y = x.t().softmax();
    let got = values(&y);
    let after = dev.gpu_stats().unwrap();
    assert_eq!(
        after.dispatches - before.dispatches,
        2,
        "a copy, then softmax"
    );
    let want = values(&x.t().contiguous().softmax());
    assert_close("softmax of a view", &got, &want, 0.0);
}

#[test]
fn a_weight_read_through_its_transpose_gets_a_plain_gradient() {
    // A linear layer reads W [out, in] as W.t(): its gradient is produced as (Gᵀ X)ᵀ, so what
    // reaches W is plain storage and the optimizer's update reads it with no copy. The values
    // match the product computed the other way round, on the CPU reference.
    for dev in [Some(Device::cpu()), common::gpu()].into_iter().flatten() {
        dev.manual_seed(3);
        let x = Tensor::randn(&dev, &[16, 12]).requires_grad_();
        let w = Tensor::randn(&dev, &[8, 12]).requires_grad_();
        let y = x.matmul(&w.t()).relu();
        let g = (&y * &y).sum_all().backward();
        let (dx, dw) = (g.wrt(&x), g.wrt(&w));
        assert!(dw.layout().is_plain(), "dW arrives as {:?}", dw.layout());
        assert!(dx.layout().is_plain(), "dX arrives as {:?}", dx.layout());
        // Direct: dY = 2y·relu'(y); dW = dYᵀ X, dX = dY W.
        let dy = (&y * 2.0) * y.gt(&Tensor::scalar(&dev, 0.0));
        assert_close("dW", &values(dw), &values(&dy.t().matmul(&x)), 1e-5);
        assert_close("dX", &values(dx), &values(&dy.matmul(&w)), 1e-5);
    }
}
