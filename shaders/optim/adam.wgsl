// optim/adam.wgsl — Adam, or AdamW when the decay is decoupled:
//   AdamW: p ← p·(1 − lr·wd);   Adam: g ← g + wd·p
//   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//   p ← p − lr·(m / bc1) / (√(v / bc2) + ε),  bc_k = 1 − β_k^t (computed on the host)
// Four elements per invocation, through vec4s (buffers are bound rounded up to whole vec4s).
// bindings: 0 g (read), 1 p (read-write), 2 m (read-write), 3 v (read-write), 4 params

struct Params {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    decoupled: u32,
    bc1: f32,
    bc2: f32,
}

@group(0) @binding(0) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> u: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i >= (u.n + 3u) / 4u {
        return;
    }
    var w = p[i];
    var grad = g[i];
    if u.decoupled != 0u {
        w = w * (1.0 - u.lr * u.wd);
    } else {
        grad = grad + u.wd * w;
    }
    let mi = u.beta1 * m[i] + (1.0 - u.beta1) * grad;
    let vi = u.beta2 * v[i] + (1.0 - u.beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = w - u.lr * (mi / u.bc1) / (sqrt(vi / u.bc2) + u.eps);
}
