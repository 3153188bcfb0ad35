// pool/max_pool2d_backward.wgsl — dx of max_pool2d: each input element sums dy over the
// windows whose maximum it is, one invocation per input element (joined with
// pool/_max_pool2d.wgsl; x [planes, h, w], dy [planes, oh, ow]).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    let per = p.h * p.w;
    if e >= p.planes * per {
        return;
    }
    let k = e / per;
    let s = e % per;
    let yy = i32(s / p.w + p.ph);
    let xx = i32(s % p.w + p.pw);
    // The windows holding (y, x): rows i with i·sh ≤ y + ph < i·sh + kh, likewise columns.
    let i_start = u32(max(yy - i32(p.kh) + i32(p.sh), 0)) / p.sh;
    let j_start = u32(max(xx - i32(p.kw) + i32(p.sw), 0)) / p.sw;
    let i_end = min(u32(yy) / p.sh + 1u, p.oh);
    let j_end = min(u32(xx) / p.sw + 1u, p.ow);
    var sum = 0.0;
    for (var i = i_start; i < i_end; i++) {
        for (var j = j_start; j < j_end; j++) {
            if window_max(k * per, i, j) == s {
                sum += dy[(k * p.oh + i) * p.ow + j];
            }
        }
    }
    dx[e] = sum;
}
