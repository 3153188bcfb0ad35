// gelu_tanh: GELU's tanh form, f(x) = x/2 · (1 + tanh(u)), u = √(2/π) (x + 0.044715 x³), computed
// as x·s with s = (1 + tanh u)/2 = σ(2u), so the far negative tail keeps its relative accuracy
// (1 + tanh u cancels to 0 in f32 there).  df = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715 x²), with
// s(1 − s) = e/(1 + e)², e = exp(−2|u|), which does not cancel where s is near 1; x is clamped to
// ±10 in df (beyond it s(1 − s) is 0 in f32 while x² may overflow: 0 · ∞ = NaN).
const GELU_TANH_C: f32 = 0.7978845608028654;
const GELU_TANH_K: f32 = 0.044715;
fn gelu_tanh_v(x: f32) -> f32 { return 2.0 * GELU_TANH_C * (x + GELU_TANH_K * x * x * x); }
fn gelu_tanh_s(v: f32) -> f32 {
    let e = exp(-abs(v));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}
fn f(x: f32, a: f32, b: f32) -> f32 { return x * gelu_tanh_s(gelu_tanh_v(x)); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 {
    let xs = clamp(x, -10.0, 10.0);
    let v = gelu_tanh_v(xs);
    let e = exp(-abs(v));
    let spread = e / ((1.0 + e) * (1.0 + e));
    return gelu_tanh_s(v) + 2.0 * xs * spread * GELU_TANH_C * (1.0 + 3.0 * GELU_TANH_K * xs * xs);
}
