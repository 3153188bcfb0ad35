// random/_philox_core.wgsl — Philox4x32-10, the generator of src/rng.rs, and Box–Muller, for the
// random kernels: a prelude joined before every kernel of this folder.

// (high, low) words of the 64-bit product a·b, from 16-bit halves (WGSL has no 64-bit integers).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    return vec2<u32>(a_hi * b_hi + (lh >> 16u) + (hl >> 16u) + (mid >> 16u), a * b);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}


// A standard normal by Box–Muller from two words: √(-2 ln u1) cos(2π u2), u1 = ((w.x >> 8) + 1)
// / 2^24 in (0, 1], u2 = (w.y >> 8) / 2^24; the cosine is taken as −cos(2π u2 − π), an argument
// in [−π, π) where WGSL bounds its error.
fn box_muller(w: vec4<u32>) -> f32 {
    let u1 = (f32(w.x >> 8u) + 1.0) * (1.0 / 16777216.0);
    let u2 = f32(w.y >> 8u) * (1.0 / 16777216.0);
    return -sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2 - 3.141592653589793);
}
