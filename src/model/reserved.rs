//! Which bits of each register the model implements software must write as 0: the bits
//! the Intel 82599 10 GbE Controller Datasheet (rev. 3.x, register tables of §8.2.3) marks
//! "Reserved", for the registers whose layout the model is sure of (bit definitions
//! cross-checked with Linux `ixgbe_type.h`). A write setting one of them breaks a rule.
//!
//! Not listed (the layout is not certain enough for a must-be-zero check, or reserved bits
//! reset to 1 and must be written back as read): HLREG0, RDRXCTL, AUTOC, EIAC, EIAM,
//! CTRL_EXT, RTTDCS, MFLCN, SECRXCTRL, DCA_RXCTRL and RXDCTL; and the registers added for
//! issue 15, whose reserved bits are known here only from Linux's definitions, not the
//! datasheet tables: ESDP, AUTOC2, EIAM_EX, and the X540/X550 SWSM and SW_FW_SYNC. EIMC is not checked either:
//! writing 1b there only masks, 4.6.3.1 disables interrupts by writing it, and Linux masks
//! with all ones (`IXGBE_IRQ_CLEAR_MASK`) on every MAC.

use super::regs::*;

/// EICR/EICS/EIMS bits 23 and 29: reserved on the 82599 (§8.2.3.5; Linux defines them
/// only for the X540/X550: `IXGBE_EICR_TS`, `IXGBE_EICR_DHER`).
pub(crate) const EICR_RESERVED: u32 = 1 << 23 | 1 << 29;

/// A register outside the queue blocks: its name, reserved bits, and datasheet section.
pub(crate) fn reserved(offset: usize) -> Option<(&'static str, u32, &'static str)> {
    let in_array = |base: usize, n: usize| (base..base + 4 * n).contains(&offset);
    Some(match offset {
        // Only PCIe_Master_Disable (2), LRST (3) and RST (26) are defined.
        CTRL => (
            "CTRL",
            !(CTRL_MASTER_DISABLE | CTRL_LRST | CTRL_RST),
            "8.2.3.1.1",
        ),
        EICR => ("EICR", EICR_RESERVED, "8.2.3.5"),
        EICS => ("EICS", EICR_RESERVED, "8.2.3.5"),
        EIMS => ("EIMS", EICR_RESERVED, "8.2.3.5"),
        // SDP GPIEN 3:0, Multiple_MSIX 4, OCD 5, EIMEN 6, LL interval 10:7, RSC delay
        // 13:11, VT mode 15:14, EIAME 30, PBA_support 31.
        GPIE => ("GPIE", 0x3FFF_0000, "8.2.3.5"),
        // Four entries: INT_ALLOC 5:0, reserved 6, valid 7.
        _ if in_array(IVAR, 64) => ("IVAR", 0x4040_4040, "8.2.3.5"),
        // Reserved 2:0 and 14:12 (ITR interval 11:3, LLI 20:15, counter 30:21, CNT_WDIS 31).
        _ if in_array(EITR_LOW, 24) || in_array(EITR_HIGH, 104) => ("EITR", 0x0000_7007, "8.2.3.5"),
        // RXEN (0) and DMBYPS (1).
        RXCTRL => ("RXCTRL", !0x3, "8.2.3.8"),
        // SBP (1), MPE (8), UPE (9), BAM (10).
        FCTRL => (
            "FCTRL",
            !(1 << 1 | FCTRL_MPE | FCTRL_UPE | FCTRL_BAM),
            "8.2.3.7.1",
        ),
        // 15:0 of the address, AV (31).
        o if in_array(RAL, 2 * NUM_RAR) && o % 8 == 4 => ("RAH", 0x7FFF_0000, "8.2.3.7.9"),
        // Four 8-bit fields: Q_MAP 3:0, reserved 7:4.
        _ if in_array(RQSMR, 32) => ("RQSMR", 0xF0F0_F0F0, "8.2.3.8"),
        _ if in_array(TQSM, 32) => ("TQSM", 0xF0F0_F0F0, "8.2.3.9"),
        // MRQE 3:0, field enables 24:16 (Linux `IXGBE_MRQC_RSS_FIELD_*`).
        MRQC => ("MRQC", 0xFE00_FFF0, "8.2.3.7.12"),
        // Four 8-bit entries whose bits 3:0 the 82599 uses (RSS index; Linux
        // `ixgbe_store_reta`: "4 bit RSS index" on the 82599).
        _ if in_array(RETA, 32) => ("RETA", 0xF0F0_F0F0, "8.2.3.7.13"),
        // SIZE in bits 19:10 (KB).
        _ if in_array(RXPBSIZE, 8) => ("RXPBSIZE", 0xFFF0_03FF, "8.2.3.8.9"),
        _ if in_array(TXPBSIZE, 8) => ("TXPBSIZE", 0xFFF0_03FF, "8.2.3.9.13"),
        // RTH 18:5, FCEN 31.
        _ if in_array(FCRTH, 8) => ("FCRTH", 0x7FF8_001F, "8.2.3.3"),
        // TE (0), GDV (3), VT 31:16.
        DMATXCTL => ("DMATXCTL", 0x0000_FFF0, "8.2.3.9"),
        // MAX_BYTES_NUM_REQ 11:0.
        DTXMXSZRQ => ("DTXMXSZRQ", 0xFFFF_F000, "8.2.3.9"),
        // MFS 31:16.
        MAXFRS => ("MAXFRS", 0x0000_FFFF, "8.2.3.22.13"),
        _ => return None,
    })
}

/// SRRCTL: BSIZEPACKET 4:0, BSIZEHEADER 13:8, RDMTS 24:22, DESCTYPE 27:25, DROP_EN 28.
pub(crate) const SRRCTL_RESERVED: u32 = 0xE03F_C0E0;
/// TXDCTL: PTHRESH 6:0, HTHRESH 14:8, WTHRESH 22:16, ENABLE 25, SWFLSH 26.
pub(crate) const TXDCTL_RESERVED: u32 = 0xF980_8080;
/// RDLEN / TDLEN: LEN 19:0.
pub(crate) const QLEN_RESERVED: u32 = 0xFFF0_0000;
