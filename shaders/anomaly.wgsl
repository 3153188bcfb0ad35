// anomaly.wgsl — anomaly mode: flag a buffer holding a NaN or an infinity. The test reads the
// exponent bits (all ones means NaN or ±∞), which no compiler may fold away the way it may
// fold `x != x` under fast-math assumptions.
// flags[slot] becomes 1 if any of x[0..n) is not finite; it is never cleared here.
// bindings: 0 x (read, the f32 values as bits), 1 flags (write), 2 params

struct Params {
    n: u32,
    slot: u32,
}

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < p.n && (x[i] & 0x7f800000u) == 0x7f800000u {
        atomicOr(&flags[p.slot], 1u);
    }
}
