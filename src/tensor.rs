//! Tensors: a handle on a node of the tape. A node is a leaf (data uploaded from the host, a
//! parameter) or the result of an op on earlier nodes; its storage is filled when the tape runs.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::rc::Rc;

use crate::device::{Backend, Device, Entry};
use crate::error::{Error, Result};
use crate::gpu::GpuBuffer;
use crate::op::Op;
use crate::shape;

/// Where a node's values live once computed.
#[derive(Clone)]
pub(crate) enum Storage {
    Cpu(Rc<RefCell<Vec<f64>>>),
    Gpu(Rc<GpuBuffer>),
    /// No elements (or an update node that has run).
    Empty,
}

pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) device: Device,
    pub(crate) shape: Vec<usize>,
    pub(crate) op: Option<Box<dyn Op>>,
    /// Inputs, kept for the backward pass; dropped after the node runs if no gradient needs them.
    pub(crate) inputs: RefCell<Vec<Tensor>>,
    /// Tensors an update op writes in place.
    pub(crate) targets: Vec<Tensor>,
    pub(crate) storage: RefCell<Option<Storage>>,
    pub(crate) requires_grad: Cell<bool>,
    /// Bumped by every in-place update of this tensor.
    pub(crate) version: Cell<u64>,
    /// Whether a backward pass reports this node's gradient though it is not a leaf.
    pub(crate) retain_grad: Cell<bool>,
    /// The versions of the inputs when this node was recorded.
    pub(crate) input_versions: Vec<u64>,
    pub(crate) location: &'static Location<'static>,
}

impl Node {
    /// Where this node's results live once assigned: its own storage, or the storage of the
    /// tensors it updates in place.
    pub(crate) fn outputs(&self) -> Vec<Storage> {
        if self.targets.is_empty() {
            self.storage.borrow().iter().cloned().collect()
        } else {
            self.targets.iter().map(Tensor::storage).collect()
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.storage.borrow().is_some()
    }

    pub(crate) fn reset(&self) {
        if self.op.is_some() {
            *self.storage.borrow_mut() = None;
        }
    }

    pub(crate) fn entry(self: Rc<Self>) -> Entry {
        if self.targets.is_empty() {
            Entry::Value(Rc::downgrade(&self))
        } else {
            Entry::Effect(self)
        }
    }

    /// After running: a node that no gradient will pass through forgets its inputs, so the
    /// intermediate buffers behind it go back to the pool as soon as nobody else holds them.
    pub(crate) fn release_inputs(&self) {
        if !self.requires_grad.get() || self.is_leaf() {
            self.inputs.borrow_mut().clear();
        }
    }

    /// A leaf for gradients: host data, or an op no gradient passes through (a fill, a random
    /// draw, `detach`). Parameters are leaves; backward stops at leaves.
    pub(crate) fn is_leaf(&self) -> bool {
        self.op.as_ref().is_none_or(|op| !op.differentiable())
    }

    pub(crate) fn op_name(&self) -> &'static str {
        self.op.as_ref().map_or("leaf", |o| o.name())
    }
}

/// An n-dimensional f32 array on a [`Device`], recorded lazily. Cloning is cheap (a handle).
#[derive(Clone)]
pub struct Tensor {
    pub(crate) node: Rc<Node>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor(#{} {} {:?}{})",
            self.node.id,
            self.node.op_name(),
            self.node.shape,
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

    pub(crate) fn leaf(device: &Device, shape: Vec<usize>, storage: Storage) -> Tensor {
        Tensor {
            node: Rc::new(Node {
                id: device.next_id(),
                device: device.clone(),
                shape,
                op: None,
                inputs: RefCell::new(Vec::new()),
                targets: Vec::new(),
                storage: RefCell::new(Some(storage)),
                requires_grad: Cell::new(false),
                version: Cell::new(0),
                retain_grad: Cell::new(false),
                input_versions: Vec::new(),
                location: Location::caller(),
            }),
        }
    }

    // ----- recording ---------------------------------------------------------------------------

    /// Append a pure op to the tape. The caller has checked shapes.
    #[track_caller]
    pub(crate) fn record(op: impl Op + 'static, inputs: &[&Tensor], shape: Vec<usize>) -> Tensor {
        let device = inputs[0].device().clone();
        Tensor::record_on(&device, op, inputs, shape)
    }

    /// Record a user-defined [`Op`] (a custom kernel, or a custom backward rule such as feedback
    /// alignment) on `inputs`, producing a tensor of `shape`. The op's CPU reference and kernel
    /// must agree, as for built-in ops; check it with the differential tools in [`crate::check`].
    #[track_caller]
    pub fn apply_op(op: impl Op + 'static, inputs: &[&Tensor], shape: &[usize]) -> Tensor {
        assert!(
            !inputs.is_empty(),
            "apply_op: an op needs at least one input (use apply_op_on)"
        );
        Tensor::record(op, inputs, shape.to_vec())
    }

    /// [`Tensor::apply_op`] for ops with no inputs, recorded on `device`.
    #[track_caller]
    pub fn apply_op_on(device: &crate::Device, op: impl Op + 'static, shape: &[usize]) -> Tensor {
        Tensor::record_on(device, op, &[], shape.to_vec())
    }

    /// Append a pure op to `device`'s tape (ops with no inputs: fills, random numbers).
    #[track_caller]
    pub(crate) fn record_on(
        device: &Device,
        op: impl Op + 'static,
        inputs: &[&Tensor],
        shape: Vec<usize>,
    ) -> Tensor {
        for t in inputs {
            assert!(
                t.device().same(device),
                "{}: tensors are on different devices ({} and {})",
                op.name(),
                device.name(),
                t.device().name()
            );
        }
        let requires_grad = device.grad_enabled()
            && op.differentiable()
            && inputs.iter().any(|t| t.requires_grad());
        let node = Rc::new(Node {
            id: device.next_id(),
            device: device.clone(),
            shape,
            op: Some(Box::new(op)),
            inputs: RefCell::new(inputs.iter().map(|t| (*t).clone()).collect()),
            targets: Vec::new(),
            storage: RefCell::new(None),
            requires_grad: Cell::new(requires_grad),
            version: Cell::new(0),
            retain_grad: Cell::new(false),
            input_versions: inputs.iter().map(|t| t.node.version.get()).collect(),
            location: Location::caller(),
        });
        device
            .inner
            .tape
            .borrow_mut()
            .push(Entry::Value(Rc::downgrade(&node)));
        Tensor { node }
    }

    /// Append an update op that writes `targets` in place (optimizer steps). Each target's version
    /// is bumped, so a backward pass recorded before the update refuses to use the new values.
    #[track_caller]
    pub(crate) fn record_update(op: impl Op + 'static, inputs: &[&Tensor], targets: &[&Tensor]) {
        let device = targets[0].device().clone();
        for t in inputs.iter().chain(targets) {
            assert!(
                t.device().same(&device),
                "{}: tensors are on different devices",
                op.name()
            );
        }
        for t in targets {
            assert!(
                t.node.is_leaf(),
                "{}: only leaf tensors (parameters, optimizer state) can be updated in place, \
                 got the result of `{}`",
                op.name(),
                t.node.op_name()
            );
            t.node.version.set(t.node.version.get() + 1);
        }
        let node = Rc::new(Node {
            id: device.next_id(),
            device: device.clone(),
            shape: vec![0],
            op: Some(Box::new(op)),
            inputs: RefCell::new(inputs.iter().map(|t| (*t).clone()).collect()),
            targets: targets.iter().map(|t| (*t).clone()).collect(),
            storage: RefCell::new(None),
            requires_grad: Cell::new(false),
            version: Cell::new(0),
            retain_grad: Cell::new(false),
            input_versions: inputs.iter().map(|t| t.node.version.get()).collect(),
            location: Location::caller(),
        });
        device.inner.tape.borrow_mut().push(Entry::Effect(node));
    }

    // ----- facts -------------------------------------------------------------------------------

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.node.shape
    }

    /// Size of dimension `axis` (negative counts from the end).
    #[track_caller]
    pub fn dim(&self, axis: isize) -> usize {
        self.node.shape[self.axis_of("dim", axis)]
    }

    /// Number of dimensions (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.node.shape.len()
    }

    /// Number of elements (1 for a scalar, 0 if any dimension is 0).
    pub fn numel(&self) -> usize {
        shape::numel(&self.node.shape)
    }

    /// The device it lives on.
    pub fn device(&self) -> &Device {
        &self.node.device
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

    fn read(&self) -> Result<Vec<f64>> {
        self.device().flush()?;
        let storage = self.storage();
        match storage {
            Storage::Empty => Ok(Vec::new()),
            Storage::Cpu(v) => Ok(v.borrow().clone()),
            Storage::Gpu(b) => {
                let g = self
                    .device()
                    .backend_gpu()
                    .expect("GPU storage lives on a GPU device");
                Ok(g.read(&b, self.numel())?
                    .into_iter()
                    .map(f64::from)
                    .collect())
            }
        }
    }

    /// The computed storage. Only valid once the node has run.
    pub(crate) fn storage(&self) -> Storage {
        self.node
            .storage
            .borrow()
            .clone()
            .unwrap_or_else(|| panic!("{}: read before it ran", self.op_name()))
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
