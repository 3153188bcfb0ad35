//! The differential table, run three ways: gradcheck on the CPU reference, GPU forward against
//! the CPU, GPU backward against the CPU. Each test reports every failing row with its worst
//! element, then fails.

mod common;

use std::path::{Path, PathBuf};

use wgrad::check::{self, Case};
use wgrad_cli::rows;

/// A line for the test log even when the test passes: written to the process's stderr, which
/// the test harness does not capture (it captures only the print macros).
fn shown(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn report(kind: &str, failures: &[String], ran: usize) {
    shown(&format!(
        "{kind}: {ran} rows ran, {} failed",
        failures.len()
    ));
    assert!(
        failures.is_empty(),
        "{kind} failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn gradcheck_every_backward_rule_on_the_cpu_reference() {
    let rows: Vec<Case> = rows::cases().into_iter().filter(|c| c.gradcheck).collect();
    let mut failures = Vec::new();
    for case in &rows {
        for (i, c) in check::gradcheck(case).unwrap().iter().enumerate() {
            if !c.pass {
                failures.push(format!("{} input {i}: {c}", case.label()));
            }
        }
    }
    report("gradcheck", &failures, rows.len());
    // Every differentiable op in the table is gradchecked at least once.
    for op in rows::cases().iter().filter(|c| c.backward).map(|c| c.op) {
        assert!(rows.iter().any(|c| c.op == op), "{op} has no gradcheck row");
    }
}

#[test]
fn gpu_matches_the_cpu_reference_forward_and_backward() {
    let Some(gpu) = common::gpu() else { return };
    shown(&format!("adapter: {}", gpu.name()));
    let rows = rows::cases();
    let (mut failures, mut grads) = (Vec::new(), 0);
    for case in &rows {
        let r = check::differential(case, &gpu).unwrap();
        if !r.forward.pass {
            failures.push(format!("{} forward: {}", r.label, r.forward));
        }
        for (i, b) in r.backward.iter().enumerate() {
            grads += 1;
            if !b.pass {
                failures.push(format!("{} gradient {i}: {b}", r.label));
            }
        }
    }
    shown(&format!(
        "GPU cases: {} forward rows, {grads} gradients compared",
        rows.len()
    ));
    report("GPU vs CPU", &failures, rows.len());
}

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

#[test]
fn every_kernel_file_has_a_row_in_the_differential_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let mut files = Vec::new();
    wgsl_files(&root, &mut files);
    let ops: Vec<&str> = rows::cases().iter().map(|c| c.op).collect();
    // Kernels whose op goes by another name, and gradient kernels exercised by their op's rows.
    let alias = |stem: &str| -> String {
        let forward = stem.trim_end_matches("_backward");
        match (forward, stem.ends_with("_backward")) {
            ("naive", _) => "matmul_naive".into(),
            ("tiled", _) => "matmul_tiled".into(),
            ("subgroup", _) => "matmul_subgroup".into(),
            ("shared", _) => "matmul_shared".into(),
            ("scatter_add_rows", _) => "gather_rows".into(),
            ("strided_copy" | "strided_copy_rows", _) => "contiguous".into(),
            ("normal_rows", _) => "randn_rows".into(),
            ("cartpole", _) => "cartpole_step".into(),
            ("conv2d", _) => "conv2d_implicit".into(),
            ("conv2d_input_grad", _) => "conv_transpose2d_implicit".into(),
            ("conv2d_weight_grad", _) => "conv2d_implicit".into(),
            ("im2col" | "col2im", _) => "conv2d".into(),
            ("max_pool2d_tiled", _) => "max_pool2d".into(),
            ("batch_norm_rows" | "batch_norm_grad_rows" | "batch_norm_combine", _) => {
                "batch_norm".into()
            }
            ("batch_norm_apply", _) => "batch_norm".into(),
            (f, _) => f.into(),
        }
    };
    // Kernels that are not ops, each with the test that covers it instead.
    let not_ops = [
        (
            "anomaly",
            "tests/faults.rs anomaly_mode_names_the_first_op_to_produce_a_non_finite_value_and_its_line",
        ),
        (
            "fma_peak",
            "src/bench.rs unit test fma_peak_matches_its_reference",
        ),
    ];
    let mut missing = Vec::new();
    for f in files {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        if stem.starts_with('_') || not_ops.iter().any(|(k, _)| *k == stem) {
            continue;
        }
        let op = alias(&stem);
        if !ops.contains(&op.as_str()) {
            missing.push(format!("{} (op `{op}`)", f.display()));
        }
    }
    assert!(
        missing.is_empty(),
        "kernels without a table row:\n{}",
        missing.join("\n")
    );
}
