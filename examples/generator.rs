//! Packet generator: sends 60-byte UDP/IPv4 packets in batches, each carrying a sequence
//! number, and prints TX/RX rates every second.
//!
//! `generator <pci address> [count]` — with a count, stops after that many packets.
//!
//! Frame layout: Ethernet (destination `$IXY_DST_MAC`, default 10:10:10:10:10:10; source the
//! device's MAC), IPv4 10.0.0.1 → 10.0.0.2 with a valid header checksum, UDP 42 → 1337, and
//! 18 payload bytes whose last four (frame offset 56..60) are a big-endian sequence number.
//!
//! With `IXY_FLOWS=n` the packets belong to n flows, UDP source ports 42 to 41 + n in turn
//! (packet `seq` from port 42 + seq % n), so that a receiver's RSS has flows to spread.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use ixy::Mempool;

const USAGE: common::Usage = common::Usage {
    synopsis: "generator <pci address> [packet count]",
    env: &[
        "IXY_DST_MAC=aa:bb:cc:dd:ee:ff (destination MAC, default 10:10:10:10:10:10)",
        "IXY_FLOWS=n (UDP flows: source ports 42 to 41 + n in turn; default 1)",
    ],
    device_env: true,
};

const PACKET_SIZE: usize = 60;
const BATCH_SIZE: usize = 64;
const POOL_SIZE: u32 = 2048;
/// Frame offset of the sequence number.
const SEQ_OFFSET: usize = 56;

/// The Internet checksum (RFC 1071) of `data`.
fn ip_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn template(src: [u8; 6], dst: [u8; 6]) -> [u8; PACKET_SIZE] {
    let mut p = [0u8; PACKET_SIZE];
    p[0..6].copy_from_slice(&dst);
    p[6..12].copy_from_slice(&src);
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    // IPv4 header (RFC 791): version 4, IHL 5, total length 46, TTL 64, UDP.
    p[14] = 0x45;
    p[16..18].copy_from_slice(&((PACKET_SIZE - 14) as u16).to_be_bytes());
    p[22] = 64;
    p[23] = 17;
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    let csum = ip_checksum(&p[14..34]);
    p[24..26].copy_from_slice(&csum.to_be_bytes());
    // UDP (RFC 768): ports 42 -> 1337, length 26, no checksum.
    p[34..36].copy_from_slice(&42u16.to_be_bytes());
    p[36..38].copy_from_slice(&1337u16.to_be_bytes());
    p[38..40].copy_from_slice(&((PACKET_SIZE - 34) as u16).to_be_bytes());
    // Payload: "ixy" and a counting pattern; the sequence number goes last.
    p[42..45].copy_from_slice(b"ixy");
    for (i, b) in p[45..SEQ_OFFSET].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

fn main() {
    common::init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 || args.len() > 3 {
        USAGE.exit("expected a PCI address and an optional packet count");
    }
    let count: Option<u64> = args.get(2).map(|c| USAGE.count(c));
    let dst = USAGE.env("IXY_DST_MAC", [0x10; 6], "a MAC address", common::parse_mac);
    // Source ports 42 to 41 + n must fit in 16 bits.
    let few = |&n: &u16| n > 0 && n <= u16::MAX - 41;
    let number = "a number from 1 to 65494";
    let flows = USAGE.env("IXY_FLOWS", 1, number, |v| v.parse().ok().filter(few));
    let cfg = USAGE.device_config(&args[1]);

    let mut dev = common::open(&cfg);
    let pool = Mempool::allocate(POOL_SIZE, 2048).unwrap_or_else(|e| common::fail(e));
    let frame = template(dev.mac_addr(), dst);

    // Write the template into every buffer once; afterwards only the sequence number changes.
    let mut all = VecDeque::with_capacity(POOL_SIZE as usize);
    pool.alloc_batch(&mut all, POOL_SIZE as usize, PACKET_SIZE);
    for p in all.iter_mut() {
        p.copy_from_slice(&frame);
    }
    drop(all);

    let mut buffer = VecDeque::with_capacity(BATCH_SIZE);
    let mut rx = VecDeque::with_capacity(BATCH_SIZE);
    let mut seq: u32 = 0;
    let mut sent: u64 = 0;
    let mut stats = common::StatsPrinter::new(&mut [&mut dev]);
    while !common::stopped() && count.is_none_or(|c| sent < c) {
        let want = match count {
            Some(c) => BATCH_SIZE.min((c - sent) as usize),
            None => BATCH_SIZE,
        };
        pool.alloc_batch(&mut buffer, want, PACKET_SIZE);
        for p in buffer.iter_mut() {
            p[SEQ_OFFSET..].copy_from_slice(&seq.to_be_bytes());
            if flows > 1 {
                p[34..36].copy_from_slice(&(42 + (seq % u32::from(flows)) as u16).to_be_bytes());
            }
            seq = seq.wrapping_add(1);
        }
        let n = dev.tx_batch(0, &mut buffer);
        sent += n as u64;
        // Unsent packets keep their sequence numbers and go out first next round; rewind
        // so numbers stay consecutive on the wire.
        seq = seq.wrapping_sub(buffer.len() as u32);
        buffer.clear();
        // Drain anything that arrives so the receive ring never stalls.
        dev.rx_batch(0, &mut rx, BATCH_SIZE);
        rx.clear();
        stats.tick(&mut [&mut dev], &[]);
    }
    // Give the device time to put the last batch on the wire before it is reset.
    std::thread::sleep(Duration::from_millis(200));
    dev.tx_batch(0, &mut buffer);
    println!("sent {sent} packets");
}
