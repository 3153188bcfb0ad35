// random/normal_rows.wgsl — out[r, j] = N(0, 1) from philox((j, 0, 0, 0), (seeds[r], 0)): row r is
// the start of the normal stream of its own seed (an integer below 2^24, exact in f32), so one
// dispatch draws many independently seeded rows. Joined after _philox_core.wgsl.
// bindings: 0 seeds (read), 1 out (write), 2 params

struct Params {
    n: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> seeds: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i < p.n {
        let row = i / p.cols;
        let j = i - row * p.cols;
        let seed = u32(seeds[row]);
        out[i] = box_muller(philox(vec4<u32>(j, 0u, 0u, 0u), vec2<u32>(seed, 0u)));
    }
}
