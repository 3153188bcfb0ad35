//! Every WGSL file under `shaders/`, found by reading the folder, parsed and validated by naga
//! (the version wgpu uses), with its binding contract checked by reflection
//! (`wgrad::check::validate_source`, the check users run on their own kernels). No GPU needed.
//!
//! A folder holding shared parts (`_name.wgsl`) builds each kernel as one part followed by one
//! of its other files: either the part holds the entry point and the file the functions it calls
//! (`unary/`), or the part holds the shared declarations and the file the entry point
//! (`matmul/`). Every part is validated joined with every file, which is how the kernels are
//! built (`shader!`); a matmul kernel is also joined with each body of `unary/`, whose `f` is
//! its epilogue's activation. Other files are whole kernels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// The library's own check (`wgrad::check::validate_source`), with the kernel's name in front.
fn validate(name: &str, source: &str) -> Result<(), String> {
    wgrad::check::validate_source(source)
        .map(|_| ())
        .map_err(|e| format!("{name}: {e}"))
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
    for (all_wrappers, bodies) in folders.values() {
        // A `_*_core.wgsl` file is a prelude (shared functions) joined before every kernel of
        // its folder; a body with an entry point of its own is a whole kernel after the prelude.
        let (preludes, wrappers): (Vec<PathBuf>, Vec<PathBuf>) = all_wrappers
            .iter()
            .cloned()
            .partition(|w| w.to_string_lossy().ends_with("_core.wgsl"));
        let prelude: String = preludes.iter().map(|p| read(p)).collect();
        let prelude_name: String = preludes
            .iter()
            .map(|p| format!("{} + ", short(p)))
            .collect();
        let (whole, bodies): (Vec<PathBuf>, Vec<PathBuf>) = bodies
            .iter()
            .cloned()
            .partition(|b| !preludes.is_empty() && read(b).contains("@compute"));
        for f in &whole {
            kernels += 1;
            let name = format!("{prelude_name}{}", short(f));
            errors.extend(validate(&name, &(prelude.clone() + &read(f))).err());
        }
        if wrappers.is_empty() {
            for f in &bodies {
                kernels += 1;
                errors.extend(validate(&short(f), &read(f)).err());
            }
            continue;
        }
        // Matmul kernels end with an activation from the unary table as their epilogue.
        let epilogues: Vec<PathBuf> = if short(&wrappers[0]).starts_with("matmul") {
            unary_bodies.clone()
        } else {
            vec![PathBuf::new()]
        };
        for body in &bodies {
            for w in &wrappers {
                for e in &epilogues {
                    kernels += 1;
                    let name = format!("{prelude_name}{} + {}", short(w), short(body));
                    let mut source = prelude.clone() + &read(w);
                    source += &read(body);
                    let name = if e.as_os_str().is_empty() {
                        name
                    } else {
                        source += &read(e);
                        format!("{name} + {}", short(e))
                    };
                    errors.extend(validate(&name, &source).err());
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

#[test]
fn the_contract_check_rejects_what_breaks_it_and_reports_what_a_kernel_binds() {
    let kernel = |bindings: &str| {
        format!(
            "struct P {{ n: u32, s: f32, _a: u32, _b: u32 }}\n{bindings}\n\
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {{\n\
             if g.x < p.n {{ y[g.x] = x[g.x] * p.s; }} }}"
        )
    };
    let good = kernel(
        "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
         @group(0) @binding(1) var<storage, read_write> y: array<f32>;\n\
         @group(0) @binding(2) var<uniform> p: P;",
    );
    let b = wgrad::check::validate_source(&good).unwrap();
    assert_eq!(
        (b.inputs, b.outputs, b.params_bytes, b.invocations),
        (1, 1, 16, 64)
    );
    let outputs_first = kernel(
        "@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n\
         @group(0) @binding(1) var<storage, read> x: array<f32>;\n\
         @group(0) @binding(2) var<uniform> p: P;",
    );
    let e = wgrad::check::validate_source(&outputs_first).unwrap_err();
    assert!(e.contains("read as `wru`"), "{e}");
    let gap = kernel(
        "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
         @group(0) @binding(1) var<storage, read_write> y: array<f32>;\n\
         @group(0) @binding(3) var<uniform> p: P;",
    );
    let e = wgrad::check::validate_source(&gap).unwrap_err();
    assert!(e.contains("(0, 3)"), "{e}");
    let e = wgrad::check::validate_source(&good.replace("p.s", "p.t")).unwrap_err();
    assert!(e.contains("invalid") || e.contains("parse error"), "{e}");
    assert!(e.contains("p.t"), "naga's message points at the line: {e}");
}
