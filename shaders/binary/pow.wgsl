// pow: a^b for a > 0 (and a = 0 with b > 0); NaN for a < 0, as in real arithmetic
fn f(a: f32, b: f32) -> f32 {
    if b == 0.0 { return 1.0; }
    return pow(a, b);
}
