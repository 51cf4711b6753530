//! Forwarder: receives on each of two ports and sends on the other, in batches, touching one
//! byte of every packet (offset 48). Prints per-port stats every second.
//!
//! `forwarder <pci address 1> <pci address 2>`

mod common;

use std::collections::VecDeque;

use ixy::IxyDevice;

const USAGE: common::Usage = common::Usage {
    synopsis: "forwarder <pci address 1> <pci address 2>",
    env: &[],
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
    let n = rx.rx_batch(0, buffer, BATCH_SIZE);
    if n > 0 {
        for p in buffer.iter_mut() {
            if p.len() > 48 {
                p[48] = p[48].wrapping_add(1);
            }
        }
        tx.tx_batch(0, buffer);
        // What the transmit queue had no room for is dropped (returns to its pool).
        *dropped += buffer.len() as u64;
        buffer.clear();
    }
}

fn main() {
    common::init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        USAGE.exit("expected two PCI addresses");
    }
    let cfgs = [USAGE.device_config(&args[1]), USAGE.device_config(&args[2])];
    if args[1].parse::<ixy::PciAddress>().ok() == args[2].parse().ok() {
        USAGE.exit("the two ports must be different devices");
    }
    let mut dev1 = common::open(&cfgs[0]);
    let mut dev2 = common::open(&cfgs[1]);
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
            stats.tick_with_drops(&mut [&mut dev1, &mut dev2], &dropped);
        }
    }
}
