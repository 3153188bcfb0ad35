// pool/_max_pool2d.wgsl — what the max-pooling kernels share. Each of `planes` planes [h, w]
// is pooled by windows [kh, kw] moved by (sh, sw) over the plane padded by (ph, pw) with −∞; the window of
// output (i, j) starts at (i·sh − ph, j·sw − pw). Its maximum is the first largest value in
// row-major order (a NaN counts as larger than anything, as in PyTorch).
// bindings: inputs (read), then the output (write), then params.

struct Params {
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    _pad: u32,
}

// The position (y·w + x) of window (i, j)'s maximum in the plane at `plane` of `x`.
fn window_max(plane: u32, i: u32, j: u32) -> u32 {
    let y0 = i32(i * p.sh) - i32(p.ph);
    let x0 = i32(j * p.sw) - i32(p.pw);
    let y_start = u32(max(y0, 0));
    let x_start = u32(max(x0, 0));
    let y_end = u32(min(y0 + i32(p.kh), i32(p.h)));
    let x_end = u32(min(x0 + i32(p.kw), i32(p.w)));
    var best = y_start * p.w + x_start;
    var value = x[plane + best];
    for (var y = y_start; y < y_end; y++) {
        for (var xx = x_start; xx < x_end; xx++) {
            let v = x[plane + y * p.w + xx];
            if v > value || (v != v && value == value) {
                value = v;
                best = y * p.w + xx;
            }
        }
    }
    return best;
}
