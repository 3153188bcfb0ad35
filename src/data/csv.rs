//! The UCI optical handwritten digits as distributed in CSV: one digit a line, 64 pixel values
//! (an 8×8 image, row by row, grey levels 0 … 16) and then its label (0 … 9).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Parsed digits: every image's 64 values in [0, 1], one after another, and the labels.
pub(super) struct Digits {
    pub pixels: Vec<f32>,
    pub labels: Vec<f32>,
}

/// Pixels per digit.
const PIXELS: usize = 64;

/// Read a digits CSV file, gzipped or not (detected by its magic bytes).
pub(super) fn read(path: &Path) -> Result<Digits> {
    let io = |source| Error::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .map_err(|e| Error::BadFile {
                path: path.to_path_buf(),
                message: format!("corrupt gzip stream: {e}"),
            })?;
        bytes = text;
    }
    parse(path, &bytes[..])
}

/// Parse digits CSV text (see [`super::parse_digits`]).
pub(super) fn parse(path: &Path, r: impl Read) -> Result<Digits> {
    let bad = |line: usize, message: String| Error::BadLine {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in BufReader::new(r).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| bad(n, format!("unreadable: {e}")))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != PIXELS + 1 {
            return Err(bad(
                n,
                format!(
                    "{} fields, want {} (64 pixels, then the label)",
                    fields.len(),
                    PIXELS + 1
                ),
            ));
        }
        for (k, f) in fields.iter().enumerate() {
            let (what, max) = if k < PIXELS {
                (format!("pixel {}", k + 1), 16)
            } else {
                ("the label".to_string(), 9)
            };
            let v: u32 = f
                .parse()
                .map_err(|_| bad(n, format!("{what} is `{f}`, not an integer")))?;
            if v > max {
                return Err(bad(n, format!("{what} is {v}, outside 0 … {max}")));
            }
            if k < PIXELS {
                inputs.push(v as f32 / 16.0);
            } else {
                labels.push(v as f32);
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            message: "no digits in the file".into(),
        });
    }
    Ok(Digits {
        pixels: inputs,
        labels,
    })
}
