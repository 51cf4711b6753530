//! Virtual function registers used by the driver, named as in the Intel 82599 10 GbE
//! Controller Datasheet, section 8.3 ("Virtual Function registers"; the mailbox registers
//! are in `intel::mailbox`, 8.3.5). Offsets cross-checked against Linux
//! `drivers/net/ethernet/intel/ixgbevf/regs.h`. The X540 and X550 VFs use the same layout.
//!
//! A VF sees only its own queues, numbered from 0; the device maps them onto the queues of
//! its pool. Where a VF register has the layout of a PF register (VFLINKS and LINKS,
//! VFSRRCTL and SRRCTL, VFRXDCTL/VFTXDCTL and RXDCTL/TXDCTL), the driver uses the PF's bit
//! definitions from [`crate::ixgbe::regs`].

use crate::intel::queue::{QueueRegs, queue_block};

// VFCTRL and VFCTRL.RST (8.3, general registers) are the PF's CTRL and CTRL.RST:
// `crate::intel::regs`.
/// VF Link Status: the PF's LINKS, read-only (8.3, general registers).
pub const VFLINKS: usize = 0x00010;

/// VF Extended Interrupt Mask Clear (8.3, interrupt registers).
pub const VTEIMC: usize = 0x0010c;
/// Its three causes: two queue vectors and the mailbox (Linux `IXGBE_VF_IRQ_CLEAR_MASK`).
pub const VTEIMC_ALL: u32 = 0x7;

/// Ring registers of VF receive queue `n` (8.3, receive registers: VFRDBAL, VFRDBAH,
/// VFRDLEN, VFRDH, VFRDT, VFRXDCTL in a block per queue from 0x01000).
pub(crate) const fn rx_queue(n: usize) -> QueueRegs {
    queue_block(0x01000 + 0x40 * n)
}

/// VF Split Receive Control of queue `n` (in the receive queue block, +0x14).
pub const fn vfsrrctl(n: usize) -> usize {
    0x01014 + 0x40 * n
}

/// Ring registers of VF transmit queue `n` (8.3, transmit registers: VFTDBAL, VFTDBAH,
/// VFTDLEN, VFTDH, VFTDT, VFTXDCTL in a block per queue from 0x02000).
pub(crate) const fn tx_queue(n: usize) -> QueueRegs {
    queue_block(0x02000 + 0x40 * n)
}

/// VFTXDCTL thresholds as the Linux VF sets them: PTHRESH 32 (bits 6:0), HTHRESH 1
/// (14:8), WTHRESH 8 (22:16).
pub const VFTXDCTL_THRESH: u32 = 32 | 1 << 8 | 8 << 16;

// Statistics (8.3, statistics registers): rolling counters, not cleared on read.
/// VF Good Packets Received Count (32 bits).
pub const VFGPRC: usize = 0x0101c;
/// VF Good Octets Received Count: LSB (bits 31:0) and MSB (bits 35:32) registers.
pub const VFGORC: [usize; 2] = [0x01020, 0x01024];
/// VF Good Packets Transmitted Count (32 bits).
pub const VFGPTC: usize = 0x0201c;
/// VF Good Octets Transmitted Count: LSB and MSB registers.
pub const VFGOTC: [usize; 2] = [0x02020, 0x02024];
