// shape/scatter_add_rows.wgsl — the gradient of gather_rows: out[r, c] = Σ_{m : idx[m] = r} g[m, c].
// Each output sums its matches in index order, so results are repeatable (no atomics).
// bindings: 0 g (read), 1 idx (read), 2 out (write), 3 params

struct Params {
    n: u32,
    picks: u32,
    width: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i >= p.n {
        return;
    }
    let r = f32(i / p.width);
    let c = i % p.width;
    var acc = 0.0;
    for (var m = 0u; m < p.picks; m++) {
        if idx[m] == r {
            acc += g[m * p.width + c];
        }
    }
    out[i] = acc;
}
