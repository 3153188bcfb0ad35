// shape/gather_rows.wgsl — out[r, c] = x[idx[r], c] for x of shape [rows, width]; an index that
// is not an integer in [0, rows) gives a row of NaN rather than a wrong row.
// bindings: 0 x (read), 1 idx (read), 2 out (write), 3 params

struct Params {
    n: u32,
    rows: u32,
    width: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<f32>;
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
    let v = idx[i / p.width];
    if v >= 0.0 && v < f32(p.rows) && fract(v) == 0.0 {
        out[i] = x[u32(v) * p.width + i % p.width];
    } else {
        out[i] = bitcast<f32>(0x7fc00000u);
    }
}
