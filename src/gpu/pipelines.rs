//! Compiled shaders: one bind-group layout per (inputs, outputs) count, pipelines cached by shader
//! name (a rejected shader is remembered, not recompiled), kernels chosen by what the adapter
//! offers, and slow kernels compiled on a background thread while their fallback runs. The cache
//! is a part of the backend of its own: it needs the wgpu device and what the adapter offers,
//! nothing else of the backend.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::error::{Error, Result};
use crate::op::{Kernel, Needs, Shader};

/// The bind-group and pipeline layouts of kernels with a given number of inputs and outputs.
pub(super) struct BindLayout {
    pub(super) bind: wgpu::BindGroupLayout,
    pub(super) pipeline: wgpu::PipelineLayout,
}

/// A compiled kernel.
pub(super) struct Pipeline {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: Rc<BindLayout>,
    /// Size of the shader's uniform parameter struct, by reflection (checked in debug builds).
    pub(super) params_size: Option<u32>,
}

/// A pipeline cache entry: compiled, compiling on a background thread, or rejected.
pub(super) enum Slot {
    Ready(Rc<Pipeline>),
    Compiling(
        Receiver<Result<wgpu::ComputePipeline, String>>,
        Rc<BindLayout>,
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

/// The pipeline cache of one device.
pub(super) struct Pipelines {
    device: wgpu::Device,
    /// Whether kernels needing 8-lane subgroups can run.
    subgroup8: bool,
    /// Whether kernels needing a hardware GPU's workgroup memory can run.
    workgroup_memory: bool,
    layouts: RefCell<HashMap<(usize, usize), Rc<BindLayout>>>,
    slots: RefCell<HashMap<&'static str, Slot>>,
    /// The source each name was first seen with (a name stands for one source).
    sources: RefCell<HashMap<&'static str, &'static str>>,
    /// Whether a wait for the device has finished yet (background compiles start after it).
    waited: Cell<bool>,
    /// Background kernels asked for before that wait: (shader, inputs, outputs).
    deferred: RefCell<Vec<(&'static Shader, usize, usize)>>,
}

impl Pipelines {
    /// An empty cache for `device`. `hardware`: the adapter is a GPU, not a CPU running shaders.
    pub(super) fn new(
        device: wgpu::Device,
        subgroup8: bool,
        hardware: bool,
        limits: &wgpu::Limits,
    ) -> Pipelines {
        Pipelines {
            device,
            subgroup8,
            // The workgroup-memory kernels use up to 17 KiB (WebGPU's default limit is 16).
            workgroup_memory: hardware && limits.max_compute_workgroup_storage_size >= 32 * 1024,
            layouts: RefCell::new(HashMap::new()),
            slots: RefCell::new(HashMap::new()),
            sources: RefCell::new(HashMap::new()),
            waited: Cell::new(false),
            deferred: RefCell::new(Vec::new()),
        }
    }

    /// Pipelines compiled so far.
    pub(super) fn compiled(&self) -> u64 {
        self.slots
            .borrow()
            .values()
            .filter(|s| matches!(s, Slot::Ready(_)))
            .count() as u64
    }

    /// Note that the device has been waited for: background compiles may start from now on.
    pub(super) fn device_waited(&self) {
        self.waited.set(true);
    }

    pub(super) fn layout(&self, inputs: usize, outputs: usize) -> Rc<BindLayout> {
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
        let l = Rc::new(BindLayout { bind, pipeline });
        self.layouts
            .borrow_mut()
            .insert((inputs, outputs), l.clone());
        l
    }

    /// The pipeline for `shader`, compiled now (or awaited, if compiling) if it is not ready.
    pub(super) fn pipeline(
        &self,
        shader: &'static Shader,
        inputs: usize,
        outputs: usize,
    ) -> Result<Rc<Pipeline>> {
        self.claim(shader)?;
        self.wait_for(shader.name);
        match self.slots.borrow().get(shader.name) {
            Some(Slot::Ready(p)) => return Ok(p.clone()),
            Some(Slot::Failed(message)) => return Err(rejected(shader, message)),
            _ => {}
        }
        let layout = self.layout(inputs, outputs);
        let compiled = compile(&self.device, shader, &layout.pipeline);
        self.finish(shader, compiled, layout)
    }

    /// Refuse a shader whose name was first seen with another source: the cache would run the
    /// other one.
    fn claim(&self, shader: &'static Shader) -> Result<()> {
        let mut sources = self.sources.borrow_mut();
        let first = *sources.entry(shader.name).or_insert(shader.source);
        if std::ptr::eq(first, shader.source) || first == shader.source {
            return Ok(());
        }
        Err(rejected(
            shader,
            "another shader with a different source already has this name; give each shader \
             its own name",
        ))
    }

    /// Record the outcome of compiling `shader`.
    fn finish(
        &self,
        shader: &'static Shader,
        compiled: Result<wgpu::ComputePipeline, String>,
        layout: Rc<BindLayout>,
    ) -> Result<Rc<Pipeline>> {
        let mut slots = self.slots.borrow_mut();
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
    pub(super) fn select(
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
                Needs::HardwareGpu => self.workgroup_memory,
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
        self.claim(shader)?;
        let finished = match self.slots.borrow().get(shader.name) {
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
            let Some(Slot::Compiling(_, layout, _)) = self.slots.borrow_mut().remove(shader.name)
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
        self.slots
            .borrow_mut()
            .insert(shader.name, Slot::Compiling(rx, layout, shader));
        Ok(None)
    }

    /// Block until a background compile of `name`, if one is running, has finished.
    fn wait_for(&self, name: &'static str) {
        let slot = self.slots.borrow_mut().remove(name);
        match slot {
            Some(Slot::Compiling(rx, layout, shader)) => {
                let result = rx
                    .recv()
                    .unwrap_or_else(|_| Err("the compiling thread died".into()));
                let _ = self.finish(shader, result, layout);
            }
            Some(other) => {
                self.slots.borrow_mut().insert(name, other);
            }
            None => {}
        }
    }

    /// Wait for every background compile (benchmarks call this after warming up).
    pub(super) fn wait_for_compiles(&self) {
        // Kernels asked for before the first wait have not started: compile them now.
        let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
        for (shader, inputs, outputs) in deferred {
            if !self.slots.borrow().contains_key(shader.name) {
                let _ = self.pipeline(shader, inputs, outputs);
            }
        }
        let compiling: Vec<&'static str> = self
            .slots
            .borrow()
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Compiling(..)))
            .map(|(n, _)| *n)
            .collect();
        for name in compiling {
            self.wait_for(name);
        }
    }
}
