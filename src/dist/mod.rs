//! Data-parallel training over MPI (feature `mpi`): one process per GPU, started by `mpirun`,
//! each training the same model on its own shard of every batch.
//!
//! - [`Comm::init`] joins the job: rank, size and the rank within the node, which picks the
//!   adapter ([`Comm::device`]; `WGRAD_ADAPTER` still wins).
//! - [`Comm::broadcast_parameters`] copies rank 0's parameters to every rank at the start (rank 0
//!   holds the original copy), after checking that every rank built the same parameters (names
//!   and shapes); [`Comm::check_identical`] compares a hash of every parameter across ranks and
//!   names the first that differs.
//! - [`DataParallel`] wraps any optimizer: before each update it averages the gradients over the
//!   ranks, bucketed — the step's gradients are joined into one flat device buffer, read back once,
//!   reduced in a few large MPI calls, written back once — and then the ordinary fused update runs.
//!   [`Reduction::Ordered`] (the default) sums the ranks' gradients in rank order on every rank,
//!   so every rank computes the same bits and runs repeat; [`Reduction::Allreduce`] leaves the
//!   sum to MPI's own algorithm (a ring for large buffers: less traffic for many ranks).
//! - [`Shard`] and [`crate::train::Config::shard`]: each rank reads its part of every batch of
//!   the epoch's shuffled order, the same global order for a seed whatever the number of ranks.
//!
//! Every collective runs under a watchdog: a rank that waits longer than [`Comm::timeout`]
//! (`WGRAD_DIST_TIMEOUT_SECS`, 120 s by default) for the others — a rank died, or stopped early —
//! prints which collective and which rank, and exits with status 70, so the job ends instead of
//! hanging. (A rank that crashes is reported by `mpirun` itself, which then ends the others.)
//!
//! ```text
//! mpirun -n 2 target/release/examples/mnist_dp        # add --allow-run-as-root as root
//! ```

mod comm;
mod parallel;
mod watchdog;

pub use crate::data::Shard;
pub use comm::Comm;
pub use parallel::{DataParallel, Reduction, Timing};
pub use watchdog::TIMEOUT_EXIT;
