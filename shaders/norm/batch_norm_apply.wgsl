// norm/batch_norm_apply.wgsl — y = (x − mean) / √(var + eps) · w + b per channel, one
// invocation per row (image, channel) of l values (joined with norm/_batch_norm.wgsl).
// bindings: 0 x (read), 1 stats (read), 2 w (read), 3 b (read), 4 y (write), 5 params

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if row >= p.n * p.c {
        return;
    }
    let ch = row % p.c;
    let mean = stats[ch];
    let scale = w[ch] / sqrt(stats[p.c + ch] + p.eps);
    let shift = b[ch];
    let first = row * p.l;
    for (var j = 0u; j < p.l; j++) {
        y[first + j] = (x[first + j] - mean) * scale + shift;
    }
}
