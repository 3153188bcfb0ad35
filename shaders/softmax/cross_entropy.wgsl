// softmax/cross_entropy.wgsl — loss[r] = ln Σ_c e^(x[r, c]) - x[r, label[r]] (max-subtracted),
// the negative log-likelihood of integer labels; a label that is not an integer in
// [0, cols) gives NaN. One invocation per row.
// bindings: 0 x (read), 1 labels (read), 2 loss (write), 3 params

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 64u + lid;
    if r >= p.rows {
        return;
    }
    let label = labels[r];
    if !(label >= 0.0 && label < f32(p.cols) && fract(label) == 0.0) {
        loss[r] = bitcast<f32>(0x7fc00000u);
        return;
    }
    let base = r * p.cols;
    var m = x[base];
    for (var c = 1u; c < p.cols; c++) {
        m = max(m, x[base + c]);
    }
    var s = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        s += exp(x[base + c] - m);
    }
    loss[r] = (m - x[base + u32(label)]) + log(s);
}
