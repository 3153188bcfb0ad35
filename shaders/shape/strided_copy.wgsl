// shape/strided_copy.wgsl — out[i] = x[offset + Σ_d idx_d(i) · strides_d], idx(i) the multi-index of i
// in the output shape: permutes, broadcasts (stride 0) and slices (offset) as one strided copy.
// bindings: 0 x (read), 1 out (write), 2 params

struct Params {
    n: u32,
    rank: u32,
    offset: u32,
    _pad: u32,
    shape: array<vec4<u32>, 2>,
    strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i >= p.n {
        return;
    }
    var rem = i;
    var at = p.offset;
    for (var d = p.rank; d > 0u; d--) {
        let dim = p.shape[(d - 1u) / 4u][(d - 1u) % 4u];
        at += (rem % dim) * p.strides[(d - 1u) / 4u][(d - 1u) % 4u];
        rem /= dim;
    }
    out[i] = x[at];
}
