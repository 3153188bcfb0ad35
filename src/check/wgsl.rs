//! Static checks of a WGSL kernel, no GPU needed: naga (the version wgpu uses) parses and
//! validates it, and reflection checks the binding contract every kernel keeps.

use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};
use naga::{AddressSpace, ShaderStage, StorageAccess};

use crate::error::{Error, Result};
use crate::op::Shader;

/// What a valid kernel binds, by reflection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bindings {
    /// Read-only storage buffers: the op's inputs.
    pub inputs: usize,
    /// Read-write storage buffers: the op's outputs.
    pub outputs: usize,
    /// The size in bytes of the uniform parameter struct.
    pub params_bytes: u32,
    /// Invocations per workgroup.
    pub invocations: u32,
}

/// Parse and validate `shader` with naga and check the binding contract of
/// [`Shader`](crate::op::Shader): one entry point `@compute fn main` of at most 256
/// invocations; every binding in group 0, numbered from 0, read-only storage (inputs) first, then
/// read-write storage (at least one output), then one uniform (the parameters). Subgroup
/// operations are allowed (kernels that use them declare [`crate::op::Needs::Subgroup8`] and a
/// fallback). The error is [`Error::ShaderRejected`], naming the shader, with naga's message
/// and the line it points at.
pub fn validate_shader(shader: &Shader) -> Result<Bindings> {
    validate_source(shader.source).map_err(|message| Error::ShaderRejected {
        shader: shader.name.to_string(),
        message,
    })
}

/// [`validate_shader`] for a source read at run time; the error is the message alone.
pub fn validate_source(source: &str) -> std::result::Result<Bindings, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("parse error\n{}", e.emit_to_string(source)))?;
    Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP)
        .subgroup_stages(ShaderStages::COMPUTE)
        .subgroup_operations(SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| format!("invalid\n{}", e.emit_to_string(source)))?;
    contract(&module)
}

fn contract(m: &naga::Module) -> std::result::Result<Bindings, String> {
    let [ep] = m.entry_points.as_slice() else {
        return Err(format!("{} entry points, want 1", m.entry_points.len()));
    };
    if ep.name != "main" || ep.stage != ShaderStage::Compute {
        return Err("the entry point must be `@compute fn main`".into());
    }
    let invocations: u32 = ep.workgroup_size.iter().product();
    if invocations > 256 {
        return Err(format!(
            "{invocations} invocations per workgroup, limit 256"
        ));
    }
    let mut bound: Vec<(u32, u32, char, Option<naga::Handle<naga::Type>>)> = m
        .global_variables
        .iter()
        .filter_map(|(_, g)| {
            let b = g.binding.as_ref()?;
            let kind = match g.space {
                AddressSpace::Storage { access } if !access.contains(StorageAccess::STORE) => 'r',
                AddressSpace::Storage { .. } => 'w',
                AddressSpace::Uniform => 'u',
                _ => '?',
            };
            Some((b.group, b.binding, kind, (kind == 'u').then_some(g.ty)))
        })
        .collect();
    bound.sort_by_key(|b| (b.0, b.1));
    let order: String = bound.iter().map(|b| b.2).collect();
    let well_formed = bound
        .iter()
        .enumerate()
        .all(|(i, b)| b.0 == 0 && b.1 == i as u32)
        && order.ends_with("wu")
        && order.trim_start_matches('r').trim_start_matches('w') == "u";
    if !well_formed {
        return Err(format!(
            "bindings (group, binding) {:?} read as `{order}`; want group 0, numbered from 0, as \
             inputs (r)…, outputs (w)…, params (u)",
            bound.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>()
        ));
    }
    let count = |k: char| order.chars().filter(|&c| c == k).count();
    let params = bound
        .last()
        .and_then(|b| b.3)
        .expect("the last binding is the uniform");
    Ok(Bindings {
        inputs: count('r'),
        outputs: count('w'),
        params_bytes: m.types[params].inner.size(m.to_ctx()),
        invocations,
    })
}
