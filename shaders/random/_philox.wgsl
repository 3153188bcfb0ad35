// random/_philox.wgsl — out[i] = sample(philox(i, seed), a, b): Philox4x32-10 (from
// _philox_core.wgsl) over counter (i, 0, 0, 0) and key (seed_lo, seed_hi), the same generator as
// src/rng.rs, so a seed gives the same numbers on every backend. Joined with a body defining
// `fn sample(w, a, b)`.
// bindings: 0 out (write), 1 params

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    _pad: u32,
    a: f32,
    b: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < p.n {
        out[i] = sample(philox(vec4<u32>(i, 0u, 0u, 0u), vec2<u32>(p.seed_lo, p.seed_hi)), p.a, p.b);
    }
}
