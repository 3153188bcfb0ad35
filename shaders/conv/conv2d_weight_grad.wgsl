// conv/conv2d_weight_grad.wgsl — dw = ∂(conv2d)/∂weight applied to dy (joined with
// conv/_common.wgsl): a = x [n, c, h, w], b = dy [n, o, oh, ow], out = dw [o, cg, kh, kw].
// Rows are the group's output channels o', columns its weight taps (c', a, b), terms the
// output pixels (n, i, j) of images n0.. and output rows oh0..oh1 (longer sums are split into
// such slices on the host):
//   dw(g·og + o', c', a, b) = Σ dy(n, g·og + o', i, j) · x(n, g·cg + c', i·sh − ph + a·dh, j·sw − pw + b·dw)

// Column `col`: its input plane within the group, and its tap's offset from the window corner.
struct Tap {
    plane: u32,
    dy: i32,
    dx: i32,
}

fn tap_of(g: u32, col: u32) -> Tap {
    let c = min(col, p.cols - 1u);
    let taps = p.kh * p.kw;
    let s = c % taps;
    return Tap(
        (g * p.cg + c / taps) * p.h * p.w,
        i32((s / p.kw) * p.dh) - i32(p.ph),
        i32((s % p.kw) * p.dw) - i32(p.pw),
    );
}

fn store(g: u32, row: u32, col: u32, v: f32) {
    if row < p.rows && col < p.cols {
        out[(g * p.og + row) * p.cols + col] = v;
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
    let ohw = p.oh * p.ow;
    // dy(n, g·og + o', i, j) = b[n·o·ohw + (g·og + o')·ohw + i·ow + j]
    let r0 = (g * p.og + min(t.y, p.rows - 1u)) * ohw;
    let r1 = (g * p.og + min(t.y + 1u, p.rows - 1u)) * ohw;
    let r2 = (g * p.og + min(t.y + 2u, p.rows - 1u)) * ohw;
    let r3 = (g * p.og + min(t.y + 3u, p.rows - 1u)) * ohw;
    let k0 = tap_of(g, t.z);
    let k1 = tap_of(g, t.z + 8u);
    let k2 = tap_of(g, t.z + 16u);
    let k3 = tap_of(g, t.z + 24u);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    // The term's image offsets (in dy and in x) and its output pixel, stepped without division.
    var yimg = p.n0 * p.o * ohw;
    var ximg = p.n0 * p.c * p.h * p.w;
    var i = p.oh0;
    var j = 0u;
    for (var q = 0u; q < p.k; q++) {
        let at = yimg + i * p.ow + j;
        let dyv = vec4<f32>(b[at + r0], b[at + r1], b[at + r2], b[at + r3]);
        let y0 = i32(i * p.sh);
        let x0 = i32(j * p.sw);
        let xv = vec4<f32>(
            pixel_a(ximg + k0.plane, y0 + k0.dy, x0 + k0.dx),
            pixel_a(ximg + k1.plane, y0 + k1.dy, x0 + k1.dx),
            pixel_a(ximg + k2.plane, y0 + k2.dy, x0 + k2.dx),
            pixel_a(ximg + k3.plane, y0 + k3.dy, x0 + k3.dx),
        );
        c0 += dyv.x * xv;
        c1 += dyv.y * xv;
        c2 += dyv.z * xv;
        c3 += dyv.w * xv;
        j += 1u;
        if j == p.ow {
            j = 0u;
            i += 1u;
            if i == p.oh1 {
                i = p.oh0;
                yimg += p.o * ohw;
                ximg += p.c * p.h * p.w;
            }
        }
    }
    var rows = array<vec4<f32>, 4>(c0, c1, c2, c3);
    for (var r = 0u; r < 4u; r++) {
        for (var s = 0u; s < 4u; s++) {
            store(g, t.y + r, t.z + 8u * s, rows[r][s]);
        }
    }
}
