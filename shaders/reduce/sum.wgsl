// sum (mean when scale = 1/len): init 0, acc + x, finish acc · scale
fn init() -> f32 { return 0.0; }
fn combine(acc: f32, x: f32) -> f32 { return acc + x; }
fn finish(acc: f32, scale: f32) -> f32 { return acc * scale; }
