//! Receive interrupts for any driver: one eventfd per queue, signalled by the device's
//! MSI-X (or MSI) vector through VFIO, waited on with epoll.
//!
//! The semantics are those of the original ixy's `interrupt_timeout`: a queue is polled
//! while traffic flows (no system call on the busy path); only after
//! [`IDLE_POLLS_BEFORE_SLEEP`] `rx_batch` calls in a row returned nothing does the driver
//! arm the queue's interrupt and sleep until a packet arrives or the timeout passes.
//!
//! # Using it from a driver
//!
//! ```text
//! // setup, once per receive queue i:
//! let intr = QueueInterrupt::new(cfg.interrupt_timeout_ms)?;
//! // after creating all of them: vector i -> eventfd of queue i
//! pci.enable_msix(&[intr0.eventfd(), intr1.eventfd(), ...])?;   // VFIO_DEVICE_SET_IRQS
//! // program the device so queue i raises vector i (ixgbe: IVAR, EIMS, GPIE, EITR;
//! // virtio: queue_msix_vector)
//!
//! // rx_batch(queue i):
//! let n = poll_ring(...);
//! if intr.should_sleep(n) {          // plain arithmetic, no system call
//!     unmask_queue_interrupt(i);     // ixgbe: EIMS bit; virtio: clear NO_INTERRUPT
//!     if ring_still_empty() { intr.wait()?; }   // epoll_wait with the timeout
//!     mask_queue_interrupt(i);
//!     let n = poll_ring(...);
//!     intr.should_sleep(n);           // keep the idle count current
//! }
//! ```
//!
//! A device opened through sysfs has no way to deliver interrupts to user space; drivers
//! then log a warning and poll.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::error::{Error, Result};

/// Empty `rx_batch` calls in a row after which a queue with interrupts goes to sleep.
///
/// Large enough that a queue under load (where an empty poll is a short gap between
/// bursts) keeps polling, small enough that an idle queue sleeps within microseconds.
pub const IDLE_POLLS_BEFORE_SLEEP: u32 = 64;

/// The poll-or-sleep decision of one queue, without any system call (testable on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleTracker {
    empty_polls: u32,
    threshold: u32,
}

impl IdleTracker {
    /// A tracker that asks for sleep after `threshold` empty polls in a row (at least 1).
    pub fn new(threshold: u32) -> Self {
        IdleTracker {
            empty_polls: 0,
            threshold: threshold.max(1),
        }
    }

    /// Records the result of one poll; true if the queue should now sleep.
    #[inline(always)]
    pub fn should_sleep(&mut self, received: usize) -> bool {
        if received > 0 {
            self.empty_polls = 0;
            false
        } else {
            self.empty_polls = self.empty_polls.saturating_add(1);
            self.empty_polls >= self.threshold
        }
    }

    /// Empty polls in a row so far.
    pub fn empty_polls(&self) -> u32 {
        self.empty_polls
    }
}

/// A non-blocking eventfd (eventfd(2)): the kernel's VFIO interrupt handler adds 1 per
/// interrupt; reading returns the count and resets it.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// Creates an eventfd with a zero count.
    pub fn new() -> Result<Self> {
        // SAFETY: plain system call; a non-negative return is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::io(
                "cannot create an eventfd",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Reads and clears the count; 0 if nothing was signalled.
    pub fn drain(&self) -> u64 {
        let mut v = 0u64;
        // SAFETY: reading 8 bytes into a u64 we own from our own descriptor.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        if n == 8 { v } else { 0 }
    }

    /// Adds `n` to the count (what the kernel does on an interrupt; for tests).
    pub fn signal(&self, n: u64) -> Result<()> {
        // SAFETY: writing 8 bytes from a u64 we own to our own descriptor.
        let r = unsafe { libc::write(self.fd.as_raw_fd(), (&n as *const u64).cast(), 8) };
        if r != 8 {
            return Err(Error::io(
                "cannot signal an eventfd",
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The interrupt of one receive queue: its eventfd, an epoll instance watching it, the
/// timeout and the idle tracker. See the module documentation for the calling pattern.
#[derive(Debug)]
pub struct QueueInterrupt {
    event: EventFd,
    epoll: OwnedFd,
    /// epoll_wait timeout in ms; -1 waits forever.
    timeout_ms: i32,
    idle: IdleTracker,
}

impl QueueInterrupt {
    /// Creates the eventfd and epoll instance for a queue. `timeout_ms` as in
    /// [`crate::DeviceConfig::interrupt_timeout_ms`]: positive = at most that long, -1 (any
    /// negative) = until a packet arrives. 0 is refused (it means polling).
    pub fn new(timeout_ms: i16) -> Result<Self> {
        if timeout_ms == 0 {
            return Err(Error::config(
                "an interrupt timeout of 0 means polling: no queue interrupt needed",
            ));
        }
        let event = EventFd::new()?;
        // SAFETY: plain system call; a non-negative return is a new descriptor we own.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(Error::io(
                "cannot create an epoll instance",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: fresh descriptor owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; `ev` is a valid epoll_event.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, event.as_raw_fd(), &mut ev) } != 0 {
            return Err(Error::io(
                "cannot add an eventfd to epoll",
                io::Error::last_os_error(),
            ));
        }
        Ok(QueueInterrupt {
            event,
            epoll,
            timeout_ms: if timeout_ms < 0 {
                -1
            } else {
                timeout_ms as i32
            },
            idle: IdleTracker::new(IDLE_POLLS_BEFORE_SLEEP),
        })
    }

    /// The eventfd to hand to VFIO for this queue's vector.
    pub fn eventfd(&self) -> RawFd {
        self.event.as_raw_fd()
    }

    /// The eventfd itself (e.g. to signal it in tests).
    pub fn event(&self) -> &EventFd {
        &self.event
    }

    /// The configured timeout; `None` waits forever.
    pub fn timeout(&self) -> Option<Duration> {
        (self.timeout_ms >= 0).then(|| Duration::from_millis(self.timeout_ms as u64))
    }

    /// Records the result of a poll; true if the driver should arm the interrupt and call
    /// [`QueueInterrupt::wait`]. No system call.
    #[inline(always)]
    pub fn should_sleep(&mut self, received: usize) -> bool {
        self.idle.should_sleep(received)
    }

    /// Sleeps until the queue's interrupt fires or the timeout passes. Returns true if an
    /// interrupt arrived (its count is consumed), false on timeout. A signal interrupting
    /// the wait counts as a timeout.
    pub fn wait(&self) -> Result<bool> {
        self.wait_ms(self.timeout_ms)
    }

    /// Like [`QueueInterrupt::wait`] with an explicit timeout (`None`: forever).
    pub fn wait_for(&self, timeout: Option<Duration>) -> Result<bool> {
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
        };
        self.wait_ms(ms)
    }

    fn wait_ms(&self, ms: i32) -> Result<bool> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: the epoll descriptor is open; room for exactly one event.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(Error::io("epoll_wait on a queue interrupt", e));
        }
        Ok(n > 0 && self.event.drain() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn busy_queues_keep_polling_and_idle_ones_sleep() {
        let mut t = IdleTracker::new(3);
        assert!(!t.should_sleep(0));
        assert!(!t.should_sleep(0));
        assert!(t.should_sleep(0), "third empty poll in a row");
        assert!(t.should_sleep(0), "stays asleep while idle");
        assert!(!t.should_sleep(5), "traffic resets the count");
        assert_eq!(t.empty_polls(), 0);
        assert!(!t.should_sleep(0));
        assert!(!t.should_sleep(1));
        assert!(!t.should_sleep(0));
        assert!(!t.should_sleep(0));
        assert!(t.should_sleep(0));
        assert_eq!(IdleTracker::new(0), IdleTracker::new(1));
    }

    #[test]
    fn wait_returns_on_a_signal() {
        let q = QueueInterrupt::new(5000).unwrap();
        q.event().signal(2).unwrap();
        let start = Instant::now();
        assert!(q.wait().unwrap());
        assert!(start.elapsed() < Duration::from_secs(1));
        // The count was consumed: the next wait times out.
        assert!(!q.wait_for(Some(Duration::from_millis(10))).unwrap());
    }

    #[test]
    fn wait_times_out_without_a_signal() {
        let q = QueueInterrupt::new(30).unwrap();
        assert_eq!(q.timeout(), Some(Duration::from_millis(30)));
        let start = Instant::now();
        assert!(!q.wait().unwrap());
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(25), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn a_signal_from_another_thread_wakes_a_sleeper() {
        let q = QueueInterrupt::new(-1).unwrap();
        assert_eq!(q.timeout(), None);
        let fd = q.eventfd();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let one = 1u64;
            // SAFETY: the eventfd stays open until the main thread's wait returns.
            unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
        });
        assert!(q.wait().unwrap());
        t.join().unwrap();
    }

    #[test]
    fn zero_timeout_is_not_an_interrupt_mode() {
        assert!(matches!(
            QueueInterrupt::new(0),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
