//! The cart-pole balancing task (Barto, Sutton & Anderson 1983) with the constants and Euler
//! integration of the common benchmark (CartPole-v1: 500-step episodes, solved at a mean return
//! of 475 over 100 episodes), stepped for many episodes at once by one WGSL kernel.
//!
//! A state is a row `(x, ẋ, θ, θ̇, alive)`; the reward is 1 for every step taken while alive
//! (the step that ends the episode included), so an episode's return is the number of steps it
//! lasted.

use super::mlp::PopulationMlp;
use crate::op::{Input, Kernel, Layout, Op, Shader, shader};
use crate::{Device, Tensor};

static CARTPOLE: Shader = shader!("env/cartpole", "env/cartpole.wgsl");

/// Steps in an episode of CartPole-v1.
pub const MAX_STEPS: usize = 500;
/// The mean return over 100 episodes that counts as solved.
pub const SOLVED: f32 = 475.0;

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const HALF_LENGTH: f64 = 0.5;
const FORCE: f64 = 10.0;
const TAU: f64 = 0.02;
const X_LIMIT: f64 = 2.4;
const THETA_LIMIT: f64 = 12.0 * std::f64::consts::PI / 180.0;

/// One step of one episode, in f64: the CPU reference of the kernel.
pub fn step_one(s: [f64; 5], action: f64) -> [f64; 5] {
    let [mut x, mut x_dot, mut theta, mut theta_dot, alive] = s;
    if alive != 0.0 {
        let total = MASS_CART + MASS_POLE;
        let pole_moment = MASS_POLE * HALF_LENGTH;
        let force = if action > 0.0 { FORCE } else { -FORCE };
        let (sin, cos) = theta.sin_cos();
        let temp = (force + pole_moment * theta_dot * theta_dot * sin) / total;
        let theta_acc = (GRAVITY * sin - cos * temp)
            / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / total));
        let x_acc = temp - pole_moment * theta_acc * cos / total;
        x += TAU * x_dot;
        x_dot += TAU * x_acc;
        theta += TAU * theta_dot;
        theta_dot += TAU * theta_acc;
    }
    let ended = x.abs() > X_LIMIT || theta.abs() > THETA_LIMIT;
    [x, x_dot, theta, theta_dot, if ended { 0.0 } else { alive }]
}

struct Step;

impl Op for Step {
    fn name(&self) -> &'static str {
        "cartpole_step"
    }
    fn cpu(&self, inputs: &[Input], outs: &mut [&mut [f64]]) {
        let (state, action) = (inputs[0].values, inputs[1].values);
        for (i, out) in outs[0].chunks_mut(5).enumerate() {
            let s: [f64; 5] = state[5 * i..5 * i + 5].try_into().expect("five columns");
            out.copy_from_slice(&step_one(s, action[i]));
        }
    }
    fn kernel(&self, _: &[&Layout], out: &Layout) -> Kernel {
        let n = out.numel() / 5;
        Kernel::per_element(&CARTPOLE, &[n as u32, 0, 0, 0], n)
    }
    fn differentiable(&self) -> bool {
        false
    }
}

/// One step of every episode: `state` `[n, 5]`, `action` `[n]` (push right where > 0).
#[track_caller]
pub fn step(state: &Tensor, action: &Tensor) -> Tensor {
    assert!(
        state.rank() == 2 && state.shape()[1] == 5 && action.shape() == [state.shape()[0]],
        "cartpole::step: needs state [n, 5] and action [n], got {:?} and {:?}",
        state.shape(),
        action.shape()
    );
    Tensor::apply_op(Step, &[state, action], state.shape())
}

/// `n` fresh episodes: x, ẋ, θ, θ̇ uniform on [−0.05, 0.05], alive, from the device's stream.
pub fn reset(device: &Device, n: usize) -> Tensor {
    let start = Tensor::uniform(device, &[n, 4], -0.05, 0.05);
    Tensor::concat(&[&start, &Tensor::ones(device, &[n, 1])], 1)
}

/// Every member's mean return over `episodes` episodes of up to `steps` steps: `params` `[P, D]`
/// for `policy`, an MLP from the 4 observations to one output (push right where > 0). All P ×
/// episodes run together; nothing is read back (the result `[P]` is lazy).
#[track_caller]
pub fn returns(policy: &PopulationMlp, params: &Tensor, episodes: usize, steps: usize) -> Tensor {
    let w = policy.widths();
    assert!(
        w[0] == 4 && w[w.len() - 1] == 1 && episodes >= 1,
        "cartpole::returns: needs a policy of 4 inputs and 1 output and ≥ 1 episode, got widths \
         {w:?} and {episodes} episodes"
    );
    let p = params.shape()[0];
    let n = p * episodes;
    let dev = params.device();
    let layers = policy.unpack(params);
    let mut state = reset(dev, n);
    let mut total = Tensor::zeros(dev, &[n]);
    for _ in 0..steps {
        total = total + state.narrow(1, 4, 1).reshape(&[n]);
        let obs = state.narrow(1, 0, 4).reshape(&[p, episodes, 4]);
        let push = policy.forward_layers(&layers, &obs).reshape(&[n]);
        state = step(&state, &push);
    }
    total.reshape(&[p, episodes]).mean(1)
}
