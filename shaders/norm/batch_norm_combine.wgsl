// norm/batch_norm_combine.wgsl — the second pass: each channel's row sums from partial
// [n, c, 2] added over the images, in order. Mode 0 turns them into the statistics (mean =
// shift + Σd / m, biased var = Σd² / m − (Σd / m)², with the shift x[0, ch, 0]); mode 1 keeps
// the sums. One invocation per channel (joined with norm/_batch_norm.wgsl).
// bindings: 0 partial (read), 1 x (read), 2 out [2, c] (write), 3 params

@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ch = row_index(wid, nwg, lid);
    if ch >= p.c {
        return;
    }
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = 0u; i < p.n; i++) {
        let at = 2u * (i * p.c + ch);
        s1 += partial[at];
        s2 += partial[at + 1u];
    }
    if p.mode == 0u {
        let count = f32(p.n * p.l);
        let d = s1 / count;
        out[ch] = x[ch * p.l] + d;
        out[p.c + ch] = max(s2 / count - d * d, 0.0);
    } else {
        out[ch] = s1;
        out[p.c + ch] = s2;
    }
}
