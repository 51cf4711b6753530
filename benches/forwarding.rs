//! Forwarding benchmark: the ixgbe driver's cost per forwarded packet, measured against the
//! 82599 device model (there is no card here).
//!
//! Two modelled ports, each fed by a model traffic source with 64-byte frames (60 bytes +
//! CRC). The forwarder loop receives a batch on port 0, touches one byte of each packet,
//! sends the batch on port 1 (packets that don't fit are dropped), and the same in the
//! other direction — the loop of ixy's `ixy-fwd`.
//!
//! For each batch size 1, 2, 4, ..., 256 it prints one line:
//!
//! ```text
//! batch 32: 98.7 instructions/packet, 41.2 Mpps
//! ```
//!
//! * instructions/packet: counted by callgrind in driver and application code only. The
//!   model's entry points (`<ixy::model::PortRegisters as RegisterSpace>::{read32,write32}`,
//!   `<ixy::model::ModelDma as DmaAllocator>::allocate`, `ixy::model::Model::*`) are
//!   toggled out of collection (`--collect-atstart=yes` after the toggles), so
//!   everything the "device" does is excluded. The benchmark re-runs itself under
//!   `valgrind --tool=callgrind` twice per batch size, with two packet counts, and divides
//!   the difference of the totals by the difference of the counts, which cancels setup.
//!   Deterministic; comparable with the hardware counter figures of the C ixy (127 at
//!   batch 32) and ixy.rs (209).
//! * Mpps: wall clock on this machine, natively, *against the model*: the model's own
//!   work is included, so this is not a line rate.
//!
//! Run with `cargo bench --bench forwarding`. `IXY_BENCH_NO_VALGRIND=1` skips the
//! instruction counts.

use std::collections::VecDeque;
use std::process::Command;
use std::time::{Duration, Instant};

use ixy::ixgbe::{IxgbeDevice, IxgbeOptions};
use ixy::model::{Model, PortRegisters};
use ixy::{IxyDevice, Packet};

type Dev = IxgbeDevice<PortRegisters>;

const BATCH_SIZES: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// Packet counts of the two callgrind runs per batch size.
const COUNT_SHORT: u64 = 100_000;
const COUNT_LONG: u64 = 300_000;

/// Packets per native timing run.
const NATIVE_PACKETS: u64 = 4_000_000;

/// The callgrind patterns matching every entry point from driver code into the model.
const TOGGLES: [&str; 3] = [
    "--toggle-collect=<ixy::model::PortRegisters as ixy::registers::RegisterSpace>::*",
    "--toggle-collect=<ixy::model::dma::ModelDma as ixy::memory::dma::DmaAllocator>::*",
    "--toggle-collect=ixy::model::Model::*",
];

struct Setup {
    _model: Model,
    devs: [Dev; 2],
}

fn setup() -> Setup {
    let model = Model::new();
    let ports = [model.add_port(), model.add_port()];
    let mut template = vec![0u8; 60];
    template[..6].copy_from_slice(&[0xff; 6]);
    template[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    template[12..14].copy_from_slice(&[0x08, 0x00]);
    let options = IxgbeOptions::default().link_timeout(Duration::from_secs(2));
    let open = |p| {
        model
            .ixgbe(p, &options)
            .expect("ixgbe init against the model")
    };
    let devs = [open(&ports[0]), open(&ports[1])];
    for p in &ports {
        model.attach_source(p, template.clone(), None);
    }
    Setup {
        _model: model,
        devs,
    }
}

/// One direction of the forwarder: rx on `rx`, touch, tx on `tx`, drop what did not fit.
#[inline(never)]
fn forward(rx: &mut Dev, tx: &mut Dev, buf: &mut VecDeque<Packet>, batch: usize) -> u64 {
    let n = rx.rx_batch(0, buf, batch);
    if n > 0 {
        for p in buf.iter_mut() {
            p[48] = p[48].wrapping_add(1);
        }
        tx.tx_batch(0, buf);
        buf.clear();
    }
    n as u64
}

/// Forwards at least `count` packets (both directions together).
#[inline(never)]
fn run(s: &mut Setup, batch: usize, count: u64) -> u64 {
    let mut buf = VecDeque::with_capacity(batch);
    let mut done = 0;
    let [a, b] = &mut s.devs;
    while done < count {
        done += forward(a, b, &mut buf, batch);
        done += forward(b, a, &mut buf, batch);
    }
    done
}

/// Child mode: forward `count` packets at `batch` and print the exact count forwarded.
fn child(batch: usize, count: u64) {
    let mut s = setup();
    let done = run(&mut s, batch, count);
    println!("forwarded {done}");
}

/// Instructions collected by callgrind for one child run, and packets forwarded.
fn callgrind(batch: usize, count: u64) -> Result<(u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out_file = std::env::temp_dir().join(format!(
        "ixy-forwarding-callgrind-{}-{batch}-{count}.out",
        std::process::id()
    ));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .args(TOGGLES)
        // After the toggles: each --toggle-collect resets collect-atstart to no.
        .arg("--collect-atstart=yes")
        .arg(&exe)
        .arg("--child")
        .arg(batch.to_string())
        .arg(count.to_string())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let _ = std::fs::remove_file(&out_file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("valgrind failed: {stderr}"));
    }
    let collected = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no 'Collected' total in callgrind output: {stderr}"))?;
    let forwarded = stdout
        .lines()
        .find_map(|l| l.strip_prefix("forwarded "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("child printed no packet count: {stdout}"))?;
    Ok((collected, forwarded))
}

fn instructions_per_packet(batch: usize) -> Result<f64, String> {
    let (i1, n1) = callgrind(batch, COUNT_SHORT)?;
    let (i2, n2) = callgrind(batch, COUNT_LONG)?;
    Ok((i2 as f64 - i1 as f64) / (n2 as f64 - n1 as f64))
}

fn mpps(batch: usize) -> f64 {
    let mut s = setup();
    run(&mut s, batch, NATIVE_PACKETS / 10); // warm up
    let start = Instant::now();
    let done = run(&mut s, batch, NATIVE_PACKETS);
    done as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let batch = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(32);
        let count = args
            .get(i + 2)
            .and_then(|v| v.parse().ok())
            .unwrap_or(COUNT_SHORT);
        child(batch, count);
        return;
    }
    let use_valgrind = std::env::var_os("IXY_BENCH_NO_VALGRIND").is_none();
    println!(
        "# ixgbe forwarding, 2 modelled 82599 ports, 64-byte frames, both directions: driver \
         cost against a device model, not a card"
    );
    println!(
        "# instructions/packet: callgrind, driver + application only (model toggled out); \
         Mpps: wall clock on this machine, including the model's own work"
    );
    for batch in BATCH_SIZES {
        let ipp = if use_valgrind {
            match instructions_per_packet(batch) {
                Ok(v) => format!("{v:.1}"),
                Err(e) => {
                    eprintln!("batch {batch}: {e}");
                    "n/a".to_string()
                }
            }
        } else {
            "n/a".to_string()
        };
        println!(
            "batch {batch}: {ipp} instructions/packet, {:.1} Mpps",
            mpps(batch)
        );
    }
}
