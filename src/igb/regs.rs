//! Registers of the Intel 82576 (physical function) used by the driver, named as in the
//! Intel 82576EB Gigabit Ethernet Controller Datasheet, chapter 8 ("Programming
//! Interface"). Offsets and bits cross-checked against Linux
//! `drivers/net/ethernet/intel/igb/e1000_regs.h` and `e1000_defines.h`.

use crate::intel::queue::{QueueRegs, queue_block};
pub use crate::intel::regs::*;

// General registers (datasheet 8.2; Linux e1000_regs.h, e1000_defines.h; CTRL, CTRL.RST
// and STATUS: `crate::intel::regs`).
/// CTRL.SLU: set link up (copper: the MAC follows the PHY's link).
pub const CTRL_SLU: u32 = 1 << 6;
/// CTRL.FRCSPD and CTRL.FRCDPX: forced speed and duplex (cleared: the PHY negotiates).
pub const CTRL_FRCSPD_FRCDPX: u32 = 1 << 11 | 1 << 12;
/// STATUS.LU: link up.
pub const STATUS_LU: u32 = 1 << 1;
/// STATUS.SPEED: bits 7:6, 00b 10, 01b 100, 1xb 1000 Mb/s.
pub const STATUS_SPEED_SHIFT: u32 = 6;
/// EEPROM/Flash Control.
pub const EECD: usize = 0x00010;
/// EECD.AUTO_RD: the EEPROM auto-read after reset is done.
pub const EECD_AUTO_RD: u32 = 1 << 9;

// PHY access through MDIC (datasheet 8.2, MDI Control; the internal PHY answers at
// address 1: Linux `igb_get_phy_id_82575` for a copper port, and QEMU's igb only answers
// PHY address 1).
/// MDI Control.
pub const MDIC: usize = 0x00020;
/// MDIC.REGADD shift (bits 20:16).
pub const MDIC_REG_SHIFT: u32 = 16;
/// MDIC.PHYADD = 1 (bits 25:21).
pub const MDIC_PHY_1: u32 = 1 << 21;
/// MDIC.OP = 01b: write.
pub const MDIC_OP_WRITE: u32 = 1 << 26;
/// MDIC.OP = 10b: read.
pub const MDIC_OP_READ: u32 = 2 << 26;
/// MDIC.R: the access is done.
pub const MDIC_READY: u32 = 1 << 28;
/// MDIC.E: the access failed.
pub const MDIC_ERROR: u32 = 1 << 30;
/// PHY register 0, Control (IEEE 802.3 clause 22).
pub const PHY_CONTROL: u32 = 0;
/// PHY Control: auto-negotiation enable (bit 12) and restart (bit 9).
pub const PHY_CONTROL_AUTONEG: u32 = 1 << 12 | 1 << 9;

// Interrupt registers (datasheet 8.8; Linux `igb_configure_msix`, `igb_assign_vector`); the
// extended ones (EICR, EIMS, ...) are in `intel::regs::IRQ_82576`.
/// Interrupt Mask Clear (legacy causes).
pub const IMC: usize = 0x000d8;
/// GPIE (at `IRQ_82576.gpie`): NSICR (bit 0), multiple MSI-X vectors (4), EIAME (30),
/// PBA support (31).
pub const GPIE_MSIX: u32 = 1 << 0 | 1 << 4 | 1 << 30 | 1 << 31;
/// Interrupt Vector Allocation register `n` (0..8): receive queue `n` in bits 7:0,
/// receive queue `n + 8` in bits 23:16 (the 82576 layout).
pub const fn ivar(n: usize) -> usize {
    0x01700 + 4 * n
}

// Receive (datasheet 8.9, 8.10).
/// Receive Control.
pub const RCTL: usize = 0x00100;
/// RCTL.EN: receiver enable.
pub const RCTL_EN: u32 = 1 << 1;
/// RCTL.UPE and RCTL.MPE: unicast and multicast promiscuous.
pub const RCTL_UPE_MPE: u32 = 1 << 3 | 1 << 4;
/// RCTL.BAM: accept broadcast.
pub const RCTL_BAM: u32 = 1 << 15;
/// RCTL.SECRC: strip the Ethernet CRC (without it the device, and QEMU, append 4 bytes to
/// every frame).
pub const RCTL_SECRC: u32 = 1 << 26;
/// Receive Checksum Control: no checksum offload (the driver does not read the results,
/// and QEMU then skips checking every frame's checksums in software); PCSD with RSS.
pub const RXCSUM: usize = 0x05000;
/// RXCSUM.PCSD (bit 13): the write-back carries the RSS hash, not a packet checksum
/// (Linux `igb_setup_mrqc` sets it with RSS; QEMU's `igb_rss_enabled` requires it).
pub const RXCSUM_PCSD: u32 = 1 << 13;
/// SRRCTL.BSIZEPACKET: receive buffer size in 1 KB units, bits 6:0.
pub const SRRCTL_BSIZEPACKET_MASK: u32 = 0x7f;
/// SRRCTL.DROP_EN: drop frames when the queue has no descriptors (bit 31 on the 82576;
/// bit 28 on the 82599).
pub const SRRCTL_DROP_EN: u32 = 1 << 31;

/// Ring registers of receive queue `n` (0..16): RDBAL, RDBAH, RDLEN, RDH, RDT, RXDCTL in a
/// 0x40-byte block per queue from 0x0C000 (queues 0-3 also at 0x02800 + 0x100 * n).
pub(crate) const fn rx_queue(n: usize) -> QueueRegs {
    queue_block(0x0c000 + 0x40 * n)
}

/// Split and Replication Receive Control of queue `n` (in the queue block, +0x0C).
pub const fn srrctl(n: usize) -> usize {
    0x0c00c + 0x40 * n
}

// RSS (datasheet 7.1.2, receive queue assignment; registers in 8.10; offsets and bits
// cross-checked with Linux `e1000_regs.h`, `e1000_82575.h` and QEMU `hw/net/igb_regs.h`).
/// MRQC.MRQE (bits 2:0) = 010b: RSS only (Linux `E1000_MRQC_ENABLE_RSS_MQ`; 001b is
/// the 82599's value). MRQC, RETA and RSSRK are in `crate::intel`, shared with the 82599.
pub const MRQC_MRQE_RSS: u32 = 0x2;

// Transmit (datasheet 8.12).
/// Transmit Control.
pub const TCTL: usize = 0x00400;
/// TCTL.EN and TCTL.PSP (pad short packets).
pub const TCTL_EN_PSP: u32 = 1 << 1 | 1 << 3;

/// Ring registers of transmit queue `n` (0..16): TDBAL ... TXDCTL in a 0x40-byte block per
/// queue from 0x0E000.
pub(crate) const fn tx_queue(n: usize) -> QueueRegs {
    queue_block(0x0e000 + 0x40 * n)
}

// Receive address filter 0 (datasheet 8.9: RAL/RAH), loaded from the EEPROM.
/// Receive Address Low 0.
pub const RAL0: usize = 0x05400;
/// Receive Address High 0.
pub const RAH0: usize = 0x05404;

// Statistics (datasheet 8.19): clear on read.
/// Missed Packets Count.
pub const MPC: usize = 0x04010;
/// Receive Queue Drop Packet Count of queue `n` (frames dropped for SRRCTL.DROP_EN).
pub const fn rqdpc(n: usize) -> usize {
    0x0c030 + 0x40 * n
}
