// matmul/shared.wgsl — matmul for hardware GPUs (joined with matmul/_common.wgsl). A 16×16
// workgroup computes a 128×128 tile of C through workgroup memory. For each slab of 16 values
// of k the 256 invocations copy A's 128×16 slab and B's 16×128 slab into workgroup memory, each
// two vec4s of 4 rows (or columns) at one k, choosing the assignment that keeps neighbouring
// invocations on neighbouring addresses for the operand's layout (plain or transposed). The
// next slab is read from memory into registers while the current one is used. Each invocation
// accumulates an 8×8 block: rows 4·ty..4·ty+3 and 64+4·ty..64+4·ty+3, columns likewise from
// tx, so that neighbouring invocations read neighbouring vec4s. Sums run in k order, one
// product at a time, as in every matmul kernel.
//
// The 16 steps of a slab are written out rather than looped, and every workgroup-memory index
// is a constant step plus an index fixed for the invocation, so the compiler can fold each read
// into one load at a constant offset (a loop would also carry the runtime's loop bound).

const BK: u32 = 16u;

// Slabs as vec4s: element (q, i) of a slab is component i % 4 of slab[q][i / 4]. Each row of
// 32 vec4s is padded by one, so slots filled at neighbouring k land in different banks.
var<workgroup> sa: array<array<vec4<f32>, 33>, 16>;
var<workgroup> sb: array<array<vec4<f32>, 33>, 16>;

fn a_at(bat: u32, row: u32, q: u32) -> f32 {
    if row < p.m && q < p.k {
        return a[p.a_off + bat * p.a_batch + row * p.a_row + q * p.a_col];
    }
    return 0.0;
}

fn b_at(bat: u32, q: u32, col: u32) -> f32 {
    if col < p.n && q < p.k {
        return b[p.b_off + bat * p.b_batch + q * p.b_row + col * p.b_col];
    }
    return 0.0;
}

// Which vec4 of a slab slot s (0..512) is: (q, group of 4). When the operand is contiguous
// along k, 16 neighbouring slots take the 16 values of k for one group; otherwise 32 take the
// 32 groups at one k.
fn slab_slot(s: u32, k_contiguous: bool) -> vec2<u32> {
    if k_contiguous {
        return vec2<u32>(s % BK, s / BK);
    }
    return vec2<u32>(s / 32u, s % 32u);
}

// Four values of a slab from memory; `inside` (the whole slab lies within the operand) skips
// the edge checks.
fn a_vec(bat: u32, row0: u32, k0: u32, slot: vec2<u32>, inside: bool) -> vec4<f32> {
    let q = k0 + slot.x;
    let r = row0 + 4u * slot.y;
    if inside {
        let i = p.a_off + bat * p.a_batch + r * p.a_row + q * p.a_col;
        return vec4<f32>(a[i], a[i + p.a_row], a[i + 2u * p.a_row], a[i + 3u * p.a_row]);
    }
    return vec4<f32>(a_at(bat, r, q), a_at(bat, r + 1u, q), a_at(bat, r + 2u, q), a_at(bat, r + 3u, q));
}

fn b_vec(bat: u32, col0: u32, k0: u32, slot: vec2<u32>, inside: bool) -> vec4<f32> {
    let q = k0 + slot.x;
    let c = col0 + 4u * slot.y;
    if inside {
        let i = p.b_off + bat * p.b_batch + q * p.b_row + c * p.b_col;
        return vec4<f32>(b[i], b[i + p.b_col], b[i + 2u * p.b_col], b[i + 3u * p.b_col]);
    }
    return vec4<f32>(b_at(bat, q, c), b_at(bat, q, c + 1u), b_at(bat, q, c + 2u), b_at(bat, q, c + 3u));
}

// acc += the outer product of this invocation's rows and columns at k = q of the slab.
fn slab_step(acc: Rows8, q: u32, lid: vec2<u32>) -> Rows8 {
    return outer_rows8(acc, sa[q][lid.y], sa[q][16u + lid.y], sb[q][lid.x], sb[q][16u + lid.x]);
}

// acc += a whole slab, k = 0..15 in order.
fn slab_full(acc: Rows8, lid: vec2<u32>) -> Rows8 {
    var t = slab_step(acc, 0u, lid);
    t = slab_step(t, 1u, lid);
    t = slab_step(t, 2u, lid);
    t = slab_step(t, 3u, lid);
    t = slab_step(t, 4u, lid);
    t = slab_step(t, 5u, lid);
    t = slab_step(t, 6u, lid);
    t = slab_step(t, 7u, lid);
    t = slab_step(t, 8u, lid);
    t = slab_step(t, 9u, lid);
    t = slab_step(t, 10u, lid);
    t = slab_step(t, 11u, lid);
    t = slab_step(t, 12u, lid);
    t = slab_step(t, 13u, lid);
    t = slab_step(t, 14u, lid);
    return slab_step(t, 15u, lid);
}

fn store4(bat: u32, row: u32, col: u32, v: vec4<f32>) {
    store(bat, row, col, v.x);
    store(bat, row, col + 1u, v.y);
    store(bat, row, col + 2u, v.z);
    store(bat, row, col + 3u, v.w);
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let tile = workgroup_index(wid, nwg);
    if tile >= p.tiles_n * p.tiles_m * p.batch {
        return;
    }
    let tn = tile % p.tiles_n;
    let tm = (tile / p.tiles_n) % p.tiles_m;
    let bat = tile / (p.tiles_n * p.tiles_m);
    let row0 = tm * 128u;
    let col0 = tn * 128u;
    let a_k = p.a_col == 1u;
    let b_k = p.b_row == 1u;
    let sa0 = slab_slot(t, a_k);
    let sa1 = slab_slot(t + 256u, a_k);
    let sb0 = slab_slot(t, b_k);
    let sb1 = slab_slot(t + 256u, b_k);
    let rows_inside = row0 + 128u <= p.m;
    let cols_inside = col0 + 128u <= p.n;
    var inside = BK <= p.k;
    var ra0 = a_vec(bat, row0, 0u, sa0, inside && rows_inside);
    var ra1 = a_vec(bat, row0, 0u, sa1, inside && rows_inside);
    var rb0 = b_vec(bat, col0, 0u, sb0, inside && cols_inside);
    var rb1 = b_vec(bat, col0, 0u, sb1, inside && cols_inside);
    var acc: Rows8;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        sa[sa0.x][sa0.y] = ra0;
        sa[sa1.x][sa1.y] = ra1;
        sb[sb0.x][sb0.y] = rb0;
        sb[sb1.x][sb1.y] = rb1;
        workgroupBarrier();
        // The next slab's loads are in flight while this one is used.
        let k1 = k0 + BK;
        if k1 < p.k {
            inside = k1 + BK <= p.k;
            ra0 = a_vec(bat, row0, k1, sa0, inside && rows_inside);
            ra1 = a_vec(bat, row0, k1, sa1, inside && rows_inside);
            rb0 = b_vec(bat, col0, k1, sb0, inside && cols_inside);
            rb1 = b_vec(bat, col0, k1, sb1, inside && cols_inside);
        }
        // Only the values of k that exist: padding would add +0.0 and could turn −0.0 into +0.0.
        if k1 <= p.k {
            acc = slab_full(acc, lid.xy);
        } else {
            for (var q = 0u; q < p.k - k0; q++) {
                acc = slab_step(acc, q, lid.xy);
            }
        }
        workgroupBarrier();
    }
    let r = row0 + 4u * lid.y;
    let c = col0 + 4u * lid.x;
    store4(bat, r, c, acc.c00); store4(bat, r, c + 64u, acc.c01);
    store4(bat, r + 1u, c, acc.c10); store4(bat, r + 1u, c + 64u, acc.c11);
    store4(bat, r + 2u, c, acc.c20); store4(bat, r + 2u, c + 64u, acc.c21);
    store4(bat, r + 3u, c, acc.c30); store4(bat, r + 3u, c + 64u, acc.c31);
    store4(bat, r + 64u, c, acc.c40); store4(bat, r + 64u, c + 64u, acc.c41);
    store4(bat, r + 65u, c, acc.c50); store4(bat, r + 65u, c + 64u, acc.c51);
    store4(bat, r + 66u, c, acc.c60); store4(bat, r + 66u, c + 64u, acc.c61);
    store4(bat, r + 67u, c, acc.c70); store4(bat, r + 67u, c + 64u, acc.c71);
}
