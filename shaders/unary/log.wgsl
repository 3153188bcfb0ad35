// log: f(x) = ln x (−inf at 0, NaN below);  df = 1/x
fn f(x: f32, a: f32, b: f32) -> f32 { return log(x); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return 1.0 / x; }
