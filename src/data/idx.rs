//! IDX files (the MNIST format), raw or gzipped: a big-endian header — two zero bytes, an element
//! type, the number of dims, one u32 per dim — then the elements. Only unsigned bytes (type 0x08)
//! are read. Sizes are checked against the data actually present before anything large is
//! allocated, so a header claiming 10¹² elements costs nothing.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The contents of an IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    /// Dimensions, outermost first (`[60000, 28, 28]` for MNIST's training images).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// Most elements an IDX file may declare (2³²; MNIST's training images are 4.7·10⁷).
const MAX_ELEMENTS: u64 = 1 << 32;

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// How the bytes handed to [`parse`] were stored (it names the failure accordingly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The IDX bytes themselves.
    Raw,
    /// Decompressed from a gzip stream on the way (a read error is a corrupt stream).
    Gzip,
}

/// Read an IDX file of unsigned bytes; `.gz` content is detected by its magic bytes.
pub fn read_idx(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(io)?;
    let file = BufReader::new(File::open(path).map_err(io)?);
    if n == 2 && magic == [0x1f, 0x8b] {
        parse(path, flate2::read::GzDecoder::new(file), Encoding::Gzip)
    } else {
        parse(path, file, Encoding::Raw)
    }
}

/// Parse IDX bytes from any reader (`path` only names the source in errors).
pub fn parse(path: &Path, mut r: impl Read, encoding: Encoding) -> Result<Idx> {
    let what = |e: std::io::Error| {
        if encoding == Encoding::Gzip {
            bad(path, format!("corrupt gzip stream: {e}"))
        } else {
            bad(path, format!("read failed: {e}"))
        }
    };
    let mut head = [0u8; 4];
    let got = read_up_to(&mut r, &mut head).map_err(what)?;
    if got < 4 {
        return Err(bad(path, format!("truncated header: {got} of 4 bytes")));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(bad(
            path,
            format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
                head[0], head[1], head[2], head[3]
            ),
        ));
    }
    if head[2] != 0x08 {
        return Err(bad(
            path,
            format!(
                "element type 0x{:02x} is not supported (only 0x08, unsigned bytes)",
                head[2]
            ),
        ));
    }
    let rank = head[3] as usize;
    if rank == 0 {
        return Err(bad(path, "header declares no dimensions"));
    }
    let mut raw = vec![0u8; 4 * rank];
    let got = read_up_to(&mut r, &mut raw).map_err(what)?;
    if got < raw.len() {
        return Err(bad(
            path,
            format!("truncated header: {got} of {} dimension bytes", raw.len()),
        ));
    }
    let dims: Vec<usize> = raw
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&c| c <= MAX_ELEMENTS)
        .ok_or_else(|| {
            bad(
                path,
                format!("header dims {dims:?} claim an absurd number of elements"),
            )
        })?;
    // Grow with the data actually read, never to the size the header claims.
    let mut data = Vec::with_capacity(count.min(1 << 20) as usize);
    r.by_ref()
        .take(count)
        .read_to_end(&mut data)
        .map_err(what)?;
    if (data.len() as u64) < count {
        return Err(bad(
            path,
            format!(
                "truncated: header dims {dims:?} need {count} bytes of data, found {}",
                data.len()
            ),
        ));
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut r, &mut extra).map_err(what)? > 0 {
        return Err(bad(
            path,
            format!("trailing bytes after the {count} declared elements"),
        ));
    }
    Ok(Idx { dims, data })
}

/// Fill `buf` as far as the reader allows; the number of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
