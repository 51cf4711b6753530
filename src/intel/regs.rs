//! Registers with the same offset and bits on the 82599 PF (82599 datasheet 8.2.3) and the
//! 82576 PF (82576 datasheet 8; Linux `ixgbe_type.h` and `e1000_regs.h`,
//! `e1000_defines.h` agree), and in the VFs' register blocks where noted.

/// Device Control (82599 8.2.3.1.1, 82576 8.2.1; a VF's VFCTRL / VTCTRL is at 0 too).
pub const CTRL: usize = 0x00000;
/// CTRL.GIO_MASTER_DISABLE (82599 PCIe_Master_Disable): no new master requests, first
/// step of the master disable algorithm (82599 5.2.5.3.2).
pub const CTRL_GIO_MASTER_DISABLE: u32 = 1 << 2;
/// CTRL.RST: device (software) reset, self-clearing (also the VFs' VFCTRL.RST).
pub const CTRL_RST: u32 = 1 << 26;
/// Device Status (82599 8.2.3.1.2, 82576 8.2.2).
pub const STATUS: usize = 0x00008;
/// STATUS.GIO_MASTER_ENABLE: clears once no master request is pending after
/// CTRL.GIO_MASTER_DISABLE.
pub const STATUS_GIO_MASTER_ENABLE: u32 = 1 << 19;

/// RXDCTL.ENABLE and TXDCTL.ENABLE, bit 25 of both, in the PF and VF queue blocks (82599
/// 8.2.3.8.6, 8.2.3.9.10, 8.3; 82576 8.10, 8.12).
pub const XDCTL_ENABLE: u32 = 1 << 25;
/// SRRCTL.DESCTYPE field (bits 27:25; 82599 8.2.3.8.7, 82576 8.10).
pub const SRRCTL_DESCTYPE_MASK: u32 = 0x7 << 25;
/// SRRCTL.DESCTYPE = 001b: advanced descriptors, one buffer.
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 0x1 << 25;

use super::irq::IrqRegs;

/// The 82599's extended interrupt registers (8.2.3.5). EIAM is EIAM_EX(0), the auto mask
/// of vectors 0-31 in MSI-X mode (0x00890 is the 82598's EIAM; Linux `IXGBE_EIAM_EX`);
/// EITR(v) for v < 24 (the rest, unused with at most 16 receive vectors, at 0x12300).
pub(crate) const IRQ_82599: IrqRegs = IrqRegs {
    eicr: 0x00800,
    eiac: 0x00810,
    eims: 0x00880,
    eimc: 0x00888,
    eiam: 0x00ad0,
    gpie: 0x00898,
    eitr0: 0x00820,
};
/// The 82576's extended interrupt registers (8.8; Linux `e1000_regs.h`).
pub(crate) const IRQ_82576: IrqRegs = IrqRegs {
    eicr: 0x01580,
    eiac: 0x0152c,
    eims: 0x01524,
    eimc: 0x01528,
    eiam: 0x01530,
    gpie: 0x01514,
    eitr0: 0x01680,
};

/// IVAR entry: allocation valid (bit 7 of each 8-bit entry; 82599 IVAR_ALLOC_VAL,
/// 8.2.3.5.17; 82576 IVAR_VALID, 8.8).
pub const IVAR_VALID: u32 = 1 << 7;

// Statistics (82599 8.2.3.23, 82576 8.19): clear on read.
/// Good Packets Received Count.
pub const GPRC: usize = 0x04074;
/// Good Packets Transmitted Count.
pub const GPTC: usize = 0x04080;
/// Good Octets Received Count, low and high (read the low one first: reading the high
/// one clears the pair).
pub const GORC: [usize; 2] = [0x04088, 0x0408c];
/// Good Octets Transmitted Count, low and high.
pub const GOTC: [usize; 2] = [0x04090, 0x04094];
