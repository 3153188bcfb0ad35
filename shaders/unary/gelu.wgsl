// gelu (exact): f(x) = x·Φ(x), Φ(x) = erfc(−x/√2)/2 the standard normal CDF;  df = Φ(x) + x·φ(x),
// φ(x) = e^(−x²/2)/√(2π). erfc(|x|/√2) = t·e^(P(t))·e^(−x²/2), t = 1/(1 + |x|/(2√2)), with P the
// Chebyshev fit in Numerical Recipes (§6.2: fractional error < 1.2e-7 everywhere), so Φ keeps its
// relative accuracy in the far tails (x·Φ(x) for x < 0 is never a difference of near equals).
// e^(−x²/2) is taken apart from e^(P): x² = hi + lo exactly (where fma is fused), so the large
// argument −hi/2 of exp is exact instead of rounded to the f32 grid of the whole exponent.
fn gelu_gauss(x: f32) -> f32 {
    let hi = x * x;
    let lo = fma(x, x, -hi);
    return exp(-0.5 * hi) * (1.0 - 0.5 * lo);
}
fn gelu_cdf(x: f32, gauss: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.35355339 * abs(x));
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let tail = 0.5 * t * exp(poly) * gauss;
    return select(1.0 - tail, tail, x < 0.0);
}
fn f(x: f32, a: f32, b: f32) -> f32 { return x * gelu_cdf(x, gelu_gauss(x)); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 {
    let gauss = gelu_gauss(x);
    return gelu_cdf(x, gauss) + x * 0.39894228 * gauss;
}
