// square: f(x) = x²;  df = 2x
fn f(x: f32, a: f32, b: f32) -> f32 { return x * x; }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return 2.0 * x; }
