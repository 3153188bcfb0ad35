//! Learning without end-to-end backpropagation: rules that train each layer from a signal other
//! than the exact error sent back through the layers above it (Bartunov et al. 2018, "Assessing
//! the scalability of biologically-motivated deep learning algorithms"; Ma, Lewis & Kleijn 2020).
//!
//! - [`feedback_linear`]: feedback alignment (Lillicrap et al. 2016), a linear layer whose error
//!   goes back through a fixed random matrix instead of its weights.
//! - [`dfa_surrogate`]: direct feedback alignment (Nøkland 2016), every hidden layer driven by the
//!   output error through its own fixed random matrix.
//! - [`dtp`]: difference target propagation (Lee et al. 2015): targets sent down through learned
//!   inverses, each layer trained on its own distance to its target.
//! - [`hsic`] and [`hsic_bottleneck`]: the Hilbert–Schmidt independence criterion with Gaussian
//!   kernels, and the per-layer objective HSIC(X, T) − β·HSIC(T, Y).
//!
//! Each rule is written as a loss (or a layer with its own backward) whose ordinary gradient is
//! the rule's update, so one `backward()` and one optimizer step train a whole network in one
//! submit, and the rules can be checked against hand-written updates on the CPU reference.

pub mod dtp;
mod feedback;
mod hsic;

pub use feedback::{dfa_surrogate, feedback_linear};
pub use hsic::{KernelWidth, hsic, hsic_bottleneck};
