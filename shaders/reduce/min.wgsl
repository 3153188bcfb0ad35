// min: init +inf, keeps NaN (tested on the bit pattern), finish unchanged
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn init() -> f32 { return bitcast<f32>(0x7f800000u); }
fn combine(acc: f32, x: f32) -> f32 { return select(min(acc, x), acc + x, is_nan(acc) || is_nan(x)); }
fn finish(acc: f32, scale: f32) -> f32 { return acc; }
