//! Tensors: a handle on a node of the tape (see [`crate::tape`]) and the device it lives on. A
//! node is a leaf (data uploaded from the host, a parameter) or the result of an op on earlier
//! nodes; its storage is filled when the tape runs. Ops are recorded in [`crate::ops`].

use std::cell::RefCell;
use std::panic::Location;
use std::rc::Rc;

use crate::device::{Backend, Device};
use crate::error::{Error, Result};
use crate::shape::{self, Layout};
use crate::tape::{Node, Storage};

/// An n-dimensional f32 array on a [`Device`], recorded lazily. Cloning is cheap (a handle).
#[derive(Clone)]
pub struct Tensor {
    pub(crate) node: Rc<Node>,
    pub(crate) device: Device,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(#{} {} {:?}{})",
            self.node.id,
            self.node.op_name(),
            self.shape(),
            if self.requires_grad() {
                ", requires_grad"
            } else {
                ""
            }
        )
    }
}

impl Tensor {
    // ----- creation from host data -------------------------------------------------------------

    /// A tensor holding `data` (row-major) with the given shape.
    pub fn from_slice(device: &Device, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        check_len("from_slice", data.len(), shape)?;
        Tensor::upload(
            device,
            shape,
            || data.iter().map(|&x| x as f64).collect(),
            data,
        )
    }

    /// Like [`Tensor::from_slice`], taking ownership of the data.
    pub fn from_vec(device: &Device, data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_slice(device, &data, shape).map_err(|e| match e {
            Error::DataLength {
                len, shape, numel, ..
            } => Error::DataLength {
                op: "from_vec",
                len,
                shape,
                numel,
            },
            e => e,
        })
    }

    /// A tensor from f64 values: kept exactly on the CPU reference, rounded to f32 on a GPU.
    pub fn from_f64(device: &Device, data: &[f64], shape: &[usize]) -> Result<Tensor> {
        check_len("from_f64", data.len(), shape)?;
        let as_f32: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        Tensor::upload(device, shape, || data.to_vec(), &as_f32)
    }

    /// A scalar (rank-0) tensor.
    pub fn scalar(device: &Device, value: f32) -> Tensor {
        Tensor::from_slice(device, &[value], &[]).expect("one value fills a scalar")
    }

    fn upload(
        device: &Device,
        shape: &[usize],
        f64s: impl FnOnce() -> Vec<f64>,
        f32s: &[f32],
    ) -> Result<Tensor> {
        let storage = if f32s.is_empty() {
            Storage::Empty
        } else {
            match &device.inner.backend {
                Backend::Cpu => Storage::Cpu(Rc::new(RefCell::new(f64s()))),
                Backend::Gpu(g) => Storage::Gpu(Rc::new(g.upload(f32s)?)),
            }
        };
        Ok(Tensor::leaf(device, shape.to_vec(), storage))
    }

    /// An empty leaf (shape `[0]`): stands for an absent optional input of a kernel.
    pub(crate) fn empty(device: &Device) -> Tensor {
        Tensor::leaf(device, vec![0], Storage::Empty)
    }

    #[track_caller]
    pub(crate) fn leaf(device: &Device, shape: Vec<usize>, storage: Storage) -> Tensor {
        let node = Node::new(
            device.next_id(),
            Layout::contiguous(&shape),
            None,
            Vec::new(),
            Some(storage),
            Location::caller(),
        );
        Tensor::wrap(device, Rc::new(node))
    }

    /// The tensor of `node`, which lives on `device`.
    pub(crate) fn wrap(device: &Device, node: Rc<Node>) -> Tensor {
        Tensor {
            node,
            device: device.clone(),
        }
    }

    // ----- facts -------------------------------------------------------------------------------

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.node.layout.shape
    }

    /// How the elements lie in the storage: contiguous for a fresh result, other strides and
    /// offsets for a view (`t()`, `permute`, `narrow`, `broadcast_to`).
    pub fn layout(&self) -> &Layout {
        &self.node.layout
    }

    /// Size of dimension `axis` (negative counts from the end).
    #[track_caller]
    pub fn dim(&self, axis: isize) -> usize {
        self.shape()[self.axis_of("dim", axis)]
    }

    /// Number of dimensions (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements (1 for a scalar, 0 if any dimension is 0).
    pub fn numel(&self) -> usize {
        shape::numel(self.shape())
    }

    /// The device it lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Stable identity of this tensor on its device (gradients are keyed by it).
    pub fn id(&self) -> u64 {
        self.node.id
    }

    /// Whether gradients flow to this tensor.
    pub fn requires_grad(&self) -> bool {
        self.node.requires_grad.get()
    }

    /// Mark a leaf (a parameter, or an input whose gradient you want) as needing gradients.
    /// Leaves are host data, fills, random draws and detached tensors.
    #[track_caller]
    pub fn set_requires_grad(&self, on: bool) {
        assert!(
            self.node.is_leaf(),
            "set_requires_grad: only leaf tensors can be marked; this is the result of `{}` \
             (use detach() for a leaf that shares its values)",
            self.node.op_name()
        );
        self.node.requires_grad.set(on);
    }

    /// This tensor, marked as needing gradients (builder style).
    #[track_caller]
    pub fn requires_grad_(self) -> Tensor {
        self.set_requires_grad(true);
        self
    }

    /// Report this tensor's gradient in the [`crate::Grads`] of later backward passes, though it
    /// is the result of an op (PyTorch's `retain_grad`): the gradient with respect to a layer's
    /// output, say. Leaves that require gradients are always reported.
    pub fn retain_grad(&self) {
        self.node.retain_grad.set(true);
    }

    /// The name of the op that produced this tensor ("leaf" for data and parameters).
    pub fn op_name(&self) -> &'static str {
        self.node.op_name()
    }

    // ----- reading -----------------------------------------------------------------------------

    /// Run whatever is pending and copy the values to the host.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        Ok(self.read()?.into_iter().map(|x| x as f32).collect())
    }

    /// The values as f64: exact on the CPU reference, widened from f32 on a GPU.
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        self.read()
    }

    /// The single value of a one-element tensor.
    #[track_caller]
    pub fn item(&self) -> Result<f32> {
        assert_eq!(
            self.numel(),
            1,
            "item: tensor of shape {:?} has {} elements, not 1",
            self.shape(),
            self.numel()
        );
        Ok(self.to_vec()?[0])
    }

    /// The values in row-major order: the storage read back (as far as the layout reaches),
    /// then, for a view, gathered through its strides on the host.
    fn read(&self) -> Result<Vec<f64>> {
        self.device().flush()?;
        let layout = self.layout();
        if layout.numel() == 0 {
            return Ok(Vec::new());
        }
        let extent = layout.extent();
        let raw: Vec<f64> = match self.storage() {
            Storage::Empty => return Ok(Vec::new()),
            Storage::Cpu(v) => v.borrow()[..extent].to_vec(),
            Storage::Gpu(b) => {
                let g = self
                    .device()
                    .backend_gpu()
                    .expect("GPU storage lives on a GPU device");
                g.read(&b, extent)?.into_iter().map(f64::from).collect()
            }
        };
        if layout.is_plain() {
            return Ok(raw);
        }
        Ok((0..layout.numel()).map(|i| raw[layout.index(i)]).collect())
    }

    /// The computed storage. Only valid once the node has run.
    pub(crate) fn storage(&self) -> Storage {
        self.node.storage()
    }
}

fn check_len(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    let numel = shape::numel(shape);
    if len != numel {
        return Err(Error::DataLength {
            op,
            len,
            shape: shape.to_vec(),
            numel,
        });
    }
    Ok(())
}
