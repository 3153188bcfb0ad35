//! The wgpu backend: adapter and device, a pipeline cache keyed by shader name, a buffer pool,
//! one uniform buffer per step addressed by dynamic offsets, and the executor that records every
//! pending node into one compute pass and submits it once.

mod pool;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use pool::GpuBuffer;
use pool::Pool;

use crate::device::{DeviceOptions, ProfileEntry};
use crate::error::{Error, Result};
use crate::op::{Kernel, MAX_PARAMS, Needs, Shader};
use crate::tensor::{Node, Storage, Tensor};

/// Anomaly mode's check: flags a buffer holding a NaN or an infinity, by its exponent bits.
static ANOMALY: Shader = crate::op::shader!("anomaly", "anomaly.wgsl");

/// Parameters of [`ANOMALY`].
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AnomalyParams {
    n: u32,
    slot: u32,
}

/// Anomaly mode's flags for one step, on their way back: one `u32` per checked output, and the
/// node each one belongs to.
struct AnomalyFlags {
    staging: wgpu::Buffer,
    nodes: Vec<usize>,
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

struct Layout {
    bind: wgpu::BindGroupLayout,
    pipeline: wgpu::PipelineLayout,
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: Rc<Layout>,
    /// Size of the shader's uniform parameter struct, by reflection (checked in debug builds).
    params_size: Option<u32>,
}

/// A pipeline cache entry: compiled, compiling on a background thread, or rejected.
enum Slot {
    Ready(Rc<Pipeline>),
    Compiling(
        Receiver<Result<wgpu::ComputePipeline, String>>,
        Rc<Layout>,
        &'static Shader,
    ),
    Failed(String),
}

/// Compile a shader into a compute pipeline; the error says why the driver or wgpu refused it.
fn compile(
    device: &wgpu::Device,
    shader: &Shader,
    layout: &wgpu::PipelineLayout,
) -> Result<wgpu::ComputePipeline, String> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(shader.name),
        source: wgpu::ShaderSource::Wgsl(shader.source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(shader.name),
        layout: Some(layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    match pollster::block_on(scope.pop()) {
        Some(e) => Err(e.to_string()),
        None => Ok(pipeline),
    }
}

fn rejected(shader: &Shader, message: &str) -> Error {
    Error::ShaderRejected {
        shader: shader.name.to_string(),
        message: message.to_string(),
    }
}

/// The byte size of a shader's uniform parameter struct, read from its WGSL with naga.
fn reflect_params_size(source: &str) -> Option<u32> {
    let module = naga::front::wgsl::parse_str(source).ok()?;
    let ctx = module.to_ctx();
    module
        .global_variables
        .iter()
        .find(|(_, g)| g.space == naga::AddressSpace::Uniform)
        .map(|(_, g)| module.types[g.ty].inner.size(ctx))
}

/// Submissions allowed in flight before a flush waits for the oldest (bounds queued work).
const MAX_IN_FLIGHT: usize = 3;

pub(crate) struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    timeout: Duration,
    pool: Rc<Pool>,
    layouts: RefCell<HashMap<(usize, usize), Rc<Layout>>>,
    pipelines: RefCell<HashMap<&'static str, Slot>>,
    /// Whether kernels needing 8-lane subgroups can run.
    subgroup8: bool,
    /// Whether the adapter is a GPU (not a CPU running shaders).
    pub(crate) hardware: bool,
    uniform: RefCell<Option<wgpu::Buffer>>,
    dummy: wgpu::Buffer,
    uncaptured: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    in_flight: RefCell<VecDeque<wgpu::SubmissionIndex>>,
    /// Whether a wait for the device has finished yet (background compiles start after it).
    waited: Cell<bool>,
    /// Background kernels asked for before that wait: (shader, inputs, outputs).
    deferred: RefCell<Vec<(&'static Shader, usize, usize)>>,
    /// GPU nanoseconds and dispatch counts per shader, when profiling.
    profile: Option<RefCell<HashMap<&'static str, (u64, f64)>>>,
    dispatches: Cell<u64>,
    submits: Cell<u64>,
    readbacks: Cell<u64>,
}

/// The adapters wgpu can see, in the order `WGRAD_ADAPTER=<index>` counts them.
pub fn adapters() -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

fn pick_adapter(wanted: Option<String>) -> Result<wgpu::Adapter> {
    let all = adapters();
    if all.is_empty() {
        return Err(Error::NoAdapter {
            detail: String::new(),
        });
    }
    let Some(wanted) = wanted.filter(|w| !w.is_empty()) else {
        // wgpu's preference: a discrete GPU, then integrated, then anything (lavapipe).
        let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        return Ok(all.into_iter().min_by_key(rank).expect("non-empty"));
    };
    let present = all
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{i}: {}", a.get_info().name))
        .collect::<Vec<_>>()
        .join(", ");
    let by_index = wanted.parse::<usize>().ok().filter(|&i| i < all.len());
    let lower = wanted.to_lowercase();
    let found = match by_index {
        Some(i) => all.into_iter().nth(i),
        None => all
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&lower)),
    };
    found.ok_or(Error::AdapterNotFound { wanted, present })
}

impl Gpu {
    pub(crate) fn new(options: DeviceOptions) -> Result<Gpu> {
        let wanted = options
            .adapter
            .clone()
            .or_else(|| std::env::var("WGRAD_ADAPTER").ok());
        let adapter = pick_adapter(wanted)?;
        let info = adapter.get_info();
        let limits = options.limits.clone().unwrap_or_else(|| adapter.limits());
        // Subgroup operations let matmul share loads across lanes where the adapter has them.
        let mut features = adapter.features() & wgpu::Features::SUBGROUP;
        let timestamps =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let profile = (options.profile || std::env::var("WGRAD_PROFILE").as_deref() == Ok("1"))
            && adapter.features().contains(timestamps);
        if profile {
            features |= timestamps;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgrad"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::RequestDevice(e.to_string()))?;

        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = sink.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });

        let timeout = options.timeout.unwrap_or_else(|| {
            let secs = std::env::var("WGRAD_TIMEOUT_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(600);
            Duration::from_secs(secs)
        });
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad empty input"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let pool = Rc::new(Pool::new(device.clone(), limits.max_buffer_size));
        let subgroup8 = features.contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == 8
            && info.subgroup_max_size == 8;
        let hardware = info.device_type != wgpu::DeviceType::Cpu;
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            timeout,
            pool,
            layouts: RefCell::new(HashMap::new()),
            pipelines: RefCell::new(HashMap::new()),
            subgroup8,
            hardware,
            uniform: RefCell::new(None),
            dummy,
            uncaptured,
            lost,
            in_flight: RefCell::new(VecDeque::new()),
            waited: Cell::new(false),
            deferred: RefCell::new(Vec::new()),
            profile: profile.then(|| RefCell::new(HashMap::new())),
            dispatches: Cell::new(0),
            submits: Cell::new(0),
            readbacks: Cell::new(0),
        })
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
            pipelines: self
                .pipelines
                .borrow()
                .values()
                .filter(|s| matches!(s, Slot::Ready(_)))
                .count() as u64,
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

    fn layout(&self, inputs: usize, outputs: usize) -> Rc<Layout> {
        if let Some(l) = self.layouts.borrow().get(&(inputs, outputs)) {
            return l.clone();
        }
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries: Vec<_> = (0..inputs).map(|i| storage(i as u32, true)).collect();
        entries.extend((0..outputs).map(|i| storage((inputs + i) as u32, false)));
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: (inputs + outputs) as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        });
        let bind = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("wgrad inputs, outputs, params"),
                entries: &entries,
            });
        let pipeline = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: None,
                bind_group_layouts: &[Some(&bind)],
                immediate_size: 0,
            });
        let l = Rc::new(Layout { bind, pipeline });
        self.layouts
            .borrow_mut()
            .insert((inputs, outputs), l.clone());
        l
    }

    /// The pipeline for `shader`, compiled now (or awaited, if compiling) if it is not ready.
    fn pipeline(
        &self,
        shader: &'static Shader,
        inputs: usize,
        outputs: usize,
    ) -> Result<Rc<Pipeline>> {
        self.wait_for(shader.name);
        match self.pipelines.borrow().get(shader.name) {
            Some(Slot::Ready(p)) => return Ok(p.clone()),
            Some(Slot::Failed(message)) => return Err(rejected(shader, message)),
            _ => {}
        }
        let layout = self.layout(inputs, outputs);
        let compiled = compile(&self.device, shader, &layout.pipeline);
        self.finish(shader, compiled, layout)
    }

    /// Record the outcome of compiling `shader`.
    fn finish(
        &self,
        shader: &'static Shader,
        compiled: Result<wgpu::ComputePipeline, String>,
        layout: Rc<Layout>,
    ) -> Result<Rc<Pipeline>> {
        let mut slots = self.pipelines.borrow_mut();
        match compiled {
            Ok(pipeline) => {
                let params_size = cfg!(debug_assertions)
                    .then(|| reflect_params_size(shader.source))
                    .flatten();
                let p = Rc::new(Pipeline {
                    pipeline,
                    layout,
                    params_size,
                });
                slots.insert(shader.name, Slot::Ready(p.clone()));
                Ok(p)
            }
            Err(message) => {
                slots.insert(shader.name, Slot::Failed(message.clone()));
                Err(rejected(shader, &message))
            }
        }
    }

    /// The kernel to run for `kernel`: itself where the adapter can run it and it is compiled,
    /// else its fallback (starting a background compile of the kernel if it asks for one).
    fn select(
        &self,
        kernel: Kernel,
        inputs: usize,
        outputs: usize,
    ) -> Result<(Rc<Pipeline>, Kernel)> {
        let mut k = kernel;
        loop {
            let supported = match k.needs {
                Needs::Nothing => true,
                Needs::Subgroup8 => self.subgroup8,
                // The workgroup-memory kernels use up to 17 KiB (WebGPU's default limit is 16).
                Needs::HardwareGpu => {
                    self.hardware && self.limits.max_compute_workgroup_storage_size >= 32 * 1024
                }
            };
            if supported {
                if !k.background {
                    return Ok((self.pipeline(k.shader, inputs, outputs)?, k));
                }
                if let Some(p) = self.in_background(k.shader, inputs, outputs)? {
                    return Ok((p, k));
                }
            }
            match k.fallback.take() {
                Some(f) => k = *f,
                None => {
                    let message =
                        format!("the adapter lacks what the kernel needs ({:?})", k.needs);
                    return Err(rejected(k.shader, &message));
                }
            }
        }
    }

    /// `Some` pipeline if `shader` is compiled; otherwise start compiling it on another thread
    /// (once) and return `None`. No background compile starts before the device has first been
    /// waited for (a step read back): on lavapipe every pipeline is compiled again, lazily, at its
    /// first dispatch, and a background compile running meanwhile competes with those compiles
    /// (measured on 2 cores with a cold shader cache: the first MLP step took 2.8–3.5 s with two
    /// background compiles started at once, 1.8–2.5 s with them started after the first read).
    /// Background compiles also run one at a time, leaving the other cores to the steps.
    fn in_background(
        &self,
        shader: &'static Shader,
        inputs: usize,
        outputs: usize,
    ) -> Result<Option<Rc<Pipeline>>> {
        let finished = match self.pipelines.borrow().get(shader.name) {
            Some(Slot::Ready(p)) => return Ok(Some(p.clone())),
            Some(Slot::Failed(message)) => return Err(rejected(shader, message)),
            Some(Slot::Compiling(rx, _, _)) => match rx.try_recv() {
                Ok(result) => Some(result),
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => Some(Err("the compiling thread died".into())),
            },
            None => None,
        };
        if let Some(result) = finished {
            let Some(Slot::Compiling(_, layout, _)) =
                self.pipelines.borrow_mut().remove(shader.name)
            else {
                unreachable!("the slot was compiling")
            };
            return self.finish(shader, result, layout).map(Some);
        }
        if !self.waited.get() {
            let mut deferred = self.deferred.borrow_mut();
            if !deferred.iter().any(|(s, _, _)| s.name == shader.name) {
                deferred.push((shader, inputs, outputs));
            }
            return Ok(None);
        }
        let layout = self.layout(inputs, outputs);
        let (tx, rx) = std::sync::mpsc::channel();
        let (device, pl) = (self.device.clone(), layout.pipeline.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("wgrad compile {}", shader.name))
            .spawn(move || {
                static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
                let _turn = ONE_AT_A_TIME.lock();
                let _ = tx.send(compile(&device, shader, &pl));
            });
        if spawned.is_err() {
            // No thread to spare: compile here.
            return self.pipeline(shader, inputs, outputs).map(Some);
        }
        self.pipelines
            .borrow_mut()
            .insert(shader.name, Slot::Compiling(rx, layout, shader));
        Ok(None)
    }

    /// Block until a background compile of `name`, if one is running, has finished.
    fn wait_for(&self, name: &'static str) {
        let slot = self.pipelines.borrow_mut().remove(name);
        match slot {
            Some(Slot::Compiling(rx, layout, shader)) => {
                let result = rx
                    .recv()
                    .unwrap_or_else(|_| Err("the compiling thread died".into()));
                let _ = self.finish(shader, result, layout);
            }
            Some(other) => {
                self.pipelines.borrow_mut().insert(name, other);
            }
            None => {}
        }
    }

    /// Wait for every background compile (benchmarks call this after warming up).
    pub(crate) fn wait_for_compiles(&self) {
        // Kernels asked for before the first wait have not started: compile them now.
        let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
        for (shader, inputs, outputs) in deferred {
            if !self.pipelines.borrow().contains_key(shader.name) {
                let _ = self.pipeline(shader, inputs, outputs);
            }
        }
        let compiling: Vec<&'static str> = self
            .pipelines
            .borrow()
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Compiling(..)))
            .map(|(n, _)| *n)
            .collect();
        for name in compiling {
            self.wait_for(name);
        }
    }

    fn uniform_buffer(&self, bytes: u64) -> wgpu::Buffer {
        let mut slot = self.uniform.borrow_mut();
        if let Some(b) = slot.as_ref().filter(|b| b.size() >= bytes) {
            return b.clone();
        }
        let size = bytes.next_power_of_two().max(4096);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad step params"),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        *slot = Some(b.clone());
        b
    }

    /// Record every node into one compute pass and submit once. On failure nothing ran: every
    /// node is left unrun (and can be retried).
    pub(crate) fn run(&self, nodes: &[Rc<Node>], anomaly: bool) -> Result<()> {
        let mut flags = None;
        let submitted = match self
            .check_health()
            .and_then(|()| self.encode_and_submit(nodes, anomaly.then_some(&mut flags)))
        {
            Ok(submitted) => submitted,
            Err(e) => {
                for n in nodes {
                    n.reset();
                }
                return Err(self.lost_or(e));
            }
        };
        // The nodes are on the GPU now: if waiting for them fails (a timeout), they stay run, so
        // a retry never applies an update twice.
        submitted.map_err(|e| self.lost_or(e))?;
        if let Some(flags) = flags
            && let Some(first) = self.first_flagged(flags).map_err(|e| self.lost_or(e))?
        {
            return Err(self.anomaly_at(&nodes[first]));
        }
        Ok(())
    }

    /// The outer error means nothing was submitted (every node can be retried); the inner one
    /// that the work was submitted and waiting for it failed.
    /// With `anomaly`, every output is also checked for non-finite values, and the flags of
    /// those checks are left there to be read once the step has run.
    fn encode_and_submit(
        &self,
        nodes: &[Rc<Node>],
        anomaly: Option<&mut Option<AnomalyFlags>>,
    ) -> Result<Result<()>> {
        struct Dispatch {
            node: usize,
            shader: &'static str,
            pipeline: Rc<Pipeline>,
            params: Vec<u8>,
            workgroups: u64,
        }
        /// Anomaly mode: check `buffer` after dispatch `after`, into flag `slot`.
        struct Check {
            after: usize,
            buffer: Rc<GpuBuffer>,
            params: Vec<u8>,
            workgroups: u64,
        }
        let mut plan = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let op = node.op.as_ref().expect("only op nodes are pending");
            let inputs = node.inputs.borrow();
            if op.is_view() {
                *node.storage.borrow_mut() = Some(inputs[0].storage());
                continue;
            }
            if node.targets.is_empty() {
                let bytes = crate::shape::numel(&node.shape) as u64 * 4;
                if bytes == 0 {
                    *node.storage.borrow_mut() = Some(Storage::Empty);
                    continue;
                }
                self.check_binding(op.name(), bytes)?;
                let buf = self.pool.take(bytes, op.name())?;
                *node.storage.borrow_mut() = Some(Storage::Gpu(Rc::new(buf)));
            } else {
                *node.storage.borrow_mut() = Some(Storage::Empty);
            }
            let outputs = node.targets.len().max(1);
            let (pipeline, kernel) = self.select(op.kernel(), inputs.len(), outputs)?;
            if kernel.workgroups == 0 {
                continue;
            }
            if let Some(size) = pipeline.params_size {
                assert_eq!(
                    kernel.params.len(),
                    size as usize,
                    "{}: the op passes {} bytes of parameters, the WGSL struct has {size}",
                    kernel.shader.name,
                    kernel.params.len()
                );
            }
            plan.push(Dispatch {
                node: i,
                shader: kernel.shader.name,
                pipeline,
                params: kernel.params,
                workgroups: kernel.workgroups,
            });
        }
        if plan.is_empty() {
            return Ok(Ok(()));
        }
        let mut checks = Vec::new();
        let mut checked_nodes = Vec::new();
        let check_pipeline = match anomaly {
            Some(_) => Some(self.pipeline(&ANOMALY, 1, 1)?),
            None => None,
        };
        if check_pipeline.is_some() {
            for (j, d) in plan.iter().enumerate() {
                for s in nodes[d.node].outputs() {
                    if let Storage::Gpu(buffer) = s {
                        let n = (buffer.len / 4) as usize;
                        let slot = checks.len() as u32;
                        let k =
                            Kernel::per_element(&ANOMALY, &AnomalyParams { n: n as u32, slot }, n);
                        checks.push(Check {
                            after: j,
                            buffer,
                            params: k.params,
                            workgroups: k.workgroups,
                        });
                        checked_nodes.push(d.node);
                    }
                }
            }
        }

        let slot = (self.limits.min_uniform_buffer_offset_alignment as usize).max(MAX_PARAMS);
        let mut params = vec![0u8; (plan.len() + checks.len()) * slot];
        let all_params = plan
            .iter()
            .map(|d| &d.params)
            .chain(checks.iter().map(|c| &c.params));
        for (j, bytes) in all_params.enumerate() {
            params[j * slot..j * slot + bytes.len()].copy_from_slice(bytes);
        }
        let uniform = self.uniform_buffer(params.len() as u64);

        let invalid = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let binds: Vec<wgpu::BindGroup> = plan
            .iter()
            .map(|d| self.bind_group(&nodes[d.node], &d.pipeline.layout, &uniform))
            .collect();
        let flags = (!checks.is_empty()).then(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgrad anomaly flags"),
                size: 4 * checks.len() as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        });
        let check_binds: Vec<wgpu::BindGroup> = match (&check_pipeline, &flags) {
            (Some(pipeline), Some(flags)) => checks
                .iter()
                .map(|c| {
                    let entries = [
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: c.buffer.raw().as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: flags.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &uniform,
                                offset: 0,
                                size: NonZeroU64::new(MAX_PARAMS as u64),
                            }),
                        },
                    ];
                    self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("wgrad anomaly check"),
                        layout: &pipeline.layout.bind,
                        entries: &entries,
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgrad step"),
            });
        // Profiling: a timestamp before and after each of the first dispatches.
        let timed = if self.profile.is_some() {
            plan.len().min(2048)
        } else {
            0
        };
        let queries = (timed > 0).then(|| {
            self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("wgrad profile"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * timed as u32,
            })
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgrad step"),
                timestamp_writes: None,
            });
            let mut next_check = 0;
            for (j, (d, bind)) in plan.iter().zip(&binds).enumerate() {
                if let Some(q) = queries.as_ref().filter(|_| j < timed) {
                    pass.write_timestamp(q, 2 * j as u32);
                }
                let [x, y, z] = grid(
                    d.workgroups,
                    self.limits.max_compute_workgroups_per_dimension,
                )
                .ok_or_else(|| Error::TooLarge {
                    op: nodes[d.node].op_name().to_string(),
                    what: "grid of workgroups",
                    needed: d.workgroups,
                    limit: (self.limits.max_compute_workgroups_per_dimension as u64).pow(3),
                    limit_name: "max_compute_workgroups_per_dimension",
                })?;
                pass.set_pipeline(&d.pipeline.pipeline);
                pass.set_bind_group(0, bind, &[(j * slot) as u32]);
                pass.dispatch_workgroups(x, y, z);
                if let Some(q) = queries.as_ref().filter(|_| j < timed) {
                    pass.write_timestamp(q, 2 * j as u32 + 1);
                }
                // Checks are in dispatch order: run those that follow this dispatch.
                while let Some(check) = checks.get(next_check).filter(|c| c.after == j) {
                    let c = next_check;
                    next_check += 1;
                    let pipeline = check_pipeline.as_ref().expect("checks need the pipeline");
                    let [x, y, z] = grid(
                        check.workgroups,
                        self.limits.max_compute_workgroups_per_dimension,
                    )
                    .expect("a check's grid is no larger than its op's output");
                    pass.set_pipeline(&pipeline.pipeline);
                    pass.set_bind_group(0, &check_binds[c], &[((plan.len() + c) * slot) as u32]);
                    pass.dispatch_workgroups(x, y, z);
                }
            }
        }
        if let (Some(out), Some(flags)) = (anomaly, &flags) {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgrad anomaly readback"),
                size: flags.size(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.copy_buffer_to_buffer(flags, 0, &staging, 0, flags.size());
            *out = Some(AnomalyFlags {
                staging,
                nodes: checked_nodes,
            });
        }
        let stamps = queries.map(|q| {
            let bytes = 16 * timed as u64;
            let usage = wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC;
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgrad profile resolve"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            });
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgrad profile readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.resolve_query_set(&q, 0..2 * timed as u32, &resolve, 0);
            encoder.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
            staging
        });
        self.queue.write_buffer(&uniform, 0, &params);
        let index = self.queue.submit([encoder.finish()]);
        let oom = pollster::block_on(oom.pop());
        let invalid = pollster::block_on(invalid.pop());
        if let Some(e) = oom {
            return Err(Error::OutOfMemory {
                op: "step".into(),
                message: e.to_string(),
            });
        }
        if let Some(e) = invalid {
            return Err(Error::Validation {
                op: "step".into(),
                message: e.to_string(),
            });
        }
        self.dispatches
            .set(self.dispatches.get() + plan.len() as u64);
        self.submits.set(self.submits.get() + 1);
        let shaders: Vec<&'static str> = plan.iter().map(|d| d.shader).collect();
        Ok(self.after_submit(index, stamps, &shaders))
    }

    /// Read the step's timestamps (when profiling) and bound the work in flight.
    fn after_submit(
        &self,
        index: wgpu::SubmissionIndex,
        stamps: Option<wgpu::Buffer>,
        shaders: &[&'static str],
    ) -> Result<()> {
        if let (Some(staging), Some(profile)) = (stamps, &self.profile) {
            let (tx, rx) = std::sync::mpsc::channel();
            staging.map_async(wgpu::MapMode::Read, .., move |r| {
                let _ = tx.send(r);
            });
            self.wait(Some(index.clone()))?;
            if let Ok(Ok(())) = rx.try_recv()
                && let Ok(view) = staging.get_mapped_range(..)
            {
                let ticks: &[u64] = bytemuck::cast_slice(&view);
                let period = self.queue.get_timestamp_period() as f64;
                let mut table = profile.borrow_mut();
                for (shader, pair) in shaders.iter().zip(ticks.chunks(2)) {
                    let e = table.entry(*shader).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 += pair[1].saturating_sub(pair[0]) as f64 * period;
                }
            }
            staging.unmap();
        }
        self.throttle(index)
    }

    pub(crate) fn profile(&self) -> Vec<ProfileEntry> {
        let Some(p) = &self.profile else {
            return Vec::new();
        };
        let mut out: Vec<ProfileEntry> = p
            .borrow()
            .iter()
            .map(|(s, (n, ns))| ProfileEntry {
                shader: s,
                dispatches: *n,
                milliseconds: ns / 1e6,
            })
            .collect();
        out.sort_by(|a, b| b.milliseconds.total_cmp(&a.milliseconds));
        out
    }

    pub(crate) fn reset_profile(&self) {
        if let Some(p) = &self.profile {
            p.borrow_mut().clear();
        }
    }

    /// Keep at most [`MAX_IN_FLIGHT`] submissions queued, so a loop that never reads cannot run
    /// ahead of the GPU without bound.
    fn throttle(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let mut q = self.in_flight.borrow_mut();
        q.push_back(index);
        if q.len() > MAX_IN_FLIGHT {
            let oldest = q.pop_front().expect("non-empty");
            self.wait(Some(oldest))?;
        }
        Ok(())
    }

    /// Wait for every submission so far.
    pub(crate) fn wait_idle(&self) -> Result<()> {
        self.wait(None)?;
        self.in_flight.borrow_mut().clear();
        Ok(())
    }

    fn wait(&self, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        match self.device.poll(wgpu::PollType::Wait {
            submission_index: index,
            timeout: Some(self.timeout),
        }) {
            Ok(_) => {
                self.waited.set(true);
                Ok(())
            }
            Err(wgpu::PollError::Timeout) => Err(Error::Readback(format!(
                "the GPU did not finish within {:?} (set WGRAD_TIMEOUT_SECS to wait longer)",
                self.timeout
            ))),
            Err(e) => {
                self.check_health()?;
                Err(Error::Readback(e.to_string()))
            }
        }
    }

    /// Destroy the wgpu device, as a driver reset would.
    pub(crate) fn destroy(&self) {
        self.device.destroy();
    }

    fn bind_group(&self, node: &Node, layout: &Layout, uniform: &wgpu::Buffer) -> wgpu::BindGroup {
        let inputs = node.inputs.borrow();
        let outputs = node.outputs();
        assert!(!outputs.is_empty(), "outputs are assigned before binding");
        let in_storage: Vec<Storage> = inputs.iter().map(Tensor::storage).collect();
        let mut entries = Vec::with_capacity(in_storage.len() + outputs.len() + 1);
        for (i, s) in in_storage.iter().chain(&outputs).enumerate() {
            let resource = match s {
                Storage::Gpu(b) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.raw(),
                    offset: 0,
                    size: NonZeroU64::new(b.len.next_multiple_of(pool::BINDING_ALIGN)),
                }),
                Storage::Empty => self.dummy.as_entire_binding(),
                Storage::Cpu(_) => unreachable!("CPU storage on a GPU device"),
            };
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            });
        }
        entries.push(wgpu::BindGroupEntry {
            binding: entries.len() as u32,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: uniform,
                offset: 0,
                size: NonZeroU64::new(MAX_PARAMS as u64),
            }),
        });
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout.bind,
            entries: &entries,
        })
    }

    /// Copy a buffer to the host: staging copy, map, wait with a timeout, cast, unmap.
    pub(crate) fn read(&self, buf: &GpuBuffer, numel: usize) -> Result<Vec<f32>> {
        self.check_health()?;
        self.read_unchecked(buf, numel).map_err(|e| self.lost_or(e))
    }

    fn read_unchecked(&self, buf: &GpuBuffer, numel: usize) -> Result<Vec<f32>> {
        let bytes = numel as u64 * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgrad readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_buffer_to_buffer(buf.raw(), 0, &staging, 0, bytes);
        let index = self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(Some(index))?;
        self.in_flight.borrow_mut().clear();
        self.readbacks.set(self.readbacks.get() + 1);
        match rx.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Readback(e.to_string())),
            Err(_) => {
                self.check_health()?;
                return Err(Error::Readback(
                    "the buffer was not mapped after the GPU finished".into(),
                ));
            }
        }
        let values = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| Error::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        Ok(values)
    }

    /// Anomaly mode, after the step has run: the first node whose output was flagged.
    fn first_flagged(&self, flags: AnomalyFlags) -> Result<Option<usize>> {
        let (tx, rx) = std::sync::mpsc::channel();
        flags.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(None)?;
        self.in_flight.borrow_mut().clear();
        match rx.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Readback(e.to_string())),
            Err(_) => {
                return Err(Error::Readback(
                    "the anomaly flags were not mapped after the GPU finished".into(),
                ));
            }
        }
        let first = {
            let view = flags
                .staging
                .get_mapped_range(..)
                .map_err(|e| Error::Readback(e.to_string()))?;
            let set: &[u32] = bytemuck::cast_slice(&view);
            set.iter().position(|&f| f != 0).map(|c| flags.nodes[c])
        };
        flags.staging.unmap();
        Ok(first)
    }

    /// The anomaly error for a node whose output was flagged, with the first offending value.
    fn anomaly_at(&self, node: &Node) -> Error {
        let mut value = "a non-finite value".to_string();
        for s in node.outputs() {
            if let Storage::Gpu(b) = s {
                match self.read(&b, (b.len / 4) as usize) {
                    Ok(values) => {
                        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                            value = v.to_string();
                            break;
                        }
                    }
                    Err(e) => return e,
                }
            }
        }
        Error::Anomaly {
            op: node.op_name().to_string(),
            location: node.location.to_string(),
            value,
        }
    }
}

/// Refuse a tensor of `bytes` that one storage binding, one buffer or a `u32` element index
/// cannot hold, naming the limit; checked on the host before anything is allocated.
pub(crate) fn check_tensor_bytes(op: &str, bytes: u64, limits: &wgpu::Limits) -> Result<()> {
    let too_large = |what, limit, limit_name| Error::TooLarge {
        op: op.to_string(),
        what,
        needed: bytes,
        limit,
        limit_name,
    };
    if bytes / 4 > u32::MAX as u64 {
        return Err(too_large(
            "u32-indexed tensor",
            u32::MAX as u64 * 4,
            "u32 element index",
        ));
    }
    // Buffers are bound rounded up to whole vec4s.
    let bytes = bytes.next_multiple_of(pool::BINDING_ALIGN);
    if bytes > limits.max_storage_buffer_binding_size {
        return Err(too_large(
            "storage binding",
            limits.max_storage_buffer_binding_size,
            "max_storage_buffer_binding_size",
        ));
    }
    if bytes > limits.max_buffer_size {
        return Err(too_large(
            "buffer",
            limits.max_buffer_size,
            "max_buffer_size",
        ));
    }
    Ok(())
}

/// Spread `total` workgroups over x, y, z so no dimension exceeds `max`; shaders recover the
/// linear index as `x + y·nx + z·nx·ny` and skip indices ≥ total.
pub(crate) fn grid(total: u64, max: u32) -> Option<[u32; 3]> {
    let max = max as u64;
    if total <= max {
        return Some([total as u32, 1, 1]);
    }
    let rows = total.div_ceil(max);
    if rows <= max {
        return Some([total.div_ceil(rows) as u32, rows as u32, 1]);
    }
    let planes = rows.div_ceil(max);
    if planes > max {
        return None;
    }
    let per_plane = total.div_ceil(planes);
    let y = per_plane.div_ceil(max);
    Some([per_plane.div_ceil(y) as u32, y as u32, planes as u32])
}

#[cfg(test)]
mod tests {
    use super::grid;

    #[test]
    fn grids_cover_the_count_within_limits() {
        for total in [1u64, 65_535, 65_536, 1 << 20, 65_535 * 65_535 + 7, 1 << 40] {
            let [x, y, z] = grid(total, 65_535).unwrap();
            assert!(x <= 65_535 && y <= 65_535 && z <= 65_535);
            let covered = x as u64 * y as u64 * z as u64;
            assert!(covered >= total, "{total}: {x}x{y}x{z}");
            assert!(
                covered - total < (x as u64) * (y as u64),
                "{total}: too much slack"
            );
        }
        assert!(grid(u64::MAX, 65_535).is_none());
    }
}
