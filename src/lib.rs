//! wgrad — a GPU training engine: hand-written WGSL kernels run through wgpu, a small autograd
//! tape that records ops and runs them as compute dispatches (one submit per step), and a CPU
//! reference backend (f64 inside) that every kernel and every gradient is checked against.
//!
//! ```
//! use wgrad::{Device, Tensor};
//! # fn main() -> wgrad::Result<()> {
//! let dev = Device::cpu(); // or Device::gpu()?
//! let w = Tensor::randn(&dev, &[3, 2]).requires_grad_();
//! let x = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[1, 3])?;
//! let loss = (x.matmul(&w).relu() * 2.0).sum_all();
//! let grads = loss.backward(); // records the gradient ops
//! let dw = grads.wrt(&w).to_vec()?; // a read runs everything pending
//! assert_eq!(dw.len(), 6);
//! # Ok(()) }
//! ```
//!
//! - [`Tensor`] and [`Device`]: tensors are handles on a lazy tape; operators (`+ - * /`,
//!   unary `-`) work between tensors and with `f32` scalars, with NumPy broadcasting.
//! - [`nn`] layers and models, [`optim`] optimizers and schedules, [`data`] loaders,
//!   [`checkpoint`] safetensors files, [`viz`] PNG grids and charts (feature `viz`).
//! - [`op`]: the op contract, for ops of your own; [`check`] and [`bench`](mod@bench): the harness that
//!   tests every kernel against the CPU reference and times it, for yours too.
//! - [`evolve`] (neuroevolution: seed genomes, a GA, OpenAI-ES, CartPole on the device), [`rbm`]
//!   (RBMs, CD/PCD, AIS, deep belief nets), [`local`] (learning without end-to-end backprop),
//!   [`adversarial`] (FGSM, BIM, PGD), [`unit`](mod@unit) (unsupervised image-to-image translation).
//! - [`train`]: the training loop the examples share (checkpoints, exact resume, NaN stops,
//!   metric logs); [`progress`]: how long work reports progress (a terminal bar with feature
//!   `progress`); `dist` (feature `mpi`): data-parallel training over MPI.

#![warn(missing_docs)]

pub mod adversarial;
mod autograd;
pub mod bench;
mod buffer;
pub mod check;
pub mod checkpoint;
mod cpu;
pub mod data;
mod device;
#[cfg(feature = "mpi")]
pub mod dist;
mod error;
pub mod evolve;
pub mod gpu;
pub mod local;
pub mod nn;
pub mod op;
mod ops;
pub mod optim;
pub mod progress;
pub mod rbm;
#[doc(hidden)]
pub mod rng;
mod shape;
mod tape;
mod tensor;
#[cfg(test)]
mod testing;
pub mod train;
pub mod unit;
#[cfg(feature = "viz")]
pub mod viz;

pub use autograd::Grads;
pub use device::{Device, NoGradGuard};
pub use error::{Error, Result};
pub use gpu::{DeviceOptions, GpuStats, ProfileEntry};
#[doc(hidden)]
pub use ops::conv::Conv;
pub use ops::matmul::Variant;
pub use tensor::Tensor;

/// The README's programs, run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
