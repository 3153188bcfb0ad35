// recip: f(x) = 1/x;  df = -1/x² = -y²
fn f(x: f32, a: f32, b: f32) -> f32 { return 1.0 / x; }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return -y * y; }
