//! Choosing an adapter (`WGRAD_ADAPTER`, or wgpu's preference), creating the device with the
//! features wgrad uses. This file knows nothing of the rest of the backend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};

/// Options for [`crate::Device::gpu_with`].
#[derive(Clone, Debug, Default)]
pub struct DeviceOptions {
    /// Adapter to use: an index from `wgrad info` or part of its name (case-insensitive).
    /// Defaults to the `WGRAD_ADAPTER` environment variable, then wgpu's preferred adapter.
    pub adapter: Option<String>,
    /// Limits to request instead of the adapter's own (for testing how limits are handled).
    pub limits: Option<wgpu::Limits>,
    /// How long a readback may wait for the GPU; defaults to `WGRAD_TIMEOUT_SECS` or 600 s.
    pub timeout: Option<std::time::Duration>,
    /// Time every dispatch on the GPU with timestamp queries (see [`crate::Device::profile`]); also
    /// turned on by `WGRAD_PROFILE=1`. Each profiled step waits for the GPU.
    pub profile: bool,
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

/// A device opened on the chosen adapter, with what the backend needs to know of it.
pub(super) struct Opened {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) info: wgpu::AdapterInfo,
    pub(super) limits: wgpu::Limits,
    pub(super) timeout: Duration,
    /// 8-lane subgroup operations are available.
    pub(super) subgroup8: bool,
    /// The adapter is a GPU rather than a CPU running shaders.
    pub(super) hardware: bool,
    /// Timestamp queries are on.
    pub(super) profile: bool,
    /// Errors wgpu reported outside any error scope.
    pub(super) uncaptured: Arc<Mutex<Vec<String>>>,
    /// Why the device was lost, once it is.
    pub(super) lost: Arc<Mutex<Option<String>>>,
}

/// Choose the adapter `options` (or `WGRAD_ADAPTER`) asks for and open a device on it with the
/// features wgrad uses.
pub(super) fn open(options: DeviceOptions) -> Result<Opened> {
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
    let subgroup8 = features.contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8;
    let hardware = info.device_type != wgpu::DeviceType::Cpu;
    Ok(Opened {
        device,
        queue,
        info,
        limits,
        timeout,
        subgroup8,
        hardware,
        profile,
        uncaptured,
        lost,
    })
}
