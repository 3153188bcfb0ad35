//! Checks for command-line options, as functions from the option's text to its value or to a
//! one-line reason, so they plug into any parser (clap's `value_parser = positive::<usize>`):
//! a bad value is refused when the options are read, naming the option, before any work starts.
//!
//! ```
//! use wgrad::train::options::{positive, probability};
//! assert_eq!(positive::<usize>("128"), Ok(128));
//! assert!(positive::<usize>("0").is_err());
//! assert!(positive::<f32>("nan").is_err());
//! assert!(probability("1").is_err());
//! ```

use std::path::PathBuf;
use std::str::FromStr;

/// A number at least 1 (counts) or finite and above 0 (rates).
pub fn positive<T>(s: &str) -> Result<T, String>
where
    T: FromStr + PartialOrd + Default + Copy + std::fmt::Display + Finite,
{
    let v: T = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.finite() {
        return Err(format!("{v} is not a finite number"));
    }
    if v <= T::default() {
        return Err(format!("must be more than 0, got {v}"));
    }
    Ok(v)
}

/// A finite number of at least 0 (penalty weights, thresholds).
pub fn non_negative(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("must be a finite number of at least 0, got {v}"));
    }
    Ok(v)
}

/// A probability in [0, 1) (dropout, label flips: 1 would leave nothing).
pub fn probability(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0..1.0).contains(&v) {
        return Err(format!("must be at least 0 and below 1, got {v}"));
    }
    Ok(v)
}

/// A folder that exists (data).
pub fn existing_dir(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if !p.is_dir() {
        return Err(format!("no folder at {}", p.display()));
    }
    Ok(p)
}

/// A folder to write into: created if missing, and checked writable by creating and removing a
/// file in it.
pub fn output_dir(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    std::fs::create_dir_all(&p)
        .map_err(|e| format!("cannot create the folder {}: {e}", p.display()))?;
    let probe = p.join(format!(".wgrad-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("cannot write in the folder {}: {e}", p.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(p)
}

/// Numbers that can be checked for finiteness (integers always are).
pub trait Finite {
    /// Whether the value is finite.
    fn finite(&self) -> bool;
}

macro_rules! finite_int {
    ($($t:ty),*) => {$(impl Finite for $t { fn finite(&self) -> bool { true } })*};
}
finite_int!(usize, u32, u64, i32, i64);

impl Finite for f32 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

impl Finite for f64 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

/// The device a program's `--cpu` flag asks for: the CPU reference when `cpu` is set, otherwise
/// the GPU, falling back to the CPU reference with a warning on stderr when there is none.
/// Prints the device's name.
pub fn device(cpu: bool) -> crate::Device {
    let dev = if cpu {
        crate::Device::cpu()
    } else {
        crate::Device::gpu().unwrap_or_else(|e| {
            eprintln!("warning: {e}\nwarning: running on the CPU reference backend (slow)");
            crate::Device::cpu()
        })
    };
    println!("device: {}", dev.name());
    dev
}

/// Report a bad command line the way the option parsers do, `error: <message>` on stderr, and
/// exit with code 2 (for checks that need more than one option, or a file, to decide).
pub fn exit_usage(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

/// For `--resume`: exit as [`exit_usage`] does unless `<out>/<name>.safetensors` exists, so a
/// run that cannot continue says so before loading anything.
pub fn require_checkpoint(out: &std::path::Path, name: &str) {
    let path = out.join(format!("{name}.safetensors"));
    if !path.exists() {
        exit_usage(&format!(
            "--resume: no checkpoint at {} to continue from",
            path.display()
        ));
    }
}

/// The run's output folder: `given`, or `runs/<name>` (`runs/<name>-quick` for a `--quick` run,
/// so a check never overwrites real work), created and checked writable as [`output_dir`] does
/// (exiting as [`exit_usage`] does if it cannot be).
pub fn out_dir(given: Option<PathBuf>, name: &str, quick: bool) -> PathBuf {
    match given {
        Some(dir) => dir,
        None => {
            let dir = if quick {
                format!("runs/{name}-quick")
            } else {
                format!("runs/{name}")
            };
            output_dir(&dir).unwrap_or_else(|e| exit_usage(&format!("--out: {e}")))
        }
    }
}
