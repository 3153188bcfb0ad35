//! A device: the backend that runs ops (a wgpu adapter or the CPU reference) and the tape of
//! recorded, not-yet-run nodes. Nothing runs until a value is read or [`Device::flush`] is called;
//! then every pending node runs in tape order — on the GPU in one command encoder and one submit.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::error::Result;
use crate::gpu::{DeviceOptions, Gpu, GpuStats, ProfileEntry};
use crate::tape::{Entry, Node};

/// Where tensors live and ops run. Cheap to clone (a shared handle).
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: Rc<DeviceInner>,
}

pub(crate) enum Backend {
    Cpu,
    Gpu(Box<Gpu>),
}

pub(crate) struct DeviceInner {
    pub(crate) backend: Backend,
    pub(crate) tape: RefCell<Vec<Entry>>,
    next_id: Cell<u64>,
    grad_enabled: Cell<bool>,
    seed: Cell<u64>,
    draws: Cell<u64>,
    anomaly: Cell<bool>,
}

impl Device {
    /// The GPU chosen by `WGRAD_ADAPTER`, or wgpu's default adapter.
    pub fn gpu() -> Result<Device> {
        Device::gpu_with(DeviceOptions::default())
    }

    /// A GPU device with explicit options.
    pub fn gpu_with(options: DeviceOptions) -> Result<Device> {
        Ok(Device::new(Backend::Gpu(Box::new(Gpu::new(options)?))))
    }

    /// The CPU reference backend: plain loops, f64 inside. Slow, obviously correct, always there.
    pub fn cpu() -> Device {
        Device::new(Backend::Cpu)
    }

    fn new(backend: Backend) -> Device {
        Device {
            inner: Rc::new(DeviceInner {
                backend,
                tape: RefCell::new(Vec::new()),
                next_id: Cell::new(0),
                grad_enabled: Cell::new(true),
                seed: Cell::new(0),
                draws: Cell::new(0),
                anomaly: Cell::new(false),
            }),
        }
    }

    /// True for a wgpu device, false for the CPU reference.
    pub fn is_gpu(&self) -> bool {
        matches!(self.inner.backend, Backend::Gpu(_))
    }

    /// A short description: the adapter's name and backend, or "cpu (reference)".
    pub fn name(&self) -> String {
        match &self.inner.backend {
            Backend::Cpu => "cpu (reference, f64)".to_string(),
            Backend::Gpu(g) => g.describe(),
        }
    }

    /// The wgpu adapter behind this device (`None` for the CPU reference).
    pub fn adapter_info(&self) -> Option<wgpu::AdapterInfo> {
        match &self.inner.backend {
            Backend::Cpu => None,
            Backend::Gpu(g) => Some(g.info.clone()),
        }
    }

    /// Run every pending node in tape order (one submit on the GPU). Reads flush by themselves.
    pub fn flush(&self) -> Result<()> {
        let entries = std::mem::take(&mut *self.inner.tape.borrow_mut());
        let nodes: Vec<Rc<Node>> = entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Value(w) => w.upgrade(),
                Entry::Effect(n) => Some(n),
            })
            .filter(|n| !n.is_done())
            .collect();
        if nodes.is_empty() {
            return Ok(());
        }
        let anomaly = self.inner.anomaly.get();
        let result = match &self.inner.backend {
            Backend::Cpu => crate::cpu::run(&nodes, anomaly),
            Backend::Gpu(g) => g.run(&nodes, anomaly),
        };
        match result {
            Ok(()) => {
                for n in &nodes {
                    n.release_inputs();
                }
                Ok(())
            }
            Err(e) => {
                // What did not run goes back on the tape, so a retry (after freeing memory, say)
                // can still succeed; what ran keeps its result and is never run twice.
                let mut tape = self.inner.tape.borrow_mut();
                let rest = std::mem::take(&mut *tape);
                tape.extend(
                    nodes
                        .into_iter()
                        .filter(|n| !n.is_done())
                        .map(|n| n.entry()),
                );
                tape.extend(rest);
                Err(e)
            }
        }
    }

    /// Run everything pending and wait until the device has finished it (for timing).
    pub fn synchronize(&self) -> Result<()> {
        self.flush()?;
        match &self.inner.backend {
            Backend::Cpu => Ok(()),
            Backend::Gpu(g) => g.wait_idle(),
        }
    }

    /// Wait until kernels compiling on background threads are ready, so that what follows runs
    /// the fastest kernels (benchmarks call this after warming up).
    pub fn wait_for_compiles(&self) {
        if let Backend::Gpu(g) = &self.inner.backend {
            g.wait_for_compiles();
        }
    }

    /// GPU time per shader since profiling started, largest first; empty unless the device was
    /// created with [`DeviceOptions::profile`] on an adapter with timestamp queries in passes.
    pub fn profile(&self) -> Vec<ProfileEntry> {
        match &self.inner.backend {
            Backend::Gpu(g) => g.profile(),
            Backend::Cpu => Vec::new(),
        }
    }

    /// Forget the times gathered so far.
    pub fn reset_profile(&self) {
        if let Backend::Gpu(g) = &self.inner.backend {
            g.reset_profile();
        }
    }

    /// Number of recorded nodes waiting to run.
    pub fn pending(&self) -> usize {
        self.inner.tape.borrow().len()
    }

    /// Turn off gradient recording until the guard is dropped (GAN steps, evaluation, updates).
    pub fn no_grad(&self) -> NoGradGuard {
        let previous = self.inner.grad_enabled.replace(false);
        NoGradGuard {
            device: self.clone(),
            previous,
        }
    }

    /// Whether new nodes record the inputs they need for a backward pass.
    pub fn grad_enabled(&self) -> bool {
        self.inner.grad_enabled.get()
    }

    /// Restart the stream of random seeds: the same seed gives the same random tensors, dropout
    /// masks and initial weights on every backend.
    pub fn manual_seed(&self, seed: u64) {
        self.inner.seed.set(seed);
        self.inner.draws.set(0);
    }

    /// Where the device's stream of random seeds stands: the seed given to
    /// [`Device::manual_seed`] and the number of random ops recorded since. A checkpoint that
    /// stores it lets a resumed run draw the same dropout masks and noise as an uninterrupted
    /// one.
    pub fn rng_state(&self) -> (u64, u64) {
        (self.inner.seed.get(), self.inner.draws.get())
    }

    /// Put the stream of random seeds back where [`Device::rng_state`] found it.
    pub fn set_rng_state(&self, (seed, draws): (u64, u64)) {
        self.inner.seed.set(seed);
        self.inner.draws.set(draws);
    }

    /// The next seed of the device's stream (one per random op).
    pub(crate) fn next_seed(&self) -> u64 {
        let n = self.inner.draws.get();
        self.inner.draws.set(n + 1);
        crate::rng::mix(self.inner.seed.get(), n)
    }

    /// Check every op's output for NaN and infinity and report the first op that produced one,
    /// with the line that recorded it. Off by default: it costs a check per node.
    pub fn set_anomaly_detection(&self, on: bool) {
        self.inner.anomaly.set(on);
    }

    /// Executor counters (dispatches, submits, buffers); `None` on the CPU reference.
    pub fn gpu_stats(&self) -> Option<GpuStats> {
        match &self.inner.backend {
            Backend::Cpu => None,
            Backend::Gpu(g) => Some(g.stats()),
        }
    }

    /// Destroy the underlying wgpu device, as a driver reset would, so tests can check that a
    /// lost device is reported as [`crate::Error::DeviceLost`]. Not for programs.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        if let Backend::Gpu(g) = &self.inner.backend {
            g.destroy();
        }
    }

    /// True for a wgpu device on a GPU of its own (not a CPU-backed adapter such as lavapipe).
    pub fn is_hardware_gpu(&self) -> bool {
        self.backend_gpu().is_some_and(|g| g.hardware)
    }

    pub(crate) fn backend_gpu(&self) -> Option<&Gpu> {
        match &self.inner.backend {
            Backend::Cpu => None,
            Backend::Gpu(g) => Some(g),
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.inner.next_id.get();
        self.inner.next_id.set(id + 1);
        id
    }

    pub(crate) fn same(&self, other: &Device) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.name())
    }
}

/// Restores gradient recording when dropped. See [`Device::no_grad`].
pub struct NoGradGuard {
    device: Device,
    previous: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        self.device.inner.grad_enabled.set(self.previous);
    }
}
