//! ixgbevf: driver for the SR-IOV virtual functions of Intel's 10 GbE controllers — 82599,
//! X540 and X550 families (device ids: [`crate::pci::IXGBEVF_DEVICE_IDS`]).
//!
//! A virtual function owns a few queues of its physical function and nothing global: link,
//! filters and the MAC address belong to the PF driver (on Linux, `ixgbe`), which the VF asks
//! through the mailbox (`intel::mailbox`, 82599 datasheet 7.10.2). Bring-up, in the
//! order of the Linux VF driver (`ixgbevf_reset_hw_vf`, `ixgbevf_negotiate_api`,
//! `ixgbevf_get_queues`, `ixgbevf_configure`):
//!
//! 1. queues off, interrupts masked, VF reset (VFCTRL.RST), then wait until the PF is not
//!    resetting (VFMAILBOX.RSTI clear);
//! 2. RESET message: the reply carries the MAC address the PF assigned (a NACK means none
//!    is assigned yet: a random locally administered address is used, as in Linux);
//! 3. mailbox API negotiation, newest first (1.4, 1.3, 1.2, 1.1, 1.0);
//! 4. GET_QUEUES (API 1.1 and later): how many queues the PF gives this VF;
//! 5. the rings (`intel::ring`, shared with ixgbe), SET_LPE, queue enable;
//! 6. UPDATE_XCAST_MODE (API 1.2 and later) and SET_MAC_ADDR;
//! 7. wait for the link (VFLINKS).
//!
//! Every wait has a timeout that ends in an error naming what did not happen.
//!
//! **PF resets.** When the PF resets the device, VFMAILBOX shows RSTI while it lasts and
//! RSTD when it is over; the VF's queues are gone. The driver looks at VFMAILBOX when a
//! receive poll finds nothing or a transmit finds its ring full (every
//! [`PF_CHECK_INTERVAL`]-th time, so busy queues pay nothing), or when asked
//! ([`IxgbevfDevice::check_pf_reset`]), and then runs steps 1 to 7 again with the rings it
//! has. Frames on the rings are dropped (their buffers return to the pools); packets the
//! caller holds are untouched. [`IxyDevice::link_speed`] reports 0 while a reset is pending.
//!
//! **Statistics** come from the VF's rolling counters (VFGPRC/VFGPTC, 32 bits; VFGORC/VFGOTC,
//! 36 bits in LSB/MSB pairs), which are not cleared on read: the driver adds the difference
//! to the previous reading, modulo the counter width, and takes a new base after every
//! reset. The VF has no drop counter, so `rx_dropped` stays 0.

pub mod regs;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::intel::mailbox::{self, Mailbox, XcastMode, msg};
use crate::intel::queue;
use crate::intel::ring::{RxRing, TxRing};
use crate::intel::{Rolling, random_local_mac};
use crate::ixgbe::regs as pf;
use crate::ixgbe::{IxgbeOptions, POOL_ENTRY_SIZE};
use crate::memory::{DmaAllocator, Mempool, Packet};
use crate::pci::{DriverKind, PciDevice};
use crate::registers::{MmioRegion, RegisterSpace, wait_for};
use crate::{DeviceConfig, DeviceStats, IxyDevice};

pub use crate::intel::mailbox::ApiVersion;

/// Most queues of either kind a VF has (Linux `IXGBE_VF_MAX_TX_QUEUES`); the PF may give
/// fewer (GET_QUEUES).
pub const MAX_QUEUES: u16 = 8;
/// Default time for each mailbox step and for a PF reset to finish (Linux allows 2000
/// polls of 500 µs).
pub const DEFAULT_MAILBOX_TIMEOUT: Duration = Duration::from_secs(1);
/// The driver looks for a PF reset on every this-many-th empty receive poll or full
/// transmit ring.
pub const PF_CHECK_INTERVAL: u32 = 64;
/// Largest frame (with CRC) the VF asks the PF to accept (SET_LPE): standard Ethernet.
const MAX_FRAME: u32 = 1518;
/// Shortest time between two re-initialisation attempts from the packet path.
const REINIT_RETRY: Duration = Duration::from_secs(1);
/// Queue enable read-back timeout.
const QUEUE_ENABLE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a queue gets to stop on close (its ENABLE bit to read back 0).
const QUEUE_DISABLE_TIMEOUT: Duration = Duration::from_millis(10);

/// How to set up a virtual function.
#[derive(Debug, Clone)]
pub struct IxgbevfOptions {
    /// Queues (at most [`MAX_QUEUES`], and what the PF offers), ring and pool sizes, link
    /// wait and promiscuous mode, with the PF driver's meaning. `promisc` defaults to
    /// false here: 82599 PFs never allow it, and X540/X550 PFs only for trusted VFs.
    pub base: IxgbeOptions,
    /// Longest wait for each mailbox step and for a PF reset to finish.
    pub mailbox_timeout: Duration,
}

impl Default for IxgbevfOptions {
    fn default() -> Self {
        IxgbevfOptions {
            base: IxgbeOptions {
                promisc: false,
                ..IxgbeOptions::default()
            },
            mailbox_timeout: DEFAULT_MAILBOX_TIMEOUT,
        }
    }
}

impl IxgbevfOptions {
    /// The options a [`DeviceConfig`] asks for (queue counts and interrupt timeout;
    /// defaults for the rest).
    pub fn from_config(cfg: &DeviceConfig) -> Self {
        let mut options = Self::default().queues(cfg.rx_queues, cfg.tx_queues);
        options.base.interrupt_timeout_ms = cfg.interrupt_timeout_ms;
        options
    }

    /// Sets the queue counts.
    pub fn queues(mut self, rx: u16, tx: u16) -> Self {
        self.base = self.base.queues(rx, tx);
        self
    }

    /// Sets the link wait timeout.
    pub fn link_timeout(mut self, timeout: Duration) -> Self {
        self.base = self.base.link_timeout(timeout);
        self
    }

    /// Sets the mailbox timeout.
    pub fn mailbox_timeout(mut self, timeout: Duration) -> Self {
        self.mailbox_timeout = timeout;
        self
    }

    /// Asks for promiscuous mode at start.
    pub fn promisc(mut self, on: bool) -> Self {
        self.base.promisc = on;
        self
    }

    fn validate(&self) -> Result<()> {
        let b = &self.base;
        let queues = 1..=MAX_QUEUES;
        let problem = if !queues.contains(&b.rx_queues) || !queues.contains(&b.tx_queues) {
            format!(
                "{} rx and {} tx queues requested: a virtual function has 1 to {MAX_QUEUES} \
                 of each",
                b.rx_queues, b.tx_queues
            )
        } else if b.rx_queues > 1 {
            // Without RSS the 82599 puts all of a pool's frames in its first queue. The
            // 82599 VF's RSS is the PF's (MRQC, key and redirection table; the VF picks
            // only the queue count, VFPSRTYPE.RQPL, Linux `ixgbevf_setup_psrtype`), the
            // X550 VF's VFMRQC/VFRETA are not in the 82599 model: one receive queue.
            format!(
                "{} rx queues requested: ixgbevf receives on one queue (it programs no RSS, \
                 so the device would deliver every frame to queue 0); ask for 1",
                b.rx_queues
            )
        } else {
            return b.check_pool();
        };
        Err(Error::config(problem))
    }
}

/// The four VF counters.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    rx_packets: Rolling,
    tx_packets: Rolling,
    rx_octets: Rolling,
    tx_octets: Rolling,
    /// The receive rings' no-buffer polls, accumulated.
    nombuf: u64,
    /// Packets the transmit rings dropped (shorter than 17 bytes, or from a pool out of
    /// the device's reach).
    tx_dropped: u64,
}

/// Width of VFGPRC/VFGPTC.
const PACKET_COUNTER_BITS: u32 = 32;
/// Width of VFGORC/VFGOTC (LSB register + 4 bits of MSB).
const OCTET_COUNTER_BITS: u32 = 36;

/// An Intel 10 GbE virtual function.
///
/// `R` is the register space (the VF's BAR0): [`MmioRegion`] on hardware
/// ([`IxgbevfDevice::open`]), the device model's VF in tests
/// ([`IxgbevfDevice::with_registers`]).
pub struct IxgbevfDevice<R: RegisterSpace = MmioRegion> {
    name: String,
    regs: R,
    mbx: Mailbox,
    rx: Vec<RxRing>,
    tx: Vec<TxRing>,
    /// The address the PF assigned (RESET reply).
    perm_mac: [u8; 6],
    /// The address in use.
    mac: [u8; 6],
    api: ApiVersion,
    promisc: bool,
    options: IxgbevfOptions,
    counters: Counters,
    /// Baseline subtracted by `reset_stats`.
    stats_zero: DeviceStats,
    /// The VF queue transmit ring 0 uses: the PF's default queue when it has traffic
    /// classes (GET_QUEUES), else 0.
    tx_first: usize,
    /// Empty polls / full rings since the last look at VFMAILBOX.
    idle: u32,
    /// A PF reset was seen and re-initialisation has not succeeded yet.
    reinit_pending: bool,
    pf_resets: u64,
    /// When the last re-initialisation from the packet path failed.
    last_failure: Option<Instant>,
    /// Keeps the PCI device (and the claim on it) while the driver runs. Last: dropped
    /// after the rings, so its VFIO mappings outlive them.
    pci: Option<PciDevice>,
}

impl IxgbevfDevice<MmioRegion> {
    /// Takes `pci` from its kernel driver, maps BAR0 and initialises the VF as `cfg` asks,
    /// with DMA memory from hugepages.
    ///
    /// Refuses, before touching the device, options that cannot work (checked first, so
    /// they are reported as such on any machine), anything that is not an ixgbevf virtual
    /// function, and a missing hugetlbfs mount.
    pub fn open(pci: PciDevice, cfg: &DeviceConfig) -> Result<Self> {
        let options = IxgbevfOptions::from_config(cfg);
        options.validate()?;
        let bar = crate::intel::claim_bar0(&pci, cfg, DriverKind::Ixgbevf)?;
        let mut dev = Self::with_registers(pci.name(), bar, &cfg.dma(), options)?;
        dev.pci = Some(pci);
        Ok(dev)
    }
}

impl<R: RegisterSpace> IxgbevfDevice<R> {
    /// Initialises the VF behind `regs` (its BAR0) with rings and buffers from `dma`, as
    /// `options` ask. `name` identifies it in messages (the PCI address on hardware).
    pub fn with_registers(
        name: &str,
        regs: R,
        dma: &dyn DmaAllocator,
        options: IxgbevfOptions,
    ) -> Result<Self> {
        options.validate()?;
        if options.base.interrupt_timeout_ms != 0 {
            log::warn!(
                "{name}: ixgbevf has no interrupt support yet: interrupt timeout {} ms \
                 ignored, rx_batch polls",
                options.base.interrupt_timeout_ms
            );
        }
        let mut dev = IxgbevfDevice {
            name: name.to_string(),
            mbx: Mailbox::new(name, options.mailbox_timeout, mailbox::AT_IXGBEVF),
            regs,
            rx: Vec::new(),
            tx: Vec::new(),
            perm_mac: [0; 6],
            mac: [0; 6],
            api: ApiVersion::V1_0,
            promisc: false,
            options,
            counters: Counters::default(),
            stats_zero: DeviceStats::default(),
            tx_first: 0,
            idle: 0,
            reinit_pending: false,
            pf_resets: 0,
            last_failure: None,
            pci: None,
        };
        // On error `dev` is dropped, which stops its queues before the memory is freed.
        dev.handshake()?;
        let o = &dev.options.base;
        for q in 0..o.rx_queues as usize {
            let pool = Mempool::new(dma, o.pool_entries, POOL_ENTRY_SIZE)?;
            let ring = RxRing::new(dma, o.rx_ring_size, pool, regs::rx_queue(q).tail)?;
            dev.rx.push(ring);
        }
        for q in 0..o.tx_queues as usize {
            let ring = TxRing::new(dma, o.tx_ring_size, regs::tx_queue(dev.tx_first + q).tail)?;
            dev.tx.push(ring);
        }
        dev.start()?;
        log::info!(
            "{}: ixgbevf ready, MAC {}, mailbox API {}, {} rx / {} tx queues, link {} Mbit/s",
            dev.name,
            crate::format_mac(&dev.mac),
            dev.api.name(),
            dev.rx.len(),
            dev.tx.len(),
            dev.link_speed()
        );
        Ok(dev)
    }

    fn err(&self, detail: impl Into<String>) -> Error {
        Error::device(&self.name, detail)
    }

    /// Steps 1 to 4: reset, MAC address, API version, queue counts.
    fn handshake(&mut self) -> Result<()> {
        self.stop_queues();
        self.regs.write32(regs::VTEIMC, regs::VTEIMC_ALL);
        self.regs.write32(regs::VFCTRL, regs::VFCTRL_RST);
        self.mbx.wait_reset_done(&self.regs)?;

        let reply = self.mbx.request(&self.regs, &[msg::RESET])?;
        let mac = if reply.acked() {
            let mac = reply.mac();
            if mac[0] & 1 != 0 || mac == [0; 6] {
                return Err(self.err(format!(
                    "the PF assigned {} to this VF, which is not a unicast address",
                    crate::format_mac(&mac)
                )));
            }
            mac
        } else {
            // The PF has no MAC for this VF yet and says so with a NACK (Linux
            // `ixgbevf_reset_hw_vf` accepts it and `ixgbevf_sw_init` makes up a random
            // address). Keep the one made up before (a PF reset), else make one up; it is
            // registered with SET_MAC_ADDR when the queues start.
            let mac = if self.perm_mac == [0; 6] {
                random_local_mac()
            } else {
                self.perm_mac
            };
            log::info!(
                "{}: the PF assigned no MAC address (RESET answered with NACK); using the \
                 random locally administered {} (assign one on the host with `ip link set \
                 <pf> vf <n> mac <address>`)",
                self.name,
                crate::format_mac(&mac)
            );
            mac
        };
        if self.mac == [0; 6] || self.mac == self.perm_mac {
            self.mac = mac;
        }
        self.perm_mac = mac;
        log::debug!(
            "{}: RESET reply: MAC {}, multicast filter type {}",
            self.name,
            crate::format_mac(&mac),
            reply.words[msg::RESET_REPLY_WORDS - 1]
        );

        self.api = self.negotiate_api()?;
        self.check_queue_counts()
    }

    /// Step 3: the newest API version the PF accepts.
    fn negotiate_api(&self) -> Result<ApiVersion> {
        for api in ApiVersion::NEWEST_FIRST {
            let reply = self
                .mbx
                .request(&self.regs, &[msg::API_NEGOTIATE, api as u32])?;
            if reply.acked() {
                return Ok(api);
            }
            log::debug!("{}: PF refused mailbox API {}", self.name, api.name());
        }
        Err(self.err(
            "the PF refused every mailbox API version this driver speaks (1.4, 1.3, 1.2, 1.1, \
             1.0), answering each with NACK; the PF driver is incompatible (too old or not \
             Linux-compatible)",
        ))
    }

    /// Step 4: the queues the PF gives this VF must cover the ones asked for. With more
    /// than one traffic class the VF transmits on one queue, the PF's default one (Linux
    /// `ixgbevf_configure_dcb`).
    fn check_queue_counts(&mut self) -> Result<()> {
        let (tx, rx) = if self.api >= ApiVersion::V1_1 {
            let reply = self.mbx.request(&self.regs, &[msg::GET_QUEUES])?;
            if !reply.acked() {
                return Err(self.err(format!(
                    "the PF refused to tell the queue counts (GET_QUEUES NACK) although it \
                     agreed to mailbox API {}",
                    self.api.name()
                )));
            }
            let [tcs, def_q] = [msg::TRAFFIC_CLASSES, msg::DEF_QUEUE].map(|w| reply.words[w]);
            if tcs != 0 || def_q != 0 {
                log::info!(
                    "{}: PF: {tcs} traffic classes, default queue {def_q}",
                    self.name
                );
            }
            let first = if tcs > 1 { def_q as usize } else { 0 };
            if !self.tx.is_empty() && first != self.tx_first {
                return Err(self.err("the PF moved the default queue; open the VF again"));
            }
            self.tx_first = first;
            let tx = if tcs > 1 {
                1
            } else {
                reply.words[msg::TX_QUEUES]
            };
            (tx, reply.words[msg::RX_QUEUES])
        } else {
            (1, 1)
        };
        let o = &self.options.base;
        if u32::from(o.rx_queues) > rx || u32::from(o.tx_queues) > tx {
            return Err(Error::config(format!(
                "{}: the PF gives this VF {rx} rx and {tx} tx queues (mailbox API {}); {} rx \
                 and {} tx were requested",
                self.name,
                self.api.name(),
                o.rx_queues,
                o.tx_queues
            )));
        }
        Ok(())
    }

    /// Disables every queue the VF may have enabled.
    fn stop_queues(&self) {
        for q in 0..MAX_QUEUES as usize {
            queue::disable_queue(&self.regs, regs::rx_queue(q).ctl, pf::RXDCTL_ENABLE);
            queue::disable_queue(&self.regs, regs::tx_queue(q).ctl, pf::TXDCTL_ENABLE);
        }
    }

    /// Steps 5 to 7 with the rings the device already has.
    fn start(&mut self) -> Result<()> {
        let lpe = self.mbx.request(&self.regs, &[msg::SET_LPE, MAX_FRAME])?;
        if !lpe.acked() {
            log::warn!(
                "{}: the PF refused a maximum frame size of {MAX_FRAME} bytes (SET_LPE)",
                self.name
            );
        }
        self.start_rx()?;
        self.start_tx()?;
        let want = self.options.base.promisc;
        if (want || self.api >= ApiVersion::V1_2)
            && let Err(e) = self.set_promisc(want)
        {
            if want {
                return Err(e);
            }
            log::warn!("{}: {e}", self.name);
        }
        if let Err(e) = self.request_mac(self.mac) {
            if self.mac == self.perm_mac {
                return Err(e);
            }
            log::warn!("{}: {e}; using the assigned address again", self.name);
            self.request_mac(self.perm_mac)?;
        }
        self.rebase_counters();
        self.wait_for_link()
    }

    /// Receive queues: advanced one-buffer descriptors sized to the pool buffers, drop when
    /// out of descriptors, ring, enable, then all descriptors but one to the device.
    fn start_rx(&mut self) -> Result<()> {
        for (q, ring) in self.rx.iter_mut().enumerate() {
            ring.rearm();
            queue::set_srrctl(&self.regs, regs::vfsrrctl(q));
            let qr = regs::rx_queue(q);
            queue::program_ring(&self.regs, &qr, ring.descriptors());
            queue::enable_queue(
                &self.regs,
                &self.name,
                &qr,
                pf::RXDCTL_ENABLE,
                0,
                QUEUE_ENABLE_TIMEOUT,
                &format!("VF receive queue {q} to enable (VFRXDCTL.ENABLE)"),
            )?;
            ring.start(&self.regs);
        }
        Ok(())
    }

    /// Transmit queues: ring, write-back thresholds, enable.
    fn start_tx(&mut self) -> Result<()> {
        for (q, ring) in self.tx.iter_mut().enumerate() {
            ring.discard();
            let qr = regs::tx_queue(self.tx_first + q);
            queue::program_ring(&self.regs, &qr, ring.descriptors());
            queue::enable_queue(
                &self.regs,
                &self.name,
                &qr,
                pf::TXDCTL_ENABLE,
                regs::VFTXDCTL_THRESH,
                QUEUE_ENABLE_TIMEOUT,
                &format!("VF transmit queue {q} to enable (VFTXDCTL.ENABLE)"),
            )?;
        }
        Ok(())
    }

    /// SET_MAC_ADDR; a refusal is an error naming the likely cause.
    fn request_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        let [w1, w2] = mailbox::mac_words(mac);
        let reply = self.mbx.request(&self.regs, &[msg::SET_MAC_ADDR, w1, w2])?;
        if !reply.acked() {
            let why = if reply.not_clear_to_send() {
                "the VF is not clear to send (the PF reset it; it must send RESET first)"
            } else {
                "the host assigned this VF a MAC address and does not trust it to change it \
                 (`ip link set <pf> vf <n> trust on` allows it)"
            };
            return Err(self.err(format!(
                "the PF refused MAC address {}: {why}",
                crate::format_mac(&mac)
            )));
        }
        self.mac = mac;
        Ok(())
    }

    /// Waits for VFLINKS.LINK_UP, up to the link timeout; never forever.
    fn wait_for_link(&self) -> Result<()> {
        let o = &self.options.base;
        let vflinks = || format!("VFLINKS = {:#010x}", self.regs.read32(regs::VFLINKS));
        let speed = || self.vflinks_speed();
        crate::intel::wait_for_link(&self.name, o.link_timeout, o.require_link, speed, vflinks)
    }

    /// Link speed in Mbit/s from VFLINKS (8.3; the PF's LINKS): 0 while down. The VF does
    /// not know its MAC, so LINKS.NON_STD (X550 2.5/5 Gb/s) is not decoded.
    fn vflinks_speed(&self) -> u32 {
        crate::ixgbe::links_speed(self.regs.read32(regs::VFLINKS), false)
    }

    /// Reads the four counters as (rx packets, tx packets, rx octets, tx octets).
    fn read_counters(&self) -> [u64; 4] {
        let pair = |[lsb, msb]: [usize; 2]| {
            let low = u64::from(self.regs.read32(lsb));
            low | u64::from(self.regs.read32(msb) & 0xf) << 32
        };
        [
            u64::from(self.regs.read32(regs::VFGPRC)),
            u64::from(self.regs.read32(regs::VFGPTC)),
            pair(regs::VFGORC),
            pair(regs::VFGOTC),
        ]
    }

    /// Takes the current counter values as the new base (after a reset the counters may
    /// have restarted).
    fn rebase_counters(&mut self) {
        let [rp, tp, ro, to] = self.read_counters();
        self.counters.rx_packets.last = rp;
        self.counters.tx_packets.last = tp;
        self.counters.rx_octets.last = ro;
        self.counters.tx_octets.last = to;
    }

    fn totals(&mut self) -> DeviceStats {
        let [rp, tp, ro, to] = self.read_counters();
        let c = &mut self.counters;
        c.rx_packets.advance(rp, PACKET_COUNTER_BITS);
        c.tx_packets.advance(tp, PACKET_COUNTER_BITS);
        c.rx_octets.advance(ro, OCTET_COUNTER_BITS);
        c.tx_octets.advance(to, OCTET_COUNTER_BITS);
        c.nombuf += self.rx.iter_mut().map(RxRing::take_nombuf).sum::<u64>();
        c.tx_dropped += self.tx.iter_mut().map(TxRing::take_dropped).sum::<u64>();
        // The octet counters include the 4-byte CRC, like the PF's GORC/GOTC (8.2.3.23);
        // DeviceStats counts frames without it.
        DeviceStats {
            rx_packets: c.rx_packets.total,
            tx_packets: c.tx_packets.total,
            rx_bytes: c.rx_octets.total.saturating_sub(4 * c.rx_packets.total),
            tx_bytes: c.tx_octets.total.saturating_sub(4 * c.tx_packets.total),
            rx_nombuf: c.nombuf,
            tx_dropped: c.tx_dropped,
            ..DeviceStats::default()
        }
    }

    /// Looks at VFMAILBOX for a PF reset and, if there was one (or an earlier
    /// re-initialisation failed), initialises the VF again with the rings it has. Returns
    /// whether it did. Frames on the rings are dropped; packets the caller holds are not
    /// touched.
    pub fn check_pf_reset(&mut self) -> Result<bool> {
        if !self.reinit_pending && !self.mbx.reset_indicated(&self.regs) {
            return Ok(false);
        }
        log::warn!(
            "{}: the PF reset the device; initialising the VF again",
            self.name
        );
        self.reinit_pending = true;
        self.handshake()?;
        self.start()?;
        self.reinit_pending = false;
        self.pf_resets += 1;
        Ok(true)
    }

    /// Called when a queue made no progress: every [`PF_CHECK_INTERVAL`]-th time, looks for
    /// a PF reset.
    #[cold]
    #[inline(never)]
    fn stalled(&mut self) {
        self.idle = self.idle.wrapping_add(1);
        if !self.idle.is_multiple_of(PF_CHECK_INTERVAL) {
            return;
        }
        // After a failed re-initialisation (each attempt may wait out the mailbox
        // timeout), retry at most once per REINIT_RETRY.
        if self
            .last_failure
            .is_some_and(|t| t.elapsed() < REINIT_RETRY)
        {
            return;
        }
        match self.check_pf_reset() {
            Ok(_) => self.last_failure = None,
            Err(e) => {
                log::error!("{}: {e}; will try again", self.name);
                self.last_failure = Some(Instant::now());
            }
        }
    }

    /// PF resets the driver recovered from.
    pub fn pf_resets(&self) -> u64 {
        self.pf_resets
    }

    /// The mailbox API version agreed with the PF.
    pub fn api_version(&self) -> ApiVersion {
        self.api
    }

    /// The MAC address the PF assigned to this VF.
    pub fn permanent_mac(&self) -> [u8; 6] {
        self.perm_mac
    }

    /// The pool receive queue `queue` takes its buffers from, if the queue exists.
    pub fn rx_pool(&self, queue: u16) -> Option<&Mempool> {
        self.rx.get(usize::from(queue)).map(RxRing::pool)
    }
}

impl<R: RegisterSpace> IxyDevice for IxgbevfDevice<R> {
    fn driver_name(&self) -> &str {
        "ixgbevf"
    }

    /// Asks the PF for `mac` (SET_MAC_ADDR); an error if the PF refuses.
    fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(Error::config(format!(
                "{} cannot be a station address (multicast or zero)",
                crate::format_mac(&mac)
            )));
        }
        self.request_mac(mac)
    }

    fn pci_addr(&self) -> &str {
        &self.name
    }

    /// Speed from VFLINKS; 0 while the link is down or a PF reset is pending.
    fn link_speed(&self) -> u32 {
        if self.reinit_pending || self.mbx.reset_indicated(&self.regs) {
            return 0;
        }
        self.vflinks_speed()
    }

    /// The address in use: the PF's assignment unless changed with `set_mac_addr`.
    fn mac_addr(&self) -> [u8; 6] {
        self.mac
    }

    /// UPDATE_XCAST_MODE: promiscuous, or back to multicast. Needs mailbox API 1.3 (1.2
    /// to turn it off) and a PF that allows it (not 82599 PFs; X540/X550 PFs for trusted
    /// VFs whose PF is promiscuous itself); an error names the reason.
    fn set_promisc(&mut self, enabled: bool) -> Result<()> {
        let (mode, needs) = if enabled {
            (XcastMode::Promisc, ApiVersion::V1_3)
        } else {
            (XcastMode::Multi, ApiVersion::V1_2)
        };
        let wanted = XcastMode::describe(mode as u32);
        if self.api < needs {
            return Err(self.err(format!(
                "{wanted} mode needs mailbox API {} or later; the PF agreed to {}",
                needs.name(),
                self.api.name()
            )));
        }
        let reply = self
            .mbx
            .request(&self.regs, &[msg::UPDATE_XCAST_MODE, mode as u32])?;
        if !reply.acked() {
            return Err(self.err(format!(
                "the PF refused {wanted} mode (UPDATE_XCAST_MODE NACK): 82599 PFs never allow \
                 promiscuous VFs; X540/X550 PFs allow it for a trusted VF (`ip link set <pf> \
                 vf <n> trust on`) while the PF itself is promiscuous"
            )));
        }
        if reply.words[1] != mode as u32 {
            return Err(self.err(format!(
                "the PF granted {} mode instead of {wanted}: the VF is not trusted (`ip link \
                 set <pf> vf <n> trust on`)",
                XcastMode::describe(reply.words[1])
            )));
        }
        self.promisc = enabled;
        Ok(())
    }

    fn promisc(&self) -> bool {
        self.promisc
    }

    /// Receives through the shared ring code; an empty poll may look for a PF reset.
    #[inline]
    fn rx_batch(&mut self, queue: u16, out: &mut VecDeque<Packet>, max: usize) -> usize {
        let ring = crate::queue_mut(&mut self.rx, queue, "rx");
        let got = ring.rx_batch(&self.regs, out, max);
        if got == 0 {
            self.stalled();
        }
        got
    }

    fn num_rx_queues(&self) -> u16 {
        self.rx.len() as u16
    }

    /// Sends through the shared ring code; a full ring may look for a PF reset.
    #[inline]
    fn tx_batch(&mut self, queue: u16, packets: &mut VecDeque<Packet>) -> usize {
        let offered = packets.len();
        let ring = crate::queue_mut(&mut self.tx, queue, "tx");
        let sent = ring.tx_batch(&self.regs, packets);
        if sent < offered {
            self.stalled();
        }
        sent
    }

    fn num_tx_queues(&self) -> u16 {
        self.tx.len() as u16
    }

    /// Totals from the rolling counters since open or `reset_stats`. The VF has no
    /// drop, error or per-queue counters (VFGPRC, VFGPTC, VFGORC, VFGOTC only).
    fn stats(&mut self) -> DeviceStats {
        let t = self.totals();
        let z = &self.stats_zero;
        DeviceStats {
            rx_packets: t.rx_packets.saturating_sub(z.rx_packets),
            tx_packets: t.tx_packets.saturating_sub(z.tx_packets),
            rx_bytes: t.rx_bytes.saturating_sub(z.rx_bytes),
            tx_bytes: t.tx_bytes.saturating_sub(z.tx_bytes),
            rx_nombuf: t.rx_nombuf.saturating_sub(z.rx_nombuf),
            tx_dropped: t.tx_dropped - z.tx_dropped,
            ..DeviceStats::default()
        }
    }

    /// The counters are read-only: the current totals become the new zero.
    fn reset_stats(&mut self) {
        self.stats_zero = self.totals();
    }
}

impl<R: RegisterSpace> Drop for IxgbevfDevice<R> {
    /// Stops the VF's DMA before its rings and buffers are freed: queues off and waited
    /// for, then a VF reset. A queue that does not stop loses bus mastering, or if even
    /// that fails its memory is never given back.
    fn drop(&mut self) {
        self.stop_queues();
        // A queue has stopped once its ENABLE bit reads back 0 (82599 datasheet 4.6.7.1
        // and 4.6.8.1, queue disable; the VF registers behave the same, 8.3).
        let mut stopped = true;
        for q in 0..MAX_QUEUES as usize {
            for (ctl, enable) in [
                (regs::rx_queue(q).ctl, pf::RXDCTL_ENABLE),
                (regs::tx_queue(self.tx_first + q).ctl, pf::TXDCTL_ENABLE),
            ] {
                let what = "queue disable on close";
                if let Err(e) = wait_for(&self.regs, ctl, enable, 0, QUEUE_DISABLE_TIMEOUT, what) {
                    log::error!("{}: {e}", self.name);
                    stopped = false;
                }
            }
        }
        self.regs.write32(regs::VFCTRL, regs::VFCTRL_RST);
        if let Err(e) = self.mbx.wait_reset_done(&self.regs) {
            log::warn!("{}: {e}", self.name);
        }
        if !stopped {
            crate::intel::fence_off(&self.name, self.pci.as_ref(), &mut self.rx, &mut self.tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_counters_wrap_at_their_width() {
        let mut r = Rolling {
            last: 0xffff_fff0,
            total: 0,
        };
        r.advance(0x10, 32);
        assert_eq!(r.total, 0x20);
        let mut o = Rolling {
            last: 0xf_ffff_ff00,
            total: 5,
        };
        o.advance(0x100, 36);
        assert_eq!(o.total, 5 + 0x200);
    }

    #[test]
    fn open_refuses_wrong_devices_and_bad_options_before_unbinding() {
        use crate::pci::testing::{fake_sysfs, open_error, unbind_written};
        let open = |root: &std::path::Path, cfg: &DeviceConfig| {
            open_error(root, |pci| IxgbevfDevice::open(pci, cfg))
        };
        let cfg = DeviceConfig::new("0000:00:04.0");
        // A virtio NIC (and an 82599 PF) are not virtual functions.
        for (tag, vendor, device, driver) in [
            ("vf-on-virtio", 0x1af4, 0x1000, "virtio-pci"),
            ("vf-on-pf", 0x8086, 0x10fb, "ixgbe"),
        ] {
            let (root, _) = fake_sysfs(tag, [0, 0, 2], vendor, device, Some(driver));
            let err = open(&root, &cfg);
            assert!(matches!(err, Error::Unsupported { .. }), "{err}");
            let id = format!("0000:00:04.0 ({vendor:04x}:{device:04x}) is not supported");
            assert!(err.to_string().contains(&id), "{tag}: {err}");
            let other = if tag == "vf-on-pf" { "ixgbe" } else { "virtio" };
            let which = format!(
                "the ixgbevf driver does not drive it; it is a device for the {other} driver"
            );
            assert!(err.to_string().contains(&which), "{tag}: {err}");
            assert_eq!(unbind_written(&root, driver), "");
        }
        // An 82599 VF, but 9 queues, or no hugetlbfs mount.
        let (root, _) = fake_sysfs("vf-checks", [0, 0, 2], 0x8086, 0x10ed, Some("ixgbevf"));
        let err = open(&root, &cfg.clone().queues(9, 9));
        assert!(err.to_string().contains("1 to 8"), "{err}");
        let err = open(&root, &cfg.clone().hugepage_dir("/nonexistent/ixy-huge"));
        assert!(matches!(err, Error::Hugepages { .. }), "{err}");
        assert_eq!(unbind_written(&root, "ixgbevf"), "", "never unbound");
    }

    #[test]
    fn options_are_checked() {
        for (rx, tx) in [(9, 1), (1, 0)] {
            assert_eq!(
                IxgbevfOptions::default()
                    .queues(rx, tx)
                    .validate()
                    .unwrap_err()
                    .to_string(),
                format!(
                    "invalid configuration: {rx} rx and {tx} tx queues requested: a virtual function has 1 to 8 of each"
                )
            );
        }
        IxgbevfOptions::default().validate().unwrap();
        assert!(!IxgbevfOptions::default().base.promisc);
    }
}
