//! [`Comm`]: this process's place in the job, and the collectives wgrad uses.

use std::rc::Rc;
use std::time::Duration;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::watchdog::Watchdog;
use crate::data::Shard;
use crate::{Device, DeviceOptions, Error, Result, Tensor};

/// This process's place in an MPI job. Cheap to clone; MPI is finalized when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Comm {
    inner: Rc<Inner>,
}

struct Inner {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    local_rank: usize,
    watchdog: Watchdog,
    // Dropped last: finalizes MPI.
    _universe: Universe,
}

impl Comm {
    /// Initialize MPI and join the job (`mpirun -n N program`; run without `mpirun`, a job of
    /// one). Fails if MPI was initialized already in this process.
    pub fn init() -> Result<Comm> {
        let universe = mpi::initialize().ok_or_else(|| Error::Distributed {
            rank: 0,
            message: "MPI is already initialized in this process (call Comm::init once and \
                      clone the Comm)"
                .into(),
        })?;
        let world = universe.world();
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        let local_rank = world.split_shared(rank as i32).rank() as usize;
        let timeout = match std::env::var("WGRAD_DIST_TIMEOUT_SECS") {
            Ok(s) => match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Duration::from_secs_f64(v),
                _ => {
                    return Err(Error::Distributed {
                        rank,
                        message: format!(
                            "WGRAD_DIST_TIMEOUT_SECS={s:?} is not a positive number of seconds"
                        ),
                    });
                }
            },
            Err(_) => Duration::from_secs(120),
        };
        Ok(Comm {
            inner: Rc::new(Inner {
                world,
                rank,
                size,
                local_rank,
                watchdog: Watchdog::new(rank, timeout),
                _universe: universe,
            }),
        })
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.inner.rank
    }

    /// The number of processes in the job.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The rank among the processes on this node (picks the adapter).
    pub fn local_rank(&self) -> usize {
        self.inner.local_rank
    }

    /// Rank 0: the one that prints and writes.
    pub fn is_root(&self) -> bool {
        self.inner.rank == 0
    }

    /// How long a collective may wait for the other ranks before this rank gives up.
    pub fn timeout(&self) -> Duration {
        self.inner.watchdog.timeout()
    }

    /// This rank's part of every batch (for [`crate::train::Config::shard`]).
    pub fn shard(&self) -> Shard {
        Shard {
            rank: self.rank(),
            ranks: self.size(),
        }
    }

    /// The device for this rank: the CPU reference with `cpu`; otherwise the adapter
    /// `WGRAD_ADAPTER` names if set, else the hardware GPU at this rank's local rank (modulo
    /// their number), else the first adapter (a software one: every rank shares it).
    pub fn device(&self, cpu: bool) -> Result<Device> {
        if cpu {
            return Ok(Device::cpu());
        }
        if std::env::var_os("WGRAD_ADAPTER").is_some() {
            return Device::gpu();
        }
        let all = crate::gpu::adapters();
        let hardware: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, a)| a.get_info().device_type != wgpu::DeviceType::Cpu)
            .map(|(i, _)| i)
            .collect();
        let index = if hardware.is_empty() {
            0
        } else {
            hardware[self.local_rank() % hardware.len()]
        };
        Device::gpu_with(DeviceOptions {
            adapter: Some(index.to_string()),
            ..DeviceOptions::default()
        })
    }

    /// Wait until every rank gets here.
    pub fn barrier(&self) {
        let _guard = self.inner.watchdog.guard("barrier");
        self.inner.world.barrier();
    }

    pub(crate) fn error(&self, message: String) -> Error {
        Error::Distributed {
            rank: self.rank(),
            message,
        }
    }

    /// Every rank's `value`, in rank order.
    pub(crate) fn all_gather_u64(&self, what: &'static str, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size()];
        let _guard = self.inner.watchdog.guard(what);
        self.inner.world.all_gather_into(&value, &mut all[..]);
        all
    }

    /// Rank 0's bytes on every rank (the length travels first).
    fn broadcast_bytes(&self, what: &'static str, bytes: &mut Vec<u8>) {
        let _guard = self.inner.watchdog.guard(what);
        let root = self.inner.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
    }

    /// Every rank's `send` (all the same length), one after another in rank order.
    pub(crate) fn all_gather_f32(&self, what: &'static str, send: &[f32], recv: &mut [f32]) {
        let _guard = self.inner.watchdog.guard(what);
        self.inner.world.all_gather_into(send, recv);
    }

    /// The element-wise sum over ranks, by MPI's own algorithm.
    pub(crate) fn all_reduce_sum_f32(&self, what: &'static str, send: &[f32], recv: &mut [f32]) {
        let _guard = self.inner.watchdog.guard(what);
        self.inner
            .world
            .all_reduce_into(send, recv, SystemOperation::sum());
    }

    /// Copy rank 0's parameters to every rank. First every rank's list of names and shapes is
    /// compared with rank 0's; if any differs, every rank returns an error (the ranks that differ
    /// name the first parameter that does), and nothing is copied.
    pub fn broadcast_parameters(&self, params: &[(String, Tensor)]) -> Result<()> {
        let mine = manifest(params);
        let mut root = if self.is_root() {
            mine.clone().into_bytes()
        } else {
            Vec::new()
        };
        self.broadcast_bytes("broadcast_parameters (names and shapes)", &mut root);
        let root = String::from_utf8_lossy(&root).into_owned();
        let differs = root != mine;
        let flags = self.all_gather_u64("broadcast_parameters (check)", differs as u64);
        let bad: Vec<usize> = (0..flags.len()).filter(|&r| flags[r] != 0).collect();
        if differs {
            return Err(self.error(first_difference(&root, &mine)));
        }
        if !bad.is_empty() {
            return Err(self.error(format!(
                "rank(s) {bad:?} built parameters whose names or shapes differ from rank 0's; \
                 nothing was broadcast"
            )));
        }
        let n: usize = params.iter().map(|(_, p)| p.numel()).sum();
        let mut flat = Vec::with_capacity(n);
        if self.is_root() {
            for (_, p) in params {
                flat.extend(p.to_vec()?);
            }
        } else {
            flat.resize(n, 0.0);
        }
        {
            let _guard = self.inner.watchdog.guard("broadcast_parameters");
            self.inner
                .world
                .process_at_rank(0)
                .broadcast_into(&mut flat[..]);
        }
        if !self.is_root() && n > 0 {
            let device = params[0].1.device();
            let flat = Tensor::from_vec(device, flat, &[n])?;
            for ((_, p), part) in params.iter().zip(split(&flat, params)) {
                p.assign(&part);
            }
            device.flush()?;
        }
        Ok(())
    }

    /// Check that every rank holds the same bits in every parameter: a hash of each, all gathered
    /// in one collective and compared. The error names the first parameter that differs and the ranks that differ from
    /// rank 0.
    pub fn check_identical(&self, params: &[(String, Tensor)]) -> Result<()> {
        let count = self.all_gather_u64("check_identical (count)", params.len() as u64);
        if count.iter().any(|&c| c != params.len() as u64) {
            return Err(self.error(format!(
                "the ranks hold different numbers of parameters: {count:?}"
            )));
        }
        let mine: Vec<u64> = params
            .iter()
            .map(|(_, p)| p.to_vec().map(|v| hash_bits(&v)))
            .collect::<Result<_>>()?;
        let k = mine.len();
        let mut all = vec![0u64; k * self.size()];
        {
            let _guard = self.inner.watchdog.guard("check_identical");
            self.inner.world.all_gather_into(&mine[..], &mut all[..]);
        }
        for (i, (name, _)) in params.iter().enumerate() {
            let bad: Vec<usize> = (1..self.size())
                .filter(|&r| all[r * k + i] != all[i])
                .collect();
            if !bad.is_empty() {
                return Err(self.error(format!(
                    "parameter `{name}` differs between rank 0 and rank(s) {bad:?}"
                )));
            }
        }
        Ok(())
    }
}

/// `flat` (shape `[n]`) cut into views shaped like `like`'s tensors, in order.
pub(crate) fn split(flat: &Tensor, like: &[(String, Tensor)]) -> Vec<Tensor> {
    let mut at = 0;
    like.iter()
        .map(|(_, p)| {
            let part = flat.narrow(0, at, p.numel()).reshape(p.shape());
            at += p.numel();
            part
        })
        .collect()
}

/// One line per parameter: its name and shape.
fn manifest(params: &[(String, Tensor)]) -> String {
    params
        .iter()
        .map(|(n, p)| format!("{n} {:?}\n", p.shape()))
        .collect()
}

fn first_difference(root: &str, mine: &str) -> String {
    let (r, m): (Vec<&str>, Vec<&str>) = (root.lines().collect(), mine.lines().collect());
    for i in 0..r.len().max(m.len()) {
        match (r.get(i), m.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                return format!(
                    "parameter {} differs from rank 0's: rank 0 has {}, this rank has {}",
                    i,
                    a.map_or("nothing".into(), |s| format!("`{s}`")),
                    b.map_or("nothing".into(), |s| format!("`{s}`")),
                );
            }
        }
    }
    "the parameters' names and shapes differ from rank 0's".into()
}

/// FNV-1a over the values' bits.
fn hash_bits(values: &[f32]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in values {
        for b in v.to_bits().to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
