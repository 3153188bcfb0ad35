// cols/im2col.wgsl — cols = im2col(x), one invocation per group and output pixel (g, n, i, j),
// writing its row of cg·kh·kw entries in order (joined with cols/_cols.wgsl).

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
    // r = g·(n·oh·ow) + (n_i·oh + i)·ow + j.
    let plane_out = p.oh * p.ow;
    let s = r % plane_out;
    let ni = (r / plane_out) % p.n;
    let g = r / (plane_out * p.n);
    let y0 = i32((s / p.ow) * p.sh) - i32(p.ph);
    let x0 = i32((s % p.ow) * p.sw) - i32(p.pw);
    let k = p.cg * p.kh * p.kw;
    let first = r * k;
    // The term's input plane and tap, stepped without division.
    var plane = (ni * p.c + g * p.cg) * p.h * p.w;
    var a = 0u;
    var b = 0u;
    for (var q = 0u; q < k; q++) {
        let y = y0 + i32(a * p.dh);
        let x = x0 + i32(b * p.dw);
        let inside = y >= 0 && y < i32(p.h) && x >= 0 && x < i32(p.w);
        let at = select(0u, plane + u32(y) * p.w + u32(x), inside);
        dst[first + q] = select(0.0, src[at], inside);
        b += 1u;
        if b == p.kw {
            b = 0u;
            a += 1u;
            if a == p.kh {
                a = 0u;
                plane += p.h * p.w;
            }
        }
    }
}
