//! Diagnostics: anomaly mode (a bit-pattern check after every dispatch, flags read once per step,
//! the first flagged op named with the line that recorded it) and profiling (GPU timestamps
//! around each dispatch, summed per shader).

use std::num::NonZeroU64;
use std::rc::Rc;

use super::{Gpu, ProfileEntry};
use crate::buffer::GpuBuffer;
use crate::error::{Error, Result};
use crate::op::{Kernel, MAX_PARAMS, Shader};
use crate::tape::{Node, Storage};

/// Anomaly mode's check: flags a buffer holding a NaN or an infinity, by its exponent bits.
pub(super) static ANOMALY: Shader = crate::op::shader!("anomaly", "anomaly.wgsl");

/// Parameters of [`ANOMALY`].
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AnomalyParams {
    n: u32,
    slot: u32,
}

/// Anomaly mode's flags for one step, on their way back: one `u32` per checked output, and the
/// node each one belongs to.
pub(super) struct AnomalyFlags {
    pub(super) staging: wgpu::Buffer,
    pub(super) nodes: Vec<usize>,
}

/// Anomaly mode: check `buffer` after dispatch `after`, into flag `slot`.
pub(super) struct Check {
    pub(super) after: usize,
    pub(super) buffer: Rc<GpuBuffer>,
    pub(super) params: Vec<u8>,
    pub(super) workgroups: u64,
}

/// A step's checks: one per GPU output of each dispatch, in dispatch order, and the node each
/// flag belongs to.
pub(super) struct Checks {
    pub(super) list: Vec<Check>,
    pub(super) nodes: Vec<usize>,
}

impl Checks {
    /// The checks of the outputs of `dispatched` (node index per dispatch, in order).
    pub(super) fn plan(nodes: &[Rc<Node>], dispatched: &[usize]) -> Checks {
        let mut c = Checks {
            list: Vec::new(),
            nodes: Vec::new(),
        };
        for (j, &node) in dispatched.iter().enumerate() {
            for s in nodes[node].outputs() {
                if let Storage::Gpu(buffer) = s {
                    let n = (buffer.len / 4) as usize;
                    let slot = c.list.len() as u32;
                    let k = Kernel::per_element(&ANOMALY, &AnomalyParams { n: n as u32, slot }, n);
                    c.list.push(Check {
                        after: j,
                        buffer,
                        params: k.params,
                        workgroups: k.workgroups,
                    });
                    c.nodes.push(node);
                }
            }
        }
        c
    }
}

impl Gpu {
    /// Bind groups of the checks: each output buffer, the flags, the step's uniform.
    pub(super) fn check_binds(
        &self,
        checks: &Checks,
        layout: &wgpu::BindGroupLayout,
        flags: &wgpu::Buffer,
        uniform: &wgpu::Buffer,
    ) -> Vec<wgpu::BindGroup> {
        checks
            .list
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
                            buffer: uniform,
                            offset: 0,
                            size: NonZeroU64::new(MAX_PARAMS as u64),
                        }),
                    },
                ];
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("wgrad anomaly check"),
                    layout,
                    entries: &entries,
                })
            })
            .collect()
    }

    /// Anomaly mode, after the step has run: the first node whose output was flagged.
    pub(super) fn first_flagged(&self, flags: AnomalyFlags) -> Result<Option<usize>> {
        let raw = self.map_read(&flags.staging, None, "anomaly flags")?;
        let set: &[u32] = bytemuck::cast_slice(&raw);
        Ok(set.iter().position(|&f| f != 0).map(|c| flags.nodes[c]))
    }

    /// The anomaly error for a node whose output was flagged, with the first offending value.
    pub(super) fn anomaly_at(&self, node: &Node) -> Error {
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

    /// Add a profiled step's timestamps (a pair per dispatch, in `staging`) to the table.
    pub(super) fn record_stamps(
        &self,
        staging: &wgpu::Buffer,
        index: wgpu::SubmissionIndex,
        shaders: &[&'static str],
    ) -> Result<()> {
        let Some(profile) = &self.profile else {
            return Ok(());
        };
        let raw = self.map_read(staging, Some(index), "profile timestamps")?;
        let ticks: &[u64] = bytemuck::cast_slice(&raw);
        let period = self.queue.get_timestamp_period() as f64;
        let mut table = profile.borrow_mut();
        for (shader, pair) in shaders.iter().zip(ticks.chunks(2)) {
            let e = table.entry(*shader).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += pair[1].saturating_sub(pair[0]) as f64 * period;
        }
        Ok(())
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
}
