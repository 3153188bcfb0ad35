// relu: f(x) = max(x, 0);  df = 1 where x > 0, else 0
fn f(x: f32, a: f32, b: f32) -> f32 { return max(x, 0.0); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }
