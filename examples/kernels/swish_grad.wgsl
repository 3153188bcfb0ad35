// swish_grad.wgsl — dx = g·(s + βx·s·(1 − s)) with s = σ(βx): swish's backward in one pass,
// reading x and the incoming gradient g.
// bindings: 0 x (read), 1 g (read), 2 dx (write), 3 params

struct Params {
    n: u32,
    beta: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn sigmoid(z: f32) -> f32 {
    let e = exp(-abs(z));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < p.n {
        let v = x[i];
        let s = sigmoid(p.beta * v);
        dx[i] = g[i] * (s + p.beta * v * s * (1.0 - s));
    }
}
