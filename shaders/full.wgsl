// full.wgsl — out[i] = value (zeros, ones, constants), four elements per invocation.
// bindings: 0 out (write), 1 params

struct Params {
    n: u32,
    value: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < (p.n + 3u) / 4u {
        out[i] = vec4(p.value);
    }
}
