// cols/col2im.wgsl — dx = col2im(cols), the adjoint of im2col: one invocation per row of x
// (n, ch, y), summing for each of its w elements the column entries that read it, taps in
// order (joined with cols/_cols.wgsl).

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_index(wid, nwg, lid);
    if r >= p.rows {
        return;
    }
    let yy = r % p.h;
    let ch = (r / p.h) % p.c;
    let ni = r / (p.h * p.c);
    let g = ch / p.cg;
    let taps = p.kh * p.kw;
    let k = p.cg * taps;
    // cols[g, (n, i, j), (c', t)] is at ((g·n + n_i)·oh·ow + i·ow + j)·k + c'·taps + t.
    let first = (g * p.n + ni) * p.oh * p.ow * k + (ch % p.cg) * taps;
    for (var xx = 0u; xx < p.w; xx++) {
        var sum = 0.0;
        for (var t = 0u; t < taps; t++) {
            let i = divide(i32(yy + p.ph) - i32((t / p.kw) * p.dh), p.sh);
            let j = divide(i32(xx + p.pw) - i32((t % p.kw) * p.dw), p.sw);
            let hit = i.x >= 0 && j.x >= 0 && i.y == 1 && j.y == 1
                && i.x < i32(p.oh) && j.x < i32(p.ow);
            let at = select(0u, first + (u32(i.x) * p.ow + u32(j.x)) * k + t, hit);
            sum += select(0.0, src[at], hit);
        }
        dst[r * p.w + xx] = sum;
    }
}
