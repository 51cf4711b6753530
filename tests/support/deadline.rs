//! A deadline for a test: a wait that never ends or a loop that spins (say, in a mutated
//! build) fails the run with a message instead of hanging it.
//!
//! Shared by the crate's unit tests (`crate::testing`) and the driver tests
//! (`tests/common`, which includes this file).

use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long any one driver test may run. Generous: it catches waits that never end, not
/// slow machines (the slowest test takes about a second natively; Miri is far slower).
pub const TEST_DEADLINE: Duration = if cfg!(miri) {
    Duration::from_secs(3600)
} else {
    Duration::from_secs(60)
};

/// Ends the test process with a message if it is still alive `limit` after
/// [`deadline_of`] was called. Dropping the guard (at the end of the test) cancels it.
pub struct Deadline {
    cancel: Option<mpsc::Sender<()>>,
    watchdog: Option<JoinHandle<()>>,
}

/// Starts a [`Deadline`] of [`TEST_DEADLINE`] for the calling test.
pub fn deadline() -> Deadline {
    deadline_of(TEST_DEADLINE)
}

/// Starts a [`Deadline`] of `limit` for the calling test.
pub fn deadline_of(limit: Duration) -> Deadline {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let (cancel, cancelled) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
            // Straight to stderr: the test harness would swallow eprintln! output.
            let _ = writeln!(
                std::io::stderr(),
                "test {test} did not finish within {limit:?}: a wait without a deadline or \
                 a loop that never ends; failing the run"
            );
            std::process::exit(101);
        }
    });
    Deadline {
        cancel: Some(cancel),
        watchdog: Some(watchdog),
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
    }
}
