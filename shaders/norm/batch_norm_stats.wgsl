// norm/batch_norm_stats.wgsl — stats = (mean, biased variance) of each channel of x over its
// n·l values: one workgroup per channel, the variance from a second pass over the deviations
// (joined with norm/_batch_norm.wgsl).
// bindings: 0 x (read), 1 stats (write), 2 params

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ch = channel_index(wid, nwg);
    // Uniform across the workgroup, so every invocation reaches the barriers.
    if ch >= p.c {
        return;
    }
    let count = f32(p.n * p.l);
    var s = 0.0;
    for (var i = 0u; i < p.n; i++) {
        let row = (i * p.c + ch) * p.l;
        for (var j = lid; j < p.l; j += WG) {
            s += x[row + j];
        }
    }
    let mean = workgroup_sum(s, lid) / count;
    var d = 0.0;
    for (var i = 0u; i < p.n; i++) {
        let row = (i * p.c + ch) * p.l;
        for (var j = lid; j < p.l; j += WG) {
            let v = x[row + j] - mean;
            d += v * v;
        }
    }
    let var_ = workgroup_sum(d, lid) / count;
    if lid == 0u {
        stats[ch] = mean;
        stats[p.c + ch] = var_;
    }
}
