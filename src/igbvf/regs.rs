//! Registers of an Intel 82576 virtual function used by the driver (82576 datasheet 8.25,
//! "Virtual Function Device Registers"; offsets from Linux
//! `drivers/net/ethernet/intel/igbvf/regs.h` and `mbx.h`). Where a VF register has the
//! layout of the PF's (CTRL.RST, STATUS, SRRCTL, RXDCTL/TXDCTL), the driver uses the bit
//! definitions of [`crate::igb::regs`].

use crate::intel::mailbox::MailboxAt;
use crate::intel::queue::{QueueRegs, queue_block};

// VF Control (VTCTRL) and its RST bit, which resets the VF's queues, are the PF's CTRL
// and CTRL.RST: `crate::intel::regs`.
/// Device Status: the PF's, read-only (link up and speed).
pub const STATUS: usize = 0x00008;
/// VF Extended Interrupt Mask Clear (VTEIMC); its three vectors are bits 2:0.
pub const EIMC: usize = 0x01528;
/// All of the VF's vectors.
pub const EIMC_ALL: u32 = 0x7;

/// The VF's mailbox: V2PMAILBOX at 0x0C40, VMBMEM at 0x0800 (bits and protocol as the
/// 82599 VF's VFMAILBOX).
pub(crate) const MAILBOX: MailboxAt = MailboxAt {
    ctl: 0x00c40,
    mem: 0x00800,
};

/// Ring registers of VF receive queue `n` (0 or 1: RDBAL ... RXDCTL from 0x02800 + 0x100 n).
pub(crate) const fn rx_queue(n: usize) -> QueueRegs {
    queue_block(0x02800 + 0x100 * n)
}

/// SRRCTL of VF receive queue 0, the one the driver uses.
pub const SRRCTL0: usize = 0x0280c;

/// Ring registers of VF transmit queue `n` (TDBAL ... TXDCTL from 0x03800 + 0x100 n).
pub(crate) const fn tx_queue(n: usize) -> QueueRegs {
    queue_block(0x03800 + 0x100 * n)
}

// Statistics: 32-bit rolling counters, not cleared on read.
/// VF Good Packets Received Count.
pub const VFGPRC: usize = 0x00f10;
/// VF Good Packets Transmitted Count.
pub const VFGPTC: usize = 0x00f14;
/// VF Good Octets Received Count.
pub const VFGORC: usize = 0x00f18;
/// VF Good Octets Transmitted Count.
pub const VFGOTC: usize = 0x00f34;
