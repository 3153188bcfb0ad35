// tanh: f(x) = (1 - e^-2|x|) / (1 + e^-2|x|) · sign(x), finite for every finite x;  df = 1 - y²
fn f(x: f32, a: f32, b: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return 1.0 - y * y; }
