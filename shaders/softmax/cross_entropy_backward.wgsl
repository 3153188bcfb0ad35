// softmax/cross_entropy_backward.wgsl — dx[r, c] = g[r] (softmax(x)[r, c] - [c = label[r]]),
// the gradient of loss[r] = lse(x[r]) - x[r, label[r]]; one invocation per row.
// bindings: 0 x (read), 1 labels (read), 2 g (read), 3 dx (write), 4 params

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

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
    let label = labels[r];
    let gr = g[r];
    for (var c = 0u; c < p.cols; c++) {
        let hit = select(0.0, 1.0, f32(c) == label);
        dx[base + c] = gr * (exp(x[base + c] - m) / s - hit);
    }
}
