// unary/_forward.wgsl — y[i] = f(x[i], a, b). Joined with one body file that defines
// `fn f(x, a, b)` and `fn df(x, y, a, b)`; a and b are the op's scalar parameters.
// Each invocation does four elements through vec4 loads and stores (buffers are bound rounded
// up to whole vec4s, so the last one may reach into the buffer's padding).
// bindings: 0 x (read), 1 y (write), 2 params

struct Params {
    n: u32,
    _pad: u32,
    a: f32,
    b: f32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < (p.n + 3u) / 4u {
        let v = x[i];
        y[i] = vec4(f(v.x, p.a, p.b), f(v.y, p.a, p.b), f(v.z, p.a, p.b), f(v.w, p.a, p.b));
    }
}
