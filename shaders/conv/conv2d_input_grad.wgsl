// conv/conv2d_input_grad.wgsl — dx = ∂(conv2d)/∂x applied to dy, which is also
// conv_transpose2d (joined with conv/_common.wgsl): a = dy [n, o, oh, ow], b = the weight laid
// out [groups, og·kh·kw, cg] (columns contiguous), out = dx [n, c, h, w]. Rows are input pixels
// (n, y, x), columns the group's input channels c', terms (o', a, b) in that order:
//   dx(n, g·cg + c', y, x) = Σ dy(n, g·og + o', i, j) · w(g·og + o', c', a, b)
//   over the taps where y = i·sh − ph + a·dh and x = j·sw − pw + b·dw for some output (i, j).

// The 8 rows of a block: y + ph and x + pw (tap (a, b) reads output row (ty − a·dh) / sh when
// that divides), and the first output plane of the pixel's image and group.
struct Rows {
    ty: array<i32, 8>,
    tx: array<i32, 8>,
    plane: array<u32, 8>,
}

fn rows_of(g: u32, row0: u32) -> Rows {
    var r: Rows;
    let hw = p.h * p.w;
    for (var i = 0u; i < 8u; i++) {
        let e = min(row0 + i, p.rows - 1u);
        let s = e % hw;
        r.ty[i] = i32(s / p.w + p.ph);
        r.tx[i] = i32(s % p.w + p.pw);
        r.plane[i] = ((e / hw) * p.o + g * p.og) * p.oh * p.ow;
    }
    return r;
}

// dy at the output pixel that tap (da, db) of input pixel (ty, tx) reaches, in output plane
// `plane`; 0 if none.
fn tap(plane: u32, ty0: i32, tx0: i32, da: i32, db: i32) -> f32 {
    let ty = ty0 - da;
    let tx = tx0 - db;
    let i = ty / i32(p.sh);
    let j = tx / i32(p.sw);
    let hit = ty >= 0 && tx >= 0 && i * i32(p.sh) == ty && j * i32(p.sw) == tx
        && i < i32(p.oh) && j < i32(p.ow);
    let at = select(0u, plane + u32(i) * p.ow + u32(j), hit);
    return select(0.0, a[at], hit);
}

fn store(g: u32, row: u32, col: u32, v: f32) {
    if row < p.rows && col < p.cols {
        let hw = p.h * p.w;
        out[((row / hw) * p.c + g * p.cg + col) * hw + row % hw] = v;
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
    let bc = columns8(g * p.k * p.cols, t.z);
    var acc: Rows8;
    // The term's output plane offset and its tap, stepped without division.
    var plane = 0u;
    var ka = 0u;
    var kb = 0u;
    for (var q = 0u; q < p.k; q++) {
        let bq = q * p.cols;
        let b0 = vec4<f32>(b[bc[0] + bq], b[bc[1] + bq], b[bc[2] + bq], b[bc[3] + bq]);
        let b1 = vec4<f32>(b[bc[4] + bq], b[bc[5] + bq], b[bc[6] + bq], b[bc[7] + bq]);
        let da = i32(ka * p.dh);
        let db = i32(kb * p.dw);
        let a0 = vec4<f32>(
            tap(r.plane[0] + plane, r.ty[0], r.tx[0], da, db),
            tap(r.plane[1] + plane, r.ty[1], r.tx[1], da, db),
            tap(r.plane[2] + plane, r.ty[2], r.tx[2], da, db),
            tap(r.plane[3] + plane, r.ty[3], r.tx[3], da, db),
        );
        let a1 = vec4<f32>(
            tap(r.plane[4] + plane, r.ty[4], r.tx[4], da, db),
            tap(r.plane[5] + plane, r.ty[5], r.tx[5], da, db),
            tap(r.plane[6] + plane, r.ty[6], r.tx[6], da, db),
            tap(r.plane[7] + plane, r.ty[7], r.tx[7], da, db),
        );
        acc = outer_rows8(acc, a0, a1, b0, b1);
        kb += 1u;
        if kb == p.kw {
            kb = 0u;
            ka += 1u;
            if ka == p.kh {
                ka = 0u;
                plane += p.oh * p.ow;
            }
        }
    }
    for (var i = 0u; i < 8u; i++) {
        var v = block_row(acc, i);
        for (var j = 0u; j < 8u; j++) {
            store(g, t.y + i, t.z + 8u * j, v[j]);
        }
    }
}
