//! The part every Intel driver shares: its registers, rings, receive interrupts and PCI
//! device ([`Shell`]), the open sequence up to the driver's own init ([`open`]), and the
//! [`IxyDevice`] implementation, which forwards packets to the rings and asks the driver
//! ([`IntelDriver`]) only for what differs: MAC address, link, promiscuous mode, counters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::irq::{self, IrqRegs};
use super::queue::{self, QueueRegs};
use super::regs::XDCTL_ENABLE;
use super::ring::{DescRing, RxRing, TxRing};
use crate::error::{Error, Result};
use crate::interrupts::QueueInterrupt;
use crate::ixgbe::Options;
use crate::memory::{DmaAllocator, Mempool, Packet};
use crate::pci::{DeviceId, DriverKind, PciDevice};
use crate::queues::{self, QueueControl, Queues};
use crate::registers::{MmioRegion, RegisterSpace, wait_for};
use crate::{DeviceConfig, DeviceStats, IxyDevice};

/// An Intel function's registers, rings and receive interrupts.
pub(crate) struct Shell<R> {
    /// The device's name in messages (its PCI address on hardware).
    pub(crate) name: String,
    /// BAR0, shared with the queue handles once split ([`IxyDevice::split`]).
    pub(crate) regs: Arc<R>,
    pub(crate) rx: Vec<RxRing>,
    pub(crate) tx: Vec<TxRing>,
    /// Receive and transmit rings moved out by [`IxyDevice::split`].
    split: (usize, usize),
    /// One per receive queue when interrupts are on, empty when polling (always for VFs).
    /// Checked once per `rx_batch`: the only cost of interrupts on the polling path.
    pub(crate) irqs: Vec<QueueInterrupt>,
    /// Where the extended interrupt registers are (used only with `irqs`).
    pub(crate) irq_at: IrqRegs,
    pub(crate) promisc: bool,
    /// Counters accumulated since open or `reset_stats`.
    pub(crate) stats: DeviceStats,
    /// Keeps the PCI device (and the claim on it) while the driver runs. Last: dropped
    /// after the rings, so its VFIO mappings outlive them.
    pub(crate) pci: Option<PciDevice>,
}

impl<R: RegisterSpace> Shell<R> {
    /// A device without rings yet.
    pub(crate) fn new(name: &str, regs: R, irq_at: IrqRegs, irqs: Vec<QueueInterrupt>) -> Self {
        Shell {
            name: name.to_string(),
            regs: Arc::new(regs),
            rx: Vec::new(),
            tx: Vec::new(),
            split: (0, 0),
            irqs,
            irq_at,
            promisc: false,
            stats: DeviceStats::default(),
            pci: None,
        }
    }

    /// Receive and transmit queues the device has, also those split off: for the
    /// counters and for disabling them all when the device closes.
    pub(crate) fn queues(&self) -> (usize, usize) {
        (self.rx.len() + self.split.0, self.tx.len() + self.split.1)
    }

    /// An error of this device.
    pub(crate) fn err(&self, detail: impl Into<String>) -> Error {
        Error::device(&self.name, detail)
    }

    /// Waits up to `timeout` until `reg & mask == want`; the error names `what`.
    pub(crate) fn wait(
        &self,
        reg: usize,
        mask: u32,
        want: u32,
        t: Duration,
        what: &str,
    ) -> Result<()> {
        wait_for(&self.regs, reg, mask, want, t, what).map_err(|e| self.err(e))
    }

    /// Points queue `qr` at `ring` and enables it ([`Shell::enable_queue`]).
    pub(crate) fn start_queue(&self, qr: &QueueRegs, ring: &DescRing, what: &str) -> Result<()> {
        queue::program_ring(&self.regs, qr, ring);
        self.enable_queue(qr, what)
    }

    /// Sets the ENABLE bit in the queue control register (keeping its other bits) and
    /// waits until it reads back as set, which the datasheet requires before the tail may
    /// move (82599 datasheet 4.6.7.1, 4.6.8.1).
    pub(crate) fn enable_queue(&self, qr: &QueueRegs, what: &str) -> Result<()> {
        self.regs.set_bits(qr.ctl, XDCTL_ENABLE);
        self.wait(qr.ctl, XDCTL_ENABLE, XDCTL_ENABLE, QUEUE_TIMEOUT, what)
    }

    /// Adds `o`'s receive rings (each with a pool of its own) and transmit rings, for the
    /// queues `at` gives: transmit ring `q` on queue `tx_first + q`.
    pub(crate) fn add_rings<X>(
        &mut self,
        dma: &dyn DmaAllocator,
        o: &Options<X>,
        [rx, tx]: Queues2,
        tx_first: usize,
    ) -> Result<()> {
        for q in 0..usize::from(o.rx_queues) {
            let pool = Mempool::new(dma, o.pool_entries, crate::ixgbe::POOL_ENTRY_SIZE)?;
            self.rx
                .push(RxRing::new(dma, o.rx_ring_size, pool, rx(q).tail)?);
        }
        for q in 0..usize::from(o.tx_queues) {
            let tail = tx(tx_first + q).tail;
            self.tx.push(TxRing::new(dma, o.tx_ring_size, tail)?);
        }
        Ok(())
    }

    /// The master disable algorithm before a reset (82599 datasheet 5.2.5.3.2; Linux
    /// `igb_disable_pcie_master` does the same on the 82576): no new master requests
    /// (CTRL.GIO_MASTER_DISABLE), then wait until none is pending. A timeout is logged
    /// and the reset goes ahead, as in Linux: the reset is what stops the device for
    /// good. Returns whether the requests stopped.
    pub(crate) fn master_disable(&self) -> bool {
        use super::regs::{CTRL, CTRL_GIO_MASTER_DISABLE, STATUS, STATUS_GIO_MASTER_ENABLE};
        self.regs.set_bits(CTRL, CTRL_GIO_MASTER_DISABLE);
        let what = "master requests to stop (STATUS.GIO_MASTER_ENABLE)";
        let stopped = self.wait(STATUS, STATUS_GIO_MASTER_ENABLE, 0, MASTER_TIMEOUT, what);
        let warn = |e: &Error| log::warn!("{}: {e}; resetting anyway", self.name);
        stopped.inspect_err(warn).is_ok()
    }

    /// Sets reset bit(s) `bits` in CTRL, waits the ~1 ms before any access (82599
    /// datasheet 8.2.3.1.1; Linux `igb_reset_hw_82575` waits 1-2 ms), then until they and
    /// CTRL.RST read 0 (Linux `IXGBE_CTRL_RST_MASK`).
    pub(crate) fn reset_ctrl(&self, bits: u32) -> Result<()> {
        use super::regs::{CTRL, CTRL_RST};
        self.regs.set_bits(CTRL, bits);
        std::thread::sleep(Duration::from_millis(1));
        let what = "reset to complete (CTRL.RST)";
        self.wait(CTRL, bits | CTRL_RST, 0, Duration::from_secs(1), what)
    }

    /// Clears ENABLE in each queue control register of `ctls`, then waits up to
    /// [`QUEUE_DISABLE_TIMEOUT`] for each to read back clear (82599 datasheet 4.6.7.1.2,
    /// 4.6.8.1; the 82576's queues the same). A queue that does not stop is logged;
    /// returns whether all did.
    pub(crate) fn stop_queues(&self, ctls: impl Iterator<Item = usize> + Clone) -> bool {
        for ctl in ctls.clone() {
            let v = self.regs.read32(ctl);
            if v & XDCTL_ENABLE != 0 {
                self.regs.write32(ctl, v & !XDCTL_ENABLE);
            }
        }
        let what = "queue to disable (XDCTL.ENABLE)";
        let t = QUEUE_DISABLE_TIMEOUT;
        let stuck = ctls.filter_map(|ctl| self.wait(ctl, XDCTL_ENABLE, 0, t, what).err());
        stuck.inspect(|e| log::warn!("{}: {e}", self.name)).count() == 0
    }

    /// The control registers of every receive and transmit queue of a PF (also those
    /// split off), whose queue registers `at` gives.
    pub(crate) fn queue_ctls(&self, [rx, tx]: Queues2) -> impl Iterator<Item = usize> + Clone {
        let (n_rx, n_tx) = self.queues();
        let rx = (0..n_rx).map(move |q| rx(q).ctl);
        rx.chain((0..n_tx).map(move |q| tx(q).ctl))
    }

    /// Adds the good packet and octet counters of a PF, the same on the 82599 and the
    /// 82576 (clear on read; the octet counters include the 4-byte CRC, which
    /// [`DeviceStats`] does not count).
    pub(crate) fn add_good_counters(&mut self) {
        use super::regs::{GORC, GOTC, GPRC, GPTC};
        let r = |reg| u64::from(self.regs.read32(reg));
        // Low register first: reading the high one clears the pair.
        let pair = |[lo, hi]: [usize; 2]| r(lo) | r(hi) << 32;
        let (rp, tp, ro, to) = (r(GPRC), r(GPTC), pair(GORC), pair(GOTC));
        let s = &mut self.stats;
        (s.rx_packets, s.tx_packets) = (s.rx_packets + rp, s.tx_packets + tp);
        s.rx_bytes += ro.saturating_sub(4 * rp);
        s.tx_bytes += to.saturating_sub(4 * tp);
    }

    /// After a device could not be stopped: takes bus mastering away, and if even that
    /// fails never gives the rings and buffers back (without an IOMMU the memory would be
    /// reused while the device may still write it).
    pub(crate) fn fence_off(&mut self) {
        let name = &self.name;
        let off = self.pci.as_ref().map(PciDevice::disable_bus_master);
        if !matches!(off, Some(Ok(()))) {
            log::error!(
                "{name}: queues still running (or not known to have stopped) and bus mastering \
                 not disabled either; leaking the rings and buffers"
            );
            std::mem::forget(std::mem::take(&mut self.rx));
            std::mem::forget(std::mem::take(&mut self.tx));
        }
    }
}

/// The register blocks of receive queue `n` and of transmit queue `n`.
pub(crate) type Queues2 = [fn(usize) -> QueueRegs; 2];

/// Queue enable read-back timeout (4.6.7, 4.6.8 give none).
const QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
/// Queue disable read-back timeout (4.6.7.1.2, 4.6.8.1 give none).
const QUEUE_DISABLE_TIMEOUT: Duration = Duration::from_millis(100);
/// Master disable timeout (5.2.5.3.2 gives none; Linux `ixgbe_disable_pcie_master` and
/// `igb_disable_pcie_master` poll for up to 80 ms).
const MASTER_TIMEOUT: Duration = Duration::from_millis(100);

/// An Intel device: the part every Intel driver shares (registers, rings, receive
/// interrupts, counters, PCI device) and the driver's own state `D`
/// ([`Ixgbe`](crate::ixgbe::Ixgbe), [`Igb`](crate::igb::Igb), or a VF's
/// [`Vf`](crate::ixgbevf::Vf)). The drivers name theirs: [`IxgbeDevice`](crate::ixgbe::IxgbeDevice),
/// [`IgbDevice`](crate::igb::IgbDevice), [`IxgbevfDevice`](crate::ixgbevf::IxgbevfDevice),
/// [`IgbvfDevice`](crate::igbvf::IgbvfDevice); the [`IxyDevice`] implementation and the
/// closing on drop (which stops all DMA before the memory is freed) are this one.
pub struct IntelDevice<D, R: RegisterSpace = MmioRegion> {
    pub(crate) shell: Shell<R>,
    pub(crate) d: D,
    /// [`IntelDriver::close`], run on drop (a field: `Drop` cannot ask for the driver
    /// trait).
    close: fn(&mut Self),
}

impl<D, R: RegisterSpace> IntelDevice<D, R> {
    /// The device with the driver's state, closed with its [`IntelDriver::close`].
    pub(crate) fn new(shell: Shell<R>, d: D) -> Self
    where
        Self: IntelDriver<R>,
    {
        let close = <Self as IntelDriver<R>>::close;
        IntelDevice { shell, d, close }
    }

    /// Waits up to `o.link_timeout` for `speed()` to turn non-zero, never forever. A link
    /// still down is an error if `o.require_link`, else a warning; either names register
    /// `state` (name, offset), which shows the link.
    pub(crate) fn wait_for_link<X>(
        &self,
        o: &Options<X>,
        speed: impl Fn() -> u32,
        (reg, at): (&str, usize),
    ) -> Result<()> {
        let (name, start) = (&self.shell.name, std::time::Instant::now());
        while speed() == 0 && start.elapsed() < o.link_timeout {
            std::thread::sleep(Duration::from_millis(10));
        }
        if speed() != 0 {
            return Ok(());
        }
        let (ms, value) = (o.link_timeout.as_millis(), self.shell.regs.read32(at));
        let msg = format!(
            "link did not come up within {ms} ms ({reg} = {value:#010x}); check the cable and \
             the link partner"
        );
        if o.require_link {
            return Err(Error::device(name, msg));
        }
        log::warn!("{name}: {msg}; continuing with the link down");
        Ok(())
    }

    /// The pool receive queue `queue` takes its buffers from, if the queue exists.
    pub fn rx_pool(&self, queue: u16) -> Option<&Mempool> {
        self.shell.rx.get(usize::from(queue)).map(RxRing::pool)
    }

    /// The receive queue's interrupt, when interrupts are on (PFs only): its eventfd is
    /// what vector `queue` signals (tests against a model signal it for the device).
    pub fn queue_interrupt(&self, queue: u16) -> Option<&QueueInterrupt> {
        self.shell.irqs.get(usize::from(queue))
    }

    /// Packets queued on transmit queue `queue` whose descriptors have not been cleaned
    /// yet (0 for a queue that does not exist).
    pub fn tx_in_flight(&self, queue: u16) -> usize {
        let ring = self.shell.tx.get(usize::from(queue));
        ring.map_or(0, TxRing::in_flight)
    }

    /// Logs that the device is ready: MAC, queues, link, and `more`.
    pub(crate) fn log_ready(&self, more: &str)
    where
        Self: IntelDriver<R>,
    {
        let (s, mac) = (&self.shell, crate::format_mac(&self.mac()));
        let name = Self::KIND.name();
        let (rx, tx, speed) = (s.rx.len(), s.tx.len(), self.speed());
        log::info!(
            "{}: {name} ready, MAC {mac}, {rx} rx / {tx} tx queues, link {speed} Mbit/s{more}",
            s.name
        );
    }

    /// Initialises the device behind `regs` (its BAR0) with descriptor rings and packet
    /// buffers from `dma`, as `o` asks. `name` identifies it in messages (the PCI address
    /// on hardware).
    ///
    /// PFs: with `o.interrupt_timeout_ms` set, the interrupt registers are programmed for
    /// `o.irq_mode` as `open` does, but no vector is enabled outside the device (there is
    /// no VFIO here): each queue's eventfd fires only when the caller signals it
    /// ([`IntelDevice::queue_interrupt`]), so an idle queue sleeps for the full timeout.
    #[allow(private_bounds)] // Holds for the four drivers' types; the trait is internal.
    pub fn with_registers<X>(
        name: &str,
        regs: R,
        dma: &dyn DmaAllocator,
        o: &Options<X>,
    ) -> Result<Self>
    where
        Self: IntelDriver<R, Only = X>,
    {
        Self::check(o)?;
        let on = On {
            name,
            regs,
            dma,
            pci: None,
        };
        Self::init(on, o)
    }
}

impl<D, R: RegisterSpace> Drop for IntelDevice<D, R> {
    fn drop(&mut self) {
        (self.close)(self)
    }
}

/// What an Intel driver adds to its [`Shell`]: how it brings up its device, with
/// `Options<Self::Only>` ([`IxgbeOptions`](crate::ixgbe::IxgbeOptions) for the PFs,
/// [`IxgbevfOptions`](crate::ixgbevf::IxgbevfOptions) for the VFs), and the [`IxyDevice`]
/// methods that differ.
pub(crate) trait IntelDriver<R>: Sized {
    /// What only this kind of function has in its options.
    type Only;
    /// What the device is claimed for; its name is [`IxyDevice::driver_name`].
    const KIND: DriverKind;
    /// Where the receive and transmit queues' registers are, for a driver whose queues
    /// can be split off to threads ([`IxyDevice::split`]); `None`: it cannot (the VFs,
    /// whose PF-reset recovery needs every ring).
    const QUEUES: Option<Queues2> = None;
    /// The options a [`DeviceConfig`] asks for.
    fn options(cfg: &DeviceConfig) -> Options<Self::Only>;
    /// Refuses options the device cannot have.
    fn check(o: &Options<Self::Only>) -> Result<()>;
    /// Refuses, before the device is unbound, an id of this driver's table that it does
    /// not bring up (ixgbe: the MAC types without an init).
    fn supports(_id: &DeviceId) -> Result<()> {
        Ok(())
    }
    /// Initialises the device `on` as `o` asks.
    fn init(on: On<'_, R>, o: &Options<Self::Only>) -> Result<Self>;
    /// [`IxyDevice::mac_addr`].
    fn mac(&self) -> [u8; 6];
    /// [`IxyDevice::set_mac_addr`] with a unicast, non-zero `mac`.
    fn set_mac(&mut self, mac: [u8; 6]) -> Result<()>;
    /// [`IxyDevice::link_speed`].
    fn speed(&self) -> u32;
    /// [`IxyDevice::set_promisc`].
    fn promisc_on(&mut self, enabled: bool) -> Result<()>;
    /// Adds what the device's counters counted since the last call to the shell's
    /// [`Shell::stats`].
    fn read_counters(&mut self);
    /// Stops all DMA before the rings and buffers are freed (on drop).
    fn close(&mut self);
    /// A queue made no progress (an empty poll, a full ring): a VF looks for a PF reset.
    #[inline(always)]
    fn stalled(&mut self) {}
}

impl<D, R: RegisterSpace> IxyDevice for IntelDevice<D, R>
where
    Self: IntelDriver<R>,
{
    fn driver_name(&self) -> &str {
        Self::KIND.name()
    }

    fn pci_addr(&self) -> &str {
        &self.shell.name
    }

    fn mac_addr(&self) -> [u8; 6] {
        self.mac()
    }

    /// Refuses a multicast or zero address; otherwise the driver's way of setting it.
    fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(Error::config(format!(
                "{} cannot be a station address (multicast or zero)",
                crate::format_mac(&mac)
            )));
        }
        self.set_mac(mac)
    }

    fn link_speed(&self) -> u32 {
        self.speed()
    }

    fn set_promisc(&mut self, enabled: bool) -> Result<()> {
        self.promisc_on(enabled)?;
        self.shell.promisc = enabled;
        Ok(())
    }

    fn promisc(&self) -> bool {
        self.shell.promisc
    }

    fn num_rx_queues(&self) -> u16 {
        self.shell.rx.len() as u16
    }

    fn num_tx_queues(&self) -> u16 {
        self.shell.tx.len() as u16
    }

    /// Polls the ring; with interrupts, an idle queue sleeps (see [`crate::interrupts`]).
    #[inline]
    fn rx_batch(&mut self, queue: u16, buffer: &mut VecDeque<Packet>, num: usize) -> usize {
        let s = &mut self.shell;
        let ring = crate::queue_mut(&mut s.rx, queue, "rx");
        let got = match s.irqs.get_mut(usize::from(queue)) {
            None => ring.rx_batch(&s.regs, buffer, num),
            Some(intr) => {
                let q = usize::from(queue);
                irq::rx_batch(&s.regs, s.irq_at, &s.name, q, ring, intr, buffer, num)
            }
        };
        if got == 0 {
            self.stalled();
        }
        got
    }

    #[inline]
    fn tx_batch(&mut self, queue: u16, buffer: &mut VecDeque<Packet>) -> usize {
        let offered = buffer.len();
        let s = &mut self.shell;
        let sent = crate::queue_mut(&mut s.tx, queue, "tx").tx_batch(&s.regs, buffer);
        if sent < offered {
            self.stalled();
        }
        sent
    }

    /// The driver's counters, and the rings' own drops (no-buffer polls, unsendable
    /// packets), accumulated since open or `reset_stats`.
    fn stats(&mut self) -> DeviceStats {
        self.read_counters();
        let s = &mut self.shell;
        s.stats.rx_nombuf += s.rx.iter_mut().map(RxRing::take_nombuf).sum::<u64>();
        s.stats.tx_dropped += s.tx.iter_mut().map(TxRing::take_dropped).sum::<u64>();
        s.stats.clone()
    }

    fn reset_stats(&mut self) {
        self.stats();
        self.shell.stats = DeviceStats::default();
    }

    /// Polling devices only: a queue on its own thread has no interrupt path.
    fn split(&mut self) -> Result<Queues> {
        let Some([rx, tx]) = Self::QUEUES else {
            return Err(queues::unsupported(Self::KIND.name()));
        };
        let ctl = QueueControl {
            rx: (rx, XDCTL_ENABLE),
            tx: (tx, XDCTL_ENABLE),
        };
        let s = &mut self.shell;
        if !s.irqs.is_empty() {
            return Err(Error::config(format!(
                "{}: a device with interrupts cannot be split into queues (open it polling)",
                s.name
            )));
        }
        let counts = (s.rx.len(), s.tx.len());
        let queues = queues::split(&s.name, &s.regs, &mut s.rx, &mut s.tx, ctl)?;
        s.split = (s.split.0 + counts.0, s.split.1 + counts.1);
        Ok(queues)
    }
}

/// What a driver initialises: the device's name in messages, its registers (BAR0), DMA
/// memory, and on hardware the PCI device (for a PF: its id, and its receive vectors,
/// enabled through VFIO).
pub(crate) struct On<'a, R> {
    pub(crate) name: &'a str,
    pub(crate) regs: R,
    pub(crate) dma: &'a dyn DmaAllocator,
    pub(crate) pci: Option<&'a PciDevice>,
}

impl<D> IntelDevice<D, MmioRegion> {
    /// Takes `pci` from its kernel driver, maps BAR0 and initialises the device as `cfg`
    /// asks, with DMA memory from hugepages (a PF's receive vectors enabled through VFIO
    /// first; a device on sysfs logs a warning and polls).
    ///
    /// Refuses, before touching the device, options that cannot work (checked first, so
    /// they are reported as such on any machine), anything that is not a device of this
    /// driver or whose id it does not bring up (before anything is unbound), a device not on
    /// vfio-pci where VFIO is needed (required, no root, or another device of the process on
    /// VFIO), and a missing hugetlbfs mount. If init fails, bus mastering is taken back.
    #[allow(private_bounds)] // As for `with_registers`.
    pub fn open(pci: PciDevice, cfg: &DeviceConfig) -> Result<Self>
    where
        Self: IntelDriver<MmioRegion>,
    {
        let o = Self::options(cfg);
        Self::check(&o)?;
        pci.claim(cfg, Self::KIND, Self::supports)?;
        pci.enable_bus_master()?;
        let (name, dma) = (pci.name(), &cfg.dma());
        let on = |regs| On {
            name,
            regs,
            dma,
            pci: Some(&pci),
        };
        let dev = pci.map_bar(0).and_then(|regs| Self::init(on(regs), &o));
        let mut dev = dev.inspect_err(|_| {
            let _ = pci.disable_bus_master();
        })?;
        dev.shell.pci = Some(pci);
        Ok(dev)
    }
}

#[cfg(test)]
mod tests {
    use crate::pci::PciDevice;
    use crate::pci::testing::{fake_sysfs, is_mount_refusal, open_error, unbind_written};
    use crate::{DeviceConfig, Error, Result};

    type Open = fn(PciDevice, &DeviceConfig) -> Result<()>;

    /// Every Intel driver refuses, before anything is unbound: a device that is not a NIC,
    /// one for another driver (naming that driver), options it cannot have, and a missing
    /// hugetlbfs mount.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads a fake sysfs tree: file system access is isolated under Miri"
    )]
    fn open_refuses_wrong_devices_bad_options_and_missing_hugepages_before_unbinding() {
        let ixgbe: Open = |p, c| crate::ixgbe::IxgbeDevice::open(p, c).map(drop);
        let ixgbevf: Open = |p, c| crate::ixgbevf::IxgbevfDevice::open(p, c).map(drop);
        let igb: Open = |p, c| crate::igb::IgbDevice::open(p, c).map(drop);
        let igbvf: Open = |p, c| crate::igbvf::IgbvfDevice::open(p, c).map(drop);
        let cfg = DeviceConfig::new("0000:00:04.0");
        // The driver, its device id, a sibling's id and driver, queue counts it refuses.
        for (name, open, id, (other_id, other), (rx, tx)) in [
            ("ixgbe", ixgbe, 0x10fb, (0x10ed, "ixgbevf"), (1, 65)),
            ("ixgbevf", ixgbevf, 0x10ed, (0x10fb, "ixgbe"), (1, 9)),
            ("igb", igb, 0x10c9, (0x10fb, "ixgbe"), (17, 1)),
            ("igbvf", igbvf, 0x10ca, (0x10c9, "igb"), (2, 1)),
        ] {
            for (class, vendor, device, driver, belongs) in [
                ([2, 8, 1], 0x144d, 0xa808, "nvme", None),
                ([0, 0, 2], 0x1af4, 0x1000, "virtio-pci", Some("virtio")),
                ([0, 0, 2], 0x8086, other_id, other, Some(other)),
            ] {
                let (root, _) = fake_sysfs(
                    &format!("{name}-{driver}"),
                    class,
                    vendor,
                    device,
                    Some(driver),
                );
                let err = open_error(&root, |p| open(p, &cfg));
                match belongs {
                    None => assert!(matches!(err, Error::NotANic { .. }), "{name}: {err}"),
                    Some(o) => {
                        assert!(matches!(err, Error::Unsupported { .. }), "{name}: {err}");
                        let which = format!("it is a device for the {o} driver");
                        assert!(err.to_string().contains(&which), "{name}: {err}");
                    }
                }
                assert_eq!(unbind_written(&root, driver), "", "{name} on {driver}");
            }
            let (root, _) =
                fake_sysfs(&format!("{name}-checks"), [0, 0, 2], 0x8086, id, Some(name));
            let err = open_error(&root, |p| open(p, &cfg.clone().queues(rx, tx)));
            assert!(matches!(err, Error::InvalidConfig { .. }), "{name}: {err}");
            let n = if tx > 1 { tx } else { rx };
            assert!(err.to_string().contains(&format!("{n} ")), "{name}: {err}");
            let no_huge = cfg.clone().hugepage_dir("/nonexistent/ixy-huge");
            let err = open_error(&root, |p| open(p, &no_huge));
            assert!(is_mount_refusal(&err), "{name}: {err}");
            assert_eq!(unbind_written(&root, name), "", "{name}: never unbound");
        }
    }
}
