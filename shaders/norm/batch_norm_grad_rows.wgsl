// norm/batch_norm_grad_rows.wgsl — the first pass of the sums batch norm's backward pass
// needs: for each row (image, channel), Σ g and Σ g·x̂ with x̂ = (x − mean) / √(var + eps),
// one invocation per row (joined with norm/_batch_norm.wgsl).
// bindings: 0 x (read), 1 stats (read), 2 g (read), 3 partial (write), 4 params

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

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
    let ch = row % p.c;
    let mean = stats[ch];
    let r = 1.0 / sqrt(stats[p.c + ch] + p.eps);
    let first = row * p.l;
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < p.l; j++) {
        let gv = g[first + j];
        s1 += gv;
        s2 += gv * (x[first + j] - mean) * r;
    }
    partial[2u * row] = s1;
    partial[2u * row + 1u] = s2;
}
