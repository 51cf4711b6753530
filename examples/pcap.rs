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
    let failed =
        |e: std::io::Error| -> ! { common::fail(format!("cannot write {}: {e}", args[2])) };

    // pcap global header (libpcap format): magic, version 2.4 (two 16-bit halves), UTC
    // offset 0, accuracy 0, snaplen 65535, link type 1 (Ethernet).
    for word in [0xa1b2_c3d4u32, 2 | 4 << 16, 0, 0, 65535, 1] {
        out.write_all(&word.to_le_bytes())
            .unwrap_or_else(|e| failed(e));
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
            // Record header: seconds, microseconds, captured and original length.
            let len = p.len() as u32;
            for word in [now.as_secs() as u32, now.subsec_micros(), len, len] {
                out.write_all(&word.to_le_bytes())
                    .unwrap_or_else(|e| failed(e));
            }
            out.write_all(&p).unwrap_or_else(|e| failed(e));
            written += 1;
        }
        // Every batch reaches the file, so nothing is lost when the loop ends.
        out.flush().unwrap_or_else(|e| failed(e));
    }
    println!("received {written} packets");
}
