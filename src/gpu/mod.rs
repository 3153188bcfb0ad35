//! The wgpu backend, one concern per file: `adapter` (choosing an adapter, the device and its
//! limits), `pipelines` (the cache of compiled shaders and background compiles), `executor`
//! (a step's nodes planned, encoded into one compute pass and submitted once), `readback`
//! (waiting for the GPU and mapping buffers back) and `diagnostics` (anomaly mode and
//! profiling); buffers come from the pool in `crate::buffer`. This file holds the backend's state.

mod adapter;
mod diagnostics;
mod executor;
mod pipelines;
mod readback;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use adapter::{DeviceOptions, adapters};
use pipelines::Pipelines;

use crate::buffer::{GpuBuffer, Pool, check_tensor_bytes};
use crate::error::{Error, Result};

/// GPU time spent in one shader, from [`crate::Device::profile`].
#[derive(Clone, Debug)]
pub struct ProfileEntry {
    /// The shader's name.
    pub shader: &'static str,
    /// How many times it ran.
    pub dispatches: u64,
    /// GPU time in all.
    pub milliseconds: f64,
}

/// Counters of the GPU executor since the device was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Queue submissions that ran nodes (readbacks are counted apart).
    pub submits: u64,
    /// Readbacks to the host.
    pub readbacks: u64,
    /// Storage buffers ever created, and their bytes.
    pub buffers_created: u64,
    /// Bytes of the buffers ever created.
    pub bytes_created: u64,
    /// Buffers held by live tensors, and their bytes.
    pub buffers_live: u64,
    /// Bytes of the buffers held by live tensors.
    pub bytes_live: u64,
    /// Buffers waiting in the pool.
    pub buffers_pooled: u64,
    /// Compute pipelines compiled.
    pub pipelines: u64,
}

pub(crate) struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    timeout: Duration,
    pool: Rc<Pool>,
    pipelines: Pipelines,
    /// Whether the adapter is a GPU (not a CPU running shaders).
    pub(crate) hardware: bool,
    uniform: RefCell<Option<wgpu::Buffer>>,
    dummy: wgpu::Buffer,
    uncaptured: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    in_flight: RefCell<VecDeque<wgpu::SubmissionIndex>>,
    /// GPU nanoseconds and dispatch counts per shader, when profiling.
    profile: Option<RefCell<HashMap<&'static str, (u64, f64)>>>,
    dispatches: Cell<u64>,
    submits: Cell<u64>,
    readbacks: Cell<u64>,
}

impl Gpu {
    pub(crate) fn new(options: DeviceOptions) -> Result<Gpu> {
        let o = adapter::open(options)?;
        let dummy = o.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad empty input"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let pool = Rc::new(Pool::new(o.device.clone(), o.limits.max_buffer_size));
        let pipelines = Pipelines::new(o.device.clone(), o.subgroup8, o.hardware, &o.limits);
        Ok(Gpu {
            device: o.device,
            queue: o.queue,
            info: o.info,
            limits: o.limits,
            timeout: o.timeout,
            pool,
            pipelines,
            hardware: o.hardware,
            uniform: RefCell::new(None),
            dummy,
            uncaptured: o.uncaptured,
            lost: o.lost,
            in_flight: RefCell::new(VecDeque::new()),
            profile: o.profile.then(|| RefCell::new(HashMap::new())),
            dispatches: Cell::new(0),
            submits: Cell::new(0),
            readbacks: Cell::new(0),
        })
    }

    /// Wait for every background compile (benchmarks call this after warming up).
    pub(crate) fn wait_for_compiles(&self) {
        self.pipelines.wait_for_compiles();
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    pub(crate) fn stats(&self) -> GpuStats {
        GpuStats {
            dispatches: self.dispatches.get(),
            submits: self.submits.get(),
            readbacks: self.readbacks.get(),
            buffers_created: self.pool.created.get(),
            bytes_created: self.pool.created_bytes.get(),
            buffers_live: self.pool.live.get(),
            bytes_live: self.pool.live_bytes.get(),
            buffers_pooled: self.pool.pooled(),
            pipelines: self.pipelines.compiled(),
        }
    }

    /// Fails if the device was lost or wgpu reported an error outside any scope.
    fn check_health(&self) -> Result<()> {
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::DeviceLost { reason });
        }
        let errors = self
            .uncaptured
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        if let Some(message) = errors.into_iter().next() {
            return Err(self.lost_or(Error::Validation {
                op: "(outside a step)".into(),
                message,
            }));
        }
        Ok(())
    }

    /// `e`, or [`Error::DeviceLost`] if the device turns out to be lost: wgpu reports a loss on
    /// a later poll, so work on a lost device first fails like invalid work.
    fn lost_or(&self, e: Error) -> Error {
        if matches!(e, Error::DeviceLost { .. }) {
            return e;
        }
        let _ = self.device.poll(wgpu::PollType::Poll);
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(reason) => Error::DeviceLost { reason },
            None => e,
        }
    }

    fn check_binding(&self, op: &str, bytes: u64) -> Result<()> {
        check_tensor_bytes(op, bytes, &self.limits)
    }

    /// A buffer holding `data`, written before the next submit.
    pub(crate) fn upload(&self, data: &[f32]) -> Result<GpuBuffer> {
        self.check_health()?;
        let bytes = std::mem::size_of_val(data) as u64;
        self.check_binding("upload", bytes)?;
        let buf = self
            .pool
            .take(bytes, "upload")
            .map_err(|e| self.lost_or(e))?;
        self.queue
            .write_buffer(buf.raw(), 0, bytemuck::cast_slice(data));
        Ok(buf)
    }

    /// Destroy the wgpu device, as a driver reset would.
    pub(crate) fn destroy(&self) {
        self.device.destroy();
    }
}
