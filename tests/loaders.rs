//! IDX and checkpoint loaders reject truncated, corrupted, oversized and mismatched files with
//! typed errors, and a failed checkpoint load leaves the model untouched.

use std::io::Write;
use std::path::PathBuf;

use wgrad::data::{Dataset, read_idx};
use wgrad::nn::{self, Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer, Sgd};
use wgrad::{Device, Error, Tensor, checkpoint};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrad-loaders-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn bad_file_message(r: wgrad::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::BadFile { message, .. }) => message,
        other => panic!("expected Error::BadFile, got {other:?}"),
    }
}

#[test]
fn idx_reads_raw_and_gzipped_files() {
    let bytes = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    for (name, content) in [("raw.idx", bytes.clone()), ("gz.idx.gz", gzip(&bytes))] {
        let p = tmp(name);
        std::fs::write(&p, content).unwrap();
        let idx = read_idx(&p).unwrap();
        assert_eq!(idx.dims, vec![2, 3]);
        assert_eq!(idx.data, vec![1, 2, 3, 4, 5, 6]);
    }
}

#[test]
fn idx_rejects_bad_files_with_the_reason() {
    let good = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "truncated header"),
        ("short header", vec![0, 0, 8], "truncated header"),
        (
            "wrong magic",
            [vec![0x12, 0x34], good[2..].to_vec()].concat(),
            "wrong magic",
        ),
        (
            "float elements",
            [vec![0, 0, 0x0D], good[3..].to_vec()].concat(),
            "element type 0x0d",
        ),
        ("no dims", vec![0, 0, 8, 0], "no dimensions"),
        (
            "truncated dims",
            vec![0, 0, 8, 2, 0, 0, 0, 2, 0],
            "truncated header",
        ),
        (
            "truncated data",
            good[..good.len() - 2].to_vec(),
            "truncated",
        ),
        (
            "trailing data",
            [good.clone(), vec![9]].concat(),
            "trailing",
        ),
        (
            "absurd size",
            idx_bytes(&[1_000_000, 1_000_000], &[1, 2, 3]),
            "absurd",
        ),
        (
            "huge but plausible size",
            idx_bytes(&[60_000, 28, 28], &[1, 2, 3]),
            "truncated",
        ),
    ];
    for (what, content, want) in cases {
        for gz in [false, true] {
            let p = tmp(&format!(
                "{}{}",
                what.replace(' ', "_"),
                if gz { ".gz" } else { "" }
            ));
            std::fs::write(&p, if gz { gzip(&content) } else { content.clone() }).unwrap();
            let msg = bad_file_message(read_idx(&p));
            assert!(
                msg.contains(want),
                "{what} (gzip {gz}): {msg:?} lacks {want:?}"
            );
        }
    }
    let mut corrupt = gzip(&good);
    let n = corrupt.len();
    corrupt[n / 2] ^= 0xFF;
    corrupt[n - 6] ^= 0xFF;
    let p = tmp("corrupt.gz");
    std::fs::write(&p, corrupt).unwrap();
    // Rejected, whichever check trips first (the stream, the CRC, or the garbage it decodes to).
    bad_file_message(read_idx(&p));
    match read_idx(tmp("does-not-exist")) {
        Err(Error::Io { .. }) => {}
        other => panic!("a missing file is an Io error, got {other:?}"),
    }
}

#[test]
fn images_and_labels_must_agree() {
    let images = tmp("img.idx");
    let labels = tmp("lab.idx");
    std::fs::write(&images, idx_bytes(&[3, 2, 2], &[0; 12])).unwrap();
    std::fs::write(&labels, idx_bytes(&[2], &[1, 2])).unwrap();
    let msg = bad_file_message(Dataset::from_idx(&images, &labels));
    assert!(msg.contains("2 labels for 3 images"), "{msg}");
    std::fs::write(&labels, idx_bytes(&[3], &[1, 2, 0])).unwrap();
    let ds = Dataset::from_idx(&images, &labels).unwrap();
    assert_eq!(
        (ds.len(), ds.sample_shape.clone(), ds.classes),
        (3, vec![2, 2], 3)
    );
}

fn model(dev: &Device, seed: u64) -> nn::Sequential {
    dev.manual_seed(seed);
    nn::Mlp::new(&[4, 3, 2])
        .activation(Activation::Tanh)
        .init(Init::XavierUniform)
        .build(dev)
}

fn values(m: &impl Module) -> Vec<Vec<f32>> {
    m.params()
        .iter()
        .map(|(_, p)| p.to_vec().unwrap())
        .collect()
}

#[test]
fn checkpoints_round_trip_parameters_and_optimizer_state() {
    let dev = Device::cpu();
    let m = model(&dev, 1);
    let mut opt = Adam::new(&m.params(), 0.01);
    let x = Tensor::randn(&dev, &[5, 4]);
    let y = Tensor::from_slice(&dev, &[0.0, 1.0, 1.0, 0.0, 1.0], &[5]).unwrap();
    for _ in 0..3 {
        opt.step(&m.forward(&x).cross_entropy(&y).backward())
            .unwrap();
    }
    let path = tmp("roundtrip.safetensors");
    checkpoint::save(&path, &m.params(), Some(&opt)).unwrap();
    let ck = checkpoint::read(&path).unwrap();
    assert!(
        ck.tensors.contains_key("0.weight")
            && ck.tensors.contains_key("optimizer.2.bias.exp_avg_sq")
    );
    assert_eq!(
        ck.metadata.get("optimizer").map(String::as_str),
        Some("adam")
    );

    let m2 = model(&dev, 99);
    let mut opt2 = Adam::new(&m2.params(), 0.01);
    assert_ne!(values(&m2), values(&m));
    checkpoint::load(&path, &m2.params(), Some(&mut opt2)).unwrap();
    assert_eq!(values(&m2), values(&m));
    assert_eq!(opt2.steps(), 3);
    // Training continues from the loaded state (to f32 rounding: the reference keeps f64, a
    // checkpoint holds f32).
    opt.step(&m.forward(&x).cross_entropy(&y).backward())
        .unwrap();
    opt2.step(&m2.forward(&x).cross_entropy(&y).backward())
        .unwrap();
    for (a, b) in values(&m2).iter().zip(values(&m)) {
        let (a, b): (Vec<f64>, Vec<f64>) = (
            a.iter().map(|&v| v as f64).collect(),
            b.iter().map(|&v| v as f64).collect(),
        );
        let c = wgrad::check::Comparison::new(&a, &b, 1e-6, 1e-5);
        assert!(c.pass, "after one more step: {c}");
    }
}

#[test]
fn a_mismatched_or_broken_checkpoint_is_an_error_that_changes_nothing() {
    let dev = Device::cpu();
    let m = model(&dev, 1);
    let path = tmp("small.safetensors");
    checkpoint::save(&path, &m.params(), None).unwrap();

    let other = nn::Mlp::new(&[4, 5, 2])
        .activation(Activation::Tanh)
        .init(Init::XavierUniform)
        .build(&dev);
    let before = values(&other);
    match checkpoint::load(&path, &other.params(), None) {
        Err(Error::CheckpointMismatch { message, .. }) => {
            assert!(
                message.contains("`0.weight` has shape [3, 4], the model needs [5, 4]"),
                "{message}"
            )
        }
        r => panic!("expected a mismatch, got {r:?}"),
    }
    assert_eq!(values(&other), before, "a failed load changes nothing");

    let renamed: Vec<(String, Tensor)> = m
        .params()
        .into_iter()
        .map(|(n, t)| (format!("enc.{n}"), t))
        .collect();
    match checkpoint::load(&path, &renamed, None) {
        Err(Error::CheckpointMismatch { message, .. }) => {
            assert!(
                message.contains("missing `enc.0.weight`")
                    && message.contains("unexpected `0.weight`"),
                "{message}"
            )
        }
        r => panic!("expected a mismatch, got {r:?}"),
    }
    let mut sgd = Sgd::new(&m.params(), 0.1);
    match checkpoint::load(&path, &m.params(), Some(&mut sgd)) {
        Err(Error::CheckpointMismatch { message, .. }) => {
            assert!(message.contains("optimizer"), "{message}")
        }
        r => panic!("expected a mismatch, got {r:?}"),
    }

    let bytes = std::fs::read(&path).unwrap();
    let broken = tmp("truncated.safetensors");
    std::fs::write(&broken, &bytes[..bytes.len() - 10]).unwrap();
    let before = values(&m);
    assert!(matches!(
        checkpoint::load(&broken, &m.params(), None),
        Err(Error::BadFile { .. })
    ));
    std::fs::write(&broken, b"not a checkpoint at all").unwrap();
    assert!(matches!(
        checkpoint::load(&broken, &m.params(), None),
        Err(Error::BadFile { .. })
    ));
    let mut absurd = (u64::MAX / 2).to_le_bytes().to_vec();
    absurd.extend(b"{}");
    std::fs::write(&broken, absurd).unwrap();
    assert!(matches!(
        checkpoint::load(&broken, &m.params(), None),
        Err(Error::BadFile { .. })
    ));
    assert_eq!(values(&m), before);
}

#[test]
fn a_checkpoint_never_holds_a_nan_in_either_direction() {
    let dev = Device::cpu();
    let path = tmp("nan-guard.safetensors");
    let m = model(&dev, 3);
    checkpoint::save(&path, &m.params(), None).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Saving a parameter that holds an infinity is refused, naming it; the file stays as it was.
    let bad = Tensor::from_slice(&dev, &[1.0, f32::INFINITY, 3.0], &[3]).unwrap();
    match checkpoint::save(&path, &[("blown.up".to_string(), bad)], None) {
        Err(Error::NonFinite { message, .. }) => {
            assert!(
                message.contains("`blown.up`") && message.contains("element 1"),
                "{message}"
            )
        }
        other => panic!("saving an infinity: {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // A file holding a NaN (its first value overwritten) is refused on reading, naming it.
    let mut bytes = before.clone();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..8 + header + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let other = model(&dev, 4);
    let kept = values(&other);
    match checkpoint::load(&path, &other.params(), None) {
        Err(Error::NonFinite { message, .. }) => {
            assert!(
                message.contains("NaN") && message.contains("refusing to load"),
                "{message}"
            )
        }
        e => panic!("loading a NaN: {e:?}"),
    }
    assert_eq!(values(&other), kept, "a refused load changed the model");
}

#[test]
fn the_vendored_uci_digits_load_as_8x8_images_in_0_1() {
    let d = Dataset::uci_digits("data/uci-digits/digits.csv.gz").unwrap();
    assert_eq!(
        (d.len(), d.sample_shape.clone(), d.classes),
        (1797, vec![8, 8], 10)
    );
    assert_eq!(d.labels[..5], [0.0, 1.0, 2.0, 3.0, 4.0]);
    // The file's first line: 0,0,5,13,9,1,0,0, …
    assert_eq!(d.inputs[..4], [0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0]);
    assert!(d.inputs.iter().all(|v| (0.0..=1.0).contains(v)));
    let mut counts = [0usize; 10];
    for &l in &d.labels {
        counts[l as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (170..=190).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn the_digits_csv_reader_names_the_bad_line() {
    let good = format!("{},3", ["16"; 64].join(","));
    let cases: [(String, &str); 6] = [
        (format!("{},3", ["1"; 63].join(",")), "64 fields, want 65"),
        (
            format!("{},3", ["17"; 64].join(",")),
            "pixel 1 is 17, outside 0 … 16",
        ),
        (
            format!("{},10", ["0"; 64].join(",")),
            "the label is 10, outside 0 … 9",
        ),
        (
            format!("{},-1", ["0"; 64].join(",")),
            "the label is `-1`, not an integer",
        ),
        (
            format!("{},2.5", ["0"; 64].join(",")),
            "the label is `2.5`, not an integer",
        ),
        (
            format!("{},x,{},1", ["0"; 10].join(","), ["0"; 53].join(",")),
            "pixel 11 is `x`",
        ),
    ];
    for (bad, why) in cases {
        let text = format!("{good}\n\n{bad}\n{good}\n");
        let path = tmp("digits.csv");
        std::fs::write(&path, &text).unwrap();
        match Dataset::uci_digits(&path) {
            Err(Error::BadLine { line, message, .. }) => {
                assert_eq!(line, 3, "{message}");
                assert!(message.contains(why), "{message:?} should say {why:?}");
            }
            other => panic!("{why}: got {other:?}"),
        }
        // The same text gzipped fails alike.
        std::fs::write(&path, gzip(text.as_bytes())).unwrap();
        assert!(matches!(
            Dataset::uci_digits(&path),
            Err(Error::BadLine { line: 3, .. })
        ));
    }
    let path = tmp("empty.csv");
    std::fs::write(&path, "\n\n").unwrap();
    assert!(matches!(
        Dataset::uci_digits(&path),
        Err(Error::BadFile { .. })
    ));
    assert!(matches!(
        Dataset::uci_digits(tmp("missing.csv")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn framing_resizes_bilinearly_like_torch_and_centres_on_a_blank_canvas() {
    let d = Dataset {
        inputs: vec![0.0, 1.0, 2.0, 3.0],
        labels: vec![7.0],
        sample_shape: vec![2, 2],
        classes: 10,
    };
    // torch.nn.functional.interpolate(x, size=4, mode="bilinear", align_corners=False).
    let want = [
        [0.0, 0.25, 0.75, 1.0],
        [0.5, 0.75, 1.25, 1.5],
        [1.5, 1.75, 2.25, 2.5],
        [2.0, 2.25, 2.75, 3.0],
    ];
    let f = d.framed(4, 6);
    assert_eq!(
        (f.sample_shape.clone(), f.labels.clone()),
        (vec![6, 6], vec![7.0])
    );
    for r in 0..6 {
        for c in 0..6 {
            let inside = (1..5).contains(&r) && (1..5).contains(&c);
            let expected = if inside { want[r - 1][c - 1] } else { 0.0 };
            let got = f.inputs[r * 6 + c];
            assert!(
                (got - expected).abs() < 1e-6,
                "pixel ({r}, {c}): {got}, want {expected}"
            );
        }
    }
    // The vendored digits keep their ink's total in proportion to the box's area.
    let uci = Dataset::uci_digits("data/uci-digits/digits.csv.gz").unwrap();
    let framed = uci.slice(0, 50).framed(20, 28);
    for (i, (a, b)) in uci
        .inputs
        .chunks(64)
        .zip(framed.inputs.chunks(784))
        .enumerate()
    {
        let (sa, sb) = (a.iter().sum::<f32>() / 64.0, b.iter().sum::<f32>() / 400.0);
        assert!(
            (sa - sb).abs() < 0.15 * sa.max(0.05),
            "digit {i}: mean ink {sa} → {sb}"
        );
    }
}
