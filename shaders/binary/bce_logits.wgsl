// bce_logits (x = logit, t = target): -(t ln σ(x) + (1 - t) ln(1 - σ(x)))
//   = max(x, 0) - x·t + ln(1 + e^-|x|), finite for every finite x
fn f(x: f32, t: f32) -> f32 { return max(x, 0.0) - x * t + log(1.0 + exp(-abs(x))); }
