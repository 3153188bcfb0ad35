// cos: f(x) = cos x;  df = -sin x
fn f(x: f32, a: f32, b: f32) -> f32 { return cos(x); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return -sin(x); }
