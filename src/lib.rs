//! wgrad — a GPU training engine: hand-written WGSL kernels run through wgpu, a small autograd
//! tape that records ops and runs them as compute dispatches (one submit per step), and a CPU
//! reference backend (f64 inside) that every kernel and every gradient is checked against.
//!
//! ```no_run
//! use wgrad::{Device, Tensor};
//! # fn main() -> wgrad::Result<()> {
//! let dev = Device::gpu()?;
//! let w = Tensor::randn(&dev, &[3, 2]).requires_grad_();
//! let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[1, 3])?;
//! let loss = x.matmul(&w).relu().sum_all();
//! let grads = loss.backward();          // records the gradient ops
//! println!("{:?}", grads.wrt(&w).to_vec()?); // a read runs everything pending
//! # Ok(()) }
//! ```

mod autograd;
pub mod bench;
pub mod check;
pub mod checkpoint;
mod cpu;
pub mod data;
mod device;
mod error;
pub mod gpu;
pub mod nn;
pub mod op;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod shape;
mod tensor;
#[cfg(test)]
mod testing;
pub mod viz;

pub use autograd::Grads;
pub use device::{Device, DeviceOptions, NoGradGuard, ProfileEntry};
pub use error::{Error, Result};
pub use gpu::GpuStats;
pub use tensor::Tensor;
