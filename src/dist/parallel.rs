//! [`DataParallel`]: any optimizer, with its gradients averaged over the ranks first.

use std::time::{Duration, Instant};

use super::comm::{Comm, split};
use crate::nn::Params;
use crate::optim::Optimizer;
use crate::{Error, Grads, Result, Tensor};

/// How the ranks' gradients are summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Every rank gathers every rank's bucket and adds them in rank order: the same bits on every
    /// rank by construction, and the same from run to run. Moves `size` times the bytes each
    /// rank holds, which is fine for a few ranks.
    #[default]
    Ordered,
    /// `MPI_Allreduce` with `MPI_SUM`: MPI picks the algorithm (a ring for large buffers, about
    /// 2(p−1)/p of the bytes per rank). MPI does not promise the same order on every rank; the
    /// common implementations give identical results, and [`Comm::check_identical`] verifies it.
    Allreduce,
}

/// Where the time of the data-parallel part of the steps went, summed over steps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    /// Steps measured.
    pub steps: u64,
    /// Running the recorded step up to the gradients (forward, backward, joining them into one
    /// buffer) and waiting for it; zero unless [`DataParallel::timed`] is on.
    pub compute: Duration,
    /// Copying the joined gradients to the host (and, unless [`DataParallel::timed`] is on, the
    /// compute before it).
    pub readback: Duration,
    /// The MPI calls, including the wait for the slowest rank.
    pub allreduce: Duration,
    /// Queueing the averaged gradients' upload (the copy itself runs in the update's submit).
    pub writeback: Duration,
}

/// An optimizer whose every update first averages the gradients over the job's ranks. Training
/// code changes by two lines: wrap the optimizer, and broadcast the parameters before the first
/// step ([`Comm::broadcast_parameters`]).
///
/// Each step joins the gradients of all parameters that have one into one flat device buffer
/// (one readback), reduces it in buckets of [`DataParallel::bucket`] elements (one collective
/// per bucket, never one per tensor), uploads the average once, and lets the wrapped optimizer
/// run its ordinary update on views of it.
pub struct DataParallel<O> {
    inner: O,
    comm: Comm,
    reduction: Reduction,
    bucket: usize,
    timing: Timing,
    timed: bool,
    failed: Option<Error>,
}

impl<O: Optimizer> DataParallel<O> {
    /// Wrap `inner`; [`Reduction::Ordered`], buckets of 4 Mi elements (16 MiB).
    pub fn new(inner: O, comm: &Comm) -> DataParallel<O> {
        DataParallel {
            inner,
            comm: comm.clone(),
            reduction: Reduction::Ordered,
            bucket: 4 << 20,
            timing: Timing::default(),
            timed: false,
            failed: None,
        }
    }

    /// How the sum over ranks is formed.
    pub fn reduction(mut self, reduction: Reduction) -> DataParallel<O> {
        self.reduction = reduction;
        self
    }

    /// Elements per collective (at least 1).
    #[track_caller]
    pub fn bucket(mut self, elements: usize) -> DataParallel<O> {
        assert!(
            elements > 0,
            "DataParallel::bucket: a bucket holds at least 1 element"
        );
        self.bucket = elements;
        self
    }

    /// Wait for the device before the readback, so that [`Timing::compute`] and
    /// [`Timing::readback`] are told apart (one more wait per step); off by default, when the
    /// readback's time includes the compute.
    pub fn timed(mut self, on: bool) -> DataParallel<O> {
        self.timed = on;
        self
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The time spent so far, by phase.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Start the timing over.
    pub fn reset_timing(&mut self) {
        self.timing = Timing::default();
    }

    /// The gradients in `grads`, averaged over the ranks (for the parameters that have one,
    /// which must be the same on every rank).
    pub fn average(&mut self, grads: &Grads) -> Result<Grads> {
        let params: Params = self
            .inner
            .params()
            .into_iter()
            .filter(|(_, p)| p.numel() > 0 && grads.get(p).is_some())
            .collect();
        let n: usize = params.iter().map(|(_, p)| p.numel()).sum();
        let counts = self.comm.all_gather_u64("gradient sizes", n as u64);
        if counts.iter().any(|&c| c != n as u64) {
            return Err(self.comm.error(format!(
                "the ranks have gradients of different sizes ({counts:?} elements, in rank \
                 order): every rank must compute the gradients of the same parameters"
            )));
        }
        let mut out = Grads::new();
        if n == 0 {
            return Ok(out);
        }
        let device = params[0].1.device().clone();
        let started = Instant::now();
        let parts: Vec<Tensor> = params
            .iter()
            .map(|(_, p)| grads.wrt(p).reshape(&[p.numel()]))
            .collect();
        let flat = join(&parts);
        if self.timed {
            // Only to tell compute from readback: otherwise the readback's own submit runs the
            // step and copies in one go.
            device.synchronize()?;
        }
        let read = Instant::now();
        let local = flat.to_vec()?;
        let reduce = Instant::now();
        let summed = self.reduce(&local);
        let write = Instant::now();
        let back = Tensor::from_vec(&device, summed, &[n])?;
        for ((_, p), g) in params.iter().zip(split(&back, &params)) {
            out.insert(p, g);
        }
        let done = Instant::now();
        let t = &mut self.timing;
        t.steps += 1;
        t.compute += read - started;
        t.readback += reduce - read;
        t.allreduce += write - reduce;
        t.writeback += done - write;
        Ok(out)
    }

    /// The mean over ranks of `local`, bucket by bucket.
    fn reduce(&self, local: &[f32]) -> Vec<f32> {
        let ranks = self.comm.size();
        let scale = 1.0 / ranks as f32;
        let mut out = vec![0.0f32; local.len()];
        let mut gathered = Vec::new();
        for (send, sum) in local.chunks(self.bucket).zip(out.chunks_mut(self.bucket)) {
            match self.reduction {
                Reduction::Ordered => {
                    let m = send.len();
                    gathered.resize(m * ranks, 0.0);
                    self.comm
                        .all_gather_f32("allreduce (ordered)", send, &mut gathered);
                    sum.copy_from_slice(&gathered[..m]);
                    for r in 1..ranks {
                        for (s, g) in sum.iter_mut().zip(&gathered[r * m..(r + 1) * m]) {
                            *s += g;
                        }
                    }
                }
                Reduction::Allreduce => self.comm.all_reduce_sum_f32("allreduce", send, sum),
            }
            for s in sum.iter_mut() {
                *s *= scale;
            }
        }
        out
    }
}

/// The parts joined end to end, pairing neighbours so each element is copied about log₂(k) times.
fn join(parts: &[Tensor]) -> Tensor {
    let mut level: Vec<Tensor> = parts.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|c| match c {
                [a, b] => Tensor::concat(&[a, b], 0),
                [a] => a.clone(),
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level.pop().expect("at least one part")
}

impl<O: Optimizer> Optimizer for DataParallel<O> {
    /// Average the gradients over the ranks (this runs the step so far and talks to the other
    /// ranks), then record the wrapped optimizer's update. An error is kept and returned by the
    /// next [`Optimizer::step`].
    fn record(&mut self, grads: &Grads) {
        match self.average(grads) {
            Ok(avg) => self.inner.record(&avg),
            Err(e) => self.failed = Some(e),
        }
    }

    fn step(&mut self, grads: &Grads) -> Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let avg = self.average(grads)?;
        self.inner.step(&avg)
    }

    fn params(&self) -> Params {
        self.inner.params()
    }
    fn state(&self) -> Params {
        self.inner.state()
    }
    fn steps(&self) -> u64 {
        self.inner.steps()
    }
    fn set_steps(&mut self, steps: u64) {
        self.inner.set_steps(steps)
    }
    fn lr(&self) -> f32 {
        self.inner.lr()
    }
    fn set_lr(&mut self, lr: f32) {
        self.inner.set_lr(lr)
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
