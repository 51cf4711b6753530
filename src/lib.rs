//! # ixy — userspace network drivers
//!
//! ixy drives network cards from user space: it takes a PCI device away from the kernel,
//! maps its registers, puts descriptor rings and packet buffers in hugepage memory and
//! moves packets in batches, with no system call on the packet path.
//!
//! Drivers, all behind the [`IxyDevice`] trait:
//! * [`virtio`] — virtio-net, legacy (`1af4:1000`) and virtio 1.0 (`1af4:1041`);
//! * [`ixgbe`] — Intel 82599/X520, X540, X550 physical functions;
//! * [`ixgbevf`] — their SR-IOV virtual functions;
//! * [`igb`] — the Intel 82576 physical function (QEMU's `-device igb`);
//! * [`igbvf`] — its SR-IOV virtual functions.
//!
//! Every driver runs through sysfs (as root) or through VFIO and the IOMMU (without root).
//! ixgbe, igb and virtio-net use per-queue MSI-X interrupts (ixgbe also MSI) when an
//! interrupt timeout is set and the device is on vfio-pci; ixgbevf and igbvf always poll
//! (they log a warning when asked for interrupts).
//!
//! Layers, bottom up: [`memory`] (DMA memory, packet pools, [`Packet`]), [`pci`] (finding,
//! claiming and mapping a device through sysfs or VFIO), [`registers`] (register access),
//! [`interrupts`] (eventfd/epoll waits), the descriptor rings, the drivers, and this
//! module's trait and constructor.
//!
//! ## Example: receive, touch, send back
//!
//! ```no_run
//! use std::collections::VecDeque;
//!
//! fn main() -> Result<(), ixy::Error> {
//!     // One rx and one tx queue; no interrupts (busy polling).
//!     let mut dev = ixy::ixy_init("0000:00:04.0", 1, 1, 0)?;
//!     println!("{} at {}: MAC {:02x?}", dev.driver_name(), dev.pci_addr(), dev.mac_addr());
//!
//!     let mut buffer = VecDeque::with_capacity(32);
//!     for _ in 0..1000 {
//!         dev.rx_batch(0, &mut buffer, 32);
//!         for packet in buffer.iter_mut() {
//!             if packet.len() > 48 {
//!                 packet[48] = packet[48].wrapping_add(1);
//!             }
//!         }
//!         dev.tx_batch(0, &mut buffer);
//!         // Packets the tx queue had no room for stay in `buffer`; drop them
//!         // (they return to their pool) or retry in the next round.
//!         buffer.clear();
//!     }
//!
//!     // Transmit freshly built packets from a pool of our own.
//!     let pool = ixy::Mempool::allocate(1024, 2048)?;
//!     let mut out = VecDeque::new();
//!     pool.alloc_batch(&mut out, 32, 60);
//!     for p in out.iter_mut() {
//!         p.fill(0);
//!         p[..6].copy_from_slice(&[0xff; 6]); // broadcast
//!     }
//!     let sent = dev.tx_batch(0, &mut out);
//!     println!("sent {sent}, {} left with the caller", out.len());
//!
//!     let stats = dev.stats();
//!     println!("rx {} packets, tx {} packets", stats.rx_packets, stats.tx_packets);
//!     Ok(())
//! }
//! ```
//!
//! ## Finding a device
//!
//! [`pci::list_nics`] (the `list` example prints it) lists the network-class PCI functions
//! from sysfs, with the driver that would drive each and whether the interface guard would
//! refuse it, without changing anything.
//!
//! ## Threads
//!
//! A device handle (`Box<dyn IxyDevice>`, and each driver's type) is neither `Send` nor
//! `Sync`, like its [`Mempool`]s and [`Packet`]s: it stays on the thread that opened it, and
//! no other thread may use it. Several devices can be driven on several threads, each
//! opened on the thread that drives it.
//!
//! ## Dropping a device
//!
//! Dropping a device quiesces it: its queues are stopped and it is reset, so it does no DMA
//! once the drop returns (a device that does not stop loses bus mastering), and its rings
//! are freed; packets the application still holds keep their pool alive. The NIC is not
//! given back to the kernel: it stays unbound (or bound to vfio-pci) until
//! `scripts/rebind-kernel.sh` rebinds it.
//!
//! ## Testing without hardware
//!
//! The `model` cargo feature adds `ixy::model`, an in-process model of the Intel 82599 that
//! the ixgbe and ixgbevf drivers drive as they would a card; this crate's own tests and
//! benchmark run on it.

//!
//! ## Testing an application without hardware
//!
//! With the `model` feature, `ixy::model::testbed` opens two modelled devices wired to
//! each other — virtio-net or Intel 82599 — with the real drivers on them, and a handle on
//! their wires. A complete test of a forwarding step:
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use std::collections::VecDeque;
//! use ixy::model::{TestDevice, testbed};
//!
//! let mut bed = testbed(TestDevice::Virtio).unwrap(); // or VirtioModern, Ixgbe
//! let frame = [vec![0xff; 6], vec![0x02, 0, 0, 0, 0, 1], vec![0x08, 0x00], vec![7; 46]].concat();
//! bed.traffic.set_capture(1, true);
//! assert!(bed.traffic.inject(0, &frame)); // arrives at device 0 from outside
//! let [a, b] = &mut bed.devices;
//! let mut buf = VecDeque::new();
//! assert_eq!(a.rx_batch(0, &mut buf, 32), 1); // the application's loop
//! assert_eq!(b.tx_batch(0, &mut buf), 1);
//! assert_eq!(bed.traffic.take_transmitted(1), vec![frame]);
//! # }
//! ```

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

pub mod error;
pub mod igb;
pub mod igbvf;
pub(crate) mod intel;
pub mod interrupts;
pub mod ixgbe;
pub mod ixgbevf;
pub mod memory;
#[cfg(feature = "model")]
pub mod model;
pub mod pci;
pub mod queues;
pub mod registers;
#[cfg(test)]
#[path = "../tests/support/testing.rs"]
mod testing;
pub mod virtio;

pub use error::{Error, Result};
pub use memory::{Mempool, Packet};
pub use pci::PciAddress;

/// A network device driven from user space.
///
/// Queues are numbered from 0. Packets move in batches through caller-owned
/// `VecDeque<Packet>`s: reserve their capacity once, and the packet path allocates nothing.
pub trait IxyDevice {
    /// Name of the driver, e.g. `"ixgbe"` or `"virtio"`.
    fn driver_name(&self) -> &str;

    /// PCI address of the device, e.g. `"0000:03:00.0"`.
    fn pci_addr(&self) -> &str;

    /// The device's current MAC address.
    fn mac_addr(&self) -> [u8; 6];

    /// Sets the MAC address the device receives unicast traffic for.
    fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()>;

    /// Link speed in Mbit/s; 0 while the link is down.
    fn link_speed(&self) -> u32;

    /// True while the link is up.
    fn link_up(&self) -> bool {
        self.link_speed() > 0
    }

    /// Enables or disables promiscuous mode (receive frames for any destination MAC).
    fn set_promisc(&mut self, enabled: bool) -> Result<()>;

    /// True if promiscuous mode is on.
    fn promisc(&self) -> bool;

    /// Number of receive queues.
    fn num_rx_queues(&self) -> u16;

    /// Number of transmit queues.
    fn num_tx_queues(&self) -> u16;

    /// Receives up to `num_packets` packets from queue `queue_id`, appending them to
    /// `buffer`. Returns how many were received (0 if none were waiting).
    ///
    /// # Panics
    /// If `queue_id >= self.num_rx_queues()`.
    fn rx_batch(
        &mut self,
        queue_id: u16,
        buffer: &mut VecDeque<Packet>,
        num_packets: usize,
    ) -> usize;

    /// Sends packets from the front of `buffer` on queue `queue_id` until `buffer` is empty
    /// or the queue is full. Returns how many were taken from `buffer`; those not taken
    /// stay there. Packets that can never be sent (empty ones; ones from a pool the device
    /// cannot reach by DMA; on virtio, ones without headroom for the net header) are taken
    /// and dropped rather than block the queue (or make the device read other memory).
    ///
    /// # Panics
    /// If `queue_id >= self.num_tx_queues()`.
    fn tx_batch(&mut self, queue_id: u16, buffer: &mut VecDeque<Packet>) -> usize;

    /// Packet and byte counts since the device was opened or the stats were last reset.
    fn stats(&mut self) -> DeviceStats;

    /// Every counter of [`IxyDevice::stats`] as (name, value) pairs, named like DPDK's
    /// basic extended statistics (see [`DeviceStats::xstats`]), so a tool can print all
    /// that a driver counts without knowing the driver.
    fn xstats(&mut self) -> Vec<(String, u64)> {
        self.stats().xstats()
    }

    /// Sets all counters to zero.
    fn reset_stats(&mut self);

    /// Moves every queue out of the device into handles that can each go to their own
    /// thread; the device stays as the control handle (link, MAC, promiscuous mode,
    /// statistics). See [`queues`]. Drivers that cannot split (all but ixgbe, and ixgbe
    /// with interrupts) return an error and keep their queues.
    fn split(&mut self) -> Result<queues::Queues> {
        Err(queues::unsupported(self.driver_name()))
    }
}

/// Counters of a device, since it was opened or last reset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeviceStats {
    /// Packets received: delivered into the receive rings (dropped ones are in
    /// `rx_dropped`, never here).
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes received (frames without CRC; ixgbe: also of frames dropped for lack of
    /// descriptors, which its octet counter cannot tell apart).
    pub rx_bytes: u64,
    /// Bytes transmitted (frames without CRC).
    pub tx_bytes: u64,
    /// Packets the device dropped on receive (no buffer or no room; ixgbe: MPC and QPRDC).
    pub rx_dropped: u64,
    /// Frames the device received with errors and dropped (ixgbe: CRC errors, length
    /// errors, undersize and oversize frames: CRCERRS, RLEC, RUC, ROC).
    pub rx_errors: u64,
    /// Polls that found a frame on a receive ring but no free buffer in the queue's pool
    /// to give the device in exchange (the frame waits on the ring).
    pub rx_nombuf: u64,
    /// Packets the driver dropped on transmit because they could not be sent: from a pool
    /// in memory the device cannot reach (another [`DmaDomain`](memory::dma::DmaDomain),
    /// e.g. `HeapDma` or another device model's memory), shorter than 17 bytes on the
    /// Intel drivers (the least Linux ixgbe/ixgbevf send), or on virtio with too little
    /// headroom for the net header.
    pub tx_dropped: u64,
    /// Per receive queue, queue 0 first; empty if the driver does not count per queue.
    /// ixgbe reads the 82599's 16 per-queue counters: with more than 16 transmit queues,
    /// the last entry (queue 15) also counts queues 16 and up.
    pub rx_queues: Vec<QueueStats>,
    /// Per transmit queue, as `rx_queues`.
    pub tx_queues: Vec<QueueStats>,
}

/// Counters of one queue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets received or transmitted.
    pub packets: u64,
    /// Their bytes (frames without CRC).
    pub bytes: u64,
}

/// Per-second rates computed from two [`DeviceStats`] snapshots.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Received million packets per second.
    pub rx_mpps: f64,
    /// Received Mbit/s, counting 20 bytes of preamble and gap per frame, plus CRC.
    pub rx_mbit: f64,
    /// Transmitted million packets per second.
    pub tx_mpps: f64,
    /// Transmitted Mbit/s, counting as for `rx_mbit`.
    pub tx_mbit: f64,
}

impl DeviceStats {
    /// All counters as (name, value), named as DPDK's basic extended statistics:
    /// `rx_good_packets`, `tx_good_packets`, `rx_good_bytes`, `tx_good_bytes`,
    /// `rx_missed_errors` (`rx_dropped`), `rx_errors`, `tx_errors` (`tx_dropped`),
    /// `rx_mbuf_allocation_errors` (`rx_nombuf`), then `rx_q<n>_packets`, `rx_q<n>_bytes`
    /// and `tx_q<n>_packets`, `tx_q<n>_bytes` per queue.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        let totals = [
            ("rx_good_packets", self.rx_packets),
            ("tx_good_packets", self.tx_packets),
            ("rx_good_bytes", self.rx_bytes),
            ("tx_good_bytes", self.tx_bytes),
            ("rx_missed_errors", self.rx_dropped),
            ("rx_errors", self.rx_errors),
            ("tx_errors", self.tx_dropped),
            ("rx_mbuf_allocation_errors", self.rx_nombuf),
        ];
        let mut list = Vec::from(totals.map(|(n, v)| (n.to_string(), v)));
        for (dir, queues) in [("rx", &self.rx_queues), ("tx", &self.tx_queues)] {
            for (q, s) in queues.iter().enumerate() {
                list.push((format!("{dir}_q{q}_packets"), s.packets));
                list.push((format!("{dir}_q{q}_bytes"), s.bytes));
            }
        }
        list
    }

    /// Rates between an earlier snapshot `before` and this one, `elapsed` apart.
    pub fn rates_since(&self, before: &DeviceStats, elapsed: Duration) -> Rates {
        let secs = elapsed.as_secs_f64().max(1e-9);
        // Each frame on the wire also carries 4 bytes of CRC, 8 of preamble, 12 of gap.
        let mbit = |bytes: u64, pkts: u64| (bytes + pkts * 24) as f64 * 8.0 / 1e6 / secs;
        let rx_p = self.rx_packets.wrapping_sub(before.rx_packets);
        let tx_p = self.tx_packets.wrapping_sub(before.tx_packets);
        Rates {
            rx_mpps: rx_p as f64 / 1e6 / secs,
            rx_mbit: mbit(self.rx_bytes.wrapping_sub(before.rx_bytes), rx_p),
            tx_mpps: tx_p as f64 / 1e6 / secs,
            tx_mbit: mbit(self.tx_bytes.wrapping_sub(before.tx_bytes), tx_p),
        }
    }
}

/// How to open a device. [`ixy_init`] is the short form.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// PCI address of the device.
    pub pci_addr: String,
    /// Number of receive queues (at least 1). The device spreads received flows over them
    /// (RSS on ixgbe and igb, at most 16; ixgbevf and igbvf take one).
    pub rx_queues: u16,
    /// Number of transmit queues (at least 1).
    pub tx_queues: u16,
    /// Interrupt mode: 0 polls; a positive value lets `rx_batch` on an idle queue sleep up
    /// to that many milliseconds; -1 sleeps until a packet arrives.
    pub interrupt_timeout_ms: i16,
    /// Take the device from its kernel driver even if its interface is in use.
    pub force_unbind: bool,
    /// hugetlbfs mount for DMA memory (default `$IXY_HUGEPAGE_DIR`, else `/mnt/huge`).
    pub hugepage_dir: Option<PathBuf>,
    /// Refuse devices that are not bound to vfio-pci (also set by `IXY_VFIO=1`). Without
    /// root, VFIO is always required.
    pub require_vfio: bool,
}

impl DeviceConfig {
    /// A configuration for the device at `pci_addr`: one rx and one tx queue, polling.
    pub fn new(pci_addr: &str) -> Self {
        DeviceConfig {
            pci_addr: pci_addr.to_string(),
            rx_queues: 1,
            tx_queues: 1,
            interrupt_timeout_ms: 0,
            force_unbind: false,
            hugepage_dir: None,
            require_vfio: false,
        }
    }

    /// Sets the number of receive and transmit queues.
    pub fn queues(mut self, rx: u16, tx: u16) -> Self {
        self.rx_queues = rx;
        self.tx_queues = tx;
        self
    }

    /// Sets the interrupt timeout (see the field).
    pub fn interrupt_timeout_ms(mut self, timeout: i16) -> Self {
        self.interrupt_timeout_ms = timeout;
        self
    }

    /// Sets the hugetlbfs mount for DMA memory.
    pub fn hugepage_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.hugepage_dir = Some(dir.into());
        self
    }

    /// The DMA allocator this configuration asks for.
    pub(crate) fn dma(&self) -> memory::Hugepages {
        let dir = self.hugepage_dir.as_ref();
        dir.map_or_else(memory::Hugepages::from_env, memory::Hugepages::new)
    }

    /// Probes the device and opens it with the matching driver.
    pub fn open(&self) -> Result<Box<dyn IxyDevice>> {
        if self.rx_queues == 0 || self.tx_queues == 0 {
            return Err(Error::config(format!(
                "{} rx and {} tx queues requested: a device needs at least one of each",
                self.rx_queues, self.tx_queues
            )));
        }
        let device = pci::PciDevice::open(&self.pci_addr)?;
        use pci::DriverKind as K;
        Ok(match pci::driver_for(device.id()) {
            Some(K::Virtio) => Box::new(virtio::VirtioDevice::open(device, self)?),
            Some(K::Ixgbe) => Box::new(ixgbe::IxgbeDevice::open(device, self)?),
            Some(K::Ixgbevf) => Box::new(ixgbevf::IxgbevfDevice::open(device, self)?),
            Some(K::Igb) => Box::new(igb::IgbDevice::open(device, self)?),
            Some(K::Igbvf) => Box::new(igbvf::IgbvfDevice::open(device, self)?),
            None => return Err(device.id().unsupported()),
        })
    }
}

/// Formats a MAC address as `52:54:00:12:34:56` (for the log messages of every driver
/// and the example programs).
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Queue `id` of a driver's `queues` (`kind` is "rx" or "tx"); an id out of range is the
/// panic [`IxyDevice::rx_batch`] and [`IxyDevice::tx_batch`] document, with a message
/// naming the id and the queue count.
#[inline(always)]
pub(crate) fn queue_mut<'a, T>(queues: &'a mut [T], id: u16, kind: &str) -> &'a mut T {
    let count = queues.len();
    match queues.get_mut(usize::from(id)) {
        Some(queue) => queue,
        None => no_such_queue(kind, id, count),
    }
}

#[cold]
#[inline(never)]
fn no_such_queue(kind: &str, id: u16, count: usize) -> ! {
    panic!(
        "{kind} queue {id} does not exist: the device has {count} {kind} queues (ids 0 to {count} - 1)"
    )
}

/// Opens the device at `pci_addr` with `rx_queues` receive and `tx_queues` transmit queues.
///
/// `interrupt_timeout` is in milliseconds: 0 polls (see [`DeviceConfig`]). The driver is
/// chosen from the device's PCI vendor and device id; an unknown device is an error.
pub fn ixy_init(
    pci_addr: &str,
    rx_queues: u16,
    tx_queues: u16,
    interrupt_timeout: i16,
) -> Result<Box<dyn IxyDevice>> {
    DeviceConfig::new(pci_addr)
        .queues(rx_queues, tx_queues)
        .interrupt_timeout_ms(interrupt_timeout)
        .open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_range_queue_id_panics_naming_the_id_and_the_count() {
        let mut queues = [10, 11];
        *queue_mut(&mut queues, 1, "rx") += 1;
        assert_eq!(queues, [10, 12]);
        let panic = std::panic::catch_unwind(move || *queue_mut(&mut queues, 2, "tx"));
        let msg = *panic.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.starts_with("tx queue 2 does not exist"), "{msg}");
        assert!(msg.contains("has 2 tx queues"), "{msg}");
    }

    #[test]
    fn mac_addresses_are_printed_as_six_hex_pairs() {
        let mac = [0x52, 0x54, 0x00, 0x0a, 0xbc, 0xff];
        assert_eq!(format_mac(&mac), "52:54:00:0a:bc:ff");
    }

    #[test]
    fn rates_count_framing_overhead() {
        let before = DeviceStats::default();
        let after = DeviceStats {
            rx_packets: 1_000_000,
            rx_bytes: 60_000_000,
            tx_packets: 500_000,
            tx_bytes: 30_000_000,
            ..Default::default()
        };
        let r = after.rates_since(&before, Duration::from_secs(2));
        assert!((r.rx_mpps - 0.5).abs() < 1e-9);
        assert!((r.tx_mpps - 0.25).abs() < 1e-9);
        // (60 + 24) bytes * 8 bits * 0.5 Mpps = 336 Mbit/s
        assert!((r.rx_mbit - 336.0).abs() < 1e-6, "{}", r.rx_mbit);
        assert!((r.tx_mbit - 168.0).abs() < 1e-6);
    }

    #[test]
    fn zero_queues_are_refused_before_touching_any_device() {
        let err = DeviceConfig::new("0000:00:00.0")
            .queues(0, 1)
            .open()
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains("0 rx and 1 tx queues"), "{err}");
    }
}
