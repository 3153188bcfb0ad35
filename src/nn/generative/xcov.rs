//! The cross-covariance penalty of Cheung, Livezey, Bansal & Olshausen (2015), which keeps a
//! model's supervised latents (the class) and unsupervised ones (the style) apart.

use crate::Tensor;

/// XCov(y, z) = ½ Σᵢⱼ [(1/N) Σₙ (yₙᵢ − ȳᵢ)(zₙⱼ − z̄ⱼ)]² over a batch of N rows of `y` `[N, a]`
/// and `z` `[N, b]`: half the squared Frobenius norm of their batch cross-covariance (the
/// biased, 1/N one, as in the paper).
#[track_caller]
pub fn xcov(y: &Tensor, z: &Tensor) -> Tensor {
    assert!(
        y.rank() == 2 && z.rank() == 2 && y.shape()[0] == z.shape()[0],
        "xcov: needs [N, a] and [N, b] with one N, got {:?} and {:?}",
        y.shape(),
        z.shape()
    );
    let n = y.shape()[0] as f32;
    let yc = y - y.mean_keepdim(0);
    let zc = z - z.mean_keepdim(0);
    // Divided by N (exact in f32 for any batch), not multiplied by its rounded inverse.
    let c = yc.t().matmul(&zc) / n;
    (&c * &c).sum_all() * 0.5
}
