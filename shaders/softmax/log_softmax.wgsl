// softmax/log_softmax.wgsl — y[r, c] = x[r, c] - m - ln Σ_c' e^(x[r, c'] - m), m = max_c x[r, c]:
// finite for logits of any size; one invocation per row.
// bindings: 0 x (read), 1 y (write), 2 params

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

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
    let base = r * p.cols;
    var m = x[base];
    for (var c = 1u; c < p.cols; c++) {
        m = max(m, x[base + c]);
    }
    var s = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        s += exp(x[base + c] - m);
    }
    // (x - m) first: x - (m + ln s) would round ln s to the precision of m.
    let ls = log(s);
    for (var c = 0u; c < p.cols; c++) {
        y[base + c] = (x[base + c] - m) - ls;
    }
}
