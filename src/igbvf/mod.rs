//! igbvf: driver for the SR-IOV virtual functions of the Intel 82576 (device ids:
//! [`crate::pci::IGBVF_DEVICE_IDS`]), as the Linux `igb` PF driver creates them
//! (`echo N > /sys/bus/pci/devices/<pf>/sriov_numvfs`).
//!
//! A VF owns queue pairs of its PF and nothing global; it asks the PF for what it needs
//! through the mailbox (`intel::mailbox`, the 82599's protocol at the 82576 VF's offsets,
//! V2PMAILBOX at 0x0C40, VMBMEM at 0x0800). Bring-up, in the order of Linux `igbvf`
//! (`e1000_reset_hw_vf`, `igbvf_configure`):
//!
//! 1. queues off, interrupts masked, VF reset (CTRL.RST), then wait until the PF is not
//!    resetting (V2PMAILBOX.RSTI clear);
//! 2. RESET message: the reply carries the MAC address the PF assigned (NACK: none; a
//!    random locally administered address is used, as in Linux);
//! 3. the rings (`intel::ring`, shared with the other Intel drivers), queue enable;
//! 4. SET_MAC_ADDR, and SET_PROMISC if promiscuous mode is asked for;
//! 5. the link (the PF's STATUS, which the VF reads), waited for with a deadline.
//!
//! The igb PF speaks the first mailbox API only: no version negotiation, no queue-count
//! query (a VF has one queue pair in Linux's igb), and its own SET_PROMISC message (id
//! 0x06, Linux `igb/e1000_mbx.h`), which allows multicast promiscuous only: unicast
//! promiscuous mode is refused with a clear error.
//!
//! **PF resets** are handled as in ixgbevf: an empty receive poll or a full transmit ring
//! looks at V2PMAILBOX every [`PF_CHECK_INTERVAL`]-th time (or [`IgbvfDevice::check_pf_reset`]
//! when asked), and after a PF reset steps 1 to 5 run again with the rings the VF has.
//!
//! **Statistics** come from the VF's 32-bit rolling counters (VFGPRC, VFGPTC, VFGORC,
//! VFGOTC); the VF has no drop counter, so `rx_dropped` stays 0.

pub mod regs;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::igb::regs as pf;
use crate::intel::mailbox::{self, Mailbox, msg};
use crate::intel::queue;
use crate::intel::ring::{RxRing, TxRing};
use crate::intel::{Rolling, random_local_mac};
use crate::ixgbe::POOL_ENTRY_SIZE;
use crate::ixgbevf::IxgbevfOptions;
use crate::memory::mempool::HEADROOM;
use crate::memory::{DmaAllocator, Mempool, Packet};
use crate::pci::{DriverKind, PciDevice};
use crate::registers::{MmioRegion, RegisterSpace, wait_device};
use crate::{DeviceConfig, DeviceStats, IxyDevice};

/// Queues of each kind this driver uses (the 82576 VF has two pairs; the Linux PF and VF
/// drivers use one).
pub const MAX_QUEUES: u16 = 1;
/// The driver looks for a PF reset on every this-many-th empty receive poll or full
/// transmit ring.
pub const PF_CHECK_INTERVAL: u32 = 64;
/// SET_PROMISC (Linux `igb/e1000_mbx.h`; not in the 82599's message set).
const SET_PROMISC: u32 = 0x06;
/// SET_PROMISC info bits (23:16): unicast and multicast promiscuous.
const PROMISC_UNICAST_MULTICAST: u32 = 0x3 << 16;
/// Queue enable and disable read-back timeout.
const QUEUE_TIMEOUT: Duration = Duration::from_millis(100);
/// Shortest time between two re-initialisation attempts from the packet path.
const REINIT_RETRY: Duration = Duration::from_secs(1);

/// An Intel 82576 virtual function.
///
/// `R` is the register space (the VF's BAR0): [`MmioRegion`] on hardware
/// ([`IgbvfDevice::open`]), a fake in tests ([`IgbvfDevice::with_registers`]).
pub struct IgbvfDevice<R: RegisterSpace = MmioRegion> {
    name: String,
    regs: R,
    mbx: Mailbox,
    rx: Vec<RxRing>,
    tx: Vec<TxRing>,
    /// The address the PF assigned (RESET reply), or the random one made up for a NACK.
    perm_mac: [u8; 6],
    /// The address in use.
    mac: [u8; 6],
    promisc: bool,
    options: IxgbevfOptions,
    /// rx packets, tx packets, rx octets, tx octets.
    counters: [Rolling; 4],
    /// Polls that found a frame but no free pool buffer, since open.
    nombuf: u64,
    /// Packets the rings dropped on transmit (too short), since open.
    tx_dropped: u64,
    /// Baseline subtracted by `reset_stats`.
    stats_zero: DeviceStats,
    /// Empty polls / full rings since the last look at V2PMAILBOX.
    idle: u32,
    /// A PF reset was seen and re-initialisation has not succeeded yet.
    reinit_pending: bool,
    pf_resets: u64,
    /// When the last re-initialisation from the packet path failed.
    last_failure: Option<Instant>,
    /// Keeps the PCI device (and the claim on it); dropped after the rings.
    pci: Option<PciDevice>,
}

impl IgbvfDevice<MmioRegion> {
    /// Takes `pci` from its kernel driver, maps BAR0 and initialises the VF as `cfg` asks,
    /// with DMA memory from hugepages. Options, the device kind and the hugetlbfs mount
    /// are checked before the device is touched.
    pub fn open(pci: PciDevice, cfg: &DeviceConfig) -> Result<Self> {
        let mut options = IxgbevfOptions::from_config(cfg);
        options.base.promisc = false;
        // QEMU drops a VF's receive backlog beyond its free descriptors as a PF's: the PF's
        // ring size (see crate::igb::RX_RING_SIZE).
        options.base.rx_ring_size = crate::igb::RX_RING_SIZE;
        crate::intel::check_options("igbvf", &options.base, MAX_QUEUES)?;
        let bar = crate::intel::claim_bar0(&pci, cfg, DriverKind::Igbvf)?;
        let mut dev = Self::with_registers(pci.name(), bar, &cfg.dma(), options)?;
        dev.pci = Some(pci);
        Ok(dev)
    }
}

impl<R: RegisterSpace> IgbvfDevice<R> {
    /// Initialises the VF behind `regs` (its BAR0) with rings and buffers from `dma`, as
    /// `options` ask. `name` identifies it in messages.
    pub fn with_registers(
        name: &str,
        regs: R,
        dma: &dyn DmaAllocator,
        options: IxgbevfOptions,
    ) -> Result<Self> {
        let o = &options.base;
        crate::intel::check_options("igbvf", o, MAX_QUEUES)?;
        if o.interrupt_timeout_ms != 0 {
            log::warn!("{name}: igbvf has no interrupt support: rx_batch polls");
        }
        let pool = Mempool::new(dma, o.pool_entries, POOL_ENTRY_SIZE)?;
        let rx = RxRing::new(dma, o.rx_ring_size, pool, regs::rx_queue(0).tail)?;
        let tx = TxRing::new(dma, o.tx_ring_size, regs::tx_queue(0).tail)?;
        let mut dev = IgbvfDevice {
            name: name.to_string(),
            mbx: Mailbox::new(name, options.mailbox_timeout, regs::MAILBOX),
            regs,
            rx: vec![rx],
            tx: vec![tx],
            perm_mac: [0; 6],
            mac: [0; 6],
            promisc: false,
            options,
            counters: [Rolling::default(); 4],
            nombuf: 0,
            tx_dropped: 0,
            stats_zero: DeviceStats::default(),
            idle: 0,
            reinit_pending: false,
            pf_resets: 0,
            last_failure: None,
            pci: None,
        };
        // On error `dev` is dropped, which stops its queues before the memory is freed.
        dev.handshake()?;
        dev.start()?;
        log::info!(
            "{name}: igbvf ready, MAC {}, link {} Mbit/s",
            crate::format_mac(&dev.mac),
            dev.link_speed()
        );
        Ok(dev)
    }

    fn err(&self, detail: impl Into<String>) -> Error {
        Error::device(&self.name, detail)
    }

    /// Steps 1 and 2: reset, MAC address.
    fn handshake(&mut self) -> Result<()> {
        if let Err(e) = self.stop_queues() {
            log::warn!("{}: {e}; the VF reset stops them", self.name);
        }
        self.regs.write32(regs::EIMC, regs::EIMC_ALL);
        self.regs.write32(regs::CTRL, pf::CTRL_RST);
        self.mbx.wait_reset_done(&self.regs)?;
        let reply = self.mbx.request(&self.regs, &[msg::RESET])?;
        let mac = if reply.acked() {
            reply.mac()
        } else if self.perm_mac == [0; 6] {
            // No MAC assigned (Linux `e1000_reset_hw_vf` accepts the NACK; igbvf then
            // makes up a random address).
            random_local_mac()
        } else {
            self.perm_mac
        };
        if mac[0] & 1 != 0 || mac == [0; 6] {
            let mac = crate::format_mac(&mac);
            return Err(self.err(format!("the PF assigned {mac}, not a unicast address")));
        }
        if self.mac == [0; 6] || self.mac == self.perm_mac {
            self.mac = mac;
        }
        self.perm_mac = mac;
        Ok(())
    }

    /// Disables both queue pairs and waits until they read back disabled.
    fn stop_queues(&self) -> Result<()> {
        let mut result = Ok(());
        for q in 0..2 {
            for ctl in [regs::rx_queue(q).ctl, regs::tx_queue(q).ctl] {
                queue::disable_queue(&self.regs, ctl, pf::XDCTL_ENABLE);
                let what = format!("VF queue {q} to disable (XDCTL.ENABLE)");
                let done = wait_device(
                    &self.regs,
                    &self.name,
                    ctl,
                    pf::XDCTL_ENABLE,
                    0,
                    QUEUE_TIMEOUT,
                    &what,
                );
                result = result.and(done);
            }
        }
        result
    }

    /// Steps 3 to 5 with the rings the VF has.
    fn start(&mut self) -> Result<()> {
        let buf_kb = ((POOL_ENTRY_SIZE - HEADROOM) / 1024) as u32;
        let (rx, tx) = (&mut self.rx[0], &mut self.tx[0]);
        rx.rearm();
        tx.discard();
        let keep = !(pf::SRRCTL_DESCTYPE_MASK | pf::SRRCTL_BSIZEPACKET_MASK);
        let srrctl = self.regs.read32(regs::srrctl(0)) & keep;
        let adv = pf::SRRCTL_DESCTYPE_ADV_ONEBUF | pf::SRRCTL_DROP_EN;
        self.regs.write32(regs::srrctl(0), srrctl | adv | buf_kb);
        for (qr, ring, what) in [
            (
                regs::rx_queue(0),
                rx.descriptors(),
                "VF receive queue to enable",
            ),
            (
                regs::tx_queue(0),
                tx.descriptors(),
                "VF transmit queue to enable",
            ),
        ] {
            queue::program_ring(&self.regs, &qr, ring);
            let (enable, t) = (pf::XDCTL_ENABLE, QUEUE_TIMEOUT);
            queue::enable_queue(&self.regs, &self.name, &qr, enable, 0, t, what)?;
        }
        rx.start(&self.regs);
        if let Err(e) = self.request_mac(self.mac) {
            if self.mac == self.perm_mac {
                return Err(e);
            }
            log::warn!("{}: {e}; using the assigned address again", self.name);
            self.request_mac(self.perm_mac)?;
        }
        if self.options.base.promisc || self.promisc {
            self.set_promisc(true)?;
        }
        let now = self.read_counters();
        for (c, now) in self.counters.iter_mut().zip(now) {
            c.last = now;
        }
        let o = &self.options.base;
        let speed = || self.status_speed();
        let state = || format!("the PF's STATUS = {:#010x}", self.regs.read32(regs::STATUS));
        crate::intel::wait_for_link(&self.name, o.link_timeout, o.require_link, speed, state)
    }

    /// SET_MAC_ADDR; a refusal is an error naming the likely cause.
    fn request_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        let [w1, w2] = mailbox::mac_words(mac);
        let reply = self.mbx.request(&self.regs, &[msg::SET_MAC_ADDR, w1, w2])?;
        if !reply.acked() {
            return Err(self.err(format!(
                "the PF refused MAC address {}: the host assigned this VF an address and does \
                 not trust it to change it (`ip link set <pf> vf <n> trust on` allows it)",
                crate::format_mac(&mac)
            )));
        }
        self.mac = mac;
        Ok(())
    }

    /// rx packets, tx packets, rx octets, tx octets.
    fn read_counters(&self) -> [u64; 4] {
        [regs::VFGPRC, regs::VFGPTC, regs::VFGORC, regs::VFGOTC]
            .map(|r| u64::from(self.regs.read32(r)))
    }

    fn totals(&mut self) -> DeviceStats {
        let now = self.read_counters();
        for (c, v) in self.counters.iter_mut().zip(now) {
            c.advance(v, 32);
        }
        let [rp, tp, ro, to] = self.counters.map(|c| c.total);
        self.nombuf += self.rx.iter_mut().map(RxRing::take_nombuf).sum::<u64>();
        self.tx_dropped += self.tx.iter_mut().map(TxRing::take_dropped).sum::<u64>();
        // The octet counters include the 4-byte CRC; DeviceStats counts frames without it.
        DeviceStats {
            rx_packets: rp,
            tx_packets: tp,
            rx_bytes: ro.saturating_sub(4 * rp),
            tx_bytes: to.saturating_sub(4 * tp),
            rx_nombuf: self.nombuf,
            tx_dropped: self.tx_dropped,
            ..DeviceStats::default()
        }
    }

    /// Looks at V2PMAILBOX for a PF reset and, if there was one (or an earlier
    /// re-initialisation failed), initialises the VF again with its rings. Returns whether
    /// it did. Frames on the rings are dropped; packets the caller holds are untouched.
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

    /// A queue made no progress: every [`PF_CHECK_INTERVAL`]-th time, looks for a PF
    /// reset (after a failed attempt, at most once per [`REINIT_RETRY`]).
    #[cold]
    #[inline(never)]
    fn stalled(&mut self) {
        self.idle = self.idle.wrapping_add(1);
        let retry_later = self
            .last_failure
            .is_some_and(|t| t.elapsed() < REINIT_RETRY);
        if !self.idle.is_multiple_of(PF_CHECK_INTERVAL) || retry_later {
            return;
        }
        self.last_failure = match self.check_pf_reset() {
            Ok(_) => None,
            Err(e) => {
                log::error!("{}: {e}; will try again", self.name);
                Some(Instant::now())
            }
        };
    }

    /// Link speed from the PF's STATUS (LU, SPEED), 0 while down.
    fn status_speed(&self) -> u32 {
        crate::igb::speed_from_status(self.regs.read32(regs::STATUS))
    }

    /// PF resets the driver recovered from.
    pub fn pf_resets(&self) -> u64 {
        self.pf_resets
    }

    /// The MAC address the PF assigned to this VF.
    pub fn permanent_mac(&self) -> [u8; 6] {
        self.perm_mac
    }
}

impl<R: RegisterSpace> IxyDevice for IgbvfDevice<R> {
    fn driver_name(&self) -> &str {
        "igbvf"
    }

    fn pci_addr(&self) -> &str {
        &self.name
    }

    fn mac_addr(&self) -> [u8; 6] {
        self.mac
    }

    /// Asks the PF for `mac` (SET_MAC_ADDR); an error if the PF refuses.
    fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            let mac = crate::format_mac(&mac);
            return Err(Error::config(format!(
                "{mac} cannot be a station address (multicast or zero)"
            )));
        }
        self.request_mac(mac)
    }

    /// Speed from the PF's STATUS; 0 while the link is down or a PF reset is pending.
    fn link_speed(&self) -> u32 {
        if self.reinit_pending || self.mbx.reset_indicated(&self.regs) {
            return 0;
        }
        self.status_speed()
    }

    /// SET_PROMISC: the igb PF grants multicast promiscuous only, so turning promiscuous
    /// mode on is refused (an error naming why); turning it off always works.
    fn set_promisc(&mut self, enabled: bool) -> Result<()> {
        let info = if enabled {
            PROMISC_UNICAST_MULTICAST
        } else {
            0
        };
        let reply = self.mbx.request(&self.regs, &[SET_PROMISC | info])?;
        if !reply.acked() {
            return Err(self.err(
                "the PF refused promiscuous mode (SET_PROMISC NACK): the Linux igb PF lets a \
                 VF receive all multicast frames, never all unicast ones; send to the VF's MAC",
            ));
        }
        self.promisc = enabled;
        Ok(())
    }

    fn promisc(&self) -> bool {
        self.promisc
    }

    fn num_rx_queues(&self) -> u16 {
        self.rx.len() as u16
    }

    fn num_tx_queues(&self) -> u16 {
        self.tx.len() as u16
    }

    /// Receives through the shared ring code; an empty poll may look for a PF reset.
    #[inline]
    fn rx_batch(&mut self, queue: u16, out: &mut VecDeque<Packet>, max: usize) -> usize {
        let got = crate::queue_mut(&mut self.rx, queue, "rx").rx_batch(&self.regs, out, max);
        if got == 0 {
            self.stalled();
        }
        got
    }

    /// Sends through the shared ring code; a full ring may look for a PF reset.
    #[inline]
    fn tx_batch(&mut self, queue: u16, packets: &mut VecDeque<Packet>) -> usize {
        let offered = packets.len();
        let sent = crate::queue_mut(&mut self.tx, queue, "tx").tx_batch(&self.regs, packets);
        if sent < offered {
            self.stalled();
        }
        sent
    }

    /// Totals from the rolling counters since open or `reset_stats`.
    fn stats(&mut self) -> DeviceStats {
        let (t, z) = (self.totals(), &self.stats_zero);
        DeviceStats {
            rx_packets: t.rx_packets - z.rx_packets,
            tx_packets: t.tx_packets - z.tx_packets,
            rx_bytes: t.rx_bytes.saturating_sub(z.rx_bytes),
            tx_bytes: t.tx_bytes.saturating_sub(z.tx_bytes),
            rx_nombuf: t.rx_nombuf - z.rx_nombuf,
            tx_dropped: t.tx_dropped - z.tx_dropped,
            ..DeviceStats::default()
        }
    }

    /// The counters are read-only: the current totals become the new zero.
    fn reset_stats(&mut self) {
        self.stats_zero = self.totals();
    }
}

impl<R: RegisterSpace> Drop for IgbvfDevice<R> {
    /// Stops the VF's DMA before its rings and buffers are freed: queues off and read back
    /// off, then a VF reset. A queue that does not stop loses bus mastering, or if even
    /// that fails its memory is never given back.
    fn drop(&mut self) {
        let stopped = self.stop_queues();
        self.regs.write32(regs::CTRL, pf::CTRL_RST);
        if let Err(e) = stopped {
            log::error!("{}: {e}", self.name);
            let pci = self.pci.as_ref();
            crate::intel::fence_off(&self.name, pci, &mut self.rx, &mut self.tx);
        }
    }
}

#[cfg(test)]
mod tests {
    // The VF driver against a fake 82576 VF whose mailbox answers like the Linux igb PF.

    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::rc::Rc;

    use super::*;
    use crate::intel::mailbox::{
        VFMAILBOX_PFACK, VFMAILBOX_PFSTS, VFMAILBOX_REQ, VFMAILBOX_RSTD, VFMAILBOX_VFU,
    };
    use crate::memory::HeapDma;

    const MAC: [u8; 6] = [0x02, 0x1b, 0x21, 0x3c, 0x4d, 0x5e];

    /// Plain memory, a link at 1000 Mb/s, and a PF at the other end of the mailbox: each
    /// request is acknowledged and answered at once (RESET with MAC, or NACK when `no_mac`;
    /// SET_PROMISC with the unicast bit refused, as Linux `igb_set_vf_promisc` does).
    #[derive(Default, Clone)]
    struct Fake {
        mem: Rc<RefCell<HashMap<usize, u32>>>,
        requests: Rc<RefCell<Vec<u32>>>,
        /// Bits read-to-clear pending in V2PMAILBOX.
        pending: Rc<Cell<u32>>,
        no_mac: bool,
    }

    impl Fake {
        fn answer(&self, request: u32) {
            let m = &mut *self.mem.borrow_mut();
            self.requests.borrow_mut().push(request);
            let id = request & 0xffff;
            let refuse =
                (id == msg::RESET && self.no_mac) || request == SET_PROMISC | 1 << 16 | 2 << 16;
            let ack = if refuse { msg::NACK } else { msg::ACK };
            m.insert(regs::MAILBOX.mem, id | ack | msg::CTS);
            if id == msg::RESET {
                let [w1, w2] = mailbox::mac_words(MAC);
                m.insert(regs::MAILBOX.mem + 4, w1);
                m.insert(regs::MAILBOX.mem + 8, w2);
            }
            self.pending
                .set(self.pending.get() | VFMAILBOX_PFACK | VFMAILBOX_PFSTS);
        }
    }

    impl RegisterSpace for Fake {
        fn read32(&self, offset: usize) -> u32 {
            match offset {
                regs::STATUS => pf::STATUS_LU | 2 << pf::STATUS_SPEED_SHIFT,
                o if o == regs::MAILBOX.ctl => VFMAILBOX_VFU | self.pending.replace(0),
                o => self.mem.borrow().get(&o).copied().unwrap_or(0),
            }
        }

        fn write32(&self, offset: usize, value: u32) {
            if offset == regs::MAILBOX.ctl {
                if value & VFMAILBOX_REQ != 0 {
                    let request = self
                        .mem
                        .borrow()
                        .get(&regs::MAILBOX.mem)
                        .copied()
                        .unwrap_or(0);
                    self.answer(request);
                }
                return;
            }
            self.mem.borrow_mut().insert(offset, value);
        }
    }

    fn options() -> IxgbevfOptions {
        let mut o = IxgbevfOptions::default();
        (
            o.base.rx_ring_size,
            o.base.tx_ring_size,
            o.base.pool_entries,
        ) = (64, 64, 128);
        o.mailbox_timeout = Duration::from_millis(100);
        o
    }

    #[test]
    fn init_resets_takes_the_assigned_mac_and_starts_queue_0() {
        let fake = Fake::default();
        let dev =
            IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, options()).unwrap();
        assert_eq!(dev.mac_addr(), MAC);
        let [w1, w2] = mailbox::mac_words(MAC);
        assert_eq!(*fake.requests.borrow(), vec![msg::RESET, msg::SET_MAC_ADDR]);
        assert_eq!(
            fake.mem.borrow()[&(regs::MAILBOX.mem + 4)],
            w1,
            "the SET_MAC_ADDR words"
        );
        assert_eq!(fake.mem.borrow()[&(regs::MAILBOX.mem + 8)], w2);
        let m = fake.mem.borrow();
        assert_eq!(m[&regs::CTRL], pf::CTRL_RST);
        assert_eq!(m[&regs::srrctl(0)], 1 << 25 | 1 << 31 | 3);
        assert_eq!(
            m[&0x2800],
            dev.rx[0].descriptors().bus_addr() as u32,
            "RDBAL"
        );
        assert_eq!(m[&0x2818], 63, "RDT");
        assert_eq!(
            m[&0x3800],
            dev.tx[0].descriptors().bus_addr() as u32,
            "TDBAL"
        );
        assert_eq!(m[&0x2828] & pf::XDCTL_ENABLE, pf::XDCTL_ENABLE);
        assert_eq!(m[&0x3828] & pf::XDCTL_ENABLE, pf::XDCTL_ENABLE);
        drop(m);
        assert_eq!(dev.link_speed(), 1000);
        drop(dev);
        let m = fake.mem.borrow();
        assert_eq!(m[&0x2828] & pf::XDCTL_ENABLE, 0, "queues stopped on drop");
        assert_eq!(m[&0x3828] & pf::XDCTL_ENABLE, 0);
    }

    #[test]
    fn a_nack_to_reset_means_a_random_local_mac_and_promisc_is_refused() {
        let fake = Fake {
            no_mac: true,
            ..Fake::default()
        };
        let mut dev =
            IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, options()).unwrap();
        let mac = dev.mac_addr();
        assert_eq!(mac[0] & 3, 2, "unicast, locally administered: {mac:x?}");
        let err = dev.set_promisc(true).unwrap_err();
        assert!(err.to_string().contains("SET_PROMISC NACK"), "{err}");
        assert!(!dev.promisc());
        dev.set_promisc(false).unwrap();
        assert_eq!(fake.requests.borrow().last(), Some(&SET_PROMISC));
    }

    #[test]
    fn a_pf_reset_is_noticed_on_an_empty_poll_and_the_vf_starts_again() {
        let fake = Fake::default();
        let mut dev =
            IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, options()).unwrap();
        fake.pending.set(VFMAILBOX_RSTD);
        fake.mem.borrow_mut().insert(0x2828, 0);
        let mut q = VecDeque::new();
        for _ in 0..PF_CHECK_INTERVAL {
            assert_eq!(dev.rx_batch(0, &mut q, 8), 0);
        }
        assert_eq!(dev.pf_resets(), 1);
        assert_eq!(
            fake.requests
                .borrow()
                .iter()
                .filter(|&&r| r == msg::RESET)
                .count(),
            2
        );
        assert_eq!(
            fake.mem.borrow()[&0x2828] & pf::XDCTL_ENABLE,
            pf::XDCTL_ENABLE
        );
    }

    #[test]
    fn open_refuses_wrong_devices_and_two_queues_before_unbinding() {
        use crate::pci::testing::{fake_sysfs, open_error, unbind_written};
        let cfg = DeviceConfig::new("0000:00:04.0");
        let (root, _) = fake_sysfs("igbvf-on-pf", [0, 0, 2], 0x8086, 0x10c9, Some("igb"));
        let err = open_error(&root, |pci| IgbvfDevice::open(pci, &cfg));
        let which = "the igbvf driver does not drive it; it is a device for the igb driver";
        assert!(err.to_string().contains(which), "{err}");
        assert_eq!(unbind_written(&root, "igb"), "");
        let (root, _) = fake_sysfs("igbvf-checks", [0, 0, 2], 0x8086, 0x10ca, Some("igbvf"));
        let err = open_error(&root, |pci| {
            IgbvfDevice::open(pci, &cfg.clone().queues(2, 1))
        });
        assert_eq!(
            err.to_string(),
            "invalid configuration: 2 rx queues requested: igbvf supports 1 to 1"
        );
        assert_eq!(unbind_written(&root, "igbvf"), "");
    }

    #[test]
    fn a_vf_whose_config_space_reads_ffff_is_identified_from_sysfs() {
        use crate::pci::testing::fake_sysfs;
        let (root, dir) = fake_sysfs("vf-ffff", [0, 0, 2], 0x8086, 0x10ca, None);
        let mut cfg = std::fs::read(dir.join("config")).unwrap();
        cfg[0..4].copy_from_slice(&[0xff; 4]);
        std::fs::write(dir.join("config"), cfg).unwrap();
        let pci = crate::pci::PciDevice::open_at("0000:00:04.0".parse().unwrap(), &root).unwrap();
        let id = pci.id();
        assert_eq!((id.vendor, id.device), (0x8086, 0x10ca));
        assert_eq!(crate::pci::driver_for(id), Some(DriverKind::Igbvf));
    }
}
