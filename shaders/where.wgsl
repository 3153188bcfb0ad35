// where.wgsl — out[i] = c[ic] != 0 ? a[ia] : b[ib], broadcasting all three like binary/_forward.
// bindings: 0 c (read), 1 a (read), 2 b (read), 3 out (write), 4 params

struct Params {
    n: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    mode: vec4<u32>,
    div: vec4<u32>,
    len: vec4<u32>,
    offset: vec4<u32>,
    shape: array<vec4<u32>, 2>,
    strides: array<array<vec4<u32>, 2>, 3>,
}

@group(0) @binding(0) var<storage, read> c: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn index_of(i: u32, k: u32) -> u32 {
    switch p.mode[k] {
        case 0u: { return p.offset[k] + i; }
        case 1u: { return p.offset[k]; }
        case 2u: { return p.offset[k] + (i / p.div[k]) % p.len[k]; }
        default: {
            var rem = i;
            var off = p.offset[k];
            for (var d = p.rank; d > 0u; d--) {
                let dim = p.shape[(d - 1u) / 4u][(d - 1u) % 4u];
                off += (rem % dim) * p.strides[k][(d - 1u) / 4u][(d - 1u) % 4u];
                rem /= dim;
            }
            return off;
        }
    }
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < p.n {
        out[i] = select(b[index_of(i, 2u)], a[index_of(i, 1u)], c[index_of(i, 0u)] != 0.0);
    }
}
