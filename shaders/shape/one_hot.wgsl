// shape/one_hot.wgsl — out[r, c] = 1 if labels[r] = c else 0; a label that is not an integer in
// [0, classes) gives a row of NaN.
// bindings: 0 labels (read), 1 out (write), 2 params

struct Params {
    n: u32,
    classes: u32,
}

@group(0) @binding(0) var<storage, read> labels: array<f32>;
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
    let v = labels[i / p.classes];
    if v >= 0.0 && v < f32(p.classes) && fract(v) == 0.0 {
        out[i] = select(0.0, 1.0, v == f32(i % p.classes));
    } else {
        out[i] = bitcast<f32>(0x7fc00000u);
    }
}
