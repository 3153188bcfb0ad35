// fma_peak.wgsl — the adapter's arithmetic ceiling for WGSL: each invocation runs `iters` rounds
// of 8 independent vec4 FMA chains on registers (no memory traffic inside the loop), then
// writes their sum so nothing is optimised away. 64 flops per round per invocation.
// bindings: 0 x (read, 64 vec4 seeds), 1 y (write, one vec4 per invocation), 2 params

struct Params {
    n: u32,
    iters: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 64u + lid;
    if i >= p.n {
        return;
    }
    let s = x[i % 64u];
    let m = x[(i + 1u) % 64u];
    let c = x[(i + 2u) % 64u];
    var a0 = s;
    var a1 = s + 1.0;
    var a2 = s + 2.0;
    var a3 = s + 3.0;
    var a4 = s + 4.0;
    var a5 = s + 5.0;
    var a6 = s + 6.0;
    var a7 = s + 7.0;
    for (var k = 0u; k < p.iters; k++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    y[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
