//! Normalisation, as PyTorch's `batch_norm` and `layer_norm`, written with ordinary ops (their
//! backward passes come from the ops' rules).

use crate::Tensor;

/// Channel `c`'s values of `[n, c, …]` as `[n, c, rest]`.
fn per_channel(x: &Tensor) -> Tensor {
    let s = x.shape();
    x.reshape(&[s[0], s[1], s[2..].iter().product()])
}

impl Tensor {
    /// Batch normalisation of `[n, c, …]` over every axis but the channels (PyTorch's
    /// `batch_norm`). In training the batch's mean and biased variance normalise it, and the
    /// running statistics, when given, are updated in place: r ← (1 − momentum)·r + momentum·s,
    /// with the unbiased variance for `running_var`. In evaluation the running statistics
    /// normalise it (they must be given). Then `weight` and `bias` (each `[c]`) scale and shift.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn batch_norm(
        &self,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Tensor {
        let s = self.shape().to_vec();
        assert!(
            s.len() >= 2,
            "batch_norm: input {s:?} must be at least rank 2 ([n, c, …])"
        );
        let c = s[1];
        for (what, t) in [
            ("running_mean", running_mean),
            ("running_var", running_var),
            ("weight", weight),
            ("bias", bias),
        ] {
            if let Some(t) = t {
                assert_eq!(
                    t.shape(),
                    [c],
                    "batch_norm: {what} {:?} does not match input {s:?} (want [{c}])",
                    t.shape()
                );
            }
        }
        let x = per_channel(self);
        let count = x.shape()[0] * x.shape()[2];
        let column = |t: &Tensor| t.reshape(&[1, c, 1]);
        let (mean, var) = if training {
            assert!(
                count > 1,
                "batch_norm: input {s:?} has one value per channel; training needs more"
            );
            let mean = x.mean_keepdim(2).mean_keepdim(0);
            let var = (&x - &mean).square().mean_keepdim(2).mean_keepdim(0);
            if let (Some(rm), Some(rv)) = (running_mean, running_var) {
                let _no_grad = self.device().no_grad();
                let (m, v) = (mean.detach().reshape(&[c]), var.detach().reshape(&[c]));
                let unbiased = v * (count as f32 / (count - 1) as f32);
                rm.assign(&(rm * (1.0 - momentum) + m * momentum));
                rv.assign(&(rv * (1.0 - momentum) + unbiased * momentum));
            }
            (mean, var)
        } else {
            let (Some(rm), Some(rv)) = (running_mean, running_var) else {
                panic!("batch_norm: evaluation needs running_mean and running_var")
            };
            (column(rm), column(rv))
        };
        let mut y = (&x - &mean) * (var + eps).sqrt().recip();
        if let Some(w) = weight {
            y = y * column(w);
        }
        if let Some(b) = bias {
            y = y + column(b);
        }
        y.reshape(&s)
    }

    /// Layer normalisation over the last `dims` axes (PyTorch's `layer_norm` with
    /// `normalized_shape` the last `dims` sizes): each sample's mean and biased variance over
    /// them normalise it, then `weight` and `bias` (of those sizes) scale and shift.
    #[track_caller]
    pub fn layer_norm(
        &self,
        dims: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Tensor {
        let s = self.shape().to_vec();
        assert!(
            dims >= 1 && dims <= s.len(),
            "layer_norm: cannot normalise the last {dims} axes of {s:?}"
        );
        let tail = &s[s.len() - dims..];
        for (what, t) in [("weight", weight), ("bias", bias)] {
            if let Some(t) = t {
                assert_eq!(
                    t.shape(),
                    tail,
                    "layer_norm: {what} {:?} does not match the normalised axes {tail:?}",
                    t.shape()
                );
            }
        }
        let width: usize = tail.iter().product();
        let x = self.reshape(&[self.numel() / width.max(1), width]);
        let mean = x.mean_keepdim(1);
        let centred = &x - &mean;
        let var = centred.square().mean_keepdim(1);
        let mut y = centred * (var + eps).sqrt().recip();
        if let Some(w) = weight {
            y = y * w.reshape(&[width]);
        }
        if let Some(b) = bias {
            y = y + b.reshape(&[width]);
        }
        y.reshape(&s)
    }
}
