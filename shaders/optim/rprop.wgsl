// optim/rprop.wgsl — iRprop− (Igel & Hüsken), per-weight step sizes, no learning rate:
//   s = g·g_prev;  s > 0: Δ ← min(Δ·η+, Δmax);  s < 0: Δ ← max(Δ·η−, Δmin) and g ← 0
//   p ← p − sign(g)·Δ;  g_prev ← g
// bindings: 0 g (read), 1 p (read-write), 2 g_prev (read-write), 3 Δ (read-write), 4 params

struct Params {
    n: u32,
    eta_plus: f32,
    eta_minus: f32,
    step_min: f32,
    step_max: f32,
}

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> prev: array<f32>;
@group(0) @binding(3) var<storage, read_write> step: array<f32>;
@group(0) @binding(4) var<uniform> u: Params;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + (wid.y + wid.z * nwg.y) * nwg.x) * 256u + lid;
    if i >= u.n {
        return;
    }
    var grad = g[i];
    let s = grad * prev[i];
    var delta = step[i];
    if s > 0.0 {
        delta = min(delta * u.eta_plus, u.step_max);
    } else if s < 0.0 {
        delta = max(delta * u.eta_minus, u.step_min);
        grad = 0.0;
    }
    step[i] = delta;
    prev[i] = grad;
    p[i] = p[i] - sign(grad) * delta;
}
