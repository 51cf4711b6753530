//! Helpers shared by the driver tests: a deadline for every test that waits on the model,
//! and loops over the packet path that end with a message instead of spinning.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::VecDeque;

use ixy::pci::{DeviceId, PciAddress};
use ixy::{IxyDevice, Mempool, Packet};

// The deadline is shared with the crate's unit tests.
#[path = "../support/deadline.rs"]
mod deadline;
pub use deadline::*;

/// Rounds a packet-path loop gets to finish before the test fails.
pub const MAX_ROUNDS: usize = 100_000;

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

/// Offset of the sequence number in a [`udp_frame`] (the first 4 payload bytes).
pub const UDP_SEQ_AT: usize = 42;

/// An IPv4/UDP frame of `len` bytes (at least 46) to `dst`, from 10.0.0.1:`sport` to
/// 10.0.0.2:4789, with `seq` (big endian) at [`UDP_SEQ_AT`]: one flow per source port.
pub fn udp_frame(dst: [u8; 6], sport: u16, seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45; // IPv4, 20-byte header
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[22] = 64; // TTL
    f[23] = 17; // UDP
    f[26..34].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&4789u16.to_be_bytes());
    f[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    f[UDP_SEQ_AT..UDP_SEQ_AT + 4].copy_from_slice(&seq.to_be_bytes());
    f
}

/// The sequence number of a [`udp_frame`].
pub fn udp_seq(p: &[u8]) -> u32 {
    u32::from_be_bytes(p[UDP_SEQ_AT..UDP_SEQ_AT + 4].try_into().unwrap())
}

/// A [`udp_frame`] of the first flow (source port from 1024 up) that `port` steers to rx
/// queue `queue` (by its RSS registers, as the driver programmed them).
pub fn udp_frame_to_queue(
    model: &ixy::model::Model,
    port: &ixy::model::Port,
    queue: usize,
    seq: u32,
) -> Vec<u8> {
    (1024..u16::MAX)
        .map(|sport| udp_frame([0xff; 6], sport, seq, 60))
        .find(|f| model.rx_queue_of(port, f) == queue)
        .unwrap_or_else(|| panic!("no flow reaches rx queue {queue}: is RSS on?"))
}

/// An Ethernet frame of `len` bytes (at least 18, without CRC) to `dst`, ethertype 0x88b5
/// (local experimental), with `seq` (big endian) at byte 14 and the byte index as filler.
pub fn frame(dst: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f.iter_mut().enumerate().skip(18) {
        *b = i as u8;
    }
    f
}

/// The sequence number of a [`frame`].
pub fn seq_of(p: &[u8]) -> u32 {
    u32::from_be_bytes(p[14..18].try_into().unwrap())
}

/// Packets from `pool` holding copies of `frames`.
pub fn packets(pool: &Mempool, frames: &[Vec<u8>]) -> VecDeque<Packet> {
    frames
        .iter()
        .map(|f| {
            let mut p = pool.alloc(f.len()).expect("pool has room");
            p.copy_from_slice(f);
            p
        })
        .collect()
}

/// A network controller's identity at 0000:03:00.0, for driver selection.
pub fn device_id(vendor: u16, device: u16) -> DeviceId {
    DeviceId {
        address: "0000:03:00.0".parse::<PciAddress>().unwrap(),
        vendor,
        device,
        class: 0x02_00_00,
    }
}
