//! Checkpoints as safetensors files, readable by PyTorch's `safetensors.torch.load_file`: F32
//! tensors from a GPU, F64 from the CPU reference (each exactly as the device holds it, so a
//! resumed run continues from the very same numbers). Model parameters keep their names
//! (`0.weight`, as in a PyTorch `Sequential`); optimizer state is stored as `optimizer.<name>`
//! with the optimizer's kind and step count in the metadata. Loading checks every name and shape
//! before changing anything.
//!
//! Files are never left half-written and never hold a NaN: [`write()`] refuses non-finite values
//! (naming the tensor), writes a temporary file beside the target, syncs it to disk and renames
//! it into place, so a crash at any moment leaves the previous checkpoint whole; [`parse`]
//! refuses a file holding a non-finite value the same way. Setting the environment variable
//! `WGRAD_FAILPOINT=checkpoint-rename` aborts the process between the sync and the rename, so
//! tests can show that the previous file survives.
//!
//! ```
//! use wgrad::nn::{Mlp, Module};
//! # fn main() -> wgrad::Result<()> {
//! let dev = wgrad::Device::cpu();
//! let path = std::env::temp_dir().join(format!("wgrad-doc-{}.safetensors", std::process::id()));
//! let model = Mlp::new(&[4, 3, 2]).build(&dev);
//! wgrad::checkpoint::save(&path, &model.params(), None)?;
//! let copy = Mlp::new(&[4, 3, 2]).build(&dev); // other weights, same names and shapes
//! wgrad::checkpoint::load(&path, &copy.params(), None)?;
//! let (a, b) = (&model.params()[0].1, &copy.params()[0].1);
//! assert_eq!(a.to_vec()?, b.to_vec()?);
//! # std::fs::remove_file(&path).ok();
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::Tensor;
use crate::error::{Error, Result};
use crate::optim::Optimizer;

const OPTIMIZER: &str = "optimizer.";

/// Write `params` (and the optimizer's state) to `path` (see [`write()`]).
pub fn save(
    path: impl AsRef<Path>,
    params: &[(String, Tensor)],
    optimizer: Option<&dyn Optimizer>,
) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = params.to_vec();
    let mut meta = HashMap::new();
    if let Some(opt) = optimizer {
        named.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIMIZER}{n}"), t)),
        );
        meta.insert("optimizer".into(), opt.kind().into());
        meta.insert("optimizer.steps".into(), opt.steps().to_string());
    }
    write(path, &named, meta)
}

/// Write named tensors and metadata (plus `format: wgrad`) to `path` atomically: every value is
/// read back and checked finite first (a NaN or infinity is an error naming the tensor, and
/// nothing is written), then the file is written to a new `<path>.partial.<pid>.<n>` (unique,
/// so two writers never share it), synced, renamed over `path`, and the folder synced, so
/// `path` holds either the previous checkpoint or this one. A failed write removes its
/// temporary file.
pub fn write(
    path: impl AsRef<Path>,
    named: &[(String, Tensor)],
    mut metadata: HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    metadata.insert("format".to_string(), "wgrad".to_string());
    let mut encoded = Vec::with_capacity(named.len());
    for (name, t) in named {
        let values = t.to_vec_f64()?;
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                path: path.to_path_buf(),
                message: format!(
                    "refusing to save: tensor `{name}` holds {v} at element {i}; the file \
                     on disk was left as it was"
                ),
            });
        }
        // Exactly what the device holds: f32 on a GPU, f64 on the CPU reference.
        let (dtype, raw): (Dtype, Vec<u8>) = if t.device().is_gpu() {
            let raw = values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect();
            (Dtype::F32, raw)
        } else {
            (
                Dtype::F64,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        };
        encoded.push((name.as_str(), t.shape().to_vec(), dtype, raw));
    }
    let bad = |e: safetensors::SafeTensorError| Error::BadFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let views = encoded
        .iter()
        .map(|(n, shape, dtype, raw)| Ok((*n, TensorView::new(*dtype, shape.clone(), raw)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(bad)?;
    let data = safetensors::serialize(views, Some(metadata)).map_err(bad)?;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".partial.{}.{n}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let io = |what: &Path| {
        let what = what.to_path_buf();
        move |source| Error::Io { path: what, source }
    };
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(&data).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if std::env::var("WGRAD_FAILPOINT").as_deref() == Ok("checkpoint-rename") {
        eprintln!(
            "WGRAD_FAILPOINT=checkpoint-rename: aborting between writing {} and renaming it",
            tmp.display()
        );
        std::process::abort();
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    sync_folder(path)
}

/// Make a rename into `path`'s folder durable by syncing the folder (on Unix; elsewhere folders
/// cannot be opened for it).
fn sync_folder(path: &Path) -> Result<()> {
    if cfg!(unix) {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// The contents of a checkpoint file.
#[derive(Debug)]
pub struct Checkpoint {
    /// Every tensor by name: its shape and values (F32 files widened to f64 exactly).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
    /// The file's metadata (`format`, `optimizer`, `optimizer.steps`, …).
    pub metadata: HashMap<String, String>,
}

impl Checkpoint {
    /// Metadata value `key`, parsed; an error naming the key and the file (`path`) if it is
    /// missing or does not parse.
    pub fn meta<T: std::str::FromStr>(&self, path: &Path, key: &str) -> Result<T> {
        self.metadata
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::BadFile {
                path: path.to_path_buf(),
                message: format!("its metadata has no valid `{key}`"),
            })
    }

    /// Overwrite each of `wanted`'s tensors with the checkpoint's tensor of the same name (it
    /// may hold others too; `path` names it in errors). Every name and shape is checked first; on
    /// any mismatch nothing is changed and the error lists what differs.
    pub fn assign(&self, path: &Path, wanted: &[(String, Tensor)]) -> Result<()> {
        self.assign_checked(path, wanted, Vec::new())
    }

    /// The tensors held that `wanted` does not name, optimizer state (`optimizer.…`) aside.
    pub fn unexpected(&self, wanted: &[(String, Tensor)]) -> Vec<String> {
        self.tensors
            .keys()
            .filter(|name| !name.starts_with(OPTIMIZER) && !wanted.iter().any(|(n, _)| n == *name))
            .map(|name| format!("unexpected `{name}`"))
            .collect()
    }

    fn assign_checked(
        &self,
        path: &Path,
        wanted: &[(String, Tensor)],
        mut problems: Vec<String>,
    ) -> Result<()> {
        for (name, t) in wanted {
            match self.tensors.get(name) {
                None => problems.push(format!("missing `{name}`")),
                Some((shape, _)) if shape.as_slice() != t.shape() => problems.push(format!(
                    "`{name}` has shape {shape:?}, the model needs {:?}",
                    t.shape()
                )),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(Error::CheckpointMismatch {
                path: path.to_path_buf(),
                message: problems.join("; "),
            });
        }
        let Some((_, first)) = wanted.first() else {
            return Ok(());
        };
        let device = first.device().clone();
        let mut values = Vec::with_capacity(wanted.len());
        for (name, t) in wanted {
            let (shape, v) = &self.tensors[name];
            values.push((t, Tensor::from_f64(&device, v, shape)?));
        }
        {
            let _no_grad = device.no_grad();
            for (t, v) in &values {
                t.assign(v);
            }
        }
        device.flush()
    }
}

/// Read and validate a checkpoint file (every tensor F32 or F64, sizes consistent, every value
/// finite).
pub fn read(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Validate and decode the bytes of a checkpoint file (`path` only names the source in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let bad = |message: String| Error::BadFile {
        path: path.to_path_buf(),
        message,
    };
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
            other => {
                return Err(bad(format!(
                    "tensor `{name}` is {other:?}; only F32 and F64 are supported"
                )));
            }
        };
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                path: path.to_path_buf(),
                message: format!("tensor `{name}` holds {v} at element {i}; refusing to load it"),
            });
        }
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok(Checkpoint {
        tensors,
        metadata: header.metadata().clone().unwrap_or_default(),
    })
}

/// Load `path` into `params` (and the optimizer's state). Every name and shape is checked
/// first; on any mismatch nothing is changed and the error lists what differs.
pub fn load(
    path: impl AsRef<Path>,
    params: &[(String, Tensor)],
    optimizer: Option<&mut dyn Optimizer>,
) -> Result<()> {
    let path = path.as_ref();
    let ck = read(path)?;
    let mut wanted: Vec<(String, Tensor)> = params.to_vec();
    let mut steps = None;
    if let Some(opt) = &optimizer {
        let kind = ck.metadata.get("optimizer").map(String::as_str);
        if kind != Some(opt.kind()) {
            return Err(Error::CheckpointMismatch {
                path: path.to_path_buf(),
                message: format!("it holds optimizer state of {kind:?}, not {:?}", opt.kind()),
            });
        }
        wanted.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIMIZER}{n}"), t)),
        );
        steps = ck
            .metadata
            .get("optimizer.steps")
            .and_then(|s| s.parse::<u64>().ok());
    }
    ck.assign_checked(path, &wanted, ck.unexpected(&wanted))?;
    if let (Some(opt), Some(n)) = (optimizer, steps) {
        opt.set_steps(n);
    }
    Ok(())
}
