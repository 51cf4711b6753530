//! The part every Intel driver shares: its registers, rings, receive interrupts and PCI
//! device ([`Shell`]), the open sequence up to the driver's own init ([`open`]), and the
//! [`IxyDevice`] implementation, which forwards packets to the rings and asks the driver
//! ([`IntelDriver`]) only for what differs: MAC address, link, promiscuous mode, counters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::irq::{self, IrqRegs};
use super::queue::{self, QueueRegs};
use super::ring::{DescRing, RxRing, TxRing};
use crate::error::{Error, Result};
use crate::interrupts::QueueInterrupt;
use crate::ixgbe::IxgbeOptions;
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
    pub(crate) fn start_queue(
        &self,
        qr: &QueueRegs,
        ring: &DescRing,
        bits: [u32; 2],
        what: &str,
    ) -> Result<()> {
        queue::program_ring(&self.regs, qr, ring);
        self.enable_queue(qr, bits, what)
    }

    /// Sets `enable` in the queue control register (keeping its other bits, with `extra`
    /// or'd in) and waits until it reads back as set, which the datasheet requires before
    /// the tail may move (82599 datasheet 4.6.7.1, 4.6.8.1).
    pub(crate) fn enable_queue(
        &self,
        qr: &QueueRegs,
        [enable, extra]: [u32; 2],
        what: &str,
    ) -> Result<()> {
        self.regs.set_bits(qr.ctl, extra | enable);
        self.wait(qr.ctl, enable, enable, QUEUE_TIMEOUT, what)
    }

    /// Clears `enable` in queue control register `ctl` and waits until it reads back clear.
    pub(crate) fn stop_queue(
        &self,
        ctl: usize,
        enable: u32,
        timeout: Duration,
        what: &str,
    ) -> Result<()> {
        queue::disable_queue(&self.regs, ctl, enable);
        self.wait(ctl, enable, 0, timeout, what)
    }

    /// A receive ring of `size` descriptors with a pool of `entries` buffers of its own,
    /// for the queue whose tail register is `tail`.
    pub(crate) fn rx_ring(
        dma: &dyn DmaAllocator,
        (entries, size): (u32, usize),
        tail: usize,
    ) -> Result<RxRing> {
        let pool = Mempool::new(dma, entries, crate::ixgbe::POOL_ENTRY_SIZE)?;
        RxRing::new(dma, size, pool, tail)
    }

    /// The pool receive queue `queue` takes its buffers from, if the queue exists.
    pub(crate) fn rx_pool(&self, queue: u16) -> Option<&Mempool> {
        self.rx.get(usize::from(queue)).map(RxRing::pool)
    }

    /// The receive queue's interrupt, when interrupts are on: its eventfd is what vector
    /// `queue` signals.
    pub(crate) fn queue_interrupt(&self, queue: u16) -> Option<&QueueInterrupt> {
        self.irqs.get(usize::from(queue))
    }

    /// The rings' own drop counters since the last call: (no-buffer polls, unsendable
    /// packets).
    pub(crate) fn take_drops(&mut self) -> (u64, u64) {
        let nombuf = self.rx.iter_mut().map(RxRing::take_nombuf).sum();
        (nombuf, self.tx.iter_mut().map(TxRing::take_dropped).sum())
    }

    /// After a device could not be stopped: takes bus mastering away, and if even that
    /// fails never gives the rings and buffers back (without an IOMMU the memory would be
    /// reused while the device may still write it).
    pub(crate) fn fence_off(&mut self) {
        if !matches!(
            self.pci.as_ref().map(PciDevice::disable_bus_master),
            Some(Ok(()))
        ) {
            log::error!(
                "{}: queues still running (or not known to have stopped) and bus mastering \
                 not disabled either; leaking the rings and buffers",
                self.name
            );
            std::mem::forget(std::mem::take(&mut self.rx));
            std::mem::forget(std::mem::take(&mut self.tx));
        }
    }
}

/// Queue enable read-back timeout (4.6.7, 4.6.8 give none).
const QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// What an Intel driver adds to its [`Shell`]: the [`IxyDevice`] methods that differ.
pub(crate) trait IntelDriver {
    /// The register space.
    type Regs: RegisterSpace;
    /// [`IxyDevice::driver_name`].
    const NAME: &'static str;
    /// The shell.
    fn shell(&self) -> &Shell<Self::Regs>;
    /// The shell.
    fn shell_mut(&mut self) -> &mut Shell<Self::Regs>;
    /// [`IxyDevice::mac_addr`].
    fn mac(&self) -> [u8; 6];
    /// [`IxyDevice::set_mac_addr`] with a unicast, non-zero `mac`.
    fn set_mac(&mut self, mac: [u8; 6]) -> Result<()>;
    /// [`IxyDevice::link_speed`].
    fn speed(&self) -> u32;
    /// [`IxyDevice::set_promisc`].
    fn promisc_on(&mut self, enabled: bool) -> Result<()>;
    /// [`IxyDevice::stats`].
    fn counters(&mut self) -> DeviceStats;
    /// [`IxyDevice::reset_stats`].
    fn zero_counters(&mut self);
    /// Where the queue control registers are, for a driver whose queues can be split
    /// off to threads ([`IxyDevice::split`]); `None`: it cannot (the VFs, whose PF-reset
    /// recovery needs every ring).
    const QUEUE_CONTROL: Option<QueueControl> = None;
    /// A queue made no progress (an empty poll, a full ring): a VF looks for a PF reset.
    #[inline(always)]
    fn stalled(&mut self) {}
}

impl<D: IntelDriver> IxyDevice for D {
    fn driver_name(&self) -> &str {
        D::NAME
    }

    fn pci_addr(&self) -> &str {
        &self.shell().name
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
        self.shell_mut().promisc = enabled;
        Ok(())
    }

    fn promisc(&self) -> bool {
        self.shell().promisc
    }

    fn num_rx_queues(&self) -> u16 {
        self.shell().rx.len() as u16
    }

    fn num_tx_queues(&self) -> u16 {
        self.shell().tx.len() as u16
    }

    /// Polls the ring; with interrupts, an idle queue sleeps (see [`crate::interrupts`]).
    #[inline]
    fn rx_batch(&mut self, queue: u16, buffer: &mut VecDeque<Packet>, num: usize) -> usize {
        let s = self.shell_mut();
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
        let s = self.shell_mut();
        let sent = crate::queue_mut(&mut s.tx, queue, "tx").tx_batch(&s.regs, buffer);
        if sent < offered {
            self.stalled();
        }
        sent
    }

    fn stats(&mut self) -> DeviceStats {
        self.counters()
    }

    fn reset_stats(&mut self) {
        self.zero_counters();
    }

    /// Polling devices only: a queue on its own thread has no interrupt path.
    fn split(&mut self) -> Result<Queues> {
        let Some(ctl) = D::QUEUE_CONTROL else {
            return Err(queues::unsupported(D::NAME));
        };
        let s = self.shell_mut();
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

/// The open sequence of every Intel driver: claim the device for `kind`
/// ([`PciDevice::claim`]: refused, before anything is unbound, if it is not one or `check`
/// refuses its id), let it master the bus, map BAR0, then `init` the driver on it (with the
/// device's id). If that fails, bus mastering is taken back.
pub(crate) fn open<D: IntelDriver<Regs = MmioRegion>>(
    pci: PciDevice,
    cfg: &DeviceConfig,
    kind: DriverKind,
    check: impl FnOnce(&DeviceId) -> Result<()>,
    init: impl FnOnce(&PciDevice, &DeviceId, MmioRegion, &dyn DmaAllocator) -> Result<D>,
) -> Result<D> {
    let id = pci.claim(cfg, kind, check)?;
    pci.enable_bus_master()?;
    let dev = pci
        .map_bar(0)
        .and_then(|bar| init(&pci, &id, bar, &cfg.dma()));
    let mut dev = dev.inspect_err(|_| {
        let _ = pci.disable_bus_master();
    })?;
    dev.shell_mut().pci = Some(pci);
    Ok(dev)
}

/// How a PF driver initialises itself on its registers, with the receive queues'
/// interrupts already created.
pub(crate) type PfInit<D> =
    fn(&str, MmioRegion, &dyn DmaAllocator, &IxgbeOptions, Vec<QueueInterrupt>) -> Result<D>;

/// [`open`] for a PF: `check_id` refuses ids it does not bring up (before anything is
/// unbound); the receive vectors are enabled through VFIO before `init`.
pub(crate) fn open_pf<D: IntelDriver<Regs = MmioRegion>>(
    pci: PciDevice,
    cfg: &DeviceConfig,
    kind: DriverKind,
    mut o: IxgbeOptions,
    check_id: fn(&IxgbeOptions, &str) -> Result<()>,
    init: PfInit<D>,
) -> Result<D> {
    let probe = o.clone();
    let check = move |id: &DeviceId| {
        let mut p = probe;
        p.device_id = id.device;
        check_id(&p, &id.address.to_string())
    };
    open(pci, cfg, kind, check, |pci, id, bar, dma| {
        o.device_id = id.device;
        let irqs = irq::enable_vectors(pci, &mut o)?;
        init(pci.name(), bar, dma, &o, irqs)
    })
}
