//! What the Intel VF drivers (ixgbevf, igbvf) share beyond the [`Shell`]: the MAC address
//! the PF assigns, rolling statistics counters, and recovery from PF resets.
//!
//! **PF resets.** When the PF resets the device, the VF's mailbox control register shows
//! RSTI while it lasts and RSTD when it is over; the VF's queues are gone. The drivers look
//! at it when a receive poll finds nothing or a transmit finds its ring full (every
//! [`PF_CHECK_INTERVAL`]-th time, so busy queues pay nothing), or when asked
//! (`check_pf_reset`), and then initialise again with the rings they have. Frames on the
//! rings are dropped (their buffers return to the pools); packets the caller holds are
//! untouched. The link reads as down while a reset is pending.

use std::time::{Duration, Instant};

use super::mailbox::{self, Mailbox, msg};
use super::shell::{self, IntelDriver, Shell};
use super::{Rolling, random_local_mac};
use crate::error::Result;
use crate::ixgbevf::IxgbevfOptions;
use crate::memory::DmaAllocator;
use crate::pci::{DriverKind, PciDevice};
use crate::registers::{MmioRegion, RegisterSpace};
use crate::{DeviceConfig, DeviceStats};

/// The driver looks for a PF reset on every this-many-th empty receive poll or full
/// transmit ring.
pub const PF_CHECK_INTERVAL: u32 = 64;
/// Shortest time between two re-initialisation attempts from the packet path.
const REINIT_RETRY: Duration = Duration::from_secs(1);

/// A VF's state besides its shell.
pub(crate) struct Vf {
    pub(crate) mbx: Mailbox,
    /// The address the PF assigned (RESET reply), or the random one made up for a NACK.
    pub(crate) perm_mac: [u8; 6],
    /// The address in use.
    pub(crate) mac: [u8; 6],
    /// rx packets, tx packets, rx octets, tx octets: rolling, not cleared on read.
    counters: [Rolling; 4],
    /// Their widths in bits.
    widths: [u32; 4],
    /// The rings' no-buffer polls and unsendable packets, accumulated.
    drops: (u64, u64),
    /// Baseline subtracted by `reset_stats`.
    stats_zero: DeviceStats,
    /// Empty polls / full rings since the last look at the mailbox.
    idle: u32,
    /// A PF reset was seen and re-initialisation has not succeeded yet.
    reinit_pending: bool,
    /// PF resets recovered from.
    pub(crate) pf_resets: u64,
    /// When the last re-initialisation from the packet path failed.
    last_failure: Option<Instant>,
}

impl Vf {
    /// A VF that talks to its PF through `mbx`, with counters `widths` bits wide.
    pub(crate) fn new(mbx: Mailbox, widths: [u32; 4]) -> Self {
        Vf {
            mbx,
            perm_mac: [0; 6],
            mac: [0; 6],
            counters: [Rolling::default(); 4],
            widths,
            drops: (0, 0),
            stats_zero: DeviceStats::default(),
            idle: 0,
            reinit_pending: false,
            pf_resets: 0,
            last_failure: None,
        }
    }

    /// The RESET handshake's MAC: the one the PF assigned (`reply`), or on a NACK (no
    /// address assigned; Linux `ixgbevf_reset_hw_vf` and `e1000_reset_hw_vf` accept it
    /// and the VF drivers make one up) the one made up before a PF reset, else a random
    /// one. An address changed with `set_mac_addr` is kept.
    pub(crate) fn take_assigned(&mut self, name: &str, reply: &mailbox::Reply) -> Result<()> {
        let mac = if reply.acked() {
            reply.mac()
        } else {
            let mac = match self.perm_mac {
                [0, 0, 0, 0, 0, 0] => random_local_mac(),
                kept => kept,
            };
            log::info!(
                "{name}: the PF assigned no MAC address (RESET answered with NACK); using the \
                 random locally administered {} (assign one on the host with `ip link set \
                 <pf> vf <n> mac <address>`)",
                crate::format_mac(&mac)
            );
            mac
        };
        if mac[0] & 1 != 0 || mac == [0; 6] {
            let detail = format!(
                "the PF assigned {} to this VF, which is not a unicast address",
                crate::format_mac(&mac)
            );
            return Err(crate::Error::device(name, detail));
        }
        if self.mac == [0; 6] || self.mac == self.perm_mac {
            self.mac = mac;
        }
        self.perm_mac = mac;
        Ok(())
    }
}

/// A VF driver: its shell, its [`Vf`] and what differs between the VFs. Every VF driver
/// is an [`IntelDriver`] through it.
pub(crate) trait VfDriver {
    /// The register space.
    type Regs: RegisterSpace;
    /// [`crate::IxyDevice::driver_name`].
    const NAME: &'static str;
    /// The shell and the VF state.
    fn parts(&self) -> (&Shell<Self::Regs>, &Vf);
    /// The shell and the VF state.
    fn parts_mut(&mut self) -> (&mut Shell<Self::Regs>, &mut Vf);
    /// Reset and mailbox handshake.
    fn handshake(&mut self) -> Result<()>;
    /// Queues, filters and link with the rings the VF has.
    fn start(&mut self) -> Result<()>;
    /// The link speed the VF's registers show, 0 while down.
    fn link(&self) -> u32;
    /// Asks the PF for promiscuous mode on or off.
    fn promisc_request(&mut self, enabled: bool) -> Result<()>;
    /// rx packets, tx packets, rx octets, tx octets as the counters read now.
    fn read_counters(&self) -> [u64; 4];
    /// Descriptors per receive ring when opened from a [`DeviceConfig`].
    const RX_RING_SIZE: usize;
    /// Refuses options the VF cannot have.
    fn check(o: &IxgbevfOptions) -> Result<()>;
}

/// How a VF driver initialises itself on its registers (its `with_registers`).
pub(crate) type VfInit<D> = fn(&str, MmioRegion, &dyn DmaAllocator, IxgbevfOptions) -> Result<D>;

/// [`shell::open`] for a VF, the options checked first (so they are reported as such on
/// any machine).
pub(crate) fn open<V: VfDriver<Regs = MmioRegion>>(
    pci: PciDevice,
    cfg: &DeviceConfig,
    kind: DriverKind,
    init: VfInit<V>,
) -> Result<V> {
    let mut o = IxgbevfOptions::from_config(cfg);
    o.rx_ring_size = V::RX_RING_SIZE;
    V::check(&o)?;
    shell::open(
        pci,
        cfg,
        kind,
        |_| Ok(()),
        |pci, _, bar, dma| init(pci.name(), bar, dma, o),
    )
}

impl<V: VfDriver> IntelDriver for V {
    type Regs = V::Regs;
    const NAME: &'static str = V::NAME;

    fn shell(&self) -> &Shell<V::Regs> {
        self.parts().0
    }

    fn shell_mut(&mut self) -> &mut Shell<V::Regs> {
        self.parts_mut().0
    }

    /// The address in use: the PF's assignment unless changed with `set_mac_addr`.
    fn mac(&self) -> [u8; 6] {
        self.parts().1.mac
    }

    /// Asks the PF for `mac` (SET_MAC_ADDR); an error if the PF refuses.
    fn set_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        request_mac(self, mac)
    }

    /// 0 while the link is down or a PF reset is pending.
    fn speed(&self) -> u32 {
        let (s, vf) = self.parts();
        if vf.reinit_pending || vf.mbx.reset_indicated(&s.regs) {
            return 0;
        }
        self.link()
    }

    fn promisc_on(&mut self, enabled: bool) -> Result<()> {
        self.promisc_request(enabled)
    }

    /// Totals from the rolling counters since open or `reset_stats`. A VF has no drop,
    /// error or per-queue counters.
    fn counters(&mut self) -> DeviceStats {
        let t = totals(self);
        let z = &self.parts().1.stats_zero;
        DeviceStats {
            rx_packets: t.rx_packets.saturating_sub(z.rx_packets),
            tx_packets: t.tx_packets.saturating_sub(z.tx_packets),
            rx_bytes: t.rx_bytes.saturating_sub(z.rx_bytes),
            tx_bytes: t.tx_bytes.saturating_sub(z.tx_bytes),
            rx_nombuf: t.rx_nombuf - z.rx_nombuf,
            tx_dropped: t.tx_dropped - z.tx_dropped,
            ..DeviceStats::default()
        }
    }

    /// The counters are read-only: the current totals become the new zero.
    fn zero_counters(&mut self) {
        self.parts_mut().1.stats_zero = totals(self);
    }

    /// Every [`PF_CHECK_INTERVAL`]-th time, looks for a PF reset (after a failed attempt,
    /// at most once per [`REINIT_RETRY`]).
    #[cold]
    #[inline(never)]
    fn stalled(&mut self) {
        let vf = self.parts_mut().1;
        vf.idle = vf.idle.wrapping_add(1);
        let retry_later = vf.last_failure.is_some_and(|t| t.elapsed() < REINIT_RETRY);
        if !vf.idle.is_multiple_of(PF_CHECK_INTERVAL) || retry_later {
            return;
        }
        let failure = check_pf_reset(self).err().map(|e| {
            log::error!("{}: {e}; will try again", self.shell().name);
            Instant::now()
        });
        self.parts_mut().1.last_failure = failure;
    }
}

/// Looks for a PF reset and, if there was one (or an earlier re-initialisation failed),
/// initialises the VF again with the rings it has. Returns whether it did.
pub(crate) fn check_pf_reset<V: VfDriver>(d: &mut V) -> Result<bool> {
    let (s, vf) = d.parts_mut();
    if !vf.reinit_pending && !vf.mbx.reset_indicated(&s.regs) {
        return Ok(false);
    }
    log::warn!(
        "{}: the PF reset the device; initialising the VF again",
        s.name
    );
    vf.reinit_pending = true;
    d.handshake()?;
    d.start()?;
    let vf = d.parts_mut().1;
    vf.reinit_pending = false;
    vf.pf_resets += 1;
    Ok(true)
}

/// SET_MAC_ADDR; a refusal is an error naming the likely cause.
pub(crate) fn request_mac<V: VfDriver>(d: &mut V, mac: [u8; 6]) -> Result<()> {
    let (s, vf) = d.parts_mut();
    let [w1, w2] = mailbox::mac_words(mac);
    let reply = vf.mbx.request(&s.regs, &[msg::SET_MAC_ADDR, w1, w2])?;
    if !reply.acked() {
        let why = if reply.not_clear_to_send() {
            "the VF is not clear to send (the PF reset it; it must send RESET first)"
        } else {
            "the host assigned this VF a MAC address and does not trust it to change it \
             (`ip link set <pf> vf <n> trust on` allows it)"
        };
        let mac = crate::format_mac(&mac);
        return Err(s.err(format!("the PF refused MAC address {mac}: {why}")));
    }
    vf.mac = mac;
    Ok(())
}

/// After a (re)start: registers the address in use, or the assigned one if the PF refuses
/// it; then takes the counters' values as their new base (they may have restarted).
pub(crate) fn register_mac<V: VfDriver>(d: &mut V) -> Result<()> {
    let (mac, perm) = (d.parts().1.mac, d.parts().1.perm_mac);
    if let Err(e) = request_mac(d, mac) {
        if mac == perm {
            return Err(e);
        }
        log::warn!(
            "{}: {e}; using the assigned address again",
            d.parts().0.name
        );
        request_mac(d, perm)?;
    }
    let now = d.read_counters();
    for (c, now) in d.parts_mut().1.counters.iter_mut().zip(now) {
        c.last = now;
    }
    Ok(())
}

/// The totals since open: the counters advanced to their current values, and the
/// rings' drops. The octet counters include the 4-byte CRC (like the PF's GORC/GOTC,
/// 82599 datasheet 8.2.3.23); [`DeviceStats`] counts frames without it.
fn totals<V: VfDriver>(d: &mut V) -> DeviceStats {
    let now = d.read_counters();
    let (s, vf) = d.parts_mut();
    for ((c, v), bits) in vf.counters.iter_mut().zip(now).zip(vf.widths) {
        c.advance(v, bits);
    }
    let (nombuf, dropped) = s.take_drops();
    vf.drops = (vf.drops.0 + nombuf, vf.drops.1 + dropped);
    let [rp, tp, ro, to] = vf.counters.map(|c| c.total);
    DeviceStats {
        rx_packets: rp,
        tx_packets: tp,
        rx_bytes: ro.saturating_sub(4 * rp),
        tx_bytes: to.saturating_sub(4 * tp),
        rx_nombuf: vf.drops.0,
        tx_dropped: vf.drops.1,
        ..DeviceStats::default()
    }
}
