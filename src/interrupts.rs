//! Receive interrupts for any driver: one eventfd per queue, signalled by the device's
//! MSI-X (or MSI) vector through VFIO, waited on with epoll.
//!
//! The semantics are those of the original ixy's `interrupt_timeout`: queues are polled
//! while traffic flows (no system call on the busy path); only after
//! [`IDLE_POLLS_BEFORE_SLEEP`] `rx_batch` calls in a row returned nothing does a queue arm
//! its interrupt and sleep until a packet arrives or the timeout passes.
//!
//! The idle count and the epoll set are shared by all queues of a thread (devices are
//! `!Send`, so a thread owns its queues). This matters for a forwarder polling two ports
//! in one loop: a port without traffic must not put the thread to sleep while the other
//! port is busy, and while the thread sleeps on one port, a packet on the other must wake
//! it. So: any received packet resets the shared count; a queue that went to sleep stays
//! armed until it receives again; a sleeper wakes on the interrupt of any armed queue.
//!
//! # Using it from a driver
//!
//! ```text
//! // setup, once per receive queue i:
//! let intr = QueueInterrupt::new(cfg.interrupt_timeout_ms)?;
//! // after creating all of them: vector i -> eventfd of queue i
//! pci.enable_irqs(&[intr0.eventfd(), intr1.eventfd(), ...], &[IrqMode::MsiX])?; // VFIO_DEVICE_SET_IRQS
//! // program the device so queue i raises vector i (ixgbe: IVAR, GPIE, EITR;
//! // virtio: queue_msix_vector), interrupts masked (ixgbe EIMC / virtio NO_INTERRUPT)
//!
//! // rx_batch(queue i):
//! let n = poll_ring(...);
//! match intr.after_poll(n) {            // plain arithmetic, no system call
//!     IrqAction::Poll => {}
//!     IrqAction::Disarm => mask_queue_interrupt(i),     // ixgbe: EIMC; virtio: NO_INTERRUPT
//!     IrqAction::Sleep => {
//!         unmask_queue_interrupt(i);                     // ixgbe: EIMS; virtio: clear flag
//!         if ring_still_empty() { intr.wait()?; }        // epoll_wait with the timeout
//!         let n = poll_ring(...);
//!         if intr.after_poll(n) == IrqAction::Disarm { mask_queue_interrupt(i) }
//!     }
//! }
//! ```
//!
//! A device opened through sysfs has no way to deliver interrupts to user space; drivers
//! then log a warning and poll.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::error::{Error, Result};

/// Empty `rx_batch` calls in a row (over all queues of a thread) after which a queue with
/// interrupts goes to sleep.
///
/// Large enough that a queue under load (where an empty poll is a short gap between
/// bursts) keeps polling, small enough that an idle thread sleeps within microseconds.
pub const IDLE_POLLS_BEFORE_SLEEP: u32 = 64;

/// What a driver does after a poll of a queue with interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IrqAction {
    /// Keep polling; nothing to change.
    Poll,
    /// Traffic again: mask the queue's interrupt (it was armed while idle).
    Disarm,
    /// Idle: unmask the queue's interrupt, check the ring once more, then
    /// [`QueueInterrupt::wait`].
    Sleep,
}

/// The poll-or-sleep decision, without any system call (testable on its own).
///
/// `idle` is the thread's shared count of empty polls in a row; `armed` the queue's own
/// state (its interrupt is unmasked).
#[inline(always)]
pub(crate) fn decide(
    idle: &Cell<u32>,
    armed: &mut bool,
    threshold: u32,
    received: usize,
) -> IrqAction {
    if received > 0 {
        idle.set(0);
        // Traffic on a queue that slept: disarm it.
        return match std::mem::take(armed) {
            true => IrqAction::Disarm,
            false => IrqAction::Poll,
        };
    }
    let n = idle.get().saturating_add(1);
    idle.set(n);
    if n < threshold.max(1) {
        return IrqAction::Poll;
    }
    *armed = true;
    IrqAction::Sleep
}

/// Takes ownership of the descriptor a system call returned, or makes its error (`what`
/// failed) from errno.
///
/// # Safety
/// `ret` must be what a call that creates a descriptor returned just now: a fresh
/// descriptor owned by nobody else, or -1 with errno set.
unsafe fn owned_fd(ret: RawFd, what: &str) -> Result<OwnedFd> {
    if ret < 0 {
        return Err(Error::io(what, io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor owned by nobody else, per the caller's contract.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// Reads an eventfd's count (non-blocking); 0 if nothing was signalled.
fn drain_fd(fd: RawFd) -> u64 {
    let mut v = 0u64;
    // SAFETY: reading 8 bytes into a u64 we own; a closed or non-eventfd descriptor only
    // makes read fail.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n == 8 { v } else { 0 }
}

/// What the queues of one thread share: the epoll set of all their eventfds and the
/// count of empty polls in a row.
#[derive(Debug)]
struct Shared {
    epoll: OwnedFd,
    idle: Cell<u32>,
}

thread_local! {
    static SHARED: RefCell<Weak<Shared>> = const { RefCell::new(Weak::new()) };
}

fn shared_for_thread() -> Result<Rc<Shared>> {
    SHARED.with(|slot| {
        if let Some(s) = slot.borrow().upgrade() {
            return Ok(s);
        }
        let what = "cannot create an epoll instance";
        // SAFETY: plain system call that returns a new descriptor or -1.
        let epoll = unsafe { owned_fd(libc::epoll_create1(libc::EPOLL_CLOEXEC), what) }?;
        let idle = Cell::new(0);
        let s = Rc::new(Shared { epoll, idle });
        *slot.borrow_mut() = Rc::downgrade(&s);
        Ok(s)
    })
}

/// The interrupt of one receive queue: its eventfd (in the thread's shared epoll set),
/// the timeout and whether it is armed. See the module documentation for the pattern.
#[derive(Debug)]
pub struct QueueInterrupt {
    /// A non-blocking eventfd (eventfd(2)): the kernel's VFIO interrupt handler adds 1 per
    /// interrupt; reading returns the count and resets it.
    event: OwnedFd,
    shared: Rc<Shared>,
    /// epoll_wait timeout in ms; -1 waits forever.
    timeout_ms: i32,
    armed: bool,
    /// Waits so far, and how many of them an interrupt ended (the rest timed out).
    sleeps: Cell<u64>,
    wakeups: Cell<u64>,
}

impl QueueInterrupt {
    /// Creates the eventfd of a queue and adds it to the thread's epoll set. `timeout_ms`
    /// as in [`crate::DeviceConfig::interrupt_timeout_ms`]: positive = at most that long,
    /// negative = until a packet arrives. 0 is refused (it means polling).
    pub fn new(timeout_ms: i16) -> Result<Self> {
        if timeout_ms == 0 {
            return Err(Error::config(
                "an interrupt timeout of 0 means polling: no queue interrupt needed",
            ));
        }
        let flags = libc::EFD_CLOEXEC | libc::EFD_NONBLOCK;
        // SAFETY: plain system call that returns a new descriptor or -1.
        let event = unsafe { owned_fd(libc::eventfd(0, flags), "cannot create an eventfd") }?;
        let shared = shared_for_thread()?;
        // Edge-triggered: `wait_ms` drains every eventfd it is told about, so edge- and
        // level-triggered report the same signals (and Miri models only the former).
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: event.as_raw_fd() as u64,
        };
        let (epoll, fd) = (shared.epoll.as_raw_fd(), event.as_raw_fd());
        // SAFETY: both descriptors are open; `ev` is a valid epoll_event.
        if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            let e = io::Error::last_os_error();
            return Err(Error::io("cannot add an eventfd to epoll", e));
        }
        Ok(QueueInterrupt {
            event,
            shared,
            timeout_ms: i32::from(timeout_ms).max(-1),
            armed: false,
            sleeps: Cell::new(0),
            wakeups: Cell::new(0),
        })
    }

    /// The eventfd to hand to VFIO for this queue's vector.
    pub fn eventfd(&self) -> RawFd {
        self.event.as_raw_fd()
    }

    /// Adds `n` to the eventfd's count (what the kernel does on an interrupt; for tests).
    pub fn signal(&self, n: u64) -> Result<()> {
        // SAFETY: writing 8 bytes from a u64 we own to our own descriptor.
        let r = unsafe { libc::write(self.eventfd(), (&n as *const u64).cast(), 8) };
        let e = || Error::io("cannot signal an eventfd", io::Error::last_os_error());
        if r == 8 { Ok(()) } else { Err(e()) }
    }

    /// The configured timeout; `None` waits forever.
    pub fn timeout(&self) -> Option<Duration> {
        (self.timeout_ms >= 0).then(|| Duration::from_millis(self.timeout_ms as u64))
    }

    /// True while the queue's interrupt should be unmasked (it went to sleep and has not
    /// received since).
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// How many times this queue slept ([`QueueInterrupt::wait`]) so far.
    pub fn sleeps(&self) -> u64 {
        self.sleeps.get()
    }

    /// How many of those sleeps an interrupt ended (the others timed out).
    pub fn wakeups(&self) -> u64 {
        self.wakeups.get()
    }

    /// Records the result of a poll and says what to do. No system call.
    #[inline(always)]
    pub(crate) fn after_poll(&mut self, received: usize) -> IrqAction {
        let (idle, armed) = (&self.shared.idle, &mut self.armed);
        decide(idle, armed, IDLE_POLLS_BEFORE_SLEEP, received)
    }

    /// Sleeps until an armed queue of this thread raises its interrupt or the timeout
    /// passes. Returns true if an interrupt arrived (the counts of all signalled eventfds
    /// are consumed), false on timeout or when a signal interrupted the wait.
    pub fn wait(&self) -> Result<bool> {
        self.wait_ms(self.timeout_ms)
    }

    /// Like [`QueueInterrupt::wait`] with an explicit timeout (`None`: forever).
    #[cfg(test)]
    fn wait_for(&self, timeout: Option<Duration>) -> Result<bool> {
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
        };
        self.wait_ms(ms)
    }

    fn wait_ms(&self, ms: i32) -> Result<bool> {
        const MAX_EVENTS: usize = 16;
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        let (epoll, max) = (self.shared.epoll.as_raw_fd(), MAX_EVENTS as i32);
        // SAFETY: the epoll descriptor is open; `evs` has room for MAX_EVENTS events.
        let n = unsafe { libc::epoll_wait(epoll, evs.as_mut_ptr(), max, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(Error::io("epoll_wait on queue interrupts", e));
        }
        for ev in &evs[..n as usize] {
            // Drain each signalled eventfd: its count restarts from 0.
            drain_fd(ev.u64 as RawFd);
        }
        // Each event is an eventfd signalled since it was last drained: an interrupt.
        let fired = n > 0;
        self.sleeps.set(self.sleeps.get() + 1);
        self.wakeups.set(self.wakeups.get() + u64::from(fired));
        Ok(fired)
    }
}

impl Drop for QueueInterrupt {
    fn drop(&mut self) {
        let (epoll, fd) = (self.shared.epoll.as_raw_fd(), self.event.as_raw_fd());
        // SAFETY: removing our own open eventfd from the thread's epoll set.
        unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn an_idle_queue_sleeps_after_the_threshold_and_disarms_on_traffic() {
        let _deadline = crate::testing::deadline();
        let idle = Cell::new(0);
        let mut armed = false;
        assert_eq!(decide(&idle, &mut armed, 3, 0), IrqAction::Poll);
        assert_eq!(decide(&idle, &mut armed, 3, 0), IrqAction::Poll);
        assert_eq!(decide(&idle, &mut armed, 3, 0), IrqAction::Sleep);
        assert!(armed);
        assert_eq!(
            decide(&idle, &mut armed, 3, 0),
            IrqAction::Sleep,
            "stays asleep"
        );
        assert_eq!(decide(&idle, &mut armed, 3, 5), IrqAction::Disarm);
        assert!(!armed);
        assert_eq!(idle.get(), 0);
        assert_eq!(
            decide(&idle, &mut armed, 3, 7),
            IrqAction::Poll,
            "busy: nothing to do"
        );
    }

    #[test]
    fn a_busy_port_keeps_an_idle_port_of_the_same_thread_awake() {
        let _deadline = crate::testing::deadline();
        // Forwarder loop: port B has traffic every round, port C never.
        let idle = Cell::new(0);
        let (mut b, mut c) = (false, false);
        for _ in 0..1000 {
            assert_eq!(decide(&idle, &mut b, 64, 32), IrqAction::Poll);
            assert_eq!(decide(&idle, &mut c, 64, 0), IrqAction::Poll);
        }
        // Traffic stops: both ports idle, 64 empty polls in a row put the thread to sleep.
        let mut rounds = 1;
        while decide(&idle, &mut b, 64, 0) != IrqAction::Sleep {
            assert_eq!(decide(&idle, &mut c, 64, 0), IrqAction::Poll);
            rounds += 1;
            assert!(rounds <= 64, "the thread never went to sleep");
        }
        assert_eq!(rounds, 32);
        assert_eq!(decide(&idle, &mut c, 64, 0), IrqAction::Sleep);
        assert!(b && c, "both stay armed while idle");
        // A packet on B (its interrupt woke the thread sleeping on C): B disarms, C stays
        // armed but polls again.
        assert_eq!(decide(&idle, &mut b, 64, 1), IrqAction::Disarm);
        assert_eq!(decide(&idle, &mut c, 64, 0), IrqAction::Poll);
        assert!(c);
    }

    #[test]
    fn wait_returns_on_a_signal_of_any_queue_of_the_thread() {
        let _deadline = crate::testing::deadline();
        let q = QueueInterrupt::new(5000).unwrap();
        let other = QueueInterrupt::new(5000).unwrap();
        other.signal(2).unwrap();
        assert!(q.wait().unwrap(), "woken by the other queue's interrupt");
        assert_eq!((q.sleeps(), q.wakeups()), (1, 1));
        // The count was consumed: the next wait times out.
        assert!(!q.wait_for(Some(Duration::from_millis(10))).unwrap());
        q.signal(1).unwrap();
        assert!(other.wait().unwrap());
    }

    #[test]
    fn wait_times_out_without_a_signal() {
        let _deadline = crate::testing::deadline();
        let q = QueueInterrupt::new(30).unwrap();
        assert_eq!(q.timeout(), Some(Duration::from_millis(30)));
        let start = Instant::now();
        assert!(!q.wait().unwrap());
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(25), "{took:?}");
        assert_eq!((q.sleeps(), q.wakeups()), (1, 0), "timed out");
    }

    /// Signals eventfd `fd` from another thread 20 ms from now; the thread returns what
    /// `write` returned (8 when it signalled).
    fn signal_after_20_ms(fd: i32) -> std::thread::JoinHandle<isize> {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let one = 1u64;
            // SAFETY: the eventfd stays open until the caller's wait returns (the callers
            // join this thread before dropping the queue).
            unsafe { libc::write(fd, (&one as *const u64).cast(), 8) }
        })
    }

    #[test]
    fn a_signal_from_another_thread_wakes_a_sleeper() {
        let _deadline = crate::testing::deadline();
        let q = QueueInterrupt::new(-1).unwrap();
        assert_eq!(q.timeout(), None);
        let fd = q.eventfd();
        let t = signal_after_20_ms(fd);
        let start = Instant::now();
        // The queue waits forever; a bounded wait on the same epoll set stands in for it
        // here, so a lost wake-up fails the test (false) instead of hanging it.
        assert!(
            q.wait_for(Some(Duration::from_secs(60))).unwrap(),
            "woken by the signal, not a timeout"
        );
        let took = start.elapsed();
        assert_eq!(t.join().unwrap(), 8, "the other thread wrote the whole u64");
        assert!(
            took >= Duration::from_millis(15),
            "slept until the signal: {took:?}"
        );
        // The wait consumed the count: nothing left to drain.
        assert_eq!(drain_fd(q.eventfd()), 0);
    }

    #[test]
    fn an_eventfd_counts_signals_until_drained() {
        let _deadline = crate::testing::deadline();
        let e = QueueInterrupt::new(1).unwrap();
        assert_eq!(drain_fd(e.eventfd()), 0);
        e.signal(2).unwrap();
        e.signal(1).unwrap();
        assert_eq!(drain_fd(e.eventfd()), 3);
        assert_eq!(drain_fd(e.eventfd()), 0, "drained");
    }

    #[test]
    fn descriptor_0_is_a_descriptor_and_minus_1_an_error() {
        let _deadline = crate::testing::deadline();
        // A process started with stdin closed gets descriptor 0 from its first eventfd.
        // SAFETY: descriptor 0 is stdin, not a fresh one: the OwnedFd is forgotten below,
        // never closed, so nothing happens to it.
        let zero = unsafe { owned_fd(0, "eventfd") }.unwrap();
        assert_eq!(zero.as_raw_fd(), 0);
        std::mem::forget(zero);
        // SAFETY: -1 is an error return; no descriptor is taken.
        let err = unsafe { owned_fd(-1, "cannot create an eventfd") }.unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(
            err.to_string().contains("cannot create an eventfd"),
            "{err}"
        );
    }

    #[test]
    fn a_queue_arms_when_it_sleeps_and_disarms_on_traffic() {
        let _deadline = crate::testing::deadline();
        let mut q = QueueInterrupt::new(10).unwrap();
        for _ in 1..IDLE_POLLS_BEFORE_SLEEP {
            assert_eq!(q.after_poll(0), IrqAction::Poll);
            assert!(!q.armed());
        }
        assert_eq!(q.after_poll(0), IrqAction::Sleep);
        assert!(q.armed(), "unmask the interrupt before sleeping");
        assert!(!q.wait().unwrap(), "nothing signalled: timed out");
        assert!(!q.wait().unwrap());
        assert_eq!((q.sleeps(), q.wakeups()), (2, 0));
        assert_eq!(q.after_poll(3), IrqAction::Disarm);
        assert!(!q.armed());
    }

    #[test]
    fn a_queue_without_timeout_sleeps_until_the_interrupt() {
        let _deadline = crate::testing::deadline();
        let q = QueueInterrupt::new(-1).unwrap();
        let fd = q.eventfd();
        let t = signal_after_20_ms(fd);
        let start = Instant::now();
        assert!(q.wait_for(None).unwrap(), "woken by the interrupt");
        assert!(start.elapsed() >= Duration::from_millis(15));
        assert_eq!(t.join().unwrap(), 8);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "sends a signal (sigaction, pthread_kill), which Miri cannot call"
    )]
    fn a_wait_interrupted_by_a_signal_returns_false() {
        let _deadline = crate::testing::deadline();
        extern "C" fn nothing(_: libc::c_int) {}
        // SAFETY: a zeroed sigaction is valid; the handler does nothing, and nothing else
        // in the tests uses SIGUSR1. No SA_RESTART: epoll_wait fails with EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
            assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
        }
        let q = QueueInterrupt::new(-1).unwrap();
        // SAFETY: plain call.
        let me = unsafe { libc::pthread_self() };
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let kicker = {
            let done = done.clone();
            // Signals the waiting thread until its wait returned (a signal that arrives
            // before the wait starts is not enough).
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                    // SAFETY: `me` is alive: it waits for this thread before it ends.
                    unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                }
            })
        };
        let woken = q.wait();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        kicker.join().unwrap();
        assert!(!woken.unwrap(), "a signal is not an interrupt");
        assert_eq!(q.wakeups(), 0);
    }

    #[test]
    fn a_dropped_queue_never_wakes_the_thread() {
        let _deadline = crate::testing::deadline();
        let q = QueueInterrupt::new(20).unwrap();
        let gone = QueueInterrupt::new(20).unwrap();
        // VFIO keeps a reference to a queue's eventfd; a duplicate plays it here.
        // SAFETY: dup returns a new descriptor or -1.
        let vfio = unsafe { owned_fd(libc::dup(gone.eventfd()), "dup") }.unwrap();
        drop(gone);
        let one = 1u64;
        // SAFETY: writing 8 bytes from a u64 to the open duplicate.
        let n = unsafe { libc::write(vfio.as_raw_fd(), (&one as *const u64).cast(), 8) };
        assert_eq!(n, 8);
        assert!(
            !q.wait().unwrap(),
            "the dropped queue's interrupt woke the thread"
        );
        assert_eq!((q.sleeps(), q.wakeups()), (1, 0));
    }

    #[test]
    fn zero_timeout_is_not_an_interrupt_mode() {
        let _deadline = crate::testing::deadline();
        let err = QueueInterrupt::new(0).err().unwrap();
        assert!(matches!(&err, Error::InvalidConfig { detail } if detail.contains("polling")));
    }
}
