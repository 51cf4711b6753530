//! One modelled 82599 port: its register file, queues, link and wire, and the device side
//! of DMA (descriptor processing).

use std::time::{Duration, Instant};

use super::dma::Regions;
use super::lock;
use super::phy::{MSCA, MSCA_MDI_COMMAND, MSRWD, Phy};
use super::regs::*;
use super::reserved::{self, QLEN_RESERVED, SRRCTL_RESERVED, TXDCTL_RESERVED};
use super::{Completion, ModelInner, Peer, Source, WireStats};

/// Fails the test: the driver broke a rule of the datasheet that the model can see.
macro_rules! violated {
    ($port:expr, $rule:expr, $($detail:tt)*) => {
        panic!(
            "82599 model: rule violated: {} (port {}: {})",
            $rule,
            $port,
            format_args!($($detail)*)
        )
    };
}

/// Fails the test: the driver uses a feature the model does not implement.
macro_rules! unsupported {
    ($port:expr, $($detail:tt)*) => {
        panic!(
            "82599 model: unsupported by the model (port {}): {}",
            $port,
            format_args!($($detail)*)
        )
    };
}

/// The rules, by name (the text after `82599 model: rule violated: `).
pub(crate) mod rule {
    pub(crate) const BAD_OFFSET: &str = "register access outside BAR0 or not 4-byte aligned";
    pub(crate) const WRITE_IN_RESET: &str = "register written while the device is in reset";
    pub(crate) const READ_IN_RESET: &str = "register read within 1 ms of setting CTRL.RST";
    pub(crate) const RESET_WITHOUT_MASTER_DISABLE: &str =
        "software reset without the master disable algorithm";
    pub(crate) const RING_TOO_LONG: &str = "ring longer than 128 KiB (8K descriptors)";
    pub(crate) const RX_WITHOUT_SECRX_HALT: &str =
        "RXCTRL.RXEN set without the receive data path halted (SECRXCTRL.RX_DIS, SECRX_RDY)";
    pub(crate) const RDRXCTL_RSC_BITS: &str =
        "rx enabled with RDRXCTL.RSCFRSTSIZE, RSCACKC or FCOE_WRFIX not as software must set them";
    pub(crate) const FCRTH_UNSET: &str = "rx enabled with FCRTH.RTH unset for a used packet buffer";
    pub(crate) const FCTRL_WHILE_RX: &str = "FCTRL changed while RXCTRL.RXEN is set";
    pub(crate) const RING_ALIGN: &str = "ring base not 128-byte aligned";
    pub(crate) const RING_LEN: &str = "ring length not a multiple of 128";
    pub(crate) const RING_WHILE_ENABLED: &str = "ring registers changed while the queue is enabled";
    pub(crate) const ENABLE_BEFORE_RING: &str = "queue enabled before its ring is set";
    pub(crate) const RX_DESCTYPE: &str =
        "rx queue enabled without SRRCTL advanced one-buffer descriptors";
    pub(crate) const TX_BEFORE_TE: &str = "tx queue enabled before DMATXCTL.TE";
    pub(crate) const TAIL_BEYOND_RING: &str = "tail beyond the ring";
    pub(crate) const TAIL_BEFORE_ENABLE: &str =
        "tail written before the queue enable bit was read back";
    pub(crate) const TAIL_BACKWARDS: &str = "tail moved backwards over descriptors the device owns";
    pub(crate) const HEAD_WHILE_ENABLED: &str = "head written while the queue is enabled";
    pub(crate) const RXPBSIZE_WHILE_RX: &str = "RXPBSIZE changed while RXCTRL.RXEN is set";
    pub(crate) const TXPBSIZE_WITH_ARBITER: &str =
        "TXPBSIZE changed without the tx descriptor arbiter disabled (RTTDCS.ARBDIS)";
    pub(crate) const RESERVED_BITS: &str = "register written with reserved bits set";
    pub(crate) const RESET_WITHOUT_PHY_SEMAPHORE: &str =
        "X540/X550 reset without the PHY's SW/FW semaphore (SW_FW_SYNC)";
    pub(crate) const RESET_WITHOUT_FLUSH: &str =
        "reset after a master disable timeout without the PCIe buffers flushed (GCR_EXT)";
    pub(crate) const MDIO_WITHOUT_PHY_SEMAPHORE: &str =
        "MDIO cycle (MSCA) without the PHY's SW/FW semaphore (SW_FW_SYNC)";
    pub(crate) const MDIO_WHILE_BUSY: &str =
        "MSCA written while an MDIO cycle is in progress (MDI_COMMAND not read back 0)";
    pub(crate) const MDIO_CYCLE: &str = "MDIO cycle not as clause 45 wants it";
    pub(crate) const IRQ_UNROUTED: &str =
        "interrupt cause or mask bit written for a vector no cause is mapped to (IVAR)";
    pub(crate) const RESET_WITH_QUEUE_RUNNING: &str =
        "software reset while a queue is enabled or not yet read back disabled";
    pub(crate) const RX_BEFORE_QUEUE: &str = "rx enabled before the rx queue is ready";
    pub(crate) const CRC_STRIP_MISMATCH: &str = "HLREG0.RXCRCSTRP and RDRXCTL.CRCSTRIP differ";
    pub(crate) const DMA_OUTSIDE: &str = "DMA address outside memory the driver allocated";
    pub(crate) const RX_DESC_DD: &str = "rx descriptor given to the device with DD set";
    pub(crate) const TX_NO_DEXT: &str = "tx descriptor without DEXT";
    pub(crate) const TX_DTYP: &str = "tx descriptor with a wrong DTYP";
    pub(crate) const TX_RESERVED: &str = "tx descriptor with reserved bits set";
    pub(crate) const TX_ZERO_LEN: &str = "tx descriptor with zero length";
    pub(crate) const TX_PAYLEN: &str = "tx PAYLEN does not match the frame length";
    pub(crate) const TX_TOO_LONG: &str = "tx frame longer than the maximum frame size";
    pub(crate) const DMA_AFTER_CLOSE: &str =
        "queues still enabled when the driver released the device";
}

/// Time after setting CTRL.RST during which no register may be accessed, reads
/// included (§8.2.3.1.1: "wait approximately 1 ms after setting before attempting to
/// check if the bit has cleared or to access (read or write) any other device register").
const RESET_BLACKOUT: Duration = Duration::from_millis(1);

/// How long a software reset lasts at most, in wall time; after the blackout it also
/// completes on the second read of CTRL (§4.2.1.6.1: software waits for CTRL.RST to
/// self-clear), so a polling driver sees the bit set once.
const RESET_TIME: Duration = Duration::from_millis(10);

/// Largest RDLEN/TDLEN: "validated lengths up to 128K (8K descriptors)" (§8.2.3.8.3,
/// §8.2.3.9.7).
const MAX_RING_BYTES: u32 = 128 * 1024;

/// Reads of RXDCTL / TXDCTL that still show ENABLE after the driver cleared it: the queue
/// finishes what it is doing first (§4.6.7.1.2, §4.6.8.1: software polls until it reads 0).
pub(crate) const DISABLE_READS: u32 = 2;

/// STATUS polls after which a held-back master disable counts as waited for: a reset may
/// follow.
const MASTER_POLLS: u32 = 10;

/// SECRXSTAT polls after which a held-back receive halt counts as waited for: RXEN may
/// follow (Linux, DPDK and FreeBSD set it anyway after ~40 ms).
const SECRX_POLLS: u32 = 3;

/// LINKS reads that still show the link down after auto-negotiation restarted.
const AN_POLLS: u8 = 2;

/// Size of one descriptor (advanced rx and tx), §7.1.6 / §7.2.3.2.
const DESC_SIZE: u64 = 16;

/// Minimum frame length without CRC; shorter frames are padded if HLREG0.TXPADEN (§7.2.1).
const MIN_FRAME: usize = 60;

/// Ethernet CRC length.
const CRC_LEN: u64 = 4;

/// The MAC address port `index` loads from its "EEPROM" at reset (locally administered).
pub(crate) fn eeprom_mac(index: usize) -> [u8; 6] {
    [0x02, 0x82, 0x59, 0x90, (index >> 8) as u8, index as u8]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    /// Auto-negotiation restarted; up after `polls` more LINKS reads, at `speed`.
    Negotiating {
        polls: u8,
        speed: u32,
    },
    /// Up, with the LINKS speed bits.
    Up {
        speed: u32,
    },
}

/// One rx or tx descriptor ring as the device sees it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Ring {
    bal: u32,
    bah: u32,
    len: u32,
    head: u32,
    tail: u32,
    /// RXDCTL / TXDCTL as written, without ENABLE (which reads back from the state).
    dctl: u32,
    /// SRRCTL (rx only).
    srrctl: u32,
    enabled: bool,
    /// The driver read the enable bit back as 1 since enabling.
    enable_seen: bool,
    /// After the driver cleared ENABLE: reads of the control register that still show it
    /// set ([`HELD`] while a [`Completion`](super::Completion) holds the disable back).
    disable_left: u32,
    /// Reads of the control register since the driver cleared ENABLE.
    disable_reads: u32,
}

/// `Ring::disable_left` of a disable that never completes.
const HELD: u32 = u32::MAX;

impl Ring {
    /// A read of one of the ring registers rx and tx queues share (base, length, head,
    /// tail, queue control); reading an enabled queue's control register counts as the
    /// driver having seen the enable bit. Other registers read 0.
    fn read_ring_reg(&mut self, reg: QueueReg) -> u32 {
        match reg {
            QueueReg::Bal => self.bal,
            QueueReg::Bah => self.bah,
            QueueReg::Len => self.len,
            QueueReg::Head => self.head,
            QueueReg::Tail => self.tail,
            QueueReg::Dctl => {
                if self.enabled {
                    self.enable_seen = true;
                }
                let stopping = self.disable_left > 0;
                if stopping {
                    self.disable_reads = self.disable_reads.saturating_add(1);
                    if self.disable_left != HELD {
                        self.disable_left -= 1;
                    }
                }
                self.dctl
                    | if self.enabled || stopping {
                        DCTL_ENABLE
                    } else {
                        0
                    }
            }
            _ => 0,
        }
    }

    /// True while ENABLE reads back 1: enabled, or disabled and not yet stopped.
    fn live(&self) -> bool {
        self.enabled || self.disable_left > 0
    }

    /// A write of the control register: ENABLE set starts the queue (unless `hold_enable`),
    /// ENABLE cleared stops it after [`DISABLE_READS`] reads (never with `hold_disable`).
    /// Returns true if the queue was just enabled.
    fn write_dctl(&mut self, value: u32, hold_enable: bool, hold_disable: bool) -> bool {
        self.dctl = value & !DCTL_ENABLE;
        let enable = value & DCTL_ENABLE != 0;
        let started = enable && !self.enabled && !hold_enable;
        if started {
            self.enabled = true;
            self.enable_seen = false;
            self.disable_left = 0;
        } else if !enable && self.enabled {
            self.enabled = false;
            self.disable_left = if hold_disable { HELD } else { DISABLE_READS };
            self.disable_reads = 0;
        }
        started
    }

    /// Whether a reset now would cut the queue off while it runs: still enabled, or its
    /// disable not polled to completion (a held-back disable polled [`DISABLE_READS`]
    /// times counts as waited for).
    fn running_at_reset(&self) -> bool {
        self.enabled || (self.disable_left > 0 && self.disable_reads < DISABLE_READS)
    }

    fn base(&self) -> u64 {
        (self.bah as u64) << 32 | self.bal as u64
    }

    fn entries(&self) -> u32 {
        self.len / DESC_SIZE as u32
    }

    /// Descriptors handed to the device and not yet used.
    #[inline]
    fn owned_by_device(&self) -> u32 {
        let n = self.entries();
        (self.tail + n - self.head) % n.max(1)
    }

    fn desc_addr(&self, i: u32) -> u64 {
        self.base() + i as u64 * DESC_SIZE
    }
}

/// Clear-on-read statistics, §8.2.3.23.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    gprc: u64,
    gptc: u64,
    gorc: u64,
    gotc: u64,
    /// High halves latched by reading GORCL / GOTCL.
    gorch_latch: u32,
    gotch_latch: u32,
    tpr: u64,
    tpt: u64,
    roc: u64,
    mpc: [u64; 8],
    /// Per statistics-counter (RQSMR mapping) received and dropped packets, received
    /// bytes; (TQSM mapping) transmitted packets and bytes. Byte counters with the CRC.
    qprc: [u64; 16],
    qprdc: [u64; 16],
    qbrc: [u64; 16],
    qptc: [u64; 16],
    qbtc: [u64; 16],
    /// High halves latched by reading QBRC_L / QBTC_L.
    qbrc_latch: [u32; 16],
    qbtc_latch: [u32; 16],
}

/// The state of one port.
pub(crate) struct PortState {
    index: usize,
    /// Plain register storage for everything read back as written (BAR0 / 4 words).
    regs: Box<[u32]>,
    rx: Box<[Ring]>,
    tx: Box<[Ring]>,
    stats: Stats,
    /// Some while a software reset runs: (start, CTRL reads seen).
    reset: Option<(Instant, u8)>,
    /// STATUS was read with GIO_MASTER_ENABLE clear since CTRL.PCIe_Master_Disable was
    /// set (the poll of the master disable algorithm, §5.2.5.3.2).
    master_idle_seen: bool,
    /// STATUS reads since master disable was requested while it is held back.
    master_polls: u32,
    /// Master disable timed out ([`MASTER_POLLS`]): the next reset needs the PCIe buffers
    /// flushed first, and may be followed by a second one without a master disable (Linux
    /// `ixgbe_clear_tx_pending`, `IXGBE_FLAGS_DOUBLE_RESET_REQUIRED`; §5.2.5.3.2).
    master_timed_out: bool,
    /// GCR_EXT.Buffers_Clear_Func was set with HLREG0.LPBK since master disable.
    flushed: bool,
    /// The reset just done followed a master disable timeout: one more may come at once.
    second_reset: bool,
    /// The PHY of an X540/X550 port.
    pub(crate) phy: Option<Phy>,
    /// SECRXSTAT was read with SECRX_RDY set since SECRXCTRL.RX_DIS was set (§4.6.7), or
    /// polled [`SECRX_POLLS`] times while held back.
    secrx_rdy_seen: bool,
    secrx_polls: u32,
    /// The PCI device id: the MAC (82599, or X540/X550 ids) and the media (see
    /// [`super::Model::add_port_with_id`]).
    pub(crate) device: u16,
    /// The "NVM" disables the link (AUTOC2 bits 30:28 after every reset).
    pub(crate) nvm_link_disabled: bool,
    /// The CTRL reset bits of every reset so far, and whether the PHY semaphore was held.
    pub(crate) resets: Vec<(u32, bool)>,
    link: Link,
    /// Unicast addresses of the enabled receive address registers (RAH.AV).
    macs: Vec<[u8; 6]>,
    /// Reused buffer a transmitted frame is gathered in.
    scratch: Vec<u8>,
    pub(crate) peer: Peer,
    pub(crate) sources: Vec<Source>,
    pub(crate) capture: bool,
    pub(crate) captured: Vec<Vec<u8>>,
    pub(crate) link_never_up: bool,
    pub(crate) wire: WireStats,
    /// A driver's register handle ([`super::PortRegisters`] from [`super::Model::ixgbe`])
    /// is live on this port.
    pub(crate) driver: bool,
    /// The completions held back ([`Completion`] bits).
    pub(crate) held: u32,
}

/// Which register of a queue block an offset addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueReg {
    Bal,
    Bah,
    Len,
    Head,
    Tail,
    Dctl,
    Srrctl,
    /// QPRC(n) (n < 16) or QPRDC(n - 16) (16 <= n < 32): the +0x30 slot.
    Qstat,
    Qprc,
    Qprdc,
    /// QBRC_L(n) / QBRC_H(n) (n < 16): the +0x34 / +0x38 slots.
    QbrcL,
    QbrcH,
}

fn queue_reg(off: usize) -> Option<QueueReg> {
    Some(match off {
        Q_BAL => QueueReg::Bal,
        Q_BAH => QueueReg::Bah,
        Q_LEN => QueueReg::Len,
        Q_H => QueueReg::Head,
        Q_T => QueueReg::Tail,
        Q_DCTL => QueueReg::Dctl,
        RXQ_SRRCTL => QueueReg::Srrctl,
        RXQ_QSTAT => QueueReg::Qstat,
        RXQ_QBRC_L => QueueReg::QbrcL,
        RXQ_QBRC_H => QueueReg::QbrcH,
        _ => return None,
    })
}

/// Decodes an rx queue register offset (§8.2.3.8, including the SRRCTL alias for 0..15).
#[inline]
fn decode_rx(offset: usize) -> Option<(usize, QueueReg)> {
    let (q, reg) = match offset {
        0x01000..0x02000 => ((offset - RXQ_LOW) / QUEUE_STRIDE, offset % QUEUE_STRIDE),
        0x0D000..0x0E000 => (
            64 + (offset - RXQ_HIGH) / QUEUE_STRIDE,
            offset % QUEUE_STRIDE,
        ),
        0x02100..0x02140 => return Some(((offset - SRRCTL_ALIAS) / 4, QueueReg::Srrctl)),
        _ => return None,
    };
    let reg = queue_reg(reg)?;
    // The +0x30 slot holds QPRC(0..15) in queues 0..15 and QPRDC(0..15) in queues 16..31
    // (§8.2.3.23: QPRC at 0x01030 + 0x40n, QPRDC at 0x01430 + 0x40n).
    match (reg, q) {
        (QueueReg::Qstat, 0..16) => Some((q, QueueReg::Qprc)),
        (QueueReg::Qstat, 16..32) => Some((q - 16, QueueReg::Qprdc)),
        (QueueReg::Qstat | QueueReg::QbrcL | QueueReg::QbrcH, 16..) => None,
        _ => Some((q, reg)),
    }
}

/// Decodes a tx queue register offset (§8.2.3.9).
#[inline]
fn decode_tx(offset: usize) -> Option<(usize, QueueReg)> {
    match offset {
        0x06000..0x08000 => match queue_reg(offset % QUEUE_STRIDE)? {
            QueueReg::Srrctl
            | QueueReg::Qstat
            | QueueReg::Qprc
            | QueueReg::Qprdc
            | QueueReg::QbrcL
            | QueueReg::QbrcH => None,
            reg => Some(((offset - TXQ) / QUEUE_STRIDE, reg)),
        },
        _ => None,
    }
}

fn lo(v: u64) -> u32 {
    v as u32
}

/// QPTC(0..15): the +0x30 slot of tx queue blocks 0..15.
fn is_qptc(offset: usize) -> bool {
    (TXQ..TXQ + 16 * QUEUE_STRIDE).contains(&offset) && offset % QUEUE_STRIDE == TXQ_QPTC
}

impl PortState {
    pub(crate) fn new(index: usize, device: u16) -> Self {
        let mut p = PortState {
            index,
            regs: vec![0; BAR0_SIZE / 4].into_boxed_slice(),
            rx: vec![Ring::default(); NUM_QUEUES].into_boxed_slice(),
            tx: vec![Ring::default(); NUM_QUEUES].into_boxed_slice(),
            stats: Stats::default(),
            reset: None,
            master_idle_seen: false,
            master_polls: 0,
            master_timed_out: false,
            flushed: false,
            second_reset: false,
            phy: None,
            secrx_rdy_seen: false,
            secrx_polls: 0,
            device,
            nvm_link_disabled: false,
            resets: Vec::new(),
            link: Link::Down,
            macs: Vec::new(),
            scratch: Vec::with_capacity(16 * 1024),
            peer: Peer::Sink,
            sources: Vec::new(),
            capture: false,
            captured: Vec::new(),
            link_never_up: false,
            wire: WireStats::default(),
            driver: false,
            held: 0,
        };
        if p.is_x5x0() {
            p.phy = Some(Phy::new(matches!(device, 0x1563 | 0x15d1)));
        }
        p.load_defaults();
        // A fibre port's laser starts off (as the last driver's close left it).
        p.regs[ESDP / 4] = if p.has_laser() { ESDP_SDP3 } else { 0 };
        p
    }

    /// An X540 or X550 (the PHY brings the link up; reset under the SW/FW semaphore; no
    /// receive halt around RXEN), else an 82599.
    pub(crate) fn is_x5x0(&self) -> bool {
        matches!(self.device, 0x1528 | 0x1560 | 0x1563 | 0x15d1)
    }

    /// An 82599 SFP+ fibre port with its laser on ESDP.SDP3 (Linux media type fibre).
    pub(crate) fn has_laser(&self) -> bool {
        matches!(
            self.device,
            0x10fb | 0x1529 | 0x1507 | 0x154d | 0x154a | 0x1557
        )
    }

    /// Whether the transmit laser is on (ports without laser control: always).
    pub(crate) fn laser_on(&self) -> bool {
        !self.has_laser() || self.regs[ESDP / 4] & ESDP_SDP3 == 0
    }

    /// Register values after a reset, as far as the model uses them (§8.2.3 register
    /// tables, "Init val."), with EEPROM auto-read and DMA init already done.
    fn load_defaults(&mut self) {
        // ESDP drives pins; SWSM, SW_FW_SYNC and MMNGC are shared with the firmware.
        let kept = [ESDP, SWSM, SW_FW_SYNC, MMNGC].map(|r| (r, self.regs[r / 4]));
        self.regs.fill(0);
        for (r, v) in kept {
            self.regs[r / 4] = v;
        }
        self.rx.fill(Ring::default());
        self.tx.fill(Ring::default());
        self.stats = Stats::default();
        self.link = Link::Down;
        self.master_idle_seen = false;
        self.master_polls = 0;
        self.master_timed_out = false;
        self.flushed = false;
        self.secrx_rdy_seen = false;
        self.secrx_polls = 0;
        // §8.2.3.8.7 SRRCTL: BSIZEPACKET 2 KB, BSIZEHEADER 256 B, legacy descriptors.
        for r in self.rx.iter_mut() {
            r.srrctl = 0x0000_0402;
        }
        let sfp = self.has_laser() || self.device == 0x1558;
        let lms = if sfp {
            AUTOC_LMS_1G_NO_AN
        } else {
            AUTOC_LMS_KX4_KX_KR
        };
        let r = &mut self.regs;
        r[EEC / 4] = EEC_PRES | EEC_ARD;
        // §8.2.3.8.8 RDRXCTL: RSCFRSTSIZE has a non-zero default (0x8 here) software
        // must clear.
        r[RDRXCTL / 4] = RDRXCTL_DMAIDONE | 0x8 << 17;
        // §8.2.3.22.8 HLREG0: TXCRCEN, RXCRCSTRP, TXPADEN, RXLNGTHERREN set (bit 3
        // reserved, set).
        r[HLREG0 / 4] = 0x0000_040B | HLREG0_RXLNGTHERREN;
        // §8.2.3.22.13 MAXFRS.MFS = 1518 (bits 31:16).
        r[MAXFRS / 4] = 1518 << 16;
        // §8.2.3.8.9: every receive packet buffer defaults to 512 KB ("the default size of
        // PB[1-7] is also 512 KB"); §8.2.3.9.13: transmit buffer 0 has all 160 KB.
        for n in 0..8 {
            r[RXPBSIZE / 4 + n] = 0x0008_0000;
        }
        r[TXPBSIZE / 4] = 0x0002_8000;
        // AUTOC.LMS from this model's "EEPROM": on SFP+ ports 1 Gb/s without
        // auto-negotiation, so a driver that does not select 10 Gb/s serial gets a 1 Gb/s
        // link; on the other 82599 ports KX4/KX/KR auto-negotiation (10 Gb/s here), which
        // a driver must keep.
        r[AUTOC / 4] = lms << AUTOC_LMS_SHIFT;
        if self.nvm_link_disabled {
            r[AUTOC2 / 4] = AUTOC2_LINK_DISABLE_MASK;
        }
        // §8.2.3.7.8/9 RAL(0)/RAH(0) from the EEPROM, address valid.
        let mac = eeprom_mac(self.index);
        r[RAL / 4] = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        r[(RAL + 4) / 4] = u32::from(mac[4]) | u32::from(mac[5]) << 8 | RAH_AV;
        self.macs = vec![mac];
    }

    /// Stops rx and tx queues `queues` at once (their DMA ends, as when bus mastering is
    /// cut, a VF reset stops the VF's queues, or the PF driver stopped and waited for them
    /// before a reset). Returns true if one of them was still enabled or not yet read back
    /// disabled.
    pub(crate) fn stop_queues(&mut self, queues: std::ops::Range<usize>) -> bool {
        let mut running = false;
        for ring in self.rx[queues.clone()]
            .iter_mut()
            .chain(&mut self.tx[queues])
        {
            running |= ring.running_at_reset();
            ring.enabled = false;
            ring.disable_left = 0;
        }
        running
    }

    /// Whether `c` is held back on this port.
    #[inline]
    pub(crate) fn held(&self, c: Completion) -> bool {
        self.held & c.bit() != 0
    }

    /// The vectors some cause is mapped to: valid IVAR and IVAR_MISC entries (§7.3;
    /// without MSI-X the entry names the EICR bit instead, the same check).
    fn routed_vectors(&self) -> u64 {
        let misc = self.regs[IVAR_MISC / 4] & 0xFFFF;
        let ivars = self.regs[IVAR / 4..IVAR / 4 + 64].iter().chain([&misc]);
        let entries = ivars.flat_map(|r| r.to_le_bytes());
        entries
            .map(u32::from)
            .filter(|e| e & IVAR_ALLOC_VAL != 0)
            .fold(0, |v, e| v | 1 << (e & IVAR_ALLOC_MASK))
    }

    /// Fails the test if `vectors` (as bits) include one no cause is mapped to.
    fn check_routed(&self, name: &str, value: u32, vectors: u64) {
        let stray = vectors & !self.routed_vectors();
        if stray != 0 {
            violated!(
                self.index,
                rule::IRQ_UNROUTED,
                "{name} = {value:#010x}: no valid IVAR entry maps a cause to vector(s) \
                 {stray:#x}; a mask or cause bit acts only on a mapped vector (§7.3, §8.2.3.5)"
            );
        }
    }

    /// A write to an interrupt register (§8.2.3.5): EICS sets causes, EICR clears them
    /// (write 1b to clear), EIMS/EIMC set and clear the mask, EIMS_EX/EIMC_EX(0/1) those of
    /// MSI-X vectors 0-63, whose bits 15:0 of EIMS_EX(0) are EIMS bits 15:0. A vector bit
    /// must name a mapped vector, except in a clear of every vector (the interrupt disable
    /// of 4.6.3.1: EIMC bits 15:0, or a whole EIMC_EX, all ones).
    fn write_interrupt(&mut self, offset: usize, value: u32) {
        let queues = u64::from(value & EICR_RTXQ);
        let ex = (offset & 4) / 4;
        if offset == EIMC && queues != u64::from(EICR_RTXQ) {
            self.check_routed("EIMC", value, queues);
        }
        if offset & !4 == EIMC_EX && value != u32::MAX {
            let name = ["EIMC_EX(0)", "EIMC_EX(1)"][ex];
            self.check_routed(name, value, u64::from(value) << (32 * ex));
        }
        let r = &mut self.regs;
        match offset {
            EICS => {
                self.check_routed("EICS", value, queues);
                self.regs[EICR / 4] |= value;
            }
            EICR => {
                self.check_routed("EICR", value, queues);
                self.regs[EICR / 4] &= !value;
            }
            EIMS => {
                self.check_routed("EIMS", value, queues);
                self.regs[EIMS / 4] |= value;
            }
            EIMC => r[EIMS / 4] &= !value,
            o if o & !4 == EIMS_EX => {
                let vectors = u64::from(value) << (32 * ex);
                self.check_routed(["EIMS_EX(0)", "EIMS_EX(1)"][ex], value, vectors);
                self.regs[EIMS_EX / 4 + ex] |= value;
            }
            _ => r[EIMS_EX / 4 + ex] &= !value,
        }
        // Keep the two views of vectors 0-15 alike.
        let r = &mut self.regs;
        if matches!(offset, EIMS | EIMC) {
            r[EIMS_EX / 4] = (r[EIMS_EX / 4] & !EICR_RTXQ) | (r[EIMS / 4] & EICR_RTXQ);
        } else if ex == 0 && offset != EICS && offset != EICR {
            r[EIMS / 4] = (r[EIMS / 4] & !EICR_RTXQ) | (r[EIMS_EX / 4] & EICR_RTXQ);
        }
    }

    pub(crate) fn link_down(&mut self) {
        self.link = Link::Down;
    }

    fn link_up(&self) -> bool {
        matches!(self.link, Link::Up { .. })
    }

    /// A register's stored value, without read side effects.
    pub(crate) fn reg(&self, offset: usize) -> u32 {
        self.regs[offset / 4]
    }

    /// Sets a register as the hardware or firmware would, without write side effects.
    pub(crate) fn set_reg(&mut self, offset: usize, value: u32) {
        self.regs[offset / 4] = value;
    }

    pub(crate) fn any_rx_queue_enabled(&self) -> bool {
        self.rx.iter().any(|r| r.enabled)
    }

    fn rx_enabled(&self) -> bool {
        self.regs[RXCTRL / 4] & RXCTRL_RXEN != 0
    }

    /// Completes a running reset if its time is up. Returns true while still in reset.
    #[inline]
    fn in_reset(&mut self) -> bool {
        match self.reset {
            None => false,
            Some(_) if self.held(Completion::Reset) => true,
            Some((start, _)) if start.elapsed() >= RESET_TIME => {
                self.reset = None;
                false
            }
            Some(_) => true,
        }
    }

    /// Whether a reset started less than [`RESET_BLACKOUT`] ago (no access allowed).
    #[inline]
    fn in_reset_blackout(&self) -> bool {
        matches!(self.reset, Some((start, _)) if start.elapsed() < RESET_BLACKOUT)
    }

    /// Starts a software reset (CTRL.RST) or a link reset (CTRL.LRST, on the 82599 a
    /// software reset that also resets the link: Linux `ixgbe_reset_hw_82599` uses it as the
    /// global reset while the link is down), §4.2.1.6. An X540/X550 resets under its PHY's
    /// SW/FW semaphore (Linux `ixgbe_reset_hw_X540`).
    fn start_reset(&mut self, value: u32) {
        let bits = value & (CTRL_RST | CTRL_LRST);
        if bits == 0 {
            return;
        }
        let phy = SW_FW_SYNC_SW_PHY0_SM << (self.index & 1);
        let locked = self.regs[SW_FW_SYNC / 4] & phy != 0;
        if self.is_x5x0() && (!locked || bits != CTRL_RST) {
            violated!(
                self.index,
                rule::RESET_WITHOUT_PHY_SEMAPHORE,
                "CTRL = {value:#x}: take SW_FW_SYNC bit {phy:#x} (SWSM.SMBI, then REGSMP) and \
                 set CTRL.RST only (Linux ixgbe_reset_hw_X540)"
            );
        }
        if self.master_timed_out && !self.flushed {
            violated!(
                self.index,
                rule::RESET_WITHOUT_FLUSH,
                "CTRL = {value:#x} after STATUS.GIO_MASTER_ENABLE stayed set: set HLREG0.LPBK \
                 and GCR_EXT.Buffers_Clear_Func first, then reset twice (Linux \
                 ixgbe_clear_tx_pending, ixgbe_reset_hw_82599/_X540)"
            );
        }
        if !self.master_idle_seen && !self.second_reset {
            violated!(
                self.index,
                rule::RESET_WITHOUT_MASTER_DISABLE,
                "CTRL.RST set before CTRL.PCIe_Master_Disable was set and \
                 STATUS.GIO_MASTER_ENABLE read back as 0 (§4.2.1.6.1, §5.2.5.3.2)"
            );
        }
        let running = |kind, rings: &[Ring]| {
            rings
                .iter()
                .position(Ring::running_at_reset)
                .map(|q| (kind, q))
        };
        if let Some((kind, q)) = running("R", &self.rx).or(running("T", &self.tx)) {
            violated!(
                self.index,
                rule::RESET_WITH_QUEUE_RUNNING,
                "CTRL.RST while {kind}XDCTL({q}).ENABLE still reads 1: clear it and poll \
                 until it reads 0 before the reset (§4.6.7.1.2, §4.6.8.1; the data path \
                 must be flushed before a software reset, 82599 specification update)"
            );
        }
        self.resets.push((bits, locked));
        let second = self.master_timed_out;
        self.load_defaults();
        self.second_reset = second;
        self.reset = Some((Instant::now(), 0));
        // The PHY keeps what it negotiated: the link comes back after the MAC reset.
        self.phy_link();
    }

    /// The link as an X540/X550 PHY's auto-negotiation left it: up (after a few LINKS
    /// polls) at the speed negotiated, or down.
    fn phy_link(&mut self) {
        let negotiated = self.phy.as_ref().and_then(|phy| phy.negotiated);
        if let Some(speed) = negotiated.filter(|_| !self.link_never_up) {
            self.link = Link::Negotiating {
                polls: AN_POLLS,
                speed,
            };
        }
    }

    /// An MSCA write: with MDI_COMMAND, one MDIO cycle to the PHY (Linux
    /// `ixgbe_read_phy_reg_mdi`, `ixgbe_write_phy_reg_mdi`), which needs the PHY's SW/FW
    /// semaphore held and the previous cycle read back complete.
    fn write_msca(&mut self, value: u32) {
        let Some(phy) = self.phy.as_mut() else {
            unsupported!(
                self.index,
                "MDIO (MSCA = {value:#x}) on a port without a PHY"
            );
        };
        if self.regs[MSCA / 4] & MSCA_MDI_COMMAND != 0 {
            violated!(
                self.index,
                rule::MDIO_WHILE_BUSY,
                "MSCA = {value:#x}: poll MSCA until MDI_COMMAND reads 0 first"
            );
        }
        self.regs[MSCA / 4] = value;
        if value & MSCA_MDI_COMMAND == 0 {
            return;
        }
        let semaphore = SW_FW_SYNC_SW_PHY0_SM << (self.index & 1);
        if self.regs[SW_FW_SYNC / 4] & semaphore == 0 {
            violated!(
                self.index,
                rule::MDIO_WITHOUT_PHY_SEMAPHORE,
                "MSCA = {value:#x}: take SW_FW_SYNC bit {semaphore:#x} around each PHY access \
                 (Linux ixgbe_read_phy_reg_generic)"
            );
        }
        let restarts = phy.restarts;
        match phy.cycle(value, self.regs[MSRWD / 4]) {
            Ok(msrwd) => self.regs[MSRWD / 4] = msrwd,
            Err(e) => violated!(self.index, rule::MDIO_CYCLE, "MSCA = {value:#x}: {e}"),
        }
        if phy.restarts != restarts {
            self.link = Link::Down;
            self.phy_link();
        }
    }

    fn rebuild_macs(&mut self) {
        self.macs.clear();
        for n in 0..NUM_RAR {
            let ral = self.regs[(RAL + 8 * n) / 4];
            let rah = self.regs[(RAL + 8 * n + 4) / 4];
            if rah & RAH_AV != 0 {
                let l = ral.to_le_bytes();
                let h = rah.to_le_bytes();
                self.macs.push([l[0], l[1], l[2], l[3], h[0], h[1]]);
            }
        }
    }

    /// Layer 2 filtering, §7.1.1.1: exact unicast filters (RAL/RAH) or FCTRL.UPE;
    /// broadcast with FCTRL.BAM; other multicast with FCTRL.MPE (the multicast table
    /// array is not modelled: without MPE multicast is dropped).
    #[inline]
    fn accepts(&self, frame: &[u8]) -> bool {
        let Some(dst) = frame.get(..6) else {
            return false;
        };
        let fctrl = self.regs[FCTRL / 4];
        if dst == [0xff; 6] {
            fctrl & FCTRL_BAM != 0
        } else if dst[0] & 1 != 0 {
            fctrl & FCTRL_MPE != 0
        } else {
            fctrl & FCTRL_UPE != 0 || self.macs.iter().any(|m| m == dst)
        }
    }

    /// Largest frame (with CRC) the MAC accepts: 1518 bytes, or MAXFRS.MFS with jumbo
    /// frames enabled (§8.2.3.22.13).
    fn max_frame(&self) -> usize {
        if self.regs[HLREG0 / 4] & HLREG0_JUMBOEN != 0 {
            (self.regs[MAXFRS / 4] >> 16) as usize
        } else {
            1518
        }
    }

    fn links(&mut self) -> u32 {
        if let Link::Negotiating { polls, speed } = self.link {
            self.link = if polls == 0 {
                Link::Up { speed }
            } else {
                Link::Negotiating {
                    polls: polls - 1,
                    speed,
                }
            };
        }
        match self.link {
            Link::Up { speed } => LINKS_UP | LINKS_STATUS | speed,
            _ => 0,
        }
    }

    fn restart_an(&mut self, autoc: u32) {
        if self.link_never_up
            || !self.laser_on()
            || self.regs[AUTOC2 / 4] & AUTOC2_LINK_DISABLE_MASK != 0
        {
            self.link = Link::Down;
            return;
        }
        let speed = match (autoc & AUTOC_LMS_MASK) >> AUTOC_LMS_SHIFT {
            AUTOC_LMS_1G_NO_AN | AUTOC_LMS_1G_AN => LINKS_SPEED_1G,
            // 10G serial, and the 10G parallel and KX4/KX/KR variants.
            AUTOC_LMS_10G_SERIAL => LINKS_SPEED_10G,
            _ => LINKS_SPEED_10G,
        };
        self.link = Link::Negotiating {
            polls: AN_POLLS,
            speed,
        };
    }

    fn read_rx_queue(&mut self, q: usize, reg: QueueReg) -> u32 {
        match reg {
            QueueReg::Srrctl => self.rx[q].srrctl,
            QueueReg::Qprc => lo(std::mem::take(&mut self.stats.qprc[q])),
            QueueReg::Qprdc => lo(std::mem::take(&mut self.stats.qprdc[q])),
            QueueReg::QbrcL => {
                let v = std::mem::take(&mut self.stats.qbrc[q]);
                self.stats.qbrc_latch[q] = (v >> 32) as u32 & 0xF;
                lo(v)
            }
            QueueReg::QbrcH => std::mem::take(&mut self.stats.qbrc_latch[q]),
            QueueReg::Qstat => 0,
            _ => self.rx[q].read_ring_reg(reg),
        }
    }

    fn read_tx_queue(&mut self, q: usize, reg: QueueReg) -> u32 {
        self.tx[q].read_ring_reg(reg)
    }

    /// A register read (§8.2.3; reads have side effects only where the datasheet says:
    /// clear-on-read counters, EICR).
    pub(crate) fn read(&mut self, offset: usize) -> u32 {
        if offset >= BAR0_SIZE || !offset.is_multiple_of(4) {
            violated!(self.index, rule::BAD_OFFSET, "read at {offset:#x}");
        }
        if self.reset.is_some() && self.in_reset_blackout() {
            violated!(
                self.index,
                rule::READ_IN_RESET,
                "read at {offset:#x} less than 1 ms after CTRL.RST was set; wait ~1 ms \
                 before polling CTRL or touching any register (§8.2.3.1.1)"
            );
        }
        if let Some((q, reg)) = decode_rx(offset) {
            return self.read_rx_queue(q, reg);
        }
        if let Some((q, reg)) = decode_tx(offset) {
            return self.read_tx_queue(q, reg);
        }
        let in_reset = self.in_reset();
        let s = &mut self.stats;
        match offset {
            CTRL => {
                if let Some((start, reads)) = self.reset {
                    // CTRL.RST self-clears: still set on the first read during reset.
                    if reads == 0 || self.held(Completion::Reset) {
                        self.reset = Some((start, 1));
                        return self.regs[CTRL / 4] | CTRL_RST;
                    }
                    self.reset = None;
                }
                self.regs[CTRL / 4]
            }
            STATUS => {
                let link = if self.link_up() { STATUS_LINK_UP } else { 0 };
                // §5.2.5.3.2: no master request is pending in the model, so the status
                // clears as soon as master disable is requested.
                let gio = if self.regs[CTRL / 4] & CTRL_MASTER_DISABLE != 0 {
                    if self.held & Completion::MasterDisable.bit() == 0 {
                        self.master_idle_seen = true;
                        0
                    } else {
                        // Requests stay pending; a driver that polled a while may reset
                        // anyway (Linux `ixgbe_disable_pcie_master` does).
                        self.master_polls = self.master_polls.saturating_add(1);
                        self.master_timed_out |= self.master_polls >= MASTER_POLLS;
                        self.master_idle_seen |= self.master_timed_out;
                        STATUS_GIO_MASTER_ENABLE
                    }
                } else {
                    STATUS_GIO_MASTER_ENABLE
                };
                ((self.index as u32 & 1) << STATUS_LAN_ID_SHIFT) | gio | link
            }
            SECRXSTAT => {
                // The halt completes at once: nothing is in flight in the model.
                let halting = self.regs[SECRXCTRL / 4] & SECRXCTRL_RX_DIS != 0;
                if halting && self.held & Completion::SecRxReady.bit() == 0 {
                    self.secrx_rdy_seen = true;
                    SECRXSTAT_SECRX_RDY
                } else {
                    self.secrx_polls += halting as u32;
                    self.secrx_rdy_seen |= self.secrx_polls >= SECRX_POLLS;
                    0
                }
            }
            // Each semaphore bit reads 0 when free, and that read takes it.
            SWSM | SW_FW_SYNC => {
                let bit = if offset == SWSM {
                    SWSM_SMBI
                } else {
                    SW_FW_SYNC_REGSMP
                };
                let v = self.regs[offset / 4];
                self.regs[offset / 4] |= bit;
                v
            }
            EEC if in_reset || self.held & Completion::EepromAutoRead.bit() != 0 => {
                self.regs[EEC / 4] & !EEC_ARD
            }
            RDRXCTL if in_reset || self.held & Completion::DmaInit.bit() != 0 => {
                self.regs[RDRXCTL / 4] & !RDRXCTL_DMAIDONE
            }
            LINKS => self.links(),
            MSCA if self.held & Completion::Mdio.bit() == 0 => {
                self.regs[MSCA / 4] &= !MSCA_MDI_COMMAND;
                self.regs[MSCA / 4]
            }
            EICR => std::mem::take(&mut self.regs[EICR / 4]),
            EIMC | EIMC_EX | 0x00AB4 => 0,
            GPRC => lo(std::mem::take(&mut s.gprc)),
            GPTC => lo(std::mem::take(&mut s.gptc)),
            TPR => lo(std::mem::take(&mut s.tpr)),
            TPT => lo(std::mem::take(&mut s.tpt)),
            ROC => lo(std::mem::take(&mut s.roc)),
            GORCL => {
                let v = std::mem::take(&mut s.gorc);
                s.gorch_latch = (v >> 32) as u32 & 0xF;
                lo(v)
            }
            GORCH => std::mem::take(&mut s.gorch_latch),
            GOTCL => {
                let v = std::mem::take(&mut s.gotc);
                s.gotch_latch = (v >> 32) as u32 & 0xF;
                lo(v)
            }
            GOTCH => std::mem::take(&mut s.gotch_latch),
            o if (MPC..MPC + 32).contains(&o) => lo(std::mem::take(&mut s.mpc[(o - MPC) / 4])),
            o if is_qptc(o) => lo(std::mem::take(&mut s.qptc[(o - TXQ) / QUEUE_STRIDE])),
            o if (QBTC..QBTC + 8 * 16).contains(&o) => {
                let c = (o - QBTC) / 8;
                if o % 8 == 0 {
                    let v = std::mem::take(&mut s.qbtc[c]);
                    s.qbtc_latch[c] = (v >> 32) as u32 & 0xF;
                    lo(v)
                } else {
                    std::mem::take(&mut s.qbtc_latch[c])
                }
            }
            o => self.regs[o / 4],
        }
    }
}

impl ModelInner {
    /// Register read on port `p`.
    pub(crate) fn read(&mut self, p: usize, offset: usize) -> u32 {
        let port = &mut self.ports[p];
        let was_up = port.link_up();
        let value = port.read(offset);
        if !was_up && port.link_up() {
            // The link just came up (a LINKS poll ended auto-negotiation): sources start.
            self.run_sources(p);
        }
        value
    }

    /// Register write on port `p`: stores the value and runs what the write triggers.
    pub(crate) fn write(&mut self, p: usize, offset: usize, value: u32) {
        let port = &mut self.ports[p];
        if offset >= BAR0_SIZE || !offset.is_multiple_of(4) {
            violated!(p, rule::BAD_OFFSET, "write of {value:#x} at {offset:#x}");
        }
        if port.in_reset() {
            if port.held(Completion::Reset) {
                // A device stuck in reset ignores writes; the driver waited its bound.
                return;
            }
            violated!(
                p,
                rule::WRITE_IN_RESET,
                "{value:#x} written at {offset:#x} before CTRL.RST self-cleared; wait for it \
                 (§4.2.1.6.1, §4.6.3.2)"
            );
        }
        if let Some((q, reg)) = decode_rx(offset) {
            return self.write_rx_queue(p, q, reg, value);
        }
        if let Some((q, reg)) = decode_tx(offset) {
            return self.write_tx_queue(p, q, reg, value);
        }
        if let Some((name, mask, section)) = reserved::reserved(offset) {
            check_reserved(p, name, value, mask, section);
        }
        match offset {
            CTRL => {
                let was_disabled = port.regs[CTRL / 4] & CTRL_MASTER_DISABLE != 0;
                // RST and LRST self-clear (§8.2.3.1.1).
                port.regs[CTRL / 4] = value & !(CTRL_RST | CTRL_LRST);
                let reset = value & (CTRL_RST | CTRL_LRST) != 0;
                if !reset && (value & CTRL_MASTER_DISABLE == 0 || !was_disabled) {
                    // Mastering back on, or master disable just requested: the STATUS
                    // poll of §5.2.5.3.2 is (again) needed before a reset.
                    port.master_idle_seen = false;
                    port.master_polls = 0;
                }
                port.start_reset(value);
            }
            STATUS | LINKS | SECRXSTAT | MMNGC => {} // read-only here
            EICR | EICS | EIMS | EIMC | EIMS_EX | 0x00AA4 | EIMC_EX | 0x00AB4 => {
                port.write_interrupt(offset, value)
            }
            SECRXCTRL => {
                let was_halted = port.regs[SECRXCTRL / 4] & SECRXCTRL_RX_DIS != 0;
                port.regs[SECRXCTRL / 4] = value;
                if value & SECRXCTRL_RX_DIS == 0 {
                    port.secrx_rdy_seen = false;
                    port.secrx_polls = 0;
                    if was_halted && port.rx_enabled() {
                        // The receive data path resumes: sources start.
                        self.run_sources(p);
                    }
                }
            }
            FCTRL => {
                if port.rx_enabled() && port.regs[FCTRL / 4] != value {
                    violated!(
                        p,
                        rule::FCTRL_WHILE_RX,
                        "FCTRL {:#x} -> {value:#x} with RXCTRL.RXEN set; clear RXEN before \
                         changing receive filters (§8.2.3.7.1)",
                        port.regs[FCTRL / 4]
                    );
                }
                port.regs[FCTRL / 4] = value;
            }
            MSCA => port.write_msca(value),
            GCR_EXT => {
                let lpbk = port.regs[HLREG0 / 4] & HLREG0_LPBK != 0;
                port.flushed |= lpbk && value & GCR_EXT_BUFFERS_CLEAR != 0;
                port.regs[GCR_EXT / 4] = value;
            }
            AUTOC => {
                port.regs[AUTOC / 4] = value & !AUTOC_RESTART_AN;
                if value & AUTOC_RESTART_AN != 0 {
                    port.restart_an(value);
                }
            }
            RXCTRL => {
                let was = port.rx_enabled();
                port.regs[RXCTRL / 4] = value;
                if value & RXCTRL_RXEN != 0 && !was {
                    self.enable_rx(p);
                }
            }
            DMATXCTL => port.regs[DMATXCTL / 4] = value,
            o if (RXPBSIZE..RXPBSIZE + 32).contains(&o) => {
                if port.rx_enabled() && port.regs[o / 4] != value {
                    violated!(
                        p,
                        rule::RXPBSIZE_WHILE_RX,
                        "RXPBSIZE({}) {:#x} -> {value:#x} with RXCTRL.RXEN set; size the \
                         packet buffers before receive is enabled (§4.6.11.3.4, §8.2.3.8.9)",
                        (o - RXPBSIZE) / 4,
                        port.regs[o / 4]
                    );
                }
                port.regs[o / 4] = value;
            }
            o if (TXPBSIZE..TXPBSIZE + 32).contains(&o) => {
                if port.regs[RTTDCS / 4] & RTTDCS_ARBDIS == 0 && port.regs[o / 4] != value {
                    violated!(
                        p,
                        rule::TXPBSIZE_WITH_ARBITER,
                        "TXPBSIZE({}) {:#x} -> {value:#x} with RTTDCS.ARBDIS clear; disable \
                         the tx descriptor arbiter around the change (§4.6.11.3.4)",
                        (o - TXPBSIZE) / 4,
                        port.regs[o / 4]
                    );
                }
                port.regs[o / 4] = value;
            }
            o if (RAL..RAL + 8 * NUM_RAR).contains(&o) => {
                port.regs[o / 4] = value;
                port.rebuild_macs();
            }
            o if (MPC..MPC + 32).contains(&o) => {} // counters are read-only
            o if is_qptc(o) || (QBTC..QBTC + 8 * 16).contains(&o) => {}
            GPRC | GPTC | GORCL | GORCH | GOTCL | GOTCH | TPR | TPT | ROC | CRCERRS | RLEC
            | RUC => {}
            // EIAC, EIAM, GPIE, IVAR, EITR, HLREG0, RDRXCTL, RXPBSIZE, FCRTH, MFLCN, TXPBSIZE,
            // MAXFRS, DCA_*CTRL, RTTDCS, DTXMXSZRQ, ...: read back as written.
            o => port.regs[o / 4] = value,
        }
    }

    /// RXCTRL.RXEN was set (§4.6.7: after the rx queues are enabled).
    fn enable_rx(&mut self, p: usize) {
        let port = &self.ports[p];
        if !port.rx.iter().any(|r| r.enabled) {
            violated!(
                p,
                rule::RX_BEFORE_QUEUE,
                "RXCTRL.RXEN set while no rx queue has RXDCTL.ENABLE (§4.6.7)"
            );
        }
        if !port.is_x5x0()
            && (port.regs[SECRXCTRL / 4] & SECRXCTRL_RX_DIS == 0 || !port.secrx_rdy_seen)
        {
            violated!(
                p,
                rule::RX_WITHOUT_SECRX_HALT,
                "set SECRXCTRL.RX_DIS, poll SECRXSTAT.SECRX_RDY, then set RXCTRL.RXEN and \
                 clear RX_DIS (§4.6.7; 82599 errata)"
            );
        }
        let rdrxctl = port.regs[RDRXCTL / 4];
        if rdrxctl & RDRXCTL_RSCFRSTSIZE != 0
            || rdrxctl & (RDRXCTL_RSCACKC | RDRXCTL_FCOE_WRFIX)
                != RDRXCTL_RSCACKC | RDRXCTL_FCOE_WRFIX
        {
            violated!(
                p,
                rule::RDRXCTL_RSC_BITS,
                "RDRXCTL = {rdrxctl:#010x}: RSCFRSTSIZE must be 0, RSCACKC and FCOE_WRFIX 1b \
                 (§4.6.7, §8.2.3.8.8)"
            );
        }
        for n in 0..8 {
            let size = port.regs[RXPBSIZE / 4 + n];
            let rth = port.regs[FCRTH / 4 + n] & FCRTH_RTH_MASK;
            if size != 0 && (rth == 0 || rth > size) {
                violated!(
                    p,
                    rule::FCRTH_UNSET,
                    "RXPBSIZE({n}) = {size:#x}, FCRTH({n}).RTH = {rth:#x}: set it whether or \
                     not flow control is used, typically to RXPBSIZE - 0x6000 (§4.6.3.2)"
                );
            }
        }
        let hl = port.regs[HLREG0 / 4] & HLREG0_RXCRCSTRP != 0;
        let rd = port.regs[RDRXCTL / 4] & RDRXCTL_CRCSTRIP != 0;
        if hl != rd {
            violated!(
                p,
                rule::CRC_STRIP_MISMATCH,
                "HLREG0.RXCRCSTRP={hl}, RDRXCTL.CRCSTRIP={rd}; they must be set alike \
                 (§8.2.3.8.8)"
            );
        }
        // Sources start when SECRXCTRL.RX_DIS is cleared (the data path resumes).
    }

    fn check_ring_register(&self, p: usize, ring: &Ring, what: &str, q: usize) {
        if ring.live() {
            violated!(
                p,
                rule::RING_WHILE_ENABLED,
                "{what}({q}) written while queue {q} is enabled; disable it first"
            );
        }
    }

    /// Checks a queue's ring before enabling it (§4.6.7, §4.6.8).
    fn check_ring(&self, p: usize, ring: &Ring, kind: &str, q: usize) {
        if ring.base() == 0 || ring.len == 0 {
            violated!(
                p,
                rule::ENABLE_BEFORE_RING,
                "{kind}DCTL({q}).ENABLE set with base {:#x}, length {}",
                ring.base(),
                ring.len
            );
        }
        if ring.head >= ring.entries() || ring.tail >= ring.entries() {
            violated!(
                p,
                rule::TAIL_BEYOND_RING,
                "{kind} queue {q} enabled with head {} / tail {} and {} descriptors",
                ring.head,
                ring.tail,
                ring.entries()
            );
        }
        self.check_dma(p, ring.base(), ring.len as u64, "descriptor ring");
    }

    #[inline]
    fn check_dma(&self, p: usize, addr: u64, len: u64, what: &str) {
        check_dma(&mut lock(&self.regions), p, addr, len, what);
    }

    fn write_ring_common(
        &mut self,
        p: usize,
        ring: &mut Ring,
        q: usize,
        kind: &str,
        reg: QueueReg,
        value: u32,
    ) {
        match reg {
            QueueReg::Bal => {
                self.check_ring_register(p, ring, &format!("{kind}DBAL"), q);
                if !value.is_multiple_of(128) {
                    violated!(
                        p,
                        rule::RING_ALIGN,
                        "{kind}DBAL({q}) = {value:#x} (§8.2.3.8.1, §8.2.3.9.5)"
                    );
                }
                ring.bal = value;
            }
            QueueReg::Bah => {
                self.check_ring_register(p, ring, &format!("{kind}DBAH"), q);
                ring.bah = value;
            }
            QueueReg::Len => {
                self.check_ring_register(p, ring, &format!("{kind}DLEN"), q);
                let section = if kind == "R" {
                    "8.2.3.8.3"
                } else {
                    "8.2.3.9.7"
                };
                check_reserved(p, &format!("{kind}DLEN"), value, QLEN_RESERVED, section);
                if !value.is_multiple_of(128) {
                    violated!(
                        p,
                        rule::RING_LEN,
                        "{kind}DLEN({q}) = {value} (§8.2.3.8.3, §8.2.3.9.7)"
                    );
                }
                if value > MAX_RING_BYTES {
                    violated!(
                        p,
                        rule::RING_TOO_LONG,
                        "{kind}DLEN({q}) = {value}: lengths are validated up to 128 KiB \
                         (§8.2.3.8.3, §8.2.3.9.7)"
                    );
                }
                ring.len = value;
            }
            QueueReg::Head => {
                if ring.live() {
                    violated!(
                        p,
                        rule::HEAD_WHILE_ENABLED,
                        "{kind}DH({q}) = {value}; only the device moves the head of an enabled queue"
                    );
                }
                ring.head = value;
            }
            _ => {}
        }
    }

    /// Checks a tail write (§7.1.9 / §7.2.3.3: the tail points one past the last
    /// descriptor handed to the device).
    fn check_tail(&self, p: usize, ring: &Ring, q: usize, kind: &str, value: u32) {
        if !ring.enabled {
            if ring.len != 0 && value >= ring.entries() {
                violated!(
                    p,
                    rule::TAIL_BEYOND_RING,
                    "{kind}DT({q}) = {value} but the ring has {} descriptors",
                    ring.entries()
                );
            }
            return;
        }
        if value >= ring.entries() {
            violated!(
                p,
                rule::TAIL_BEYOND_RING,
                "{kind}DT({q}) = {value} but the ring has {} descriptors",
                ring.entries()
            );
        }
        if !ring.enable_seen {
            violated!(
                p,
                rule::TAIL_BEFORE_ENABLE,
                "{kind}DT({q}) written before {kind}XDCTL({q}).ENABLE was read back as 1 \
                 (§4.6.7, §4.6.8)"
            );
        }
        let n = ring.entries();
        let new_owned = (value + n - ring.head) % n;
        if new_owned < ring.owned_by_device() {
            violated!(
                p,
                rule::TAIL_BACKWARDS,
                "{kind}DT({q}) moved from {} to {value} with head at {}",
                ring.tail,
                ring.head
            );
        }
        self.check_dma(p, ring.base(), ring.len as u64, "descriptor ring");
    }

    fn write_rx_queue(&mut self, p: usize, q: usize, reg: QueueReg, value: u32) {
        let mut ring = self.ports[p].rx[q];
        match reg {
            QueueReg::Tail => {
                self.check_tail(p, &ring, q, "R", value);
                self.ports[p].rx[q].tail = value;
                if ring.enabled {
                    self.run_source(p, q);
                }
                return;
            }
            QueueReg::Srrctl => {
                self.check_ring_register(p, &ring, "SRRCTL", q);
                check_reserved(p, "SRRCTL", value, SRRCTL_RESERVED, "8.2.3.8.7");
                ring.srrctl = value;
            }
            QueueReg::Dctl => {
                let enable = value & DCTL_ENABLE != 0;
                if enable && !ring.enabled {
                    self.check_ring(p, &ring, "RX", q);
                    let s = ring.srrctl;
                    if s & SRRCTL_DESCTYPE_MASK != SRRCTL_DESCTYPE_ADV_ONEBUF
                        || s & SRRCTL_BSIZEPACKET_MASK == 0
                    {
                        violated!(
                            p,
                            rule::RX_DESCTYPE,
                            "SRRCTL({q}) = {s:#x}: DESCTYPE must be 001b (advanced one buffer) \
                             and BSIZEPACKET non-zero (§8.2.3.8.7)"
                        );
                    }
                }
                let port = &self.ports[p];
                ring.write_dctl(
                    value,
                    port.held(Completion::RxQueueEnable),
                    port.held(Completion::RxQueueDisable),
                );
            }
            QueueReg::Qstat
            | QueueReg::Qprc
            | QueueReg::Qprdc
            | QueueReg::QbrcL
            | QueueReg::QbrcH => return,
            _ => self.write_ring_common(p, &mut ring, q, "R", reg, value),
        }
        let now_enabled = ring.enabled;
        self.ports[p].rx[q] = ring;
        if now_enabled && reg == QueueReg::Dctl {
            self.run_source(p, q);
        }
    }

    fn write_tx_queue(&mut self, p: usize, q: usize, reg: QueueReg, value: u32) {
        let mut ring = self.ports[p].tx[q];
        match reg {
            QueueReg::Tail => {
                self.check_tail(p, &ring, q, "T", value);
                self.ports[p].tx[q].tail = value;
                if ring.enabled {
                    self.transmit(p, q);
                }
                return;
            }
            QueueReg::Dctl => {
                check_reserved(p, "TXDCTL", value, TXDCTL_RESERVED, "8.2.3.9");
                let enable = value & DCTL_ENABLE != 0;
                if enable && !ring.enabled {
                    if self.ports[p].regs[DMATXCTL / 4] & DMATXCTL_TE == 0 {
                        violated!(
                            p,
                            rule::TX_BEFORE_TE,
                            "TXDCTL({q}).ENABLE set while DMATXCTL.TE is clear (§4.6.8)"
                        );
                    }
                    self.check_ring(p, &ring, "TX", q);
                }
                let port = &self.ports[p];
                ring.write_dctl(
                    value,
                    port.held(Completion::TxQueueEnable),
                    port.held(Completion::TxQueueDisable),
                );
            }
            _ => self.write_ring_common(p, &mut ring, q, "T", reg, value),
        }
        self.ports[p].tx[q] = ring;
    }
}

/// Fails the test if `value`, written to register `name`, sets a bit of `mask` (the bits
/// datasheet section `section` marks reserved; see `reserved`).
#[inline]
fn check_reserved(p: usize, name: &str, value: u32, mask: u32, section: &str) {
    if value & mask != 0 {
        violated!(
            p,
            rule::RESERVED_BITS,
            "{name} = {value:#010x} sets reserved bits {:#010x}; write them as 0 (§{section})",
            value & mask
        );
    }
}

/// Fails the test unless `[addr, addr + len)` lies in live memory from `Model::dma()`.
#[inline]
fn check_dma(regions: &mut Regions, p: usize, addr: u64, len: u64, what: &str) {
    if !regions.contains(addr, len) {
        violated!(
            p,
            rule::DMA_OUTSIDE,
            "{what} at {addr:#x}, {len} bytes, is not inside a live region from Model::dma()"
        );
    }
}

/// Reads a descriptor quadword.
///
/// # Safety
/// `addr` must be 8-byte aligned and lie in live memory from `Model::dma()` (checked with
/// [`check_dma`]); the model is single-threaded and the driver holds no reference into
/// descriptor memory across a register access, like with a real device.
#[inline(always)]
unsafe fn read_u64(addr: u64) -> u64 {
    // SAFETY: per the function's contract.
    unsafe { std::ptr::read_volatile(addr as *const u64) }
}

/// Writes a descriptor quadword (the device's write-back).
///
/// # Safety
/// As for [`read_u64`].
#[inline(always)]
unsafe fn write_u64(addr: u64, value: u64) {
    // SAFETY: per the function's contract.
    unsafe { std::ptr::write_volatile(addr as *mut u64, value) }
}

/// Ethernet FCS (CRC-32, IEEE 802.3), for frames delivered without CRC stripping.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

// Advanced receive descriptor write-back (§7.1.6.2): status in bits 19:0 of the second
// quadword, PKT_LEN in bits 47:32.
const RXD_STAT_DD: u64 = 1 << 0;
const RXD_STAT_EOP: u64 = 1 << 1;

// Advanced transmit data descriptor (§7.2.3.2.4), second quadword, low dword:
// DTALEN 15:0, reserved 17:16, MAC 19:18, DTYP 23:20, DCMD 31:24.
const TXD_DTALEN_MASK: u32 = 0xFFFF;
const TXD_RSV_MASK: u32 = 0x3 << 16;
const TXD_DTYP_SHIFT: u32 = 20;
const TXD_DTYP_CTXT: u32 = 0x2;
const TXD_DTYP_DATA: u32 = 0x3;
const TXD_DCMD_EOP: u32 = 1 << 24;
const TXD_DCMD_IFCS: u32 = 1 << 25;
const TXD_DCMD_RSV26: u32 = 1 << 26;
const TXD_DCMD_RS: u32 = 1 << 27;
const TXD_DCMD_RSV28: u32 = 1 << 28;
const TXD_DCMD_DEXT: u32 = 1 << 29;
const TXD_DCMD_VLE: u32 = 1 << 30;
const TXD_DCMD_TSE: u32 = 1 << 31;
// High dword (olinfo): STA 3:0 (DD bit 0 on write-back), IDX 6:4, CC 7, POPTS 13:8,
// PAYLEN 31:14.
const TXD_STA_DD: u32 = 1 << 0;
const TXD_OFFLOAD_MASK: u32 = 0x3FF0;
const TXD_PAYLEN_SHIFT: u32 = 14;

/// Why a received frame was not delivered.
enum Drop {
    /// Not counted by the device (rx off, link down, filtered, queue disabled).
    Silent,
    /// Oversize: ROC.
    Oversize,
    /// No descriptor: MPC, or QPRDC with SRRCTL.DROP_EN.
    NoBuffer,
}

impl PortState {
    /// Whether a frame may enter rx queue `q`, before looking at descriptors.
    #[inline]
    fn rx_admits(&self, q: usize, frame: &[u8]) -> Result<(), Drop> {
        if !self.link_up()
            || !self.rx_enabled()
            || self.regs[SECRXCTRL / 4] & SECRXCTRL_RX_DIS != 0
            || !self.accepts(frame)
            || !self.rx[q].enabled
        {
            return Err(Drop::Silent);
        }
        if frame.len() + CRC_LEN as usize > self.max_frame() {
            return Err(Drop::Oversize);
        }
        Ok(())
    }

    fn count_drop(&mut self, q: usize, why: Drop) {
        self.wire.rx_dropped += 1;
        match why {
            Drop::Silent => {}
            Drop::Oversize => self.stats.roc += 1,
            Drop::NoBuffer => {
                // §7.1.3 / §8.2.3.23: with SRRCTL.DROP_EN the queue drops and counts in
                // QPRDC; otherwise the packet buffer overflows (the model has no FIFO to
                // hold frames) and MPC counts the miss.
                if self.rx[q].srrctl & SRRCTL_DROP_EN != 0 {
                    let c = self.stat_counter(q);
                    self.stats.qprdc[c] += 1;
                } else {
                    self.stats.mpc[0] += 1;
                }
            }
        }
    }

    /// The queue statistics counter rx queue `q` is mapped to (RQSMR, §8.2.3.8.x;
    /// all queues count in counter 0 after reset).
    #[inline]
    fn stat_counter(&self, q: usize) -> usize {
        (self.regs[(RQSMR + 4 * (q / 4)) / 4] >> (8 * (q % 4)) & 0xF) as usize
    }

    /// The statistics counter tx queue `q` is mapped to (TQSM, same layout as RQSMR).
    fn tx_stat_counter(&self, q: usize) -> usize {
        (self.regs[(TQSM + 4 * (q / 4)) / 4] >> (8 * (q % 4)) & 0xF) as usize
    }

    fn count_rx(&mut self, q: usize, frames: u64, bytes: u64) {
        let c = self.stat_counter(q);
        self.stats.qprc[c] += frames;
        self.stats.qbrc[c] += bytes + frames * CRC_LEN;
        self.stats.gprc += frames;
        self.stats.tpr += frames;
        // §8.2.3.23: octet counters include the CRC.
        self.stats.gorc += bytes + frames * CRC_LEN;
        self.wire.rx_frames += frames;
        self.wire.rx_bytes += bytes;
    }

    /// Writes one frame (`data` then `crc`) into rx queue `q` starting at its head, one
    /// buffer per descriptor, and advances the head. The caller checked that enough
    /// descriptors are owned by the device and that the ring is in live memory.
    fn fill_descriptors(&mut self, regions: &mut Regions, q: usize, data: &[u8], crc: &[u8]) {
        let p = self.index;
        let mut ring = self.rx[q];
        let bsize = ((ring.srrctl & SRRCTL_BSIZEPACKET_MASK) as usize) * 1024;
        let total = data.len() + crc.len();
        let n = ring.entries();
        if crc.is_empty() && total <= bsize {
            // Fast path: the frame fits one buffer.
            let d = ring.desc_addr(ring.head);
            // SAFETY: as below.
            let (pkt_addr, hdr_addr) = unsafe { (read_u64(d), read_u64(d + 8)) };
            if hdr_addr & 1 == 0 {
                check_dma(regions, p, pkt_addr, total as u64, "rx packet buffer");
                // SAFETY: as below.
                unsafe {
                    std::ptr::copy_nonoverlapping(data.as_ptr(), pkt_addr as *mut u8, total);
                    write_u64(d, 0);
                    write_u64(d + 8, RXD_STAT_DD | RXD_STAT_EOP | (total as u64) << 32);
                }
                self.rx[q].head = (ring.head + 1) % n;
                return;
            }
            // DD set: the general path reports it.
        }
        let mut done = 0;
        while done < total {
            let d = ring.desc_addr(ring.head);
            // SAFETY: the ring lies in live DMA memory (checked by the caller) and
            // descriptors are 16-byte aligned (base 128-byte aligned).
            let (pkt_addr, hdr_addr) = unsafe { (read_u64(d), read_u64(d + 8)) };
            if hdr_addr & 1 != 0 {
                violated!(
                    p,
                    rule::RX_DESC_DD,
                    "RX queue {q} descriptor {}: header address bit 0 (DD) must be 0 when the \
                     descriptor is given to the device; was it refilled? (§7.1.6.1)",
                    ring.head
                );
            }
            let chunk = (total - done).min(bsize);
            check_dma(regions, p, pkt_addr, chunk as u64, "rx packet buffer");
            let mut dst = pkt_addr as *mut u8;
            // Copy the part of [data, crc] that falls into [done, done + chunk).
            for (part, start) in [(data, 0), (crc, data.len())] {
                let from = done.max(start);
                let to = (done + chunk).min(start + part.len());
                if from < to {
                    // SAFETY: `dst..dst + chunk` was checked to be live DMA memory;
                    // the source is a Rust slice, which cannot overlap device memory
                    // the driver gave to the device.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            part[from - start..].as_ptr(),
                            dst,
                            to - from,
                        );
                        dst = dst.add(to - from);
                    }
                }
            }
            done += chunk;
            let eop = if done == total { RXD_STAT_EOP } else { 0 };
            // SAFETY: as above; the status quadword goes last, DD with it.
            unsafe {
                write_u64(d, 0);
                write_u64(d + 8, RXD_STAT_DD | eop | (chunk as u64) << 32);
            }
            ring.head = (ring.head + 1) % n;
        }
        self.rx[q].head = ring.head;
    }
}

impl PortState {
    /// The rx queue `frame` goes to (§7.1.2: MRQC, RSS; see `rss`).
    pub(crate) fn rx_queue(&self, frame: &[u8]) -> usize {
        match super::rss::queue(&self.regs, frame) {
            Ok(q) => q,
            Err(mrqe) => unsupported!(
                self.index,
                "MRQC.MRQE = {mrqe:#06b}: only 0000b (one queue) and 0001b (RSS) are modelled"
            ),
        }
    }

    /// The RSS hash of `frame` under the current registers, if RSS is on and the frame
    /// of an enabled type.
    pub(crate) fn rss_hash(&self, frame: &[u8]) -> Option<u32> {
        super::rss::hash(&self.regs, frame)
    }
}

impl ModelInner {
    /// A frame arrives on port `p`'s wire (§7.1: filter, queue selection, then DMA into
    /// the next descriptors). Returns whether it was delivered.
    pub(crate) fn receive(&mut self, p: usize, frame: &[u8]) -> bool {
        let q = self.ports[p].rx_queue(frame);
        self.receive_on(p, q, frame)
    }

    /// A frame the port steered to rx queue `q` (a VF's pool queue, or by `receive`).
    pub(crate) fn receive_on(&mut self, p: usize, q: usize, frame: &[u8]) -> bool {
        let regions = &self.regions;
        let port = &mut self.ports[p];
        if let Err(why) = port.rx_admits(q, frame) {
            port.count_drop(q, why);
            return false;
        }
        let ring = port.rx[q];
        let strip = port.regs[HLREG0 / 4] & HLREG0_RXCRCSTRP != 0;
        let fcs;
        let crc: &[u8] = if strip {
            &[]
        } else {
            fcs = crc32(frame).to_le_bytes();
            &fcs
        };
        let bsize = ((ring.srrctl & SRRCTL_BSIZEPACKET_MASK) as usize) * 1024;
        let needed = (frame.len() + crc.len()).div_ceil(bsize) as u32;
        if ring.owned_by_device() < needed {
            if ring.srrctl & SRRCTL_DROP_EN != 0 {
                // The MAC received the frame; the DMA drops it (QPRDC): the MAC counters
                // count it (the 82598 datasheet: GPRC leaves out only MPC's misses).
                port.stats.gprc += 1;
                port.stats.tpr += 1;
                port.stats.gorc += frame.len() as u64 + CRC_LEN;
            }
            port.count_drop(q, Drop::NoBuffer);
            return false;
        }
        let mut regions = lock(regions);
        check_dma(
            &mut regions,
            p,
            ring.base(),
            ring.len as u64,
            "rx descriptor ring",
        );
        port.fill_descriptors(&mut regions, q, frame, crc);
        port.count_rx(q, 1, frame.len() as u64);
        true
    }

    /// Runs every traffic source of port `p`.
    pub(crate) fn run_sources(&mut self, p: usize) {
        for si in 0..self.ports[p].sources.len() {
            self.run_source_at(p, si);
        }
    }

    /// Runs the sources of port `p` whose frames go to rx queue `q` (its tail moved).
    pub(crate) fn run_source(&mut self, p: usize, q: usize) {
        for si in 0..self.ports[p].sources.len() {
            let port = &self.ports[p];
            if port.rx_queue(&port.sources[si].template) == q {
                self.run_source_at(p, si);
            }
        }
    }

    /// Lets source `si` of port `p` fill every descriptor its queue has for the device.
    pub(crate) fn run_source_at(&mut self, p: usize, si: usize) {
        let regions = &self.regions;
        let port = &mut self.ports[p];
        let q = port.rx_queue(&port.sources[si].template);
        let template = std::mem::take(&mut port.sources[si].template);
        let mut remaining = port.sources[si].remaining.unwrap_or(u64::MAX);
        // A source waits for descriptors; frames the port would not accept at all are
        // not sent (they would be dropped the same way forever).
        if remaining > 0 && port.rx_admits(q, &template).is_ok() {
            let ring = port.rx[q];
            let strip = port.regs[HLREG0 / 4] & HLREG0_RXCRCSTRP != 0;
            let fcs;
            let crc: &[u8] = if strip {
                &[]
            } else {
                fcs = crc32(&template).to_le_bytes();
                &fcs
            };
            let bsize = ((ring.srrctl & SRRCTL_BSIZEPACKET_MASK) as usize) * 1024;
            let per_frame = (template.len() + crc.len()).div_ceil(bsize) as u64;
            let frames = (ring.owned_by_device() as u64 / per_frame).min(remaining);
            if frames > 0 {
                let mut regions = lock(regions);
                check_dma(
                    &mut regions,
                    p,
                    ring.base(),
                    ring.len as u64,
                    "rx descriptor ring",
                );
                for _ in 0..frames {
                    port.fill_descriptors(&mut regions, q, &template, crc);
                }
                port.count_rx(q, frames, frames * template.len() as u64);
                remaining -= frames;
            }
        }
        let source = &mut port.sources[si];
        source.template = template;
        if let Some(r) = source.remaining.as_mut() {
            *r = remaining;
        }
    }

    /// The device fetches the descriptors of tx queue `q` up to the tail and sends the
    /// frames they describe (§7.2). A frame whose EOP descriptor is not yet behind the
    /// tail waits for the next tail write.
    fn transmit(&mut self, p: usize, q: usize) {
        if self.ports[p].regs[DMATXCTL / 4] & DMATXCTL_TE == 0 {
            return;
        }
        let mut frame = std::mem::take(&mut self.ports[p].scratch);
        loop {
            let ring = self.ports[p].tx[q];
            if ring.head == ring.tail {
                break;
            }
            frame.clear();
            // Frames into a sink are only counted: the model checks their descriptors
            // and buffers but copies no bytes.
            let port = &self.ports[p];
            let copy = port.capture || port.peer != Peer::Sink;
            let Some((next, len)) = self.gather_frame(p, q, &ring, &mut frame, copy) else {
                break;
            };
            self.ports[p].tx[q].head = next;
            self.send(p, q, &mut frame, len);
        }
        self.ports[p].scratch = frame;
    }

    /// Reads the descriptors of one frame starting at the head of `ring`, checks them,
    /// copies the frame into `frame` if `copy`, and writes DD back where RS is set.
    /// Returns the index after the EOP descriptor and the frame length, or `None` if the
    /// frame is not complete before the tail.
    fn gather_frame(
        &mut self,
        p: usize,
        q: usize,
        ring: &Ring,
        frame: &mut Vec<u8>,
        copy: bool,
    ) -> Option<(u32, usize)> {
        let port = &self.ports[p];
        let mut regions = lock(&self.regions);
        let n = ring.entries();
        let mut i = ring.head;
        let mut paylen = 0;
        let mut ifcs = false;
        let mut total = 0usize;
        loop {
            let d = ring.desc_addr(i);
            // SAFETY: the ring was checked to lie in live DMA memory at this tail write,
            // and descriptors are 16-byte aligned.
            let (addr, q1) = unsafe { (read_u64(d), read_u64(d + 8)) };
            let ctl = q1 as u32;
            let olinfo = (q1 >> 32) as u32;
            let what = || {
                format!(
                    "TX queue {q} descriptor {i}: cmd_type_len {ctl:#010x}, olinfo {olinfo:#010x}"
                )
            };
            if ctl & TXD_DCMD_DEXT == 0 {
                violated!(
                    p,
                    rule::TX_NO_DEXT,
                    "{}: the driver must use advanced descriptors (§7.2.3.2.4)",
                    what()
                );
            }
            match (ctl >> TXD_DTYP_SHIFT) & 0xF {
                TXD_DTYP_DATA => {}
                TXD_DTYP_CTXT => unsupported!(p, "{}: context descriptors (offloads)", what()),
                t => violated!(
                    p,
                    rule::TX_DTYP,
                    "{}: DTYP {t:#x}, data descriptors have 0011b (§7.2.3.2.4)",
                    what()
                ),
            }
            if ctl & (TXD_RSV_MASK | TXD_DCMD_RSV26 | TXD_DCMD_RSV28) != 0 {
                violated!(
                    p,
                    rule::TX_RESERVED,
                    "{}: bits 17:16, 26 and 28 are reserved (§7.2.3.2.4)",
                    what()
                );
            }
            if ctl & (TXD_DCMD_TSE | TXD_DCMD_VLE) != 0 || olinfo & TXD_OFFLOAD_MASK != 0 {
                unsupported!(
                    p,
                    "{}: TSO, VLAN insertion and checksum offload are not modelled",
                    what()
                );
            }
            let len = ctl & TXD_DTALEN_MASK;
            if len == 0 {
                violated!(p, rule::TX_ZERO_LEN, "{}: DTALEN is 0 (§7.2.3.2.4)", what());
            }
            check_dma(&mut regions, p, addr, len as u64, "tx packet buffer");
            if i == ring.head {
                paylen = olinfo >> TXD_PAYLEN_SHIFT;
                ifcs = ctl & TXD_DCMD_IFCS != 0;
            }
            total += len as usize;
            if copy {
                // SAFETY: `addr..addr + len` was checked to be live DMA memory.
                frame.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(addr as *const u8, len as usize)
                });
            }
            i = (i + 1) % n;
            if ctl & TXD_DCMD_EOP != 0 {
                break;
            }
            if i == ring.tail {
                return None;
            }
        }
        if paylen as usize != total {
            violated!(
                p,
                rule::TX_PAYLEN,
                "TX queue {q} descriptor {}: PAYLEN {paylen} but the frame's DTALENs add up to {} (§7.2.3.2.4)",
                ring.head,
                total
            );
        }
        if !ifcs {
            unsupported!(
                p,
                "TX queue {q} descriptor {}: IFCS clear (software CRC)",
                ring.head
            );
        }
        if total + CRC_LEN as usize > port.max_frame() {
            violated!(
                p,
                rule::TX_TOO_LONG,
                "TX queue {q}: {} bytes + CRC exceed {} (HLREG0.JUMBOEN, MAXFRS; §8.2.3.22.13)",
                total,
                port.max_frame()
            );
        }
        // Write-back (§7.2.3.5.1): DD in STA of every descriptor of the frame with RS.
        let mut j = ring.head;
        while j != i {
            let d = ring.desc_addr(j);
            // SAFETY: as above.
            unsafe {
                let q1 = read_u64(d + 8);
                if q1 as u32 & TXD_DCMD_RS != 0 {
                    write_u64(d + 8, (q1 & 0xFFFF_FFFF) | u64::from(TXD_STA_DD) << 32);
                }
            }
            j = (j + 1) % n;
        }
        Some((i, total))
    }

    /// A complete frame of `len` bytes leaves port `p`: pad, count, capture, and put it
    /// on the wire. `frame` holds its bytes unless it goes into a sink uncaptured.
    fn send(&mut self, p: usize, q: usize, frame: &mut Vec<u8>, len: usize) {
        let port = &mut self.ports[p];
        if !port.link_up() {
            // No link: the frame is lost.
            return;
        }
        let mut len = len;
        if port.regs[HLREG0 / 4] & HLREG0_TXPADEN != 0 && len < MIN_FRAME {
            len = MIN_FRAME;
            if !frame.is_empty() {
                frame.resize(MIN_FRAME, 0);
            }
        }
        let len = len as u64;
        port.stats.gptc += 1;
        port.stats.tpt += 1;
        port.stats.gotc += len + CRC_LEN;
        let c = port.tx_stat_counter(q);
        port.stats.qptc[c] += 1;
        port.stats.qbtc[c] += len + CRC_LEN;
        port.wire.tx_frames += 1;
        port.wire.tx_bytes += len;
        if port.capture {
            port.captured.push(frame.clone());
        }
        if let Peer::Port(b) = port.peer {
            self.receive(b, frame);
        }
    }
}
