// normal with mean a and standard deviation b: a + b·z, z by Box–Muller (_philox_core.wgsl)
fn sample(w: vec4<u32>, a: f32, b: f32) -> f32 { return a + b * box_muller(w); }
