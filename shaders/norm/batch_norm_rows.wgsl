// norm/batch_norm_rows.wgsl — the first pass of the channel statistics: for each row (image
// i, channel ch) of x, Σ d and Σ d² with d = x − x[0, ch, 0] (shifted by the channel's first
// value, so the variance does not cancel), one invocation per row (joined with
// norm/_batch_norm.wgsl).
// bindings: 0 x (read), 1 partial (write), 2 params

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = row_index(wid, nwg, lid);
    if row >= p.n * p.c {
        return;
    }
    let shift = x[(row % p.c) * p.l];
    let first = row * p.l;
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < p.l; j++) {
        let d = x[first + j] - shift;
        s1 += d;
        s2 += d * d;
    }
    partial[2u * row] = s1;
    partial[2u * row + 1u] = s2;
}
