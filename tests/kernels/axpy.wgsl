// axpy.wgsl — out = a·x + y: the user kernel of `tests/user_kernels.rs`, bound and dispatched
// through wgrad's public op API like any of wgrad's own.
// bindings: 0 x (read), 1 y (read), 2 out (write), 3 params

struct Params {
    n: u32,
    a: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < p.n {
        out[i] = fma(p.a, x[i], y[i]);
    }
}
