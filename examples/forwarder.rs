//! Forwarder: receives on each of two ports and sends on the other, in batches, touching one
//! byte of every packet (offset 48). Prints per-port stats every second.
//!
//! `forwarder <pci address 1> <pci address 2>`
//!
//! With `IXY_QUEUES=n` (n > 1) each port opens n queue pairs (the NIC spreads received
//! flows over them: RSS) and is split into per-queue handles ([`ixy::queues`]); thread `q`
//! forwards between queue pair `q` of the two ports, and the main thread prints the port
//! lines and a line per port and queue (`[addr] queue q: RX: ... | TX: ...`, counted by
//! the threads) every second.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ixy::IxyDevice;
use ixy::queues::{RxQueue, TxQueue};

const USAGE: common::Usage = common::Usage {
    synopsis: "forwarder <pci address 1> <pci address 2>",
    env: &["IXY_QUEUES=n (queue pairs per port, one thread each; default 1)"],
    device_env: true,
};

const BATCH_SIZE: usize = 32;

/// Forwards one batch from `rx` to `tx`; adds what `tx` had no room for to `dropped`.
fn forward(
    buffer: &mut VecDeque<ixy::Packet>,
    rx: &mut dyn IxyDevice,
    tx: &mut dyn IxyDevice,
    dropped: &mut u64,
) {
    forward_with(
        buffer,
        |b| rx.rx_batch(0, b, BATCH_SIZE),
        |b| tx.tx_batch(0, b),
        dropped,
    );
}

/// One batch from `rx` to `tx`, whatever they are (a device's queue 0, or split queues).
/// Returns how many packets were received and how many of them sent.
fn forward_with(
    buffer: &mut VecDeque<ixy::Packet>,
    rx: impl FnOnce(&mut VecDeque<ixy::Packet>) -> usize,
    tx: impl FnOnce(&mut VecDeque<ixy::Packet>) -> usize,
    dropped: &mut u64,
) -> (usize, usize) {
    let n = rx(buffer);
    if n == 0 {
        return (0, 0);
    }
    for p in buffer.iter_mut() {
        if p.len() > 48 {
            p[48] = p[48].wrapping_add(1);
        }
    }
    let sent = tx(buffer);
    // What the transmit queue had no room for is dropped (returns to its pool).
    *dropped += buffer.len() as u64;
    buffer.clear();
    (n, sent)
}

fn main() {
    common::init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        USAGE.exit("expected two PCI addresses");
    }
    let number = "a number from 1 to 65535";
    let queues = USAGE.env("IXY_QUEUES", 1, number, |v| {
        v.parse().ok().filter(|&n| n > 0)
    });
    let cfgs = [&args[1], &args[2]].map(|a| USAGE.device_config(a).queues(queues, queues));
    if args[1].parse::<ixy::PciAddress>().ok() == args[2].parse().ok() {
        USAGE.exit("the two ports must be different devices");
    }
    let mut dev1 = common::open(&cfgs[0]);
    let mut dev2 = common::open(&cfgs[1]);
    if queues > 1 {
        return on_threads(dev1, dev2);
    }
    let mut buffer = VecDeque::with_capacity(BATCH_SIZE);
    let mut stats = common::StatsPrinter::new(&mut [&mut dev1, &mut dev2]);
    let mut round: u32 = 0;
    // Packets dropped because the transmit queue of port 1 / port 2 was full.
    let mut dropped = [0u64; 2];
    while !common::stopped() {
        forward(&mut buffer, dev1.as_mut(), dev2.as_mut(), &mut dropped[1]);
        forward(&mut buffer, dev2.as_mut(), dev1.as_mut(), &mut dropped[0]);
        // Reading the clock every round would cost more than forwarding a batch.
        round = round.wrapping_add(1);
        if round & 0xfff == 0 {
            stats.tick(&mut [&mut dev1, &mut dev2], &dropped);
        }
    }
}

/// Packets received and sent on one queue pair of each port: `[port][0]` received on its
/// receive queue, `[port][1]` sent on its transmit queue (counted by the queue's thread,
/// once per batch, so they work for every driver).
type PairCounts = [[AtomicU64; 2]; 2];

/// The forwarding loop of one thread: queue pair `q` of both ports.
fn forward_queues(
    mut pair: [(RxQueue, TxQueue); 2],
    dropped: &[AtomicU64; 2],
    counts: &PairCounts,
) {
    let mut buffer = VecDeque::with_capacity(BATCH_SIZE);
    let mut lost = [0u64; 2];
    while !common::stopped() {
        for (port, (rx, tx)) in pair.iter_mut().enumerate() {
            let (got, sent) = forward_with(
                &mut buffer,
                |b| rx.rx_batch(b, BATCH_SIZE),
                |b| tx.tx_batch(b),
                &mut lost[1 - port],
            );
            if got > 0 {
                counts[port][0].fetch_add(got as u64, Ordering::Relaxed);
                counts[1 - port][1].fetch_add(sent as u64, Ordering::Relaxed);
            }
        }
        // Published per batch that lost packets, not per packet.
        for (total, n) in dropped.iter().zip(lost.iter_mut()) {
            if *n > 0 {
                total.fetch_add(std::mem::take(n), Ordering::Relaxed);
            }
        }
    }
}

/// `IXY_QUEUES` > 1: splits both ports, forwards on one thread per queue pair and prints
/// the port lines (from the control handles) and per-queue lines (from the threads' counts).
fn on_threads(mut dev1: Box<dyn IxyDevice>, mut dev2: Box<dyn IxyDevice>) {
    let [a, b] = [&mut dev1, &mut dev2].map(|d| d.split().unwrap_or_else(|e| common::fail(e)));
    let dropped = [AtomicU64::new(0), AtomicU64::new(0)];
    let counts: Vec<PairCounts> = (0..a.rx.len()).map(|_| Default::default()).collect();
    let pairs = a.rx.into_iter().zip(b.tx).zip(b.rx.into_iter().zip(a.tx));
    std::thread::scope(|s| {
        for (((rx1, tx2), (rx2, tx1)), counts) in pairs.zip(&counts) {
            let dropped = &dropped;
            s.spawn(move || forward_queues([(rx1, tx2), (rx2, tx1)], dropped, counts));
        }
        let mut stats = common::StatsPrinter::new(&mut [&mut dev1, &mut dev2]);
        let mut before = snapshot(&counts);
        while !common::stopped() {
            std::thread::sleep(Duration::from_millis(100));
            let drops = dropped.each_ref().map(|d| d.load(Ordering::Relaxed));
            // The queue lines follow the port lines, once a second.
            if let Some(secs) = stats.tick(&mut [&mut dev1, &mut dev2], &drops) {
                let now = snapshot(&counts);
                print_queues([dev1.pci_addr(), dev2.pci_addr()], &before, &now, secs);
                before = now;
            }
        }
    });
}

/// The per-queue counts as they are now: `[q][port][rx, tx]`.
fn snapshot(counts: &[PairCounts]) -> Vec<[[u64; 2]; 2]> {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    counts
        .iter()
        .map(|q| q.each_ref().map(|p| p.each_ref().map(load)))
        .collect()
}

/// One line per port and queue: `[addr] queue q: RX: x Mpps | TX: y Mpps` since `before`.
fn print_queues(addrs: [&str; 2], before: &[[[u64; 2]; 2]], now: &[[[u64; 2]; 2]], secs: f64) {
    for (port, addr) in addrs.iter().enumerate() {
        for (q, (then, now)) in before.iter().zip(now).enumerate() {
            let mpps = |i: usize| now[port][i].wrapping_sub(then[port][i]) as f64 / 1e6 / secs;
            println!(
                "[{addr}] queue {q}: RX: {:.4} Mpps | TX: {:.4} Mpps",
                mpps(0),
                mpps(1)
            );
        }
    }
}
