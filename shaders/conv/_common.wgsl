// conv/_common.wgsl — what the convolution kernels share: parameters, bindings, helpers.
// A 2-D convolution (cross-correlation, PyTorch's layouts) is three implicit matrix products,
// each computed per group of channels by an 8×8 workgroup writing a 32×32 tile, one 4×4 block
// per invocation (rows row0 + i, columns col0 + 8·j). Operands are gathered from the tensors as
// they are read: no im2col buffer. Every kernel sums each output in one order, one term at a time.
//   x [n, c, h, w], weight [o, cg, kh, kw], y [n, o, oh, ow]; cg = c / groups, og = o / groups;
//   y(n, o, i, j) = Σ_{c', a, b} x(n, g·cg + c', i·sh − ph + a·dh, j·sw − pw + b·dw) · w(o, c', a, b)
//   with g = o / og and x read as 0 outside the image.
// bindings: 0 first operand (read), 1 second operand (read), 2 bias (read; empty for the
// gradient kernels),
// 3 output (write), 4 params

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
    return vec3<u32>(g, tm * 32u + lid.y * 4u, tn * 32u + lid.x);
}
