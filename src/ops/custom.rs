//! Functions with a gradient of their own, PyTorch's `autograd.Function`: the forward pass is
//! written in tensor ops, the backward pass is a closure given the inputs, the output, the
//! gradient flowing in and which inputs need one. Enough for feedback alignment (the error sent
//! back through a fixed random matrix instead of Wᵀ), straight-through estimators and gradient
//! reversal, on either backend, with no kernel of its own.
//!
//! The node is a view of the forward result (no copy, no dispatch) whose backward rule is the
//! closure; the forward ops run on detached inputs, so gradients reach the inputs only through
//! the closure.

use std::rc::Rc;

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, Op};

type Rule = Rc<dyn Fn(&BackwardCtx) -> Vec<Option<Tensor>>>;

/// The node of a custom function: input 0 is the forward result, the rest are the function's
/// own inputs.
struct Custom {
    name: &'static str,
    backward: Rule,
}

impl Op for Custom {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu(&self, _: &[Input], _: &mut [&mut [f64]]) {
        unreachable!(
            "{}: a custom function's node is a view of its forward result",
            self.name
        )
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        unreachable!(
            "{}: a custom function's node is a view of its forward result",
            self.name
        )
    }
    fn is_view(&self) -> bool {
        true
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let own = BackwardCtx {
            inputs: &ctx.inputs[1..],
            output: ctx.output,
            grad: ctx.grad,
            needs: &ctx.needs[1..],
        };
        let grads = (self.backward)(&own);
        assert_eq!(
            grads.len(),
            own.inputs.len(),
            "{}: the backward rule returned {} gradients for {} inputs",
            self.name,
            grads.len(),
            own.inputs.len()
        );
        for (i, (g, x)) in grads.iter().zip(own.inputs).enumerate() {
            if let Some(g) = g {
                assert!(
                    crate::shape::broadcasts_to(x.shape(), g.shape()),
                    "{}: the gradient of input {i} has shape {:?}, which does not reduce to the \
                     input's {:?}",
                    self.name,
                    g.shape(),
                    x.shape()
                );
            }
        }
        std::iter::once(None).chain(grads).collect()
    }
}

impl Tensor {
    /// A function with a gradient of its own: the result of `forward` (tensor ops on the
    /// `inputs`), whose backward pass is `backward`, given the inputs, the output, the gradient
    /// of the loss with respect to the output, and which inputs need a gradient. It returns one
    /// gradient per input (`None` for none), each of the input's shape or broadcasting to it.
    /// Every tensor the result depends on must be passed in `inputs` (a forward pass that uses
    /// another tensor requiring gradients panics naming `name`).
    ///
    /// Gradient reversal, the identity going forward and −λ times the gradient coming back:
    ///
    /// ```
    /// use wgrad::{Device, Tensor};
    /// # fn main() -> wgrad::Result<()> {
    /// let dev = Device::cpu();
    /// let x = Tensor::from_slice(&dev, &[1.0, 2.0], &[2])?.requires_grad_();
    /// let y = Tensor::custom(
    ///     "reverse_gradient",
    ///     &[&x],
    ///     |x| x[0].clone(),
    ///     |ctx| vec![Some(ctx.grad * -0.5)],
    /// );
    /// let g = (y * 3.0).sum_all().backward();
    /// assert_eq!(g.wrt(&x).to_vec()?, vec![-1.5, -1.5]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn custom(
        name: &'static str,
        inputs: &[&Tensor],
        forward: impl FnOnce(&[Tensor]) -> Tensor,
        backward: impl Fn(&BackwardCtx) -> Vec<Option<Tensor>> + 'static,
    ) -> Tensor {
        assert!(
            !inputs.is_empty(),
            "{name}: a custom function needs an input"
        );
        let detached: Vec<Tensor> = inputs.iter().map(|t| t.detach()).collect();
        let y = forward(&detached);
        assert!(
            !y.requires_grad(),
            "{name}: the forward pass used a tensor that requires gradients without taking it as \
             an input; pass it in `inputs`"
        );
        let mut all: Vec<&Tensor> = vec![&y];
        all.extend(inputs);
        let op = Custom {
            name,
            backward: Rc::new(backward),
        };
        Tensor::record_view(op, &all, y.layout().clone())
    }
}
