// matmul/naive.wgsl — c[b, i, j] = Σ_p A(b, i, p) · B(b, p, j), one invocation per output: the
// plain reference kernel on the GPU side of `wgrad check`. A(b, i, p) = a[b·a_batch + i·a_row +
// p·a_col] and likewise B, so transposed and broadcast operands are read in place.
// bindings: 0 a (read), 1 b (read), 2 c (write), 3 params

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

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i >= p.batch * p.m * p.n {
        return;
    }
    let col = i % p.n;
    let row = (i / p.n) % p.m;
    let bat = i / (p.n * p.m);
    var acc = 0.0;
    for (var q = 0u; q < p.k; q++) {
        acc += a[bat * p.a_batch + row * p.a_row + q * p.a_col] * b[bat * p.b_batch + q * p.b_row + col * p.b_col];
    }
    c[i] = acc;
}
