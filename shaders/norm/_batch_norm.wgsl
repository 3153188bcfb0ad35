// norm/_batch_norm.wgsl — what the batch-norm kernels share. x is [n, c, l] (l = h·w, or 1);
// stats is [2, c]: each channel's mean, then its variance; a channel is normalised as
// (x − mean) / √(var + eps).

struct Params {
    n: u32,
    c: u32,
    l: u32,
    eps: f32,
}

// Invocations per workgroup of the channel reductions.
const WG: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

// The sum over the workgroup of each invocation's `v` (every invocation gets it).
fn workgroup_sum(v: f32, lid: u32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step /= 2u) {
        if lid < step {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

fn channel_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + (wid.y + wid.z * nwg.y) * nwg.x;
}
