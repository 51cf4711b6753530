//! Forwarding benchmark: the ixgbe and virtio drivers' cost per forwarded packet, measured
//! against the 82599 and virtio device models (there is no card here).
//!
//! Two modelled ports (82599 ports, or virtio-net functions), each fed by a model traffic
//! source with 64-byte frames (60 bytes + CRC). The forwarder loop receives a batch on
//! port 0, touches one byte of each packet, sends the batch on port 1 (packets that don't
//! fit are dropped), and the same in the other direction — the loop of ixy's `ixy-fwd`.
//!
//! For each batch size 1, 2, 4, ..., 256 it prints one line per driver:
//!
//! ```text
//! batch 32: 98.7 instructions/packet, 41.2 Mpps
//! virtio batch 32: 104.2 instructions/packet, 12.0 Mpps
//! virtio-modern batch 32: 104.2 instructions/packet, 12.0 Mpps
//! ```
//!
//! (`batch`: ixgbe; `virtio`: the legacy interface; `virtio-modern`: virtio 1.0.)
//!
//! Then queues on threads ([`ixy::queues`]): both ports split into `n` queue pairs, one
//! source per receive queue (a flow RSS steers to it), and `n` threads, thread `q`
//! forwarding at batch 32 between queue pair `q` of the two ports:
//!
//! ```text
//! threads 1: 9.1 Mpps, 103.0 instructions/packet
//! threads 2: 12.4 Mpps, 104.1 instructions/packet
//! threads 2/1: 1.36 x the packet rate
//! ```
//!
//! The model serialises every register access of all threads behind one lock (it is the
//! "device"), and this machine has 2 cores shared with the rest of the system, so the
//! ratio is of this setup, not of a card.
//!
//! * instructions/packet: counted by callgrind in driver and application code only. The
//!   model's entry points (`<ixy::model::PortRegisters as RegisterSpace>::{read32,write32}`,
//!   `<ixy::model::virtio::VirtioRegisters as VirtioBar>::{read,write}`,
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
use ixy::model::{Model, PortRegisters, VirtioModel, VirtioOptions};
use ixy::queues::{RxQueue, TxQueue};
use ixy::virtio::VirtioDevice;
use ixy::{DeviceConfig, IxyDevice, Packet};

const BATCH_SIZES: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// Packet counts of the two callgrind runs per batch size.
const COUNT_SHORT: u64 = 100_000;
const COUNT_LONG: u64 = 300_000;

/// Packets per native timing run.
const NATIVE_PACKETS: u64 = 4_000_000;

/// The callgrind patterns matching every entry point from driver code into the models.
const TOGGLES: [&str; 4] = [
    "--toggle-collect=<ixy::model::PortRegisters as ixy::registers::RegisterSpace>::*",
    "--toggle-collect=<ixy::model::virtio::VirtioRegisters as ixy::virtio::transport::VirtioBar>::*",
    "--toggle-collect=<ixy::model::dma::ModelDma as ixy::memory::dma::DmaAllocator>::*",
    "--toggle-collect=ixy::model::Model::*",
];

/// Two modelled ports with drivers open, each fed by a source; the model stays alive.
struct Setup<D> {
    _model: Box<dyn std::any::Any>,
    devs: [D; 2],
}

/// The frame the sources send: 60 bytes, broadcast.
fn template() -> Vec<u8> {
    let mut template = vec![0u8; 60];
    template[..6].copy_from_slice(&[0xff; 6]);
    template[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    template[12..14].copy_from_slice(&[0x08, 0x00]);
    template
}

fn setup_ixgbe() -> Setup<IxgbeDevice<PortRegisters>> {
    let model = Model::new();
    let ports = [model.add_port(), model.add_port()];
    let options = IxgbeOptions::default().link_timeout(Duration::from_secs(2));
    let open = |p| {
        model
            .ixgbe(p, &options)
            .expect("ixgbe init against the model")
    };
    let devs = [open(&ports[0]), open(&ports[1])];
    for p in &ports {
        model.attach_source(p, template(), None);
    }
    Setup {
        _model: Box::new(model),
        devs,
    }
}

fn setup_virtio(opts: VirtioOptions) -> Setup<VirtioDevice> {
    let model = VirtioModel::new();
    let nets = [model.add_device(&opts), model.add_device(&opts)];
    let open = |n: &ixy::model::VirtioNet| {
        model
            .virtio(n, &DeviceConfig::new("model"))
            .expect("virtio init against the model")
    };
    let devs = [open(&nets[0]), open(&nets[1])];
    for n in &nets {
        model.attach_source(n, template(), None);
    }
    Setup {
        _model: Box::new(model),
        devs,
    }
}

/// One direction of the forwarder: rx on `rx`, touch, tx on `tx`, drop what did not fit.
#[inline(never)]
fn forward<D: IxyDevice>(rx: &mut D, tx: &mut D, buf: &mut VecDeque<Packet>, batch: usize) -> u64 {
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
fn run<D: IxyDevice>(s: &mut Setup<D>, batch: usize, count: u64) -> u64 {
    let mut buf = VecDeque::with_capacity(batch);
    let mut done = 0;
    let [a, b] = &mut s.devs;
    while done < count {
        done += forward(a, b, &mut buf, batch);
        done += forward(b, a, &mut buf, batch);
    }
    done
}

/// The drivers measured: the name that starts their lines ("" for ixgbe).
const DRIVERS: [&str; 3] = ["", "virtio", "virtio-modern"];

/// Forwards `count` packets at `batch` with `driver` (natively: `timed` also warms up and
/// returns the rate in Mpps; else the exact count forwarded).
fn forward_with(driver: &str, batch: usize, count: u64, timed: bool) -> f64 {
    fn go<D: IxyDevice>(mut s: Setup<D>, batch: usize, count: u64, timed: bool) -> f64 {
        if !timed {
            return run(&mut s, batch, count) as f64;
        }
        run(&mut s, batch, count / 10); // warm up
        let start = Instant::now();
        let done = run(&mut s, batch, count);
        done as f64 / start.elapsed().as_secs_f64() / 1e6
    }
    match driver {
        "virtio" => go(setup_virtio(VirtioOptions::legacy()), batch, count, timed),
        "virtio-modern" => go(setup_virtio(VirtioOptions::modern()), batch, count, timed),
        _ => go(setup_ixgbe(), batch, count, timed),
    }
}

/// Threads of the scaling lines.
const THREADS: [u16; 2] = [1, 2];

/// A 60-byte UDP frame of flow `sport` (the flows RSS spreads over the queues).
fn udp_template(sport: u16) -> Vec<u8> {
    let mut f = template();
    f[14] = 0x45; // IPv4, 20-byte header
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[23] = 17; // UDP
    f[26..34].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&4789u16.to_be_bytes());
    f
}

/// Both ports split into `n` queue pairs, with a source for each receive queue; the
/// devices (control handles) and the model stay alive in the first two values.
#[allow(clippy::type_complexity)]
fn setup_threads(
    n: u16,
) -> (
    Setup<IxgbeDevice<PortRegisters>>,
    Vec<[(RxQueue, TxQueue); 2]>,
) {
    let model = Model::new();
    let ports = [model.add_port(), model.add_port()];
    let options = IxgbeOptions::default()
        .queues(n, n)
        .link_timeout(Duration::from_secs(2));
    let open = |p| {
        model
            .ixgbe(p, &options)
            .expect("ixgbe init against the model")
    };
    let mut devs = [open(&ports[0]), open(&ports[1])];
    for p in &ports {
        for q in 0..n as usize {
            let flow = (1024..)
                .map(udp_template)
                .find(|f| model.rx_queue_of(p, f) == q);
            model.attach_source(p, flow.unwrap(), None);
        }
    }
    let [a, b] = devs.each_mut().map(|d| d.split().expect("split"));
    let pairs = a.rx.into_iter().zip(a.tx).zip(b.rx.into_iter().zip(b.tx));
    let pairs = pairs
        .map(|((ra, ta), (rb, tb))| [(ra, tb), (rb, ta)])
        .collect();
    let setup = Setup {
        _model: Box::new(model),
        devs,
    };
    (setup, pairs)
}

/// Forwards `count` packets on `n` threads (each about `count / n`), returning the exact
/// count forwarded (and with `timed`, after a warm-up, the rate in Mpps instead).
fn forward_threads(n: u16, count: u64, timed: bool) -> f64 {
    let (_setup, pairs) = setup_threads(n);
    let share = count / u64::from(n);
    let run = |mut pair: [(RxQueue, TxQueue); 2]| {
        let mut buf = VecDeque::with_capacity(32);
        let mut one = |(rx, tx): &mut (RxQueue, TxQueue)| {
            let k = rx.rx_batch(&mut buf, 32);
            tx.tx_batch(&mut buf);
            buf.clear();
            k as u64
        };
        let mut warm = 0; // a tenth of the share first, when timed
        while timed && warm < share / 10 {
            warm += one(&mut pair[0]) + one(&mut pair[1]);
        }
        let (start, mut done) = (Instant::now(), 0);
        while done < share {
            done += one(&mut pair[0]) + one(&mut pair[1]);
        }
        (done, start.elapsed())
    };
    let results: Vec<(u64, Duration)> = std::thread::scope(|s| {
        let threads: Vec<_> = pairs.into_iter().map(|p| s.spawn(move || run(p))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let done: u64 = results.iter().map(|r| r.0).sum();
    if !timed {
        return done as f64;
    }
    let slowest = results.iter().map(|r| r.1).max().unwrap();
    done as f64 / slowest.as_secs_f64() / 1e6
}

/// Child mode: forward `count` packets at `batch` and print the exact count forwarded.
fn child(driver: &str, batch: usize, count: u64) {
    let done = match driver.strip_prefix("threads-") {
        Some(n) => forward_threads(n.parse().expect("thread count"), count, false),
        None => forward_with(driver, batch, count, false),
    };
    println!("forwarded {done}");
}

/// Instructions collected by callgrind for one child run, and packets forwarded.
fn callgrind(driver: &str, batch: usize, count: u64) -> Result<(u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out_file = std::env::temp_dir().join(format!(
        "ixy-forwarding-callgrind-{}-{driver}-{batch}-{count}.out",
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
        .arg(if driver.is_empty() { "ixgbe" } else { driver })
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

fn instructions_per_packet(driver: &str, batch: usize) -> Result<f64, String> {
    let (i1, n1) = callgrind(driver, batch, COUNT_SHORT)?;
    let (i2, n2) = callgrind(driver, batch, COUNT_LONG)?;
    Ok((i2 as f64 - i1 as f64) / (n2 as f64 - n1 as f64))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let driver = args.get(i + 1).map_or("ixgbe", String::as_str);
        let batch = args.get(i + 2).and_then(|v| v.parse().ok()).unwrap_or(32);
        let count = args
            .get(i + 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(COUNT_SHORT);
        child(driver, batch, count);
        return;
    }
    let use_valgrind = std::env::var_os("IXY_BENCH_NO_VALGRIND").is_none();
    println!(
        "# forwarding, 64-byte frames, both directions, between 2 modelled 82599 ports \
         (`batch`: ixgbe) or 2 modelled virtio-net functions (`virtio`: legacy, \
         `virtio-modern`: virtio 1.0): driver cost against a device model, not a card"
    );
    println!(
        "# instructions/packet: callgrind, driver + application only (model toggled out); \
         Mpps: wall clock on this machine, including the model's own work"
    );
    for driver in DRIVERS {
        let prefix = if driver.is_empty() {
            String::new()
        } else {
            format!("{driver} ")
        };
        for batch in BATCH_SIZES {
            let ipp = if use_valgrind {
                match instructions_per_packet(driver, batch) {
                    Ok(v) => format!("{v:.1}"),
                    Err(e) => {
                        eprintln!("{prefix}batch {batch}: {e}");
                        "n/a".to_string()
                    }
                }
            } else {
                "n/a".to_string()
            };
            let mpps = forward_with(driver, batch, NATIVE_PACKETS, true);
            println!("{prefix}batch {batch}: {ipp} instructions/packet, {mpps:.1} Mpps");
        }
    }
    let mut rates = Vec::new();
    for n in THREADS {
        let ipp = if use_valgrind {
            instructions_per_packet(&format!("threads-{n}"), 32).map_or_else(
                |e| {
                    eprintln!("threads {n}: {e}");
                    "n/a".into()
                },
                |v| format!("{v:.1}"),
            )
        } else {
            "n/a".to_string()
        };
        let mpps = forward_threads(n, NATIVE_PACKETS, true);
        println!("threads {n}: {mpps:.1} Mpps, {ipp} instructions/packet");
        rates.push(mpps);
    }
    println!("threads 2/1: {:.2} x the packet rate", rates[1] / rates[0]);
}
