//! Checkpoints as safetensors files (f32, little-endian), readable by PyTorch's
//! `safetensors.torch.load_file`. Model parameters keep their names (`0.weight`, as in a PyTorch
//! `Sequential`); optimizer state is stored as `optimizer.<name>` with the optimizer's kind and
//! step count in the metadata. Loading checks every name and shape before changing anything.
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
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::Tensor;
use crate::error::{Error, Result};
use crate::optim::Optimizer;

const OPTIMIZER: &str = "optimizer.";

/// Write `params` (and the optimizer's state) to `path`. The file is written beside the target
/// and renamed into place, so an interrupted save never leaves a half-written checkpoint.
pub fn save(
    path: impl AsRef<Path>,
    params: &[(String, Tensor)],
    optimizer: Option<&dyn Optimizer>,
) -> Result<()> {
    let path = path.as_ref();
    let mut named: Vec<(String, Tensor)> = params.to_vec();
    let mut meta = HashMap::from([("format".to_string(), "wgrad".to_string())]);
    if let Some(opt) = optimizer {
        named.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIMIZER}{n}"), t)),
        );
        meta.insert("optimizer".into(), opt.kind().into());
        meta.insert("optimizer.steps".into(), opt.steps().to_string());
    }
    let mut bytes = Vec::with_capacity(named.len());
    for (name, t) in &named {
        let values = t.to_vec()?;
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.push((name.clone(), t.shape().to_vec(), raw));
    }
    let views = bytes
        .iter()
        .map(|(n, shape, raw)| Ok((n.as_str(), TensorView::new(Dtype::F32, shape.clone(), raw)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| Error::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("safetensors.partial");
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The contents of a checkpoint file.
#[derive(Debug)]
pub struct Checkpoint {
    /// Every tensor by name: its shape and values.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// The file's metadata (`format`, `optimizer`, `optimizer.steps`, …).
    pub metadata: HashMap<String, String>,
}

/// Read and validate a checkpoint file (every tensor f32, sizes consistent).
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
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{name}` is {:?}; only F32 is supported",
                view.dtype()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
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
    let mismatch = |message: String| Error::CheckpointMismatch {
        path: path.to_path_buf(),
        message,
    };
    let mut wanted: Vec<(String, Tensor)> = params.to_vec();
    let mut steps = None;
    if let Some(opt) = &optimizer {
        let kind = ck.metadata.get("optimizer").map(String::as_str);
        if kind != Some(opt.kind()) {
            return Err(mismatch(format!(
                "it holds optimizer state of {kind:?}, not {:?}",
                opt.kind()
            )));
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
    let mut problems = Vec::new();
    for (name, t) in &wanted {
        match ck.tensors.get(name) {
            None => problems.push(format!("missing `{name}`")),
            Some((shape, _)) if shape.as_slice() != t.shape() => problems.push(format!(
                "`{name}` has shape {shape:?}, the model needs {:?}",
                t.shape()
            )),
            Some(_) => {}
        }
    }
    for name in ck.tensors.keys() {
        let known = wanted.iter().any(|(n, _)| n == name);
        if !known && !name.starts_with(OPTIMIZER) {
            problems.push(format!("unexpected `{name}`"));
        }
    }
    if !problems.is_empty() {
        return Err(mismatch(problems.join("; ")));
    }
    let device = match wanted.first() {
        Some((_, t)) => t.device().clone(),
        None => return Ok(()),
    };
    let mut values = Vec::with_capacity(wanted.len());
    for (name, t) in &wanted {
        let (shape, v) = &ck.tensors[name];
        values.push((t, Tensor::from_slice(&device, v, shape)?));
    }
    {
        let _no_grad = device.no_grad();
        for (t, v) in &values {
            t.assign(v);
        }
    }
    device.flush()?;
    if let (Some(opt), Some(n)) = (optimizer, steps) {
        opt.set_steps(n);
    }
    Ok(())
}
