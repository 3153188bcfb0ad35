// norm/_batch_norm.wgsl — what the batch-norm kernels share. x is [n, c, l] (l = h·w, or 1);
// stats is [2, c]: each channel's mean, then its variance; a channel is normalised as
// (x − mean) / √(var + eps). Channel sums run in two passes without workgroup memory: one
// invocation per row (image, channel) sums its l values into partial [n, c, 2], then one per
// channel sums the rows.

struct Params {
    n: u32,
    c: u32,
    l: u32,
    eps: f32,
    // batch_norm_combine: 0 for the statistics, 1 for the backward pass's sums.
    mode: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

fn row_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
}

