// reduce/_axis.wgsl — the input seen as [outer, len, inner] is reduced along `len` in `parts`
// parts: out[o, q, k] = finish(fold over the elements j of part q of x[o, j, k], scale).
// The axis is cut into blocks of width·chunk elements, and the `width` parts of a block take
// its elements in turn: part q, at lane l = q % width, holds j = (q − l)·chunk + l + i·width for
// i = 0, 1, … while j stays in its block and below len. width = 1 gives contiguous chunks
// (parts = 1: the whole axis). A long axis over few outputs is reduced in two passes, the first
// with width 8, so that neighbouring invocations read neighbouring addresses at every step (a
// GPU's memory transactions) while each 8-lane group walks forward through memory (a CPU's).
// One invocation per output and a fixed loop order, so results are repeatable bit for bit.
// Joined with a body defining `fn init()`, `fn combine(acc, x)` and `fn finish(acc, scale)`.
// bindings: 0 x (read), 1 out (write), 2 params

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    parts: u32,
    chunk: u32,
    width: u32,
    scale: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i >= p.outer * p.parts * p.inner {
        return;
    }
    let k = i % p.inner;
    let q = (i / p.inner) % p.parts;
    let o = i / (p.inner * p.parts);
    let block = q - q % p.width;
    let start = block * p.chunk + q % p.width;
    let end = min((block + p.width) * p.chunk, p.len);
    let step = p.width * p.inner;
    var acc = init();
    var at = (o * p.len + start) * p.inner + k;
    var j = start;
    // Four loads issued before they are folded (in order), so they wait on memory together.
    for (; j + 3u * p.width < end; j += 4u * p.width) {
        let v0 = x[at];
        let v1 = x[at + step];
        let v2 = x[at + 2u * step];
        let v3 = x[at + 3u * step];
        acc = combine(combine(combine(combine(acc, v0), v1), v2), v3);
        at += 4u * step;
    }
    for (; j < end; j += p.width) {
        acc = combine(acc, x[at]);
        at += step;
    }
    out[i] = finish(acc, p.scale);
}
