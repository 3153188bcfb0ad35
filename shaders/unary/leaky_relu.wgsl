// leaky_relu (a = negative slope): f(x) = x if x > 0 else a·x;  df = 1 or a
fn f(x: f32, a: f32, b: f32) -> f32 { return select(a * x, x, x > 0.0); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return select(a, 1.0, x > 0.0); }
