//! Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

use super::optimizer::{Optimizer, Slot, named_state, slots};
use crate::nn::Params;
use crate::op::{Input, Kernel, Layout, Op, Shader, shader};
use crate::{Grads, Tensor};

static SGD: Shader = shader!("optim/sgd", "optim/sgd.wgsl");
static SGD_MOMENTUM: Shader = shader!("optim/sgd_momentum", "optim/sgd_momentum.wgsl");

/// SGD: p ← p − lr·(g + wd·p); with momentum μ, v ← μ·v + g (PyTorch's convention), stepping
/// along v, or along g + μ·v with Nesterov momentum.
pub struct Sgd {
    slots: Vec<Slot>,
    lr: f32,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    steps: u64,
}

impl Sgd {
    /// Plain SGD over `params` at learning rate `lr`; add momentum, Nesterov and weight decay with the builders.
    pub fn new(params: &[(String, Tensor)], lr: f32) -> Sgd {
        Sgd {
            slots: slots(params, 0, 0.0),
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            steps: 0,
        }
    }

    /// Classical momentum μ (keeps a velocity per parameter).
    pub fn momentum(mut self, mu: f32) -> Sgd {
        assert!(
            (0.0..1.0).contains(&mu),
            "Sgd: momentum {mu} outside [0, 1)"
        );
        self.momentum = mu;
        if mu > 0.0 {
            for s in &mut self.slots {
                *s = Slot::new(&s.name, &s.param, 1, 0.0);
            }
        }
        self
    }

    /// Nesterov's accelerated gradient (needs momentum).
    pub fn nesterov(mut self) -> Sgd {
        assert!(
            self.momentum > 0.0,
            "Sgd: Nesterov momentum needs momentum > 0; call .momentum() first"
        );
        self.nesterov = true;
        self
    }

    /// L2 weight decay added to the gradient.
    pub fn weight_decay(mut self, wd: f32) -> Sgd {
        self.weight_decay = wd;
        self
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params_ {
    n: u32,
    lr: f32,
    momentum: f32,
    wd: f32,
    nesterov: u32,
}

/// One SGD update of a parameter (and its velocity, with momentum).
struct SgdUpdate {
    n: usize,
    lr: f32,
    momentum: f32,
    wd: f32,
    nesterov: bool,
}

impl Op for SgdUpdate {
    fn name(&self) -> &'static str {
        if self.momentum > 0.0 {
            "sgd_momentum"
        } else {
            "sgd"
        }
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let ins: Vec<&[f64]> = ins.iter().map(|i| i.values).collect();
        let (lr, mu, wd) = (self.lr as f64, self.momentum as f64, self.wd as f64);
        for i in 0..self.n {
            let d = ins[0][i] + wd * outs[0][i];
            if self.momentum > 0.0 {
                let v = mu * outs[1][i] + d;
                outs[1][i] = v;
                outs[0][i] -= lr * if self.nesterov { d + mu * v } else { v };
            } else {
                outs[0][i] -= lr * d;
            }
        }
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        let p = Params_ {
            n: self.n as u32,
            lr: self.lr,
            momentum: self.momentum,
            wd: self.wd,
            nesterov: self.nesterov as u32,
        };
        let shader = if self.momentum > 0.0 {
            &SGD_MOMENTUM
        } else {
            &SGD
        };
        Kernel::per_vec4(shader, &p, self.n)
    }
}

impl Optimizer for Sgd {
    #[track_caller]
    fn record(&mut self, grads: &Grads) {
        for s in &self.slots {
            let Some(g) = grads.get(&s.param) else {
                continue;
            };
            let op = SgdUpdate {
                n: s.param.numel(),
                lr: self.lr,
                momentum: self.momentum,
                wd: self.weight_decay,
                nesterov: self.nesterov,
            };
            let targets: Vec<&Tensor> = std::iter::once(&s.param).chain(&s.state).collect();
            if s.param.numel() > 0 {
                Tensor::record_update(op, &[g], &targets);
            }
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
        named_state(&self.slots, &["momentum_buffer"])
    }
    fn steps(&self) -> u64 {
        self.steps
    }
    fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
    fn lr(&self) -> f32 {
        self.lr
    }
    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn kind(&self) -> &'static str {
        "sgd"
    }
}
