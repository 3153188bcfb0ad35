// optim/sgd_momentum.wgsl — SGD with momentum μ (PyTorch's form, no dampening):
//   d = g + wd·p;  v ← μ·v + d;  p ← p − lr·(d + μ·v) with Nesterov, else p ← p − lr·v.
// Four elements per invocation, through vec4s (buffers are bound rounded up to whole vec4s).
// bindings: 0 g (read), 1 p (read-write), 2 v (read-write), 3 params

struct Params {
    n: u32,
    lr: f32,
    momentum: f32,
    wd: f32,
    nesterov: u32,
}

@group(0) @binding(0) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> u: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < (u.n + 3u) / 4u {
        let d = g[i] + u.wd * p[i];
        let vel = u.momentum * v[i] + d;
        v[i] = vel;
        p[i] = p[i] - u.lr * select(vel, d + u.momentum * vel, u.nesterov != 0u);
    }
}
