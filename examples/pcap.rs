//! Capture: writes received packets to a pcap file.
//!
//! `pcap <pci address> <file> [n]` — with n, stops after n packets. Prints the number of
//! packets written when it ends (after n packets, or on Ctrl-C/SIGTERM).

mod common;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USAGE: common::Usage = common::Usage {
    synopsis: "pcap <pci address> <output file> [packet count]",
    env: &[],
    device_env: true,
};

fn main() {
    common::init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 4 {
        USAGE.exit("expected a PCI address, a file and an optional count");
    }
    let limit: Option<u64> = args.get(3).map(|c| USAGE.count(c));
    let cfg = USAGE.device_config(&args[1]);
    // The file first: a run that cannot write its output leaves the device alone.
    let file = File::create(&args[2])
        .unwrap_or_else(|e| common::fail(format!("cannot create {}: {e}", args[2])));
    let mut dev = common::open(&cfg);
    let mut out = BufWriter::new(file);

    // pcap global header (libpcap format): magic, version 2.4, UTC offset 0, accuracy 0,
    // snaplen 65535, link type 1 (Ethernet).
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    if let Err(e) = out.write_all(&header) {
        common::fail(format!("cannot write {}: {e}", args[2]));
    }

    let mut buffer = VecDeque::with_capacity(32);
    let mut written: u64 = 0;
    while !common::stopped() && limit.is_none_or(|n| written < n) {
        let want = limit.map_or(32, |n| (n - written).min(32) as usize);
        if dev.rx_batch(0, &mut buffer, want) == 0 {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        for p in buffer.drain(..) {
            let mut rec = [0u8; 16];
            rec[0..4].copy_from_slice(&(now.as_secs() as u32).to_le_bytes());
            rec[4..8].copy_from_slice(&now.subsec_micros().to_le_bytes());
            rec[8..12].copy_from_slice(&(p.len() as u32).to_le_bytes());
            rec[12..16].copy_from_slice(&(p.len() as u32).to_le_bytes());
            if let Err(e) = out.write_all(&rec).and_then(|_| out.write_all(&p)) {
                common::fail(format!("cannot write {}: {e}", args[2]));
            }
            written += 1;
        }
        if let Err(e) = out.flush() {
            common::fail(format!("cannot write {}: {e}", args[2]));
        }
    }
    if let Err(e) = out.flush() {
        common::fail(format!("cannot write {}: {e}", args[2]));
    }
    println!("received {written} packets");
}
