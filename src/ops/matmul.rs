//! Matrix products: 2-D and batched, either operand transposed (read through strides, never
//! copied), a rank-2 operand broadcast over the other's batch. `a.matmul(&b.t())` notices the
//! transpose and reads `b` in place.

use crate::Tensor;
use crate::op::{BackwardCtx, Kernel, Op, Shader, shader};

static TILED: Shader = shader!("matmul/tiled", "matmul/tiled.wgsl");
static NAIVE: Shader = shader!("matmul/naive", "matmul/naive.wgsl");

/// Output tile of the register-blocked kernel (rows and columns).
const TILE: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_batch: u32,
    a_row: u32,
    a_col: u32,
    tiles_n: u32,
    b_batch: u32,
    b_row: u32,
    b_col: u32,
    tiles_m: u32,
}

/// C = op(A) · op(B), op(X) = Xᵀ when the flag is set, over `batch` matrices.
struct MatMul {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    /// Whether each operand has its own batch (false: one matrix shared by every batch).
    a_batched: bool,
    b_batched: bool,
    naive: bool,
}

impl MatMul {
    /// (batch, row, column) strides of op(A) and op(B).
    fn strides(&self) -> ([usize; 3], [usize; 3]) {
        let (m, n, k) = (self.m, self.n, self.k);
        let a = if self.trans_a {
            [m * k, 1, m]
        } else {
            [m * k, k, 1]
        };
        let b = if self.trans_b {
            [k * n, 1, k]
        } else {
            [k * n, n, 1]
        };
        let a = [if self.a_batched { a[0] } else { 0 }, a[1], a[2]];
        let b = [if self.b_batched { b[0] } else { 0 }, b[1], b[2]];
        (a, b)
    }
}

impl Op for MatMul {
    fn name(&self) -> &'static str {
        if self.naive { "matmul_naive" } else { "matmul" }
    }
    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        let (sa, sb) = self.strides();
        let (m, n, k) = (self.m, self.n, self.k);
        for b in 0..self.batch {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0;
                    for p in 0..k {
                        acc += ins[0][b * sa[0] + i * sa[1] + p * sa[2]]
                            * ins[1][b * sb[0] + p * sb[1] + j * sb[2]];
                    }
                    outs[0][(b * m + i) * n + j] = acc;
                }
            }
        }
    }
    fn kernel(&self) -> Kernel {
        let (sa, sb) = self.strides();
        let (tiles_m, tiles_n) = (self.m.div_ceil(TILE), self.n.div_ceil(TILE));
        let u = |x: usize| x as u32;
        let p = Params {
            m: u(self.m),
            n: u(self.n),
            k: u(self.k),
            batch: u(self.batch),
            a_batch: u(sa[0]),
            a_row: u(sa[1]),
            a_col: u(sa[2]),
            tiles_n: u(tiles_n),
            b_batch: u(sb[0]),
            b_row: u(sb[1]),
            b_col: u(sb[2]),
            tiles_m: u(tiles_m),
        };
        if self.naive {
            Kernel::per_element(&NAIVE, &p, self.batch * self.m * self.n)
        } else {
            Kernel::new(&TILED, &p, (self.batch * tiles_m * tiles_n) as u64)
        }
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (a, b, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
        let (ta, tb) = (self.trans_a, self.trans_b);
        // d op(A) = G op(B)ᵀ and d op(B) = op(A)ᵀ G, transposed back where the operand was.
        let da = if ta {
            b.matmul_t(g, tb, true)
        } else {
            g.matmul_t(b, false, !tb)
        };
        let db = if tb {
            g.matmul_t(a, true, ta)
        } else {
            a.matmul_t(g, !ta, false)
        };
        vec![Some(da), Some(db)]
    }
}

impl Tensor {
    /// Matrix product over the last two dims: `[.., m, k] · [.., k, n] → [.., m, n]`. Batch dims
    /// must match, or one operand must be a plain matrix (shared by every batch).
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        // Read a transposed operand in place instead of copying it.
        let (a, ta) = self.untransposed();
        let (b, tb) = other.untransposed();
        a.matmul_impl(&b, ta, tb, false, self.shape(), other.shape())
    }

    /// `op(self) · op(other)` with op = transpose where the flag is set.
    #[track_caller]
    pub fn matmul_t(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Tensor {
        self.matmul_impl(other, trans_a, trans_b, false, self.shape(), other.shape())
    }

    /// The same product through the one-invocation-per-output reference kernel.
    #[doc(hidden)]
    #[track_caller]
    pub fn matmul_naive(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Tensor {
        self.matmul_impl(other, trans_a, trans_b, true, self.shape(), other.shape())
    }

    /// If this tensor is its source with the last two dims swapped, and the source has not been
    /// updated in place since, the source and `true`.
    fn untransposed(&self) -> (Tensor, bool) {
        if let Some(op) = &self.node.op
            && op.swaps_last_two()
            && let Some(src) = self.node.inputs.borrow().first()
            && src.node.version.get() == self.node.input_versions[0]
        {
            return (src.clone(), true);
        }
        (self.clone(), false)
    }

    #[track_caller]
    fn matmul_impl(
        &self,
        other: &Tensor,
        ta: bool,
        tb: bool,
        naive: bool,
        shown_a: &[usize],
        shown_b: &[usize],
    ) -> Tensor {
        let (sa, sb) = (self.shape(), other.shape());
        let dims = |s: &[usize], t: bool| -> Option<(usize, usize)> {
            let r = s.len();
            (r >= 2).then(|| {
                if t {
                    (s[r - 1], s[r - 2])
                } else {
                    (s[r - 2], s[r - 1])
                }
            })
        };
        let (Some((m, ka)), Some((kb, n))) = (dims(sa, ta), dims(sb, tb)) else {
            panic!("matmul: shapes {shown_a:?} and {shown_b:?} cannot be multiplied (rank < 2)")
        };
        let (batch_a, batch_b) = (&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
        let batch_shape = if batch_a == batch_b || batch_b.is_empty() {
            batch_a
        } else if batch_a.is_empty() {
            batch_b
        } else {
            panic!("matmul: shapes {shown_a:?} and {shown_b:?} have different batch dims")
        };
        if ka != kb {
            panic!("matmul: shapes {shown_a:?} and {shown_b:?} cannot be multiplied")
        }
        let mut out = batch_shape.to_vec();
        out.extend([m, n]);
        let op = MatMul {
            batch: crate::shape::numel(batch_shape),
            m,
            n,
            k: ka,
            trans_a: ta,
            trans_b: tb,
            a_batched: !batch_a.is_empty(),
            b_batched: !batch_b.is_empty(),
            naive,
        };
        Tensor::record(op, &[self, other], out)
    }
}
