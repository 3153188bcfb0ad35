//! Matrix products: 2-D and batched, either operand transposed (read through strides, never
//! copied), a rank-2 operand broadcast over the other's batch, and an epilogue — bias and
//! activation applied as the result is stored, which makes a linear layer one dispatch.
//! `a.matmul(&b.t())` notices the transpose and reads `b` in place.
//!
//! The activation of the epilogue is a row of the unary table: its WGSL body
//! (`shaders/unary/<name>.wgsl`, defining `f`) is joined to the kernel, so each (kernel,
//! activation) pair is its own shader, compiled when first used. Activations whose derivative
//! the backward pass can compute from the stored output (relu, leaky relu, sigmoid, tanh, elu)
//! are fused always; the others (gelu, gelu_tanh, softplus) only when no gradient will pass
//! through the product, since their backward needs the value before the activation.
//!
//! Kernels (all sum each output in k order, so they give the same bits): `matmul/subgroup.wgsl`
//! where subgroups have 8 lanes (compiled in the background; `matmul/tiled.wgsl` runs until it
//! is ready), `matmul/shared.wgsl` (workgroup memory, 128×128 tiles) for large products on
//! hardware GPUs, `matmul/tiled.wgsl` elsewhere, `matmul/naive.wgsl` for results under 8 rows
//! and as the reference of `wgrad check`.

use crate::Tensor;
use crate::nn::Activation;
use crate::op::{BackwardCtx, Kernel, Needs, Op, Shader, shader};

/// The unary rows a product can apply as it stores, in the order of the kernel tables below.
const EPILOGUES: [&str; 9] = [
    "copy",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "elu",
    "gelu",
    "gelu_tanh",
    "softplus",
];

/// One shader per epilogue for a kernel file: `matmul/_common.wgsl`, the kernel, then the unary
/// row's body (listed in the order of [`EPILOGUES`]).
macro_rules! with_epilogues {
    ($kernel:literal) => {
        with_epilogues!(
            $kernel: "copy",
            "relu",
            "leaky_relu",
            "sigmoid",
            "tanh",
            "elu",
            "gelu",
            "gelu_tanh",
            "softplus"
        )
    };
    ($kernel:literal: $($act:literal),+) => {
        [$(shader!(
            concat!("matmul/", $kernel, ".", $act),
            "matmul/_common.wgsl",
            concat!("matmul/", $kernel, ".wgsl"),
            concat!("unary/", $act, ".wgsl")
        )),+]
    };
}

static NAIVE: [Shader; 9] = with_epilogues!("naive");
static TILED: [Shader; 9] = with_epilogues!("tiled");
static SHARED: [Shader; 9] = with_epilogues!("shared");
static SUBGROUP: [Shader; 9] = with_epilogues!("subgroup");

/// Output tile of the tiled and subgroup kernels (rows and columns).
const TILE: usize = 64;
/// Output tile of the workgroup-memory kernel.
const SHARED_TILE: usize = 128;

/// Which kernel computes a product.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// By shape and adapter (what every product uses).
    Auto,
    Naive,
    Tiled,
    /// The subgroup kernel where the adapter has 8-lane subgroups, the tiled one elsewhere.
    Subgroup,
    /// The workgroup-memory kernel (on any adapter; `Auto` picks it on hardware GPUs).
    Shared,
}

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
    _pad: u32,
    alpha: f32,
    has_bias: u32,
    c_batch: u32,
}

/// The unary row (an index into [`EPILOGUES`]) and parameter a product applies to `act` as it
/// stores, if it can: an output that will carry a gradient fuses only activations whose
/// derivative is a function of their output (relu, leaky relu and elu with a positive
/// parameter, sigmoid, tanh), so the backward pass needs only what the forward pass wrote.
fn epilogue(act: Activation, needs_grad: bool) -> Option<(usize, f32)> {
    let (row, alpha) = act.unary_row().unwrap_or(("copy", 0.0));
    let from_output = match act {
        Activation::Identity | Activation::Relu | Activation::Sigmoid | Activation::Tanh => true,
        Activation::LeakyRelu(s) | Activation::Elu(s) => s > 0.0,
        Activation::Gelu | Activation::GeluTanh | Activation::Softplus => false,
    };
    if needs_grad && !from_output {
        return None;
    }
    let index = EPILOGUES.iter().position(|&e| e == row)?;
    Some((index, alpha))
}

/// The most terms one kernel sums per output; longer products are split (see
/// [`crate::op::MAX_LOOP`]). A multiple of every kernel's k-step, with room for the
/// workgroup-memory kernel's nested slab loop (k + k/16 iterations).
const K_PIECE: usize = 61_440;

/// C = act(op(A) · op(B) + bias), op(X) = Xᵀ when the flag is set, over `batch` matrices.
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
    has_bias: bool,
    /// The epilogue's activation: an index into [`EPILOGUES`] and its parameter.
    act: (usize, f32),
    variant: Variant,
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

    fn params(&self, tile: usize) -> Params {
        let (a, b) = self.strides();
        let u = |x: usize| x as u32;
        Params {
            m: u(self.m),
            n: u(self.n),
            k: u(self.k),
            batch: u(self.batch),
            a_batch: u(a[0]),
            a_row: u(a[1]),
            a_col: u(a[2]),
            tiles_n: u(self.n.div_ceil(tile)),
            b_batch: u(b[0]),
            b_row: u(b[1]),
            b_col: u(b[2]),
            tiles_m: u(self.m.div_ceil(tile)),
            _pad: 0,
            alpha: self.act.1,
            has_bias: self.has_bias as u32,
            c_batch: u(self.m * self.n),
        }
    }
}

/// The plain epilogue: no activation.
const COPY: (usize, f32) = (0, 0.0);

fn naive(shader: &'static Shader, p: &Params) -> Kernel {
    let n = p.batch as u64 * p.m as u64 * p.n as u64;
    Kernel::per_element(shader, p, n as usize)
}

fn tiled(shader: &'static Shader, p: &Params) -> Kernel {
    let tiles = p.batch as u64 * p.tiles_m as u64 * p.tiles_n as u64;
    Kernel::new(shader, p, tiles)
}

impl Op for MatMul {
    fn name(&self) -> &'static str {
        match self.variant {
            Variant::Auto => "matmul",
            Variant::Naive => "matmul_naive",
            Variant::Tiled => "matmul_tiled",
            Variant::Subgroup => "matmul_subgroup",
            Variant::Shared => "matmul_shared",
        }
    }

    fn cpu(&self, ins: &[&[f64]], outs: &mut [&mut [f64]]) {
        let (sa, sb) = self.strides();
        let (m, n, k) = (self.m, self.n, self.k);
        let act = crate::ops::unary::reference(EPILOGUES[self.act.0], self.act.1);
        for b in 0..self.batch {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0;
                    for p in 0..k {
                        acc += ins[0][b * sa[0] + i * sa[1] + p * sa[2]]
                            * ins[1][b * sb[0] + p * sb[1] + j * sb[2]];
                    }
                    if self.has_bias {
                        acc += ins[2][j];
                    }
                    outs[0][(b * m + i) * n + j] = act(acc);
                }
            }
        }
    }

    fn kernel(&self) -> Kernel {
        let p = self.params(TILE);
        let e = self.act.0;
        let shared = || tiled(&SHARED[e], &self.params(SHARED_TILE));
        match self.variant {
            Variant::Naive => naive(&NAIVE[e], &p),
            Variant::Tiled => tiled(&TILED[e], &p),
            Variant::Shared => shared(),
            Variant::Subgroup => {
                tiled(&SUBGROUP[e], &p).requiring(Needs::Subgroup8, tiled(&TILED[e], &p))
            }
            // Under 8 rows the tiled kernels load as much per output as the naive one.
            Variant::Auto if self.m < 8 => naive(&NAIVE[e], &p),
            Variant::Auto => {
                // On a GPU the workgroup-memory kernel wins once there are enough of its large
                // tiles to fill the machine; below that, the smaller tiles spread further.
                let big_tiles =
                    self.batch * self.m.div_ceil(SHARED_TILE) * self.n.div_ceil(SHARED_TILE);
                let elsewhere = if big_tiles >= 64 {
                    shared().requiring(Needs::HardwareGpu, tiled(&TILED[e], &p))
                } else {
                    tiled(&TILED[e], &p)
                };
                tiled(&SUBGROUP[e], &p)
                    .requiring(Needs::Subgroup8, elsewhere)
                    .compiled_in_background()
            }
        }
    }

    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
        // dZ = dY · act'(Z), from the stored output (exact for the activations fused when a
        // gradient is needed; see `epilogue`).
        let (row, alpha) = (EPILOGUES[self.act.0], self.act.1);
        let g = if row == "copy" {
            ctx.grad.clone()
        } else {
            crate::ops::unary::grad_from_output(row, alpha, ctx.output, ctx.grad)
        };
        let (ta, tb) = (self.trans_a, self.trans_b);
        // d op(A) = G op(B)ᵀ and d op(B) = op(A)ᵀ G, transposed back where the operand was; a
        // product nobody needs is not recorded.
        let da = ctx.needs[0].then(|| {
            if ta {
                b.matmul_transposed(&g, tb, true)
            } else {
                g.matmul_transposed(b, false, !tb)
            }
        });
        let db = ctx.needs[1].then(|| {
            if tb {
                g.matmul_transposed(a, true, ta)
            } else {
                a.matmul_transposed(&g, !ta, false)
            }
        });
        // The bias gradient is G summed down to the bias's shape (the tape does the summing).
        let dbias = (self.has_bias && ctx.needs[2]).then_some(g);
        vec![da, db, dbias]
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
        a.product(
            &b,
            ta,
            tb,
            None,
            COPY,
            Variant::Auto,
            (self.shape(), other.shape()),
        )
    }

    /// `op(self) · op(other)` with op = transpose where the flag is set (the backward rules'
    /// products; users write `a.t().matmul(&b)`, which reads `a` in place the same way).
    #[track_caller]
    pub(crate) fn matmul_transposed(&self, other: &Tensor, trans_a: bool, trans_b: bool) -> Tensor {
        let shown = (self.shape(), other.shape());
        self.product(other, trans_a, trans_b, None, COPY, Variant::Auto, shown)
    }

    /// The same product through a chosen kernel (the differential table checks each one).
    #[doc(hidden)]
    #[track_caller]
    pub fn matmul_variant(
        &self,
        other: &Tensor,
        trans_a: bool,
        trans_b: bool,
        variant: Variant,
    ) -> Tensor {
        let shown = (self.shape(), other.shape());
        self.product(other, trans_a, trans_b, None, COPY, variant, shown)
    }

    /// A dense layer in one dispatch: `act(self · weightᵀ + bias)` with `self` of shape
    /// `[.., in]`, `weight` `[out, in]` (PyTorch's layout) and `bias` `[out]`. Activations whose
    /// derivative needs their input (gelu, gelu_tanh, softplus) are fused only when no gradient
    /// will pass through the layer (evaluation, `no_grad`); otherwise they run as a second op.
    #[track_caller]
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>, act: Activation) -> Tensor {
        self.linear_variant(weight, bias, act, Variant::Auto)
    }

    #[doc(hidden)]
    #[track_caller]
    pub fn linear_variant(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        act: Activation,
        variant: Variant,
    ) -> Tensor {
        assert!(
            self.rank() >= 1 && weight.rank() == 2 && self.dim(-1) == weight.shape()[1],
            "linear: input {:?} and weight {:?} do not fit (want [.., in] and [out, in])",
            self.shape(),
            weight.shape()
        );
        if let Some(b) = bias {
            assert_eq!(
                b.shape(),
                &weight.shape()[..1],
                "linear: bias {:?} does not match weight {:?} (want [out])",
                b.shape(),
                weight.shape()
            );
        }
        let rows = self.numel() / weight.shape()[1].max(1);
        let x = self.reshape(&[rows, weight.shape()[1]]);
        let needs_grad = self.device().grad_enabled()
            && (self.requires_grad()
                || weight.requires_grad()
                || bias.is_some_and(Tensor::requires_grad));
        let (fused, later) = match epilogue(act, needs_grad) {
            Some(e) => (e, None),
            None => (COPY, Some(act)),
        };
        let y = x.product(
            weight,
            false,
            true,
            bias,
            fused,
            variant,
            (self.shape(), weight.shape()),
        );
        let mut out = self.shape().to_vec();
        *out.last_mut().expect("rank ≥ 1") = weight.shape()[0];
        let y = y.reshape(&out);
        match later {
            Some(act) => crate::nn::Module::forward(&act, &y),
            None => y,
        }
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

    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    fn product(
        &self,
        other: &Tensor,
        ta: bool,
        tb: bool,
        bias: Option<&Tensor>,
        act: (usize, f32),
        variant: Variant,
        (shown_a, shown_b): (&[usize], &[usize]),
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
        if ka > K_PIECE {
            // Each output sums its k products in one kernel loop, which llvmpipe cuts short
            // past 65,535 iterations: long products are sums of shorter ones.
            let (axis_a, axis_b) = (
                sa.len() - if ta { 2 } else { 1 },
                sb.len() - if tb { 1 } else { 2 },
            );
            let y = (0..ka)
                .step_by(K_PIECE)
                .map(|start| {
                    let len = (ka - start).min(K_PIECE);
                    let a = self.narrow(axis_a as isize, start, len);
                    let b = other.narrow(axis_b as isize, start, len);
                    let shown = (shown_a, shown_b);
                    a.product(&b, ta, tb, None, COPY, variant, shown)
                })
                .reduce(|sum, part| sum.add(&part))
                .expect("k > K_PIECE");
            let y = match bias {
                Some(b) => y + b,
                None => y,
            };
            return match act {
                COPY => y,
                (row, alpha) => y.unary(EPILOGUES[row], alpha, 0.0),
            };
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
            has_bias: bias.is_some(),
            act,
            variant,
        };
        let empty;
        let bias = match bias {
            Some(b) => b,
            None => {
                empty = Tensor::empty(self.device());
                &empty
            }
        };
        Tensor::record(op, &[self, other, bias], out)
    }
}
