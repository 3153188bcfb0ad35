//! Annealed importance sampling of an RBM's partition function (Salakhutdinov & Murray 2008),
//! and its exact value by enumeration for small models.

use super::machine::{Rbm, Visible};
use crate::progress::Progress;
use crate::{Result, Tensor};

/// The annealing schedule: inverse temperatures 0 = β₀ < β₁ < … < β_K = 1 and the number of
/// independent runs.
#[derive(Clone, Debug)]
pub struct Ais {
    /// Independent AIS runs (chains), each giving one importance weight.
    pub runs: usize,
    /// The inverse temperatures, from 0 to 1.
    pub betas: Vec<f64>,
}

impl Ais {
    /// Salakhutdinov & Murray's schedule: β spaced uniformly 0 → 0.5 in 500 steps, 0.5 → 0.9 in
    /// 4,000 and 0.9 → 1 in 10,000 (14,500 intermediate distributions), 100 runs.
    pub fn standard() -> Ais {
        Ais::piecewise(&[(0.5, 500), (0.9, 4000), (1.0, 10_000)], 100)
    }

    /// `steps` inverse temperatures spaced uniformly from 0 to 1.
    pub fn uniform(steps: usize, runs: usize) -> Ais {
        Ais::piecewise(&[(1.0, steps)], runs)
    }

    /// Uniform pieces: from the previous end (0 at first) to `end` in `steps` steps each.
    #[track_caller]
    pub fn piecewise(pieces: &[(f64, usize)], runs: usize) -> Ais {
        let mut betas = vec![0.0];
        let mut from = 0.0;
        for &(end, steps) in pieces {
            assert!(
                end > from && end <= 1.0 && steps > 0,
                "Ais::piecewise: pieces must rise to at most 1 in at least one step, got {pieces:?}"
            );
            betas.extend((1..=steps).map(|i| from + (end - from) * i as f64 / steps as f64));
            from = end;
        }
        assert!(
            (from - 1.0).abs() < 1e-12 && runs >= 2,
            "Ais: the schedule must end at β = 1 and use ≥ 2 runs, got {pieces:?} and {runs} runs"
        );
        *betas.last_mut().expect("one β at least") = 1.0;
        Ais { runs, betas }
    }
}

impl Default for Ais {
    fn default() -> Ais {
        Ais::standard()
    }
}

/// An AIS estimate of log Z.
#[derive(Clone, Debug)]
pub struct AisEstimate {
    /// log Z of the model.
    pub log_z: f64,
    /// The standard error of `log_z` over the runs (delta method: sd(w) / (√runs · mean(w))).
    pub std_err: f64,
    /// log Z of the base-rate model annealed from.
    pub log_z_base: f64,
    /// Every run's log importance weight.
    pub log_weights: Vec<f64>,
}

/// log Σ exp(xᵢ), stably.
fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 { x } else { x.exp().ln_1p() }
}

/// log Z of a binary RBM by annealed importance sampling from the base-rate model with visible
/// biases `base_bias` `[visible]` and no weights (p_A(v) ∝ exp(b_Aᵀv), log Z_A = H log 2 +
/// Σ softplus(b_A)), through p_β(v) ∝ exp((1 − β) b_Aᵀv + β bᵀv) Πⱼ (1 + exp(β(cⱼ + vᵀW·ⱼ))),
/// each step a Gibbs transition at β. All runs step together on the device; the weights are
/// read back every 100 temperatures and summed in f64. Reports progress per 100 temperatures.
#[track_caller]
pub fn ais(
    rbm: &Rbm,
    base_bias: &Tensor,
    schedule: &Ais,
    progress: &mut dyn Progress,
) -> Result<AisEstimate> {
    assert_eq!(
        rbm.visible,
        Visible::Binary,
        "ais: needs binary visible units"
    );
    let (nv, nh, m) = (rbm.visibles(), rbm.hiddens(), schedule.runs);
    assert_eq!(
        base_bias.shape(),
        [nv],
        "ais: the base-rate biases must be [{nv}]"
    );
    let b = &schedule.betas;
    assert!(
        schedule.runs >= 2
            && b.len() >= 2
            && b[0] == 0.0
            && b[b.len() - 1] == 1.0
            && b.windows(2).all(|w| w[1] > w[0]),
        "ais: the schedule must rise from β = 0 to β = 1 and use ≥ 2 runs, got {} βs from {:?} \
         to {:?} and {} runs",
        b.len(),
        b.first(),
        b.last(),
        schedule.runs
    );
    let dev = rbm.weight.device();
    let _no_grad = dev.no_grad();
    let base = base_bias.reshape(&[1, nv]);
    // v·b − v·b_A in one product.
    let bias_gap = (&rbm.visible_bias - base_bias).reshape(&[nv, 1]);
    let base_host = base_bias.to_vec_f64()?;
    let log_z_base =
        nh as f64 * std::f64::consts::LN_2 + base_host.iter().map(|&b| softplus(b)).sum::<f64>();

    let mut v = Tensor::rand(dev, &[m, nv]).lt(&base.sigmoid());
    let mut log_w = vec![0.0f64; m];
    let mut acc = Tensor::zeros(dev, &[m]);
    let steps = schedule.betas.len() - 1;
    progress.start("AIS", steps as u64);
    for k in 1..=steps {
        let (b0, b1) = (schedule.betas[k - 1] as f32, schedule.betas[k] as f32);
        let z = v.matmul(&rbm.weight) + &rbm.hidden_bias;
        let linear = v.matmul(&bias_gap).reshape(&[m]) * (b1 - b0);
        let hidden = ((&z * b1).softplus() - (&z * b0).softplus()).sum(1);
        acc = acc + linear + hidden;
        if k < steps {
            let h = (&z * b1).sigmoid();
            let h = Tensor::rand(dev, h.shape()).lt(&h);
            let field = (h.matmul(&rbm.weight.t()) + &rbm.visible_bias) * b1 + &base * (1.0 - b1);
            let p = field.sigmoid();
            v = Tensor::rand(dev, p.shape()).lt(&p);
        }
        if k % 100 == 0 || k == steps {
            for (w, a) in log_w.iter_mut().zip(acc.to_vec_f64()?) {
                *w += a;
            }
            acc = Tensor::zeros(dev, &[m]);
            progress.update(k as u64, "");
        }
    }
    progress.finish();
    let log_r = log_sum_exp(&log_w) - (m as f64).ln();
    let top = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - top).exp()).collect();
    let mean = w.iter().sum::<f64>() / m as f64;
    let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m as f64 - 1.0);
    Ok(AisEstimate {
        log_z: log_z_base + log_r,
        std_err: (var / m as f64).sqrt() / mean,
        log_z_base,
        log_weights: log_w,
    })
}

/// log Z of a binary RBM exactly, in f64, by enumerating the states of its smaller layer (at most
/// 2²⁰ of them): log Σᵥ e^(−F(v)), or the same sum over hidden states.
#[track_caller]
pub fn exact_log_partition(rbm: &Rbm) -> Result<f64> {
    assert_eq!(
        rbm.visible,
        Visible::Binary,
        "exact_log_partition: needs binary visible units"
    );
    let (nv, nh) = (rbm.visibles(), rbm.hiddens());
    assert!(
        nv.min(nh) <= 20,
        "exact_log_partition: {nv} visible and {nh} hidden units; one layer must have ≤ 20"
    );
    let w = rbm.weight.to_vec_f64()?;
    let (b, c) = (
        rbm.visible_bias.to_vec_f64()?,
        rbm.hidden_bias.to_vec_f64()?,
    );
    // Enumerate layer `s` (size ns, biases bs); the other layer (size no, biases bo) is summed
    // out: −F(s) = bsᵀs + Σₒ softplus(boₒ + Σₛ sᵢ W(i, o)).
    let enumerate_visible = nv <= nh;
    let (ns, no) = if enumerate_visible {
        (nv, nh)
    } else {
        (nh, nv)
    };
    let (bs, bo) = if enumerate_visible {
        (&b, &c)
    } else {
        (&c, &b)
    };
    let weight = |s: usize, o: usize| {
        if enumerate_visible {
            w[s * nh + o]
        } else {
            w[o * nh + s]
        }
    };
    let mut terms = Vec::with_capacity(1 << ns);
    let mut field = vec![0.0f64; no];
    for state in 0u32..(1u32 << ns) {
        field.copy_from_slice(bo);
        let mut linear = 0.0;
        for (i, bi) in bs.iter().enumerate() {
            if state >> i & 1 == 1 {
                linear += bi;
                for (o, f) in field.iter_mut().enumerate() {
                    *f += weight(i, o);
                }
            }
        }
        terms.push(linear + field.iter().map(|&f| softplus(f)).sum::<f64>());
    }
    Ok(log_sum_exp(&terms))
}

/// The mean log-likelihood in nats of the rows of `data` `[n, visible]`, −F(v) − log Z, and its
/// standard error over the rows.
#[track_caller]
pub fn log_likelihood(rbm: &Rbm, data: &Tensor, log_z: f64) -> Result<(f64, f64)> {
    let _no_grad = data.device().no_grad();
    let f = rbm.free_energy(data).to_vec_f64()?;
    let n = f.len() as f64;
    let ll: Vec<f64> = f.iter().map(|f| -f - log_z).collect();
    let mean = ll.iter().sum::<f64>() / n;
    let var = ll.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Ok((mean, (var / n).sqrt()))
}
