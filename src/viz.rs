//! Pictures: grids of images and line charts (loss curves) as PNG files, drawn with a small
//! built-in 5×7 bitmap font so axes carry numbers without a font dependency.

use std::path::Path;

use crate::error::{Error, Result};

/// An RGB canvas.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize, bg: [u8; 3]) -> Canvas {
        Canvas {
            w,
            h,
            px: bg.iter().copied().cycle().take(w * h * 3).collect(),
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line with Bresenham's algorithm, `thick` pixels wide.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3], thick: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for t in 0..thick {
                self.set(x, y + t, c);
                self.set(x + t, y, c);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let rows = glyph(ch);
            for (r, row) in rows.iter().enumerate() {
                for col in 0..5 {
                    if row & (0x10 >> col) != 0 {
                        self.set(x + k as i64 * 6 + col, y + r as i64, c);
                    }
                }
            }
        }
    }

    fn save(&self, path: &Path) -> Result<()> {
        write_png(path, self.w, self.h, png::ColorType::Rgb, &self.px)
    }
}

fn write_png(path: &Path, w: usize, h: usize, color: png::ColorType, data: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(data).map_err(err)?;
    writer.finish().map_err(err)
}

/// Save `count` grey images of `h`×`w` values in [0, 1] (row-major, one after another) as a
/// grid `cols` wide, each scaled up `zoom` times, with a 1-pixel border between cells.
pub fn save_image_grid(
    path: impl AsRef<Path>,
    images: &[f32],
    h: usize,
    w: usize,
    cols: usize,
    zoom: usize,
) -> Result<()> {
    let count = images.len() / (h * w).max(1);
    let cols = cols.clamp(1, count.max(1));
    let rows = count.div_ceil(cols);
    let (cw, ch) = (w * zoom + 1, h * zoom + 1);
    let (gw, gh) = (cols * cw + 1, rows * ch + 1);
    let mut px = vec![96u8; gw * gh];
    for n in 0..count {
        let (ox, oy) = ((n % cols) * cw + 1, (n / cols) * ch + 1);
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let v = images[n * h * w + (y / zoom) * w + x / zoom];
                px[(oy + y) * gw + ox + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    write_png(path.as_ref(), gw, gh, png::ColorType::Grayscale, &px)
}

/// [`save_image_grid`] with a line of text under each image (`captions[n]` for image `n`; a
/// caption wider than its cell is cut), for predictions and confidences beside the pictures.
/// Images with values outside [0, 1] (a signed perturbation) should be shifted first.
pub fn save_captioned_grid(
    path: impl AsRef<Path>,
    images: &[f32],
    h: usize,
    w: usize,
    cols: usize,
    zoom: usize,
    captions: &[String],
) -> Result<()> {
    let count = images.len() / (h * w).max(1);
    let cols = cols.clamp(1, count.max(1));
    let rows = count.div_ceil(cols);
    let (cw, ch) = (w * zoom + 1, h * zoom + 1 + 10);
    let mut c = Canvas::new(cols * cw + 1, rows * ch + 1, [96, 96, 96]);
    for n in 0..count {
        let (ox, oy) = ((n % cols) * cw + 1, (n / cols) * ch + 1);
        for y in 0..h * zoom {
            for x in 0..w * zoom {
                let v = images[n * h * w + (y / zoom) * w + x / zoom];
                let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                c.set((ox + x) as i64, (oy + y) as i64, [g, g, g]);
            }
        }
        for y in 0..9 {
            for x in 0..w * zoom {
                c.set((ox + x) as i64, (oy + h * zoom + y) as i64, [255, 255, 255]);
            }
        }
        if let Some(text) = captions.get(n) {
            let fits: String = text
                .chars()
                .take((w * zoom).saturating_sub(1) / 6)
                .collect();
            c.text(ox as i64 + 1, (oy + h * zoom + 1) as i64, &fits, [0, 0, 0]);
        }
    }
    c.save(path.as_ref())
}

const COLORS: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

/// How a chart's y axis maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Values as they are.
    Linear,
    /// log10 of positive values (losses that fall over orders of magnitude).
    Log,
}

/// Save a line chart of one or more series with axes, tick labels and a legend. Point `i` of a
/// series sits at x = `i · x_step`; the y axis is `scale`d.
pub fn save_line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    x_step: f32,
    series: &[(&str, &[f32])],
    scale: Scale,
) -> Result<()> {
    let (w, h) = (720usize, 440usize);
    let (left, right, top, bottom) = (70i64, 20i64, 30i64, 46i64);
    let mut c = Canvas::new(w, h, [255, 255, 255]);
    let tf = |v: f32| {
        if scale == Scale::Log {
            (v.max(1e-30) as f64).log10()
        } else {
            v as f64
        }
    };
    let finite: Vec<f64> = series
        .iter()
        .flat_map(|(_, ys)| ys.iter().map(|&v| tf(v)))
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * 0.05;
    (lo, hi) = (lo - pad, hi + pad);
    let n = series
        .iter()
        .map(|(_, ys)| ys.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let (pw, ph) = (w as i64 - left - right, h as i64 - top - bottom);
    let px = |i: usize| left + (i as f64 / (n - 1) as f64 * pw as f64).round() as i64;
    let py = |v: f64| top + ph - ((v - lo) / (hi - lo) * ph as f64).round() as i64;
    let axis = [60, 60, 60];
    let grid = [225, 225, 225];
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let y = py(v);
        c.line((left, y), (left + pw, y), grid, 1);
        let label = if scale == Scale::Log {
            format!("{:.3}", 10f64.powf(v))
        } else {
            short(v)
        };
        c.text(left - 6 - 6 * label.len() as i64, y - 3, &label, axis);
    }
    for k in 0..=4 {
        let i = (n - 1) * k / 4;
        let x = px(i);
        c.line((x, top + ph), (x, top + ph + 4), axis, 1);
        let label = short_int(i as f64 * x_step as f64);
        c.text(x - 3 * label.len() as i64, top + ph + 9, &label, axis);
    }
    c.line((left, top), (left, top + ph), axis, 1);
    c.line((left, top + ph), (left + pw, top + ph), axis, 1);
    c.text(left, 10, title, [0, 0, 0]);
    c.text(
        left + pw / 2 - 3 * x_label.len() as i64,
        h as i64 - 16,
        x_label,
        axis,
    );
    for (s, (name, ys)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let pts: Vec<(i64, i64)> = ys
            .iter()
            .enumerate()
            .filter(|(_, v)| tf(**v).is_finite())
            .map(|(i, &v)| (px(i), py(tf(v))))
            .collect();
        for pair in pts.windows(2) {
            c.line(pair[0], pair[1], color, 2);
        }
        if pts.len() == 1 {
            c.line(pts[0], pts[0], color, 3);
        }
        let ly = top + 8 + 12 * s as i64;
        let lx = left + pw - 8 - 6 * name.len() as i64 - 18;
        c.line((lx, ly + 3), (lx + 12, ly + 3), color, 2);
        c.text(lx + 16, ly, name, [0, 0, 0]);
    }
    c.save(path.as_ref())
}

/// An x tick label: a whole number where the tick falls on one (epochs, steps), otherwise up to
/// three decimals (ε = 0.05, 0.1, …).
fn short_int(v: f64) -> String {
    if v.abs() >= 1e5 {
        format!("{v:.1e}")
    } else if (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round())
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// A compact number for tick labels.
fn short(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Rows of a 5×7 glyph, bit 4 = leftmost pixel. Unknown characters draw as a box.
fn glyph(c: char) -> [u8; 7] {
    const FONT: &[(char, [u8; 7])] = &[
        (' ', [0, 0, 0, 0, 0, 0, 0]),
        ('0', [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E]),
        ('1', [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E]),
        ('2', [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F]),
        ('3', [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E]),
        ('4', [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02]),
        ('5', [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E]),
        ('6', [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E]),
        ('7', [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08]),
        ('8', [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E]),
        ('9', [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C]),
        ('.', [0, 0, 0, 0, 0, 0x0C, 0x0C]),
        (',', [0, 0, 0, 0, 0x0C, 0x04, 0x08]),
        ('-', [0, 0, 0, 0x1F, 0, 0, 0]),
        ('+', [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0]),
        (':', [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0]),
        ('%', [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03]),
        ('/', [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0]),
        ('(', [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02]),
        (')', [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08]),
        ('=', [0, 0, 0x1F, 0, 0x1F, 0, 0]),
        ('_', [0, 0, 0, 0, 0, 0, 0x1F]),
        ('a', [0, 0, 0x0E, 0x01, 0x0F, 0x11, 0x0F]),
        ('b', [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E]),
        ('c', [0, 0, 0x0E, 0x10, 0x10, 0x11, 0x0E]),
        ('d', [0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F]),
        ('e', [0, 0, 0x0E, 0x11, 0x1F, 0x10, 0x0E]),
        ('f', [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08]),
        ('g', [0, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E]),
        ('h', [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11]),
        ('i', [0x04, 0, 0x0C, 0x04, 0x04, 0x04, 0x0E]),
        ('j', [0x02, 0, 0x06, 0x02, 0x02, 0x12, 0x0C]),
        ('k', [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12]),
        ('l', [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E]),
        ('m', [0, 0, 0x1A, 0x15, 0x15, 0x11, 0x11]),
        ('n', [0, 0, 0x16, 0x19, 0x11, 0x11, 0x11]),
        ('o', [0, 0, 0x0E, 0x11, 0x11, 0x11, 0x0E]),
        ('p', [0, 0, 0x1E, 0x11, 0x1E, 0x10, 0x10]),
        ('q', [0, 0, 0x0D, 0x13, 0x0F, 0x01, 0x01]),
        ('r', [0, 0, 0x16, 0x19, 0x10, 0x10, 0x10]),
        ('s', [0, 0, 0x0E, 0x10, 0x0E, 0x01, 0x1E]),
        ('t', [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06]),
        ('u', [0, 0, 0x11, 0x11, 0x11, 0x13, 0x0D]),
        ('v', [0, 0, 0x11, 0x11, 0x11, 0x0A, 0x04]),
        ('w', [0, 0, 0x11, 0x11, 0x15, 0x15, 0x0A]),
        ('x', [0, 0, 0x11, 0x0A, 0x04, 0x0A, 0x11]),
        ('y', [0, 0, 0x11, 0x11, 0x0F, 0x01, 0x0E]),
        ('z', [0, 0, 0x1F, 0x02, 0x04, 0x08, 0x1F]),
    ];
    let c = c.to_ascii_lowercase();
    FONT.iter()
        .find(|(k, _)| *k == c)
        .map_or([0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F], |(_, g)| *g)
}

#[cfg(test)]
mod tests {
    #[test]
    fn x_ticks_are_whole_where_they_can_be_and_decimals_where_not() {
        let tick = |i: usize, step: f32| super::short_int(i as f64 * step as f64);
        assert_eq!(
            [tick(0, 0.05), tick(3, 0.05), tick(2, 0.05), tick(6, 0.05)],
            ["0", "0.15", "0.1", "0.3"]
        );
        assert_eq!([tick(4, 1.0), tick(12, 25.0)], ["4", "300"]);
    }
}
