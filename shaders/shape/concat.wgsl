// shape/concat.wgsl — two tensors joined along one axis: with a as [outer, la, inner], b as
// [outer, lb, inner], out[o, j, k] = a[o, j, k] for j < la, else b[o, j - la, k].
// bindings: 0 a (read), 1 b (read), 2 out (write), 3 params

struct Params {
    n: u32,
    la: u32,
    lb: u32,
    inner: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

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
    let total = p.la + p.lb;
    let k = i % p.inner;
    let j = (i / p.inner) % total;
    let o = i / (p.inner * total);
    if j < p.la {
        out[i] = a[(o * p.la + j) * p.inner + k];
    } else {
        out[i] = b[(o * p.lb + j - p.la) * p.inner + k];
    }
}
