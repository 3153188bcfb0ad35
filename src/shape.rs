//! Shapes: row-major dims, NumPy broadcasting, and layouts (how a tensor's elements lie in its
//! storage, for contiguous tensors and views alike).

/// Number of elements of a shape (1 for a scalar, 0 if any dim is 0).
pub fn numel(shape: &[usize]) -> usize {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or_else(|| panic!("shape {shape:?} has more elements than a usize can count"))
}

/// Row-major strides of a contiguous tensor.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut s = 1usize;
    for (d, st) in shape.iter().zip(strides.iter_mut()).rev() {
        *st = s;
        s = s
            .checked_mul(*d)
            .unwrap_or_else(|| panic!("shape {shape:?} has more elements than a usize can count"));
    }
    strides
}

/// The NumPy broadcast of two shapes, or `None` if they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let da = dim_from_right(a, rank - 1 - i);
        let db = dim_from_right(b, rank - 1 - i);
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

fn dim_from_right(shape: &[usize], k: usize) -> usize {
    if k < shape.len() {
        shape[shape.len() - 1 - k]
    } else {
        1
    }
}

/// Whether `input` broadcasts to exactly `output`.
pub fn broadcasts_to(input: &[usize], output: &[usize]) -> bool {
    input.len() <= output.len() && broadcast_shapes(input, output).as_deref() == Some(output)
}

/// Offset of the element at multi-index `idx` given `strides`.
#[cfg(test)]
pub fn offset(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// Multi-index of linear position `i` in a row-major `shape`.
#[cfg(test)]
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, x) in shape.iter().zip(idx.iter_mut()).rev() {
        if *d > 0 {
            *x = i % d;
            i /= d;
        }
    }
    idx
}

/// Call `f(i, offsets)` for every element `i` of `shape` in row-major order, where `offsets[k]`
/// is the element's offset under `strides[k]` (an odometer: no division, no allocation per step).
pub fn walk(shape: &[usize], strides: &[Vec<usize>], mut f: impl FnMut(usize, &[usize])) {
    let n = numel(shape);
    let mut idx = vec![0; shape.len()];
    let mut off = vec![0; strides.len()];
    for i in 0..n {
        f(i, &off);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            for (o, st) in off.iter_mut().zip(strides) {
                *o += st[d];
            }
            if idx[d] < shape[d] {
                break;
            }
            for (o, st) in off.iter_mut().zip(strides) {
                *o -= st[d] * shape[d];
            }
            idx[d] = 0;
        }
    }
}

/// Resolve a possibly negative axis against `rank`, or `None` if out of range.
pub fn resolve_axis(axis: isize, rank: usize) -> Option<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// `(outer, len, inner)`: the tensor seen as `[outer, len, inner]` around `axis`.
pub fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

/// How a tensor's elements lie in its storage: element `idx` (a multi-index of `shape`) is at
/// `offset + Σ idx[d]·strides[d]`. A fresh result is contiguous (row-major strides, offset 0);
/// views (`t()`, `permute`, `narrow`, `broadcast_to`) share their source's storage with other
/// strides (0 along a broadcast dimension) and offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// Elements to step in the storage per step along each dimension.
    pub strides: Vec<usize>,
    /// Where element 0 lies.
    pub offset: usize,
}

impl Layout {
    /// The row-major layout of `shape` at offset 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Whether the elements lie in row-major order one after another (from any offset). Strides
    /// of dimensions of length 1 do not matter.
    pub fn is_contiguous(&self) -> bool {
        let want = contiguous_strides(&self.shape);
        self.shape
            .iter()
            .zip(self.strides.iter().zip(&want))
            .all(|(&d, (s, w))| d <= 1 || s == w)
    }

    /// Contiguous from offset 0: what every op that does not read strides gets.
    pub fn is_plain(&self) -> bool {
        self.offset == 0 && self.is_contiguous()
    }

    /// The storage index of element `i` in row-major order.
    pub fn index(&self, mut i: usize) -> usize {
        let mut at = self.offset;
        for (d, s) in self.shape.iter().zip(&self.strides).rev() {
            if *d > 0 {
                at += (i % d) * s;
                i /= d;
            }
        }
        at
    }

    /// One past the largest storage index an element uses (0 for no elements).
    pub fn extent(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(d, s)| (d - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// The strides that read this layout as if broadcast to `shape` (NumPy rules: 0 along new
    /// leading dimensions and along dimensions of length 1). `shape` must be a broadcast of
    /// this layout's shape.
    pub fn broadcast_strides(&self, shape: &[usize]) -> Vec<usize> {
        let lead = shape.len() - self.shape.len();
        (0..shape.len())
            .map(|i| {
                if i < lead || self.shape[i - lead] == 1 {
                    0
                } else {
                    self.strides[i - lead]
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shapes(&[2, 1], &[1, 4]), Some(vec![2, 4]));
        assert_eq!(broadcast_shapes(&[], &[5]), Some(vec![5]));
        assert_eq!(broadcast_shapes(&[0, 3], &[1, 3]), Some(vec![0, 3]));
        assert_eq!(broadcast_shapes(&[2, 3], &[4]), None);
        let strides =
            |shape: &[usize], to: &[usize]| Layout::contiguous(shape).broadcast_strides(to);
        assert_eq!(strides(&[3], &[2, 3]), vec![0, 1]);
        assert_eq!(strides(&[2, 1], &[2, 4]), vec![1, 0]);
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        let mut seen = Vec::new();
        walk(&[2, 3], &[vec![0, 1], vec![3, 1]], |i, o| {
            seen.push((i, o.to_vec()))
        });
        let expect: Vec<(usize, Vec<usize>)> = (0..6)
            .map(|i| {
                let idx = unravel(i, &[2, 3]);
                (i, vec![offset(&idx, &[0, 1]), offset(&idx, &[3, 1])])
            })
            .collect();
        assert_eq!(seen, expect);
        assert_eq!(resolve_axis(-1, 3), Some(2));
        assert_eq!(resolve_axis(3, 3), None);
    }
}
