//! Convolution and pooling layers over `[n, c, h, w]`, with PyTorch's parameter names and
//! default initialisation, so their checkpoints load into `torch.nn.Conv2d` and friends.

use crate::nn::{Init, Module, Params};
use crate::{Conv, Device, Tensor};

/// A 2-D convolution layer (PyTorch's `Conv2d`): weight `[out, in/groups, k, k]` and bias
/// `[out]`, both drawn as PyTorch draws them (U(−1/√fan_in, 1/√fan_in), fan_in = in/groups·k²).
///
/// ```
/// use wgrad::nn::{Module, conv::Conv2d};
/// let dev = wgrad::Device::cpu();
/// let conv = Conv2d::new(&dev, 1, 8, 3).padding(1);
/// let y = conv.forward(&wgrad::Tensor::zeros(&dev, &[2, 1, 28, 28]));
/// assert_eq!(y.shape(), &[2, 8, 28, 28]);
/// ```
pub struct Conv2d {
    /// `[out, in/groups, kh, kw]`.
    pub weight: Tensor,
    /// `[out]`, or none after `.bias(false)`.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation and groups.
    pub conv: Conv,
}

impl Conv2d {
    /// `inputs` to `outputs` channels with a `kernel` × `kernel` window, stride 1, no padding.
    #[track_caller]
    pub fn new(device: &Device, inputs: usize, outputs: usize, kernel: usize) -> Conv2d {
        Conv2d::with(device, inputs, outputs, kernel, Conv::default())
    }

    /// As [`Conv2d::new`] with the geometry `conv` (groups included, which sets the weight's
    /// shape).
    #[track_caller]
    pub fn with(
        device: &Device,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        conv: Conv,
    ) -> Conv2d {
        let g = conv.groups;
        assert!(
            inputs > 0 && outputs > 0 && kernel > 0 && g > 0 && inputs % g == 0 && outputs % g == 0,
            "Conv2d: {inputs} input and {outputs} output channels, kernel {kernel} and {g} \
             group(s) do not fit (all ≥ 1, channels divisible by groups)"
        );
        let fan_in = inputs / g * kernel * kernel;
        let init = Init::TorchDefault;
        Conv2d {
            weight: init.param(
                device,
                &[outputs, inputs / g, kernel, kernel],
                fan_in,
                outputs,
            ),
            bias: Some(init.param(device, &[outputs], fan_in, outputs)),
            conv,
        }
    }

    /// Stride in both dimensions.
    pub fn stride(mut self, s: usize) -> Conv2d {
        self.conv = self.conv.stride(s);
        self
    }

    /// Zero padding on every side.
    pub fn padding(mut self, p: usize) -> Conv2d {
        self.conv = self.conv.padding(p);
        self
    }

    /// Keep the bias (`true`, the default) or drop it (`false`; before a batch norm).
    pub fn bias(mut self, on: bool) -> Conv2d {
        if !on {
            self.bias = None;
        }
        self
    }
}

fn weight_and_bias(weight: &Tensor, bias: &Option<Tensor>) -> Params {
    let mut p = vec![("weight".to_string(), weight.clone())];
    if let Some(b) = bias {
        p.push(("bias".to_string(), b.clone()));
    }
    p
}

impl Module for Conv2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, self.bias.as_ref(), self.conv)
    }
    fn params(&self) -> Params {
        weight_and_bias(&self.weight, &self.bias)
    }
}

/// A transposed 2-D convolution layer (PyTorch's `ConvTranspose2d`): weight
/// `[in, out/groups, k, k]` and bias `[out]`, drawn as PyTorch draws them (fan_in =
/// out/groups·k², the weight's second dimension times the window, as PyTorch computes it).
pub struct ConvTranspose2d {
    /// `[in, out/groups, kh, kw]`.
    pub weight: Tensor,
    /// `[out]`, or none after `.bias(false)`.
    pub bias: Option<Tensor>,
    /// Stride, padding, output padding, dilation and groups.
    pub conv: Conv,
}

impl ConvTranspose2d {
    /// `inputs` to `outputs` channels with a `kernel` × `kernel` window and the geometry `conv`
    /// (`Conv::default().stride(2).padding(1).output_padding(1)` doubles the size with k = 3).
    #[track_caller]
    pub fn new(
        device: &Device,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        conv: Conv,
    ) -> ConvTranspose2d {
        let g = conv.groups;
        assert!(
            inputs > 0 && outputs > 0 && kernel > 0 && g > 0 && inputs % g == 0 && outputs % g == 0,
            "ConvTranspose2d: {inputs} input and {outputs} output channels, kernel {kernel} and \
             {g} group(s) do not fit (all ≥ 1, channels divisible by groups)"
        );
        let fan_in = outputs / g * kernel * kernel;
        let init = Init::TorchDefault;
        ConvTranspose2d {
            weight: init.param(
                device,
                &[inputs, outputs / g, kernel, kernel],
                fan_in,
                inputs,
            ),
            bias: Some(init.param(device, &[outputs], fan_in, inputs)),
            conv,
        }
    }

    /// Keep the bias (`true`, the default) or drop it (`false`).
    pub fn bias(mut self, on: bool) -> ConvTranspose2d {
        if !on {
            self.bias = None;
        }
        self
    }
}

impl Module for ConvTranspose2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv_transpose2d(&self.weight, self.bias.as_ref(), self.conv)
    }
    fn params(&self) -> Params {
        weight_and_bias(&self.weight, &self.bias)
    }
}

/// Max pooling (PyTorch's `MaxPool2d`; the stride defaults to the kernel size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// −∞ padding on every side (at most half the kernel).
    pub padding: usize,
}

impl MaxPool2d {
    /// Windows of `kernel` × `kernel`, moved by `kernel`, no padding.
    pub fn new(kernel: usize) -> MaxPool2d {
        MaxPool2d {
            kernel,
            stride: kernel,
            padding: 0,
        }
    }
}

impl Module for MaxPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.max_pool2d(self.kernel, self.stride, self.padding)
    }
}

/// Average pooling (PyTorch's `AvgPool2d` with its defaults; the stride defaults to the kernel
/// size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zero padding on every side, counted in the average (at most half the kernel).
    pub padding: usize,
}

impl AvgPool2d {
    /// Windows of `kernel` × `kernel`, moved by `kernel`, no padding.
    pub fn new(kernel: usize) -> AvgPool2d {
        AvgPool2d {
            kernel,
            stride: kernel,
            padding: 0,
        }
    }
}

impl Module for AvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x.avg_pool2d(self.kernel, self.stride, self.padding)
    }
}

/// Flatten every dimension after the first: `[n, …] → [n, ∏ …]` (PyTorch's `Flatten`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl Module for Flatten {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        assert!(x.rank() >= 1, "Flatten: needs rank ≥ 1, got a scalar");
        x.flatten_from(1)
    }
}

/// Give every sample a shape: `[n, ∏ shape] → [n, shape…]` (PyTorch's `Unflatten(1, shape)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unflatten(pub Vec<usize>);

impl Module for Unflatten {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let want: usize = self.0.iter().product();
        assert!(
            x.rank() >= 1 && x.numel() == x.shape()[0] * want,
            "Unflatten: input {:?} does not hold samples of shape {:?}",
            x.shape(),
            self.0
        );
        let mut shape = vec![x.shape()[0]];
        shape.extend(&self.0);
        x.reshape(&shape)
    }
}
