//! Virtual function registers used by the driver, named as in the Intel 82599 10 GbE
//! Controller Datasheet, section 8.3 ("Virtual Function registers"; the mailbox registers
//! are in [`crate::intel::mailbox`], 8.3.5). Offsets cross-checked against Linux
//! `drivers/net/ethernet/intel/ixgbevf/regs.h`. The X540 and X550 VFs use the same layout.
//!
//! A VF sees only its own queues, numbered from 0; the device maps them onto the queues of
//! its pool.

// ---- General, 8.3 ----
/// VF Control.
pub const VFCTRL: usize = 0x00000;
/// VFCTRL.RST: VF software reset (the same bit as the PF's CTRL.RST).
pub const VFCTRL_RST: u32 = 1 << 26;
/// VF Link Status (the PF's LINKS, read-only).
pub const VFLINKS: usize = 0x00010;
/// VFLINKS.LINK_UP.
pub const VFLINKS_UP: u32 = 1 << 30;
/// VFLINKS.LINK_SPEED field (bits 29:28).
pub const VFLINKS_SPEED_MASK: u32 = 0x3 << 28;
/// LINK_SPEED = 11b: 10 Gb/s.
pub const VFLINKS_SPEED_10G: u32 = 0x3 << 28;
/// LINK_SPEED = 10b: 1 Gb/s.
pub const VFLINKS_SPEED_1G: u32 = 0x2 << 28;
/// LINK_SPEED = 01b: 100 Mb/s.
pub const VFLINKS_SPEED_100M: u32 = 0x1 << 28;

// ---- Interrupts, 8.3 ----
/// VF Extended Interrupt Mask Clear.
pub const VTEIMC: usize = 0x0010c;
/// The three VF interrupt causes (two queue vectors and the mailbox).
pub const VTEIMC_ALL: u32 = 0x7;

// ---- Receive queues, 8.3 (queue n at 0x01000 + 0x40 n) ----
/// VF Receive Descriptor Base Address Low.
pub const fn vfrdbal(n: usize) -> usize {
    0x01000 + 0x40 * n
}
/// VF Receive Descriptor Base Address High.
pub const fn vfrdbah(n: usize) -> usize {
    vfrdbal(n) + 0x04
}
/// VF Receive Descriptor Length (bytes).
pub const fn vfrdlen(n: usize) -> usize {
    vfrdbal(n) + 0x08
}
/// VF Receive Descriptor Head.
pub const fn vfrdh(n: usize) -> usize {
    vfrdbal(n) + 0x10
}
/// VF Split Receive Control.
pub const fn vfsrrctl(n: usize) -> usize {
    vfrdbal(n) + 0x14
}
/// VF Receive Descriptor Tail.
pub const fn vfrdt(n: usize) -> usize {
    vfrdbal(n) + 0x18
}
/// VF Receive Descriptor Control.
pub const fn vfrxdctl(n: usize) -> usize {
    vfrdbal(n) + 0x28
}
/// VFRXDCTL.ENABLE.
pub const VFRXDCTL_ENABLE: u32 = 1 << 25;
/// VFSRRCTL.BSIZEPACKET (bits 4:0), 1 KB units.
pub const VFSRRCTL_BSIZEPACKET_MASK: u32 = 0x1f;
/// VFSRRCTL.DESCTYPE (bits 27:25).
pub const VFSRRCTL_DESCTYPE_MASK: u32 = 0x7 << 25;
/// VFSRRCTL.DESCTYPE = 001b: advanced descriptors, one buffer.
pub const VFSRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 0x1 << 25;
/// VFSRRCTL.DROP_EN: drop frames when the queue has no descriptors.
pub const VFSRRCTL_DROP_EN: u32 = 1 << 28;

// ---- Transmit queues, 8.3 (queue n at 0x02000 + 0x40 n) ----
/// VF Transmit Descriptor Base Address Low.
pub const fn vftdbal(n: usize) -> usize {
    0x02000 + 0x40 * n
}
/// VF Transmit Descriptor Base Address High.
pub const fn vftdbah(n: usize) -> usize {
    vftdbal(n) + 0x04
}
/// VF Transmit Descriptor Length (bytes).
pub const fn vftdlen(n: usize) -> usize {
    vftdbal(n) + 0x08
}
/// VF Transmit Descriptor Head.
pub const fn vftdh(n: usize) -> usize {
    vftdbal(n) + 0x10
}
/// VF Transmit Descriptor Tail.
pub const fn vftdt(n: usize) -> usize {
    vftdbal(n) + 0x18
}
/// VF Transmit Descriptor Control.
pub const fn vftxdctl(n: usize) -> usize {
    vftdbal(n) + 0x28
}
/// VFTXDCTL.ENABLE.
pub const VFTXDCTL_ENABLE: u32 = 1 << 25;
/// VFTXDCTL thresholds as the Linux VF sets them: PTHRESH 32 (bits 6:0), HTHRESH 1
/// (14:8), WTHRESH 8 (22:16).
pub const VFTXDCTL_THRESH: u32 = 32 | 1 << 8 | 8 << 16;

// ---- Statistics, 8.3: rolling counters, not cleared on read ----
/// VF Good Packets Received Count (32 bits).
pub const VFGPRC: usize = 0x0101c;
/// VF Good Octets Received Count, low 32 bits.
pub const VFGORC_LSB: usize = 0x01020;
/// VF Good Octets Received Count, high 4 bits (36-bit counter).
pub const VFGORC_MSB: usize = 0x01024;
/// VF Good Packets Transmitted Count (32 bits).
pub const VFGPTC: usize = 0x0201c;
/// VF Good Octets Transmitted Count, low 32 bits.
pub const VFGOTC_LSB: usize = 0x02020;
/// VF Good Octets Transmitted Count, high 4 bits (36-bit counter).
pub const VFGOTC_MSB: usize = 0x02024;
