//! The timeout on every collective: a thread that ends the process when one waits too long.
//!
//! Plain OpenMPI and MPICH have no timeout of their own: a collective whose peer stopped taking
//! part (it returned early, or hangs) waits forever. While a [`Guard`] is alive the watchdog
//! thread checks the clock; past the timeout it prints what was waited on and exits with
//! [`TIMEOUT_EXIT`], and `mpirun` then ends the other ranks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The exit status of a rank whose collective timed out.
pub const TIMEOUT_EXIT: i32 = 70;

/// The collective in progress, if any, and since when.
type Waiting = Arc<Mutex<Option<(&'static str, Instant)>>>;

pub(crate) struct Watchdog {
    rank: usize,
    timeout: Duration,
    waiting: Waiting,
    started: std::sync::OnceLock<()>,
}

/// Marks a collective as in progress until dropped.
pub(crate) struct Guard<'a> {
    waiting: &'a Waiting,
}

impl Watchdog {
    pub(crate) fn new(rank: usize, timeout: Duration) -> Watchdog {
        Watchdog {
            rank,
            timeout,
            waiting: Arc::new(Mutex::new(None)),
            started: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Watch the collective `what` until the guard is dropped.
    pub(crate) fn guard(&self, what: &'static str) -> Guard<'_> {
        self.started.get_or_init(|| self.spawn());
        *lock(&self.waiting) = Some((what, Instant::now()));
        Guard {
            waiting: &self.waiting,
        }
    }

    fn spawn(&self) {
        let (rank, timeout, waiting) = (self.rank, self.timeout, self.waiting.clone());
        let tick = (timeout / 20).clamp(Duration::from_millis(10), Duration::from_millis(500));
        std::thread::Builder::new()
            .name("wgrad-dist-watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(tick);
                    if let Some((what, since)) = *lock(&waiting)
                        && since.elapsed() > timeout
                    {
                        eprintln!(
                            "error: rank {rank}: `{what}` waited more than {} s for the other \
                             ranks (one died or stopped taking part); exiting with status {} \
                             (WGRAD_DIST_TIMEOUT_SECS sets the limit)",
                            timeout.as_secs_f64(),
                            TIMEOUT_EXIT
                        );
                        std::process::exit(TIMEOUT_EXIT);
                    }
                }
            })
            .expect("the watchdog thread starts");
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        *lock(self.waiting) = None;
    }
}

fn lock(w: &Waiting) -> std::sync::MutexGuard<'_, Option<(&'static str, Instant)>> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}
