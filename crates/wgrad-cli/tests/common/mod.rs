//! The one way tests find a GPU: `Some(device)` if an adapter exists, `None` (the test skips,
//! saying so) otherwise — unless `WGRAD_REQUIRE_GPU=1`, when a missing adapter fails the test.

#![allow(dead_code)]

use wgrad::Device;

pub fn gpu() -> Option<Device> {
    match Device::gpu() {
        Ok(d) => Some(d),
        Err(e) => {
            if std::env::var("WGRAD_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("WGRAD_REQUIRE_GPU=1 but no GPU adapter is available: {e}");
            }
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}
