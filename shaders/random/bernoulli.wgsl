// bernoulli with probability a: 1 if u < a else 0, u = (w.x >> 8) / 2^24 in [0, 1)
fn sample(w: vec4<u32>, a: f32, b: f32) -> f32 { return select(0.0, 1.0, f32(w.x >> 8u) * (1.0 / 16777216.0) < a); }
