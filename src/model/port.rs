//! One modelled 82599 port: its register file, queues, link and wire, and the device side
//! of DMA (descriptor processing).

use std::time::{Duration, Instant};

use super::regs::*;
use super::{ModelInner, Peer, Source, WireStats};

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
    pub(crate) const RING_ALIGN: &str = "ring base not 128-byte aligned";
    pub(crate) const RING_LEN: &str = "ring length not a multiple of 128";
    pub(crate) const RING_WHILE_ENABLED: &str = "ring registers changed while the queue is enabled";
    pub(crate) const ENABLE_BEFORE_RING: &str = "queue enabled before its ring is set";
    pub(crate) const RX_DESCTYPE: &str = "rx queue enabled without SRRCTL advanced one-buffer descriptors";
    pub(crate) const TX_BEFORE_TE: &str = "tx queue enabled before DMATXCTL.TE";
    pub(crate) const TAIL_BEYOND_RING: &str = "tail beyond the ring";
    pub(crate) const TAIL_BEFORE_ENABLE: &str = "tail written before the queue enable bit was read back";
    pub(crate) const TAIL_BACKWARDS: &str = "tail moved backwards over descriptors the device owns";
    pub(crate) const HEAD_WHILE_ENABLED: &str = "head written while the queue is enabled";
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
}

/// How long a software reset lasts at most, in wall time; it also completes on the
/// second read of CTRL (§4.2.1.6.1: software waits for CTRL.RST to self-clear).
const RESET_TIME: Duration = Duration::from_millis(1);

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
    Negotiating { polls: u8, speed: u32 },
    /// Up, with the LINKS speed bits.
    Up { speed: u32 },
}

/// One rx or tx descriptor ring as the device sees it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Ring {
    bal: u32,
    bah: u32,
    len: u32,
    head: u32,
    tail: u32,
    /// RXDCTL / TXDCTL as written (ENABLE as the device holds it).
    dctl: u32,
    /// SRRCTL (rx only).
    srrctl: u32,
    enabled: bool,
    /// The driver read the enable bit back as 1 since enabling.
    enable_seen: bool,
}

impl Ring {
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
    qprdc: [u64; 16],
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
    Qprdc,
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
        RXQ_QPRDC => QueueReg::Qprdc,
        _ => return None,
    })
}

/// Decodes an rx queue register offset (§8.2.3.8, including the SRRCTL alias for 0..15).
#[inline]
fn decode_rx(offset: usize) -> Option<(usize, QueueReg)> {
    let (q, reg) = match offset {
        0x01000..0x02000 => ((offset - RXQ_LOW) / QUEUE_STRIDE, offset % QUEUE_STRIDE),
        0x0D000..0x0E000 => (64 + (offset - RXQ_HIGH) / QUEUE_STRIDE, offset % QUEUE_STRIDE),
        0x02100..0x02140 => return Some(((offset - SRRCTL_ALIAS) / 4, QueueReg::Srrctl)),
        _ => return None,
    };
    let reg = queue_reg(reg)?;
    if reg == QueueReg::Qprdc && q >= 16 {
        return None;
    }
    Some((q, reg))
}

/// Decodes a tx queue register offset (§8.2.3.9).
#[inline]
fn decode_tx(offset: usize) -> Option<(usize, QueueReg)> {
    match offset {
        0x06000..0x08000 => match queue_reg(offset % QUEUE_STRIDE)? {
            QueueReg::Srrctl | QueueReg::Qprdc => None,
            reg => Some(((offset - TXQ) / QUEUE_STRIDE, reg)),
        },
        _ => None,
    }
}

fn lo(v: u64) -> u32 {
    v as u32
}

impl PortState {
    pub(crate) fn new(index: usize) -> Self {
        let mut p = PortState {
            index,
            regs: vec![0; BAR0_SIZE / 4].into_boxed_slice(),
            rx: vec![Ring::default(); NUM_QUEUES].into_boxed_slice(),
            tx: vec![Ring::default(); NUM_QUEUES].into_boxed_slice(),
            stats: Stats::default(),
            reset: None,
            link: Link::Down,
            macs: Vec::new(),
            scratch: Vec::with_capacity(16 * 1024),
            peer: Peer::Sink,
            sources: Vec::new(),
            capture: false,
            captured: Vec::new(),
            link_never_up: false,
            wire: WireStats::default(),
        };
        p.load_defaults();
        p
    }

    /// Register values after a reset, as far as the model uses them (§8.2.3 register
    /// tables, "Init val."), with EEPROM auto-read and DMA init already done.
    fn load_defaults(&mut self) {
        self.regs.fill(0);
        self.rx.fill(Ring::default());
        self.tx.fill(Ring::default());
        self.stats = Stats::default();
        self.link = Link::Down;
        // §8.2.3.8.7 SRRCTL: BSIZEPACKET 2 KB, BSIZEHEADER 256 B, legacy descriptors.
        for r in self.rx.iter_mut() {
            r.srrctl = 0x0000_0402;
        }
        let r = &mut self.regs;
        r[EEC / 4] = EEC_PRES | EEC_ARD;
        r[RDRXCTL / 4] = RDRXCTL_DMAIDONE;
        // §8.2.3.22.8 HLREG0: TXCRCEN, RXCRCSTRP, TXPADEN set (bit 3 reserved, set).
        r[HLREG0 / 4] = 0x0000_040B;
        // §8.2.3.22.13 MAXFRS.MFS = 1518 (bits 31:16).
        r[MAXFRS / 4] = 1518 << 16;
        // §8.2.3.8.9 / §8.2.3.9.13: packet buffer 0 has all the memory (512 KB / 160 KB).
        r[RXPBSIZE / 4] = 0x0008_0000;
        r[TXPBSIZE / 4] = 0x0002_8000;
        // AUTOC.LMS from this model's "EEPROM": 1 Gb/s without auto-negotiation, so a
        // driver that does not select 10 Gb/s serial gets a 1 Gb/s link.
        r[AUTOC / 4] = AUTOC_LMS_1G_NO_AN << AUTOC_LMS_SHIFT;
        // §8.2.3.7.9/10 RAL(0)/RAH(0) from the EEPROM, address valid.
        let mac = eeprom_mac(self.index);
        r[RAL / 4] = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        r[(RAL + 4) / 4] = u32::from(mac[4]) | u32::from(mac[5]) << 8 | RAH_AV;
        self.macs = vec![mac];
    }

    pub(crate) fn link_down(&mut self) {
        self.link = Link::Down;
    }

    fn link_up(&self) -> bool {
        matches!(self.link, Link::Up { .. })
    }

    fn rx_enabled(&self) -> bool {
        self.regs[RXCTRL / 4] & RXCTRL_RXEN != 0
    }

    /// Completes a running reset if its time is up. Returns true while still in reset.
    #[inline]
    fn in_reset(&mut self) -> bool {
        match self.reset {
            None => false,
            Some((start, _)) if start.elapsed() >= RESET_TIME => {
                self.reset = None;
                false
            }
            Some(_) => true,
        }
    }

    /// Starts a software reset (CTRL.RST) or a link reset (CTRL.LRST), §4.2.1.6.
    fn start_reset(&mut self, value: u32) {
        if value & CTRL_RST != 0 {
            self.load_defaults();
            self.reset = Some((Instant::now(), 0));
        } else if value & CTRL_LRST != 0 {
            // A link reset restarts link setup; the link comes back after the driver
            // restarts auto-negotiation.
            self.link = Link::Down;
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
        if self.link_never_up {
            self.link = Link::Down;
            return;
        }
        let speed = match (autoc & AUTOC_LMS_MASK) >> AUTOC_LMS_SHIFT {
            AUTOC_LMS_1G_NO_AN | AUTOC_LMS_1G_AN => LINKS_SPEED_1G,
            // 10G serial, 10G parallel, KX4/KX/KR variants.
            _ => LINKS_SPEED_10G,
        };
        self.link = Link::Negotiating {
            polls: AN_POLLS,
            speed,
        };
    }

    fn read_rx_queue(&mut self, q: usize, reg: QueueReg) -> u32 {
        let r = &mut self.rx[q];
        match reg {
            QueueReg::Bal => r.bal,
            QueueReg::Bah => r.bah,
            QueueReg::Len => r.len,
            QueueReg::Head => r.head,
            QueueReg::Tail => r.tail,
            QueueReg::Srrctl => r.srrctl,
            QueueReg::Dctl => {
                if r.enabled {
                    r.enable_seen = true;
                }
                r.dctl
            }
            QueueReg::Qprdc => lo(std::mem::take(&mut self.stats.qprdc[q])),
        }
    }

    fn read_tx_queue(&mut self, q: usize, reg: QueueReg) -> u32 {
        let r = &mut self.tx[q];
        match reg {
            QueueReg::Bal => r.bal,
            QueueReg::Bah => r.bah,
            QueueReg::Len => r.len,
            QueueReg::Head => r.head,
            QueueReg::Tail => r.tail,
            QueueReg::Dctl => {
                if r.enabled {
                    r.enable_seen = true;
                }
                r.dctl
            }
            QueueReg::Srrctl | QueueReg::Qprdc => 0,
        }
    }

    /// A register read (§8.2.3; reads have side effects only where the datasheet says:
    /// clear-on-read counters, EICR).
    pub(crate) fn read(&mut self, offset: usize) -> u32 {
        if offset >= BAR0_SIZE || !offset.is_multiple_of(4) {
            violated!(self.index, rule::BAD_OFFSET, "read at {offset:#x}");
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
                    if reads == 0 {
                        self.reset = Some((start, 1));
                        return self.regs[CTRL / 4] | CTRL_RST;
                    }
                    self.reset = None;
                }
                self.regs[CTRL / 4]
            }
            STATUS => {
                let link = if self.link_up() { STATUS_LINK_UP } else { 0 };
                ((self.index as u32 & 1) << STATUS_LAN_ID_SHIFT) | STATUS_GIO_MASTER_ENABLE | link
            }
            EEC if in_reset => self.regs[EEC / 4] & !EEC_ARD,
            RDRXCTL if in_reset => self.regs[RDRXCTL / 4] & !RDRXCTL_DMAIDONE,
            LINKS => self.links(),
            EICR => std::mem::take(&mut self.regs[EICR / 4]),
            EIMC => 0,
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
            o => self.regs[o / 4],
        }
    }
}

impl ModelInner {
    /// Register read on port `p`.
    pub(crate) fn read(&mut self, p: usize, offset: usize) -> u32 {
        self.ports[p].read(offset)
    }

    /// Register write on port `p`: stores the value and runs what the write triggers.
    pub(crate) fn write(&mut self, p: usize, offset: usize, value: u32) {
        let port = &mut self.ports[p];
        if offset >= BAR0_SIZE || !offset.is_multiple_of(4) {
            violated!(p, rule::BAD_OFFSET, "write of {value:#x} at {offset:#x}");
        }
        if port.in_reset() {
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
        match offset {
            CTRL => {
                // RST and LRST self-clear (§8.2.3.1.1).
                port.regs[CTRL / 4] = value & !(CTRL_RST | CTRL_LRST);
                port.start_reset(value);
            }
            STATUS | LINKS | EICR => {} // read-only here
            EICS => port.regs[EICR / 4] |= value,
            EIMS => port.regs[EIMS / 4] |= value,
            EIMC => port.regs[EIMS / 4] &= !value,
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
            o if (RAL..RAL + 8 * NUM_RAR).contains(&o) => {
                port.regs[o / 4] = value;
                port.rebuild_macs();
            }
            o if (MPC..MPC + 32).contains(&o) => {} // counters are read-only
            GPRC | GPTC | GORCL | GORCH | GOTCL | GOTCH | TPR | TPT | ROC => {}
            // EIAC, EIAM, GPIE, IVAR, EITR, FCTRL, HLREG0, RDRXCTL, RXPBSIZE, TXPBSIZE,
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
        self.run_sources(p);
    }

    fn check_ring_register(&self, p: usize, ring: &Ring, what: &str, q: usize) {
        if ring.enabled {
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
        if !self.regions.borrow_mut().contains(addr, len) {
            violated!(
                p,
                rule::DMA_OUTSIDE,
                "{what} at {addr:#x}, {len} bytes, is not inside a live region from Model::dma()"
            );
        }
    }

    fn write_ring_common(&mut self, p: usize, ring: &mut Ring, q: usize, kind: &str, reg: QueueReg, value: u32) {
        match reg {
            QueueReg::Bal => {
                self.check_ring_register(p, ring, &format!("{kind}DBAL"), q);
                if value % 128 != 0 {
                    violated!(p, rule::RING_ALIGN, "{kind}DBAL({q}) = {value:#x} (§8.2.3.8.1, §8.2.3.9.5)");
                }
                ring.bal = value;
            }
            QueueReg::Bah => {
                self.check_ring_register(p, ring, &format!("{kind}DBAH"), q);
                ring.bah = value;
            }
            QueueReg::Len => {
                self.check_ring_register(p, ring, &format!("{kind}DLEN"), q);
                if value % 128 != 0 || value > 0x8_0000 {
                    violated!(
                        p,
                        rule::RING_LEN,
                        "{kind}DLEN({q}) = {value} (at most 512 KiB; §8.2.3.8.3, §8.2.3.9.7)"
                    );
                }
                ring.len = value;
            }
            QueueReg::Head => {
                if ring.enabled {
                    violated!(p, rule::HEAD_WHILE_ENABLED, "{kind}DH({q}) = {value}; only the device moves the head of an enabled queue");
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
                violated!(p, rule::TAIL_BEYOND_RING, "{kind}DT({q}) = {value} but the ring has {} descriptors", ring.entries());
            }
            return;
        }
        if value >= ring.entries() {
            violated!(p, rule::TAIL_BEYOND_RING, "{kind}DT({q}) = {value} but the ring has {} descriptors", ring.entries());
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
                if ring.enabled {
                    self.check_ring_register(p, &ring, "SRRCTL", q);
                }
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
                    ring.enable_seen = false;
                }
                ring.enabled = enable;
                ring.dctl = value;
            }
            QueueReg::Qprdc => return,
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
                    ring.enable_seen = false;
                }
                ring.enabled = enable;
                ring.dctl = value;
            }
            _ => self.write_ring_common(p, &mut ring, q, "T", reg, value),
        }
        self.ports[p].tx[q] = ring;
    }
}

// Data path (skeleton: filled in next).
impl ModelInner {
    pub(crate) fn receive(&mut self, _p: usize, _q: usize, _frame: &[u8]) -> bool {
        false
    }
    pub(crate) fn run_sources(&mut self, _p: usize) {}
    pub(crate) fn run_source(&mut self, _p: usize, _q: usize) {}
    fn transmit(&mut self, _p: usize, _q: usize) {}
}
