// binary/_forward.wgsl — out[i] = f(a[ia], b[ib]) over the broadcast output shape. Joined with a
// body file defining `fn f(a, b)`. Each input is addressed by the cheapest rule that fits it
// (chosen on the host), from the input's offset in its storage: 0 same index, 1 scalar,
// 2 (i / div) % len for one contiguous run of dims, 3 a strided walk over the output's dims.
// bindings: 0 a (read), 1 b (read), 2 out (write), 3 params

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

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

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
        out[i] = f(a[index_of(i, 0u)], b[index_of(i, 1u)]);
    }
}
