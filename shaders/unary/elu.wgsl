// elu (a = alpha): f(x) = x if x > 0 else a (e^x - 1);  df = 1 or y + a
fn f(x: f32, a: f32, b: f32) -> f32 { return select(a * (exp(min(x, 0.0)) - 1.0), x, x > 0.0); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return select(y + a, 1.0, x > 0.0); }
