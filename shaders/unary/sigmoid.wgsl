// sigmoid: f(x) = 1 / (1 + e^-x), evaluated so that neither branch overflows;  df = y (1 - y)
fn f(x: f32, a: f32, b: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return y * (1.0 - y); }
