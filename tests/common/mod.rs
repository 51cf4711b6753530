//! Helpers shared by the driver tests: a deadline for every test that waits on the model,
//! and loops over the packet path that end with a message instead of spinning.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ixy::{IxyDevice, Packet};

/// How long any one test may run. Generous: it catches waits that never end, not slow
/// machines (the slowest test takes about a second natively; Miri is far slower).
pub const TEST_DEADLINE: Duration = if cfg!(miri) {
    Duration::from_secs(3600)
} else {
    Duration::from_secs(60)
};

/// Rounds a packet-path loop gets to finish before the test fails.
pub const MAX_ROUNDS: usize = 100_000;

/// Ends the test process with a message if it is still alive `limit` after
/// [`deadline`] was called: a driver or test loop that never ends fails the run instead of
/// hanging it. Dropping the guard (at the end of the test) cancels it.
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

/// Sends all of `out` on `queue`, calling `tx_batch` until the queue took everything;
/// fails after [`MAX_ROUNDS`] calls that left packets behind.
pub fn send_all<D: IxyDevice + ?Sized>(dev: &mut D, queue: u16, out: &mut VecDeque<Packet>) {
    for _ in 0..MAX_ROUNDS {
        if out.is_empty() {
            return;
        }
        dev.tx_batch(queue, out);
    }
    panic!(
        "tx queue {queue} still had {} packets after {MAX_ROUNDS} tx_batch calls",
        out.len()
    );
}

/// Receives from `queue` in batches of `batch` until a call returns nothing; returns how
/// many were received. Fails if `rx_batch` claims more than `batch` at once or still
/// returns packets after [`MAX_ROUNDS`] calls.
pub fn drain<D: IxyDevice + ?Sized>(
    dev: &mut D,
    queue: u16,
    got: &mut VecDeque<Packet>,
    batch: usize,
) -> usize {
    let mut total = 0;
    for _ in 0..MAX_ROUNDS {
        let before = got.len();
        let n = dev.rx_batch(queue, got, batch);
        assert!(
            n <= batch && got.len() == before + n,
            "rx_batch returned {n} for a batch of {batch} and added {}",
            got.len() - before
        );
        if n == 0 {
            return total;
        }
        total += n;
    }
    panic!("rx queue {queue} still delivered packets after {MAX_ROUNDS} rx_batch calls");
}

/// Receives from `queue` until `want` packets arrived in `got`; fails after [`MAX_ROUNDS`]
/// calls, naming how many came.
pub fn receive<D: IxyDevice + ?Sized>(
    dev: &mut D,
    queue: u16,
    got: &mut VecDeque<Packet>,
    want: usize,
) {
    let start = got.len();
    for _ in 0..MAX_ROUNDS {
        if got.len() - start >= want {
            assert_eq!(got.len() - start, want, "more packets than sent");
            return;
        }
        dev.rx_batch(queue, got, 64);
    }
    panic!(
        "rx queue {queue}: {} of {want} packets after {MAX_ROUNDS} rx_batch calls",
        got.len() - start
    );
}

/// Runs `f` and returns what it logged at warning level or above on this thread, as
/// `"LEVEL message"` lines (the first call installs the capturing logger).
pub fn warnings<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    static LOGGER: Capture = Capture;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    CAPTURED.with(|c| c.borrow_mut().clear());
    let result = f();
    (result, CAPTURED.with(|c| c.take()))
}

thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {}", record.level(), record.args());
            CAPTURED.with(|c| c.borrow_mut().push(line));
        }
    }

    fn flush(&self) {}
}
