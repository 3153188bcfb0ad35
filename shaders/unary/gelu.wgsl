// gelu, tanh form: f(x) = x/2 · (1 + tanh(u)), u = √(2/π) (x + 0.044715 x³)
// df = (1 + t)/2 + x/2 · (1 - t²) · √(2/π) (1 + 3·0.044715 x²), t = tanh(u), with x clamped to ±10
const C: f32 = 0.7978845608028654;
const K: f32 = 0.044715;
fn tanh_safe(u: f32) -> f32 {
    let e = exp(-2.0 * abs(u));
    return sign(u) * (1.0 - e) / (1.0 + e);
}
fn f(x: f32, a: f32, b: f32) -> f32 { return 0.5 * x * (1.0 + tanh_safe(C * (x + K * x * x * x))); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 {
    // Beyond |x| = 10, 1 - t² is 0 in f32 while x² may overflow (0 · ∞ = NaN): df is a step.
    let xs = clamp(x, -10.0, 10.0);
    let t = tanh_safe(C * (xs + K * xs * xs * xs));
    return 0.5 * (1.0 + t) + 0.5 * xs * (1.0 - t * t) * C * (1.0 + 3.0 * K * xs * xs);
}
