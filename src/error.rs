//! Errors the environment can cause: no adapter, a lost device, memory, a rejected shader, a failed
//! readback, a bad file. Shape misuse is not here: it panics at the caller's line instead.

use std::path::PathBuf;

/// Everything that can go wrong that is not a programming error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// wgpu found no adapter (no GPU driver, no software Vulkan).
    #[error(
        "no GPU adapter found{detail}. On Linux without a GPU install Mesa's software Vulkan driver \
         (`apt-get install mesa-vulkan-drivers libvulkan1`); or use `Device::cpu()`"
    )]
    NoAdapter {
        /// More about what was tried (may be empty).
        detail: String,
    },

    /// `WGRAD_ADAPTER` named an adapter that does not exist.
    #[error("no adapter matches WGRAD_ADAPTER={wanted:?}; adapters present: {present}")]
    AdapterNotFound {
        /// What was asked for.
        wanted: String,
        /// The adapters there are, with their indices.
        present: String,
    },

    /// The adapter refused to create a device with the limits or features wgrad asked for.
    #[error("the adapter refused to create a device: {0}")]
    RequestDevice(String),

    /// The device was lost (driver reset, `destroy()`, or a fatal error); it must be recreated.
    #[error("the GPU device was lost ({reason}); create a new Device to continue")]
    DeviceLost {
        /// The driver's reason.
        reason: String,
    },

    /// The driver ran out of memory.
    #[error("out of GPU memory while running `{op}`: {message}")]
    OutOfMemory {
        /// The op (or "step") that needed the memory.
        op: String,
        /// The driver's message.
        message: String,
    },

    /// A tensor is larger than a device limit allows.
    #[error(
        "`{op}` needs a {what} of {needed} bytes but this device allows {limit} \
         (limit `{limit_name}`; request a larger one with `DeviceOptions::limits` if the adapter supports it)"
    )]
    TooLarge {
        /// The op that needed it.
        op: String,
        /// What is too large ("storage binding", "buffer", "grid of workgroups", …).
        what: &'static str,
        /// How large it would be.
        needed: u64,
        /// The device's limit.
        limit: u64,
        /// The limit's name in `wgpu::Limits`.
        limit_name: &'static str,
    },

    /// The driver or wgpu's validation rejected a shader or pipeline.
    #[error("shader `{shader}` was rejected: {message}")]
    ShaderRejected {
        /// The shader's name (for wgrad's own, its path under `shaders/`).
        shader: String,
        /// Why it was rejected.
        message: String,
    },

    /// wgpu reported a validation error while running the step.
    #[error("GPU validation error while running `{op}`: {message}")]
    Validation {
        /// The op (or "step") that was running.
        op: String,
        /// wgpu's message.
        message: String,
    },

    /// Reading a result back from the GPU failed or timed out.
    #[error("readback failed: {0}")]
    Readback(String),

    /// A data slice does not match the shape it was given.
    #[error("{op}: {len} values do not fill shape {shape:?} ({numel} elements)")]
    DataLength {
        /// The constructor that was called.
        op: &'static str,
        /// Values given.
        len: usize,
        /// The shape asked for.
        shape: Vec<usize>,
        /// Values the shape holds.
        numel: usize,
    },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A line of a text data file (CSV) is malformed.
    #[error("{path}, line {line}: {message}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },

    /// A data file (IDX, checkpoint) is malformed.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A checkpoint does not match the model it is loaded into; nothing was changed.
    #[error("checkpoint {path} does not match the model: {message}")]
    CheckpointMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// Every name and shape that differs.
        message: String,
    },

    /// A checkpoint would hold, or holds, a NaN or an infinity; nothing was written or loaded.
    #[error("{path}: {message}")]
    NonFinite {
        /// The checkpoint.
        path: PathBuf,
        /// Which tensor and element.
        message: String,
    },

    /// A checkpoint loaded for a job is not fit for it (a judge that classifies too poorly).
    #[error("{path}: {message}")]
    Unfit {
        /// The checkpoint.
        path: PathBuf,
        /// What it scored, what is needed, and how to rebuild it.
        message: String,
    },

    /// Training stopped: a loss was NaN or infinite.
    #[error(
        "training stopped: `{loss}` was {value} at epoch {epoch}, step {step} of {steps}; {saved}"
    )]
    NonFiniteLoss {
        /// The loss's name.
        loss: String,
        /// Its value.
        value: f32,
        /// Epoch (from 1) and step within it (from 1).
        epoch: usize,
        /// See `epoch`.
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// What happened to the checkpoint.
        saved: String,
    },

    /// A data-parallel job went wrong: the ranks disagree, or MPI could not start.
    #[error("rank {rank}: {message}")]
    Distributed {
        /// The rank reporting it.
        rank: usize,
        /// What went wrong.
        message: String,
    },

    /// Something failed during a training step; `source` says what.
    #[error("at epoch {epoch}, step {step}: {source}")]
    AtStep {
        /// Epoch (from 1) and step within it (from 1).
        epoch: usize,
        /// See `epoch`.
        step: usize,
        /// The failure.
        #[source]
        source: Box<Error>,
    },

    /// Something failed at the end of a training epoch (evaluation, saving); `source` says what.
    #[error("after epoch {epoch}: {source}")]
    AtEpoch {
        /// The epoch (from 1).
        epoch: usize,
        /// The failure.
        #[source]
        source: Box<Error>,
    },

    /// A run cannot be resumed from a checkpoint.
    #[error("cannot resume from {path}: {message}")]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        message: String,
    },

    /// A non-finite value appeared while anomaly detection was on.
    #[error("anomaly: `{op}` recorded at {location} produced a non-finite value ({value})")]
    Anomaly {
        /// The op that produced it.
        op: String,
        /// The source line that recorded the op.
        location: String,
        /// The first non-finite value found.
        value: String,
    },
}

/// `Result` with wgrad's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
