// matmul/_common.wgsl — what the matmul kernels share: parameters, bindings and the epilogue.
// Each kernel computes C = epilogue(A·B) over `batch` matrices, reading operands through offsets
// and strides (so views — transposed, sliced, a matrix shared by every batch — are read in place):
//   A(b, i, q) = a[a_off + b·a_batch + i·a_row + q·a_col]
//   B(b, q, j) = b[b_off + b·b_batch + q·b_row + j·b_col]
//   C(b, i, j) = c[b·c_batch + i·n + j] = act(Σ_q A(b, i, q)·B(b, q, j) + bias[j])
// Every kernel sums each output over q in increasing order, one product at a time, so all
// kernels give the same bits. The bias is added if has_bias; act is the activation `f` of the
// unary body file joined after the kernel (`unary/<name>.wgsl`, `copy` for none), with alpha
// as its parameter.
// bindings: 0 a (read), 1 b (read), 2 bias (read; empty when unused), 3 c (write), 4 params

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
    // m·n, passed rather than computed: lavapipe specialises kernels on the values of uniforms
    // that appear in conditions (m among them), and with m a power of two the product in the
    // store's index made its compiler emit stores that ran the whole kernel 2–4× slower.
    c_batch: u32,
    b_off: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// Write one output through the epilogue; positions outside C are skipped (edge tiles).
fn store(bat: u32, row: u32, col: u32, v: f32) {
    if row < p.m && col < p.n {
        var x = v;
        if p.has_bias != 0u {
            x += bias[col];
        }
        c[bat * p.c_batch + row * p.n + col] = f(x, p.alpha, 0.0);
    }
}

// An 8×8 block of accumulators: row i, columns 0..3 in ci0 and 4..7 in ci1. Passed and returned
// by value, which keeps it in registers and compiles quickly.
struct Rows8 {
    c00: vec4<f32>, c01: vec4<f32>, c10: vec4<f32>, c11: vec4<f32>,
    c20: vec4<f32>, c21: vec4<f32>, c30: vec4<f32>, c31: vec4<f32>,
    c40: vec4<f32>, c41: vec4<f32>, c50: vec4<f32>, c51: vec4<f32>,
    c60: vec4<f32>, c61: vec4<f32>, c70: vec4<f32>, c71: vec4<f32>,
}

// Store one row of a block: columns col, col + step, …, col + 7·step.
fn store_row(bat: u32, row: u32, col: u32, step: u32, lo: vec4<f32>, hi: vec4<f32>) {
    store(bat, row, col, lo.x);
    store(bat, row, col + step, lo.y);
    store(bat, row, col + 2u * step, lo.z);
    store(bat, row, col + 3u * step, lo.w);
    store(bat, row, col + 4u * step, hi.x);
    store(bat, row, col + 5u * step, hi.y);
    store(bat, row, col + 6u * step, hi.z);
    store(bat, row, col + 7u * step, hi.w);
}

// t += (a0, a1) (rows) ⊗ (b0, b1) (columns).
fn outer_rows8(t: Rows8, a0: vec4<f32>, a1: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>) -> Rows8 {
    var o = t;
    o.c00 += a0.x * b0; o.c01 += a0.x * b1;
    o.c10 += a0.y * b0; o.c11 += a0.y * b1;
    o.c20 += a0.z * b0; o.c21 += a0.z * b1;
    o.c30 += a0.w * b0; o.c31 += a0.w * b1;
    o.c40 += a1.x * b0; o.c41 += a1.x * b1;
    o.c50 += a1.y * b0; o.c51 += a1.y * b1;
    o.c60 += a1.z * b0; o.c61 += a1.z * b1;
    o.c70 += a1.w * b0; o.c71 += a1.w * b1;
    return o;
}

fn store_rows8(t: Rows8, bat: u32, row: u32, col: u32, step: u32) {
    store_row(bat, row, col, step, t.c00, t.c01);
    store_row(bat, row + 1u, col, step, t.c10, t.c11);
    store_row(bat, row + 2u, col, step, t.c20, t.c21);
    store_row(bat, row + 3u, col, step, t.c30, t.c31);
    store_row(bat, row + 4u, col, step, t.c40, t.c41);
    store_row(bat, row + 5u, col, step, t.c50, t.c51);
    store_row(bat, row + 6u, col, step, t.c60, t.c61);
    store_row(bat, row + 7u, col, step, t.c70, t.c71);
}

// The linear index of this workgroup (grids over 65,535 are spread over y and z).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + (wid.y + wid.z * nwg.y) * nwg.x;
}
