//! virtio-net driver: legacy (`1af4:1000`) and modern (virtio 1.0, `1af4:1041`) devices.
//!
//! Follows the virtio 1.1 specification: device initialisation (3.1.1), the PCI transports
//! ([`transport`]: legacy I/O port, 4.1.4.8, or modern capabilities, 4.1.4), split
//! virtqueues ([`virtqueue`]) and the network device (5.1), including the control queue
//! for promiscuous mode and multi-queue. The rings and the packet logic exist once; only
//! register access differs between the transports.
//!
//! Which transport: a modern-only device (`1af4:1041`) always uses the modern one. A
//! transitional device (`1af4:1000` with modern capabilities) uses the modern one when it
//! is bound to vfio-pci (its DMA must go through the IOMMU, which needs
//! `VIRTIO_F_ACCESS_PLATFORM`, a modern-only feature) or when `IXY_VIRTIO_MODERN=1`;
//! otherwise the legacy one, as before.
//!
//! Packets carry the `virtio_net_hdr` (5.1.6) in their headroom: 10 bytes on legacy
//! devices, 12 with `VIRTIO_F_VERSION_1`. On receive the device writes it just before the
//! packet data; on transmit it is written into the headroom in front of the data, so each
//! packet is one descriptor. No offloads are negotiated (QEMU offers none with hub/socket
//! backends).
//!
//! The device is not trusted on the packet path: a used descriptor id never handed out, a
//! length beyond the buffer, a used index that jumps or goes backwards are counted
//! ([`VirtioDevice::device_errors`]), logged once, and their entries skipped; nothing
//! outside the driver's rings and buffers is read or written. With the `model` feature the
//! whole driver runs against a modelled device (`ixy::model::virtio`).
//!
//! Interrupts (with [`DeviceConfig::interrupt_timeout_ms`] set and the device on vfio-pci):
//! receive queue `i` gets MSI-X vector `i`; an idle `rx_batch` re-enables the queue's
//! interrupt (clears `VIRTQ_AVAIL_F_NO_INTERRUPT`) only for as long as it sleeps.
//!
//! Statistics are counted in software: virtio has no hardware counters.

pub mod transport;
pub mod virtqueue;

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::interrupts::{IrqAction, QueueInterrupt};
use crate::memory::mempool::DEFAULT_ENTRY_SIZE;
use crate::memory::{DmaAllocator, DmaMemory, Mempool, Packet};
use crate::pci::{DriverKind, IrqMode, PciDevice};
use crate::registers::Deadline;
use crate::{DeviceConfig, DeviceStats, IxyDevice};
use transport::{Transport, VIRTIO_MSI_NO_VECTOR, status};
use virtqueue::{Desc, Faults, VIRTQ_DESC_F_WRITE, Virtqueue};

/// Feature bits (virtio 1.1, 5.1.3 and 6).
pub mod feature {
    /// Device has a MAC address in its config.
    pub const MAC: u64 = 1 << 5;
    /// Link status in the device config.
    pub const STATUS: u64 = 1 << 16;
    /// Control virtqueue.
    pub const CTRL_VQ: u64 = 1 << 17;
    /// Receive filtering through the control queue.
    pub const CTRL_RX: u64 = 1 << 18;
    /// Multiple queue pairs.
    pub const MQ: u64 = 1 << 22;
    /// MAC address set through the control queue.
    pub const CTRL_MAC_ADDR: u64 = 1 << 23;
    /// Legacy only: any descriptor layout (implied by VERSION_1).
    pub const ANY_LAYOUT: u64 = 1 << 27;
    /// virtio 1.0 compliance (modern interface).
    pub const VERSION_1: u64 = 1 << 32;
    /// The device's DMA goes through the platform's IOMMU (formerly IOMMU_PLATFORM).
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
}

/// Network device config layout (virtio 1.1, 5.1.4).
mod config {
    pub const MAC: usize = 0;
    pub const STATUS: usize = 6;
    pub const MAX_VIRTQUEUE_PAIRS: usize = 8;
    /// `status` bit: link is up.
    pub const S_LINK_UP: u16 = 1;
}

/// Control queue commands (virtio 1.1, 5.1.6.5): class, command, the feature the class
/// needs (5.1.6.5.1 and following) and that feature's name.
mod ctrl {
    use super::feature;
    pub type Command = (u8, u8, u64, &'static str);
    pub const RX_PROMISC: Command = (0, 0, feature::CTRL_RX, "VIRTIO_NET_F_CTRL_RX");
    pub const MAC_ADDR_SET: Command = (1, 1, feature::CTRL_MAC_ADDR, "VIRTIO_NET_F_CTRL_MAC_ADDR");
    pub const MQ_VQ_PAIRS_SET: Command = (4, 0, feature::MQ, "VIRTIO_NET_F_MQ");
    /// Ack byte of a command the device carried out.
    pub const OK: u8 = 0;
}

/// `struct virtio_net_hdr` without `num_buffers` (legacy, no MRG_RXBUF): 5.1.6.
const NET_HDR_LEN_LEGACY: usize = 10;
/// With VERSION_1 the header always includes `num_buffers` (5.1.6).
const NET_HDR_LEN_MODERN: usize = 12;

/// Buffers per receive queue's pool: enough for a full ring, packets in flight on
/// another port's transmit ring and the application's batches.
const RX_POOL_ENTRIES: u32 = 2048;

/// How long the device gets to answer a control command, or to finish a reset (modern
/// devices: 4.1.4.3.2, the driver waits for status 0).
const DEVICE_TIMEOUT: Duration = Duration::from_secs(1);

/// Chooses the features to accept from those `offered`.
///
/// `modern`: the modern transport is in use (VERSION_1 required). `iommu`: the device is
/// driven through VFIO, so its DMA must be translated by the IOMMU (ACCESS_PLATFORM
/// required; without it QEMU's virtio device would use our I/O virtual addresses as
/// physical addresses). Legacy framing (5.1.6.6): without ANY_LAYOUT the header must be
/// a descriptor of its own, but this driver puts header and frame in one descriptor.
fn negotiate_features(offered: u64, modern: bool, iommu: bool) -> std::result::Result<u64, String> {
    const MODERN_HINT: &str =
        "use the modern interface: IXY_VIRTIO_MODERN=1 or QEMU disable-legacy=on";
    const IOMMU_HINT: &str =
        "its DMA would bypass the IOMMU; QEMU: add iommu_platform=on to the virtio-net-pci device";
    let lacks = |name: &str, why: &str| Err(format!("the device does not offer {name} ({why})"));
    if iommu && !modern {
        return Err(format!(
            "a legacy virtio interface cannot do DMA through the IOMMU; {MODERN_HINT},iommu_platform=on"
        ));
    }
    if !modern && offered & feature::ANY_LAYOUT == 0 {
        return lacks("VIRTIO_F_ANY_LAYOUT", MODERN_HINT);
    }
    if modern && offered & feature::VERSION_1 == 0 {
        return lacks("VIRTIO_F_VERSION_1", "required on the modern interface");
    }
    if iommu && offered & feature::ACCESS_PLATFORM == 0 {
        return lacks("VIRTIO_F_ACCESS_PLATFORM", IOMMU_HINT);
    }
    let mut wanted = feature::MAC | feature::STATUS | feature::CTRL_VQ;
    // CTRL_RX, MQ and CTRL_MAC_ADDR depend on CTRL_VQ (5.1.3.1): never accept them alone.
    if offered & feature::CTRL_VQ != 0 {
        wanted |= feature::CTRL_RX | feature::MQ | feature::CTRL_MAC_ADDR;
    }
    // The interface's own bits, [legacy, modern].
    let interface = [
        feature::ANY_LAYOUT,
        feature::VERSION_1 | feature::ACCESS_PLATFORM,
    ];
    Ok(offered & (wanted | interface[usize::from(modern)]))
}

/// The queue pairs a configuration asks for: virtio-net queues come in rx/tx pairs.
fn queue_pairs(cfg: &DeviceConfig) -> Result<u16> {
    let (rx, tx) = (cfg.rx_queues, cfg.tx_queues);
    if rx == 0 || rx != tx {
        return Err(Error::config(format!(
            "virtio-net uses queues in rx/tx pairs: ask for equal rx and tx queue counts of at least 1 (got {rx} rx, {tx} tx)"
        )));
    }
    Ok(rx)
}

/// Checks `pairs` against the device's `max_virtqueue_pairs` (1 without VIRTIO_NET_F_MQ)
/// and returns the index of the control queue: 2N (N = `max_virtqueue_pairs`; without MQ
/// that is 2, 5.1.2).
///
/// The value comes from the device and is checked: 5.1.4 allows 1 to 0x8000, and with
/// 0x8000 the control queue index (0x10000) would not fit the 16-bit queue select.
fn queue_layout(name: &str, pairs: u16, max: u16) -> Result<u16> {
    if !(1..0x8000).contains(&max) {
        let detail = format!(
            "the device reports max_virtqueue_pairs = {max}; this driver handles 1 to 32767 (the control queue is virtqueue 2N, a 16-bit index)"
        );
        return Err(Error::device(name, detail));
    }
    if pairs > max {
        return Err(Error::config(format!(
            "{pairs} queue pairs requested but {name} offers {max} (QEMU: add mq=on,vectors=2N+2 and -netdev ...,queues=N)"
        )));
    }
    Ok(2 * max)
}

/// Receive queue `i`: virtqueue 2i (5.1.2).
struct RxQueue {
    vq: Virtqueue<Packet>,
    pool: Mempool,
    /// Present when the queue has an interrupt vector.
    irq: Option<QueueInterrupt>,
}

/// Bytes of the control queue's command buffer: the header (class, command) at 0, the
/// data at 2 (at most 6 bytes, a MAC), the ack byte behind the data.
const CTRL_BUF_LEN: usize = 16;

/// The control queue (5.1.6.5), one command at a time ([`VirtioDevice::ctrl_command`]).
struct CtrlQueue {
    index: u16,
    vq: Virtqueue<()>,
    buf: DmaMemory,
    /// A command timed out or its completion was lost: the device may still own the
    /// buffer (and write the ack byte at any time), so it is never reused.
    poisoned: bool,
}

/// Publishes what was added to `vq` and rings its doorbell if the device wants it.
#[inline(always)]
fn publish(transport: &Transport, vq: &mut Virtqueue<impl Sized>, index: u16) {
    if vq.publish() {
        transport.notify(index);
    }
}

/// A virtio-net device (legacy or modern interface).
pub struct VirtioDevice {
    name: String,
    transport: Transport,
    features: u64,
    /// Length of the net header in front of every packet.
    hdr_len: usize,
    rx: Vec<RxQueue>,
    /// Transmit queue `i`: virtqueue 2i + 1 (5.1.2).
    tx: Vec<Virtqueue<Packet>>,
    ctrl: Option<CtrlQueue>,
    mac: [u8; 6],
    promisc: bool,
    stats: DeviceStats,
    /// Impossible used-ring entries the device produced (see [`VirtioDevice::device_errors`]).
    device_errors: u64,
    /// The PCI function (absent for a modelled device).
    pci: Option<PciDevice>,
}

impl VirtioDevice {
    /// Takes `pci` from the kernel and initialises it as configured.
    ///
    /// Refuses, before touching the device, anything that is not a virtio-net device and
    /// configurations that cannot work (unequal queue counts, a device not on vfio-pci
    /// where VFIO is needed: required, no root, or another device of the process on VFIO;
    /// no hugetlbfs mount).
    pub fn open(pci: PciDevice, cfg: &DeviceConfig) -> Result<Self> {
        pci.claim(cfg, DriverKind::Virtio, |_| queue_pairs(cfg).map(drop))?;
        // The first 256 bytes of config space: the capability list lives there.
        let mut cfg_space = vec![0u8; 256];
        pci.read_config(0, &mut cfg_space)?;
        let prefer_modern =
            pci.is_vfio() || std::env::var("IXY_VIRTIO_MODERN").is_ok_and(|v| v == "1");
        let transport = Transport::open(pci.name(), &cfg_space, prefer_modern, &mut |bar, io| {
            Ok(match io {
                true => Rc::new(pci.io_bar(bar)?),
                false => Rc::new(pci.map_bar(bar)?),
            })
        })?;
        pci.enable_bus_master()?;
        Self::with_transport(transport, &cfg.dma(), cfg, Some(pci))
    }

    /// Initialises the device behind `transport` with rings and buffers from `dma`; the
    /// device is reset on error. Crate-private: the transport reaches the device's queue
    /// registers (see [`transport`]).
    pub(crate) fn with_transport(
        transport: Transport,
        dma: &dyn DmaAllocator,
        cfg: &DeviceConfig,
        pci: Option<PciDevice>,
    ) -> Result<Self> {
        let mut dev = VirtioDevice {
            name: transport.name.clone(),
            hdr_len: [NET_HDR_LEN_LEGACY, NET_HDR_LEN_MODERN][usize::from(transport.modern)],
            transport,
            features: 0,
            rx: Vec::new(),
            tx: Vec::new(),
            ctrl: None,
            mac: [0; 6],
            promisc: false,
            stats: DeviceStats::default(),
            device_errors: 0,
            pci,
        };
        // On error `dev` is dropped, which resets the device: never left half-initialised.
        // Before that, FAILED goes into the device status, as 3.1.1 asks (a device that
        // cannot take it fails its reset too, which the drop reports).
        if let Err(e) = dev.init(dma, cfg) {
            let s = dev.transport.status().unwrap_or(0);
            let _ = dev.transport.set_status(s | status::FAILED);
            return Err(e);
        }
        Ok(dev)
    }

    /// True if the modern (virtio 1.0) interface is in use.
    pub fn is_modern(&self) -> bool {
        self.transport.modern
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Impossible things the device did on the packet path so far — a used descriptor id
    /// never handed out, a length beyond the buffer, a used index that jumped or went
    /// backwards. Each is counted here (the first one is also logged) and its entry
    /// skipped; such packets are dropped.
    pub fn device_errors(&self) -> u64 {
        self.device_errors
    }

    fn is_vfio(&self) -> bool {
        self.pci.as_ref().is_some_and(PciDevice::is_vfio)
    }

    fn has(&self, f: u64) -> bool {
        self.features & f != 0
    }

    /// Resets the device and waits until it reports status 0.
    fn reset(&self) -> Result<()> {
        self.transport.set_status(0)?;
        let mut deadline = Deadline::new(DEVICE_TIMEOUT);
        while self.transport.status()? != 0 {
            if deadline.passed() {
                return Err(Error::device(&self.name, "status did not clear on reset"));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    }

    /// Device initialisation, virtio 1.1 section 3.1.1 (legacy: without FEATURES_OK).
    fn init(&mut self, dma: &dyn DmaAllocator, cfg: &DeviceConfig) -> Result<()> {
        // 1. Reset the device. 2.-3. We noticed the device, and we know how to drive it.
        self.reset()?;
        let (t, name) = (&self.transport, &self.name);
        t.set_status(status::ACKNOWLEDGE)?;
        let mut s = status::ACKNOWLEDGE | status::DRIVER;
        t.set_status(s)?;
        // 4. Accept only the features this driver uses.
        let offered = t.device_features()?;
        let features = negotiate_features(offered, t.modern, self.is_vfio())
            .map_err(|e| Error::device(name, e))?;
        t.set_driver_features(features)?;
        log::debug!("{name}: features offered {offered:#x}, using {features:#x}");
        // 5.-6. Modern devices confirm the feature set.
        if t.modern {
            s |= status::FEATURES_OK;
            t.set_status(s)?;
            if t.status()? & status::FEATURES_OK == 0 {
                let detail = format!("device refused features {features:#x} (FEATURES_OK not set)");
                return Err(Error::device(name, detail));
            }
        }
        self.features = features;
        // 7. Set up the virtqueues.
        let pairs = self.setup_queues(dma, cfg)?;
        // 8. The driver is ready.
        self.transport.set_status(s | status::DRIVER_OK)?;
        self.start(pairs)
    }

    /// Creates the queue pairs the configuration asks for (receive queue `i` is virtqueue
    /// 2i, transmit queue `i` 2i+1, 5.1.2) and the control queue; returns the number of
    /// pairs. With interrupts, receive queue `i` is on MSI-X vector `i`; the others raise
    /// no interrupt.
    fn setup_queues(&mut self, dma: &dyn DmaAllocator, cfg: &DeviceConfig) -> Result<u16> {
        let pairs = queue_pairs(cfg)?;
        let max_pairs = match self.has(feature::MQ) {
            true => self.transport.config_read(config::MAX_VIRTQUEUE_PAIRS, 2)?,
            false => 1,
        };
        let ctrl_index = queue_layout(&self.name, pairs, max_pairs)?;
        let mut interrupts = self.setup_interrupts(cfg, pairs)?.into_iter();
        let msix = interrupts.len() > 0;
        let no_vector = msix.then_some(VIRTIO_MSI_NO_VECTOR);
        for i in 0..pairs {
            let vq = self.transport.setup_queue(dma, 2 * i, msix.then_some(i))?;
            let pool = Mempool::new(dma, RX_POOL_ENTRIES, DEFAULT_ENTRY_SIZE)?;
            let irq = interrupts.next();
            self.rx.push(RxQueue { vq, pool, irq });
            let tx = self.transport.setup_queue(dma, 2 * i + 1, no_vector)?;
            self.tx.push(tx);
        }
        if self.has(feature::CTRL_VQ) {
            let vq = self.transport.setup_queue(dma, ctrl_index, no_vector)?;
            let buf = dma.allocate(CTRL_BUF_LEN)?;
            let buf = buf.checked(CTRL_BUF_LEN, 8, "control command buffer")?;
            self.ctrl = Some(CtrlQueue {
                index: ctrl_index,
                vq,
                buf,
                poisoned: false,
            });
        }
        Ok(pairs)
    }

    /// After DRIVER_OK: reads the MAC, sets the queue pairs, posts receive buffers and
    /// turns promiscuous mode on.
    fn start(&mut self, pairs: u16) -> Result<()> {
        // MAC address from config space (5.1.4), if the device has one.
        if self.has(feature::MAC) {
            self.transport.config_bytes(config::MAC, &mut self.mac)?;
        }
        if pairs > 1 {
            self.ctrl_command(ctrl::MQ_VQ_PAIRS_SET, &pairs.to_le_bytes())?;
        }
        for q in 0..self.rx.len() {
            self.refill_rx(q, 0);
        }
        // Like ixy: promiscuous by default, so a forwarder works out of the box. Best
        // effort: a device without receive filtering control (or one that refuses) works
        // with its default filter; a control queue that stopped answering is an error.
        match self.set_promisc(true) {
            Err(e) if self.ctrl.as_ref().is_some_and(|c| c.poisoned) => return Err(e),
            Err(e) => log::warn!("{}: not promiscuous: {e}", self.name),
            Ok(()) => {}
        }
        let interface = if self.is_modern() { "modern" } else { "legacy" };
        let vfio = if self.is_vfio() { ", VFIO" } else { "" };
        let irq = self.rx[0].irq.as_ref().map_or("", |_| ", MSI-X interrupts");
        let (name, mac) = (&self.name, crate::format_mac(&self.mac));
        log::info!(
            "{name}: virtio-net ready ({interface} interface{vfio}), MAC {mac}, {pairs} queue pair(s){irq}"
        );
        Ok(())
    }

    /// Creates one eventfd per receive queue and enables MSI-X with them through VFIO.
    /// Returns no interrupts when polling is configured or impossible (logged).
    fn setup_interrupts(&mut self, cfg: &DeviceConfig, pairs: u16) -> Result<Vec<QueueInterrupt>> {
        if cfg.interrupt_timeout_ms == 0 {
            return Ok(Vec::new());
        }
        let name = &self.name;
        let Some(pci) = self.pci.as_ref().filter(|p| p.is_vfio()) else {
            log::warn!("{name}: interrupts need the device bound to vfio-pci; polling instead");
            return Ok(Vec::new());
        };
        let interrupts = (0..pairs)
            .map(|_| QueueInterrupt::new(cfg.interrupt_timeout_ms))
            .collect::<Result<Vec<_>>>()?;
        let fds: Vec<_> = interrupts.iter().map(QueueInterrupt::eventfd).collect();
        if let Err(e) = pci.enable_irqs(&fds, &[IrqMode::MsiX]) {
            log::warn!("{name}: cannot enable MSI-X ({e}); polling instead");
            return Ok(Vec::new());
        }
        self.transport.msix_enabled()?;
        Ok(interrupts)
    }

    /// Counts device errors on the packet path; logs the first one.
    #[cold]
    #[inline(never)]
    fn device_error(&mut self, queue: u16, faults: Faults) {
        if self.device_errors == 0 {
            let (name, last) = (&self.name, faults.last);
            log::error!("{name}: virtqueue {queue}: {last:?} (further errors are only counted)");
        }
        self.device_errors += faults.count;
    }

    /// Gives every free receive descriptor of queue `q` a fresh buffer and tells the
    /// device about them and the `posted` ones receiving refilled in place.
    #[inline(always)]
    fn refill_rx(&mut self, q: usize, posted: usize) {
        let queue = &mut self.rx[q];
        let added = posted + queue.vq.refill(&queue.pool, self.hdr_len);
        if added > 0 {
            publish(&self.transport, &mut queue.vq, 2 * q as u16);
        }
    }

    /// Takes up to `num_packets` received packets from queue `q` into `buffer`, counts
    /// them; returns how many, and how many buffers were refilled in their place.
    #[inline(always)]
    fn poll_rx(&mut self, q: usize, buffer: &mut VecDeque<Packet>, num: usize) -> (usize, usize) {
        let RxQueue { vq, pool, .. } = &mut self.rx[q];
        let mut faults = Faults::NONE;
        let (n, bytes, refilled) = match self.hdr_len {
            NET_HDR_LEN_MODERN => vq.receive::<NET_HDR_LEN_MODERN>(pool, buffer, num, &mut faults),
            _ => vq.receive::<NET_HDR_LEN_LEGACY>(pool, buffer, num, &mut faults),
        };
        self.stats.rx_packets += n as u64;
        self.stats.rx_bytes += bytes;
        if faults.count > 0 {
            self.device_error(2 * q as u16, faults);
        }
        (n, refilled)
    }

    /// Arms queue `q`'s interrupt and sleeps until an armed queue of this thread
    /// interrupts or the timeout passes. The queue stays armed until it receives again.
    /// Only for a queue with an interrupt ([`IrqAction::Sleep`]).
    #[cold]
    fn sleep_rx(&mut self, q: usize) {
        let queue = &mut self.rx[q];
        queue.vq.enable_interrupts();
        // The flag must be visible before we look at the ring one last time: a buffer used
        // in between either shows up here or raises the interrupt (2.6.7.1).
        fence(Ordering::SeqCst);
        if queue.vq.pending_used() == 0
            && let Some(Err(e)) = queue.irq.as_ref().map(QueueInterrupt::wait)
        {
            log::error!("{}: waiting for an interrupt on queue {q}: {e}", self.name);
        }
    }

    /// Sends a control command (5.1.6.5: header, data and ack byte in a chain of three
    /// descriptors) and waits up to [`DEVICE_TIMEOUT`] for the device's ack; an error if the
    /// device does not offer the command's feature. A command that does not complete
    /// (timeout, or the device reports something impossible) poisons the queue: the
    /// device may still own the buffer (and write the ack byte at any time), so it is
    /// never written again.
    fn ctrl_command<const N: usize>(&mut self, c: ctrl::Command, data: &[u8; N]) -> Result<()> {
        const { assert!(N + 3 <= CTRL_BUF_LEN) };
        let (class, cmd, needs, feature) = c;
        let (name, what) = (&self.name, format!("control command {class}/{cmd}"));
        let fail = |detail: String| Error::device(name, format!("{what}: {detail}"));
        let Some(c) = self.ctrl.as_mut().filter(|_| self.features & needs != 0) else {
            return Err(fail(format!("the device does not offer {feature}")));
        };
        if c.poisoned {
            return Err(fail("the control queue is unusable: an earlier command was never answered, so the device may still write its buffer; close and reopen the device".into()));
        }
        // Header, data and an ack byte the device is to overwrite.
        let bytes = [&[class, cmd], &data[..], &[0xff]].concat();
        let (p, ack) = (c.buf.virt(), bytes.len() - 1);
        // SAFETY: the buffer holds CTRL_BUF_LEN bytes (checked when it was allocated) and the
        // command N + 3 (asserted at compile time above), so ack < CTRL_BUF_LEN. No command is
        // outstanding (every wait either saw the completion or poisoned the queue), so the
        // device does not access the buffer; a raw copy, no reference into DMA memory.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        let parts = [(0, 2, 0), (2, data.len(), 0), (ack, 1, VIRTQ_DESC_F_WRITE)];
        let chain = parts.map(|(offset, len, flags)| Desc {
            addr: c.buf.bus_addr(offset),
            len: len as u32,
            flags,
        });
        if c.vq.add_chain(&chain, ()).is_none() {
            return Err(fail("the control queue is too small for a command".into()));
        }
        publish(&self.transport, &mut c.vq, c.index);
        let mut deadline = Deadline::new(DEVICE_TIMEOUT);
        let problem = loop {
            match c.vq.pop_used() {
                // SAFETY: ack < CTRL_BUF_LEN, within the buffer; the device completed the
                // command.
                Ok(Some(_)) => match unsafe { p.add(ack).read_volatile() } {
                    ctrl::OK => return Ok(()),
                    ack => return Err(fail(format!("rejected by the device (ack {ack})"))),
                },
                Ok(None) if deadline.passed() => {
                    break format!("no answer to a control command within {DEVICE_TIMEOUT:?}");
                }
                Ok(None) => std::thread::sleep(Duration::from_micros(50)),
                Err(e) => break format!("{e:?}"),
            }
        };
        c.poisoned = true;
        Err(fail(problem))
    }
}

impl IxyDevice for VirtioDevice {
    fn driver_name(&self) -> &str {
        "virtio"
    }

    fn pci_addr(&self) -> &str {
        &self.name
    }

    fn mac_addr(&self) -> [u8; 6] {
        self.mac
    }

    /// Through the control queue, or on a legacy device without VIRTIO_NET_F_CTRL_MAC_ADDR
    /// by writing the config (5.1.4.2).
    fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()> {
        if !self.has(feature::CTRL_MAC_ADDR) && self.has(feature::MAC) && !self.is_modern() {
            self.transport.config_write(config::MAC, &mac)?;
        } else {
            self.ctrl_command(ctrl::MAC_ADDR_SET, &mac)?;
        }
        self.mac = mac;
        Ok(())
    }

    /// virtio reports link state but no speed; an up link is reported as 1000 Mbit/s.
    /// Without VIRTIO_NET_F_STATUS the link is up (5.1.4).
    fn link_speed(&self) -> u32 {
        let status = || self.transport.config_read(config::STATUS, 2);
        let up = !self.has(feature::STATUS) || status().is_ok_and(|s| s & config::S_LINK_UP != 0);
        1000 * u32::from(up)
    }

    fn set_promisc(&mut self, enabled: bool) -> Result<()> {
        self.ctrl_command(ctrl::RX_PROMISC, &[enabled as u8])?;
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

    fn rx_batch(
        &mut self,
        queue_id: u16,
        buffer: &mut VecDeque<Packet>,
        num_packets: usize,
    ) -> usize {
        crate::queue_mut(&mut self.rx, queue_id, "rx");
        let q = queue_id as usize;
        let (mut received, mut posted) = self.poll_rx(q, buffer, num_packets);
        // Interrupt mode: after enough empty polls in a row, sleep until the device uses
        // a buffer (or the timeout passes) and poll once more. No system call while busy.
        let mut action = self.rx[q].irq.as_mut().map(|i| i.after_poll(received));
        if action == Some(IrqAction::Sleep) {
            self.sleep_rx(q);
            let (more, refilled) = self.poll_rx(q, buffer, num_packets);
            (received, posted) = (more, posted + refilled);
            action = self.rx[q].irq.as_mut().map(|i| i.after_poll(received));
        }
        if action == Some(IrqAction::Disarm) {
            self.rx[q].vq.disable_interrupts();
        }
        self.refill_rx(q, posted);
        received
    }

    /// A packet with less headroom than the net header (10 or 12 bytes) cannot be sent:
    /// it is taken, dropped and counted in [`DeviceStats::tx_dropped`] (and in the return
    /// value), so it cannot block the queue.
    fn tx_batch(&mut self, queue_id: u16, buffer: &mut VecDeque<Packet>) -> usize {
        let vq = crate::queue_mut(&mut self.tx, queue_id, "tx");
        let mut faults = Faults::NONE;
        let (sent, dropped, bytes) = match self.hdr_len {
            NET_HDR_LEN_MODERN => vq.transmit::<NET_HDR_LEN_MODERN>(buffer, &mut faults),
            _ => vq.transmit::<NET_HDR_LEN_LEGACY>(buffer, &mut faults),
        };
        let index = 2 * queue_id + 1;
        if sent > 0 {
            publish(&self.transport, vq, index);
        }
        self.stats.tx_packets += sent as u64;
        self.stats.tx_bytes += bytes;
        self.stats.tx_dropped += dropped as u64;
        if faults.count > 0 {
            self.device_error(index, faults);
        }
        sent + dropped
    }

    fn stats(&mut self) -> DeviceStats {
        self.stats.clone()
    }

    fn reset_stats(&mut self) {
        self.stats = DeviceStats::default();
    }
}

impl Drop for VirtioDevice {
    fn drop(&mut self) {
        // Reset stops all DMA before the rings and buffers are freed (3.3.1).
        let Err(e) = self.reset() else {
            return;
        };
        let name = &self.name;
        log::error!("{name}: reset on close failed: {e}");
        let _ = self.transport.set_status(status::FAILED);
        // The device may still be doing DMA: take bus mastering away; if even that fails,
        // never give its memory back (without an IOMMU the hugepages would be reused while
        // the device still writes them).
        if let Some(Err(e)) = self.pci.as_ref().map(PciDevice::disable_bus_master) {
            log::error!("{name}: cannot disable bus mastering either ({e}); leaking its memory");
            std::mem::forget(std::mem::take(&mut self.rx));
            std::mem::forget(std::mem::take(&mut self.tx));
            std::mem::forget(self.ctrl.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::testing::{fake_sysfs, unbind_written};
    use crate::pci::{VENDOR_INTEL, VENDOR_VIRTIO};

    fn open_fake(root: &std::path::Path) -> PciDevice {
        PciDevice::open_at("0000:00:04.0".parse().unwrap(), root).unwrap()
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads a fake sysfs tree: file system access is isolated under Miri"
    )]
    fn open_refuses_a_device_that_is_not_virtio_net_before_unbinding_it() {
        let (root, _) = fake_sysfs(
            "virtio-on-ixgbe",
            [0, 0, 2],
            VENDOR_INTEL,
            0x10fb,
            Some("ixgbe"),
        );
        let cfg = DeviceConfig::new("0000:00:04.0");
        let err = VirtioDevice::open(open_fake(&root), &cfg).err().unwrap();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("0000:00:04.0 (8086:10fb) is not supported"),
            "{err}"
        );
        assert!(
            err.to_string().contains(
                "the virtio driver does not drive it; it is a device for the ixgbe driver"
            ),
            "{err}"
        );
        assert_eq!(
            unbind_written(&root, "ixgbe"),
            "",
            "the kernel driver kept it"
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads a fake sysfs tree: file system access is isolated under Miri"
    )]
    fn open_checks_the_configuration_and_hugepages_before_unbinding() {
        let (root, _) = fake_sysfs(
            "virtio-checks",
            [0, 0, 2],
            VENDOR_VIRTIO,
            crate::pci::DEVICE_VIRTIO_NET_LEGACY,
            Some("virtio-pci"),
        );
        let cfg = DeviceConfig::new("0000:00:04.0").queues(2, 1);
        let err = VirtioDevice::open(open_fake(&root), &cfg).err().unwrap();
        assert!(err.to_string().contains("equal rx and tx"), "{err}");
        let cfg = DeviceConfig::new("0000:00:04.0").hugepage_dir("/nonexistent/ixy-huge");
        let err = VirtioDevice::open(open_fake(&root), &cfg).err().unwrap();
        assert!(crate::pci::testing::is_mount_refusal(&err), "{err}");
        assert_eq!(unbind_written(&root, "virtio-pci"), "", "never unbound");
    }

    #[test]
    fn max_virtqueue_pairs_from_the_device_is_checked() {
        // Without MQ (one pair): control queue 2.
        assert_eq!(queue_layout("d", 1, 1).unwrap(), 2);
        assert!(queue_layout("d", 2, 1).is_err());
        // 2 * 0x8000 does not fit a 16-bit queue index; 0 pairs is nonsense.
        for bad in [0x8000, 0xffff, 0] {
            let msg = queue_layout("d", 1, bad).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("max_virtqueue_pairs = {bad}")),
                "{msg}"
            );
        }
        assert_eq!(queue_layout("d", 1, 0x7fff).unwrap(), 0xfffe);
        assert_eq!(queue_layout("d", 4, 4).unwrap(), 8);
        let msg = queue_layout("d", 5, 4).unwrap_err().to_string();
        assert!(msg.contains("offers 4"), "{msg}");
    }

    /// What QEMU 10 offers for a modern virtio-net with iommu_platform=on on a hub netdev
    /// (no offloads): MAC, STATUS, CTRL_VQ, CTRL_RX, CTRL_VLAN, CTRL_RX_EXTRA, GUEST_ANNOUNCE,
    /// MQ, CTRL_MAC_ADDR, RING_INDIRECT_DESC, RING_EVENT_IDX, VERSION_1, ACCESS_PLATFORM.
    const QEMU_MODERN_IOMMU: u64 = (1 << 5)
        | (1 << 16)
        | (0xf << 17)
        | (1 << 21)
        | (1 << 22)
        | (1 << 23)
        | (1 << 28)
        | (1 << 29)
        | (3 << 32);

    #[test]
    fn modern_negotiation_accepts_version_1_and_access_platform() {
        let f = negotiate_features(QEMU_MODERN_IOMMU, true, true).unwrap();
        assert_eq!(
            f,
            feature::MAC
                | feature::STATUS
                | feature::CTRL_VQ
                | feature::CTRL_RX
                | feature::MQ
                | feature::CTRL_MAC_ADDR
                | feature::VERSION_1
                | feature::ACCESS_PLATFORM
        );
        // Ring features we do not implement are never accepted.
        assert_eq!(f & (1 << 28 | 1 << 29), 0);
        // ANY_LAYOUT is a legacy bit.
        assert_eq!(f & feature::ANY_LAYOUT, 0);
    }

    #[test]
    fn modern_without_version_1_is_refused() {
        let e =
            negotiate_features(QEMU_MODERN_IOMMU & !feature::VERSION_1, true, false).unwrap_err();
        assert!(e.contains("VERSION_1"), "{e}");
    }

    #[test]
    fn vfio_needs_access_platform() {
        let offered = QEMU_MODERN_IOMMU & !feature::ACCESS_PLATFORM;
        let e = negotiate_features(offered, true, true).unwrap_err();
        assert!(e.contains("iommu_platform=on"), "{e}");
        // Without VFIO the same device is fine.
        assert_eq!(
            negotiate_features(offered, true, false).unwrap() & feature::ACCESS_PLATFORM,
            0
        );
        // A legacy interface cannot be used through the IOMMU at all.
        assert!(
            negotiate_features(0x0fff_ffff, false, true)
                .unwrap_err()
                .contains("legacy")
        );
    }

    #[test]
    fn control_features_are_never_accepted_without_the_control_queue() {
        // 5.1.3.1: CTRL_RX, MQ and CTRL_MAC_ADDR require CTRL_VQ.
        let offered = QEMU_MODERN_IOMMU & !feature::CTRL_VQ;
        let f = negotiate_features(offered, true, false).unwrap();
        assert_eq!(
            f,
            feature::MAC | feature::STATUS | feature::VERSION_1 | feature::ACCESS_PLATFORM
        );
        let f = negotiate_features(0x0fff_ffff & !feature::CTRL_VQ, false, false).unwrap();
        assert_eq!(f, feature::MAC | feature::STATUS | feature::ANY_LAYOUT);
    }

    #[test]
    fn a_legacy_device_without_any_layout_is_refused() {
        // 5.1.6.6: without ANY_LAYOUT the header needs a descriptor of its own.
        let e = negotiate_features(0x0fff_ffff & !feature::ANY_LAYOUT, false, false).unwrap_err();
        assert!(e.contains("does not offer VIRTIO_F_ANY_LAYOUT"), "{e}");
    }

    #[test]
    fn legacy_negotiation_keeps_32_bits() {
        let f = negotiate_features(0xffff_ffff | feature::VERSION_1, false, false).unwrap();
        assert_eq!(f >> 32, 0);
        assert_ne!(f & feature::ANY_LAYOUT, 0);
    }
}
