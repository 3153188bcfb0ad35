//! Data-parallel training over MPI, run as a user runs it: `mpirun -n 2` of the `mnist_dp`
//! example (feature `mpi`; `.ci/run` installs OpenMPI). Both ranks hold bit-identical
//! parameters after 50 steps; the 2-rank run matches a 1-rank run of the same global batch
//! within a tolerance (the sum's order differs); bucketing changes no bit; a rank that leaves or
//! crashes ends the job with a non-zero status within seconds, and the job resumes from its
//! checkpoints to the bits of a job that never crashed; ranks that built different parameters
//! are refused at the broadcast.

#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use wgrad::checkpoint;

/// The built `mnist_dp` example (beside this test, debug profile).
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests live in target/<profile>/deps");
    let path = dir.join("examples").join("mnist_dp");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --features mpi --example mnist_dp`",
        path.display()
    );
    path
}

/// `mpirun -n <ranks> mnist_dp <args>` from the package root, with `env`; its output and how
/// long it took.
fn mpirun(ranks: usize, args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new("mpirun");
    cmd.args(["-n", &ranks.to_string()])
        // Containers run as root; two ranks on a 2-core machine (or four) oversubscribe.
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "--bind-to",
            "none",
        ])
        .arg(example())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // Shared-memory transfers without ptrace (which containers often forbid).
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("RUST_BACKTRACE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd
        .output()
        .expect("mpirun starts (install openmpi-bin, see the README)");
    (out, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A fresh folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wgrad-dist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }
    fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 50 steps of the global batch 128 (6,400 training images, one epoch), no dropout.
const FIFTY_STEPS: [&str; 8] = [
    "--train-size",
    "6400",
    "--epochs",
    "1",
    "--dropout",
    "0",
    "--batch",
    "128",
];

/// Every parameter of rank `rank`'s checkpoint in `dir`, by name.
fn params(dir: &Scratch, rank: usize) -> Vec<(String, Vec<f64>)> {
    let path = dir.0.join(format!("rank{rank}")).join("mnist.safetensors");
    let ck = checkpoint::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ck.tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with("optimizer.") && !n.starts_with("wgrad."))
        .map(|(n, (_, v))| (n, v))
        .collect()
}

/// The largest |a − b| over all parameters, with where it is.
fn worst(a: &[(String, Vec<f64>)], b: &[(String, Vec<f64>)]) -> (f64, String) {
    assert_eq!(a.len(), b.len(), "different parameter lists");
    let mut worst = (0.0, String::new());
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        for (i, (x, y)) in va.iter().zip(vb).enumerate() {
            let d = (x - y).abs();
            if d > worst.0 || d.is_nan() {
                worst = (d, format!("{na}[{i}]: {x} vs {y}"));
            }
        }
    }
    worst
}

#[test]
fn two_ranks_stay_identical_and_match_one_rank() {
    let one = Scratch::new("one");
    let two = Scratch::new("two");
    let buckets = Scratch::new("buckets");
    let (o1, _) = mpirun(1, &[&FIFTY_STEPS[..], &["--out", one.arg()]].concat(), &[]);
    assert!(o1.status.success(), "one rank: {}", show(&o1));
    let (o2, _) = mpirun(2, &[&FIFTY_STEPS[..], &["--out", two.arg()]].concat(), &[]);
    assert!(o2.status.success(), "two ranks: {}", show(&o2));
    assert!(
        text(&o2.stdout).contains("bit-identical on all 2 rank(s)"),
        "{}",
        show(&o2)
    );
    // Tiny buckets: 1,000 elements per collective instead of one for everything.
    let (o3, _) = mpirun(
        2,
        &[
            &FIFTY_STEPS[..],
            &["--out", buckets.arg(), "--bucket", "1000"],
        ]
        .concat(),
        &[],
    );
    assert!(o3.status.success(), "small buckets: {}", show(&o3));

    let (r0, r1) = (params(&two, 0), params(&two, 1));
    assert_eq!(
        worst(&r0, &r1).0,
        0.0,
        "ranks 0 and 1 differ after 50 steps: {}",
        worst(&r0, &r1).1
    );
    let small = params(&buckets, 0);
    assert_eq!(
        worst(&r0, &small).0,
        0.0,
        "bucketing changed the result: {}",
        worst(&r0, &small).1
    );
    // One rank with batch 128 against two with 64 each: the same mean gradient summed in another
    // order, so the weights drift apart by rounding only (measured: 1.2e-7, one rounding step of a
    // weight near 0.16, after 50 steps of SGD at lr 0.05). 1e-5 leaves room for other adapters
    // and still catches a wrong shard or a missing 1/ranks, which change whole steps.
    let single = params(&one, 0);
    let (d, at) = worst(&single, &r0);
    eprintln!("1 rank vs 2 ranks after 50 steps: worst difference {d:e} at {at}");
    assert!(
        d <= 1e-5,
        "1 rank vs 2 ranks after 50 steps: worst {d:e} at {at}"
    );
}

#[test]
fn a_rank_that_leaves_ends_the_job() {
    let dir = Scratch::new("leave");
    let (out, took) = mpirun(
        2,
        &["--quick", "--out", dir.arg(), "--fault", "exit:1"],
        &[("WGRAD_DIST_TIMEOUT_SECS", "10")],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("rank 0: `gradient sizes` waited more than 10 s for the other ranks"),
        "{}",
        show(&out)
    );
    assert!(
        took < Duration::from_secs(90),
        "took {took:?}: {}",
        show(&out)
    );
}

#[test]
fn a_crashed_rank_ends_the_job() {
    let dir = Scratch::new("crash");
    let (out, took) = mpirun(
        2,
        &["--quick", "--out", dir.arg(), "--fault", "crash:1"],
        &[("WGRAD_DIST_TIMEOUT_SECS", "30")],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("aborting at step 3"), "{}", show(&out));
    assert!(
        took < Duration::from_secs(90),
        "took {took:?}: {}",
        show(&out)
    );
}

#[test]
fn a_job_that_crashed_resumes_from_its_checkpoints_to_the_same_bits() {
    let whole = Scratch::new("whole");
    let broken = Scratch::new("broken");
    let (o, _) = mpirun(2, &["--quick", "--out", whole.arg()], &[]);
    assert!(o.status.success(), "uninterrupted: {}", show(&o));
    // --quick is 2 epochs of 16 steps: rank 1 dies at step 20, after the first epoch's save.
    let (o, _) = mpirun(
        2,
        &["--quick", "--out", broken.arg(), "--fault", "crash:1:20"],
        &[],
    );
    assert!(!o.status.success(), "the crash: {}", show(&o));
    let (o, _) = mpirun(2, &["--quick", "--out", broken.arg(), "--resume"], &[]);
    assert!(o.status.success(), "resumed: {}", show(&o));
    assert!(
        format!("{}{}", text(&o.stdout), text(&o.stderr)).contains("after epoch 1"),
        "resumed from epoch 1: {}",
        show(&o)
    );
    for rank in 0..2 {
        let (a, b) = (params(&whole, rank), params(&broken, rank));
        assert_eq!(
            worst(&a, &b).0,
            0.0,
            "rank {rank}: resumed run differs: {}",
            worst(&a, &b).1
        );
    }
}

#[test]
fn different_parameters_are_refused_at_the_broadcast() {
    let dir = Scratch::new("shapes");
    let (out, _) = mpirun(
        2,
        &["--quick", "--out", dir.arg(), "--fault", "shapes:1"],
        &[],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("rank 1: parameter 0 differs from rank 0's: rank 0 has `0.weight [512, 784]`, this rank has `0.weight [513, 784]`"),
        "{}",
        show(&out)
    );
    assert!(
        err.contains("rank 0: rank(s) [1] built parameters whose names or shapes differ"),
        "{}",
        show(&out)
    );
}
