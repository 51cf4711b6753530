//! Code for the Intel drivers: ixgbe and igb (physical functions), ixgbevf and igbvf
//! (virtual functions).
//!
//! * [`ring`] — the advanced receive and transmit descriptor rings (82599 datasheet 7.1.6
//!   and 7.2.3.2.4), used by every Intel driver. PFs and VFs use the same descriptor
//!   formats; only the register offsets of a queue differ, and the rings take those as
//!   parameters.
//! * [`queue`] — pointing a queue at a ring and enabling it, given the queue's register
//!   offsets; used by ixgbevf, igb and igbvf (ixgbe programs its queues itself).
//! * [`mailbox`] — the PF/VF mailbox, VF side (82599 datasheet 7.10.2, SR-IOV support;
//!   the 82576's has the same protocol at other offsets), used by ixgbevf and igbvf.
//! * [`irq`] — the MSI-X receive-interrupt path of ixgbe and igb.

pub(crate) mod irq;
pub(crate) mod mailbox;
pub(crate) mod queue;
pub(crate) mod ring;

use crate::DeviceConfig;
use crate::error::Result;
use crate::pci::{DriverKind, PciDevice};
use crate::registers::MmioRegion;

/// Claims `pci` for a driver of `kind` ([`PciDevice::claim`]), lets it master the bus and
/// maps its BAR0, where the registers are (used by ixgbevf, igb, igbvf; ixgbe claims its
/// PF itself).
pub(crate) fn claim_bar0(
    pci: &PciDevice,
    cfg: &DeviceConfig,
    kind: DriverKind,
) -> Result<MmioRegion> {
    pci.claim(cfg, &[kind], |_| Ok(()))?;
    pci.enable_bus_master()?;
    pci.map_bar(0)
}

/// Checks the queue counts (1 to `max` of each) and that a receive pool can fill its ring.
pub(crate) fn check_options(driver: &str, o: &crate::ixgbe::IxgbeOptions, max: u16) -> Result<()> {
    for (what, n) in [("rx", o.rx_queues), ("tx", o.tx_queues)] {
        if n == 0 || n > max {
            return Err(crate::Error::config(format!(
                "{n} {what} queues requested: {driver} supports 1 to {max}"
            )));
        }
    }
    if (o.pool_entries as usize) < o.rx_ring_size {
        return Err(crate::Error::config(format!(
            "receive pool of {} buffers is smaller than the receive ring ({})",
            o.pool_entries, o.rx_ring_size
        )));
    }
    Ok(())
}

/// Waits up to `timeout` for `speed()` to turn non-zero, never forever. A link still down
/// is an error if `require`, else a warning (`state()` names the register that shows it).
pub(crate) fn wait_for_link(
    name: &str,
    timeout: std::time::Duration,
    require: bool,
    speed: impl Fn() -> u32,
    state: impl Fn() -> String,
) -> Result<()> {
    let start = std::time::Instant::now();
    while speed() == 0 {
        if start.elapsed() >= timeout {
            let msg = format!(
                "link did not come up within {} ms ({}); check the cable and the link partner",
                timeout.as_millis(),
                state()
            );
            if require {
                return Err(crate::Error::device(name, msg));
            }
            log::warn!("{name}: {msg}; continuing with the link down");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// After a device could not be stopped (its reset failed): takes bus mastering away, and
/// if even that fails never gives the rings and buffers back (without an IOMMU the memory
/// would be reused while the device may still write it).
pub(crate) fn fence_off(
    name: &str,
    pci: Option<&PciDevice>,
    rx: &mut Vec<ring::RxRing>,
    tx: &mut Vec<ring::TxRing>,
) {
    if !matches!(pci.map(PciDevice::disable_bus_master), Some(Ok(()))) {
        log::error!(
            "{name}: queues still running (or not known to have stopped) and bus mastering \
             not disabled either; leaking the rings and buffers"
        );
        std::mem::forget(std::mem::take(rx));
        std::mem::forget(std::mem::take(tx));
    }
}

/// The RSS key: the 40-byte default key of the Microsoft RSS specification (6d 5a 56 da
/// 25 5b ...), which the 82599 datasheet's verification suite (7.1.2.8.3) and DPDK's ixgbe
/// also use, as RSSRK(0..9) values (first key byte in the low byte, 8.2.3.7.14; the
/// 82576's RSSRK has the same layout). Used by ixgbe and igb.
#[rustfmt::skip]
pub(crate) const RSS_KEY: [u32; 10] = [
    0xda56_5a6d, 0xc20e_5b25, 0x3d25_6741, 0xb08f_a343, 0xcb2b_cad0, 0xb430_7bae, 0xa32d_cb77,
    0x0cf2_3080, 0x3bb7_426a, 0xfa01_acbe,
];

/// Register `n` of a table of four 8-bit fields per register (RETA, RQSMR, TQSM): field
/// `i` (bits 8i + 7:8i) holds `entry(4n + i)`.
pub(crate) fn byte_fields(n: usize, entry: impl Fn(usize) -> usize) -> u32 {
    (0..4).fold(0, |r, i| r | (entry(4 * n + i) as u32) << (8 * i))
}

/// A rolling hardware counter `bits` wide, accumulated into 64 bits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Rolling {
    /// The last reading.
    pub(crate) last: u64,
    /// Everything counted since the first reading.
    pub(crate) total: u64,
}

impl Rolling {
    /// Adds the distance from the last reading to `now`, modulo 2^`bits`.
    pub(crate) fn advance(&mut self, now: u64, bits: u32) {
        let mask = (1u64 << bits) - 1;
        self.total += now.wrapping_sub(self.last) & mask;
        self.last = now;
    }
}

/// A random unicast, locally administered MAC address (bit 0 of the first byte clear,
/// bit 1 set), from the process's randomly keyed std hasher (no extra dependency; this
/// needs uniqueness, not secrecy).
pub(crate) fn random_local_mac() -> [u8; 6] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let b = h.finish().to_le_bytes();
    [(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}
