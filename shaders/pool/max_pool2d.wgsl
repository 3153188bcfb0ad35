// pool/max_pool2d.wgsl — y = max_pool2d(x), one invocation per output (joined with
// pool/_max_pool2d.wgsl).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    let per = p.oh * p.ow;
    if e >= p.planes * per {
        return;
    }
    let plane = (e / per) * p.h * p.w;
    let s = e % per;
    y[e] = x[plane + window_max(plane, s / p.ow, s % p.ow)];
}
