//! iRprop−: resilient backpropagation without a learning rate (Riedmiller & Braun; the variant
//! of Igel & Hüsken). Meant for full-batch training.

use super::optimizer::{Optimizer, Slot, named_state, slots};
use crate::nn::Params;
use crate::op::{Input, Kernel, Layout, Op, Shader, shader};
use crate::{Grads, Tensor};

static RPROP: Shader = shader!("optim/rprop", "optim/rprop.wgsl");

/// Per-weight step sizes grow by η+ while the gradient keeps its sign and shrink by η− when it
/// flips (and that step is skipped); only the gradient's sign moves the weight.
pub struct Rprop {
    slots: Vec<Slot>,
    etas: (f32, f32),
    limits: (f32, f32),
    steps: u64,
}

impl Rprop {
    /// η− = 0.5, η+ = 1.2, steps start at 0.0125 and stay in [1e-6, 50].
    pub fn new(params: &[(String, Tensor)]) -> Rprop {
        Rprop::with_initial_step(params, 0.0125)
    }

    /// Steps start at `step0`.
    pub fn with_initial_step(params: &[(String, Tensor)], step0: f32) -> Rprop {
        let mut slots = slots(params, 0, 0.0);
        for s in &mut slots {
            s.state = vec![
                Tensor::zeros(s.param.device(), s.param.shape()),
                Tensor::full(s.param.device(), s.param.shape(), step0),
            ];
        }
        Rprop {
            slots,
            etas: (0.5, 1.2),
            limits: (1e-6, 50.0),
            steps: 0,
        }
    }

    /// The factors by which a step size shrinks when the gradient changes sign and grows when it keeps it (default 0.5, 1.2).
    pub fn etas(mut self, minus: f32, plus: f32) -> Rprop {
        assert!(
            0.0 < minus && minus < 1.0 && plus > 1.0,
            "Rprop: need 0 < η− < 1 < η+"
        );
        self.etas = (minus, plus);
        self
    }

    /// The smallest and largest step sizes (default 1e-6, 50).
    pub fn step_limits(mut self, min: f32, max: f32) -> Rprop {
        self.limits = (min, max);
        self
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params_ {
    n: u32,
    eta_plus: f32,
    eta_minus: f32,
    step_min: f32,
    step_max: f32,
}

struct RpropUpdate {
    p: Params_,
}

impl Op for RpropUpdate {
    fn name(&self) -> &'static str {
        "rprop"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let ins: Vec<&[f64]> = ins.iter().map(|i| i.values).collect();
        let u = &self.p;
        for i in 0..u.n as usize {
            let mut g = ins[0][i];
            let s = g * outs[1][i];
            let mut delta = outs[2][i];
            if s > 0.0 {
                delta = (delta * u.eta_plus as f64).min(u.step_max as f64);
            } else if s < 0.0 {
                delta = (delta * u.eta_minus as f64).max(u.step_min as f64);
                g = 0.0;
            }
            outs[2][i] = delta;
            outs[1][i] = g;
            let sign = if g > 0.0 {
                1.0
            } else if g < 0.0 {
                -1.0
            } else {
                0.0
            };
            outs[0][i] -= sign * delta;
        }
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        Kernel::per_element(&RPROP, &self.p, self.p.n as usize)
    }
}

impl Optimizer for Rprop {
    #[track_caller]
    fn record(&mut self, grads: &Grads) {
        for s in &self.slots {
            let Some(g) = grads.get(&s.param) else {
                continue;
            };
            if s.param.numel() == 0 {
                continue;
            }
            let p = Params_ {
                n: s.param.numel() as u32,
                eta_plus: self.etas.1,
                eta_minus: self.etas.0,
                step_min: self.limits.0,
                step_max: self.limits.1,
            };
            Tensor::record_update(
                RpropUpdate { p },
                &[g],
                &[&s.param, &s.state[0], &s.state[1]],
            );
        }
        self.steps += 1;
    }
    fn params(&self) -> Params {
        self.slots
            .iter()
            .map(|s| (s.name.clone(), s.param.clone()))
            .collect()
    }
    fn state(&self) -> Params {
        named_state(&self.slots, &["prev", "step_size"])
    }
    fn steps(&self) -> u64 {
        self.steps
    }
    fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
    fn lr(&self) -> f32 {
        f32::NAN
    }
    fn set_lr(&mut self, _lr: f32) {}
    fn kind(&self) -> &'static str {
        "rprop"
    }
}
