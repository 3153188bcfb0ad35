// optim/sgd.wgsl — plain SGD with weight decay: p ← p − lr (g + wd·p). The parameters are laid
// out as optim/sgd_momentum.wgsl's (momentum and nesterov unused here).
// Four elements per invocation, through vec4s (buffers are bound rounded up to whole vec4s).
// bindings: 0 g (read), 1 p (read-write), 2 params

struct Params {
    n: u32,
    lr: f32,
    momentum: f32,
    wd: f32,
    nesterov: u32,
}

@group(0) @binding(0) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> u: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < (u.n + 3u) / 4u {
        p[i] = p[i] - u.lr * (g[i] + u.wd * p[i]);
    }
}
