//! The op set. Each module holds a family of ops: definitions beside their `Tensor` methods.

pub(crate) mod binary;
mod custom;
pub mod matmul;
mod operators;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod shape;
pub(crate) mod softmax;
pub(crate) mod unary;
