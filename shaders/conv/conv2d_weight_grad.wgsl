// conv/conv2d_weight_grad.wgsl — dw = ∂(conv2d)/∂weight applied to dy (joined with
// conv/_common.wgsl): a = x [n, c, h, w], b = dy laid out [n, oh, ow, o] (channels
// contiguous), out = dw laid out [groups, cg·kh·kw, og]. Rows are the group's weight taps
// (c', a, b), columns its output channels o', terms the output pixels (n, i, j) of images n0..
// and output rows oh0..oh1 (longer sums are split into such slices on the host):
//   dw(g·og + o', c', a, b) = Σ dy(n, g·og + o', i, j) · x(n, g·cg + c', i·sh − ph + a·dh, j·sw − pw + b·dw)

// The 8 rows of a block: each tap's input plane within the image, and its offset from the
// window's corner.
struct Rows {
    plane: array<u32, 8>,
    dy: array<i32, 8>,
    dx: array<i32, 8>,
}

fn rows_of(g: u32, row0: u32) -> Rows {
    var r: Rows;
    let taps = p.kh * p.kw;
    for (var i = 0u; i < 8u; i++) {
        let e = min(row0 + i, p.rows - 1u);
        let s = e % taps;
        r.plane[i] = (g * p.cg + e / taps) * p.h * p.w;
        r.dy[i] = i32((s / p.kw) * p.dh) - i32(p.ph);
        r.dx[i] = i32((s % p.kw) * p.dw) - i32(p.pw);
    }
    return r;
}

fn store(g: u32, row: u32, col: u32, v: f32) {
    if row < p.rows && col < p.cols {
        out[(g * p.rows + row) * p.cols + col] = v;
    }
}

@compute @workgroup_size(8, 8)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let t = block(wid, nwg, lid);
    if t.x == 0xffffffffu {
        return;
    }
    let g = t.x;
    let r = rows_of(g, t.y);
    let bc = columns8(g * p.og, t.z);
    var acc: Rows8;
    // The term's offsets (its dy pixel, its x image) and output pixel, stepped without division.
    var pix = ((p.n0 * p.oh + p.oh0) * p.ow) * p.o;
    var ximg = p.n0 * p.c * p.h * p.w;
    var i = p.oh0;
    var j = 0u;
    let skip = (p.oh - (p.oh1 - p.oh0)) * p.ow * p.o;
    for (var q = 0u; q < p.k; q++) {
        let b0 = vec4<f32>(b[bc[0] + pix], b[bc[1] + pix], b[bc[2] + pix], b[bc[3] + pix]);
        let b1 = vec4<f32>(b[bc[4] + pix], b[bc[5] + pix], b[bc[6] + pix], b[bc[7] + pix]);
        let y0 = i32(i * p.sh);
        let x0 = i32(j * p.sw);
        let a0 = vec4<f32>(
            pixel_a(ximg + r.plane[0], y0 + r.dy[0], x0 + r.dx[0]),
            pixel_a(ximg + r.plane[1], y0 + r.dy[1], x0 + r.dx[1]),
            pixel_a(ximg + r.plane[2], y0 + r.dy[2], x0 + r.dx[2]),
            pixel_a(ximg + r.plane[3], y0 + r.dy[3], x0 + r.dx[3]),
        );
        let a1 = vec4<f32>(
            pixel_a(ximg + r.plane[4], y0 + r.dy[4], x0 + r.dx[4]),
            pixel_a(ximg + r.plane[5], y0 + r.dy[5], x0 + r.dx[5]),
            pixel_a(ximg + r.plane[6], y0 + r.dy[6], x0 + r.dx[6]),
            pixel_a(ximg + r.plane[7], y0 + r.dy[7], x0 + r.dx[7]),
        );
        acc = outer_rows8(acc, a0, a1, b0, b1);
        pix += p.o;
        j += 1u;
        if j == p.ow {
            j = 0u;
            i += 1u;
            if i == p.oh1 {
                i = p.oh0;
                pix += skip;
                ximg += p.c * p.h * p.w;
            }
        }
    }
    for (var e = 0u; e < 8u; e++) {
        var v = block_row(acc, e);
        for (var s = 0u; s < 8u; s++) {
            store(g, t.y + e, t.z + 8u * s, v[s]);
        }
    }
}
