// affine (scalar ops): f(x) = a·x + b;  df = a
fn f(x: f32, a: f32, b: f32) -> f32 { return a * x + b; }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return a; }
