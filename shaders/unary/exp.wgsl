// exp: f(x) = e^x;  df = e^x = y
fn f(x: f32, a: f32, b: f32) -> f32 { return exp(x); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return y; }
