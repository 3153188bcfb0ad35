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
use crate::op::{BackwardCtx, Input, Kernel, Layout, Needs, Op, Shader, shader};

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
    a_off: u32,
    alpha: f32,
    has_bias: u32,
    c_batch: u32,
    b_off: u32,
    _pad: [u32; 3],
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

/// C = act(A · B + bias) over a batch of matrices, A `[.., m, k]` and B `[.., k, n]` read through
/// their layouts: a transposed operand is one whose last two strides are swapped, a matrix
/// shared by every batch one whose batch stride is 0, a slice one with an offset.
struct MatMul {
    has_bias: bool,
    /// The epilogue's activation: an index into [`EPILOGUES`] and its parameter.
    act: (usize, f32),
    variant: Variant,
}

/// The strides of a matmul operand `[.., rows, cols]`: (batch, row, column) and its offset.
/// Its batch dims must be one run (see [`batch_stride`]).
fn operand(l: &Layout) -> ([usize; 3], usize) {
    let r = l.shape.len();
    let batch = batch_stride(l).expect("operands with batch dims of one stride");
    ([batch, l.strides[r - 2], l.strides[r - 1]], l.offset)
}

/// The one stride that steps through every batch matrix of `l` in row-major order, if there is
/// one: 0 for a plain matrix or a broadcast batch, else the stride of the last batch dim when
/// the others follow from it.
fn batch_stride(l: &Layout) -> Option<usize> {
    let dims: Vec<(usize, usize)> = l.shape[..l.shape.len() - 2]
        .iter()
        .copied()
        .zip(l.strides.iter().copied())
        .filter(|&(d, _)| d > 1)
        .collect();
    let Some(&(_, last)) = dims.last() else {
        return Some(0);
    };
    let mut expect = last;
    for &(d, s) in dims.iter().rev() {
        if s != expect {
            return None;
        }
        expect = s * d;
    }
    Some(last)
}

impl MatMul {
    /// (batch, m, n, k) of a product of `a` and `b` into `out`.
    fn dims(a: &Layout, b: &Layout, out: &Layout) -> (usize, usize, usize, usize) {
        let (ra, rb, ro) = (a.shape.len(), b.shape.len(), out.shape.len());
        (
            crate::shape::numel(&out.shape[..ro - 2]),
            a.shape[ra - 2],
            b.shape[rb - 1],
            a.shape[ra - 1],
        )
    }

    fn params(&self, ins: &[&Layout], out: &Layout, tile: usize) -> Params {
        let (batch, m, n, k) = MatMul::dims(ins[0], ins[1], out);
        let ((sa, oa), (sb, ob)) = (operand(ins[0]), operand(ins[1]));
        let u = |x: usize| u32::try_from(x).expect("matmul sizes fit u32");
        Params {
            m: u(m),
            n: u(n),
            k: u(k),
            batch: u(batch),
            a_batch: u(sa[0]),
            a_row: u(sa[1]),
            a_col: u(sa[2]),
            tiles_n: u(n.div_ceil(tile)),
            b_batch: u(sb[0]),
            b_row: u(sb[1]),
            b_col: u(sb[2]),
            tiles_m: u(m.div_ceil(tile)),
            a_off: u(oa),
            alpha: self.act.1,
            has_bias: self.has_bias as u32,
            c_batch: u(m * n),
            b_off: u(ob),
            _pad: [0; 3],
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

    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let (a, b) = (ins[0].layout, ins[1].layout);
        let out_shape = product_shape(&a.shape, &b.shape);
        let (batch, m, n, k) = MatMul::dims(a, b, &Layout::contiguous(&out_shape));
        let ((sa, oa), (sb, ob)) = (operand(a), operand(b));
        let act = crate::ops::unary::reference(EPILOGUES[self.act.0], self.act.1);
        let (av, bv) = (ins[0].values, ins[1].values);
        for bat in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0;
                    for p in 0..k {
                        acc += av[oa + bat * sa[0] + i * sa[1] + p * sa[2]]
                            * bv[ob + bat * sb[0] + p * sb[1] + j * sb[2]];
                    }
                    if self.has_bias {
                        acc += ins[2].values[j];
                    }
                    outs[0][(bat * m + i) * n + j] = act(acc);
                }
            }
        }
    }

    fn kernel(&self, ins: &[&Layout], out: &Layout) -> Kernel {
        let p = self.params(ins, out, TILE);
        let e = self.act.0;
        let shared = || tiled(&SHARED[e], &self.params(ins, out, SHARED_TILE));
        let (batch, m, n, _) = MatMul::dims(ins[0], ins[1], out);
        match self.variant {
            Variant::Naive => naive(&NAIVE[e], &p),
            Variant::Tiled => tiled(&TILED[e], &p),
            Variant::Shared => shared(),
            Variant::Subgroup => {
                tiled(&SUBGROUP[e], &p).requiring(Needs::Subgroup8, tiled(&TILED[e], &p))
            }
            // Under 8 rows the tiled kernels load as much per output as the naive one.
            Variant::Auto if m < 8 => naive(&NAIVE[e], &p),
            Variant::Auto => {
                // On a GPU the workgroup-memory kernel wins once there are enough of its large
                // tiles to fill the machine; below that, the smaller tiles spread further.
                let big_tiles = batch * m.div_ceil(SHARED_TILE) * n.div_ceil(SHARED_TILE);
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

    fn strided(&self) -> bool {
        true
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
        // dA = G Bᵀ and dB = Aᵀ G, transposes read in place; a product nobody needs is not
        // recorded. An operand read through a transposed view (a linear layer's `W.t()`) gets
        // its gradient as the transpose of a product, (B Gᵀ)ᵀ or (Gᵀ A)ᵀ, so that the
        // gradient reaching the stored tensor is plain and its optimizer copies nothing.
        let da = ctx.needs[0].then(|| {
            if transposed(a) && b.rank() == 2 {
                b.matmul(&g.t()).t()
            } else {
                g.matmul(&b.t())
            }
        });
        let db = ctx.needs[1].then(|| {
            if transposed(b) && a.rank() == 2 {
                g.t().matmul(a).t()
            } else {
                a.t().matmul(&g)
            }
        });
        // The bias gradient is G summed down to the bias's shape (the tape does the summing).
        let dbias = (self.has_bias && ctx.needs[2]).then_some(g);
        vec![da, db, dbias]
    }
}

/// Whether a matrix is read through a transpose of plain storage: its last two strides are
/// `[1, rows]`.
fn transposed(t: &Tensor) -> bool {
    let l = t.layout();
    let r = l.shape.len();
    r == 2 && l.shape[0] > 1 && l.shape[1] > 1 && l.strides[..] == [1, l.shape[0]]
}

/// The shape of `[.., m, k] · [.., k, n]`: the batched operand's batch dims, then m and n.
fn product_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let (ra, rb) = (a.len(), b.len());
    let batch = if ra > 2 { &a[..ra - 2] } else { &b[..rb - 2] };
    let mut out = batch.to_vec();
    out.extend([a[ra - 2], b[rb - 1]]);
    out
}

impl Tensor {
    /// Matrix product over the last two dims: `[.., m, k] · [.., k, n] → [.., m, n]`. Batch dims
    /// must match, or one operand must be a plain matrix (shared by every batch). Views are read
    /// in place: `a.matmul(&b.t())` copies nothing.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        self.product(other, None, COPY, Variant::Auto)
    }

    /// `op(self) · op(other)` with op = `t()` where the flag is set, through a chosen kernel (the
    /// differential table checks each one).
    #[doc(hidden)]
    #[track_caller]
    pub fn matmul_variant(
        &self,
        other: &Tensor,
        trans_a: bool,
        trans_b: bool,
        variant: Variant,
    ) -> Tensor {
        let a = if trans_a { self.t() } else { self.clone() };
        let b = if trans_b { other.t() } else { other.clone() };
        a.product(&b, None, COPY, variant)
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
        let y = x.product(&weight.t(), bias, fused, variant);
        let mut out = self.shape().to_vec();
        *out.last_mut().expect("rank ≥ 1") = weight.shape()[0];
        let y = y.reshape(&out);
        match later {
            Some(act) => crate::nn::Module::forward(&act, &y),
            None => y,
        }
    }

    #[track_caller]
    fn product(
        &self,
        other: &Tensor,
        bias: Option<&Tensor>,
        act: (usize, f32),
        variant: Variant,
    ) -> Tensor {
        let (sa, sb) = (self.shape(), other.shape());
        if sa.len() < 2 || sb.len() < 2 {
            panic!("matmul: shapes {sa:?} and {sb:?} cannot be multiplied (rank < 2)")
        }
        let (batch_a, batch_b) = (&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
        if !(batch_a == batch_b || batch_a.is_empty() || batch_b.is_empty()) {
            panic!("matmul: shapes {sa:?} and {sb:?} have different batch dims")
        }
        let (ka, kb) = (sa[sa.len() - 1], sb[sb.len() - 2]);
        if ka != kb {
            panic!("matmul: shapes {sa:?} and {sb:?} cannot be multiplied")
        }
        if ka > K_PIECE {
            // Each output sums its k products in one kernel loop, which llvmpipe cuts short
            // past 65,535 iterations: long products are sums of shorter ones (over views).
            let y = (0..ka)
                .step_by(K_PIECE)
                .map(|start| {
                    let len = (ka - start).min(K_PIECE);
                    let a = self.narrow(-1, start, len);
                    let b = other.narrow(-2, start, len);
                    a.product(&b, None, COPY, variant)
                })
                .reduce(|sum, part| sum + part)
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
        // Operands are read through their strides; one whose batch dims cannot be stepped
        // with a single stride is copied first.
        let readable = |t: &Tensor| {
            if batch_stride(t.layout()).is_some() {
                t.clone()
            } else {
                t.contiguous()
            }
        };
        let (a, b) = (readable(self), readable(other));
        let out = product_shape(sa, sb);
        let op = MatMul {
            has_bias: bias.is_some(),
            act,
            variant,
        };
        let bias = match bias {
            Some(b) => b.contiguous(),
            None => Tensor::empty(self.device()),
        };
        Tensor::record(op, &[&a, &b, &bias], out)
    }
}
