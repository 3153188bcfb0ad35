// softmax/softmax_backward.wgsl — dx[r, c] = y[r, c] (dy[r, c] - Σ_c' dy[r, c'] y[r, c']),
// y = softmax(x); one invocation per row.
// bindings: 0 y (read), 1 dy (read), 2 dx (write), 3 params

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
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
    let base = r * p.cols;
    var dot = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        dot += dy[base + c] * y[base + c];
    }
    for (var c = 0u; c < p.cols; c++) {
        dx[base + c] = y[base + c] * (dy[base + c] - dot);
    }
}
