//! Queues on threads: a device split into per-queue handles that each move to a thread.
//!
//! [`IxyDevice::split`](crate::IxyDevice::split) moves every receive and transmit ring out of an opened device into
//! an [`RxQueue`] or [`TxQueue`]. Each is `Send`: give each to its own thread (one queue,
//! or one rx/tx pair, per thread, as the hardware is meant to be used). The device itself
//! stays behind as the control handle: link, MAC address, promiscuous mode and statistics
//! (with the per-queue counters) keep working on it; its own `rx_batch`/`tx_batch` then
//! have no queues left.
//!
//! What is shared, and how:
//! * the register space: every handle holds it (an `Arc`); a queue writes only its own
//!   tail register (and its control register when dropped), the control handle the rest;
//! * packets: [`Packet`] is `Send`. A packet received on one thread may be transmitted on
//!   a queue of another, or dropped there: its buffer goes back to its pool through the
//!   pool's lock-free return list (see [`crate::memory::mempool`]);
//! * pools: each receive queue takes its pool's only handle along and fills its ring from
//!   it on its own thread; a device whose pools have other handles (e.g. a clone from
//!   `rx_pool`) is not split.
//!
//! A queue's packet path takes no lock and makes no atomic read-modify-write or system
//! call per packet: allocation is thread-local, the tail is written once per batch, and a
//! cleaned transmit batch goes back to its pool with one compare-and-swap per pool.
//!
//! Dropping a queue disables it in the device (waiting until the device confirms) before
//! its ring memory is freed, so the device never writes freed memory; if the device does
//! not confirm, the ring and its buffers are leaked rather than freed. Dropping the control
//! handle resets the device as before, stopping the queues still alive on other threads
//! (their batches then move nothing). Polling only: a device opened with interrupts is not
//! split.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::Packet;
use crate::error::{Error, Result};
use crate::intel::queue::QueueRegs;
use crate::intel::ring::{RxRing, TxRing};
use crate::registers::{RegisterSpace, SharedRegs, wait_for};

/// How long a dropped queue waits for the device to confirm it is disabled (the drivers'
/// own close waits as long).
const DISABLE_TIMEOUT: Duration = Duration::from_millis(100);

/// The handles of a split device ([`IxyDevice::split`](crate::IxyDevice::split)), queue 0 first.
pub struct Queues {
    /// One per receive queue.
    pub rx: Vec<RxQueue>,
    /// One per transmit queue.
    pub tx: Vec<TxQueue>,
}

/// A queue's control register and its enable bit, for disabling it when dropped.
struct Stop {
    regs: SharedRegs,
    ctl: usize,
    enable: u32,
    what: String,
}

impl Stop {
    /// Disables the queue and waits until the device confirms; if it does not, leaks
    /// `ring` (the device may still use its memory).
    fn stop<T>(&self, ring: &mut Option<T>) {
        self.regs.clear_bits(self.ctl, self.enable);
        let (regs, what) = (&self.regs, &self.what);
        if let Err(e) = wait_for(regs, self.ctl, self.enable, 0, DISABLE_TIMEOUT, what) {
            log::error!("{e}; leaking its ring and buffers");
            std::mem::forget(ring.take());
        }
    }
}

/// A receive queue of a split device, to be used from one thread at a time.
pub struct RxQueue {
    ring: Option<RxRing>,
    stop: Stop,
    id: u16,
}

/// A transmit queue of a split device, to be used from one thread at a time.
pub struct TxQueue {
    ring: Option<TxRing>,
    stop: Stop,
    id: u16,
}

// SAFETY: the ring owns its descriptor memory and buffers alone; its pool handle is the
// pool's only one (checked by `split`, never handed out), so the pool's local free list
// moves with the queue and every other thread reaches the pool only through packets
// (`Send`: the atomic return list). The register space is `Send + Sync`.
unsafe impl Send for RxQueue {}
// SAFETY: the ring owns its descriptor memory and the packets on it (`Send`) alone; the
// register space is `Send + Sync`.
unsafe impl Send for TxQueue {}

impl RxQueue {
    /// The queue's number in its device.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// As [`IxyDevice::rx_batch`](crate::IxyDevice::rx_batch), on this queue.
    #[inline]
    pub fn rx_batch(&mut self, buffer: &mut VecDeque<Packet>, num_packets: usize) -> usize {
        match &mut self.ring {
            Some(ring) => ring.rx_batch(&self.stop.regs, buffer, num_packets),
            None => 0,
        }
    }
}

impl TxQueue {
    /// The queue's number in its device.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// As [`IxyDevice::tx_batch`](crate::IxyDevice::tx_batch), on this queue.
    #[inline]
    pub fn tx_batch(&mut self, buffer: &mut VecDeque<Packet>) -> usize {
        match &mut self.ring {
            Some(ring) => ring.tx_batch(&self.stop.regs, buffer),
            None => 0,
        }
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.stop.stop(&mut self.ring);
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.stop.stop(&mut self.ring);
    }
}

/// Where a driver's queue registers are: the control register of queue `q` and its
/// enable bit, for receive and for transmit.
pub(crate) struct QueueControl {
    pub(crate) rx: (fn(usize) -> QueueRegs, u32),
    pub(crate) tx: (fn(usize) -> QueueRegs, u32),
}

/// Moves a driver's rings into queue handles sharing `regs`. Refuses, changing nothing,
/// if a receive pool has other handles than its ring's.
pub(crate) fn split<R: RegisterSpace>(
    device: &str,
    regs: &Arc<R>,
    rx: &mut Vec<RxRing>,
    tx: &mut Vec<TxRing>,
    ctl: QueueControl,
) -> Result<Queues> {
    let Some(regs) = R::share(regs) else {
        return Err(Error::config(format!(
            "{device}: its register space cannot be shared between threads"
        )));
    };
    if let Some(q) = rx.iter().position(|r| !r.pool().is_unique()) {
        return Err(Error::config(format!(
            "{device}: the pool of receive queue {q} has other handles; a queue moving to \
             its own thread must hold its pool alone (drop the clones first)"
        )));
    }
    let stop = |(regs_of, enable): (fn(usize) -> QueueRegs, u32), q: usize, kind: &str| Stop {
        regs: Arc::clone(&regs),
        ctl: regs_of(q).ctl,
        enable,
        what: format!("{device}: {kind} queue {q} to disable"),
    };
    let rx = rx.drain(..).enumerate().map(|(q, ring)| RxQueue {
        ring: Some(ring),
        stop: stop(ctl.rx, q, "receive"),
        id: q as u16,
    });
    let tx = tx.drain(..).enumerate().map(|(q, ring)| TxQueue {
        ring: Some(ring),
        stop: stop(ctl.tx, q, "transmit"),
        id: q as u16,
    });
    Ok(Queues {
        rx: rx.collect(),
        tx: tx.collect(),
    })
}

/// The error of a driver that cannot split ([`IxyDevice::split`](crate::IxyDevice::split)'s default).
pub(crate) fn unsupported(driver: &str) -> Error {
    Error::config(format!(
        "driver {driver} does not support splitting into queues"
    ))
}
