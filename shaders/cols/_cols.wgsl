// cols/_cols.wgsl — what im2col and col2im share. A convolution of x [n, c, h, w] by a weight
// [o, cg, kh, kw] (cg = c / groups) reads the columns
//   cols[g, (n, i, j), (c', a, b)] = x(n, g·cg + c', i·sh − ph + a·dh, j·sw − pw + b·dw)
// (0 outside the image), per group a matrix [n·oh·ow, cg·kh·kw] whose product with the
// weight's transpose is y with its channels last. col2im is its adjoint: each x element sums
// the column entries that read it.
// bindings: 0 input (read), 1 output (write), 2 params

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    cg: u32,
    // Invocations: one per output pixel and group for im2col, per row of x for col2im.
    rows: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn row_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
}

// ⌊v / d⌋ for v ≥ 0 and whether d divides v, skipping the division where d is 1 (a uniform
// branch: integer division is slow on CPU-backed adapters).
fn divide(v: i32, d: u32) -> vec2<i32> {
    if d == 1u {
        return vec2<i32>(v, 1);
    }
    let q = v / i32(d);
    return vec2<i32>(q, i32(q * i32(d) == v));
}
