//! The IDX reader on arbitrary bytes, raw and as a gzip stream: `Ok` with as many elements as
//! the dims say, or an error; never a panic or an allocation the size a header claims.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    if let Ok(idx) = wgrad::data::parse_idx(path, data, wgrad::data::Encoding::Raw) {
        assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
    }
    if let Ok(idx) = wgrad::data::parse_idx(path, flate2::read::GzDecoder::new(data), wgrad::data::Encoding::Gzip) {
        assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
    }
});
