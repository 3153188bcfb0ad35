//! Adversarial examples: inputs moved a little, in the direction that most raises a
//! classifier's loss, until it errs (Goodfellow, Shlens & Szegedy 2015; Kurakin et al. 2017;
//! Madry et al. 2018).
//!
//! An attack works on any model given as a function from a batch of images to logits, with
//! pixels in [0, 1]: ε is in pixel units, and every perturbed image is clipped to [0, 1] before
//! the model sees it, so a model that standardises its inputs does so inside that function and ε
//! means what it means in the papers. Attacks are batched and run on the model's device; each
//! step (forward, the input gradient by [`Tensor::grad_wrt`], the update and projection) is
//! recorded and submitted as one step, and nothing is read back.
//!
//! ```
//! use wgrad::adversarial::{self, Attack, Goal};
//! use wgrad::nn::{Linear, Init, Module};
//! use wgrad::{Device, Tensor};
//! let dev = Device::cpu();
//! let model = Linear::new(&dev, 4, 3, Init::XavierUniform);
//! let (x, y) = (Tensor::rand(&dev, &[8, 4]), Tensor::from_vec(&dev, vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0], &[8])?);
//! let fooled = adversarial::attack(&|x| model.forward(x), &x, Goal::Untargeted(&y), &Attack::pgd(0.1, 10))?;
//! assert!(fooled.sub(&x).abs().max_all().item()? <= 0.1 + 1e-6);
//! # Ok::<(), wgrad::Error>(())
//! ```

use crate::{Result, Tensor};

/// What the attack is after.
#[derive(Clone, Copy)]
pub enum Goal<'a> {
    /// Any wrong class: raise the loss of these true labels (`[n]`, class indices).
    Untargeted(&'a Tensor),
    /// These classes (`[n]`, class indices): lower the loss of the target labels.
    Targeted(&'a Tensor),
}

impl Goal<'_> {
    fn labels(&self) -> &Tensor {
        match self {
            Goal::Untargeted(y) | Goal::Targeted(y) => y,
        }
    }
}

/// An L∞ attack: `steps` signed-gradient steps of `step_size`, each projected back onto the
/// ε-ball around the clean image and onto [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Attack {
    /// The largest change of any pixel (pixels in [0, 1]).
    pub eps: f32,
    /// Signed-gradient steps.
    pub steps: usize,
    /// Each step's size in pixel units.
    pub step_size: f32,
    /// Start from a uniformly random point of the ε-ball (PGD) instead of the clean image.
    pub random_start: bool,
}

impl Attack {
    /// The fast gradient sign method: one step of ε from the clean image,
    /// x' = clip(x + ε·sign(∇ₓ L)).
    pub fn fgsm(eps: f32) -> Attack {
        Attack {
            eps,
            steps: 1,
            step_size: eps,
            random_start: false,
        }
    }

    /// The basic iterative method (iterated FGSM) with Kurakin et al.'s schedule: steps of one
    /// grey level (1/255), min(255ε + 4, 1.25·255ε) of them, from the clean image.
    pub fn bim(eps: f32) -> Attack {
        let levels = 255.0 * eps;
        Attack {
            eps,
            steps: ((levels + 4.0).min(1.25 * levels).round() as usize).max(1),
            step_size: 1.0 / 255.0,
            random_start: false,
        }
    }

    /// Projected gradient descent (Madry et al.): a random start in the ε-ball, then `steps`
    /// steps of 2.5ε/steps, so the walk can cross the ball and back.
    pub fn pgd(eps: f32, steps: usize) -> Attack {
        Attack {
            eps,
            steps,
            step_size: 2.5 * eps / steps.max(1) as f32,
            random_start: true,
        }
    }

    #[track_caller]
    fn check(&self) {
        assert!(
            self.eps.is_finite() && self.eps >= 0.0,
            "attack: ε must be finite and ≥ 0, got {}",
            self.eps
        );
        assert!(
            self.step_size.is_finite() && self.step_size >= 0.0,
            "attack: the step size must be finite and ≥ 0, got {}",
            self.step_size
        );
        assert!(self.steps >= 1, "attack: needs at least one step");
    }
}

/// The gradient of the model's mean cross-entropy on `labels` with respect to the images `x`
/// (and no other gradient).
#[track_caller]
pub fn input_gradient(model: &dyn Fn(&Tensor) -> Tensor, x: &Tensor, labels: &Tensor) -> Tensor {
    let x = x.detach().requires_grad_();
    let loss = model(&x).cross_entropy(labels);
    loss.grad_wrt(&[&x]).remove(0)
}

/// Adversarial versions of the images `x` (`[n, …]`, pixels in [0, 1]) against `model`, for
/// `goal`, by `attack`. The result is detached: it carries no gradient back to `x` or the model.
#[track_caller]
pub fn attack(
    model: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
    goal: Goal,
    attack: &Attack,
) -> Result<Tensor> {
    attack.check();
    let labels = goal.labels();
    assert_eq!(
        labels.shape(),
        &x.shape()[..1],
        "attack: labels of shape {:?} for images of shape {:?} (one label per image)",
        labels.shape(),
        x.shape()
    );
    let dev = x.device();
    let clean = x.detach();
    let (lo, hi) = ((&clean - attack.eps), (&clean + attack.eps));
    let project = |t: &Tensor| t.maximum(&lo).minimum(&hi).clamp(0.0, 1.0);
    let mut adv = if attack.random_start {
        let noise = Tensor::uniform(dev, x.shape(), -attack.eps, attack.eps);
        project(&(&clean + noise))
    } else {
        clean.clone()
    };
    // Untargeted: up the loss of the true labels; targeted: down the loss of the targets.
    let direction = match goal {
        Goal::Untargeted(_) => attack.step_size,
        Goal::Targeted(_) => -attack.step_size,
    };
    for _ in 0..attack.steps {
        let g = input_gradient(model, &adv, labels);
        adv = project(&(&adv + g.sign() * direction)).detach();
        dev.flush()?; // one submit per step
    }
    Ok(adv)
}

/// The model's accuracy on `x` (as the share of `labels` it predicts) in batches of `batch`,
/// each attacked first when `attack` is given; read back once per batch.
#[track_caller]
pub fn accuracy_under(
    model: &dyn Fn(&Tensor) -> Tensor,
    x: &Tensor,
    labels: &Tensor,
    attack: Option<&Attack>,
    batch: usize,
) -> Result<f64> {
    assert!(
        batch >= 1,
        "accuracy_under: the batch must hold at least one image"
    );
    let n = x.shape()[0];
    let mut hits = 0.0;
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let (xb, yb) = (x.narrow(0, start, len), labels.narrow(0, start, len));
        let xb = match attack {
            Some(a) => self::attack(model, &xb, Goal::Untargeted(&yb), a)?,
            None => xb,
        };
        let _no_grad = x.device().no_grad();
        hits += f64::from(model(&xb).argmax(1).eq(&yb).sum_all().item()?);
        start += len;
    }
    Ok(hits / n as f64)
}
