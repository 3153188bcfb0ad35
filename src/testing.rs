//! What the unit tests share (the integration tests have `tests/common`).

use crate::Device;

/// The adapter for a GPU test: `None` (the test returns) if there is none, unless
/// `WGRAD_REQUIRE_GPU=1`, when a missing adapter fails the test.
pub(crate) fn gpu() -> Option<Device> {
    match Device::gpu() {
        Ok(d) => Some(d),
        Err(e) if std::env::var("WGRAD_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("WGRAD_REQUIRE_GPU=1 but no GPU adapter is available: {e}")
        }
        Err(_) => None,
    }
}

/// The index and size of the largest error.
pub(crate) fn worst(errors: impl Iterator<Item = f32>) -> (usize, f32) {
    errors
        .enumerate()
        .fold((0, 0.0), |a, (i, e)| if e > a.1 { (i, e) } else { a })
}
