// powf (a = exponent): f(x) = x^a, defined for negative x when a is an integer;  df = a·x^(a-1)
fn power(x: f32, e: f32) -> f32 {
    if e == 0.0 { return 1.0; }
    if x >= 0.0 { return pow(x, e); }
    if fract(e) != 0.0 { return pow(x, e); } // NaN, as for any real power of a negative number
    let m = pow(-x, e);
    return select(m, -m, fract(e * 0.5) != 0.0);
}
fn f(x: f32, a: f32, b: f32) -> f32 { return power(x, a); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return a * power(x, a - 1.0); }
