// matmul/tiled.wgsl — c[b, i, j] = Σ_p A(b, i, p) · B(b, p, j), register-blocked: a 16×16
// workgroup computes a 64×64 tile, each invocation a 4×4 block (rows 4·ty + r, columns tx + 16·s,
// so neighbouring invocations read neighbouring columns of B). No workgroup memory or barriers:
// on CPU-backed adapters they cost more than they save. Edge tiles clamp their loads and mask
// their stores, so any size runs on the same path. Operands are addressed through strides as
// in matmul/naive.wgsl (transposes and broadcast batches are read in place).
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

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wid.x + (wid.y + wid.z * nwg.y) * nwg.x;
    if tile >= p.tiles_n * p.tiles_m * p.batch {
        return;
    }
    let tn = tile % p.tiles_n;
    let tm = (tile / p.tiles_n) % p.tiles_m;
    let bat = tile / (p.tiles_n * p.tiles_m);
    let row0 = tm * 64u + lid.y * 4u;
    let col0 = tn * 64u + lid.x;

    // Clamped addresses: out-of-range rows and columns read valid data and are never stored.
    var arow: array<u32, 4>;
    var bcol: array<u32, 4>;
    for (var r = 0u; r < 4u; r++) {
        arow[r] = bat * p.a_batch + min(row0 + r, p.m - 1u) * p.a_row;
        bcol[r] = bat * p.b_batch + min(col0 + 16u * r, p.n - 1u) * p.b_col;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var q = 0u; q < p.k; q++) {
        let ao = q * p.a_col;
        let bo = q * p.b_row;
        let bv = vec4<f32>(b[bcol[0] + bo], b[bcol[1] + bo], b[bcol[2] + bo], b[bcol[3] + bo]);
        acc0 += a[arow[0] + ao] * bv;
        acc1 += a[arow[1] + ao] * bv;
        acc2 += a[arow[2] + ao] * bv;
        acc3 += a[arow[3] + ao] * bv;
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let base = bat * p.m * p.n;
    for (var r = 0u; r < 4u; r++) {
        let row = row0 + r;
        if row < p.m {
            for (var s = 0u; s < 4u; s++) {
                let col = col0 + 16u * s;
                if col < p.n {
                    c[base + row * p.n + col] = accs[r][s];
                }
            }
        }
    }
}
