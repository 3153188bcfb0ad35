// clamp to [a, b]: f(x) = min(max(x, a), b);  df = 1 where a ≤ x ≤ b, else 0
fn f(x: f32, a: f32, b: f32) -> f32 { return min(max(x, a), b); }
fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return select(0.0, 1.0, x >= a && x <= b); }
