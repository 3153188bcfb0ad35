// pool/max_pool2d_tiled_backward.wgsl — dx of max_pool2d for windows that tile the plane
// (stride = kernel, no padding): one invocation per input row (plane, y); each input element
// belongs to at most one window, whose maximum is found once per row (joined with
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
    let row = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if row >= p.planes * p.h {
        return;
    }
    let k = row / p.h;
    let y = row % p.h;
    let i = y / p.sh;
    let plane = k * p.h * p.w;
    let first = row * p.w;
    // The window under x, its maximum's position and gradient, and x's place in it.
    var j = 0u;
    var phase = 0u;
    var best = 0u;
    var g = 0.0;
    for (var xx = 0u; xx < p.w; xx++) {
        let covered = i < p.oh && j < p.ow;
        if phase == 0u && covered {
            best = window_max(plane, i, j);
            g = dy[(k * p.oh + i) * p.ow + j];
        }
        dx[first + xx] = select(0.0, g, covered && best == y * p.w + xx);
        phase += 1u;
        if phase == p.sw {
            phase = 0u;
            j += 1u;
        }
    }
}
