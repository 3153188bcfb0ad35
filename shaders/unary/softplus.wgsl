// softplus: f(x) = ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|) (no overflow);  df = sigmoid(x)
fn f(x: f32, a: f32, b: f32) -> f32 { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
