// sqrt: f(x) = √x;  df = 1 / (2√x) = 0.5 / y
fn f(x: f32, a: f32, b: f32) -> f32 { return sqrt(x); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return 0.5 / y; }
