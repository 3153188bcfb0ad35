//! Data: IDX files, the UCI digits' CSV, labelled image sets, normalisation, seeded shuffling and batching.

mod csv;
mod idx;

use std::path::Path;

pub use idx::{Encoding, Idx, parse as parse_idx, read_idx};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::{Device, Tensor};

/// Labelled samples held on the host as f32: `len()` samples of `sample_shape` each.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Every sample's values, one sample after another.
    pub inputs: Vec<f32>,
    /// One integer label per sample, as f32.
    pub labels: Vec<f32>,
    /// The shape of one sample (`[28, 28]`, or `[784]` once flattened).
    pub sample_shape: Vec<usize>,
    /// Number of classes (largest label + 1).
    pub classes: usize,
}

/// One rank's part of every batch in data-parallel training: the batch's samples `rank·b/ranks ..
/// (rank+1)·b/ranks` of a batch of `b`, so the ranks together read each batch of the one global
/// order exactly once, whatever their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This rank, from 0.
    pub rank: usize,
    /// The number of ranks (at least 1).
    pub ranks: usize,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard::ALL
    }
}

impl Shard {
    /// The whole batch: one process.
    pub const ALL: Shard = Shard { rank: 0, ranks: 1 };

    /// The range of a batch of `b` samples that this rank reads.
    #[track_caller]
    pub fn range(&self, b: usize) -> std::ops::Range<usize> {
        assert!(
            self.ranks > 0 && self.rank < self.ranks,
            "Shard: rank {} is not below the number of ranks {}",
            self.rank,
            self.ranks
        );
        self.rank * b / self.ranks..(self.rank + 1) * b / self.ranks
    }
}

/// Read a UCI digits CSV file, gzipped or not (detected by its magic bytes); pixels scaled to
/// [0, 1] (level / 16), images `[8, 8]`. See [`parse_digits`] for the format.
pub fn read_digits(path: impl AsRef<Path>) -> Result<Dataset> {
    csv::read(path.as_ref()).map(digits_dataset)
}

/// Parse UCI digits CSV text from any reader (`path` only names the source in errors). Every
/// line must hold 65 comma-separated integers: 64 grey levels in 0 … 16 (an 8×8 image, row by
/// row), then a label in 0 … 9; blank lines are skipped. An error ([`Error::BadLine`]) names the
/// line and what is wrong with it.
pub fn parse_digits(path: &Path, r: impl std::io::Read) -> Result<Dataset> {
    csv::parse(path, r).map(digits_dataset)
}

fn digits_dataset(d: csv::Digits) -> Dataset {
    Dataset {
        inputs: d.pixels,
        labels: d.labels,
        sample_shape: vec![8, 8],
        classes: 10,
    }
}

/// MNIST's training or test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

impl Dataset {
    /// Images and labels from two IDX files; pixels scaled to [0, 1].
    pub fn from_idx(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let im = read_idx(images)?;
        let lb = read_idx(labels)?;
        let mismatch = |message: String| Error::BadFile {
            path: labels.to_path_buf(),
            message,
        };
        if lb.dims.len() != 1 {
            return Err(mismatch(format!(
                "labels must have one dimension, got {:?}",
                lb.dims
            )));
        }
        if im.dims[0] != lb.dims[0] {
            return Err(mismatch(format!(
                "{} labels for {} images in {}",
                lb.dims[0],
                im.dims[0],
                images.display()
            )));
        }
        let classes = lb.data.iter().copied().max().map_or(0, |m| m as usize + 1);
        Ok(Dataset {
            inputs: im.data.iter().map(|&p| p as f32 / 255.0).collect(),
            labels: lb.data.iter().map(|&l| l as f32).collect(),
            sample_shape: im.dims[1..].to_vec(),
            classes,
        })
    }

    /// MNIST from `dir` (files named as distributed, gzipped or not).
    pub fn mnist(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
        let dir = dir.as_ref();
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let find = |stem: String| {
            let gz = dir.join(format!("{stem}.gz"));
            if gz.exists() { gz } else { dir.join(stem) }
        };
        Dataset::from_idx(
            find(format!("{prefix}-images-idx3-ubyte")),
            find(format!("{prefix}-labels-idx1-ubyte")),
        )
    }

    /// The UCI optical handwritten digits (`data/uci-digits/digits.csv.gz`: 1,797 digits of
    /// 8×8 pixels, written by 13 people): see [`read_digits`].
    pub fn uci_digits(path: impl AsRef<Path>) -> Result<Dataset> {
        read_digits(path)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample.
    pub fn sample_size(&self) -> usize {
        crate::shape::numel(&self.sample_shape)
    }

    /// The same set with each sample flattened to one dimension (inputs for an MLP).
    pub fn flattened(mut self) -> Dataset {
        self.sample_shape = vec![self.sample_size()];
        self
    }

    /// The same set with each 2-D sample `[h, w]` as one channel `[1, h, w]` (inputs for a
    /// convnet, whose layers read `[n, c, h, w]`).
    #[track_caller]
    pub fn single_channel(mut self) -> Dataset {
        assert!(
            self.sample_shape.len() == 2,
            "single_channel: samples of shape {:?} are not 2-D images",
            self.sample_shape
        );
        self.sample_shape.insert(0, 1);
        self
    }

    /// Every 2-D sample resized to `side`×`side` by bilinear interpolation (sample centres
    /// aligned, as torch's `interpolate(mode="bilinear", align_corners=False)`) and centred on a
    /// `canvas`×`canvas` zero background: `uci.framed(20, 28)` draws the 8×8 UCI digits in a
    /// 20×20 box of a 28×28 image, as MNIST's digits are drawn.
    #[track_caller]
    pub fn framed(&self, side: usize, canvas: usize) -> Dataset {
        let &[h, w] = self.sample_shape.as_slice() else {
            panic!(
                "Dataset::framed: samples of shape {:?} are not 2-D images",
                self.sample_shape
            )
        };
        assert!(
            side > 0 && side <= canvas,
            "Dataset::framed: a {side}×{side} box does not fit a {canvas}×{canvas} canvas"
        );
        // Source coordinate and the two neighbours' weights of each destination row / column.
        let taps = |from: usize| -> Vec<(usize, usize, f32)> {
            (0..side)
                .map(|d| {
                    let s = ((d as f32 + 0.5) * from as f32 / side as f32 - 0.5).max(0.0);
                    let lo = (s.floor() as usize).min(from - 1);
                    let hi = (lo + 1).min(from - 1);
                    (lo, hi, s - lo as f32)
                })
                .collect()
        };
        let (rows, cols) = (taps(h), taps(w));
        let offset = (canvas - side) / 2;
        let mut inputs = vec![0.0; self.len() * canvas * canvas];
        for (src, dst) in self
            .inputs
            .chunks_exact(h * w)
            .zip(inputs.chunks_exact_mut(canvas * canvas))
        {
            for (r, &(r0, r1, fr)) in rows.iter().enumerate() {
                for (c, &(c0, c1, fc)) in cols.iter().enumerate() {
                    let at = |y: usize, x: usize| src[y * w + x];
                    let top = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc;
                    let bottom = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc;
                    dst[(offset + r) * canvas + offset + c] = top * (1.0 - fr) + bottom * fr;
                }
            }
        }
        Dataset {
            inputs,
            labels: self.labels.clone(),
            sample_shape: vec![canvas, canvas],
            classes: self.classes,
        }
    }

    /// Samples `start..start + n` (clamped to the set).
    pub fn slice(&self, start: usize, n: usize) -> Dataset {
        let end = (start + n).min(self.len());
        let start = start.min(end);
        let d = self.sample_size();
        Dataset {
            inputs: self.inputs[start * d..end * d].to_vec(),
            labels: self.labels[start..end].to_vec(),
            sample_shape: self.sample_shape.clone(),
            classes: self.classes,
        }
    }

    /// Samples whose label passes `keep` (split MNIST tasks).
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> Dataset {
        let idx: Vec<usize> = (0..self.len())
            .filter(|&i| keep(self.labels[i] as usize))
            .collect();
        self.select(&idx)
    }

    /// The samples at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let d = self.sample_size();
        let mut inputs = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            inputs.extend_from_slice(&self.inputs[i * d..(i + 1) * d]);
        }
        Dataset {
            inputs,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            sample_shape: self.sample_shape.clone(),
            classes: self.classes,
        }
    }

    /// Per-value mean and standard deviation over the whole set.
    pub fn mean_std(&self) -> (f32, f32) {
        let n = self.inputs.len().max(1) as f64;
        let mean = self.inputs.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = self
            .inputs
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean as f32, var.sqrt() as f32)
    }

    /// Standardise every value: (x − mean) / std.
    pub fn normalize(&mut self, mean: f32, std: f32) {
        for v in &mut self.inputs {
            *v = (*v - mean) / std;
        }
    }

    /// Number of batches of `size` in one pass (the last may be smaller).
    pub fn num_batches(&self, size: usize) -> usize {
        self.len().div_ceil(size.max(1))
    }

    /// One pass in batches of `size`: in order, or shuffled by `shuffle_seed`. Each batch is
    /// uploaded as inputs `[b, sample...]` and integer labels `[b]`.
    pub fn batches<'a>(
        &'a self,
        device: &'a Device,
        size: usize,
        shuffle_seed: Option<u64>,
    ) -> impl Iterator<Item = Result<(Tensor, Tensor)>> + 'a {
        assert!(size > 0, "batches: batch size must be positive");
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(seed) = shuffle_seed {
            Rng::new(seed).shuffle(&mut order);
        }
        let chunks: Vec<Vec<usize>> = order.chunks(size).map(<[usize]>::to_vec).collect();
        chunks.into_iter().map(move |idx| self.batch(device, &idx))
    }

    /// One pass in global batches of `size`, shuffled by `shuffle_seed` (or in order), of which
    /// this process reads its [`Shard`]; a last batch smaller than the number of ranks is left
    /// out, so that every rank takes the same number of steps. With [`Shard::ALL`] it is
    /// [`Dataset::batches`].
    #[track_caller]
    pub fn shard_batches<'a>(
        &'a self,
        device: &'a Device,
        size: usize,
        shuffle_seed: Option<u64>,
        shard: Shard,
    ) -> impl Iterator<Item = Result<(Tensor, Tensor)>> + 'a {
        assert!(size > 0, "shard_batches: batch size must be positive");
        assert!(
            size >= shard.ranks,
            "shard_batches: a batch of {size} cannot be split over {} ranks",
            shard.ranks
        );
        let _ = shard.range(size);
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(seed) = shuffle_seed {
            Rng::new(seed).shuffle(&mut order);
        }
        let chunks: Vec<Vec<usize>> = order
            .chunks(size)
            .filter(|c| c.len() >= shard.ranks)
            .map(|c| c[shard.range(c.len())].to_vec())
            .collect();
        chunks.into_iter().map(move |idx| self.batch(device, &idx))
    }

    /// Number of batches of `size` in one pass of [`Dataset::shard_batches`] over `ranks` ranks.
    pub fn num_shard_batches(&self, size: usize, ranks: usize) -> usize {
        let size = size.max(1);
        let full = self.len() / size;
        full + usize::from(self.len() % size >= ranks.max(1))
    }

    /// The samples at `idx` as device tensors: inputs `[b, sample...]` and labels `[b]`.
    pub fn batch(&self, device: &Device, idx: &[usize]) -> Result<(Tensor, Tensor)> {
        let d = self.sample_size();
        let mut x = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            x.extend_from_slice(&self.inputs[i * d..(i + 1) * d]);
        }
        let y: Vec<f32> = idx.iter().map(|&i| self.labels[i]).collect();
        let mut shape = vec![idx.len()];
        shape.extend(&self.sample_shape);
        Ok((
            Tensor::from_vec(device, x, &shape)?,
            Tensor::from_vec(device, y, &[idx.len()])?,
        ))
    }

    /// The whole set as flat device tensors `[n, sample_size]` and `[n]`.
    pub fn tensors(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        let n = self.len();
        Ok((
            Tensor::from_slice(device, &self.inputs, &[n, self.sample_size()])?,
            Tensor::from_slice(device, &self.labels, &[n])?,
        ))
    }
}
