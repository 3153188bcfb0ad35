// shape/pad.wgsl — zero padding along one axis (the gradient of a slice): with x seen as
// [outer, len, inner] and out as [outer, total, inner],
// out[o, j, k] = x[o, j - start, k] if start ≤ j < start + len, else 0.
// bindings: 0 x (read), 1 out (write), 2 params

struct Params {
    n: u32,
    len: u32,
    inner: u32,
    total: u32,
    start: u32,
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
    let k = i % p.inner;
    let j = (i / p.inner) % p.total;
    let o = i / (p.inner * p.total);
    var v = 0.0;
    if j >= p.start && j < p.start + p.len {
        v = x[(o * p.len + j - p.start) * p.inner + k];
    }
    out[i] = v;
}
