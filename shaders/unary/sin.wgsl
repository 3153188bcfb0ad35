// sin: f(x) = sin x;  df = cos x
fn f(x: f32, a: f32, b: f32) -> f32 { return sin(x); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return cos(x); }
