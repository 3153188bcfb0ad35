//! Principal component analysis on the host in f64: the best linear code of a given size, the
//! baseline an autoencoder's bottleneck is measured against. The covariance is accumulated over
//! nonzero values only (MNIST is mostly zeros) and diagonalised by Householder reduction to
//! tridiagonal form and the implicit QL algorithm (EISPACK's tred2 and tql2).

/// The top principal components of a data set.
#[derive(Clone, Debug)]
pub struct Pca {
    /// Values per sample.
    pub dim: usize,
    /// The per-value mean subtracted before projecting.
    pub mean: Vec<f64>,
    /// `k` unit vectors of length `dim`, one after another, by decreasing variance.
    pub components: Vec<f64>,
    /// The variance along each component.
    pub variances: Vec<f64>,
    /// Total variance of the data (the sum over all `dim` eigenvalues).
    pub total_variance: f64,
}

impl Pca {
    /// Fit `k` components to `data`: samples of `dim` values one after another.
    pub fn fit(data: &[f32], dim: usize, k: usize) -> Pca {
        assert!(
            dim > 0 && data.len() % dim == 0 && !data.is_empty(),
            "Pca::fit: {} values are not a whole number of samples of {dim}",
            data.len()
        );
        assert!(
            k <= dim,
            "Pca::fit: {k} components of {dim}-dimensional data"
        );
        let n = data.len() / dim;
        let mut mean = vec![0.0f64; dim];
        for x in data.chunks_exact(dim) {
            for (m, &v) in mean.iter_mut().zip(x) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        // Σ x xᵀ over nonzero entries (upper triangle), then the covariance.
        let mut cov = vec![0.0f64; dim * dim];
        let mut nz = Vec::with_capacity(dim);
        for x in data.chunks_exact(dim) {
            nz.clear();
            nz.extend((0..dim).filter(|&i| x[i] != 0.0));
            for (a, &i) in nz.iter().enumerate() {
                let xi = x[i] as f64;
                let row = &mut cov[i * dim..(i + 1) * dim];
                for &j in &nz[a..] {
                    row[j] += xi * x[j] as f64;
                }
            }
        }
        for i in 0..dim {
            for j in i..dim {
                let c = cov[i * dim + j] / n as f64 - mean[i] * mean[j];
                cov[i * dim + j] = c;
                cov[j * dim + i] = c;
            }
        }
        let total_variance = (0..dim).map(|i| cov[i * dim + i]).sum();
        let (values, vectors) = symmetric_eigen(&cov, dim);
        // Ascending order from the solver: the last k are the largest.
        let mut components = Vec::with_capacity(k * dim);
        let mut variances = Vec::with_capacity(k);
        for j in (dim - k..dim).rev() {
            components.extend_from_slice(&vectors[j * dim..(j + 1) * dim]);
            variances.push(values[j]);
        }
        Pca {
            dim,
            mean,
            components,
            variances,
            total_variance,
        }
    }

    /// Number of components.
    pub fn k(&self) -> usize {
        self.variances.len()
    }

    /// Project `data` onto the components and back: the reconstruction, sample by sample.
    pub fn reconstruct(&self, data: &[f32]) -> Vec<f32> {
        let d = self.dim;
        let mut out = Vec::with_capacity(data.len());
        let mut centred = vec![0.0f64; d];
        let mut back = vec![0.0f64; d];
        for x in data.chunks_exact(d) {
            for i in 0..d {
                centred[i] = x[i] as f64 - self.mean[i];
            }
            back.copy_from_slice(&self.mean);
            for c in self.components.chunks_exact(d) {
                let coef: f64 = c.iter().zip(&centred).map(|(a, b)| a * b).sum();
                for (b, &ci) in back.iter_mut().zip(c) {
                    *b += coef * ci;
                }
            }
            out.extend(back.iter().map(|&v| v as f32));
        }
        out
    }

    /// Mean squared error per value of reconstructing `data`.
    pub fn mse(&self, data: &[f32]) -> f64 {
        let rec = self.reconstruct(data);
        let sse: f64 = rec
            .iter()
            .zip(data)
            .map(|(&r, &x)| (r as f64 - x as f64).powi(2))
            .sum();
        sse / data.len().max(1) as f64
    }
}

/// Eigenvalues (ascending) and unit eigenvectors (one after another, in the same order) of the
/// symmetric `n`×`n` matrix `a` (row-major).
pub(crate) fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), n * n, "symmetric_eigen: not an {n}×{n} matrix");
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut v = a.to_vec();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tred2(&mut v, &mut d, &mut e, n);
    // tql2 rotates pairs of eigenvector columns; work on the transpose so each rotation runs
    // over contiguous rows.
    let mut w = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            w[j * n + i] = v[i * n + j];
        }
    }
    tql2(&mut w, &mut d, &mut e, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let values = order.iter().map(|&i| d[i]).collect();
    let vectors = order
        .iter()
        .flat_map(|&i| w[i * n..(i + 1) * n].iter().copied())
        .collect();
    (values, vectors)
}

/// Householder reduction of the symmetric matrix `v` to tridiagonal form: on return `d` holds
/// the diagonal, `e[1..]` the subdiagonal, and `v` the orthogonal transformation.
fn tred2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    let at = |i: usize, j: usize| i * n + j;
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for dk in d[..i].iter_mut() {
                *dk /= scale;
                h += *dk * *dk;
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].iter_mut().for_each(|x| *x = 0.0);
            for j in 0..i {
                f = d[j];
                v[at(j, i)] = f;
                g = e[j] + v[at(j, j)] * f;
                for k in j + 1..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..n - 1 {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// The implicit QL algorithm on the tridiagonal matrix (`d`, `e`) from [`tred2`]: on return `d`
/// holds the eigenvalues and row `j` of `w` (the transformation from `tred2`, transposed) the
/// eigenvector of `d[j]`.
fn tql2(w: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            loop {
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in d[l + 2..].iter_mut() {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (lo, hi) = w.split_at_mut((i + 1) * n);
                    let (wi, wi1) = (&mut lo[i * n..], &mut hi[..n]);
                    for (a, b) in wi.iter_mut().zip(wi1.iter_mut()) {
                        let t = *b;
                        *b = s * *a + c * t;
                        *a = c * *a - s * t;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn eigenpairs_satisfy_a_v_equals_lambda_v() {
        for n in [1, 2, 5, 31] {
            let mut rng = Rng::new(n as u64);
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                for j in i..n {
                    let x = rng.uniform() as f64 - 0.5;
                    a[i * n + j] = x;
                    a[j * n + i] = x;
                }
            }
            let (values, vectors) = symmetric_eigen(&a, n);
            assert!(values.windows(2).all(|w| w[0] <= w[1]), "not ascending");
            for j in 0..n {
                let v = &vectors[j * n..(j + 1) * n];
                let norm: f64 = v.iter().map(|x| x * x).sum();
                assert!((norm - 1.0).abs() < 1e-12, "n {n}: |v{j}|² = {norm}");
                for i in 0..n {
                    let av: f64 = (0..n).map(|k| a[i * n + k] * v[k]).sum();
                    let r = (av - values[j] * v[i]).abs();
                    assert!(r < 1e-12, "n {n}: residual {r} for pair {j}");
                }
            }
        }
    }
}
