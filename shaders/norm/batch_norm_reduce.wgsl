// norm/batch_norm_reduce.wgsl — the channel sums batch norm's backward pass needs: out =
// (Σ g, Σ g·x̂) per channel, x̂ = (x − mean) / √(var + eps), one workgroup per channel (joined
// with norm/_batch_norm.wgsl).
// bindings: 0 x (read), 1 stats (read), 2 g (read), 3 out (write), 4 params

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ch = channel_index(wid, nwg);
    if ch >= p.c {
        return;
    }
    let mean = stats[ch];
    let r = 1.0 / sqrt(stats[p.c + ch] + p.eps);
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = 0u; i < p.n; i++) {
        let row = (i * p.c + ch) * p.l;
        for (var j = lid; j < p.l; j += WG) {
            let gv = g[row + j];
            s1 += gv;
            s2 += gv * (x[row + j] - mean) * r;
        }
    }
    let t1 = workgroup_sum(s1, lid);
    let t2 = workgroup_sum(s2, lid);
    if lid == 0u {
        out[ch] = t1;
        out[p.c + ch] = t2;
    }
}
