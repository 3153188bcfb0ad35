//! Pooling and resampling over the last two dims of `[n, c, h, w]`, as PyTorch's: max pooling
//! (its own kernels, forward and backward), average pooling (a depthwise convolution with a
//! constant kernel, padding counted as zeros like PyTorch's default), global average pooling
//! and nearest-neighbour upsampling (views and reductions).

use crate::Tensor;
use crate::op::{BackwardCtx, Input, Kernel, Layout, Op, Shader, shader};
use crate::ops::conv::Conv;

static MAX: Shader = shader!(
    "pool/max_pool2d",
    "pool/_max_pool2d.wgsl",
    "pool/max_pool2d.wgsl"
);
static MAX_TILED_BACKWARD: Shader = shader!(
    "pool/max_pool2d_tiled_backward",
    "pool/_max_pool2d.wgsl",
    "pool/max_pool2d_tiled_backward.wgsl"
);
static MAX_BACKWARD: Shader = shader!(
    "pool/max_pool2d_backward",
    "pool/_max_pool2d.wgsl",
    "pool/max_pool2d_backward.wgsl"
);

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
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

/// Max pooling of `planes` planes `[h, w]` into `[oh, ow]`.
#[derive(Clone, Copy)]
struct Pool {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Pool {
    /// Where window (i, j)'s maximum is in `plane` (y·w + x): the first largest value in
    /// row-major order, a NaN counting as larger than anything.
    fn argmax(&self, plane: &[f64], i: usize, j: usize) -> usize {
        let (y0, x0) = (i * self.stride[0], j * self.stride[1]);
        let rows =
            y0.saturating_sub(self.padding[0])..(y0 + self.kernel[0] - self.padding[0]).min(self.h);
        let cols =
            x0.saturating_sub(self.padding[1])..(x0 + self.kernel[1] - self.padding[1]).min(self.w);
        let mut best = rows.start * self.w + cols.start;
        for y in rows {
            for x in cols.clone() {
                let (v, b) = (plane[y * self.w + x], plane[best]);
                if v > b || (v.is_nan() && !b.is_nan()) {
                    best = y * self.w + x;
                }
            }
        }
        best
    }

    fn params(&self) -> Params {
        let u = |v: usize| u32::try_from(v).expect("pooling sizes fit u32");
        Params {
            planes: u(self.planes),
            h: u(self.h),
            w: u(self.w),
            oh: u(self.oh),
            ow: u(self.ow),
            kh: u(self.kernel[0]),
            kw: u(self.kernel[1]),
            sh: u(self.stride[0]),
            sw: u(self.stride[1]),
            ph: u(self.padding[0]),
            pw: u(self.padding[1]),
            _pad: 0,
        }
    }
}

/// y = max_pool2d(x): (x) → y.
struct MaxPool(Pool);
/// dx of max pooling: (x, dy) → dx.
struct MaxPoolBackward(Pool);

impl Op for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let p = &self.0;
        let (per_in, per_out) = (p.h * p.w, p.oh * p.ow);
        for k in 0..p.planes {
            let plane = &ins[0].values[k * per_in..(k + 1) * per_in];
            for s in 0..per_out {
                outs[0][k * per_out + s] = plane[p.argmax(plane, s / p.ow, s % p.ow)];
            }
        }
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        let p = &self.0;
        Kernel::per_element(&MAX, &p.params(), p.planes * p.oh * p.ow)
    }
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let x = &ctx.inputs[0];
        let op = MaxPoolBackward(self.0);
        vec![Some(Tensor::record(op, &[x, ctx.grad], x.shape().to_vec()))]
    }
}

impl Op for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "max_pool2d_backward"
    }
    fn cpu(&self, ins: &[Input], outs: &mut [&mut [f64]]) {
        let p = &self.0;
        let (per_in, per_out) = (p.h * p.w, p.oh * p.ow);
        outs[0].fill(0.0);
        for k in 0..p.planes {
            let plane = &ins[0].values[k * per_in..(k + 1) * per_in];
            for s in 0..per_out {
                let at = p.argmax(plane, s / p.ow, s % p.ow);
                outs[0][k * per_in + at] += ins[1].values[k * per_out + s];
            }
        }
    }
    fn kernel(&self, _: &[&Layout], _: &Layout) -> Kernel {
        let p = &self.0;
        // Windows that tile the plane (PyTorch's default stride): one pass per input row.
        if p.stride == p.kernel && p.padding == [0, 0] {
            Kernel::per_element(&MAX_TILED_BACKWARD, &p.params(), p.planes * p.h)
        } else {
            Kernel::per_element(&MAX_BACKWARD, &p.params(), p.planes * p.h * p.w)
        }
    }
}

/// The shape checks and output size of a pooling over `[n, c, h, w]`.
#[track_caller]
fn pool_geom(
    name: &str,
    x: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Pool {
    assert!(
        x.len() == 4,
        "{name}: input {x:?} must be rank 4 ([n, c, h, w])"
    );
    assert!(
        kernel.iter().chain(&stride).all(|&v| v >= 1),
        "{name}: kernel {kernel:?} and stride {stride:?} must be at least 1"
    );
    assert!(
        padding[0] * 2 <= kernel[0] && padding[1] * 2 <= kernel[1],
        "{name}: padding {padding:?} must be at most half the kernel {kernel:?}"
    );
    assert!(
        x[3] * (kernel[0] + 1) <= crate::op::MAX_LOOP,
        "{name}: rows of {} values with a kernel of {kernel:?} need kernel loops longer than {}",
        x[3],
        crate::op::MAX_LOOP
    );
    let len = |d: usize| {
        (x[2 + d] + 2 * padding[d])
            .checked_sub(kernel[d])
            .map(|v| v / stride[d] + 1)
    };
    let (Some(oh), Some(ow)) = (len(0), len(1)) else {
        panic!(
            "{name}: kernel {kernel:?} is larger than the padded input {:?} (padding {padding:?})",
            &x[2..]
        )
    };
    Pool {
        planes: x[0] * x[1],
        h: x[2],
        w: x[3],
        oh,
        ow,
        kernel,
        stride,
        padding,
    }
}

impl Tensor {
    /// Max pooling over `[n, c, h, w]` (PyTorch's `max_pool2d`, `ceil_mode` off): windows
    /// `kernel` moved by `stride`, the input padded by `padding` (at most half the kernel) with
    /// −∞. The gradient goes to each window's first largest value.
    #[track_caller]
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Tensor {
        let p = pool_geom(
            "max_pool2d",
            self.shape(),
            [kernel; 2],
            [stride; 2],
            [padding; 2],
        );
        let shape = vec![self.shape()[0], self.shape()[1], p.oh, p.ow];
        Tensor::record(MaxPool(p), &[self], shape)
    }

    /// Average pooling over `[n, c, h, w]` (PyTorch's `avg_pool2d` with its defaults: zero
    /// padding counted in the average, `ceil_mode` off): a depthwise convolution with a constant
    /// kernel 1/(k·k).
    #[track_caller]
    pub fn avg_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Tensor {
        let p = pool_geom(
            "avg_pool2d",
            self.shape(),
            [kernel; 2],
            [stride; 2],
            [padding; 2],
        );
        let c = self.shape()[1];
        let w = Tensor::full(
            self.device(),
            &[c, 1, kernel, kernel],
            1.0 / (kernel * kernel) as f32,
        );
        let conv = Conv::default()
            .stride(stride)
            .padding(padding)
            .groups(c.max(1));
        let y = self.conv2d(&w, None, conv);
        debug_assert_eq!(&y.shape()[2..], [p.oh, p.ow]);
        y
    }

    /// Global average pooling `[n, c, h, w] → [n, c, 1, 1]` (PyTorch's
    /// `adaptive_avg_pool2d(x, 1)`).
    #[track_caller]
    pub fn global_avg_pool2d(&self) -> Tensor {
        let s = self.shape();
        assert!(
            s.len() == 4,
            "global_avg_pool2d: input {s:?} must be rank 4 ([n, c, h, w])"
        );
        self.reshape(&[s[0], s[1], s[2] * s[3]])
            .mean(2)
            .reshape(&[s[0], s[1], 1, 1])
    }

    /// Nearest-neighbour upsampling of `[n, c, h, w]` by an integer `scale`:
    /// `[n, c, h·scale, w·scale]`, each value repeated in a scale × scale block (PyTorch's
    /// `upsample_nearest2d` with an integer scale factor).
    #[track_caller]
    pub fn upsample_nearest2d(&self, scale: usize) -> Tensor {
        let s = self.shape();
        assert!(
            s.len() == 4 && scale >= 1,
            "upsample_nearest2d: input {s:?} must be rank 4 ([n, c, h, w]) and scale {scale} at \
             least 1"
        );
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        self.reshape(&[n, c, h, 1, w, 1])
            .broadcast_to(&[n, c, h, scale, w, scale])
            .reshape(&[n, c, h * scale, w * scale])
    }
}
