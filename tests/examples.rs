//! The examples as a user runs them, end to end: bad options are refused before any work with
//! exit code 2 and a line naming the option; every `--quick` mode trains and logs one row per
//! epoch holding the printed figures; a NaN-producing learning rate stops training and leaves
//! the checkpoint as it was; a save interrupted between write and rename leaves the previous
//! checkpoint loadable; a run interrupted (after an epoch, mid-epoch, by Ctrl-C) and resumed ends
//! with the same bits as one never interrupted, on the GPU and on the CPU reference; the GAN
//! refuses a judge that holds a NaN or classifies under 90%.
//!
//! The example binaries are the ones `cargo test` builds beside this test (debug profile).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The built example `name`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests live in target/<profile>/deps");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the suite with `cargo test`, which builds the examples",
        path.display()
    );
    path
}

/// Run example `name` with `args` (and `env`) from the package root; its output.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(example(name));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the example starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh folder for one test's output, removed when the test ends.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(what: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("wgrad-examples-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    Scratch(dir)
}

/// The files in `dir` whose names start with `prefix`.
fn files_starting(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("a folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Whether the GPU tests run here (an adapter, or WGRAD_REQUIRE_GPU=1 to fail without one).
fn gpu_present() -> bool {
    common::gpu().is_some()
}

#[test]
fn every_example_refuses_bad_options_with_exit_code_2_naming_the_option() {
    let no_checkpoint = scratch("no-checkpoint");
    let no_checkpoint = no_checkpoint.to_str().expect("utf-8 temp path");
    // (arguments, the option the error must name)
    type Bad<'a> = Vec<(Vec<&'a str>, &'a str)>;
    let common: Bad = vec![
        (vec!["--batch", "0"], "--batch"),
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--lr", "nan"], "--lr"),
        (vec!["--lr", "-1"], "--lr"),
        (vec!["--lr", "inf"], "--lr"),
        (vec!["--out", "/proc/nope"], "--out"),
        (vec!["--data", "/no/such/folder"], "--data"),
        (vec!["--resume", "--out", no_checkpoint], "--resume"),
    ];
    let own: [(&str, Bad); 9] = [
        (
            "cnn",
            vec![
                (vec!["--channels", "0"], "--channels"),
                (vec!["--channels", "8,8,8,8,8"], "--channels"),
                (vec!["--hidden", "0"], "--hidden"),
                (vec!["--dropout", "1"], "--dropout"),
                (vec!["--data", "cifar"], "--data"),
            ],
        ),
        (
            "mnist",
            vec![
                (vec!["--hidden", "0"], "--hidden"),
                (vec!["--hidden", "64,0"], "--hidden"),
                (vec!["--dropout", "1"], "--dropout"),
                (vec!["--dropout", "-0.1"], "--dropout"),
                (vec!["--schedule", "step:x"], "--schedule"),
                (vec!["--schedule", "step:2:nan"], "--schedule"),
                (vec!["--schedule", "step:0:0.5"], "--schedule"),
                (vec!["--schedule", "cosine:5:-1"], "--schedule"),
                (vec!["--optimizer", "lbfgs"], "--optimizer"),
            ],
        ),
        (
            "autoencoder",
            vec![
                (vec!["--hidden", "0"], "--hidden"),
                (vec!["--code", "0"], "--code"),
                (vec!["--pool", "3"], "--pool"),
                (vec!["--code", "1000"], "--code"),
                (vec!["--sparse", "nan"], "--sparse"),
            ],
        ),
        (
            "vae",
            vec![
                (vec!["--latent", "0"], "--latent"),
                (vec!["--hidden", "0"], "--hidden"),
                (vec!["--beta", "-1"], "--beta"),
            ],
        ),
        (
            "gan",
            vec![
                (vec!["--g-hidden", "0"], "--g-hidden"),
                (vec!["--d-hidden", "0"], "--d-hidden"),
                (vec!["--dropout", "1.5"], "--dropout"),
                (vec!["--label-flip", "1"], "--label-flip"),
                (vec!["--history", "0"], "--history"),
                (vec!["--history", "50"], "--history"),
                (vec!["--judge", "/no/such/judge.safetensors"], "--judge"),
            ],
        ),
        (
            "adversarial",
            vec![
                (vec!["--train-eps", "1.5"], "--train-eps"),
                (vec!["--train-eps", "nan"], "--train-eps"),
                (vec!["--pgd-steps", "0"], "--pgd-steps"),
                (vec!["--eval-size", "0"], "--eval-size"),
            ],
        ),
        (
            "xcov",
            vec![
                (vec!["--style", "0"], "--style"),
                (vec!["--alpha", "-1"], "--alpha"),
                (vec!["--beta", "nan"], "--beta"),
                (vec!["--judge", "/no/such/judge.safetensors"], "--judge"),
            ],
        ),
        (
            "beyond_backprop",
            vec![
                (vec!["--rules", "sgd"], "--rules"),
                (vec!["--hsic-epochs", "0"], "--hsic-epochs"),
                (vec!["--target-step", "-1"], "--target-step"),
                (vec!["--noise", "nan"], "--noise"),
            ],
        ),
        (
            "unit",
            vec![
                (vec!["--private", "0"], "--private"),
                (vec!["--latent", "0"], "--latent"),
                (vec!["--d-hidden", "64,0"], "--d-hidden"),
                (vec!["--weights", "1,2,3"], "--weights"),
                (vec!["--weights", "10,0.1,100,0.1,-1"], "--weights"),
                (vec!["--weights", "10,0.1,nan,0.1,100"], "--weights"),
                (
                    vec!["--classifier", "/no/such/mlp.safetensors"],
                    "--classifier",
                ),
                (vec!["--digits", "/no/such/digits.csv"], "--digits"),
            ],
        ),
    ];
    let mut failures = Vec::new();
    let mut check = |name: &str, args: &[&str], option: &str| {
        let out = run(name, args, &[]);
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or("");
        let ok = out.status.code() == Some(2)
            && first.starts_with("error:")
            && first.contains(option)
            && !err.contains("panicked")
            && text(&out.stdout).is_empty();
        if !ok {
            failures.push(format!(
                "{name} {args:?}: exit {:?}, stderr {err:?}",
                out.status.code()
            ));
        }
    };
    for (name, extra) in &own {
        for (args, option) in common.iter().chain(extra) {
            check(name, args, option);
        }
    }
    for (args, option) in [
        (vec!["--tasks", "pong"], "--tasks"),
        (vec!["--generations", "0"], "--generations"),
        (vec!["--ga-sigma", "nan"], "--ga-sigma"),
        (vec!["--truncation", "0"], "--truncation"),
        (vec!["--es-population", "3"], "--es-population"),
        (vec!["--mnist-population", "0"], "--mnist-population"),
        (vec!["--episodes", "-1"], "--episodes"),
        (vec!["--out", "/proc/nope"], "--out"),
        (vec!["--data", "/no/such/folder"], "--data"),
    ] {
        check("neuroevolution", &args, option);
    }
    for (args, option) in [
        (vec!["--models", "cd3"], "--models"),
        (vec!["--k", "0"], "--k"),
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--hidden", "0"], "--hidden"),
        (vec!["--lr", "nan"], "--lr"),
        (vec!["--runs", "1"], "--runs"),
        (vec!["--temperatures", "0"], "--temperatures"),
        (vec!["--finetune-lr", "-1"], "--finetune-lr"),
        (vec!["--out", "/proc/nope"], "--out"),
        (vec!["--data", "/no/such/folder"], "--data"),
    ] {
        check("rbm", &args, option);
    }
    check("quickstart", &["--bogus"], "--bogus");
    check("custom_kernel", &["--reps", "0"], "--reps");
    check("custom_kernel", &["--elements", "-3"], "--elements");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The figures of the `epoch N:` lines a run printed: (epoch, name, value) with the value as
/// printed (percentages as fractions).
fn printed_figures(stdout: &str) -> Vec<(usize, String, f64, f64)> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.trim_start().strip_prefix("epoch ") else {
            continue;
        };
        let Some((n, figures)) = rest.split_once(':') else {
            continue;
        };
        let Ok(epoch) = n.trim().parse::<usize>() else {
            continue;
        };
        for part in figures.split(',') {
            let mut words = part.split_whitespace();
            let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let (digits, scale) = match value.strip_suffix('%') {
                Some(v) => (v, 0.01),
                None => (value, 1.0),
            };
            let Ok(v) = digits.parse::<f64>() else {
                continue;
            };
            // Half a unit of the last printed digit.
            let decimals = digits.split_once('.').map_or(0, |(_, d)| d.len());
            let half = 0.5 * 10f64.powi(-(decimals as i32)) * scale;
            out.push((epoch, name.to_string(), v * scale, half));
        }
    }
    out
}

/// metrics.csv as rows of named values.
fn metrics(dir: &Path) -> Vec<HashMap<String, f64>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv exists");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.parse().expect("numbers")))
                .collect()
        })
        .collect()
}

#[test]
fn every_quick_mode_trains_and_logs_a_row_per_epoch_with_the_printed_figures() {
    if !gpu_present() {
        return;
    }
    let mut failures = Vec::new();
    for (name, epochs) in [
        ("mnist", 2),
        ("cnn", 1),
        ("autoencoder", 2),
        ("vae", 2),
        ("gan", 1),
        ("gan-conv", 1),
        ("unit", 1),
    ] {
        let dir = scratch(&format!("quick-{name}"));
        let mut args = vec!["--quick", "--out", dir.to_str().expect("utf-8")];
        let (name, extra): (&str, &[&str]) = match name {
            // Whatever classifier the working tree holds is not this test's business.
            "gan" => ("gan", &["--no-judge"]),
            "gan-conv" => ("gan", &["--no-judge", "--conv", "--train-size", "200"]),
            other => (other, &[]),
        };
        args.extend(extra);
        let out = run(name, &args, &[]);
        let stdout = text(&out.stdout);
        if !out.status.success() {
            failures.push(format!("{name}: {:?}\n{}", out.status, text(&out.stderr)));
            continue;
        }
        let rows = metrics(&dir);
        if rows.len() != epochs {
            failures.push(format!(
                "{name}: {} rows in metrics.csv, want {epochs}",
                rows.len()
            ));
            continue;
        }
        let figures = printed_figures(&stdout);
        if figures.is_empty() {
            failures.push(format!("{name}: no epoch lines in\n{stdout}"));
        }
        for (epoch, figure, value, half) in figures {
            let row = &rows[epoch - 1];
            let column = row
                .get(&figure)
                .or_else(|| row.get(&format!("train_{figure}")));
            match column {
                Some(v) if (v - value).abs() <= half * 1.0001 => {}
                other => failures.push(format!(
                    "{name}: epoch {epoch} printed {figure} {value}, metrics.csv has {other:?}"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let out = run("quickstart", &["--quick"], &[]);
    assert!(out.status.success(), "quickstart: {}", text(&out.stderr));
}

#[test]
fn a_nan_producing_learning_rate_stops_training_and_leaves_the_checkpoint_as_it_was() {
    if !gpu_present() {
        return;
    }
    let dir = scratch("nan");
    let d = dir.to_str().expect("utf-8");
    let good = run("mnist", &["--quick", "--epochs", "1", "--out", d], &[]);
    assert!(good.status.success(), "{}", text(&good.stderr));
    let path = dir.join("mnist.safetensors");
    let before = std::fs::read(&path).expect("a checkpoint");
    let bad = run("mnist", &["--quick", "--out", d, "--lr", "1e30"], &[]);
    let err = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains("training stopped")
            && err.contains("epoch 1, step")
            && err.contains("untouched"),
        "the error names the epoch and step and says the checkpoint is kept: {err}"
    );
    assert_eq!(
        std::fs::read(&path).expect("still there"),
        before,
        "the checkpoint changed"
    );
    // With anomaly detection the op is named too.
    let bad = run(
        "mnist",
        &["--quick", "--out", d, "--lr", "1e30", "--detect-anomaly"],
        &[],
    );
    let err = text(&bad.stderr);
    assert!(
        err.contains("anomaly") && err.contains("at epoch 1, step"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).expect("still there"), before);
}

#[test]
fn a_save_interrupted_between_write_and_rename_leaves_the_previous_checkpoint_loadable() {
    // On the CPU reference: it needs no adapter.
    let dir = scratch("failpoint");
    let d = dir.to_str().expect("utf-8");
    let small = [
        "--cpu",
        "--quick",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--train-size",
        "300",
        "--out",
        d,
    ];
    let good = run("mnist", &small, &[]);
    assert!(good.status.success(), "{}", text(&good.stderr));
    let path = dir.join("mnist.safetensors");
    let before = std::fs::read(&path).expect("a checkpoint");
    let crashed = run(
        "mnist",
        &[&small[..], &["--seed", "7"]].concat(),
        &[("WGRAD_FAILPOINT", "checkpoint-rename")],
    );
    assert!(
        !crashed.status.success() && crashed.status.code().is_none(),
        "the failpoint aborts the process: {:?}",
        crashed.status
    );
    assert_eq!(
        files_starting(&dir, "mnist.safetensors.partial").len(),
        1,
        "the new checkpoint was written, beside the old one, before the abort"
    );
    assert_eq!(std::fs::read(&path).expect("still there"), before);
    let ck = wgrad::checkpoint::read(&path).expect("the previous checkpoint loads");
    assert!(ck.tensors.contains_key("0.weight"));
}

/// The tensors of a checkpoint, by name, as raw bytes (the run's own bookkeeping aside).
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    let ck = wgrad::checkpoint::read(path).expect("a checkpoint");
    ck.tensors
        .into_iter()
        .filter(|(n, _)| !n.starts_with("wgrad."))
        .map(|(n, (shape, v))| (n, shape, v.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

/// Train `args` uninterrupted, and again interrupted after `steps` steps (by the test hook) and
/// resumed; both final checkpoints must hold the same bits.
fn resume_matches(name: &str, label: &str, args: &[&str], steps: usize) {
    let (whole, parts) = (
        scratch(&format!("{label}-whole")),
        scratch(&format!("{label}-parts")),
    );
    let with = |dir: &Path, extra: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--out", dir.to_str().expect("utf-8")]);
        a.extend(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let go = |a: Vec<String>, env: &[(&str, &str)]| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = run(name, &refs, env);
        assert!(
            out.status.success(),
            "{name} {refs:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    go(with(&whole, &[]), &[]);
    let n = steps.to_string();
    let first = go(
        with(&parts, &[]),
        &[("WGRAD_INTERRUPT_AFTER_STEPS", n.as_str())],
    );
    assert!(
        first.contains("interrupted"),
        "{label}: not interrupted:\n{first}"
    );
    let second = go(with(&parts, &["--resume"]), &[]);
    assert!(second.contains("resumed from"), "{label}:\n{second}");
    // The run's one checkpoint (named after the run: `cnn-mnist` for `cnn`).
    let file = std::fs::read_dir(&*whole)
        .expect("the run's folder")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .find(|f| f.to_string_lossy().ends_with(".safetensors"))
        .unwrap_or_else(|| panic!("{label}: no checkpoint in {}", whole.display()));
    let (a, b) = (tensors(&whole.join(&file)), tensors(&parts.join(&file)));
    assert_eq!(a.len(), b.len(), "{label}: different tensors");
    for ((na, sa, va), (nb, sb, vb)) in a.iter().zip(&b) {
        assert_eq!((na, sa), (nb, sb), "{label}: different tensors");
        if let Some(i) = va.iter().zip(vb).position(|(x, y)| x != y) {
            panic!(
                "{label}: `{na}` differs at element {i}: {} uninterrupted, {} resumed",
                f64::from_bits(va[i]),
                f64::from_bits(vb[i])
            );
        }
    }
    // The resumed run's log holds the same rows, apart from times.
    let (ra, rb) = (metrics(&whole), metrics(&parts));
    assert_eq!(ra.len(), rb.len(), "{label}: metrics.csv rows");
    for (x, y) in ra.iter().zip(&rb) {
        for (k, v) in x {
            if !["wall_s", "samples_per_s"].contains(&k.as_str()) {
                assert_eq!(Some(v), y.get(k), "{label}: metrics.csv column {k}");
            }
        }
    }
}

#[test]
fn a_run_interrupted_after_epoch_1_of_3_and_resumed_ends_bit_identical_on_the_gpu() {
    if !gpu_present() {
        return;
    }
    // 2,000 images in batches of 128: 16 steps per epoch.
    resume_matches("mnist", "gpu", &["--quick", "--epochs", "3"], 16);
}

#[test]
fn a_run_interrupted_mid_epoch_and_resumed_ends_bit_identical_on_the_cpu_reference() {
    // 400 images in batches of 128: 4 steps per epoch; stop after epoch 1 and mid-epoch 2.
    let args = [
        "--cpu",
        "--quick",
        "--epochs",
        "3",
        "--hidden",
        "32",
        "--train-size",
        "400",
    ];
    resume_matches("mnist", "cpu-epoch", &args, 4);
    resume_matches("mnist", "cpu-mid", &args, 6);
}

#[test]
fn a_unit_run_resumed_mid_epoch_keeps_its_place_in_domain_b_and_both_optimizers() {
    if !gpu_present() {
        return;
    }
    // Its own classifier takes 16 steps first: interrupt the translation run at step 20 of 25.
    resume_matches(
        "unit",
        "unit",
        &["--quick", "--train-size", "400", "--batch", "16"],
        20,
    );
}

#[test]
fn a_convnet_resumed_mid_epoch_keeps_batch_norms_running_statistics() {
    if !gpu_present() {
        return;
    }
    let args = [
        "--quick",
        "--epochs",
        "2",
        "--train-size",
        "256",
        "--batch",
        "32",
        "--channels",
        "4,8",
        "--hidden",
        "16",
    ];
    resume_matches("cnn", "cnn", &args, 10);
    // The convolutional GAN: batch norm in both networks, two optimizers, the history buffer.
    let args = [
        "--quick",
        "--conv",
        "--width",
        "4",
        "--epochs",
        "2",
        "--train-size",
        "200",
        "--no-judge",
    ];
    resume_matches("gan", "gan-conv", &args, 3);
}

#[test]
fn a_gan_resumed_mid_epoch_keeps_its_history_buffer_and_both_optimizers() {
    if !gpu_present() {
        return;
    }
    let args = [
        "--quick",
        "--epochs",
        "2",
        "--train-size",
        "400",
        "--no-judge",
    ];
    resume_matches("gan", "gan", &args, 6);
}

#[test]
fn ctrl_c_saves_at_the_next_step_and_resume_continues() {
    if !gpu_present() {
        return;
    }
    let dir = scratch("sigint");
    let mut child = Command::new(example("mnist"))
        .args(["--quick", "--epochs", "30", "--out"])
        .arg(&*dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mnist starts");
    // Wait for the first epoch to end, then interrupt.
    let stdout = child.stdout.take().expect("piped");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("text");
        seen.push(line.clone());
        if line.starts_with("epoch  1:") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("mnist ends");
    let seen = seen.join("\n");
    assert!(status.success(), "after Ctrl-C: {status:?}\n{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
    let ck = wgrad::checkpoint::read(dir.join("mnist.safetensors")).expect("a checkpoint");
    let epoch: usize = ck.metadata["wgrad.train.epoch"].parse().unwrap();
    let global: u64 = ck.metadata["wgrad.train.global_step"].parse().unwrap();
    assert!((1..30).contains(&epoch), "saved after epoch {epoch}");
    // The same options continue it: here for one more step, then the test hook stops it.
    let next = (global + 1).to_string();
    let d = dir.to_str().unwrap();
    let more = run(
        "mnist",
        &["--quick", "--epochs", "30", "--out", d, "--resume"],
        &[("WGRAD_INTERRUPT_AFTER_STEPS", next.as_str())],
    );
    assert!(more.status.success(), "{}", text(&more.stderr));
    let more = text(&more.stdout);
    assert!(
        more.contains("resumed from") && more.contains("interrupted"),
        "{more}"
    );
}

#[test]
fn the_gan_refuses_a_judge_holding_a_nan_or_scoring_below_90_percent() {
    if !gpu_present() {
        return;
    }
    use wgrad::nn::{Mlp, Module};
    let dir = scratch("judges");
    // An untrained classifier of the mnist example's shape: right one time in ten.
    let weak = dir.join("weak.safetensors");
    let cpu = wgrad::Device::cpu();
    let model = Mlp::new(&[784, 64, 10]).build(&cpu);
    wgrad::checkpoint::save(&weak, &model.params(), None).unwrap();
    // The same file with its first value made a NaN.
    let mut bytes = std::fs::read(&weak).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let first = 8 + header;
    bytes[first..first + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let nan = dir.join("nan.safetensors");
    std::fs::write(&nan, bytes).unwrap();
    let out_dir = dir.join("out");
    for (judge, wants) in [
        (
            &weak,
            vec!["below the 90%", "cargo run --release --example mnist"],
        ),
        (&nan, vec!["NaN", "refusing to load"]),
    ] {
        let out = run(
            "gan",
            &[
                "--quick",
                "--judge",
                judge.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ],
            &[],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", judge.display());
        for want in wants {
            assert!(err.contains(want), "{}: {err}", judge.display());
        }
        assert!(
            !text(&out.stdout).contains("epoch  1:"),
            "the GAN trained with a bad judge"
        );
    }
}

#[test]
fn the_custom_kernel_example_passes_its_own_checks_and_prints_its_timing() {
    if !gpu_present() {
        return;
    }
    let out = run("custom_kernel", &["--quick"], &[]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status.code(),
        text(&out.stderr)
    );
    // Two shaders validated, the reference against built-in ops (2 β × forward and gradient),
    // six GPU rows (four small enough for gradcheck), and both timings.
    let count = |what: &str| stdout.lines().filter(|l| l.contains(what)).count();
    assert_eq!(count("invocations per workgroup"), 2, "{stdout}");
    assert_eq!(count("  ok     max abs"), 4, "{stdout}");
    assert_eq!(count(" ok       ok         ok"), 4, "{stdout}");
    assert_eq!(count(" ok       ok         (row too large)"), 2, "{stdout}");
    for what in ["forward", "backward"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(what) && l.contains("GB/s"))
            .unwrap_or_else(|| panic!("no {what} timing in\n{stdout}"));
        let ratio: f64 = line
            .trim_end()
            .trim_end_matches('×')
            .rsplit(' ')
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no ratio in {line:?}"));
        assert!(ratio.is_finite() && ratio > 0.0, "{line}");
    }
    assert!(stdout.contains("every check passed"), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
}

#[test]
fn the_adversarial_and_xcov_quick_modes_train_both_models_and_write_their_tables() {
    if !gpu_present() {
        return;
    }
    let dir = scratch("quick-adversarial");
    let out = run(
        "adversarial",
        &["--quick", "--out", dir.to_str().unwrap()],
        &[],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for part in ["standard", "adversarial"] {
        assert_eq!(
            metrics(&dir.join(part)).len(),
            1,
            "{part}: one epoch, one row"
        );
    }
    for file in ["attacks.csv", "accuracy.png", "examples.png"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    // attacks.csv: ε, then accuracy under FGSM and PGD for each model. PGD, which starts where
    // FGSM's one step can go and takes twenty, is never the weaker attack, and at ε = 0 both are
    // the clean accuracy.
    let csv = std::fs::read_to_string(dir.join("attacks.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 7, "{csv}");
    for r in &rows {
        let slack = 1.0 / 300.0 + 1e-9;
        assert!(
            r[2] <= r[1] + slack && r[4] <= r[3] + slack,
            "PGD weaker than FGSM: {r:?}"
        );
        if r[0] == 0.0 {
            assert!(r[1] == r[2] && r[3] == r[4], "{r:?}");
        }
    }
    assert!(rows[6][1] < rows[0][1], "FGSM at 0.3 does no harm: {csv}");

    let dir = scratch("quick-xcov");
    let out = run(
        "xcov",
        &["--quick", "--no-judge", "--out", dir.to_str().unwrap()],
        &[],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for part in ["xcov", "plain"] {
        let rows = metrics(&dir.join(part));
        assert_eq!(rows.len(), 1, "{part}: one epoch, one row");
        assert!(
            rows[0]["test_xcov"] >= 0.0 && rows[0]["test_y_accuracy"] > 0.2,
            "{rows:?}"
        );
        for file in ["styles.png", "swaps.png"] {
            assert!(dir.join(part).join(file).is_file(), "{part}/{file} missing");
        }
    }
    assert!(stdout.contains("(no judge)"), "{stdout}");
}

#[test]
fn the_beyond_backprop_quick_mode_trains_every_rule_and_tabulates_them() {
    if !gpu_present() {
        return;
    }
    let dir = scratch("quick-beyond");
    let out = run(
        "beyond_backprop",
        &["--quick", "--out", dir.to_str().unwrap()],
        &[],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for rule in ["bp", "fa", "dfa", "dtp", "dtp-alternating"] {
        let rows = metrics(&dir.join(rule));
        assert_eq!(rows.len(), 1, "{rule}: one epoch, one row");
        let e = rows[0]["test_error"];
        assert!((0.0..0.9).contains(&e), "{rule}: test error {e}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{rule} ")))
            .unwrap_or_else(|| panic!("no table row for {rule} in\n{stdout}"));
        assert!(line.contains(&format!("{:.2}", 100.0 * e)), "{line}");
    }
    assert_eq!(metrics(&dir.join("hsic").join("format")).len(), 1);
    let angle = metrics(&dir.join("fa"))[0]["fa_angle_deg"];
    assert!((0.0..=180.0).contains(&angle), "FA angle {angle}");
    for file in ["test_error.png", "fa_angle.png"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
}

#[test]
fn the_neuroevolution_quick_mode_runs_both_searches_and_es_on_mnist() {
    if !gpu_present() {
        return;
    }
    let dir = scratch("quick-neuroevolution");
    let args = ["--quick", "--out", dir.to_str().unwrap()];
    let out = run("neuroevolution", &args, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for task in ["cartpole-ga", "cartpole-es"] {
        let saved = std::fs::read_to_string(dir.join(format!("{task}.txt"))).unwrap();
        let get = |key: &str| -> f64 {
            saved
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("{task}: no {key} in {saved}"))
        };
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{task} ")))
            .unwrap_or_else(|| panic!("no table row for {task} in\n{stdout}"));
        let generations = get("generations");
        assert!(
            (1.0..=5.0).contains(&generations),
            "{task}: {generations} generations"
        );
        assert!(row.contains(&format!(" {} ", get("evaluations"))), "{row}");
        let curve = std::fs::read_to_string(dir.join(format!("{task}.csv"))).unwrap();
        assert_eq!(
            curve.lines().count() as f64,
            generations + 1.0,
            "{task}: {curve}"
        );
    }
    let saved = std::fs::read_to_string(dir.join("mnist-es.txt")).unwrap();
    let accuracy: f64 = saved
        .lines()
        .find_map(|l| l.strip_prefix("test_accuracy ")?.parse().ok())
        .expect("a test accuracy");
    assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    assert!(
        stdout.contains(&format!("mnist-es: {:.2}% test accuracy", 100.0 * accuracy)),
        "{stdout}"
    );
    for file in ["cartpole.png", "mnist.png"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    // --resume reuses every finished task and prints the same table.
    let again = run("neuroevolution", &[&args[..], &["--resume"]].concat(), &[]);
    let again_out = text(&again.stdout);
    assert!(again.status.success(), "{again_out}");
    assert_eq!(again_out.matches("reused the finished result").count(), 3);
    let table = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                (l.starts_with("cartpole-") && !l.contains(':'))
                    || (l.starts_with("mnist-es: ") && l.contains("test accuracy"))
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(table(&again_out), table(&stdout));
}

#[test]
fn the_rbm_quick_mode_scores_each_rbm_by_ais_and_fine_tunes_the_dbn() {
    if !gpu_present() {
        return;
    }
    let dir = scratch("quick-rbm");
    let args = ["--quick", "--out", dir.to_str().unwrap()];
    let out = run("rbm", &args, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for model in ["cd1", "pcd"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{model} ")))
            .unwrap_or_else(|| panic!("no table row for {model} in\n{stdout}"));
        // name, epochs, recon, log Z, ±, err, test log-lik, ±, sem, train, …
        let f: Vec<f64> = row
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let (log_z, test_ll, train_ll) = (f[2], f[4], f[6]);
        assert!(log_z > 0.0 && test_ll < 0.0 && train_ll < 0.0, "{row}");
        let saved = std::fs::read_to_string(dir.join(model).join("ais.txt")).unwrap();
        let z: f64 = saved
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        assert!((z - log_z).abs() < 0.01, "{row} vs ais.txt {saved}");
        assert_eq!(
            metrics(&dir.join(model)).len(),
            1,
            "{model}: one epoch, one row"
        );
        for pic in ["filters", "samples"] {
            assert!(
                dir.join(format!("{pic}-{model}.png")).is_file(),
                "{pic}-{model}.png"
            );
        }
    }
    for name in ["dbn-finetuned", "random-init"] {
        let e = metrics(&dir.join(name))[0]["test_error"];
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}"));
        assert!(row.contains(&format!("{:.2}", 100.0 * e)), "{row}");
    }
    // --resume reuses the checkpoints and the AIS results: the same table.
    let again = run("rbm", &[&args[..], &["--resume"]].concat(), &[]);
    let again_out = text(&again.stdout);
    assert!(again.status.success(), "{again_out}");
    assert_eq!(again_out.matches("log Z reused").count(), 2, "{again_out}");
    let rows = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                ["cd1 ", "pcd ", "dbn-finetuned ", "random-init "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(rows(&again_out), rows(&stdout));
}
