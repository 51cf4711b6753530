//! Code for the Intel 10 GbE drivers (ixgbe physical functions and ixgbevf virtual
//! functions).
//!
//! * [`ring`] — the advanced receive and transmit descriptor rings (82599 datasheet 7.1.6
//!   and 7.2.3.2.4), used by both drivers. The PF and the VF use the same descriptor
//!   formats; only the register offsets of a queue differ, and the rings take those as
//!   parameters.
//! * [`queue`] — pointing a queue at a ring and enabling it, given the queue's register
//!   offsets; used by ixgbevf (ixgbe programs its queues itself).
//! * [`mailbox`] — the PF/VF mailbox, VF side (82599 datasheet 7.10.2, SR-IOV support),
//!   used by ixgbevf.

pub(crate) mod mailbox;
pub(crate) mod queue;
pub(crate) mod ring;

use crate::DeviceConfig;
use crate::error::Result;
use crate::pci::PciDevice;
use crate::registers::MmioRegion;

/// Takes `pci` from its kernel driver (as `cfg` allows), lets it master the bus and maps
/// its BAR0, where a VF's registers are (used by ixgbevf; ixgbe claims its PF itself).
pub(crate) fn claim_bar0(pci: &PciDevice, cfg: &DeviceConfig) -> Result<MmioRegion> {
    pci.unbind(cfg.force_unbind)?;
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
        log::error!("{name}: bus mastering not disabled either; leaking the rings and buffers");
        std::mem::forget(std::mem::take(rx));
        std::mem::forget(std::mem::take(tx));
    }
}
