//! Pieces shared by the example programs: option parsing from the environment, stats lines,
//! and a Ctrl-C/SIGTERM flag so programs shut their devices down cleanly.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ixy::{DeviceConfig, DeviceStats, IxyDevice};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Sets up logging (RUST_LOG overrides the default level, info) and SIGINT/SIGTERM handling.
pub fn init() {
    let _ = simple_logger::SimpleLogger::new()
        .with_level(log::LevelFilter::Info)
        .env()
        .init();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// True once SIGINT or SIGTERM arrived.
pub fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Environment variables every program that opens a device reads (through this module or
/// the library).
const DEVICE_ENV: &[&str] = &[
    "IXY_PROMISC=0 (promiscuous mode off)",
    "IXY_FORCE_UNBIND=1 (take a device whose kernel interface is in use)",
    "IXY_INTERRUPT_TIMEOUT_MS=n (let idle queues sleep up to n ms; VFIO only)",
    "IXY_HUGEPAGE_DIR=dir (hugetlbfs mount, default /mnt/huge)",
    "IXY_VFIO=1 (only devices bound to vfio-pci)",
    "IXY_VIRTIO_MODERN=1 (drive a transitional virtio device as virtio 1.0)",
    "RUST_LOG=debug (more output)",
];

/// A program's command line: its synopsis and the environment variables it reads.
pub struct Usage {
    /// `name <args>`.
    pub synopsis: &'static str,
    /// Variables the program reads itself, `NAME=value (what it does)`.
    pub env: &'static [&'static str],
    /// The program opens devices, so it also reads the device variables.
    pub device_env: bool,
}

impl Usage {
    /// Prints `error: msg`, the usage and the environment to stderr and exits with status 2.
    pub fn exit(&self, msg: &str) -> ! {
        let device_env = if self.device_env { DEVICE_ENV } else { &[] };
        let env: Vec<&str> = self.env.iter().chain(device_env).copied().collect();
        eprintln!("error: {msg}");
        eprintln!("usage: {}", self.synopsis);
        if env.is_empty() {
            eprintln!("environment: none read");
        } else {
            eprintln!("environment:\n  {}", env.join("\n  "));
        }
        std::process::exit(2);
    }

    /// The configuration for the device at `pci` from the environment; a malformed address
    /// or variable is a usage error (exit 2), found before any device is touched.
    pub fn device_config(&self, pci: &str) -> DeviceConfig {
        if let Err(e) = pci.parse::<ixy::PciAddress>() {
            self.exit(&e.to_string());
        }
        let number = "a number from -1 to 32767";
        let timeout = self.env("IXY_INTERRUPT_TIMEOUT_MS", 0, number, |v| v.parse().ok());
        let mut cfg = DeviceConfig::new(pci).interrupt_timeout_ms(timeout);
        cfg.force_unbind = env_flag("IXY_FORCE_UNBIND").unwrap_or(false);
        cfg
    }

    /// Environment variable `name` as `parse` reads it, `default` if it is unset; a value
    /// `parse` refuses is a usage error (`NAME=value is not <what>`).
    pub fn env<T>(
        &self,
        name: &str,
        default: T,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> T {
        match std::env::var(name) {
            Ok(v) => parse(&v).unwrap_or_else(|| self.exit(&format!("{name}={v} is not {what}"))),
            Err(_) => default,
        }
    }

    /// Parses `arg` as a count, or exits with the usage.
    pub fn count(&self, arg: &str) -> u64 {
        arg.parse()
            .unwrap_or_else(|_| self.exit(&format!("'{arg}' is not a packet count")))
    }
}

/// Prints an error and exits with status 1.
pub fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("error: {e}");
    std::process::exit(1);
}

fn env_flag(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| !matches!(v.as_str(), "0" | "false" | "no" | "off"))
}

/// Opens a device with one queue pair as `cfg` says and sets promiscuous mode from the
/// environment; on failure prints the error and exits with status 1.
pub fn open(cfg: &DeviceConfig) -> Box<dyn IxyDevice> {
    let mut dev = cfg.open().unwrap_or_else(|e| fail(e));
    let promisc = env_flag("IXY_PROMISC").unwrap_or(true);
    if dev.promisc() != promisc
        && let Err(e) = dev.set_promisc(promisc)
    {
        fail(e);
    }
    log::info!(
        "{} {}: MAC {}, link {} Mbit/s, promiscuous {}",
        dev.driver_name(),
        dev.pci_addr(),
        ixy::format_mac(&dev.mac_addr()),
        dev.link_speed(),
        if dev.promisc() { "on" } else { "off" }
    );
    dev
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Per-second stats printing for a set of devices.
pub struct StatsPrinter {
    last: Instant,
    before: Vec<DeviceStats>,
    app_before: Vec<u64>,
}

impl StatsPrinter {
    /// Starts counting now.
    pub fn new(devs: &mut [&mut Box<dyn IxyDevice>]) -> Self {
        StatsPrinter {
            last: Instant::now(),
            before: devs.iter_mut().map(|d| d.stats()).collect(),
            app_before: vec![0; devs.len()],
        }
    }

    /// Prints one line per device if a second has passed since the last lines, and
    /// returns the seconds since then. `app_tx_drops[i]` counts (cumulatively) the packets
    /// the application dropped because device `i`'s transmit queue was full (none: `&[]`).
    pub fn tick(
        &mut self,
        devs: &mut [&mut Box<dyn IxyDevice>],
        app_tx_drops: &[u64],
    ) -> Option<f64> {
        let elapsed = self.last.elapsed();
        if elapsed < Duration::from_secs(1) {
            return None;
        }
        self.last = Instant::now();
        for (i, (dev, before)) in devs.iter_mut().zip(self.before.iter_mut()).enumerate() {
            let now = dev.stats();
            let app = app_tx_drops.get(i).copied().unwrap_or(0);
            let app_delta = app - std::mem::replace(&mut self.app_before[i], app);
            let r = now.rates_since(before, elapsed);
            println!(
                "[{}] RX: {:.4} Mpps, {:.2} Mbit/s | TX: {:.4} Mpps, {:.2} Mbit/s | \
                 rx dropped {}, tx dropped {}",
                dev.pci_addr(),
                r.rx_mpps,
                r.rx_mbit,
                r.tx_mpps,
                r.tx_mbit,
                now.rx_dropped - before.rx_dropped,
                now.tx_dropped - before.tx_dropped + app_delta
            );
            *before = now;
        }
        Some(elapsed.as_secs_f64())
    }
}
