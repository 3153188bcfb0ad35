//! Adam and AdamW.

use super::optimizer::{Optimizer, Slot, named_state, slots};
use crate::nn::Params;
use crate::op::{Input, Kernel, Layout, Op, Shader, shader};
use crate::{Grads, Tensor};

static ADAM: Shader = shader!("optim/adam", "optim/adam.wgsl");

/// Adam (Kingma & Ba) with bias-corrected moment estimates; with decoupled weight decay it is
/// AdamW (Loshchilov & Hutter).
pub struct Adam {
    slots: Vec<Slot>,
    lr: f32,
    betas: (f32, f32),
    eps: f32,
    weight_decay: f32,
    decoupled: bool,
    steps: u64,
}

impl Adam {
    /// Adam with β = (0.9, 0.999), ε = 1e-8, no weight decay.
    pub fn new(params: &[(String, Tensor)], lr: f32) -> Adam {
        Adam {
            slots: slots(params, 2, 0.0),
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            steps: 0,
        }
    }

    /// AdamW: weight decay applied to the weights directly, not through the gradient.
    pub fn adamw(params: &[(String, Tensor)], lr: f32, weight_decay: f32) -> Adam {
        Adam {
            weight_decay,
            decoupled: true,
            ..Adam::new(params, lr)
        }
    }

    /// The decay rates of the first and second moment estimates (default 0.9, 0.999).
    pub fn betas(mut self, beta1: f32, beta2: f32) -> Adam {
        self.betas = (beta1, beta2);
        self
    }

    /// The term added to √v̂ in the denominator (default 1e-8).
    pub fn eps(mut self, eps: f32) -> Adam {
        self.eps = eps;
        self
    }

    /// L2 weight decay added to the gradient (Adam) — see [`Adam::adamw`] for the decoupled kind.
    pub fn weight_decay(mut self, wd: f32) -> Adam {
        self.weight_decay = wd;
        self
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params_ {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    wd: f32,
    decoupled: u32,
    bc1: f32,
    bc2: f32,
}

/// One Adam update of a parameter and its two moment estimates.
struct AdamUpdate {
    p: Params_,
}

impl Op for AdamUpdate {
    fn name(&self) -> &'static str {
        "adam"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let ins: Vec<&[f64]> = ins.iter().map(|i| i.values).collect();
        let u = &self.p;
        let (lr, b1, b2, eps, wd) = (
            u.lr as f64,
            u.beta1 as f64,
            u.beta2 as f64,
            u.eps as f64,
            u.wd as f64,
        );
        for i in 0..u.n as usize {
            let (mut w, mut g) = (outs[0][i], ins[0][i]);
            if u.decoupled != 0 {
                w *= 1.0 - lr * wd;
            } else {
                g += wd * w;
            }
            let m = b1 * outs[1][i] + (1.0 - b1) * g;
            let v = b2 * outs[2][i] + (1.0 - b2) * g * g;
            outs[1][i] = m;
            outs[2][i] = v;
            outs[0][i] = w - lr * (m / u.bc1 as f64) / ((v / u.bc2 as f64).sqrt() + eps);
        }
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        Kernel::per_vec4(&ADAM, &self.p, self.p.n as usize)
    }
}

impl Optimizer for Adam {
    #[track_caller]
    fn record(&mut self, grads: &Grads) {
        self.steps += 1;
        let t = self.steps as i32;
        let (b1, b2) = self.betas;
        for s in &self.slots {
            let Some(g) = grads.get(&s.param) else {
                continue;
            };
            if s.param.numel() == 0 {
                continue;
            }
            let p = Params_ {
                n: s.param.numel() as u32,
                lr: self.lr,
                beta1: b1,
                beta2: b2,
                eps: self.eps,
                wd: self.weight_decay,
                decoupled: self.decoupled as u32,
                bc1: 1.0 - b1.powi(t),
                bc2: 1.0 - b2.powi(t),
            };
            Tensor::record_update(
                AdamUpdate { p },
                &[g],
                &[&s.param, &s.state[0], &s.state[1]],
            );
        }
    }
    fn params(&self) -> Params {
        self.slots
            .iter()
            .map(|s| (s.name.clone(), s.param.clone()))
            .collect()
    }
    fn state(&self) -> Params {
        named_state(&self.slots, &["exp_avg", "exp_avg_sq"])
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
        if self.decoupled { "adamw" } else { "adam" }
    }
}
