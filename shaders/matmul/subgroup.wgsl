// matmul/subgroup.wgsl — matmul for adapters whose subgroups have exactly 8 lanes, such as
// lavapipe (joined with matmul/_common.wgsl). On such CPU-backed adapters a storage load costs
// far more than arithmetic, so each value is loaded once per subgroup: one 8-lane workgroup
// computes a 64×64 tile of C, lane l owning columns 8l..8l+7 and all 64 rows. At step q a lane
// loads its own 8 values of B's row q; the 64 values of A's column q are loaded 8 per lane and
// handed to every lane with subgroupBroadcast. Edge tiles clamp their loads and mask their
// stores, so any size takes the same path.

// t += (row i: lane i's value of av) ⊗ (b0, b1).
fn fma_rows8(t: Rows8, av: f32, b0: vec4<f32>, b1: vec4<f32>) -> Rows8 {
    var o = t;
    var x = subgroupBroadcast(av, 0u);
    o.c00 += x * b0; o.c01 += x * b1;
    x = subgroupBroadcast(av, 1u);
    o.c10 += x * b0; o.c11 += x * b1;
    x = subgroupBroadcast(av, 2u);
    o.c20 += x * b0; o.c21 += x * b1;
    x = subgroupBroadcast(av, 3u);
    o.c30 += x * b0; o.c31 += x * b1;
    x = subgroupBroadcast(av, 4u);
    o.c40 += x * b0; o.c41 += x * b1;
    x = subgroupBroadcast(av, 5u);
    o.c50 += x * b0; o.c51 += x * b1;
    x = subgroupBroadcast(av, 6u);
    o.c60 += x * b0; o.c61 += x * b1;
    x = subgroupBroadcast(av, 7u);
    o.c70 += x * b0; o.c71 += x * b1;
    return o;
}

@compute @workgroup_size(8)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let tile = workgroup_index(wid, nwg);
    if tile >= p.tiles_n * p.tiles_m * p.batch {
        return;
    }
    let tn = tile % p.tiles_n;
    let tm = (tile / p.tiles_n) % p.tiles_m;
    let bat = tile / (p.tiles_n * p.tiles_m);
    let row0 = tm * 64u;
    let col0 = tn * 64u + lane * 8u;
    // Where this lane reads (clamped at the edges): its 8 columns of B, and row 8·i + lane of
    // the tile in A for each block i of 8 rows.
    var bc: array<u32, 8>;
    var ar: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        bc[i] = p.b_off + bat * p.b_batch + min(col0 + i, p.n - 1u) * p.b_col;
        ar[i] = p.a_off + bat * p.a_batch + min(row0 + 8u * i + lane, p.m - 1u) * p.a_row;
    }
    var t0: Rows8; var t1: Rows8; var t2: Rows8; var t3: Rows8;
    var t4: Rows8; var t5: Rows8; var t6: Rows8; var t7: Rows8;
    for (var q = 0u; q < p.k; q++) {
        let bq = q * p.b_row;
        let b0 = vec4<f32>(b[bc[0] + bq], b[bc[1] + bq], b[bc[2] + bq], b[bc[3] + bq]);
        let b1 = vec4<f32>(b[bc[4] + bq], b[bc[5] + bq], b[bc[6] + bq], b[bc[7] + bq]);
        let aq = q * p.a_col;
        t0 = fma_rows8(t0, a[ar[0] + aq], b0, b1);
        t1 = fma_rows8(t1, a[ar[1] + aq], b0, b1);
        t2 = fma_rows8(t2, a[ar[2] + aq], b0, b1);
        t3 = fma_rows8(t3, a[ar[3] + aq], b0, b1);
        t4 = fma_rows8(t4, a[ar[4] + aq], b0, b1);
        t5 = fma_rows8(t5, a[ar[5] + aq], b0, b1);
        t6 = fma_rows8(t6, a[ar[6] + aq], b0, b1);
        t7 = fma_rows8(t7, a[ar[7] + aq], b0, b1);
    }
    store_rows8(t0, bat, row0, col0, 1u);
    store_rows8(t1, bat, row0 + 8u, col0, 1u);
    store_rows8(t2, bat, row0 + 16u, col0, 1u);
    store_rows8(t3, bat, row0 + 24u, col0, 1u);
    store_rows8(t4, bat, row0 + 32u, col0, 1u);
    store_rows8(t5, bat, row0 + 40u, col0, 1u);
    store_rows8(t6, bat, row0 + 48u, col0, 1u);
    store_rows8(t7, bat, row0 + 56u, col0, 1u);
}
