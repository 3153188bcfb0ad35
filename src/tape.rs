//! The tape's parts, shared by the tensor front end, the device and both backends: a node (a
//! leaf, or an op applied to earlier nodes), where its values live, and the tape's entries. The
//! backends see nodes and storage only; they never see a `Tensor`.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::rc::{Rc, Weak};

use crate::buffer::GpuBuffer;
use crate::op::Op;
use crate::shape::Layout;

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
    /// How the node's elements lie in its storage (a view's storage is its source's).
    pub(crate) layout: Layout,
    pub(crate) op: Option<Box<dyn Op>>,
    /// Inputs, kept for the backward pass; dropped after the node runs if no gradient needs them.
    pub(crate) inputs: RefCell<Vec<Rc<Node>>>,
    /// Tensors an update op writes in place.
    pub(crate) targets: Vec<Rc<Node>>,
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

/// A pending node: pure nodes are held weakly (a result nobody holds is never computed);
/// update nodes (in-place writes) strongly, because their effect is the point.
pub(crate) enum Entry {
    Value(Weak<Node>),
    Effect(Rc<Node>),
}

impl Node {
    /// A node with nothing recorded about gradients yet.
    pub(crate) fn new(
        id: u64,
        layout: Layout,
        op: Option<Box<dyn Op>>,
        inputs: Vec<Rc<Node>>,
        storage: Option<Storage>,
        location: &'static Location<'static>,
    ) -> Node {
        Node {
            id,
            layout,
            op,
            input_versions: inputs.iter().map(|n| n.version.get()).collect(),
            inputs: RefCell::new(inputs),
            targets: Vec::new(),
            storage: RefCell::new(storage),
            requires_grad: Cell::new(false),
            version: Cell::new(0),
            retain_grad: Cell::new(false),
            location,
        }
    }

    pub(crate) fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Where this node's results live once assigned: its own storage, or the storage of the
    /// tensors it updates in place.
    pub(crate) fn outputs(&self) -> Vec<Storage> {
        if self.targets.is_empty() {
            self.storage.borrow().iter().cloned().collect()
        } else {
            self.targets.iter().map(|t| t.storage()).collect()
        }
    }

    /// The computed storage. Only valid once the node has run.
    pub(crate) fn storage(&self) -> Storage {
        self.storage
            .borrow()
            .clone()
            .unwrap_or_else(|| panic!("{}: read before it ran", self.op_name()))
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
    /// intermediate buffers behind it go back to the pool as soon as nobody else holds them (a
    /// view holds its source's storage itself).
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
