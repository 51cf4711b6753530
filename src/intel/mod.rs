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
