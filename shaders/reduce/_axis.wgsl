// reduce/_axis.wgsl — the input seen as [outer, len, inner] is reduced along `len` in `parts`
// chunks of `chunk` elements: out[o, q, k] = finish(fold over j in chunk q of x[o, j, k], scale).
// parts = 1 reduces the whole axis; a long axis over few outputs is reduced in two passes.
// One invocation per output and a fixed loop order, so results are repeatable bit for bit.
// Joined with a body defining `fn init()`, `fn combine(acc, x)` and `fn finish(acc, scale)`.
// bindings: 0 x (read), 1 out (write), 2 params

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    parts: u32,
    chunk: u32,
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
    let start = q * p.chunk;
    let end = min(start + p.chunk, p.len);
    var acc = init();
    var at = (o * p.len + start) * p.inner + k;
    for (var j = start; j < end; j++) {
        acc = combine(acc, x[at]);
        at += p.inner;
    }
    out[i] = finish(acc, p.scale);
}
