// gelu (exact): f(x) = x·Φ(x), Φ(x) = erfc(−x/√2)/2 the standard normal CDF;  df = Φ(x) + x·φ(x),
// φ(x) = e^(−x²/2)/√(2π). erfc(|x|/√2) = t·e^(P(t))·e^(−x²/2), t = 1/(1 + |x|/(2√2)), with P the
// Chebyshev fit in Numerical Recipes (§6.2: fractional error < 1.2e-7 everywhere), so Φ keeps its
// relative accuracy in the far tails (x·Φ(x) for x < 0 is never a difference of near equals).
// e^(−x²/2) is taken apart from e^(P) and computed with care, since GPUs' exp loses about |v|
// ulp at a large argument v (it is 2^(v·log₂e), and the product is rounded): x² = hi + lo exactly
// (where fma is fused), v = −hi/2 is exact, and v = k·ln 2 + r with ln 2 in two parts (Cody and
// Waite), so e^v = 2^k·e^r with |r| ≤ ln 2 / 2, where exp is accurate. |x| is capped at 16, where
// e^(−x²/2) is already 0 in f32, so x² never overflows (∞ − ∞ in the fma).
fn gelu_gauss(x: f32) -> f32 {
    let a = min(abs(x), 16.0);
    let hi = a * a;
    let lo = fma(a, a, -hi);
    let v = -0.5 * hi;
    let k = round(v * 1.4426950);
    let r = (v - k * 0.693145751953125) - k * 1.4286068e-6;
    return ldexp(exp(r), i32(k)) * (1.0 - 0.5 * lo);
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
