// copy: f(x) = x;  df = 1
fn f(x: f32, a: f32, b: f32) -> f32 { return x; }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return 1.0; }
