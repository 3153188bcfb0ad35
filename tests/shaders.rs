//! Every WGSL file under `shaders/`, found by reading the folder, parsed and validated by naga
//! (the version wgpu uses), with its binding contract checked by reflection. No GPU needed.
//!
//! A folder holding shared parts (`_name.wgsl`) builds each kernel as one part followed by one
//! of its other files: either the part holds the entry point and the file the functions it calls
//! (`unary/`), or the part holds the shared declarations and the file the entry point
//! (`matmul/`). Every part is validated joined with every file, which is how the kernels are
//! built (`shader!`); a matmul kernel is also joined with each body of `unary/`, whose `f` is
//! its epilogue's activation. Other files are whole kernels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, ShaderStage, StorageAccess};

fn wgsl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("shaders/ is readable") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wgsl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            out.push(path);
        }
    }
}

fn validate(name: &str, source: &str) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("{name}: parse error\n{}", e.emit_to_string(source)))?;
    // Subgroup operations are allowed: kernels that use them are only chosen on adapters that
    // offer them (`Needs::Subgroup8`), with a fallback kernel elsewhere.
    Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| format!("{name}: invalid\n{}", e.emit_to_string(source)))?;
    Ok(module)
}

/// One entry point `main` (compute, ≤ 256 invocations); bindings all in group 0, numbered from 0:
/// read-only storage (inputs), then read-write storage (at least one output), then one uniform.
fn check_contract(name: &str, m: &naga::Module) -> Result<(), String> {
    let [ep] = m.entry_points.as_slice() else {
        return Err(format!(
            "{name}: {} entry points, want 1",
            m.entry_points.len()
        ));
    };
    if ep.name != "main" || ep.stage != ShaderStage::Compute {
        return Err(format!("{name}: entry point must be `@compute fn main`"));
    }
    let invocations: u32 = ep.workgroup_size.iter().product();
    if invocations > 256 {
        return Err(format!(
            "{name}: {invocations} invocations per workgroup, limit 256"
        ));
    }
    let mut bound: Vec<(u32, u32, &AddressSpace)> = m
        .global_variables
        .iter()
        .filter_map(|(_, g)| g.binding.as_ref().map(|b| (b.group, b.binding, &g.space)))
        .collect();
    bound.sort_by_key(|b| b.1);
    let kinds: Vec<char> = bound
        .iter()
        .map(|(_, _, space)| match space {
            AddressSpace::Storage { access } if !access.contains(StorageAccess::STORE) => 'r',
            AddressSpace::Storage { .. } => 'w',
            AddressSpace::Uniform => 'u',
            _ => '?',
        })
        .collect();
    let order: String = kinds.iter().collect();
    let well_formed = bound
        .iter()
        .enumerate()
        .all(|(i, b)| b.0 == 0 && b.1 == i as u32)
        && order.ends_with("wu")
        && order.trim_start_matches('r').trim_start_matches('w') == "u";
    if !well_formed {
        return Err(format!(
            "{name}: bindings (group, binding) {:?} read as `{order}`; want group 0, numbered \
             from 0, as inputs (r)…, outputs (w)…, params (u)",
            bound.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

#[test]
fn every_shader_validates_and_keeps_the_binding_contract() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files = Vec::new();
    wgsl_files(&root, &mut files);
    files.sort();
    let mut folders: BTreeMap<PathBuf, (Vec<PathBuf>, Vec<PathBuf>)> = BTreeMap::new();
    for f in files {
        let wrapper = f.file_name().unwrap().to_string_lossy().starts_with('_');
        let entry = folders
            .entry(f.parent().unwrap().to_path_buf())
            .or_default();
        if wrapper {
            entry.0.push(f)
        } else {
            entry.1.push(f)
        }
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let unary_bodies = folders[&root.join("unary")].1.clone();
    let short = |p: &Path| p.strip_prefix(&root).unwrap().display().to_string();
    let (mut errors, mut kernels) = (Vec::new(), 0);
    for (wrappers, bodies) in folders.values() {
        if wrappers.is_empty() {
            for f in bodies {
                kernels += 1;
                match validate(&short(f), &read(f)) {
                    Ok(m) => errors.extend(check_contract(&short(f), &m).err()),
                    Err(e) => errors.push(e),
                }
            }
            continue;
        }
        // Matmul kernels end with an activation from the unary table as their epilogue.
        let epilogues: Vec<PathBuf> = if short(&wrappers[0]).starts_with("matmul") {
            unary_bodies.clone()
        } else {
            vec![PathBuf::new()]
        };
        for body in bodies {
            for w in wrappers {
                for e in &epilogues {
                    kernels += 1;
                    let (name, mut source) = (format!("{} + {}", short(w), short(body)), read(w));
                    source += &read(body);
                    let name = if e.as_os_str().is_empty() {
                        name
                    } else {
                        source += &read(e);
                        format!("{name} + {}", short(e))
                    };
                    match validate(&name, &source) {
                        Ok(m) => errors.extend(check_contract(&name, &m).err()),
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
    }
    eprintln!("{kernels} kernels validated");
    assert!(
        kernels > 40,
        "found only {kernels} kernels under {}",
        root.display()
    );
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}
