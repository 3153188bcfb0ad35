// abs: f(x) = |x|;  df = sign(x) (0 at 0)
fn f(x: f32, a: f32, b: f32) -> f32 { return abs(x); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return sign(x); }
