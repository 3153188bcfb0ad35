// normal with mean a and standard deviation b, by Box–Muller:
// z = √(-2 ln u1) cos(2π u2), u1 = ((w.x >> 8) + 1) / 2^24 in (0, 1], u2 = (w.y >> 8) / 2^24;
// the cosine is taken as −cos(2π u2 − π), an argument in [−π, π) where WGSL bounds its error
fn sample(w: vec4<u32>, a: f32, b: f32) -> f32 {
    let u1 = (f32(w.x >> 8u) + 1.0) * (1.0 / 16777216.0);
    let u2 = f32(w.y >> 8u) * (1.0 / 16777216.0);
    return a - b * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2 - 3.141592653589793);
}
