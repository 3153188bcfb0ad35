// unary/_backward.wgsl — dx[i] = dy[i] * df(x[i], y[i], a, b), the chain rule through an
// elementwise f. Joined with the same body file as the forward kernel. Four elements per
// invocation, through vec4s, as in _forward.wgsl.
// bindings: 0 x (read), 1 y = f(x) (read), 2 dy (read), 3 dx (write), 4 params

struct Params {
    n: u32,
    _pad: u32,
    a: f32,
    b: f32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < (p.n + 3u) / 4u {
        let u = x[i];
        let v = y[i];
        dx[i] = dy[i] * vec4(
            df(u.x, v.x, p.a, p.b),
            df(u.y, v.y, p.a, p.b),
            df(u.z, v.z, p.a, p.b),
            df(u.w, v.w, p.a, p.b),
        );
    }
}
