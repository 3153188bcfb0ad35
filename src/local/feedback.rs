//! Feedback alignment and direct feedback alignment.

use crate::Tensor;
use crate::nn::Activation;

/// `x·Wᵀ + b` (`x` `[n, in]`, `weight` `[out, in]`, `bias` `[out]`) whose backward sends the
/// error to `x` through `feedback` (`[out, in]`, fixed) instead of the weights: dx = G·B. The
/// weights get their true local gradients, dW = Gᵀx and db = ΣG. With `feedback` equal to
/// `weight` this is the ordinary layer.
#[track_caller]
pub fn feedback_linear(x: &Tensor, weight: &Tensor, bias: &Tensor, feedback: &Tensor) -> Tensor {
    assert_eq!(
        feedback.shape(),
        weight.shape(),
        "feedback_linear: feedback {:?} must have the weight's shape {:?}",
        feedback.shape(),
        weight.shape()
    );
    let feedback = feedback.detach();
    Tensor::custom(
        "feedback_linear",
        &[x, weight, bias],
        |t| t[0].linear(&t[1], Some(&t[2]), Activation::Identity),
        move |ctx| {
            let (x, g) = (&ctx.inputs[0], ctx.grad);
            vec![
                ctx.needs[0].then(|| g.matmul(&feedback)),
                ctx.needs[1].then(|| g.t().matmul(x)),
                ctx.needs[2].then(|| g.clone()),
            ]
        },
    )
}

/// A loss whose gradient is direct feedback alignment's update. `logits` `[n, classes]` is the
/// network's output, computed from the *detached* last hidden layer, and `loss` its loss; each
/// `hidden[l]` `[n, width_l]` is a hidden layer's output computed from a *detached* input (so
/// no gradient passes between layers: otherwise the true gradient would be added in), and
/// `feedback[l]` `[classes, width_l]` its fixed random matrix. The surrogate is
/// loss + Σₗ Σ hiddenₗ ∘ (e·Bₗ), with e = ∂loss/∂logits held constant: its gradient with respect to
/// layer l's parameters is (e·Bₗ ∘ f′(aₗ)) through that layer alone, DFA's update, and the
/// output layer gets its true gradient. Its value is not a loss to report (use `loss`).
#[track_caller]
pub fn dfa_surrogate(
    loss: &Tensor,
    logits: &Tensor,
    hidden: &[Tensor],
    feedback: &[Tensor],
) -> Tensor {
    assert_eq!(
        hidden.len(),
        feedback.len(),
        "dfa_surrogate: {} hidden layers and {} feedback matrices",
        hidden.len(),
        feedback.len()
    );
    // e: the loss's gradient at the output (for softmax cross-entropy, (p − onehot)/n).
    let e = loss.grad_wrt(&[logits]).remove(0).detach();
    let mut total = loss.clone();
    for (h, b) in hidden.iter().zip(feedback) {
        assert!(
            b.rank() == 2 && b.shape()[0] == logits.shape()[1] && b.shape()[1] == h.shape()[1],
            "dfa_surrogate: feedback {:?} for hidden {:?} and logits {:?} (want [classes, width])",
            b.shape(),
            h.shape(),
            logits.shape()
        );
        let delta = e.matmul(&b.detach());
        total = total + (h * &delta).sum_all();
    }
    total
}
