//! Progress of long work, reported to an observer the caller chooses. Library code that runs for
//! long (a training loop, a table of checks) takes a `&mut dyn Progress` and says what it is
//! doing; whether that becomes a terminal bar, a log line or nothing is the caller's choice.
//! [`Silent`] shows nothing; [`Bar`] (feature `progress`, on by default) draws an indicatif bar
//! on the terminal.
//!
//! ```
//! use wgrad::progress::{Progress, Silent};
//!
//! fn work(progress: &mut dyn Progress) {
//!     progress.start("epoch 1", 3);
//!     for step in 1..=3 {
//!         progress.update(step, &format!("loss {:.2}", 1.0 / step as f32));
//!     }
//!     progress.finish();
//! }
//! work(&mut Silent);
//! ```

/// An observer of long work. Every method has a default that does nothing (or prints, for
/// [`Progress::println`]), so an observer implements only what it shows.
pub trait Progress {
    /// A task of `total` units begins; `label` names it ("epoch 3", "checking").
    fn start(&mut self, label: &str, total: u64) {
        let _ = (label, total);
    }

    /// `done` of the current task's units are finished; `status` is a short line about them
    /// ("loss 0.3124  5200 samples/s"), or empty.
    fn update(&mut self, done: u64, status: &str) {
        let _ = (done, status);
    }

    /// A line of results, printed to stdout without garbling a bar that is drawn.
    fn println(&mut self, line: &str) {
        println!("{line}");
    }

    /// The current task is over.
    fn finish(&mut self) {}
}

/// Shows no progress and prints no lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn println(&mut self, _line: &str) {}
}

/// A terminal progress bar per task (`label ━━━━━━━━━━ done/total status`), drawn on stderr and
/// cleared when the task ends; lines print above it. Nothing is drawn when stderr is not a
/// terminal.
#[cfg(feature = "progress")]
#[derive(Default)]
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

#[cfg(feature = "progress")]
impl Bar {
    /// A bar that appears when the first task starts.
    pub fn new() -> Bar {
        Bar::default()
    }
}

#[cfg(feature = "progress")]
impl Progress for Bar {
    fn start(&mut self, label: &str, total: u64) {
        self.finish();
        let style = indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {msg}")
            .expect("the template is valid");
        let bar = indicatif::ProgressBar::new(total).with_style(style);
        bar.set_prefix(label.to_string());
        self.bar = Some(bar);
    }

    fn update(&mut self, done: u64, status: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(status.to_string());
        }
    }

    fn println(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(feature = "progress")]
impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
