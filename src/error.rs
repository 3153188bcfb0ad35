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
    NoAdapter { detail: String },

    /// `WGRAD_ADAPTER` named an adapter that does not exist.
    #[error("no adapter matches WGRAD_ADAPTER={wanted:?}; adapters present: {present}")]
    AdapterNotFound { wanted: String, present: String },

    /// The adapter refused to create a device with the limits or features wgrad asked for.
    #[error("the adapter refused to create a device: {0}")]
    RequestDevice(String),

    /// The device was lost (driver reset, `destroy()`, or a fatal error); it must be recreated.
    #[error("the GPU device was lost ({reason}); create a new Device to continue")]
    DeviceLost { reason: String },

    /// The driver ran out of memory.
    #[error("out of GPU memory while running `{op}`: {message}")]
    OutOfMemory { op: String, message: String },

    /// A tensor is larger than a device limit allows.
    #[error(
        "`{op}` needs a {what} of {needed} bytes but this device allows {limit} \
         (limit `{limit_name}`; request a larger one with `DeviceOptions::limits` if the adapter supports it)"
    )]
    TooLarge {
        op: String,
        what: &'static str,
        needed: u64,
        limit: u64,
        limit_name: &'static str,
    },

    /// The driver or wgpu's validation rejected a shader or pipeline.
    #[error("shader `{shader}` was rejected: {message}")]
    ShaderRejected { shader: String, message: String },

    /// wgpu reported a validation error while running the step.
    #[error("GPU validation error while running `{op}`: {message}")]
    Validation { op: String, message: String },

    /// Reading a result back from the GPU failed or timed out.
    #[error("readback failed: {0}")]
    Readback(String),

    /// A data slice does not match the shape it was given.
    #[error("{op}: {len} values do not fill shape {shape:?} ({numel} elements)")]
    DataLength {
        op: &'static str,
        len: usize,
        shape: Vec<usize>,
        numel: usize,
    },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A data file (IDX, checkpoint) is malformed.
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },

    /// A checkpoint does not match the model it is loaded into; nothing was changed.
    #[error("checkpoint {path} does not match the model: {message}")]
    CheckpointMismatch { path: PathBuf, message: String },

    /// A non-finite value appeared while anomaly detection was on.
    #[error("anomaly: `{op}` recorded at {location} produced a non-finite value ({value})")]
    Anomaly {
        op: String,
        location: String,
        value: String,
    },
}

/// `Result` with wgrad's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
