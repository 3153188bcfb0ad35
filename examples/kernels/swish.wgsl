// swish.wgsl — y = x·σ(βx), the swish (SiLU when β = 1) in one pass: the user kernel of
// `examples/custom_kernel.rs`. One invocation per element; the linear workgroup index is rebuilt
// from x, y and z because wgrad spreads grids over 65,535 workgroups across them.
// bindings: 0 x (read), 1 y (write), 2 params

struct Params {
    n: u32,
    beta: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// σ(z) without overflow: exp of a non-positive number only.
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
        y[i] = v * sigmoid(p.beta * v);
    }
}
