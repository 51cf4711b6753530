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

use super::mailbox::{self, Mailbox, MailboxAt, msg};
use super::shell::{IntelDevice, IntelDriver, On, Queues2, Shell};
use super::{advance, random_local_mac};
use crate::DeviceConfig;
use crate::error::Result;
use crate::ixgbevf::{IxgbevfOptions, VfOptions};
use crate::pci::DriverKind;
use crate::registers::RegisterSpace;

/// The driver looks for a PF reset on every this-many-th empty receive poll or full
/// transmit ring.
pub const PF_CHECK_INTERVAL: u32 = 64;
/// Shortest time between two re-initialisation attempts from the packet path.
const REINIT_RETRY: Duration = Duration::from_secs(1);

/// The driver state of a VF: what the VF drivers share, and `x`, what only this one
/// has ([`Ixgbevf`](crate::ixgbevf::Ixgbevf), [`Igbvf`](crate::igbvf::Igbvf)).
pub struct Vf<X> {
    pub(crate) mbx: Mailbox,
    pub(crate) options: IxgbevfOptions,
    /// The address the PF assigned (RESET reply), or the random one made up for a NACK.
    pub(crate) perm_mac: [u8; 6],
    /// The address in use.
    pub(crate) mac: [u8; 6],
    /// The VF queue of transmit ring 0: the PF's default queue when it has traffic
    /// classes (ixgbevf's GET_QUEUES), else 0.
    pub(crate) tx_first: usize,
    /// rx packets, tx packets, rx octets, tx octets: rolling, not cleared on read.
    counters: [u64; 4],
    /// Empty polls / full rings since the last look at the mailbox.
    idle: u32,
    /// A PF reset was seen and re-initialisation has not succeeded yet.
    reinit_pending: bool,
    /// PF resets recovered from.
    pf_resets: u64,
    /// When the last re-initialisation from the packet path failed.
    last_failure: Option<Instant>,
    pub(crate) x: X,
}

/// A VF device.
type VfDevice<X, R> = IntelDevice<Vf<X>, R>;

impl<X> Vf<X> {
    /// The RESET handshake's MAC: the one the PF assigned (`reply`), or on a NACK (no
    /// address assigned; Linux `ixgbevf_reset_hw_vf` and `e1000_reset_hw_vf` accept it
    /// and the VF drivers make one up) the one made up before a PF reset, else a random
    /// one. An address changed with `set_mac_addr` is kept.
    pub(crate) fn take_assigned(&mut self, name: &str, reply: &mailbox::Reply) -> Result<()> {
        let mac = match (reply.acked(), self.perm_mac) {
            (true, _) => reply.mac(),
            (false, [0, 0, 0, 0, 0, 0]) => random_local_mac(),
            (false, kept) => kept,
        };
        let shown = crate::format_mac(&mac);
        if !reply.acked() {
            log::info!(
                "{name}: the PF assigned no MAC address (RESET answered with NACK); using the \
                 random locally administered {shown} (assign one on the host with `ip link set \
                 <pf> vf <n> mac <address>`)"
            );
        }
        if mac[0] & 1 != 0 || mac == [0; 6] {
            let detail = format!("the PF assigned {shown} to this VF, which is not unicast");
            return Err(crate::Error::device(name, detail));
        }
        if self.mac == [0; 6] || self.mac == self.perm_mac {
            self.mac = mac;
        }
        self.perm_mac = mac;
        Ok(())
    }
}

impl<X, R: RegisterSpace> VfDevice<X, R> {
    /// PF resets the driver recovered from.
    pub fn pf_resets(&self) -> u64 {
        self.d.pf_resets
    }

    /// The MAC address the PF assigned to this VF.
    pub fn permanent_mac(&self) -> [u8; 6] {
        self.d.perm_mac
    }

    /// Sends `message` to the PF and returns its reply.
    pub(crate) fn request(&self, message: &[u32]) -> Result<mailbox::Reply> {
        self.d.mbx.request(&self.shell.regs, message)
    }

    /// Sends `message` to the PF; a NACK is an error, `refused` saying what the PF refused
    /// and why.
    pub(crate) fn ask(
        &self,
        message: &[u32],
        refused: impl FnOnce(&mailbox::Reply) -> String,
    ) -> Result<mailbox::Reply> {
        let reply = self.request(message)?;
        match reply.acked() {
            true => Ok(reply),
            false => Err(self.shell.err(refused(&reply))),
        }
    }
}

/// What differs between the VF drivers, implemented by their [`IntelDevice`]s; every
/// VF is an [`IntelDriver`] through it.
pub(crate) trait VfDriver<R>: Sized {
    /// What the device is claimed for.
    const KIND: DriverKind;
    /// Descriptors per receive ring when opened from a [`DeviceConfig`].
    const RX_RING_SIZE: usize;
    /// Where the mailbox is.
    const MAILBOX: MailboxAt;
    /// Widths of the rolling counters (rx packets, tx packets, rx octets, tx octets).
    const COUNTER_BITS: [u32; 4];
    /// Where the receive and transmit queues' registers are.
    const QUEUE_REGS: Queues2;
    /// Queue pairs the VF has: all are stopped, whichever the driver enabled.
    const HW_QUEUES: usize;
    /// The VF's interrupt mask clear register and the bits of all its vectors.
    const EIMC: (usize, u32);
    /// Most receive and transmit queues, and why receive has no more (for the error).
    const MAX_QUEUES: ([u16; 2], &'static str);
    /// What the VF asks the PF after the RESET handshake.
    fn negotiate(&mut self) -> Result<()> {
        Ok(())
    }
    /// Queues, filters and link with the rings the VF has.
    fn start(&mut self) -> Result<()>;
    /// The link speed the VF's registers show, 0 while down.
    fn link(&self) -> u32;
    /// Asks the PF for promiscuous mode on or off.
    fn promisc_request(&mut self, enabled: bool) -> Result<()>;
    /// rx packets, tx packets, rx octets, tx octets as the counters read now.
    fn counter_values(&self) -> [u64; 4];
}

// Implemented for the two VF types only, whose bound holds: the trait stays internal.
#[allow(private_bounds)]
impl<X, R: RegisterSpace> VfDevice<X, R>
where
    Self: VfDriver<R>,
{
    /// Looks at the mailbox for a PF reset and, if there was one (or an earlier
    /// re-initialisation failed), initialises the VF again with the rings it has.
    /// Returns whether it did. Frames on the rings are dropped; packets the caller holds
    /// are untouched.
    pub fn check_pf_reset(&mut self) -> Result<bool> {
        let vf = &mut self.d;
        if !vf.reinit_pending && !vf.mbx.reset_indicated(&self.shell.regs) {
            return Ok(false);
        }
        let name = &self.shell.name;
        log::warn!("{name}: the PF reset the device; initialising the VF again");
        vf.reinit_pending = true;
        self.handshake()?;
        self.start()?;
        self.d.reinit_pending = false;
        self.d.pf_resets += 1;
        Ok(true)
    }

    /// Steps 1 and 2 of both VF drivers: queues off (one that does not stop is logged; the
    /// VF reset stops it), interrupts masked, VF reset (CTRL.RST, at 0 with bit 26 on both
    /// VFs), the end of a PF reset waited for; RESET (the MAC address); then what the
    /// driver negotiates.
    fn handshake(&mut self) -> Result<()> {
        self.stop_queues();
        let (s, (eimc, all)) = (&self.shell, Self::EIMC);
        s.regs.write32(eimc, all);
        s.regs.write32(super::regs::CTRL, super::regs::CTRL_RST);
        self.d.mbx.wait_reset_done(&s.regs)?;
        let reply = self.d.mbx.request(&s.regs, &[msg::RESET])?;
        self.d.take_assigned(&s.name, &reply)?;
        let mc_type = reply.words[msg::RESET_REPLY_WORDS - 1];
        log::debug!("{}: RESET reply: multicast filter type {mc_type}", s.name);
        self.negotiate()
    }

    /// Every queue off, then each read back off (82599 datasheet 4.6.7.1 and 4.6.8.1; the
    /// VF registers behave the same, 8.3). Returns whether all stopped.
    fn stop_queues(&self) -> bool {
        let ([rx, tx], first) = (Self::QUEUE_REGS, self.d.tx_first);
        let ctls = (0..Self::HW_QUEUES).flat_map(move |q| [rx(q).ctl, tx(first + q).ctl]);
        self.shell.stop_queues(ctls)
    }

    /// SET_MAC_ADDR; a refusal is an error naming the likely cause.
    fn request_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        let [w1, w2] = mailbox::mac_words(mac);
        self.ask(&[msg::SET_MAC_ADDR, w1, w2], |reply| {
            let why = if reply.not_clear_to_send() {
                "the VF is not clear to send (the PF reset it; it must send RESET first)"
            } else {
                "the host assigned this VF a MAC address and does not trust it to change it \
                 (`ip link set <pf> vf <n> trust on` allows it)"
            };
            let shown = crate::format_mac(&mac);
            format!("the PF refused MAC address {shown}: {why}")
        })?;
        self.d.mac = mac;
        Ok(())
    }

    /// Starts the rings the VF has, dropping frames left on them: receive queues with
    /// advanced one-buffer descriptors sized to the pool buffers, dropping frames when out
    /// of descriptors (`srrctl`: the register of queue `q`; `srrctl_bits`: its BSIZEPACKET
    /// field and DROP_EN bit), then transmit queues (from `Vf::tx_first`, with `tx_extra` in
    /// their control register), each enabled; then all receive descriptors but one go to
    /// the device.
    pub(crate) fn start_rings(
        &mut self,
        srrctl: fn(usize) -> usize,
        srrctl_bits: [u32; 2],
        tx_extra: u32,
    ) -> Result<()> {
        let (first, s) = (self.d.tx_first, &mut self.shell);
        for q in 0..s.rx.len() {
            s.rx[q].rearm();
            super::queue::set_srrctl(&s.regs, srrctl(q), srrctl_bits);
            let what = format!("VF receive queue {q} to enable (VFRXDCTL.ENABLE)");
            s.start_queue(&Self::QUEUE_REGS[0](q), s.rx[q].descriptors(), &what)?;
        }
        for q in 0..s.tx.len() {
            s.tx[q].discard();
            let what = format!("VF transmit queue {q} to enable (VFTXDCTL.ENABLE)");
            let qr = Self::QUEUE_REGS[1](first + q);
            s.regs.set_bits(qr.ctl, tx_extra);
            s.start_queue(&qr, s.tx[q].descriptors(), &what)?;
        }
        s.rx.iter_mut().for_each(|ring| ring.start(&s.regs));
        Ok(())
    }

    /// After a (re)start: registers the address in use, or the assigned one if the PF
    /// refuses it; then takes the counters' values as their new base (they may have
    /// restarted).
    pub(crate) fn register_mac(&mut self) -> Result<()> {
        let (mac, perm) = (self.d.mac, self.d.perm_mac);
        if let Err(e) = self.request_mac(mac) {
            if mac == perm {
                return Err(e);
            }
            let name = &self.shell.name;
            log::warn!("{name}: {e}; using the assigned address again");
            self.request_mac(perm)?;
        }
        self.d.counters = self.counter_values();
        Ok(())
    }
}

impl<X: Default, R: RegisterSpace> IntelDriver<R> for VfDevice<X, R>
where
    Self: VfDriver<R>,
{
    type Only = VfOptions;
    const KIND: DriverKind = <Self as VfDriver<R>>::KIND;

    /// Queue counts from `cfg`, defaults for the rest. A VF has no interrupt support yet:
    /// an interrupt timeout is ignored, with a warning.
    fn options(cfg: &DeviceConfig) -> IxgbevfOptions {
        if cfg.interrupt_timeout_ms != 0 {
            let (name, ms) = (&cfg.pci_addr, cfg.interrupt_timeout_ms);
            log::warn!(
                "{name}: the VF drivers have no interrupt support yet: interrupt timeout \
                 {ms} ms ignored, rx_batch polls"
            );
        }
        let mut o = IxgbevfOptions::default().queues(cfg.rx_queues, cfg.tx_queues);
        o.rx_ring_size = <Self as VfDriver<R>>::RX_RING_SIZE;
        o
    }

    fn check(o: &IxgbevfOptions) -> Result<()> {
        let (max, why) = Self::MAX_QUEUES;
        o.check_queues(<Self as VfDriver<R>>::KIND.name(), max, why)
    }

    /// The handshake, the receive and transmit rings (transmit queue `q` on VF queue
    /// `Vf::tx_first` + `q`, which the handshake may set), then the start.
    fn init(on: On<'_, R>, o: &IxgbevfOptions) -> Result<Self> {
        let s = Shell::new(on.name, on.regs, Default::default(), Vec::new());
        let vf = Vf {
            mbx: Mailbox::new(on.name, o.mailbox_timeout, Self::MAILBOX),
            options: o.clone(),
            perm_mac: [0; 6],
            mac: [0; 6],
            tx_first: 0,
            counters: [0; 4],
            idle: 0,
            reinit_pending: false,
            pf_resets: 0,
            last_failure: None,
            x: X::default(),
        };
        let mut dev = IntelDevice::new(s, vf);
        // On error `dev` is dropped, which stops its queues before the memory is freed.
        dev.handshake()?;
        let d = &dev.d;
        (dev.shell).add_rings(on.dma, &d.options, Self::QUEUE_REGS, d.tx_first)?;
        dev.start()?;
        dev.log_ready("");
        Ok(dev)
    }

    /// The address in use: the PF's assignment unless changed with `set_mac_addr`.
    fn mac(&self) -> [u8; 6] {
        self.d.mac
    }

    /// Asks the PF for `mac` (SET_MAC_ADDR); an error if the PF refuses.
    fn set_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        self.request_mac(mac)
    }

    /// 0 while the link is down or a PF reset is pending.
    fn speed(&self) -> u32 {
        if self.d.reinit_pending || self.d.mbx.reset_indicated(&self.shell.regs) {
            return 0;
        }
        self.link()
    }

    fn promisc_on(&mut self, enabled: bool) -> Result<()> {
        self.promisc_request(enabled)
    }

    /// Adds the rolling counters' progress. The octet counters include the 4-byte CRC
    /// (like the PF's GORC/GOTC, 82599 datasheet 8.2.3.23); [`DeviceStats`] counts frames
    /// without it. A VF has no drop, error or per-queue counters.
    fn read_counters(&mut self) {
        let now = self.counter_values();
        let last = &mut self.d.counters;
        let d: [u64; 4] =
            std::array::from_fn(|i| advance(&mut last[i], now[i], Self::COUNTER_BITS[i]));
        let s = &mut self.shell.stats;
        s.rx_packets += d[0];
        s.tx_packets += d[1];
        s.rx_bytes += d[2].saturating_sub(4 * d[0]);
        s.tx_bytes += d[3].saturating_sub(4 * d[1]);
    }

    /// Stops the VF's DMA before its rings and buffers are freed: queues off and read
    /// back off, then a VF reset. A queue that does not stop loses bus mastering, or if
    /// even that fails its memory is never given back.
    fn close(&mut self) {
        let stopped = self.stop_queues();
        let r = &self.shell.regs;
        r.write32(super::regs::CTRL, super::regs::CTRL_RST);
        if !stopped {
            self.shell.fence_off();
        }
    }

    /// Every [`PF_CHECK_INTERVAL`]-th time, looks for a PF reset (after a failed attempt,
    /// at most once per [`REINIT_RETRY`]).
    #[cold]
    #[inline(never)]
    fn stalled(&mut self) {
        let vf = &mut self.d;
        vf.idle = vf.idle.wrapping_add(1);
        let retry_later = vf.last_failure.is_some_and(|t| t.elapsed() < REINIT_RETRY);
        if !vf.idle.is_multiple_of(PF_CHECK_INTERVAL) || retry_later {
            return;
        }
        let failure = self.check_pf_reset().err().map(|e| {
            log::error!("{}: {e}; will try again", self.shell.name);
            Instant::now()
        });
        self.d.last_failure = failure;
    }
}
