//! The differential table, run three ways: gradcheck on the CPU reference, GPU forward against
//! the CPU, GPU backward against the CPU. Each test reports every failing row with its worst
//! element, then fails.

mod common;

use wgrad::check::{self, Case};

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
    let rows: Vec<Case> = check::cases().into_iter().filter(|c| c.gradcheck).collect();
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
    for op in check::cases().iter().filter(|c| c.backward).map(|c| c.op) {
        assert!(rows.iter().any(|c| c.op == op), "{op} has no gradcheck row");
    }
}

#[test]
fn gpu_matches_the_cpu_reference_forward_and_backward() {
    let Some(gpu) = common::gpu() else { return };
    shown(&format!("adapter: {}", gpu.name()));
    let rows = check::cases();
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
