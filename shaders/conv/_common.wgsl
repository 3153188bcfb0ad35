// conv/_common.wgsl — what the convolution kernels share: parameters, bindings, helpers.
// A 2-D convolution (cross-correlation, PyTorch's layouts) is three implicit matrix products,
// each computed per group of channels by an 8×8 workgroup writing a 64×64 tile, one 8×8 block
// per invocation: rows row0 + i (row0 = 8·lid.y) and columns col0 + 8·j (col0 = lid.x), so
// neighbouring invocations read neighbouring columns of the second operand, which the host
// lays out column-contiguous, and the same element of the first, which the kernel gathers from
// the image as it reads it (no im2col buffer). Each kernel sums each output in one order, one
// term at a time.
//   x [n, c, h, w], weight [o, cg, kh, kw], y [n, o, oh, ow]; cg = c / groups, og = o / groups;
//   y(n, o, i, j) = Σ_{c', a, b} x(n, g·cg + c', i·sh − ph + a·dh, j·sw − pw + b·dw) · w(o, c', a, b)
//   with g = o / og and x read as 0 outside the image.
// bindings: 0 first operand (read), 1 second operand (read), 2 bias (read; empty for the
// gradient kernels), 3 output (write), 4 params

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    oh: u32,
    ow: u32,
    groups: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    cg: u32,
    og: u32,
    // The product's rows and columns (per group) and its number of terms.
    rows: u32,
    cols: u32,
    k: u32,
    tiles_m: u32,
    tiles_n: u32,
    has_bias: u32,
    // The weight gradient's slice of the sum: images from n0, output rows oh0..oh1.
    n0: u32,
    oh0: u32,
    oh1: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// The linear index of this workgroup (grids over 65,535 are spread over y and z).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + (wid.y + wid.z * nwg.y) * nwg.x;
}

// a at (ih, iw) of the plane [h, w] starting at `plane`; 0 outside the plane.
fn pixel_a(plane: u32, ih: i32, iw: i32) -> f32 {
    let inside = ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w);
    let at = select(0u, plane + u32(ih) * p.w + u32(iw), inside);
    return select(0.0, a[at], inside);
}

// The tile of this workgroup: (group, first row, first column) of its invocation's block, or
// none (x = 0xffffffff) past the last tile.
fn block(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> vec3<u32> {
    let tile = workgroup_index(wid, nwg);
    if tile >= p.tiles_n * p.tiles_m * p.groups {
        return vec3<u32>(0xffffffffu, 0u, 0u);
    }
    let tn = tile % p.tiles_n;
    let tm = (tile / p.tiles_n) % p.tiles_m;
    let g = tile / (p.tiles_n * p.tiles_m);
    return vec3<u32>(g, tm * 64u + lid.y * 8u, tn * 64u + lid.x);
}

// An 8×8 block of accumulators: row i, columns 0..3 in ci0 and 4..7 in ci1. Passed and returned
// by value, which keeps it in registers.
struct Rows8 {
    c00: vec4<f32>, c01: vec4<f32>, c10: vec4<f32>, c11: vec4<f32>,
    c20: vec4<f32>, c21: vec4<f32>, c30: vec4<f32>, c31: vec4<f32>,
    c40: vec4<f32>, c41: vec4<f32>, c50: vec4<f32>, c51: vec4<f32>,
    c60: vec4<f32>, c61: vec4<f32>, c70: vec4<f32>, c71: vec4<f32>,
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

// Row i of a block as 8 values (columns col0 + 8·j).
fn block_row(t: Rows8, i: u32) -> array<f32, 8> {
    var lo: vec4<f32>;
    var hi: vec4<f32>;
    switch i {
        case 0u: { lo = t.c00; hi = t.c01; }
        case 1u: { lo = t.c10; hi = t.c11; }
        case 2u: { lo = t.c20; hi = t.c21; }
        case 3u: { lo = t.c30; hi = t.c31; }
        case 4u: { lo = t.c40; hi = t.c41; }
        case 5u: { lo = t.c50; hi = t.c51; }
        case 6u: { lo = t.c60; hi = t.c61; }
        default: { lo = t.c70; hi = t.c71; }
    }
    return array<f32, 8>(lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
}

// Eight columns of the second operand from `start` (column col0 + 8·j at start + 8·j, clamped to
// the last column so edge tiles read valid data).
fn columns8(start: u32, col0: u32) -> array<u32, 8> {
    var at: array<u32, 8>;
    for (var j = 0u; j < 8u; j++) {
        at[j] = start + min(col0 + 8u * j, p.cols - 1u);
    }
    return at;
}
