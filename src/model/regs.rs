//! Register offsets and bits the model implements, named as in the Intel 82599 10 GbE
//! Controller Datasheet (rev. 3.x); offsets cross-checked with Linux `ixgbe_type.h`.

/// Size of BAR0 (memory space of the PF registers), §9.3.6.1 / Table 8-1.
pub(crate) const BAR0_SIZE: usize = 128 * 1024;

/// Queue register sets the model implements (the 82599 has 128 rx and 128 tx queues).
pub(crate) const NUM_QUEUES: usize = 128;

// §8.2.3.1 General control registers.
pub(crate) const CTRL: usize = 0x00000;
pub(crate) const CTRL_LRST: u32 = 1 << 3;
pub(crate) const CTRL_RST: u32 = 1 << 26;
/// CTRL.PCIe_Master_Disable (bit 2), §5.2.5.3.2.
pub(crate) const CTRL_MASTER_DISABLE: u32 = 1 << 2;
pub(crate) const STATUS: usize = 0x00008;
/// STATUS.LAN_ID (bits 3:2): which port of the device this is.
pub(crate) const STATUS_LAN_ID_SHIFT: u32 = 2;
/// Extended SDP Control (§8.2.3.1.3); SDP3 disables an SFP+ port's transmit laser (Linux
/// `IXGBE_ESDP_SDP3`). Kept across resets here, like the pins it drives.
pub(crate) const ESDP: usize = 0x00020;
pub(crate) const ESDP_SDP3: u32 = 1 << 3;
/// CTRL_EXT (§8.2.3.1.3) and DRV_LOAD (bit 28, Linux `IXGBE_CTRL_EXT_DRV_LOAD`).
pub(crate) const CTRL_EXT: usize = 0x00018;
pub(crate) const CTRL_EXT_DRV_LOAD: u32 = 1 << 28;
/// X540/X550 software semaphore SWSM (SMBI, bit 0) and SW_FW_SYNC (software bits 4:0,
/// firmware bits 9:5, REGSMP 31), Linux `ixgbe_x540.c`; not reset by CTRL.RST here.
pub(crate) const SWSM: usize = 0x10140;
pub(crate) const SWSM_SMBI: u32 = 1 << 0;
pub(crate) const SW_FW_SYNC: usize = 0x10160;
pub(crate) const SW_FW_SYNC_SW_PHY0_SM: u32 = 1 << 1;
pub(crate) const SW_FW_SYNC_REGSMP: u32 = 1 << 31;
/// STATUS.LinkUp (bit 7).
pub(crate) const STATUS_LINK_UP: u32 = 1 << 7;
/// STATUS.GIO Master Enable Status (bit 19).
pub(crate) const STATUS_GIO_MASTER_ENABLE: u32 = 1 << 19;

/// GCR_EXT (PCIe control extended) and Buffers_Clear_Func (bit 30), Linux
/// `IXGBE_GCR_EXT_BUFFERS_CLEAR` (`ixgbe_clear_tx_pending`).
pub(crate) const GCR_EXT: usize = 0x11050;
pub(crate) const GCR_EXT_BUFFERS_CLEAR: u32 = 1 << 30;

// §8.2.3.2.1 EEPROM/Flash control.
pub(crate) const EEC: usize = 0x10010;
pub(crate) const EEC_PRES: u32 = 1 << 8;
pub(crate) const EEC_ARD: u32 = 1 << 9;

// §8.2.3.5 Interrupt registers.
pub(crate) const EICR: usize = 0x00800;
pub(crate) const EICS: usize = 0x00808;
pub(crate) const EIMS: usize = 0x00880;
pub(crate) const EIMC: usize = 0x00888;
/// EIMS_EX(0/1) and EIMC_EX(0/1): the MSI-X queue vector masks (Linux `IXGBE_EIMS_EX`,
/// `IXGBE_EIMC_EX`).
pub(crate) const EIMS_EX: usize = 0x00AA0;
pub(crate) const EIMC_EX: usize = 0x00AB0;
/// EITR(0..23) at 0x00820 + 4n, EITR(24..127) at 0x12300 + 4(n - 24).
pub(crate) const EITR_LOW: usize = 0x00820;
pub(crate) const EITR_HIGH: usize = 0x12300;
/// IVAR(0..63) at 0x00900 + 4n: four 8-bit entries (rx 2n, tx 2n, rx 2n+1, tx 2n+1), each
/// INT_ALLOC (5:0) and valid (7); IVAR_MISC (TCP timer 7:0, other causes 15:8).
pub(crate) const IVAR: usize = 0x00900;
pub(crate) const IVAR_MISC: usize = 0x00A00;
pub(crate) const IVAR_ALLOC_VAL: u32 = 0x80;
pub(crate) const IVAR_ALLOC_MASK: u32 = 0x3F;
/// EICR/EIMS bits 15:0: the queue causes (RTxQ), one per vector through IVAR.
pub(crate) const EICR_RTXQ: u32 = 0xFFFF;
pub(crate) const GPIE: usize = 0x00898;
// EIAC (0x00810), EIAM (0x00890) and GPIE read back as written.

// §8.2.3.8 Receive DMA registers. Queues 0..63 at 0x01000 + 0x40n, 64..127 at 0x0D000 +
// 0x40(n-64); the per-queue block holds RDBAL +0, RDBAH +4, RDLEN +8, DCA_RXCTRL +0xC,
// RDH +0x10, SRRCTL +0x14, RDT +0x18, RXDCTL +0x28; +0x30 holds the QPRC/QPRDC counters.
pub(crate) const RXQ_LOW: usize = 0x01000;
pub(crate) const RXQ_HIGH: usize = 0x0D000;
pub(crate) const QUEUE_STRIDE: usize = 0x40;
pub(crate) const Q_BAL: usize = 0x00;
pub(crate) const Q_BAH: usize = 0x04;
pub(crate) const Q_LEN: usize = 0x08;
pub(crate) const Q_H: usize = 0x10;
pub(crate) const RXQ_SRRCTL: usize = 0x14;
pub(crate) const Q_T: usize = 0x18;
pub(crate) const Q_DCTL: usize = 0x28;
pub(crate) const RXQ_QSTAT: usize = 0x30;
/// RQSMR(0..31) at 0x02300 + 4n: queue to statistics counter mapping, 4 queues each.
pub(crate) const RQSMR: usize = 0x02300;
/// SRRCTL(0..15) alias at 0x02100 + 4n (DCA_RXCTRL(0..15) at 0x02200 + 4n is plain
/// storage).
pub(crate) const SRRCTL_ALIAS: usize = 0x02100;
/// RXDCTL.ENABLE (bit 25), same bit in TXDCTL.
pub(crate) const DCTL_ENABLE: u32 = 1 << 25;
/// SRRCTL.BSIZEPACKET (bits 4:0), 1 KB units.
pub(crate) const SRRCTL_BSIZEPACKET_MASK: u32 = 0x1F;
/// SRRCTL.DESCTYPE (bits 27:25); 001b = advanced one buffer.
pub(crate) const SRRCTL_DESCTYPE_MASK: u32 = 0x7 << 25;
pub(crate) const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 0x1 << 25;
/// SRRCTL.DROP_EN (bit 28).
pub(crate) const SRRCTL_DROP_EN: u32 = 1 << 28;
pub(crate) const RDRXCTL: usize = 0x02F00;
pub(crate) const RDRXCTL_CRCSTRIP: u32 = 1 << 1;
pub(crate) const RDRXCTL_DMAIDONE: u32 = 1 << 3;
/// RDRXCTL.RSCFRSTSIZE (bits 21:17): software sets 0, not the default (§8.2.3.8.8).
pub(crate) const RDRXCTL_RSCFRSTSIZE: u32 = 0x1F << 17;
/// RDRXCTL.RSCACKC (bit 25) and FCOE_WRFIX (bit 26): software sets 1b (§8.2.3.8.8).
pub(crate) const RDRXCTL_RSCACKC: u32 = 1 << 25;
pub(crate) const RDRXCTL_FCOE_WRFIX: u32 = 1 << 26;
pub(crate) const RXCTRL: usize = 0x03000;
pub(crate) const RXCTRL_RXEN: u32 = 1 << 0;
/// RXPBSIZE(0..7) at 0x03C00 + 4n.
pub(crate) const RXPBSIZE: usize = 0x03C00;

// §8.2.3.3 Flow control registers.
/// FCRTH(0..7) at 0x03260 + 4n (82599 location); RTH in bits 18:5.
pub(crate) const FCRTH: usize = 0x03260;
pub(crate) const FCRTH_RTH_MASK: u32 = 0x3FFF << 5;

// Security Rx block (the Rx enable sequence of §4.6.7).
pub(crate) const SECRXCTRL: usize = 0x08D00;
pub(crate) const SECRXCTRL_RX_DIS: u32 = 1 << 1;
pub(crate) const SECRXSTAT: usize = 0x08D04;
pub(crate) const SECRXSTAT_SECRX_RDY: u32 = 1 << 0;

// §8.2.3.7 Receive filter registers.
pub(crate) const FCTRL: usize = 0x05080;
pub(crate) const FCTRL_MPE: u32 = 1 << 8;
pub(crate) const FCTRL_UPE: u32 = 1 << 9;
pub(crate) const FCTRL_BAM: u32 = 1 << 10;
/// RAL(n)/RAH(n) at 0x0A200 + 8n and 0x0A204 + 8n, n = 0..127.
pub(crate) const RAL: usize = 0x0A200;
pub(crate) const NUM_RAR: usize = 128;
pub(crate) const RAH_AV: u32 = 1 << 31;
/// §8.2.3.7.12 MRQC: multiple receive queues command (MRQE 3:0, RSS field enables 24:16).
pub(crate) const MRQC: usize = 0x05818;
/// §8.2.3.7.13 RETA(0..31) at 0x05C00 + 4n: four 8-bit entries each, of which the 82599
/// uses bits 3:0 (Linux `ixgbe_store_reta`: "4 bit RSS index" on the 82599/X540).
pub(crate) const RETA: usize = 0x05C00;
pub(crate) const RETA_ENTRY_MASK: u32 = 0xF;
/// §8.2.3.7.14 RSSRK(0..9) at 0x05C80 + 4n: the 40-byte RSS key.
pub(crate) const RSSRK: usize = 0x05C80;

// §8.2.3.9 Transmit registers. Queue n at 0x06000 + 0x40n: TDBAL +0, TDBAH +4, TDLEN +8,
// DCA_TXCTRL +0xC, TDH +0x10, TDT +0x18, TXDCTL +0x28, TDWBAL +0x38, TDWBAH +0x3C.
pub(crate) const TXQ: usize = 0x06000;
pub(crate) const DMATXCTL: usize = 0x04A80;
pub(crate) const DMATXCTL_TE: u32 = 1 << 0;
/// DMA Tx TCP Max Allow Size Requests.
pub(crate) const DTXMXSZRQ: usize = 0x08100;
/// TXPBSIZE(0..7) at 0x0CC00 + 4n.
pub(crate) const TXPBSIZE: usize = 0x0CC00;
/// RTTDCS (§8.2.3.10) and its ARBDIS bit (6): the tx descriptor arbiter is off.
pub(crate) const RTTDCS: usize = 0x04900;
pub(crate) const RTTDCS_ARBDIS: u32 = 1 << 6;

// §8.2.3.22 MAC registers.
pub(crate) const HLREG0: usize = 0x04240;
/// HLREG0.LPBK (bit 15): MAC loopback, set while the PCIe buffers are flushed.
pub(crate) const HLREG0_LPBK: u32 = 1 << 15;
pub(crate) const HLREG0_RXCRCSTRP: u32 = 1 << 1;
pub(crate) const HLREG0_JUMBOEN: u32 = 1 << 2;
pub(crate) const HLREG0_TXPADEN: u32 = 1 << 10;
/// HLREG0.RXLNGTHERREN (bit 27), set at reset.
pub(crate) const HLREG0_RXLNGTHERREN: u32 = 1 << 27;
pub(crate) const MAXFRS: usize = 0x04268;
pub(crate) const AUTOC: usize = 0x042A0;
/// AUTOC.Restart_AN (bit 12), self-clearing.
pub(crate) const AUTOC_RESTART_AN: u32 = 1 << 12;
/// AUTOC.LMS (bits 15:13), link mode select.
pub(crate) const AUTOC_LMS_SHIFT: u32 = 13;
pub(crate) const AUTOC_LMS_MASK: u32 = 0x7 << AUTOC_LMS_SHIFT;
pub(crate) const AUTOC_LMS_1G_NO_AN: u32 = 0x0;
pub(crate) const AUTOC_LMS_1G_AN: u32 = 0x2;
pub(crate) const AUTOC_LMS_10G_SERIAL: u32 = 0x3;
/// LMS = 100b: KX4/KX/KR auto-negotiation (the mode this model's backplane "NVM" loads).
pub(crate) const AUTOC_LMS_KX4_KX_KR: u32 = 0x4;
/// AUTOC2 and its link-disable bits 30:28 (Linux `IXGBE_AUTOC2_LINK_DISABLE_MASK`).
pub(crate) const AUTOC2: usize = 0x042A8;
pub(crate) const AUTOC2_LINK_DISABLE_MASK: u32 = 0x7 << 28;
pub(crate) const LINKS: usize = 0x042A4;
/// MMNGC (MAC manageability control) and MNG_VETO (bit 0): set by the firmware, which then
/// forbids link resets (Linux `IXGBE_MMNGC_MNG_VETO`); kept across resets here.
pub(crate) const MMNGC: usize = 0x042D0;
pub(crate) const MMNGC_MNG_VETO: u32 = 1 << 0;
/// LINKS.LINK_UP (bit 30) and LINK_SPEED (bits 29:28: 01b 100M, 10b 1G, 11b 10G).
pub(crate) const LINKS_UP: u32 = 1 << 30;
pub(crate) const LINKS_SPEED_10G: u32 = 0x3 << 28;
pub(crate) const LINKS_SPEED_1G: u32 = 0x2 << 28;
/// LINKS.Link Status (bit 7).
pub(crate) const LINKS_STATUS: u32 = 1 << 7;

// §8.2.3.23 Statistics registers (clear on read).
/// MPC(0..7) at 0x03FA0 + 4n.
pub(crate) const MPC: usize = 0x03FA0;
pub(crate) const GPRC: usize = 0x04074;
pub(crate) const GPTC: usize = 0x04080;
pub(crate) const GORCL: usize = 0x04088;
pub(crate) const GORCH: usize = 0x0408C;
pub(crate) const GOTCL: usize = 0x04090;
pub(crate) const GOTCH: usize = 0x04094;
/// ROC, receive oversize count.
pub(crate) const ROC: usize = 0x040F8;
/// TPR / TPT, total packets received / transmitted.
pub(crate) const TPR: usize = 0x040D0;
pub(crate) const TPT: usize = 0x040D4;
/// CRCERRS, RLEC, RUC: CRC errors, length errors, undersize frames.
pub(crate) const CRCERRS: usize = 0x04000;
pub(crate) const RLEC: usize = 0x04040;
pub(crate) const RUC: usize = 0x040A4;
/// TQSM(0..31) at 0x08600 + 4n: tx queue to statistics counter mapping, 4 queues each
/// (Linux `IXGBE_TQSM`).
pub(crate) const TQSM: usize = 0x08600;
/// QBRC_L/H(0..15) at 0x01034 / 0x01038 + 0x40n: per-counter received bytes (low
/// register first; Linux `IXGBE_QBRC_L/H`).
pub(crate) const RXQ_QBRC_L: usize = 0x34;
pub(crate) const RXQ_QBRC_H: usize = 0x38;
/// QPTC(0..15) at 0x06030 + 0x40n: per-counter transmitted packets (Linux `IXGBE_QPTC`).
pub(crate) const TXQ_QPTC: usize = 0x30;
/// QBTC_L/H(0..15) at 0x08700 / 0x08704 + 8n: per-counter transmitted bytes.
pub(crate) const QBTC: usize = 0x08700;
