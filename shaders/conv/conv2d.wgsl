// conv/conv2d.wgsl — y = conv2d(x, weight) + bias (joined with conv/_common.wgsl): a = x,
// b = weight. Rows are output pixels (n, i, j), columns the group's output channels, terms
// (c', a, b) in weight order.

// Output pixel r: the top-left input position of its window and its image's first plane.
struct Pixel {
    ih: i32,
    iw: i32,
    plane: u32,
    at: u32,
}

fn pixel_of(g: u32, row: u32) -> Pixel {
    let r = min(row, p.rows - 1u);
    let hw = p.oh * p.ow;
    let n = r / hw;
    let s = r % hw;
    let i = s / p.ow;
    let j = s % p.ow;
    return Pixel(
        i32(i * p.sh) - i32(p.ph),
        i32(j * p.sw) - i32(p.pw),
        (n * p.c + g * p.cg) * p.h * p.w,
        n * p.o * hw + s,
    );
}

fn store(g: u32, row: u32, col: u32, at: u32, v: f32) {
    if row < p.rows && col < p.cols {
        let oc = g * p.og + col;
        var y = v;
        if p.has_bias != 0u {
            y += bias[oc];
        }
        out[at + oc * p.oh * p.ow] = y;
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
    let w0 = (g * p.og + min(t.z, p.cols - 1u)) * p.k;
    let w1 = (g * p.og + min(t.z + 8u, p.cols - 1u)) * p.k;
    let w2 = (g * p.og + min(t.z + 16u, p.cols - 1u)) * p.k;
    let w3 = (g * p.og + min(t.z + 24u, p.cols - 1u)) * p.k;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    // The term's channel plane offset and kernel tap, stepped without division.
    var plane = 0u;
    var ka = 0u;
    var kb = 0u;
    for (var q = 0u; q < p.k; q++) {
        let wv = vec4<f32>(b[w0 + q], b[w1 + q], b[w2 + q], b[w3 + q]);
        let da = i32(ka * p.dh);
        let db = i32(kb * p.dw);
        c0 += pixel_a(p0.plane + plane, p0.ih + da, p0.iw + db) * wv;
        c1 += pixel_a(p1.plane + plane, p1.ih + da, p1.iw + db) * wv;
        c2 += pixel_a(p2.plane + plane, p2.ih + da, p2.iw + db) * wv;
        c3 += pixel_a(p3.plane + plane, p3.ih + da, p3.iw + db) * wv;
        kb += 1u;
        if kb == p.kw {
            kb = 0u;
            ka += 1u;
            if ka == p.kh {
                ka = 0u;
                plane += p.h * p.w;
            }
        }
    }
    var rows = array<vec4<f32>, 4>(c0, c1, c2, c3);
    var px = array<Pixel, 4>(p0, p1, p2, p3);
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(g, t.y + i, t.z + 8u * j, px[i].at, rows[i][j]);
        }
    }
}
