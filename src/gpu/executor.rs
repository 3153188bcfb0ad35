//! The executor: a flush's pending nodes become one compute pass and one submit, in three
//! phases with plain results — [`Gpu::plan`] (outputs allocated, kernels chosen and compiled),
//! [`Gpu::submit`] (bind groups made, every dispatch encoded, the step submitted) and
//! [`Gpu::complete`] (anomaly flags and timestamps read, work in flight bounded). An error in the
//! first two means nothing ran, so every node is left to be run again; an error in the last one
//! means the step ran. Each node's bind group is made in an error scope of its own, so a
//! validation error names the shader.

use std::num::NonZeroU64;
use std::rc::Rc;

use super::Gpu;
use super::diagnostics::{ANOMALY, AnomalyFlags, Checks};
use super::pipelines::{BindLayout, Pipeline};
use crate::error::{Error, Result};
use crate::op::MAX_PARAMS;
use crate::shape::Layout;
use crate::tape::{Node, Storage};

/// One dispatch of a step.
struct Dispatch {
    node: usize,
    shader: &'static str,
    pipeline: Rc<Pipeline>,
    params: Vec<u8>,
    /// The workgroups, spread over x, y and z.
    grid: [u32; 3],
}

/// A planned step: its dispatches and, in anomaly mode, the checks that follow them.
pub(super) struct Plan {
    dispatches: Vec<Dispatch>,
    checks: Option<Checks>,
}

/// A submitted step, to be completed.
pub(super) struct Submitted {
    index: wgpu::SubmissionIndex,
    flags: Option<AnomalyFlags>,
    stamps: Option<wgpu::Buffer>,
    shaders: Vec<&'static str>,
}

impl Gpu {
    /// Run `nodes` in tape order: one compute pass, one submit. On failure before the submit
    /// nothing ran and every node is left unrun (to be retried); after it, the nodes stay run, so
    /// a retry never applies an update twice.
    pub(crate) fn run(&self, nodes: &[Rc<Node>], anomaly: bool) -> Result<()> {
        let not_run = |e: Error| {
            for n in nodes {
                n.reset();
            }
            self.lost_or(e)
        };
        self.check_health().map_err(not_run)?;
        let plan = self.plan(nodes, anomaly).map_err(not_run)?;
        if plan.dispatches.is_empty() {
            return Ok(());
        }
        let submitted = self.submit(nodes, plan).map_err(not_run)?;
        self.complete(nodes, submitted).map_err(|e| self.lost_or(e))
    }

    /// Give each node its storage (a view shares its source's) and choose and compile its
    /// kernel from its inputs' layouts.
    fn plan(&self, nodes: &[Rc<Node>], anomaly: bool) -> Result<Plan> {
        let mut dispatches = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let op = node.op.as_ref().expect("only op nodes are pending");
            let inputs = node.inputs.borrow();
            if op.is_view() {
                *node.storage.borrow_mut() = Some(inputs[0].storage());
                continue;
            }
            if node.targets.is_empty() {
                let bytes = node.layout.numel() as u64 * 4;
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
            let layouts: Vec<&Layout> = inputs.iter().map(|n| &n.layout).collect();
            let outputs = node.targets.len().max(1);
            let kernel = op.kernel(&layouts, &node.layout);
            let (pipeline, kernel) = self.pipelines.select(kernel, inputs.len(), outputs)?;
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
            let max = self.limits.max_compute_workgroups_per_dimension;
            let grid = grid(kernel.workgroups, max).ok_or_else(|| Error::TooLarge {
                op: op.name().to_string(),
                what: "grid of workgroups",
                needed: kernel.workgroups,
                limit: (max as u64).pow(3),
                limit_name: "max_compute_workgroups_per_dimension",
            })?;
            dispatches.push(Dispatch {
                node: i,
                shader: kernel.shader.name,
                pipeline,
                params: kernel.params,
                grid,
            });
        }
        let checks = anomaly.then(|| {
            let order: Vec<usize> = dispatches.iter().map(|d| d.node).collect();
            Checks::plan(nodes, &order)
        });
        Ok(Plan { dispatches, checks })
    }

    /// Write every parameter block into the step's uniform buffer, make the bind groups,
    /// encode the pass and submit it.
    fn submit(&self, nodes: &[Rc<Node>], plan: Plan) -> Result<Submitted> {
        let Plan { dispatches, checks } = plan;
        let checks = checks.filter(|c| !c.list.is_empty());
        let check_pipeline = match &checks {
            Some(_) => Some(self.pipelines.pipeline(&ANOMALY, 1, 1)?),
            None => None,
        };
        let n_checks = checks.as_ref().map_or(0, |c| c.list.len());
        let slot = (self.limits.min_uniform_buffer_offset_alignment as usize).max(MAX_PARAMS);
        let mut params = vec![0u8; (dispatches.len() + n_checks) * slot];
        let blocks = dispatches
            .iter()
            .map(|d| &d.params)
            .chain(checks.iter().flat_map(|c| c.list.iter().map(|k| &k.params)));
        for (j, bytes) in blocks.enumerate() {
            params[j * slot..j * slot + bytes.len()].copy_from_slice(bytes);
        }
        let uniform = self.uniform_buffer(params.len() as u64);

        let mut binds = Vec::with_capacity(dispatches.len());
        for d in &dispatches {
            binds.push(self.bind_group(&nodes[d.node], d.shader, &d.pipeline.layout, &uniform)?);
        }
        let flags = checks.as_ref().map(|c| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgrad anomaly flags"),
                size: 4 * c.list.len() as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        });
        let check_binds = match (&checks, &check_pipeline, &flags) {
            (Some(c), Some(p), Some(f)) => self.check_binds(c, &p.layout.bind, f, &uniform),
            _ => Vec::new(),
        };

        let invalid = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgrad step"),
            });
        // Profiling: a timestamp before and after each of the first dispatches.
        let timed = if self.profile.is_some() {
            dispatches.len().min(2048)
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
        let max = self.limits.max_compute_workgroups_per_dimension;
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgrad step"),
                timestamp_writes: None,
            });
            let mut next_check = 0;
            for (j, (d, bind)) in dispatches.iter().zip(&binds).enumerate() {
                if let Some(q) = queries.as_ref().filter(|_| j < timed) {
                    pass.write_timestamp(q, 2 * j as u32);
                }
                let [x, y, z] = d.grid;
                pass.set_pipeline(&d.pipeline.pipeline);
                pass.set_bind_group(0, bind, &[(j * slot) as u32]);
                pass.dispatch_workgroups(x, y, z);
                if let Some(q) = queries.as_ref().filter(|_| j < timed) {
                    pass.write_timestamp(q, 2 * j as u32 + 1);
                }
                // Checks are in dispatch order: run those that follow this dispatch.
                let (Some(c), Some(p)) = (&checks, &check_pipeline) else {
                    continue;
                };
                while let Some(check) = c.list.get(next_check).filter(|k| k.after == j) {
                    let [x, y, z] = grid(check.workgroups, max)
                        .expect("a check's grid is no larger than its op's output");
                    let offset = ((dispatches.len() + next_check) * slot) as u32;
                    pass.set_pipeline(&p.pipeline);
                    pass.set_bind_group(0, &check_binds[next_check], &[offset]);
                    pass.dispatch_workgroups(x, y, z);
                    next_check += 1;
                }
            }
        }
        let flags = match (flags, checks) {
            (Some(flags), Some(c)) => {
                let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("wgrad anomaly readback"),
                    size: flags.size(),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(&flags, 0, &staging, 0, flags.size());
                Some(AnomalyFlags {
                    staging,
                    nodes: c.nodes,
                })
            }
            _ => None,
        };
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
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::OutOfMemory {
                op: "step".into(),
                message: e.to_string(),
            });
        }
        if let Some(e) = pollster::block_on(invalid.pop()) {
            return Err(Error::Validation {
                op: "step".into(),
                message: e.to_string(),
            });
        }
        self.dispatches
            .set(self.dispatches.get() + dispatches.len() as u64);
        self.submits.set(self.submits.get() + 1);
        Ok(Submitted {
            index,
            flags,
            stamps,
            shaders: dispatches.iter().map(|d| d.shader).collect(),
        })
    }

    /// After the submit: timestamps and anomaly flags are read (each waits for the step), and
    /// the work in flight is bounded.
    fn complete(&self, nodes: &[Rc<Node>], step: Submitted) -> Result<()> {
        if let Some(staging) = &step.stamps {
            self.record_stamps(staging, step.index.clone(), &step.shaders)?;
        }
        self.throttle(step.index)?;
        if let Some(flags) = step.flags
            && let Some(first) = self.first_flagged(flags)?
        {
            return Err(self.anomaly_at(&nodes[first]));
        }
        Ok(())
    }

    /// The bind group of `node` (inputs, outputs, the step's uniform), made in an error scope of
    /// its own so a refusal names the node's `shader`.
    fn bind_group(
        &self,
        node: &Node,
        shader: &str,
        layout: &BindLayout,
        uniform: &wgpu::Buffer,
    ) -> Result<wgpu::BindGroup> {
        let inputs = node.inputs.borrow();
        let outputs = node.outputs();
        assert!(!outputs.is_empty(), "outputs are assigned before binding");
        let in_storage: Vec<Storage> = inputs.iter().map(|n| n.storage()).collect();
        let mut entries = Vec::with_capacity(in_storage.len() + outputs.len() + 1);
        for (i, s) in in_storage.iter().chain(&outputs).enumerate() {
            let resource = match s {
                Storage::Gpu(b) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.raw(),
                    offset: 0,
                    size: NonZeroU64::new(b.len.next_multiple_of(crate::buffer::BINDING_ALIGN)),
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
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader),
            layout: &layout.bind,
            entries: &entries,
        });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(Error::Validation {
                op: shader.to_string(),
                message: e.to_string(),
            }),
            None => Ok(bind),
        }
    }

    /// The step's uniform buffer, at least `bytes` long (reused while it is large enough).
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
