// conv/conv2d_input_grad.wgsl — dx = ∂(conv2d)/∂x applied to dy, which is also
// conv_transpose2d (joined with conv/_common.wgsl): a = dy [n, o, oh, ow], b = weight,
// out = dx [n, c, h, w].
// Rows are input pixels (n, y, x), columns the group's input channels c', terms (o', a, b):
//   dx(n, g·cg + c', y, x) = Σ dy(n, g·og + o', i, j) · w(g·og + o', c', a, b)
//   over the taps where y = i·sh − ph + a·dh and x = j·sw − pw + b·dw for some output (i, j).

struct Pixel {
    // y + ph and x + pw: the tap (a, b) reads output row (ty − a·dh) / sh when that divides.
    ty: i32,
    tx: i32,
    // The image's first output plane of the group, and where dx(n, g·cg, y, x) is.
    plane: u32,
    at: u32,
}

fn pixel_of(g: u32, row: u32) -> Pixel {
    let r = min(row, p.rows - 1u);
    let hw = p.h * p.w;
    let n = r / hw;
    let s = r % hw;
    return Pixel(
        i32(s / p.w + p.ph),
        i32(s % p.w + p.pw),
        (n * p.o + g * p.og) * p.oh * p.ow,
        (n * p.c + g * p.cg) * hw + s,
    );
}

// dy at the output pixel tap (da, db) of `px` reaches, in output plane `plane`; 0 if none.
fn tap(px: Pixel, plane: u32, da: i32, db: i32) -> f32 {
    let ty = px.ty - da;
    let tx = px.tx - db;
    let i = ty / i32(p.sh);
    let j = tx / i32(p.sw);
    let hit = ty >= 0 && tx >= 0 && i * i32(p.sh) == ty && j * i32(p.sw) == tx
        && i < i32(p.oh) && j < i32(p.ow);
    let at = select(0u, px.plane + plane + u32(i) * p.ow + u32(j), hit);
    return select(0.0, a[at], hit);
}

fn store(row: u32, col: u32, at: u32, v: f32) {
    if row < p.rows && col < p.cols {
        out[at + col * p.h * p.w] = v;
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
    let p0 = pixel_of(g, t.y);
    let p1 = pixel_of(g, t.y + 1u);
    let p2 = pixel_of(g, t.y + 2u);
    let p3 = pixel_of(g, t.y + 3u);
    let taps = p.kh * p.kw;
    // w(g·og + o', c', a, b) = b[((g·og + o')·cg + c')·taps + a·kw + b].
    let first = g * p.og * p.cg * taps;
    let w0 = first + min(t.z, p.cols - 1u) * taps;
    let w1 = first + min(t.z + 8u, p.cols - 1u) * taps;
    let w2 = first + min(t.z + 16u, p.cols - 1u) * taps;
    let w3 = first + min(t.z + 24u, p.cols - 1u) * taps;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    // The term's output plane offset, its weight offset, and its tap.
    var plane = 0u;
    var wq = 0u;
    var ka = 0u;
    var kb = 0u;
    for (var q = 0u; q < p.k; q++) {
        let wv = vec4<f32>(b[w0 + wq], b[w1 + wq], b[w2 + wq], b[w3 + wq]);
        let da = i32(ka * p.dh);
        let db = i32(kb * p.dw);
        c0 += tap(p0, plane, da, db) * wv;
        c1 += tap(p1, plane, da, db) * wv;
        c2 += tap(p2, plane, da, db) * wv;
        c3 += tap(p3, plane, da, db) * wv;
        wq += 1u;
        kb += 1u;
        if kb == p.kw {
            kb = 0u;
            ka += 1u;
            if ka == p.kh {
                ka = 0u;
                plane += p.oh * p.ow;
                wq += (p.cg - 1u) * taps;
            }
        }
    }
    var rows = array<vec4<f32>, 4>(c0, c1, c2, c3);
    var px = array<Pixel, 4>(p0, p1, p2, p3);
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(t.y + i, t.z + 8u * j, px[i].at, rows[i][j]);
        }
    }
}
