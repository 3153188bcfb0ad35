//! A deterministic mini-fuzzer for the two readers of untrusted bytes: IDX files (raw and
//! gzipped) and safetensors checkpoints. Real small inputs are mutated — bit flips, byte
//! overwrites, truncations, insertions, huge sizes written into headers — and every result must
//! be `Ok` with consistent sizes or `Error::BadFile`: never a panic, never a large allocation.
//! A counting allocator measures the largest single allocation. The `fuzz/` crate holds the
//! cargo-fuzz targets for the same two readers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use wgrad::data::{Encoding, parse_idx};
use wgrad::nn::{self, Activation, Init, Module};
use wgrad::optim::{Adam, Optimizer};
use wgrad::{Device, Error, Tensor, checkpoint};

/// The system allocator, remembering the largest single request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No input here is over 30 kB; the IDX reader reserves at most 1 MiB ahead of the data it has
/// read. Anything near the sizes headers claim (gigabytes to 10¹² elements) would show here.
const ALLOCATION_BOUND: usize = 4 << 20;

const ITERATIONS: usize = 3000;

/// xorshift64*: a fixed, dependency-free sequence, so every run tries the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Sizes a header might claim: edges of u32/u64 and 10¹² (as bytes of the right width).
const HUGE: [u64; 7] = [
    0,
    1 << 31,
    u32::MAX as u64,
    1_000_000_000_000,
    u64::MAX / 2,
    u64::MAX,
    1 << 40,
];

/// One mutation of `seed`; `sizes` are offsets of size fields worth overwriting, with their
/// width and byte order (true for big-endian).
fn mutate(seed: &[u8], sizes: &[(usize, usize, bool)], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut b = seed.to_vec();
    let what = match rng.below(6) {
        0 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            format!("{flips} bit flips")
        }
        1 => {
            let i = rng.below(b.len());
            b[i] = [0x00, 0xff, 0x7f, 0x80, rng.next() as u8][rng.below(5)];
            format!("byte {i} set to {:#04x}", b[i])
        }
        2 => {
            let n = rng.below(b.len());
            b.truncate(n);
            format!("truncated to {n} bytes")
        }
        3 => {
            let (at, width, big) = sizes[rng.below(sizes.len())];
            let v = HUGE[rng.below(HUGE.len())];
            let bytes: Vec<u8> = match (width, big) {
                (4, true) => (v as u32).to_be_bytes().to_vec(),
                (4, false) => (v as u32).to_le_bytes().to_vec(),
                (_, true) => v.to_be_bytes().to_vec(),
                (_, false) => v.to_le_bytes().to_vec(),
            };
            let end = (at + bytes.len()).min(b.len());
            b[at..end].copy_from_slice(&bytes[..end - at]);
            format!("size field at {at} set to {v}")
        }
        4 => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(16);
            let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, junk);
            format!("{n} bytes inserted at {i}")
        }
        _ => {
            let i = rng.below(b.len());
            let n = rng.below(b.len() - i);
            let chunk = b[i..i + n].to_vec();
            b.extend(chunk);
            format!("{n} bytes from {i} appended")
        }
    };
    (b, what)
}

/// Run `parse` on `input`, failing (with `what`) on a panic, a large allocation or an error
/// other than `BadFile`; returns whether it parsed.
fn survive<T>(what: &str, input: &[u8], parse: impl FnOnce(&[u8]) -> wgrad::Result<T>) -> bool {
    let r = panic::catch_unwind(AssertUnwindSafe(|| parse(input)))
        .unwrap_or_else(|_| panic!("{what}: the reader panicked on {} bytes", input.len()));
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= ALLOCATION_BOUND,
        "{what}: an allocation of {largest} bytes (bound {ALLOCATION_BOUND})"
    );
    match r {
        Ok(_) => true,
        Err(Error::BadFile { .. }) => false,
        Err(e) => panic!("{what}: expected Ok or BadFile, got {e}"),
    }
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(data);
    b
}

/// An IDX file that parsed must hold exactly as many values as its dims say.
fn consistent(i: wgrad::data::Idx) -> wgrad::Result<()> {
    let n: usize = i.dims.iter().product();
    assert_eq!(
        i.data.len(),
        n,
        "data length disagrees with dims {:?}",
        i.dims
    );
    Ok(())
}

fn parse_raw(bytes: &[u8]) -> wgrad::Result<()> {
    consistent(parse_idx(Path::new("fuzz.idx"), bytes, Encoding::Raw)?)
}

fn parse_gz(bytes: &[u8]) -> wgrad::Result<()> {
    let gz = flate2::read::GzDecoder::new(bytes);
    consistent(parse_idx(Path::new("fuzz.idx.gz"), gz, Encoding::Gzip)?)
}

fn parse_checkpoint(bytes: &[u8]) -> wgrad::Result<()> {
    let ck = checkpoint::parse(Path::new("fuzz.safetensors"), bytes)?;
    for (name, (shape, values)) in &ck.tensors {
        let n: usize = shape.iter().product();
        assert_eq!(
            values.len(),
            n,
            "`{name}` holds {} values for {shape:?}",
            values.len()
        );
    }
    Ok(())
}

#[test]
fn idx_reader_survives_mutated_files() {
    let raw = idx(&[3, 4, 5], &(0..60).collect::<Vec<u8>>());
    // The real MNIST test labels (gzipped), as distributed.
    let labels = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/mnist/t10k-labels-idx1-ubyte.gz"
    ))
    .unwrap();
    assert!(survive("raw seed", &raw, parse_raw));
    assert!(survive("gzip seed", &labels, parse_gz));
    let dims: Vec<(usize, usize, bool)> = (0..3).map(|d| (4 + 4 * d, 4, true)).collect();
    let mut rng = Rng(0x5eed_1d0c);
    let (mut ok, mut rejected) = (0, 0);
    for i in 0..ITERATIONS {
        let (input, what) = mutate(&raw, &dims, &mut rng);
        let parsed = survive(&format!("raw #{i}: {what}"), &input, parse_raw);
        if parsed {
            ok += 1
        } else {
            rejected += 1
        }
        if i % 4 == 0 {
            let (input, what) = mutate(&labels, &[(0, 4, true)], &mut rng);
            survive(&format!("gzip #{i}: {what}"), &input, parse_gz);
        }
    }
    assert!(
        ok > 0 && rejected > ITERATIONS / 2,
        "{ok} parsed, {rejected} rejected"
    );
}

/// A small real checkpoint: an MLP's parameters and Adam's state after one step.
fn checkpoint_bytes() -> Vec<u8> {
    let dev = Device::cpu();
    dev.manual_seed(2);
    let m = nn::Mlp::new(&[4, 3, 2])
        .activation(Activation::Tanh)
        .init(Init::XavierUniform)
        .build(&dev);
    let mut opt = Adam::new(&m.params(), 0.01);
    let x = Tensor::randn(&dev, &[5, 4]);
    opt.step(&m.forward(&x).square().mean_all().backward())
        .unwrap();
    // One file per call: tests run in parallel threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wgrad-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("seed-{call}.safetensors"));
    checkpoint::save(&path, &m.params(), Some(&opt)).unwrap();
    std::fs::read(&path).unwrap()
}

/// `bytes` with its JSON header rewritten by `edit` and the header length fixed up.
fn with_header(bytes: &[u8], edit: impl FnOnce(&str) -> String) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = edit(std::str::from_utf8(&bytes[8..8 + n]).unwrap());
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn checkpoint_reader_survives_mutated_files() {
    let seed = checkpoint_bytes();
    assert!(survive("seed", &seed, parse_checkpoint));
    let mut rng = Rng(0xc4ec_4b01);
    let (mut ok, mut rejected) = (0, 0);
    for i in 0..ITERATIONS {
        let (input, what) = if i % 3 == 0 {
            // Rewrite one number in the header (a shape, an offset) to something huge.
            let huge = ["1000000000000", "4294967296", "18446744073709551615", "0"][rng.below(4)];
            let k = rng.below(40);
            let input = with_header(&seed, |h| {
                let digits: Vec<usize> = h
                    .char_indices()
                    .filter(|(j, c)| {
                        c.is_ascii_digit() && !h[..*j].ends_with(|p: char| p.is_ascii_digit())
                    })
                    .map(|(j, _)| j)
                    .collect();
                let at = digits[k % digits.len()];
                let end = h[at..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(h.len(), |e| at + e);
                format!("{}{huge}{}", &h[..at], &h[end..])
            });
            (input, format!("number {k} of the header set to {huge}"))
        } else {
            mutate(&seed, &[(0, 8, false)], &mut rng)
        };
        if survive(&format!("#{i}: {what}"), &input, parse_checkpoint) {
            ok += 1
        } else {
            rejected += 1
        }
    }
    assert!(
        ok > 0 && rejected > ITERATIONS / 2,
        "{ok} parsed, {rejected} rejected"
    );
}

#[test]
fn headers_claiming_10_to_the_12_elements_allocate_nothing_and_load_nothing() {
    let m = Device::cpu();
    let claim = idx(&[1_000_000, 1_000_000], &[1, 2, 3]);
    assert!(!survive("IDX of 10¹² elements", &claim, parse_raw));
    let claim = idx(&[65_536, 65_536], &[1, 2, 3]); // 2³², the most an IDX file may declare
    assert!(!survive("IDX of 2³² elements", &claim, parse_raw));

    let seed = checkpoint_bytes();
    let absurd = with_header(&seed, |h| h.replacen("[3,4]", "[1000000,1000000]", 1));
    assert_ne!(absurd, seed, "the seed has a [3,4] weight");
    assert!(!survive(
        "a tensor of 10¹² elements",
        &absurd,
        parse_checkpoint
    ));
    // The seed comes from the CPU reference, so its tensors are F64; I64 has the same width.
    let i64s = with_header(&seed, |h| h.replacen("F64", "I64", 1));
    assert_ne!(i64s, seed, "the seed holds F64 tensors");
    match checkpoint::parse(Path::new("i64"), &i64s) {
        Err(Error::BadFile { message, .. }) => {
            assert!(message.contains("only F32 and F64"), "{message}")
        }
        other => panic!("expected BadFile, got {other:?}"),
    }

    // Loading the absurd file into a model changes nothing.
    m.manual_seed(2);
    let model = nn::Mlp::new(&[4, 3, 2])
        .activation(Activation::Tanh)
        .init(Init::XavierUniform)
        .build(&m);
    let before: Vec<Vec<f32>> = model
        .params()
        .iter()
        .map(|(_, p)| p.to_vec().unwrap())
        .collect();
    let path = std::env::temp_dir().join(format!(
        "wgrad-fuzz-absurd-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, &absurd).unwrap();
    assert!(matches!(
        checkpoint::load(&path, &model.params(), None),
        Err(Error::BadFile { .. })
    ));
    let after: Vec<Vec<f32>> = model
        .params()
        .iter()
        .map(|(_, p)| p.to_vec().unwrap())
        .collect();
    assert_eq!(after, before, "a failed load changes nothing");
}
