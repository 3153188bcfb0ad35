//! Shape misuse panics at the caller's line with a message naming the op and the shapes.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use wgrad::{Conv, Device, Tensor};

/// Run `f`, expect a panic whose message contains every piece of `want` and whose location is
/// this file (the caller's line, not the library's).
fn panics_here(what: &str, want: &[&str], f: impl FnOnce()) -> Result<(), String> {
    let seen: Arc<Mutex<Option<(String, String)>>> = Arc::default();
    let sink = seen.clone();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| l.file().to_string())
            .unwrap_or_default();
        *sink.lock().unwrap() = Some((msg, at));
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(previous);
    if result.is_ok() {
        return Err(format!("{what}: did not panic"));
    }
    let (msg, at) = seen.lock().unwrap().clone().unwrap_or_default();
    if !want.iter().all(|w| msg.contains(w)) {
        return Err(format!("{what}: message {msg:?} lacks one of {want:?}"));
    }
    if !at.ends_with("misuse.rs") {
        return Err(format!("{what}: panic located at {at}, not at the caller"));
    }
    Ok(())
}

#[test]
fn shape_misuse_names_the_op_and_both_shapes_at_the_callers_line() {
    let dev = Device::cpu();
    let a = Tensor::zeros(&dev, &[2, 3]);
    let b = Tensor::zeros(&dev, &[4]);
    let m = Tensor::zeros(&dev, &[4, 5]);
    let checks = [
        panics_here("add", &["add", "[2, 3]", "[4]"], || {
            a.add(&b);
        }),
        panics_here("mul", &["mul", "[2, 3]", "[4]"], || {
            a.mul(&b);
        }),
        panics_here("matmul", &["matmul", "[2, 3]", "[4, 5]"], || {
            a.matmul(&m);
        }),
        panics_here(
            "matmul of a transpose",
            &["matmul", "[2, 3]", "[5, 4]"],
            || {
                a.matmul(&m.t());
            },
        ),
        panics_here("reshape", &["reshape", "[2, 3]", "[4]"], || {
            a.reshape(&[4]);
        }),
        panics_here("sum axis", &["sum", "axis 2", "[2, 3]"], || {
            a.sum(2);
        }),
        panics_here("concat", &["concat", "[2, 3]", "[4, 5]"], || {
            Tensor::concat(&[&a, &m], 0);
        }),
        panics_here("cross_entropy", &["cross_entropy", "[2, 3]", "[4]"], || {
            a.cross_entropy(&b);
        }),
        panics_here("mse", &["mse", "[2, 3]", "[4]"], || {
            a.mse(&b);
        }),
        panics_here(
            "broadcast_to",
            &["broadcast_to", "[2, 3]", "[3, 2]"],
            || {
                a.broadcast_to(&[3, 2]);
            },
        ),
        panics_here("narrow", &["narrow", "2..5", "[2, 3]"], || {
            a.narrow(1, 2, 3);
        }),
        panics_here("where", &["where", "[2, 3]", "[4]"], || {
            a.where_cond(&a, &b);
        }),
        panics_here("backward of a non-scalar", &["backward", "[2, 3]"], || {
            a.backward();
        }),
        panics_here(
            "backward without parameters",
            &["backward", "requires"],
            || {
                a.sum_all().backward();
            },
        ),
        panics_here("permute", &["permute", "[0, 0]", "[2, 3]"], || {
            a.permute(&[0, 0]);
        }),
        panics_here("item of a vector", &["item", "[2, 3]"], || {
            let _ = a.item();
        }),
        panics_here(
            "conv2d channels",
            &["conv2d", "[1, 3, 8, 8]", "[4, 2, 3, 3]"],
            || {
                Tensor::zeros(&dev, &[1, 3, 8, 8]).conv2d(
                    &Tensor::zeros(&dev, &[4, 2, 3, 3]),
                    None,
                    Conv::default(),
                );
            },
        ),
        panics_here("conv2d kernel", &["conv2d", "[5, 5]", "[2, 2]"], || {
            Tensor::zeros(&dev, &[1, 1, 2, 2]).conv2d(
                &Tensor::zeros(&dev, &[1, 1, 5, 5]),
                None,
                Conv::default(),
            );
        }),
        panics_here("conv2d rank", &["conv2d", "[2, 3]"], || {
            a.conv2d(&Tensor::zeros(&dev, &[1, 1, 1, 1]), None, Conv::default());
        }),
        panics_here(
            "conv_transpose2d",
            &["conv_transpose2d", "[1, 3, 4, 4]", "[2, 2, 3, 3]"],
            || {
                Tensor::zeros(&dev, &[1, 3, 4, 4]).conv_transpose2d(
                    &Tensor::zeros(&dev, &[2, 2, 3, 3]),
                    None,
                    Conv::default(),
                );
            },
        ),
        panics_here(
            "max_pool2d padding",
            &["max_pool2d", "padding [2, 2]", "[3, 3]"],
            || {
                Tensor::zeros(&dev, &[1, 1, 8, 8]).max_pool2d(3, 1, 2);
            },
        ),
        panics_here(
            "batch_norm weight",
            &["batch_norm", "[4]", "[2, 3]"],
            || {
                a.batch_norm(None, None, Some(&b), None, true, 0.1, 1e-5);
            },
        ),
        panics_here("layer_norm", &["layer_norm", "[4]", "[3]"], || {
            a.layer_norm(1, Some(&b), None, 1e-5);
        }),
    ];
    let failures: Vec<String> = checks.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
