//! The op set. Each module holds a family of ops: definitions beside their `Tensor` methods.
//! This file records ops onto the tape: it is the one place where inputs that are views are
//! copied into contiguous tensors for the ops that do not read strides.

pub(crate) mod binary;
pub(crate) mod conv;
mod custom;
pub mod matmul;
mod norm;
mod operators;
pub(crate) mod pool;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod shape;
pub(crate) mod softmax;
pub(crate) mod unary;

use std::panic::Location;
use std::rc::Rc;

use crate::Tensor;
use crate::device::Device;
use crate::op::{Layout, Op};
use crate::tape::{Entry, Node};

impl Tensor {
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

    /// Append a pure op to `device`'s tape (ops with no inputs: fills, random numbers). Inputs
    /// that are views are made contiguous first unless the op reads strides.
    #[track_caller]
    pub(crate) fn record_on(
        device: &Device,
        op: impl Op + 'static,
        inputs: &[&Tensor],
        shape: Vec<usize>,
    ) -> Tensor {
        Tensor::record_node(device, Box::new(op), inputs, Layout::contiguous(&shape))
    }

    /// Append a view of `inputs[0]`: `op` shares its storage, read through `layout`. Any
    /// further inputs are kept for the backward rule only.
    #[track_caller]
    pub(crate) fn record_view(op: impl Op + 'static, inputs: &[&Tensor], layout: Layout) -> Tensor {
        assert!(op.is_view(), "{}: only a view op records a view", op.name());
        let device = inputs[0].device().clone();
        Tensor::record_node(&device, Box::new(op), inputs, layout)
    }

    #[track_caller]
    fn record_node(device: &Device, op: Box<dyn Op>, inputs: &[&Tensor], layout: Layout) -> Tensor {
        for t in inputs {
            assert!(
                t.device().same(device),
                "{}: tensors are on different devices ({} and {})",
                op.name(),
                device.name(),
                t.device().name()
            );
        }
        let plain: Vec<Tensor> = if op.strided() || op.is_view() {
            inputs.iter().map(|t| (*t).clone()).collect()
        } else {
            inputs.iter().map(|t| t.contiguous()).collect()
        };
        let requires_grad =
            device.grad_enabled() && op.differentiable() && plain.iter().any(|t| t.requires_grad());
        let node = Node::new(
            device.next_id(),
            layout,
            Some(op),
            plain.iter().map(|t| t.node.clone()).collect(),
            None,
            Location::caller(),
        );
        node.requires_grad.set(requires_grad);
        let node = Rc::new(node);
        device
            .inner
            .tape
            .borrow_mut()
            .push(Entry::Value(Rc::downgrade(&node)));
        Tensor::wrap(device, node)
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
                t.node.is_leaf() && t.layout().is_plain(),
                "{}: only contiguous leaf tensors (parameters, optimizer state) can be updated in \
                 place, got the result of `{}`",
                op.name(),
                t.node.op_name()
            );
            t.node.version.set(t.node.version.get() + 1);
        }
        let inputs: Vec<Tensor> = inputs.iter().map(|t| t.contiguous()).collect();
        let mut node = Node::new(
            device.next_id(),
            Layout::contiguous(&[0]),
            Some(Box::new(op)),
            inputs.iter().map(|t| t.node.clone()).collect(),
            None,
            Location::caller(),
        );
        node.targets = targets.iter().map(|t| t.node.clone()).collect();
        device
            .inner
            .tape
            .borrow_mut()
            .push(Entry::Effect(Rc::new(node)));
    }
}
