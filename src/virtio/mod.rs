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
//! packet data; on transmit it is prepended into the headroom, so each packet is one
//! descriptor. No offloads are negotiated (QEMU offers none with hub/socket backends).
//!
//! Interrupts (with [`DeviceConfig::interrupt_timeout_ms`] set and the device on vfio-pci):
//! receive queue `i` gets MSI-X vector `i`; an idle `rx_batch` re-enables the queue's
//! interrupt (clears `VIRTQ_AVAIL_F_NO_INTERRUPT`) only for as long as it sleeps.
//!
//! Statistics are counted in software: virtio has no hardware counters.

pub mod transport;
pub mod virtqueue;

use std::collections::VecDeque;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::interrupts::{IrqAction, QueueInterrupt};
use crate::memory::{DmaAllocator, DmaMemory, Mempool, Packet};
use crate::pci::{DEVICE_VIRTIO_NET_MODERN, DriverKind, PciDevice};
use crate::{DeviceConfig, DeviceStats, IxyDevice};
use transport::{Transport, VIRTIO_MSI_NO_VECTOR, status};
use virtqueue::{Desc, VIRTQ_DESC_F_WRITE, Virtqueue};

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

/// Control queue classes and commands (virtio 1.1, 5.1.6.5).
mod ctrl {
    pub const RX: u8 = 0;
    pub const RX_PROMISC: u8 = 0;
    pub const MAC: u8 = 1;
    pub const MAC_ADDR_SET: u8 = 1;
    pub const MQ: u8 = 4;
    pub const MQ_VQ_PAIRS_SET: u8 = 0;
    pub const OK: u8 = 0;
}

/// `struct virtio_net_hdr` without `num_buffers` (legacy, no MRG_RXBUF): 5.1.6.
const NET_HDR_LEN_LEGACY: usize = 10;
/// With VERSION_1 the header always includes `num_buffers` (5.1.6).
const NET_HDR_LEN_MODERN: usize = 12;

/// Buffers per receive queue's pool: enough for a full ring, packets in flight on
/// another port's transmit ring and the application's batches.
const RX_POOL_ENTRIES: u32 = 2048;

/// How long the device gets to answer a control command.
const CTRL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a modern device gets to finish a reset (4.1.4.3.2: the driver waits for 0).
const RESET_TIMEOUT: Duration = Duration::from_secs(1);

/// Chooses the features to accept from those `offered`.
///
/// `modern`: the modern transport is in use (VERSION_1 required). `iommu`: the device is
/// driven through VFIO, so its DMA must be translated by the IOMMU (ACCESS_PLATFORM
/// required; without it QEMU's virtio device would use our I/O virtual addresses as
/// physical addresses).
pub fn negotiate_features(
    offered: u64,
    modern: bool,
    iommu: bool,
) -> std::result::Result<u64, String> {
    let mut wanted = feature::MAC
        | feature::STATUS
        | feature::CTRL_VQ
        | feature::CTRL_RX
        | feature::MQ
        | feature::CTRL_MAC_ADDR;
    if modern {
        if offered & feature::VERSION_1 == 0 {
            return Err(
                "the device does not offer VIRTIO_F_VERSION_1 on its modern interface".into(),
            );
        }
        wanted |= feature::VERSION_1 | feature::ACCESS_PLATFORM;
    } else {
        // Legacy framing (5.1.6.6): without VIRTIO_F_ANY_LAYOUT the header must be a
        // descriptor of its own; this driver puts header and frame in one descriptor.
        if offered & feature::ANY_LAYOUT == 0 {
            return Err(
                "the device does not offer VIRTIO_F_ANY_LAYOUT on its legacy interface; this \
                 driver sends the net header and the frame in one descriptor (use the modern \
                 interface: IXY_VIRTIO_MODERN=1 or QEMU disable-legacy=on)"
                    .into(),
            );
        }
        wanted |= feature::ANY_LAYOUT;
    }
    // CTRL_RX, MQ and CTRL_MAC_ADDR depend on CTRL_VQ (5.1.3.1): never accept them alone.
    if offered & feature::CTRL_VQ == 0 {
        wanted &= !(feature::CTRL_RX | feature::MQ | feature::CTRL_MAC_ADDR);
    }
    if iommu {
        if !modern {
            return Err(
                "a legacy virtio interface cannot do DMA through the IOMMU; use the \
                        modern interface (QEMU: disable-legacy=on,iommu_platform=on)"
                    .into(),
            );
        }
        if offered & feature::ACCESS_PLATFORM == 0 {
            return Err(
                "the device does not offer VIRTIO_F_ACCESS_PLATFORM, so its DMA \
                        bypasses the IOMMU and cannot work with vfio-pci (QEMU: add \
                        iommu_platform=on to the virtio-net-pci device)"
                    .into(),
            );
        }
    }
    Ok(offered & wanted)
}

/// How often a device config read is retried while the device keeps changing it.
const CONFIG_READ_ATTEMPTS: u32 = 100;

/// Runs `read` until the config generation (`None`: the transport has none) is the same
/// before and after it, so fields wider than 32 bits or several fields come from one
/// version of the config (virtio 1.1 2.4.1 / 1.2 2.5.1, `config_generation` 4.1.4.3).
fn read_config_consistent<T>(
    name: &str,
    mut generation: impl FnMut() -> Option<u8>,
    mut read: impl FnMut() -> Result<T>,
) -> Result<T> {
    for _ in 0..CONFIG_READ_ATTEMPTS {
        let before = generation();
        let value = read()?;
        if generation() == before {
            return Ok(value);
        }
    }
    Err(Error::device(
        name,
        format!(
            "the device config changed during each of {CONFIG_READ_ATTEMPTS} reads \
             (config_generation never stable); reset the device"
        ),
    ))
}

/// The queue pairs a configuration asks for: virtio-net queues come in rx/tx pairs.
fn queue_pairs(cfg: &DeviceConfig) -> Result<u16> {
    if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
        return Err(Error::config(format!(
            "{} rx and {} tx queues requested: a device needs at least one of each",
            cfg.rx_queues, cfg.tx_queues
        )));
    }
    if cfg.rx_queues != cfg.tx_queues {
        return Err(Error::config(format!(
            "virtio-net uses queues in rx/tx pairs: ask for equal rx and tx queue counts \
             (got {} rx, {} tx)",
            cfg.rx_queues, cfg.tx_queues
        )));
    }
    Ok(cfg.rx_queues)
}

/// Checks `pairs` against the device's `max_virtqueue_pairs` (`None` without
/// VIRTIO_NET_F_MQ: one pair) and returns the index of the control queue: 2N with MQ
/// (N = `max_virtqueue_pairs`), else 2 (5.1.2).
///
/// The value comes from the device and is checked: 5.1.4 allows 1 to 0x8000, and with
/// 0x8000 the control queue index (0x10000) would not fit the 16-bit queue select.
fn queue_layout(name: &str, pairs: u16, max_pairs: Option<u16>) -> Result<u16> {
    let (max_pairs, ctrl_index) = match max_pairs {
        None => (1, 2),
        Some(max) => {
            let index = u16::try_from(2 * u32::from(max))
                .ok()
                .filter(|_| max > 0)
                .ok_or_else(|| {
                    Error::device(
                        name,
                        format!(
                            "the device reports max_virtqueue_pairs = {max}; this driver \
                             handles 1 to 32767 (the control queue is virtqueue 2N, a \
                             16-bit index)"
                        ),
                    )
                })?;
            (max, index)
        }
    };
    if pairs > max_pairs {
        return Err(Error::config(format!(
            "{pairs} queue pairs requested but {name} offers {max_pairs} (QEMU: add \
             mq=on,vectors=2N+2 and -netdev ...,queues=N)"
        )));
    }
    Ok(ctrl_index)
}

struct RxQueue {
    index: u16,
    vq: Virtqueue,
    /// The packet whose buffer each descriptor id holds.
    bufs: Box<[Option<Packet>]>,
    pool: Mempool,
    /// Present when the queue has an interrupt vector.
    interrupt: Option<QueueInterrupt>,
}

struct TxQueue {
    index: u16,
    vq: Virtqueue,
    bufs: Box<[Option<Packet>]>,
    /// The last pool (`Packet::pool_id`) found in the device's DMA domain (that of the
    /// virtqueue memory): the domain is looked up only when the pool changes.
    pool: usize,
}

/// Layout of the control queue's command buffer: header at 0, data at 16, ack byte at 256.
mod ctrl_buf {
    pub const DATA: usize = 16;
    pub const MAX_DATA: usize = 200;
    pub const ACK: usize = 256;
    /// Bytes the buffer must hold.
    pub const LEN: usize = 512;
}

struct CtrlQueue {
    index: u16,
    vq: Virtqueue,
    /// Command header at 0, data at 16, ack byte at 256 ([`ctrl_buf`]).
    buf: DmaMemory,
    /// A command timed out or its completion was lost: the device may still own the
    /// buffer (and write the ack byte at any time), so it is never reused.
    poisoned: bool,
}

impl CtrlQueue {
    /// Writes a command into the buffer and adds its chain to the queue (not yet
    /// published). Returns the chain's id.
    fn submit(&mut self, name: &str, class: u8, cmd: u8, data: &[u8]) -> Result<u16> {
        if self.poisoned {
            return Err(Error::device(
                name,
                "the control queue is unusable: an earlier command was never answered, so \
                 the device may still write its buffer; close and reopen the device",
            ));
        }
        if data.len() > ctrl_buf::MAX_DATA {
            return Err(Error::config("control command data too long"));
        }
        let p = self.buf.virt();
        // SAFETY: the buffer holds ctrl_buf::LEN bytes (checked when it was allocated) and
        // DATA + MAX_DATA, ACK < LEN. No command is outstanding (every wait either saw the
        // completion or poisoned the queue), so the device does not access the buffer;
        // raw writes, no reference into DMA memory.
        unsafe {
            p.write_volatile(class);
            p.add(1).write_volatile(cmd);
            std::ptr::copy_nonoverlapping(data.as_ptr(), p.add(ctrl_buf::DATA), data.len());
            p.add(ctrl_buf::ACK).write_volatile(0xff);
        }
        let chain = [
            Desc {
                addr: self.buf.bus_addr(0),
                len: 2,
                flags: 0,
            },
            Desc {
                addr: self.buf.bus_addr(ctrl_buf::DATA),
                len: data.len() as u32,
                flags: 0,
            },
            Desc {
                addr: self.buf.bus_addr(ctrl_buf::ACK),
                len: 1,
                flags: VIRTQ_DESC_F_WRITE,
            },
        ];
        self.vq
            .add(&chain)
            .ok_or_else(|| Error::device(name, "control queue full"))
    }

    /// Waits up to `timeout` for chain `id` to complete and returns the ack byte. If it
    /// does not complete (timeout, or the device reports something impossible), the
    /// queue is poisoned: its buffer is never written again.
    fn wait(&mut self, name: &str, id: u16, timeout: Duration) -> Result<u8> {
        let start = Instant::now();
        loop {
            match self.vq.pop_used() {
                Ok(Some((done, _))) if done == id => break,
                Ok(_) => {}
                Err(e) => {
                    self.poisoned = true;
                    return Err(Error::device(name, e));
                }
            }
            if start.elapsed() > timeout {
                self.poisoned = true;
                return Err(Error::device(
                    name,
                    format!("no answer to a control command within {timeout:?}"),
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        // SAFETY: ACK < LEN, within the buffer; the device has completed the command.
        Ok(unsafe { self.buf.virt().add(ctrl_buf::ACK).read_volatile() })
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
    tx: Vec<TxQueue>,
    ctrl: Option<CtrlQueue>,
    mac: [u8; 6],
    promisc: bool,
    stats: DeviceStats,
    pci: PciDevice,
}

/// True if the transitional device should be driven in modern mode (see module docs).
fn want_modern(pci: &PciDevice, device_id: u16, has_caps: bool, io_bar0: bool) -> bool {
    device_id == DEVICE_VIRTIO_NET_MODERN
        || (has_caps
            && (pci.is_vfio()
                || !io_bar0
                || std::env::var("IXY_VIRTIO_MODERN").is_ok_and(|v| v == "1")))
}

impl VirtioDevice {
    /// Takes `pci` from the kernel and initialises it as configured.
    ///
    /// Refuses, before touching the device, anything that is not a virtio-net device and
    /// configurations that cannot work (unequal queue counts, no hugetlbfs mount).
    pub fn open(pci: PciDevice, cfg: &DeviceConfig) -> Result<Self> {
        queue_pairs(cfg)?;
        pci.check_claim(cfg, &[DriverKind::VirtioLegacy, DriverKind::VirtioModern])?;
        pci.unbind(cfg.force_unbind)?;
        let cfg_space = transport::read_config_space(&pci)?;
        let device_id = u16::from_le_bytes([cfg_space[2], cfg_space[3]]);
        let caps =
            transport::parse_capabilities(&cfg_space).map_err(|e| Error::device(pci.name(), e))?;
        let modern = want_modern(
            &pci,
            device_id,
            caps.is_some(),
            transport::is_io_bar(&cfg_space, 0),
        );
        let transport = match (&caps, modern) {
            (Some(caps), true) => Transport::modern(&pci, caps)?,
            (None, true) => {
                return Err(Error::device(
                    pci.name(),
                    "modern virtio device without the common/notify/ISR capabilities",
                ));
            }
            (_, false) => Transport::legacy(&pci)?,
        };
        pci.enable_bus_master()?;
        let mut dev = VirtioDevice::unconfigured(pci, transport);
        // On error `dev` is dropped, which resets the device: never left half-initialised.
        dev.init(cfg)?;
        Ok(dev)
    }

    /// A device with no queues and no features yet: what [`VirtioDevice::init`] starts from.
    fn unconfigured(pci: PciDevice, transport: Transport) -> Self {
        VirtioDevice {
            name: pci.name().to_string(),
            transport,
            features: 0,
            hdr_len: NET_HDR_LEN_LEGACY,
            rx: Vec::new(),
            tx: Vec::new(),
            ctrl: None,
            mac: [0; 6],
            promisc: false,
            stats: DeviceStats::default(),
            pci,
        }
    }

    /// [`VirtioDevice::init_steps`]; if a step fails, sets FAILED in the device status
    /// first, as 3.1.1 asks (the reset on drop follows).
    fn init(&mut self, cfg: &DeviceConfig) -> Result<()> {
        let result = self.init_steps(cfg);
        if result.is_err() {
            let s = self.transport.status().unwrap_or(0);
            if let Err(e) = self.transport.set_status(s | status::FAILED) {
                log::error!("{}: cannot set FAILED in the device status: {e}", self.name);
            }
        }
        result
    }

    /// True if the modern (virtio 1.0) interface is in use.
    pub fn is_modern(&self) -> bool {
        self.transport.is_modern()
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Resets the device and waits until it reports status 0.
    fn reset(&self) -> Result<()> {
        self.transport.set_status(0)?;
        let start = Instant::now();
        while self.transport.status()? != 0 {
            if start.elapsed() > RESET_TIMEOUT {
                return Err(Error::device(
                    &self.name,
                    "device status did not clear on reset",
                ));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    }

    /// Device initialisation, virtio 1.1 section 3.1.1 (legacy: without FEATURES_OK).
    fn init_steps(&mut self, cfg: &DeviceConfig) -> Result<()> {
        let dma = cfg.dma();
        let modern = self.transport.is_modern();
        // 1. Reset the device.
        self.reset()?;
        // 2.-3. We noticed the device, and we know how to drive it.
        self.transport.set_status(status::ACKNOWLEDGE)?;
        self.transport
            .set_status(status::ACKNOWLEDGE | status::DRIVER)?;
        // 4. Negotiate features: only what this driver uses.
        let offered = self.transport.device_features()?;
        self.features = negotiate_features(offered, modern, self.pci.is_vfio())
            .map_err(|e| Error::device(&self.name, e))?;
        self.transport.set_driver_features(self.features)?;
        log::debug!(
            "{}: {} interface, features offered {offered:#x}, using {:#x}",
            self.name,
            if modern { "modern" } else { "legacy" },
            self.features
        );
        // 5.-6. Modern devices confirm the feature set.
        if modern {
            let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
            self.transport.set_status(s)?;
            if self.transport.status()? & status::FEATURES_OK == 0 {
                return Err(Error::device(
                    &self.name,
                    format!(
                        "device refused the feature set {:#x} (FEATURES_OK not set)",
                        self.features
                    ),
                ));
            }
            self.hdr_len = NET_HDR_LEN_MODERN;
        }

        // Queue pairs: receive queue i is virtqueue 2i, transmit queue i is 2i+1 (5.1.2).
        let pairs = queue_pairs(cfg)?;
        let max_pairs = if self.has(feature::MQ) {
            Some(self.transport.config_read16(config::MAX_VIRTQUEUE_PAIRS)?)
        } else {
            None
        };
        let ctrl_index = queue_layout(&self.name, pairs, max_pairs)?;

        // Interrupts: one MSI-X vector per receive queue, enabled before the vectors are
        // assigned (legacy devices only show the vector registers while MSI-X is on).
        let mut interrupts = self.setup_interrupts(cfg, pairs)?;

        // 7. Set up the virtqueues.
        let msix = !interrupts.is_empty();
        let no_vector = msix.then_some(VIRTIO_MSI_NO_VECTOR);
        for i in 0..pairs {
            let vector = msix.then_some(i);
            let (vq, bufs) = self.setup_queue(&dma, 2 * i, vector)?;
            let pool = Mempool::new(
                &dma,
                RX_POOL_ENTRIES,
                crate::memory::mempool::DEFAULT_ENTRY_SIZE,
            )?;
            let interrupt = if msix {
                interrupts.get_mut(i as usize).and_then(Option::take)
            } else {
                None
            };
            self.rx.push(RxQueue {
                index: 2 * i,
                vq,
                bufs,
                pool,
                interrupt,
            });
            let (vq, bufs) = self.setup_queue(&dma, 2 * i + 1, no_vector)?;
            self.tx.push(TxQueue {
                index: 2 * i + 1,
                vq,
                bufs,
                pool: 0,
            });
        }
        if self.has(feature::CTRL_VQ) {
            let index = ctrl_index;
            let (vq, _) = self.setup_queue(&dma, index, no_vector)?;
            let buf =
                dma.allocate(ctrl_buf::LEN)?
                    .checked(ctrl_buf::LEN, 8, "control command buffer")?;
            self.ctrl = Some(CtrlQueue {
                index,
                vq,
                buf,
                poisoned: false,
            });
        }

        // 8. The driver is ready.
        let ready = status::ACKNOWLEDGE
            | status::DRIVER
            | status::DRIVER_OK
            | if modern { status::FEATURES_OK } else { 0 };
        self.transport.set_status(ready)?;

        // MAC address from config space (5.1.4), if the device has one.
        if self.has(feature::MAC) {
            let t = &self.transport;
            self.mac = read_config_consistent(
                &self.name,
                || t.config_generation(),
                || {
                    let mut mac = [0; 6];
                    for (i, b) in mac.iter_mut().enumerate() {
                        *b = t.config_read8(config::MAC + i)?;
                    }
                    Ok(mac)
                },
            )?;
        }
        if pairs > 1 {
            self.ctrl_command(ctrl::MQ, ctrl::MQ_VQ_PAIRS_SET, &pairs.to_le_bytes())?;
        }
        // Post receive buffers on every queue.
        for q in 0..self.rx.len() {
            self.refill_rx(q);
        }
        // Like ixy: promiscuous by default, so a forwarder works out of the box. Best
        // effort: a device without receive filtering control (or one that refuses) works
        // with its default filter; a control queue that stopped answering is an error.
        if let Err(e) = self.set_promisc(true) {
            if self.ctrl.as_ref().is_some_and(|c| c.poisoned) {
                return Err(e);
            }
            log::warn!("{}: not promiscuous: {e}", self.name);
        }
        log::info!(
            "{}: virtio-net ready ({} interface{}), MAC {}, {} queue pair(s){}",
            self.name,
            if modern { "modern" } else { "legacy" },
            if self.pci.is_vfio() { ", VFIO" } else { "" },
            crate::format_mac(&self.mac),
            pairs,
            if msix { ", MSI-X interrupts" } else { "" }
        );
        Ok(())
    }

    /// Creates one eventfd per receive queue and enables MSI-X with them through VFIO.
    /// Returns no interrupts when polling is configured or impossible (logged).
    fn setup_interrupts(
        &mut self,
        cfg: &DeviceConfig,
        pairs: u16,
    ) -> Result<Vec<Option<QueueInterrupt>>> {
        if cfg.interrupt_timeout_ms == 0 {
            return Ok(Vec::new());
        }
        if !self.pci.is_vfio() {
            log::warn!(
                "{}: interrupts need the device bound to vfio-pci; polling instead",
                self.name
            );
            return Ok(Vec::new());
        }
        let interrupts = (0..pairs)
            .map(|_| QueueInterrupt::new(cfg.interrupt_timeout_ms))
            .collect::<Result<Vec<_>>>()?;
        let fds: Vec<_> = interrupts.iter().map(QueueInterrupt::eventfd).collect();
        match self.pci.enable_msix(&fds) {
            Ok(()) => {}
            Err(e) => {
                log::warn!("{}: cannot enable MSI-X ({e}); polling instead", self.name);
                return Ok(Vec::new());
            }
        }
        self.transport.msix_enabled();
        // No interrupt on config changes: link state is read when asked.
        self.transport.set_config_vector(VIRTIO_MSI_NO_VECTOR)?;
        Ok(interrupts.into_iter().map(Some).collect())
    }

    fn has(&self, f: u64) -> bool {
        self.features & f != 0
    }

    /// Creates virtqueue `index` with the size the device asks for, routes its interrupts
    /// to MSI-X `vector` (if MSI-X is on) and tells the device where it is (4.1.5.1.3).
    fn setup_queue(
        &mut self,
        dma: &dyn DmaAllocator,
        index: u16,
        vector: Option<u16>,
    ) -> Result<(Virtqueue, Box<[Option<Packet>]>)> {
        let size = self.transport.queue_max_size(index)?;
        if size == 0 {
            return Err(Error::device(
                &self.name,
                format!("virtqueue {index} does not exist"),
            ));
        }
        let mut vq = Virtqueue::new(dma, size).map_err(|e| match e {
            Error::InvalidConfig { .. } => Error::device(
                &self.name,
                format!("virtqueue {index} has unusable size {size}: {e}"),
            ),
            // Memory errors (hugepages, memlock) speak for themselves.
            e => e,
        })?;
        if let Some(v) = vector {
            let got = self.transport.set_queue_vector(index, v)?;
            if got != v {
                return Err(Error::device(
                    &self.name,
                    format!(
                        "device refused MSI-X vector {v} for virtqueue {index} (read back {got:#x})"
                    ),
                ));
            }
        }
        self.transport
            .setup_queue(
                index,
                size,
                vq.bus_addr(),
                vq.avail_bus_addr(),
                vq.used_bus_addr(),
            )
            .map_err(|e| Error::device(&self.name, format!("virtqueue {index}: {e}")))?;
        vq.disable_interrupts();
        let bufs = (0..size).map(|_| None).collect();
        Ok((vq, bufs))
    }

    #[inline]
    fn notify(&self, queue_index: u16) {
        if let Err(e) = self.transport.notify(queue_index) {
            log::error!("{}: queue notification failed: {e}", self.name);
        }
    }

    /// Gives every free receive descriptor of queue `q` a fresh buffer. Returns true if it
    /// added any.
    fn refill_rx(&mut self, q: usize) -> bool {
        let hdr_len = self.hdr_len;
        let queue = &mut self.rx[q];
        let len = (queue.pool.max_packet_len() + hdr_len) as u32;
        let mut added = false;
        while queue.vq.num_free() > 0 {
            let Some(p) = queue.pool.alloc_empty() else {
                break;
            };
            // The device writes the header into the headroom, the frame at the data start.
            let desc = Desc {
                addr: p.bus_addr() - hdr_len as u64,
                len,
                flags: VIRTQ_DESC_F_WRITE,
            };
            let Some(id) = queue.vq.add(&[desc]) else {
                break;
            };
            // The virtqueue hands out only ids that are not in flight.
            debug_assert!(queue.bufs[id as usize].is_none());
            queue.bufs[id as usize] = Some(p);
            added = true;
        }
        if added && queue.vq.publish() {
            self.notify(self.rx[q].index);
        }
        added
    }

    /// Takes up to `num_packets` received packets from queue `q`; returns (packets, bytes).
    #[inline]
    fn poll_rx(
        &mut self,
        q: usize,
        buffer: &mut VecDeque<Packet>,
        num_packets: usize,
    ) -> (usize, u64) {
        let hdr_len = self.hdr_len;
        let queue = &mut self.rx[q];
        let mut received = 0;
        let mut bytes = 0;
        while received < num_packets {
            match queue.vq.pop_used() {
                Ok(Some((id, len))) => {
                    let Some(mut p) = queue.bufs[id as usize].take() else {
                        continue;
                    };
                    p.set_len_from_device((len as usize).saturating_sub(hdr_len));
                    p.prefetch();
                    bytes += p.len() as u64;
                    buffer.push_back(p);
                    received += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    log::error!("{}: receive queue {q}: {e}", self.name);
                    break;
                }
            }
        }
        (received, bytes)
    }

    /// Arms queue `q`'s interrupt and sleeps until an armed queue of this thread
    /// interrupts or the timeout passes. The queue stays armed until it receives again.
    #[cold]
    fn sleep_rx(&mut self, q: usize) {
        let queue = &mut self.rx[q];
        let Some(intr) = queue.interrupt.as_ref() else {
            return;
        };
        queue.vq.enable_interrupts();
        // The flag must be visible before we look at the ring one last time: a buffer used
        // in between either shows up here or raises the interrupt (2.6.7.1).
        fence(Ordering::SeqCst);
        if queue.vq.pending_used() == 0
            && let Err(e) = intr.wait()
        {
            log::error!("{}: waiting for an interrupt on queue {q}: {e}", self.name);
        }
    }

    /// Sends a control command (5.1.6.5) and waits for the device's answer.
    fn ctrl_command(&mut self, class: u8, cmd: u8, data: &[u8]) -> Result<()> {
        let name = self.name.clone();
        let Some(c) = self.ctrl.as_mut() else {
            return Err(Error::device(&name, "the device has no control queue"));
        };
        let id = c.submit(&name, class, cmd, data)?;
        c.vq.publish();
        let index = c.index;
        self.notify(index);
        let c = self
            .ctrl
            .as_mut()
            .ok_or_else(|| Error::device(&name, "no control queue"))?;
        let ack = c.wait(&name, id, CTRL_TIMEOUT).map_err(|e| match e {
            Error::Device { address, detail } => Error::Device {
                address,
                detail: format!("control command {class}/{cmd}: {detail}"),
            },
            e => e,
        })?;
        if ack != ctrl::OK {
            return Err(Error::device(
                &name,
                format!("device rejected control command {class}/{cmd} (ack {ack})"),
            ));
        }
        Ok(())
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

    fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()> {
        if self.has(feature::CTRL_MAC_ADDR) {
            self.ctrl_command(ctrl::MAC, ctrl::MAC_ADDR_SET, &mac)?;
        } else if self.has(feature::MAC) && !self.transport.is_modern() {
            // Legacy devices take the MAC written into config space (5.1.4.2).
            for (i, b) in mac.iter().enumerate() {
                self.transport.config_write8(config::MAC + i, *b)?;
            }
        } else {
            return Err(Error::device(
                &self.name,
                "the device does not let the MAC be set (no VIRTIO_NET_F_CTRL_MAC_ADDR)",
            ));
        }
        self.mac = mac;
        Ok(())
    }

    /// virtio reports link state but no speed; an up link is reported as 1000 Mbit/s.
    fn link_speed(&self) -> u32 {
        if !self.has(feature::STATUS) {
            return 1000;
        }
        match self.transport.config_read16(config::STATUS) {
            Ok(s) if s & config::S_LINK_UP != 0 => 1000,
            _ => 0,
        }
    }

    fn set_promisc(&mut self, enabled: bool) -> Result<()> {
        if !self.has(feature::CTRL_RX) {
            return Err(Error::device(
                &self.name,
                "the device has no control of receive filtering (VIRTIO_NET_F_CTRL_RX)",
            ));
        }
        self.ctrl_command(ctrl::RX, ctrl::RX_PROMISC, &[enabled as u8])?;
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
        let (mut received, mut bytes) = self.poll_rx(q, buffer, num_packets);
        // Interrupt mode: after enough empty polls in a row, sleep until the device uses
        // a buffer (or the timeout passes) and poll once more. No system call while busy.
        let action = match self.rx[q].interrupt.as_mut() {
            Some(intr) => intr.after_poll(received),
            None => IrqAction::Poll,
        };
        match action {
            IrqAction::Poll => {}
            IrqAction::Disarm => self.rx[q].vq.disable_interrupts(),
            IrqAction::Sleep => {
                self.sleep_rx(q);
                (received, bytes) = self.poll_rx(q, buffer, num_packets);
                let queue = &mut self.rx[q];
                if let Some(intr) = queue.interrupt.as_mut()
                    && intr.after_poll(received) == IrqAction::Disarm
                {
                    queue.vq.disable_interrupts();
                }
            }
        }
        self.stats.rx_packets += received as u64;
        self.stats.rx_bytes += bytes;
        let queue = &self.rx[q];
        if received > 0 || queue.vq.num_free() == queue.vq.size() {
            self.refill_rx(q);
        }
        received
    }

    /// A packet with less headroom than the net header (10 or 12 bytes) cannot be sent:
    /// it is taken, dropped and counted in [`DeviceStats::tx_dropped`] (and in the return
    /// value), so it cannot block the queue.
    fn tx_batch(&mut self, queue_id: u16, buffer: &mut VecDeque<Packet>) -> usize {
        let hdr_len = self.hdr_len;
        let queue = crate::queue_mut(&mut self.tx, queue_id, "tx");
        // Reclaim what the device has sent: dropping the packets returns their buffers.
        loop {
            match queue.vq.pop_used() {
                Ok(Some((id, _))) => queue.bufs[id as usize] = None,
                Ok(None) => break,
                Err(e) => {
                    log::error!("{}: transmit queue {queue_id}: {e}", self.name);
                    break;
                }
            }
        }
        let mut sent = 0;
        let mut dropped = 0;
        let mut bytes = 0;
        while queue.vq.num_free() > 0 {
            let Some(mut p) = buffer.pop_front() else {
                break;
            };
            let len = p.len();
            if p.pool_id() != queue.pool {
                if p.dma_domain() != queue.vq.dma_domain() {
                    // Memory the device cannot reach: it would read other memory at
                    // those bus addresses. Never sent; dropped and counted.
                    drop(p);
                    dropped += 1;
                    continue;
                }
                queue.pool = p.pool_id();
            }
            match p.prepend(hdr_len) {
                Ok(hdr) => hdr.fill(0), // no offloads: an all-zero header (5.1.6.2)
                Err(_) => {
                    // Not enough headroom for the header (the caller stripped more than
                    // it gave back): it can never be sent, and leaving it at the front
                    // would stop this queue for good. Drop it and count it.
                    drop(p);
                    dropped += 1;
                    continue;
                }
            }
            let desc = Desc {
                addr: p.bus_addr(),
                len: p.len() as u32,
                flags: 0,
            };
            let Some(id) = queue.vq.add(&[desc]) else {
                // Cannot happen (a descriptor is free), but never lose the packet.
                let _ = p.strip_front(hdr_len);
                buffer.push_front(p);
                break;
            };
            debug_assert!(queue.bufs[id as usize].is_none());
            queue.bufs[id as usize] = Some(p);
            sent += 1;
            bytes += len as u64;
        }
        if sent > 0 && queue.vq.publish() {
            let index = queue.index;
            self.notify(index);
        }
        self.stats.tx_packets += sent as u64;
        self.stats.tx_bytes += bytes;
        self.stats.tx_dropped += dropped;
        sent + dropped as usize
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
        if let Err(e) = self.reset() {
            log::error!("{}: reset on close failed: {e}", self.name);
            let _ = self.transport.set_status(status::FAILED);
            // The device may still be doing DMA: take bus mastering away; if even that
            // fails, never give its memory back (without an IOMMU the hugepages would be
            // reused while the device still writes them).
            if let Err(e) = self.pci.disable_bus_master() {
                log::error!(
                    "{}: cannot disable bus mastering either ({e}); leaking its rings and \
                     buffers",
                    self.name
                );
                std::mem::forget(std::mem::take(&mut self.rx));
                std::mem::forget(std::mem::take(&mut self.tx));
                std::mem::forget(self.ctrl.take());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::HeapDma;
    use crate::pci::testing::{fake_sysfs, unbind_written};
    use crate::pci::{VENDOR_INTEL, VENDOR_VIRTIO};
    use std::fs;
    use virtqueue::fake_device::FakeDevice;

    fn open_fake(root: &std::path::Path) -> PciDevice {
        PciDevice::open_at("0000:00:04.0".parse().unwrap(), root).unwrap()
    }

    /// A legacy virtio-net device whose I/O BAR is a 32-byte file (all registers 0: no
    /// features), driven through the real legacy transport. Returns the sysfs root, the
    /// device directory and the unconfigured device.
    fn fake_legacy_device(
        tag: &str,
    ) -> (crate::testing::TempDir, std::path::PathBuf, VirtioDevice) {
        let (root, dir) = fake_sysfs(
            tag,
            [0, 0, 2],
            VENDOR_VIRTIO,
            crate::pci::DEVICE_VIRTIO_NET_LEGACY,
            None,
        );
        fs::write(dir.join("resource0"), [0u8; 32]).unwrap();
        let pci = open_fake(&root);
        let transport = Transport::legacy(&pci).unwrap();
        (root, dir, VirtioDevice::unconfigured(pci, transport))
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
        assert!(matches!(err, Error::Hugepages { .. }), "{err}");
        assert_eq!(unbind_written(&root, "virtio-pci"), "", "never unbound");
    }

    #[test]
    fn max_virtqueue_pairs_from_the_device_is_checked() {
        // Without MQ: one pair, control queue 2.
        assert_eq!(queue_layout("d", 1, None).unwrap(), 2);
        assert!(queue_layout("d", 2, None).is_err());
        // 2 * 0x8000 does not fit a 16-bit queue index; 0 pairs is nonsense.
        for bad in [0x8000, 0xffff, 0] {
            let msg = queue_layout("d", 1, Some(bad)).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("max_virtqueue_pairs = {bad}")),
                "{msg}"
            );
        }
        assert_eq!(queue_layout("d", 1, Some(0x7fff)).unwrap(), 0xfffe);
        assert_eq!(queue_layout("d", 4, Some(4)).unwrap(), 8);
        let msg = queue_layout("d", 5, Some(4)).unwrap_err().to_string();
        assert!(msg.contains("offers 4"), "{msg}");
    }

    fn ctrl_queue() -> CtrlQueue {
        CtrlQueue {
            index: 2,
            vq: Virtqueue::new(&HeapDma, 8).unwrap(),
            buf: HeapDma
                .allocate(ctrl_buf::LEN)
                .unwrap()
                .checked(ctrl_buf::LEN, 8, "control command buffer")
                .unwrap(),
            poisoned: false,
        }
    }

    #[test]
    fn control_commands_are_refused_after_one_timed_out() {
        let mut c = ctrl_queue();
        let mut dev = FakeDevice::new();
        // An answered command.
        let id = c.submit("d", ctrl::RX, ctrl::RX_PROMISC, &[1]).unwrap();
        c.vq.publish();
        assert_eq!(dev.take(&c.vq), Some(id));
        // SAFETY: the device's side: writing the ack byte of the outstanding command.
        unsafe { c.buf.virt().add(ctrl_buf::ACK).write_volatile(ctrl::OK) };
        dev.complete(&mut c.vq, id as u32, 1);
        assert_eq!(
            c.wait("d", id, Duration::from_millis(100)).unwrap(),
            ctrl::OK
        );
        // One the device never answers: the buffer stays the device's.
        let id = c.submit("d", ctrl::RX, ctrl::RX_PROMISC, &[0]).unwrap();
        c.vq.publish();
        let msg = c
            .wait("d", id, Duration::from_millis(5))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no answer"), "{msg}");
        let msg = c
            .submit("d", ctrl::MAC, ctrl::MAC_ADDR_SET, &[0; 6])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unusable"), "{msg}");
        assert_eq!(dev.take(&c.vq), Some(id), "nothing new was queued");
        assert_eq!(dev.take(&c.vq), None);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads a fake sysfs tree: file system access is isolated under Miri"
    )]
    fn a_tx_packet_without_headroom_is_dropped_not_left_blocking_the_queue() {
        let (_root, _, mut dev) = fake_legacy_device("virtio-tx");
        dev.tx.push(TxQueue {
            index: 1,
            vq: Virtqueue::new(&HeapDma, 8).unwrap(),
            bufs: (0..8).map(|_| None).collect(),
            pool: 0,
        });
        let pool = Mempool::new(&HeapDma, 8, 2048).unwrap();
        let mut bad = pool.alloc(60).unwrap();
        let headroom = bad.headroom();
        bad.prepend(headroom - 4).unwrap();
        // And one from a device model's memory: a DMA domain this device cannot reach.
        let far = Mempool::new(&crate::model::Model::new().dma(), 8, 2048).unwrap();
        let mut q = VecDeque::from([bad, far.alloc(60).unwrap(), pool.alloc(60).unwrap()]);
        assert_eq!(dev.tx_batch(0, &mut q), 3, "all taken");
        assert!(q.is_empty());
        assert_eq!(far.free_count(), 8, "never handed to the device");
        let s = dev.stats();
        assert_eq!((s.tx_packets, s.tx_dropped, s.tx_bytes), (1, 2, 60));
        assert_eq!(
            pool.free_count(),
            7,
            "the dropped packet is back in its pool"
        );
        assert_eq!(dev.tx[0].vq.num_free(), 7);
        drop(dev);
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
    fn config_reads_are_repeated_until_the_generation_is_stable() {
        use std::cell::Cell;
        // The generation changes once during the first read: that read is discarded.
        let generation = Cell::new(7u8);
        let reads = Cell::new(0u32);
        let v = read_config_consistent(
            "d",
            || Some(generation.get()),
            || {
                reads.set(reads.get() + 1);
                if reads.get() == 1 {
                    generation.set(8);
                    Ok([1u8; 6])
                } else {
                    Ok([2u8; 6])
                }
            },
        )
        .unwrap();
        assert_eq!((v, reads.get()), ([2; 6], 2));
        // Legacy: no generation, one read.
        reads.set(0);
        read_config_consistent(
            "d",
            || None,
            || {
                reads.set(reads.get() + 1);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(reads.get(), 1);
        // A generation that never settles is an error, not an endless loop.
        let msg = read_config_consistent(
            "d",
            || {
                generation.set(generation.get().wrapping_add(1));
                Some(generation.get())
            },
            || Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("config_generation never stable"), "{msg}");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads a fake sysfs tree: file system access is isolated under Miri"
    )]
    fn a_failed_initialisation_sets_failed_in_the_device_status() {
        // A legacy device (I/O BAR as a file) offering no features at all: no ANY_LAYOUT.
        let (_root, dir, mut dev) = fake_legacy_device("virtio-failed");
        let msg = dev
            .init(&DeviceConfig::new("0000:00:04.0"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("VIRTIO_F_ANY_LAYOUT"), "{msg}");
        let bar = fs::read(dir.join("resource0")).unwrap();
        assert_eq!(
            bar[0x12],
            status::ACKNOWLEDGE | status::DRIVER | status::FAILED,
            "device status register"
        );
        drop(dev);
        let bar = fs::read(dir.join("resource0")).unwrap();
        assert_eq!(bar[0x12], 0, "reset on drop");
    }

    #[test]
    fn legacy_negotiation_keeps_32_bits() {
        let f = negotiate_features(0xffff_ffff | feature::VERSION_1, false, false).unwrap();
        assert_eq!(f >> 32, 0);
        assert_ne!(f & feature::ANY_LAYOUT, 0);
    }
}
