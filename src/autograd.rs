//! Reverse mode over the tape. `loss.backward()` walks the nodes that lead to tensors requiring
//! gradients, newest first, and records each node's backward rule as ordinary ops (so gradients
//! run on whichever device the graph lives on). Gradients of a tensor used twice add up; a
//! gradient of a broadcast input is summed back to the input's shape here, and only here.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::Tensor;
use crate::op::BackwardCtx;
use crate::tape::Node;

/// Gradients from one backward pass, keyed by the tensors they belong to.
#[derive(Default)]
pub struct Grads {
    map: HashMap<u64, Tensor>,
}

impl Grads {
    /// An empty set (for custom update rules and tests).
    pub fn new() -> Grads {
        Grads::default()
    }

    /// The gradient of `t`, if the loss depends on it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }

    /// The gradient of `t`; panics naming the tensor if there is none.
    #[track_caller]
    pub fn wrt(&self, t: &Tensor) -> &Tensor {
        match self.get(t) {
            Some(g) => g,
            None => panic!(
                "no gradient for {t:?}: the loss does not depend on it, or it was not marked \
                 requires_grad before the forward pass"
            ),
        }
    }

    /// Number of tensors with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no tensor has a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Insert or replace the gradient of `t` (custom rules: feedback alignment, clipping).
    pub fn insert(&mut self, t: &Tensor, grad: Tensor) {
        self.map.insert(t.id(), grad);
    }
}

impl Tensor {
    /// Gradients of this scalar with respect to every leaf that requires them.
    /// Records the gradient ops; nothing runs until a value is read or the device flushes.
    #[track_caller]
    pub fn backward(&self) -> Grads {
        assert_eq!(
            self.numel(),
            1,
            "backward: the loss must have one element, got shape {:?}",
            self.shape()
        );
        assert!(
            self.requires_grad(),
            "backward: the loss does not depend on any tensor that requires gradients \
             (mark parameters with requires_grad_(), and do not build the loss under no_grad)"
        );
        let seed = Tensor::full(self.device(), self.shape(), 1.0);
        self.backward_with(seed)
    }

    /// Backward pass with an explicit output gradient of this tensor's shape (a vector-Jacobian
    /// product; `backward()` is this with a gradient of one).
    #[track_caller]
    pub fn backward_with(&self, grad: Tensor) -> Grads {
        assert_eq!(
            grad.shape(),
            self.shape(),
            "backward_with: gradient shape {:?} does not match output shape {:?}",
            grad.shape(),
            self.shape()
        );
        self.propagate(grad, None)
    }

    /// Gradients of this scalar with respect to `inputs` only, in their order (PyTorch's
    /// `torch.autograd.grad`): no gradient is recorded for anything that leads to none of them,
    /// so the gradient of a loss with respect to a model's input (an adversarial attack) costs
    /// no weight-gradient products. An input the loss does not depend on gets zeros.
    #[track_caller]
    pub fn grad_wrt(&self, inputs: &[&Tensor]) -> Vec<Tensor> {
        assert_eq!(
            self.numel(),
            1,
            "grad_wrt: the loss must have one element, got shape {:?}",
            self.shape()
        );
        assert!(
            self.requires_grad(),
            "grad_wrt: the loss does not depend on any tensor that requires gradients (it was \
             built under no_grad, or from detached inputs)"
        );
        for (i, t) in inputs.iter().enumerate() {
            assert!(
                t.requires_grad(),
                "grad_wrt: input {i} (shape {:?}) does not require gradients (a leaf needs \
                 requires_grad_() before the forward pass; a result, inputs that do)",
                t.shape()
            );
        }
        let targets: HashSet<u64> = inputs.iter().map(|t| t.id()).collect();
        let seed = Tensor::full(self.device(), self.shape(), 1.0);
        let grads = self.propagate(seed, Some(&targets));
        inputs
            .iter()
            .map(|t| {
                grads
                    .map
                    .get(&t.id())
                    .cloned()
                    .unwrap_or_else(|| Tensor::zeros(t.device(), t.shape()))
            })
            .collect()
    }

    /// The backward pass from this tensor with output gradient `grad`: every leaf that requires
    /// a gradient gets one, or, with `targets`, only the tensors listed there.
    fn propagate(&self, grad: Tensor, targets: Option<&HashSet<u64>>) -> Grads {
        let order = reachable(self);
        // With targets, the nodes with a path to one of them (inputs are older than their
        // users, so one pass from the oldest node finds them all).
        let leads: Option<HashSet<u64>> = targets.map(|targets| {
            let mut leads = HashSet::new();
            for n in order.iter().rev() {
                let via_input =
                    !n.is_leaf() && n.inputs.borrow().iter().any(|i| leads.contains(&i.id));
                if targets.contains(&n.id) || via_input {
                    leads.insert(n.id);
                }
            }
            leads
        });
        let wanted = |id: u64| leads.as_ref().is_none_or(|l| l.contains(&id));
        let _no_grad = self.device().no_grad();
        let mut pending: HashMap<u64, Tensor> = HashMap::new();
        pending.insert(self.id(), grad);
        let mut leaves = HashMap::new();
        for node in order {
            let Some(g) = pending.remove(&node.id) else {
                continue;
            };
            let listed = targets.is_some_and(|t| t.contains(&node.id));
            if node.retain_grad.get() || listed {
                leaves.insert(node.id, g.clone());
            }
            let device = self.device();
            let this = Tensor::wrap(device, node.clone());
            let Some(op) = node.op.as_ref().filter(|_| !node.is_leaf()) else {
                if targets.is_none() {
                    leaves.insert(node.id, g);
                }
                continue;
            };
            let inputs: Vec<Tensor> = node
                .inputs
                .borrow()
                .iter()
                .map(|n| Tensor::wrap(device, n.clone()))
                .collect();
            for (t, v) in inputs.iter().zip(&node.input_versions) {
                assert_eq!(
                    t.node.version.get(),
                    *v,
                    "backward: an input of `{}` (recorded at {}) was updated in place after the \
                     forward pass; call backward() before the optimizer step",
                    op.name(),
                    node.location
                );
            }
            let needs: Vec<bool> = inputs
                .iter()
                .map(|t| t.requires_grad() && wanted(t.id()))
                .collect();
            if !needs.iter().any(|&n| n) {
                continue;
            }
            let grads = op.backward(&BackwardCtx {
                inputs: &inputs,
                output: &this,
                grad: &g,
                needs: &needs,
            });
            assert_eq!(grads.len(), inputs.len(), "{}: backward arity", op.name());
            for ((input, gi), need) in inputs.iter().zip(grads).zip(&needs) {
                let Some(gi) = gi else { continue };
                if !need {
                    continue;
                }
                let gi = gi.sum_to(input.shape());
                let total = match pending.remove(&input.id()) {
                    Some(prev) => prev.add(&gi),
                    None => gi,
                };
                pending.insert(input.id(), total);
            }
        }
        Grads { map: leaves }
    }
}

/// Nodes on a path from `root` to a tensor requiring gradients, newest first (reverse tape order
/// is a valid reverse topological order, since a node is always recorded after its inputs).
fn reachable(root: &Tensor) -> Vec<Rc<Node>> {
    let mut seen = HashSet::new();
    let mut stack = vec![root.node.clone()];
    let mut out = Vec::new();
    while let Some(n) = stack.pop() {
        if !n.requires_grad.get() || !seen.insert(n.id) {
            continue;
        }
        if !n.is_leaf() {
            stack.extend(n.inputs.borrow().iter().cloned());
        }
        out.push(n);
    }
    out.sort_by_key(|n| std::cmp::Reverse(n.id));
    out
}
