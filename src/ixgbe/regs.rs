//! 82599 register offsets and bits used by the driver, named as in the Intel 82599 10 GbE
//! Controller Datasheet (register descriptions in chapter 8.2.3; offsets cross-checked
//! against Linux `ixgbe_type.h`). Only what the driver uses.
//!
//! Per-queue registers are functions of the queue index.

use crate::intel::queue::{QueueRegs, queue_block};
pub use crate::intel::regs::*;

// ---- General control, 8.2.3.1 (CTRL, CTRL.RST, STATUS: `crate::intel::regs`) ----
/// CTRL.LRST: link reset.
pub const CTRL_LRST: u32 = 1 << 3;
/// STATUS.LAN_ID (bits 3:2): which port of the device this function is.
pub const STATUS_LAN_ID_SHIFT: u32 = 2;

/// Extended Device Control.
pub const CTRL_EXT: usize = 0x00018;
/// CTRL_EXT.NS_DIS: no-snoop disable (4.6.7, last step of receive init).
pub const CTRL_EXT_NS_DIS: u32 = 1 << 16;
/// CTRL_EXT.DRV_LOAD: a driver owns the port (for the firmware; Linux
/// `ixgbe_get_hw_control` sets it, `ixgbe_release_hw_control` clears it).
pub const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;

/// Extended SDP Control (8.2.3.1.3).
pub const ESDP: usize = 0x00020;
/// ESDP.SDP3: on 82599 SFP+ fibre ports, 1b disables the transmit laser (Linux
/// `ixgbe_disable_tx_laser_multispeed_fiber`; DPDK does the same).
pub const ESDP_SDP3: u32 = 1 << 3;

// ---- Software/firmware semaphore, X540 and X550 (Linux `ixgbe_x540.c`) ----
/// Software Semaphore: SMBI reads 0 and is set by that read when the semaphore is free.
pub const SWSM: usize = 0x10140;
/// SWSM.SMBI.
pub const SWSM_SMBI: u32 = 1 << 0;
/// SW_FW_SYNC (Linux `IXGBE_SWFW_SYNC`, `IXGBE_GSSR`): one bit per resource and owner.
pub const SW_FW_SYNC: usize = 0x10160;
/// SW_FW_SYNC.SW_PHY_SM of PHY 0; PHY 1's is the next bit, firmware's are 5 bits up.
pub const SW_FW_SYNC_SW_PHY0_SM: u32 = 1 << 1;
/// Shift from a software bit of SW_FW_SYNC to the firmware's bit for the same resource.
pub const SW_FW_SYNC_FW_SHIFT: u32 = 5;
/// SW_FW_SYNC.REGSMP: register semaphore, reads 0 (and is set by the read) when free.
pub const SW_FW_SYNC_REGSMP: u32 = 1 << 31;

// ---- PCIe control (82599 datasheet 5.2.5.3.2; Linux `ixgbe_type.h`, which
// `ixgbe_clear_tx_pending` uses on every MAC) ----
/// PCIe Control Extended.
pub const GCR_EXT: usize = 0x11050;
/// GCR_EXT.Buffers_Clear_Func: clears the PCIe transaction layer buffers, after a master
/// disable that did not complete (Linux `IXGBE_GCR_EXT_BUFFERS_CLEAR`, `ixgbe_clear_tx_pending`).
pub const GCR_EXT_BUFFERS_CLEAR: u32 = 1 << 30;

// ---- EEPROM/Flash, 8.2.3.2 ----
/// EEPROM/Flash Control (82599, X540, X550; the X550EM_a, not brought up, moved it).
pub const EEC: usize = 0x10010;
/// EEC.ARD: EEPROM auto-read done.
pub const EEC_ARD: u32 = 1 << 9;

// ---- Interrupts, 8.2.3.5 (programming model in 7.3); EICR, EIMS, EIMC, EIAC, EIAM_EX(0),
// GPIE and EITR are in `intel::regs::IRQ_82599` ----
/// All interrupt causes of EIMC, including bit 31 (OTHER in Linux `IXGBE_EICR_OTHER`;
/// Linux masks with `IXGBE_IRQ_CLEAR_MASK` = all ones).
pub const EIMC_ALL: u32 = 0xffff_ffff;
/// Extended Interrupt Mask Clear of the queue causes in MSI-X mode, `n` = 0, 1 (82599 and
/// later; Linux `IXGBE_EIMC_EX`). Written with all ones to mask every queue vector.
pub const fn eimc_ex(n: usize) -> usize {
    0x00ab0 + 4 * n
}
/// GPIE.MULTIPLE_MSIX: MSI-X mode (one message per vector).
pub const GPIE_MULTIPLE_MSIX: u32 = 1 << 4;
/// GPIE.EIAME: extended interrupt auto mask enable (EIAM applies).
pub const GPIE_EIAME: u32 = 1 << 30;
/// GPIE.PBA_SUPPORT: pending bit array support (MSI-X).
pub const GPIE_PBA_SUPPORT: u32 = 1 << 31;

/// EITR.ITR_INTERVAL field (bits 11:3), in units of 2.048 µs (at 10 Gb/s and 1 Gb/s).
pub const EITR_ITR_INTERVAL_SHIFT: u32 = 3;
/// EITR.CNT_WDIS: the write leaves the ITR counter alone (Linux `ixgbe_write_eitr` sets
/// it on every MAC after the 82598).
pub const EITR_CNT_WDIS: u32 = 1 << 31;

/// Interrupt Vector Allocation register `n`: four 8-bit entries, rx queue 2n (bits 7:0),
/// tx queue 2n (15:8), rx queue 2n+1 (23:16), tx queue 2n+1 (31:24).
pub const fn ivar(n: usize) -> usize {
    0x00900 + 4 * n
}
/// Bit position of rx queue `q`'s entry within `ivar(q / 2)`.
pub const fn ivar_rx_shift(q: usize) -> u32 {
    16 * (q as u32 & 1)
}

// ---- Receive filtering, 8.2.3.7 ----
/// Filter Control.
pub const FCTRL: usize = 0x05080;
/// FCTRL.MPE: multicast promiscuous.
pub const FCTRL_MPE: u32 = 1 << 8;
/// FCTRL.UPE: unicast promiscuous.
pub const FCTRL_UPE: u32 = 1 << 9;
/// FCTRL.BAM: accept broadcast.
pub const FCTRL_BAM: u32 = 1 << 10;

/// Receive Address Low of entry `n` (first four bytes of the MAC).
pub const fn ral(n: usize) -> usize {
    0x0a200 + 8 * n
}
/// Receive Address High of entry `n` (last two bytes of the MAC, and AV).
pub const fn rah(n: usize) -> usize {
    0x0a204 + 8 * n
}

// ---- RSS, 7.1.2.8 (registers 8.2.3.7.12-14) ----
/// MRQC.MRQE = 0001b: RSS only (no DCB, no virtualisation); MRQC, RETA and RSSRK are
/// in `crate::intel`, shared with the 82576.
pub const MRQC_MRQE_RSS: u32 = 0x1;
/// Most queues RSS spreads over: RETA entries hold 4-bit queue indices on the 82599.
pub const RSS_MAX_QUEUES: u16 = 16;

// ---- Receive DMA, 8.2.3.8 ----
/// Receive queue register block of queue `n` < 64 (0x40 apart from 0x01000; queues 64-127,
/// at 0x0D000, are not used: RSS spreads over at most 16).
const fn rx_queue_block(n: usize) -> usize {
    0x01000 + 0x40 * n
}
/// Ring registers of receive queue `n`: RDBAL, RDBAH, RDLEN, RDH, RDT, RXDCTL.
pub(crate) const fn rx_queue(n: usize) -> QueueRegs {
    queue_block(rx_queue_block(n))
}
/// DCA Receive Control of queue `n` (82599 location, 8.2.3.11).
pub const fn dca_rxctrl(n: usize) -> usize {
    rx_queue_block(n) + 0x0c
}
/// DCA_RXCTRL bit 12: reserved, reads 1 after reset, software must clear it (4.6.7).
pub const DCA_RXCTRL_RESERVED_BIT12: u32 = 1 << 12;
/// Split Receive Control (82599 location).
pub const fn srrctl(n: usize) -> usize {
    rx_queue_block(n) + 0x14
}
/// SRRCTL.BSIZEPACKET: receive buffer size in 1 KB units (bits 4:0).
pub const SRRCTL_BSIZEPACKET_MASK: u32 = 0x1f;
/// SRRCTL.DROP_EN: drop frames when the queue has no descriptors (instead of stalling
/// the packet buffer for all queues).
pub const SRRCTL_DROP_EN: u32 = 1 << 28;

/// Receive DMA Control.
pub const RDRXCTL: usize = 0x02f00;
/// RDRXCTL.CRCSTRIP: strip the CRC (must match HLREG0.RXCRCSTRP).
pub const RDRXCTL_CRCSTRIP: u32 = 1 << 1;
/// RDRXCTL.DMAIDONE: DMA initialisation done.
pub const RDRXCTL_DMAIDONE: u32 = 1 << 3;
/// RDRXCTL.RSCFRSTSIZE (bits 21:17): must be set to 0, not its hardware default
/// (4.6.7, 8.2.3.8.8; Linux `ixgbe_setup_rdrxctl`).
pub const RDRXCTL_RSCFRSTSIZE: u32 = 0x1f << 17;
/// RDRXCTL.RSCACKC: software sets it to 1b (8.2.3.8.8).
pub const RDRXCTL_RSCACKC: u32 = 1 << 25;
/// RDRXCTL.FCOE_WRFIX: software sets it to 1b (8.2.3.8.8).
pub const RDRXCTL_FCOE_WRFIX: u32 = 1 << 26;

/// Receive Packet Buffer Size of packet buffer `n`.
pub const fn rxpbsize(n: usize) -> usize {
    0x03c00 + 4 * n
}
/// RXPBSIZE.SIZE field position: the size in KB at bits 19:10 (so the register holds
/// the size in bytes).
pub const RXPBSIZE_SHIFT: u32 = 10;

// ---- Flow control, 8.2.3.3 ----
/// Flow Control Receive Threshold High of packet buffer `n` (82599 location).
pub const fn fcrth(n: usize) -> usize {
    0x03260 + 4 * n
}
/// Headroom below the packet buffer size for FCRTH.RTH: "typically `RXPBSIZE[n]` -
/// 0x6000" (4.6.3.2; Linux `ixgbe_fc_enable_generic` without tx pause).
pub const FCRTH_HEADROOM: u32 = 0x6000;
/// MAC Flow Control (a MAC register, 8.2.3.22).
pub const MFLCN: usize = 0x04294;
/// MFLCN.RFCE: receive legacy flow control enable (4.6.11.3.4, DCB off).
pub const MFLCN_RFCE: u32 = 1 << 3;

// ---- Security Rx block (8.2.3 security registers): the Rx enable sequence of 4.6.7,
// Linux `ixgbe_enable_rx_dma_82599` (an 82599 errata workaround) ----
/// Security Rx Control.
pub const SECRXCTRL: usize = 0x08d00;
/// SECRXCTRL.RX_DIS: halt the receive data path.
pub const SECRXCTRL_RX_DIS: u32 = 1 << 1;
/// Security Rx Status.
pub const SECRXSTAT: usize = 0x08d04;
/// SECRXSTAT.SECRX_RDY: the receive security block is idle (halted).
pub const SECRXSTAT_SECRX_RDY: u32 = 1 << 0;

/// Receive Control.
pub const RXCTRL: usize = 0x03000;
/// RXCTRL.RXEN: receive enable.
pub const RXCTRL_RXEN: u32 = 1 << 0;

// ---- Transmit, 8.2.3.9 ----
/// DMA Tx TCP Max Allow Size Requests.
pub const DTXMXSZRQ: usize = 0x08100;
/// DTXMXSZRQ.MAX_BYTES_NUM_REQ: the value the datasheet wants without DCB (4.6.11.3.4).
pub const DTXMXSZRQ_MAX: u32 = 0xfff;
/// DMA Tx Control.
pub const DMATXCTL: usize = 0x04a80;
/// DMATXCTL.TE: transmit enable.
pub const DMATXCTL_TE: u32 = 1 << 0;

/// Transmit Packet Buffer Size of packet buffer `n`.
pub const fn txpbsize(n: usize) -> usize {
    0x0cc00 + 4 * n
}
/// All 160 KB of transmit packet buffer to buffer 0 (no DCB/VT; 4.6.11.3.4).
pub const TXPBSIZE_160KB: u32 = 160 << 10;

/// Ring registers of transmit queue `n`: TDBAL, TDBAH, TDLEN, TDH, TDT, TXDCTL, 0x40
/// apart from 0x06000.
pub(crate) const fn tx_queue(n: usize) -> QueueRegs {
    queue_block(0x06000 + 0x40 * n)
}
/// TXDCTL.PTHRESH (bits 6:0), HTHRESH (14:8), WTHRESH (22:16).
pub const TXDCTL_THRESH_MASK: u32 = 0x7f | 0x7f << 8 | 0x7f << 16;
/// Prefetch 36, host 8, write-back 4: the values DPDK and ixy use (7.2.3.4.1, 7.2.3.5).
pub const TXDCTL_THRESH: u32 = 36 | 8 << 8 | 4 << 16;

// ---- DCB, 8.2.3.10 ----
/// DCB Transmit Descriptor Plane Control and Status.
pub const RTTDCS: usize = 0x04900;
/// RTTDCS.ARBDIS: disable the descriptor arbiter while configuring (4.6.11.3.4).
pub const RTTDCS_ARBDIS: u32 = 1 << 6;

// ---- MAC, 8.2.3.22 ----
/// MAC Core Control 0.
pub const HLREG0: usize = 0x04240;
/// HLREG0.TXCRCEN: append CRC on transmit.
pub const HLREG0_TXCRCEN: u32 = 1 << 0;
/// HLREG0.RXCRCSTRP: strip CRC on receive.
pub const HLREG0_RXCRCSTRP: u32 = 1 << 1;
/// HLREG0.TXPADEN: pad short frames on transmit.
pub const HLREG0_TXPADEN: u32 = 1 << 10;
/// HLREG0.LPBK: MAC loopback; set while the PCIe buffers are flushed so that nothing
/// leaves (Linux `ixgbe_clear_tx_pending`).
pub const HLREG0_LPBK: u32 = 1 << 15;

/// Auto-Negotiation Control.
pub const AUTOC: usize = 0x042a0;
/// AUTOC.RESTART_AN: restart auto-negotiation (self-clearing).
pub const AUTOC_RESTART_AN: u32 = 1 << 12;
/// AUTOC.LMS link mode select field (bits 15:13).
pub const AUTOC_LMS_MASK: u32 = 0x7 << 13;
/// AUTOC.LMS = 011b: 10 Gb/s serial link, no auto-negotiation.
pub const AUTOC_LMS_10G_SERIAL: u32 = 0x3 << 13;
/// Auto-Negotiation Control 2.
pub const AUTOC2: usize = 0x042a8;
/// AUTOC2 bits 30:28: link disabled (loaded from the NVM; Linux
/// `IXGBE_AUTOC2_LINK_DISABLE_MASK`, cleared after every reset in `ixgbe_reset_hw_82599`).
pub const AUTOC2_LINK_DISABLE_MASK: u32 = 0x7 << 28;

/// MAC Manageability Control (Linux `IXGBE_MMNGC`).
pub const MMNGC: usize = 0x042d0;
/// MMNGC.MNG_VETO: manageability firmware forbids link resets (Linux
/// `ixgbe_check_reset_blocked`).
pub const MMNGC_MNG_VETO: u32 = 1 << 0;

/// Link Status.
pub const LINKS: usize = 0x042a4;
/// LINKS.LINK_UP.
pub const LINKS_UP: u32 = 1 << 30;
/// LINKS.LINK_SPEED field (bits 29:28): 11b 10 Gb/s, 10b 1 Gb/s, 01b 100 Mb/s, 00b 10 Mb/s.
pub const LINKS_SPEED_MASK: u32 = 0x3 << LINKS_SPEED_SHIFT;
/// LINK_SPEED field position.
pub const LINKS_SPEED_SHIFT: u32 = 28;
/// LINKS.NON_STD (X550 and later): LINK_SPEED 11b means 2.5 Gb/s, 01b 5 Gb/s (Linux
/// `ixgbe_check_mac_link_generic`).
pub const LINKS_SPEED_NON_STD: u32 = 1 << 27;

// ---- Statistics, 8.2.3.23 (all clear on read) ----
/// Missed Packets Count of packet buffer `n` (0-7).
pub const fn mpc(n: usize) -> usize {
    0x03fa0 + 4 * n
}
/// Number of MPC registers.
pub const NUM_MPC: usize = 8;
/// Queue Packets Received Drop Count of queue `n` (frames dropped for lack of
/// descriptors with SRRCTL.DROP_EN set; the 82599's successor of the 82598's RNBC).
pub const fn qprdc(n: usize) -> usize {
    0x01430 + 0x40 * n
}
/// Number of per-queue statistics counters (QPRC, QPRDC, QBRC, QPTC, QBTC: 0-15).
pub const NUM_QPRDC: usize = 16;
/// CRC Error Count.
pub const CRCERRS: usize = 0x04000;
/// Receive Length Error Count.
pub const RLEC: usize = 0x04040;
/// Receive Undersize Count.
pub const RUC: usize = 0x040a4;
/// Receive Oversize Count.
pub const ROC: usize = 0x040f8;
/// Receive / Transmit Queue Statistic Mapping `n` (0-31): counter of queues 4n to 4n+3
/// in bits 3:0 of each byte (Linux `IXGBE_RQSMR`, `IXGBE_TQSM`).
pub const fn rqsmr(n: usize) -> usize {
    0x02300 + 4 * n
}
/// See [`rqsmr`].
pub const fn tqsm(n: usize) -> usize {
    0x08600 + 4 * n
}
/// Queue Packets Received Count of counter `n`.
pub const fn qprc(n: usize) -> usize {
    0x01030 + 0x40 * n
}
/// Queue Bytes Received Count of counter `n`, low 32 bits (read first; high at +4).
pub const fn qbrc_l(n: usize) -> usize {
    0x01034 + 0x40 * n
}
/// Queue Packets Transmitted Count of counter `n` (Linux `IXGBE_QPTC`).
pub const fn qptc(n: usize) -> usize {
    0x06030 + 0x40 * n
}
/// Queue Bytes Transmitted Count of counter `n`, low 32 bits (read first; high at +4).
pub const fn qbtc_l(n: usize) -> usize {
    0x08700 + 8 * n
}
