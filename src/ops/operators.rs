//! `std::ops` for tensors: `+ - * /` between tensors (broadcasting, as `add`, `sub`, `mul`,
//! `div`) and with `f32` scalars on either side, and unary `-`. Every form takes tensors owned or
//! borrowed, so `&p - &g * 0.5` and `p - g * 0.5` both read as written. A scalar operand is
//! folded into one `affine` kernel (a·x + b); `x / s` is `x · (1/s)`, and `s / x` is `s · (1/x)`.
//! Shape misuse panics at the line that wrote the operator.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::Tensor;

/// `impl $trait<rhs> for lhs` for every owned/borrowed pairing of two tensors.
macro_rules! tensor_tensor {
    ($trait:ident, $method:ident) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(self, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(self, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(&self, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&self, &rhs)
            }
        }
    };
}

tensor_tensor!(Add, add);
tensor_tensor!(Sub, sub);
tensor_tensor!(Mul, mul);
tensor_tensor!(Div, div);

/// `tensor op scalar` and `scalar op tensor`, each one affine map of the tensor: `$right` with
/// the tensor `$x` and the scalar `$s` in scope, and `$left` likewise. The expressions are
/// written into each `#[track_caller]` method (not called as closures, which cannot pass the
/// caller's line on), so the recorded op names the line that wrote the operator.
macro_rules! tensor_scalar {
    ($trait:ident, $method:ident, |$x:ident, $s:ident| $right:expr, |$s2:ident, $x2:ident| $left:expr) => {
        impl $trait<f32> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, $s: f32) -> Tensor {
                let $x: &Tensor = self;
                $right
            }
        }
        impl $trait<f32> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, $s: f32) -> Tensor {
                let $x: &Tensor = &self;
                $right
            }
        }
        impl $trait<&Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, $x2: &Tensor) -> Tensor {
                let $s2: f32 = self;
                $left
            }
        }
        impl $trait<Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, $x2: Tensor) -> Tensor {
                let ($s2, $x2): (f32, &Tensor) = (self, &$x2);
                $left
            }
        }
    };
}

tensor_scalar!(Add, add, |x, s| x.affine(1.0, s), |s, x| x.affine(1.0, s));
tensor_scalar!(Sub, sub, |x, s| x.affine(1.0, -s), |s, x| x.affine(-1.0, s));
tensor_scalar!(Mul, mul, |x, s| x.affine(s, 0.0), |s, x| x.affine(s, 0.0));
tensor_scalar!(Div, div, |x, s| x.affine(1.0 / s, 0.0), |s, x| x
    .recip()
    .affine(s, 0.0));

impl Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
