// matmul/tiled.wgsl — register-blocked matmul for any adapter (joined with matmul/_common.wgsl).
// An 8×8 workgroup computes a 64×64 tile of C; each invocation an 8×8 block: rows 8·ty + i and
// columns tx + 8·j, so neighbouring invocations read neighbouring columns of B. No workgroup
// memory or barriers (on CPU-backed adapters they cost more than they save). Edge tiles clamp
// their loads and mask their stores, so any size takes the same path.

@compute @workgroup_size(8, 8)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = workgroup_index(wid, nwg);
    if tile >= p.tiles_n * p.tiles_m * p.batch {
        return;
    }
    let tn = tile % p.tiles_n;
    let tm = (tile / p.tiles_n) % p.tiles_m;
    let bat = tile / (p.tiles_n * p.tiles_m);
    let row0 = tm * 64u + lid.y * 8u;
    let col0 = tn * 64u + lid.x;
    // Clamped addresses: rows and columns past the edge read valid data and are never stored.
    var ar: array<u32, 8>;
    var bc: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        ar[i] = p.a_off + bat * p.a_batch + min(row0 + i, p.m - 1u) * p.a_row;
        bc[i] = p.b_off + bat * p.b_batch + min(col0 + 8u * i, p.n - 1u) * p.b_col;
    }
    var t: Rows8;
    for (var q = 0u; q < p.k; q++) {
        let aq = q * p.a_col;
        let bq = q * p.b_row;
        let a0 = vec4<f32>(a[ar[0] + aq], a[ar[1] + aq], a[ar[2] + aq], a[ar[3] + aq]);
        let a1 = vec4<f32>(a[ar[4] + aq], a[ar[5] + aq], a[ar[6] + aq], a[ar[7] + aq]);
        let b0 = vec4<f32>(b[bc[0] + bq], b[bc[1] + bq], b[bc[2] + bq], b[bc[3] + bq]);
        let b1 = vec4<f32>(b[bc[4] + bq], b[bc[5] + bq], b[bc[6] + bq], b[bc[7] + bq]);
        t = outer_rows8(t, a0, a1, b0, b1);
    }
    store_rows8(t, bat, row0, col0, 8u);
}
