// matmul/naive.wgsl — one invocation per output: the plain reference kernel on the GPU side of
// `wgrad check` (joined with matmul/_common.wgsl).

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = workgroup_index(wid, nwg) * 256u + lid;
    if i >= p.batch * p.m * p.n {
        return;
    }
    let col = i % p.n;
    let row = (i / p.n) % p.m;
    let bat = i / (p.n * p.m);
    var acc = 0.0;
    for (var q = 0u; q < p.k; q++) {
        acc += a[p.a_off + bat * p.a_batch + row * p.a_row + q * p.a_col] * b[p.b_off + bat * p.b_batch + q * p.b_row + col * p.b_col];
    }
    store(bat, row, col, acc);
}
