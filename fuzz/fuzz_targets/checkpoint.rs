//! The checkpoint (safetensors) reader on arbitrary bytes: `Ok` with every tensor holding as
//! many values as its shape says, or an error; never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ck) = wgrad::checkpoint::parse(Path::new("fuzz.safetensors"), data) {
        for (shape, values) in ck.tensors.values() {
            assert_eq!(values.len(), shape.iter().product::<usize>());
        }
    }
});
