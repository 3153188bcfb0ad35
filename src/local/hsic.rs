//! The Hilbert–Schmidt independence criterion and the HSIC bottleneck.

use crate::Tensor;

/// How a Gaussian kernel's width is applied: k(a, b) = exp(−‖a − b‖² / (2σ²)) as in the paper,
/// or exp(−‖a − b‖² / (2σ²·d)) with d the dimension of a, as in the authors' released code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelWidth {
    /// 2σ², the paper's formula.
    Paper,
    /// 2σ²·d, the released code's.
    PerDimension,
}

/// The Gaussian kernel matrix `[m, m]` of the rows of `x` `[m, d]`, pairwise squared distances
/// from one product: ‖a‖² + ‖b‖² − 2a·b (clamped at 0 against rounding).
fn gaussian_kernel(x: &Tensor, sigma: f32, width: KernelWidth) -> Tensor {
    assert!(
        sigma.is_finite() && sigma > 0.0,
        "hsic: σ must be finite and > 0, got {sigma}"
    );
    let d = x.shape()[1] as f32;
    let denom = match width {
        KernelWidth::Paper => 2.0 * sigma * sigma,
        KernelWidth::PerDimension => 2.0 * sigma * sigma * d,
    };
    let sq = x.square().sum_keepdim(1);
    let dist = (&sq + sq.t() - x.matmul(&x.t()) * 2.0).relu();
    (dist * (-1.0 / denom)).exp()
}

/// HSIC(x, y) = (m − 1)⁻² tr(Kx H Ky H) over a batch of m rows of `x` `[m, dx]` and `y`
/// `[m, dy]`, with Gaussian kernels of widths `sigma_x`, `sigma_y` and H = I − 11ᵀ/m. H is never
/// formed: tr(Kx H Ky H) = Σ (H Kx H) ∘ Ky, and H Kx H is Kx less its row and column means plus
/// its mean. Near 0 for independent x and y; larger the more one tells about the other.
#[track_caller]
pub fn hsic(x: &Tensor, y: &Tensor, sigma_x: f32, sigma_y: f32, width: KernelWidth) -> Tensor {
    assert!(
        x.rank() == 2 && y.rank() == 2 && x.shape()[0] == y.shape()[0] && x.shape()[0] >= 2,
        "hsic: needs [m, dx] and [m, dy] with one m ≥ 2, got {:?} and {:?}",
        x.shape(),
        y.shape()
    );
    let m = x.shape()[0] as f32;
    let kx = gaussian_kernel(x, sigma_x, width);
    let ky = gaussian_kernel(y, sigma_y, width);
    let centred = &kx - kx.mean_keepdim(0) - kx.mean_keepdim(1) + kx.mean_all();
    (centred * ky).sum_all() / ((m - 1.0) * (m - 1.0))
}

/// The HSIC-bottleneck objective of one layer's output `t` `[m, width]` for inputs `x` and
/// one-hot labels `labels` `[m, classes]`: HSIC(x, t) − β·HSIC(t, labels), minimised (each layer
/// on its own, from its input, its output and the labels).
#[track_caller]
pub fn hsic_bottleneck(
    x: &Tensor,
    t: &Tensor,
    labels: &Tensor,
    sigma: f32,
    beta: f32,
    width: KernelWidth,
) -> Tensor {
    hsic(x, t, sigma, sigma, width) - hsic(t, labels, sigma, sigma, width) * beta
}
