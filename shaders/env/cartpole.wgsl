// env/cartpole.wgsl — one step of the cart-pole (Barto, Sutton & Anderson 1983, with the constants
// and Euler integration of the common benchmark) for each of n episodes. A state row is
// (x, ẋ, θ, θ̇, alive); the push is +10 N where action > 0, else −10 N. A finished episode
// (alive = 0) stays as it is; an episode ends when |x| > 2.4 or |θ| > 12° after the step.
// bindings: 0 state (read), 1 action (read), 2 out (write), 3 params

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> state: array<f32>;
@group(0) @binding(1) var<storage, read> action: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const GRAVITY: f32 = 9.8;
const MASS_CART: f32 = 1.0;
const MASS_POLE: f32 = 0.1;
const HALF_LENGTH: f32 = 0.5;
const FORCE: f32 = 10.0;
const TAU: f32 = 0.02;
const X_LIMIT: f32 = 2.4;
const THETA_LIMIT: f32 = 0.20943951023931953; // 12° in radians

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
    let b = 5u * i;
    var x = state[b];
    var x_dot = state[b + 1u];
    var theta = state[b + 2u];
    var theta_dot = state[b + 3u];
    let alive = state[b + 4u];
    if alive != 0.0 {
        let total = MASS_CART + MASS_POLE;
        let pole_moment = MASS_POLE * HALF_LENGTH;
        let force = select(-FORCE, FORCE, action[i] > 0.0);
        let s = sin(theta);
        let c = cos(theta);
        let temp = (force + pole_moment * theta_dot * theta_dot * s) / total;
        let theta_acc = (GRAVITY * s - c * temp)
            / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * c * c / total));
        let x_acc = temp - pole_moment * theta_acc * c / total;
        x = x + TAU * x_dot;
        x_dot = x_dot + TAU * x_acc;
        theta = theta + TAU * theta_dot;
        theta_dot = theta_dot + TAU * theta_acc;
    }
    let ended = abs(x) > X_LIMIT || abs(theta) > THETA_LIMIT;
    out[b] = x;
    out[b + 1u] = x_dot;
    out[b + 2u] = theta;
    out[b + 3u] = theta_dot;
    out[b + 4u] = select(alive, 0.0, ended);
}
