// argmax.wgsl — out[o, k] = the first j maximising x[o, j, k] (as f32), the input seen as
// [outer, len, inner]; a NaN counts as the maximum, as in NumPy.
// bindings: 0 x (read), 1 out (write), 2 params

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i >= p.outer * p.inner {
        return;
    }
    let k = i % p.inner;
    let o = i / p.inner;
    var best = 0u;
    var best_v = x[o * p.len * p.inner + k];
    for (var j = 1u; j < p.len; j++) {
        let v = x[(o * p.len + j) * p.inner + k];
        if !is_nan(best_v) && (v > best_v || is_nan(v)) {
            best = j;
            best_v = v;
        }
    }
    out[i] = f32(best);
}
