// shape/strided_copy_rows.wgsl — shape/strided_copy.wgsl one output row at a time: each
// invocation works out where its row starts once, then steps through the row by the last
// dim's stride (for rows long enough that the per-element index arithmetic would dominate).
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
    let last = p.rank - 1u;
    let len = p.shape[last / 4u][last % 4u];
    let step = p.strides[last / 4u][last % 4u];
    let row = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if row * len >= p.n {
        return;
    }
    var rem = row;
    var at = p.offset;
    for (var d = last; d > 0u; d--) {
        let dim = p.shape[(d - 1u) / 4u][(d - 1u) % 4u];
        at += (rem % dim) * p.strides[(d - 1u) / 4u][(d - 1u) % 4u];
        rem /= dim;
    }
    let first = row * len;
    for (var j = 0u; j < len; j++) {
        out[first + j] = x[at];
        at += step;
    }
}
