// binary/_forward4.wgsl — _forward.wgsl for the common case where each input is either the
// output's shape from offset 0 or a single value (modes 0 and 1): four elements per invocation through vec4
// loads and stores (buffers are bound rounded up to whole vec4s). Joined with a body file
// defining `fn f(a, b)`.
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

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;

fn a4(i: u32) -> vec4<f32> {
    if p.mode[0] == 1u {
        let o = p.offset[0];
        return vec4(a[o / 4u][o % 4u]);
    }
    return a[i];
}

fn b4(i: u32) -> vec4<f32> {
    if p.mode[1] == 1u {
        let o = p.offset[1];
        return vec4(b[o / 4u][o % 4u]);
    }
    return b[i];
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < (p.n + 3u) / 4u {
        let u = a4(i);
        let v = b4(i);
        out[i] = vec4(f(u.x, v.x), f(u.y, v.y), f(u.z, v.z), f(u.w, v.w));
    }
}
