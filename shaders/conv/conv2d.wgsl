// conv/conv2d.wgsl — y = conv2d(x, weight) + bias (joined with conv/_common.wgsl): a = x,
// b = the weight laid out [groups, cg·kh·kw, og] (columns contiguous). Rows are output pixels
// (n, i, j), columns the group's output channels, terms (c', a, b) in the weight's order.

// The 8 rows of a block: the top-left input position of each output pixel's window, and the
// first input plane of its image's group.
struct Rows {
    ih: array<i32, 8>,
    iw: array<i32, 8>,
    plane: array<u32, 8>,
}

fn rows_of(g: u32, row0: u32) -> Rows {
    var r: Rows;
    let hw = p.oh * p.ow;
    for (var i = 0u; i < 8u; i++) {
        let e = min(row0 + i, p.rows - 1u);
        let s = e % hw;
        r.ih[i] = i32((s / p.ow) * p.sh) - i32(p.ph);
        r.iw[i] = i32((s % p.ow) * p.sw) - i32(p.pw);
        r.plane[i] = ((e / hw) * p.c + g * p.cg) * p.h * p.w;
    }
    return r;
}

fn store(g: u32, row: u32, col: u32, v: f32) {
    if row < p.rows && col < p.cols {
        let hw = p.oh * p.ow;
        let oc = g * p.og + col;
        var y = v;
        if p.has_bias != 0u {
            y += bias[oc];
        }
        out[((row / hw) * p.o + oc) * hw + row % hw] = y;
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
    // The term's channel plane offset and kernel tap, stepped without division.
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
            pixel_a(r.plane[0] + plane, r.ih[0] + da, r.iw[0] + db),
            pixel_a(r.plane[1] + plane, r.ih[1] + da, r.iw[1] + db),
            pixel_a(r.plane[2] + plane, r.ih[2] + da, r.iw[2] + db),
            pixel_a(r.plane[3] + plane, r.ih[3] + da, r.iw[3] + db),
        );
        let a1 = vec4<f32>(
            pixel_a(r.plane[4] + plane, r.ih[4] + da, r.iw[4] + db),
            pixel_a(r.plane[5] + plane, r.ih[5] + da, r.iw[5] + db),
            pixel_a(r.plane[6] + plane, r.ih[6] + da, r.iw[6] + db),
            pixel_a(r.plane[7] + plane, r.ih[7] + da, r.iw[7] + db),
        );
        acc = outer_rows8(acc, a0, a1, b0, b1);
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
    for (var i = 0u; i < 8u; i++) {
        var v = block_row(acc, i);
        for (var j = 0u; j < 8u; j++) {
            store(g, t.y + i, t.z + 8u * j, v[j]);
        }
    }
}
