//! Fit y = 3x − 1 by gradient descent: the smallest complete wgrad program.
//! Ops are recorded, then each step runs as one GPU submit; values are read only when printed.
//!
//!     cargo run --release --example quickstart
//!     cargo run --release --example quickstart -- --quick   # 50 steps instead of 200

use wgrad::{Device, Tensor};

fn main() -> wgrad::Result<()> {
    let steps = match std::env::args().nth(1).as_deref() {
        None => 200,
        Some("--quick") => 50,
        Some(other) => wgrad::train::options::exit_usage(&format!(
            "unexpected argument `{other}` (the only option is --quick)"
        )),
    };
    let dev = Device::gpu().unwrap_or_else(|e| {
        eprintln!("warning: {e}\nfalling back to the CPU reference backend");
        Device::cpu()
    });
    println!("device: {}", dev.name());
    dev.manual_seed(0);

    // Data: 256 points on a noisy line.
    let x = Tensor::uniform(&dev, &[256, 1], -1.0, 1.0);
    let y = &x * 3.0 - 1.0 + Tensor::normal(&dev, &[256, 1], 0.0, 0.05);

    // Parameters are leaves that require gradients.
    let w = Tensor::zeros(&dev, &[1, 1]).requires_grad_();
    let b = Tensor::zeros(&dev, &[1]).requires_grad_();

    for step in 0..=steps {
        let loss = (x.matmul(&w) + &b).mse(&y);
        let grads = loss.backward();
        {
            let _no_grad = dev.no_grad();
            for p in [&w, &b] {
                p.assign(&(p - grads.wrt(p) * 0.5));
            }
        }
        dev.flush()?; // forward, backward and update: one submit
        if step % 50 == 0 {
            println!("step {step:>3}  loss {:.5}", loss.item()?);
        }
    }
    println!("w = {:.3}, b = {:.3} (true: 3, -1)", w.item()?, b.item()?);
    Ok(())
}
