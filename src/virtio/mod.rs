//! virtio-net driver (legacy interface, `1af4:1000`).
//!
//! Follows the virtio 1.1 specification: device initialisation (3.1.1), the legacy PCI
//! interface (4.1.4.8), split virtqueues ([`virtqueue`]) and the network device (5.1),
//! including the control queue for promiscuous mode and multi-queue.
//!
//! Packets carry the 10-byte `virtio_net_hdr` (5.1.6) in their headroom: on receive the
//! device writes it just before the packet data; on transmit it is prepended into the
//! headroom, so each packet is one descriptor. No offloads are negotiated (QEMU offers
//! none with the hub/socket backends anyway).
//!
//! Statistics are counted in software: virtio has no hardware counters.

pub mod virtqueue;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::memory::{DmaAllocator, DmaMemory, Mempool, Packet};
use crate::pci::{IoBar, PciDevice};
use crate::{DeviceConfig, DeviceStats, IxyDevice};
use virtqueue::{Desc, VIRTQ_DESC_F_WRITE, Virtqueue};

/// Legacy PCI register offsets in I/O BAR 0 (virtio 1.1, 4.1.4.8).
mod reg {
    pub const DEVICE_FEATURES: u64 = 0x00;
    pub const DRIVER_FEATURES: u64 = 0x04;
    pub const QUEUE_ADDRESS: u64 = 0x08;
    pub const QUEUE_SIZE: u64 = 0x0c;
    pub const QUEUE_SELECT: u64 = 0x0e;
    pub const QUEUE_NOTIFY: u64 = 0x10;
    pub const DEVICE_STATUS: u64 = 0x12;
    /// Device-specific config when MSI-X is disabled (it is: ixy does not enable it).
    pub const CONFIG: u64 = 0x14;
}

/// Device status bits (virtio 1.1, 2.1).
mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FAILED: u8 = 128;
}

/// Feature bits (virtio 1.1, 5.1.3 and 6).
mod feature {
    pub const MAC: u32 = 1 << 5;
    pub const STATUS: u32 = 1 << 16;
    pub const CTRL_VQ: u32 = 1 << 17;
    pub const CTRL_RX: u32 = 1 << 18;
    pub const MQ: u32 = 1 << 22;
    pub const CTRL_MAC_ADDR: u32 = 1 << 23;
    pub const ANY_LAYOUT: u32 = 1 << 27;
}

/// Network device config layout (virtio 1.1, 5.1.4).
mod config {
    pub const MAC: u64 = 0;
    pub const STATUS: u64 = 6;
    pub const MAX_VIRTQUEUE_PAIRS: u64 = 8;
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

/// `struct virtio_net_hdr` without `num_buffers` (no MRG_RXBUF, legacy): 5.1.6.
const NET_HDR_LEN: usize = 10;

/// Buffers per receive queue's pool: enough for a full ring, packets in flight on
/// another port's transmit ring and the application's batches.
const RX_POOL_ENTRIES: u32 = 2048;

/// How long the device gets to answer a control command.
const CTRL_TIMEOUT: Duration = Duration::from_secs(1);

struct RxQueue {
    index: u16,
    vq: Virtqueue,
    /// The packet whose buffer each descriptor id holds.
    bufs: Box<[Option<Packet>]>,
    pool: Mempool,
}

struct TxQueue {
    index: u16,
    vq: Virtqueue,
    bufs: Box<[Option<Packet>]>,
}

struct CtrlQueue {
    index: u16,
    vq: Virtqueue,
    /// Command header at 0, data at 16, ack byte at 256.
    buf: DmaMemory,
}

/// A virtio-net device driven through the legacy interface.
pub struct VirtioDevice {
    name: String,
    bar: IoBar,
    features: u32,
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
    ctrl: Option<CtrlQueue>,
    mac: [u8; 6],
    promisc: bool,
    stats: DeviceStats,
    _pci: PciDevice,
}

impl VirtioDevice {
    /// Takes `pci` from the kernel and initialises it as configured.
    pub fn open(pci: PciDevice, cfg: &DeviceConfig) -> Result<Self> {
        pci.unbind(cfg.force_unbind)?;
        pci.enable_bus_master()?;
        let bar = pci.io_bar(0)?;
        let mut dev = VirtioDevice {
            name: pci.name().to_string(),
            bar,
            features: 0,
            rx: Vec::new(),
            tx: Vec::new(),
            ctrl: None,
            mac: [0; 6],
            promisc: false,
            stats: DeviceStats::default(),
            _pci: pci,
        };
        // On error `dev` is dropped, which resets the device: never left half-initialised.
        dev.init(cfg)?;
        Ok(dev)
    }

    fn set_status(&self, s: u8) -> Result<()> {
        self.bar.write8(reg::DEVICE_STATUS, s)
    }

    /// Device initialisation, virtio 1.1 section 3.1.1 (legacy variant, no FEATURES_OK).
    fn init(&mut self, cfg: &DeviceConfig) -> Result<()> {
        let dma = cfg.dma();
        // 1. Reset the device; the legacy interface resets synchronously.
        self.set_status(0)?;
        if self.bar.read8(reg::DEVICE_STATUS)? != 0 {
            return Err(Error::device(
                &self.name,
                "device status did not clear on reset",
            ));
        }
        // 2.-3. We noticed the device, and we know how to drive it.
        self.set_status(status::ACKNOWLEDGE)?;
        self.set_status(status::ACKNOWLEDGE | status::DRIVER)?;
        // 4. Negotiate features: only what this driver uses.
        let offered = self.bar.read32(reg::DEVICE_FEATURES)?;
        let wanted = feature::MAC
            | feature::STATUS
            | feature::CTRL_VQ
            | feature::CTRL_RX
            | feature::MQ
            | feature::CTRL_MAC_ADDR
            | feature::ANY_LAYOUT;
        self.features = offered & wanted;
        self.bar.write32(reg::DRIVER_FEATURES, self.features)?;
        log::debug!(
            "{}: features offered {offered:#x}, using {:#x}",
            self.name,
            self.features
        );

        // Queue pairs: receive queue i is virtqueue 2i, transmit queue i is 2i+1 (5.1.2).
        let pairs = cfg.rx_queues.max(cfg.tx_queues);
        let max_pairs = if self.has(feature::MQ) {
            self.bar.read16(reg::CONFIG + config::MAX_VIRTQUEUE_PAIRS)?
        } else {
            1
        };
        if pairs > 1 && cfg.rx_queues != cfg.tx_queues {
            return Err(Error::config(format!(
                "virtio-net uses queues in rx/tx pairs: ask for equal rx and tx queue counts \
                 (got {} rx, {} tx)",
                cfg.rx_queues, cfg.tx_queues
            )));
        }
        if pairs > max_pairs {
            return Err(Error::config(format!(
                "{pairs} queue pairs requested but {} offers {max_pairs} (QEMU: add \
                 mq=on,vectors=2N+2 and -netdev ...,queues=N)",
                self.name
            )));
        }

        // 5. Set up the virtqueues.
        for i in 0..pairs {
            let (vq, bufs) = self.setup_queue(&dma, 2 * i)?;
            let pool = Mempool::new(
                &dma,
                RX_POOL_ENTRIES,
                crate::memory::mempool::DEFAULT_ENTRY_SIZE,
            )?;
            self.rx.push(RxQueue {
                index: 2 * i,
                vq,
                bufs,
                pool,
            });
            let (vq, bufs) = self.setup_queue(&dma, 2 * i + 1)?;
            self.tx.push(TxQueue {
                index: 2 * i + 1,
                vq,
                bufs,
            });
        }
        if self.has(feature::CTRL_VQ) {
            let index = if self.has(feature::MQ) {
                2 * max_pairs
            } else {
                2
            };
            let (vq, _) = self.setup_queue(&dma, index)?;
            let buf = dma.allocate(4096)?;
            self.ctrl = Some(CtrlQueue { index, vq, buf });
        }

        // 6. The driver is ready.
        self.set_status(status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK)?;

        // MAC address from config space (5.1.4), if the device has one.
        if self.has(feature::MAC) {
            for (i, b) in self.mac.iter_mut().enumerate() {
                *b = self.bar.read8(reg::CONFIG + config::MAC + i as u64)?;
            }
        }
        if pairs > 1 {
            self.ctrl_command(ctrl::MQ, ctrl::MQ_VQ_PAIRS_SET, &pairs.to_le_bytes())?;
        }
        // Post receive buffers on every queue.
        for q in 0..self.rx.len() {
            self.refill_rx(q);
        }
        // Like ixy: promiscuous by default, so a forwarder works out of the box.
        self.set_promisc(true)?;
        log::info!(
            "{}: virtio-net ready, MAC {}, {} queue pair(s)",
            self.name,
            format_mac(&self.mac),
            pairs
        );
        Ok(())
    }

    fn has(&self, f: u32) -> bool {
        self.features & f != 0
    }

    /// Creates virtqueue `index` with the size the device asks for and tells the device
    /// where it is (4.1.5.1.3, legacy).
    fn setup_queue(
        &self,
        dma: &dyn DmaAllocator,
        index: u16,
    ) -> Result<(Virtqueue, Box<[Option<Packet>]>)> {
        self.bar.write16(reg::QUEUE_SELECT, index)?;
        let size = self.bar.read16(reg::QUEUE_SIZE)?;
        if size == 0 {
            return Err(Error::device(
                &self.name,
                format!("virtqueue {index} does not exist"),
            ));
        }
        let vq = Virtqueue::new(dma, size).map_err(|e| {
            Error::device(
                &self.name,
                format!("virtqueue {index} has unusable size {size}: {e}"),
            )
        })?;
        let addr = vq.bus_addr();
        // The legacy queue address register holds a 4096-byte page number (32 bits).
        if addr % 4096 != 0 || addr >> 12 > u32::MAX as u64 {
            return Err(Error::device(
                &self.name,
                format!("virtqueue memory at {addr:#x} is not reachable by a legacy device"),
            ));
        }
        self.bar.write32(reg::QUEUE_ADDRESS, (addr >> 12) as u32)?;
        let mut vq = vq;
        vq.disable_interrupts();
        let bufs = (0..size).map(|_| None).collect();
        Ok((vq, bufs))
    }

    fn notify(&self, queue_index: u16) {
        if let Err(e) = self.bar.write16(reg::QUEUE_NOTIFY, queue_index) {
            log::error!("{}: queue notification failed: {e}", self.name);
        }
    }

    /// Gives every free receive descriptor of queue `q` a fresh buffer. Returns true if it
    /// added any.
    fn refill_rx(&mut self, q: usize) -> bool {
        let queue = &mut self.rx[q];
        let len = (queue.pool.max_packet_len() + NET_HDR_LEN) as u32;
        let mut added = false;
        while queue.vq.num_free() > 0 {
            let Some(p) = queue.pool.alloc_empty() else {
                break;
            };
            // The device writes the header into the headroom, the frame at the data start.
            let desc = Desc {
                addr: p.bus_addr() - NET_HDR_LEN as u64,
                len,
                flags: VIRTQ_DESC_F_WRITE,
            };
            let Some(id) = queue.vq.add(&[desc]) else {
                break;
            };
            queue.bufs[id as usize] = Some(p);
            added = true;
        }
        if added && queue.vq.publish() {
            self.notify(self.rx[q].index);
        }
        added
    }

    /// Sends a control command (5.1.6.5) and waits for the device's answer.
    fn ctrl_command(&mut self, class: u8, cmd: u8, data: &[u8]) -> Result<()> {
        let name = self.name.clone();
        let Some(c) = self.ctrl.as_mut() else {
            return Err(Error::device(&name, "the device has no control queue"));
        };
        if data.len() > 200 {
            return Err(Error::config("control command data too long"));
        }
        // SAFETY: the buffer is 4096 bytes of DMA memory owned by this queue; the device
        // touches it only while a command is outstanding, and none is.
        let buf = unsafe { std::slice::from_raw_parts_mut(c.buf.virt(), 512) };
        buf[0] = class;
        buf[1] = cmd;
        buf[16..16 + data.len()].copy_from_slice(data);
        buf[256] = 0xff;
        let chain = [
            Desc {
                addr: c.buf.bus_addr(0),
                len: 2,
                flags: 0,
            },
            Desc {
                addr: c.buf.bus_addr(16),
                len: data.len() as u32,
                flags: 0,
            },
            Desc {
                addr: c.buf.bus_addr(256),
                len: 1,
                flags: VIRTQ_DESC_F_WRITE,
            },
        ];
        let id =
            c.vq.add(&chain)
                .ok_or_else(|| Error::device(&name, "control queue full"))?;
        c.vq.publish();
        let index = c.index;
        self.notify(index);
        let c = self
            .ctrl
            .as_mut()
            .ok_or_else(|| Error::device(&name, "no control queue"))?;
        let start = Instant::now();
        loop {
            match c.vq.pop_used() {
                Ok(Some((done, _))) if done == id => break,
                Ok(_) => {}
                Err(e) => return Err(Error::device(&name, e)),
            }
            if start.elapsed() > CTRL_TIMEOUT {
                return Err(Error::device(
                    &name,
                    format!("no answer to control command {class}/{cmd} within {CTRL_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        // SAFETY: as above; the device has completed the command.
        let ack = unsafe { c.buf.virt().add(256).read_volatile() };
        if ack != ctrl::OK {
            return Err(Error::device(
                &name,
                format!("device rejected control command {class}/{cmd} (ack {ack})"),
            ));
        }
        Ok(())
    }
}

/// Formats a MAC address as `52:54:00:12:34:56`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
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
        } else if self.has(feature::MAC) {
            // Legacy devices take the MAC written into config space (5.1.4.2).
            for (i, b) in mac.iter().enumerate() {
                self.bar.write8(reg::CONFIG + config::MAC + i as u64, *b)?;
            }
        } else {
            return Err(Error::device(
                &self.name,
                "the device does not let the MAC be set",
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
        match self.bar.read16(reg::CONFIG + config::STATUS) {
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
        let queue = &mut self.rx[queue_id as usize];
        let mut received = 0;
        let mut bytes = 0;
        while received < num_packets {
            match queue.vq.pop_used() {
                Ok(Some((id, len))) => {
                    let Some(mut p) = queue.bufs[id as usize].take() else {
                        continue;
                    };
                    p.set_len_from_device((len as usize).saturating_sub(NET_HDR_LEN));
                    p.prefetch();
                    bytes += p.len() as u64;
                    buffer.push_back(p);
                    received += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    log::error!("{}: receive queue {queue_id}: {e}", self.name);
                    break;
                }
            }
        }
        self.stats.rx_packets += received as u64;
        self.stats.rx_bytes += bytes;
        if received > 0 || queue.vq.num_free() == queue.vq.size() {
            self.refill_rx(queue_id as usize);
        }
        received
    }

    fn tx_batch(&mut self, queue_id: u16, buffer: &mut VecDeque<Packet>) -> usize {
        let queue = &mut self.tx[queue_id as usize];
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
        let mut bytes = 0;
        while queue.vq.num_free() > 0 {
            let Some(mut p) = buffer.pop_front() else {
                break;
            };
            let len = p.len();
            match p.prepend(NET_HDR_LEN) {
                Ok(hdr) => hdr.fill(0), // no offloads: an all-zero header (5.1.6.2)
                Err(_) => {
                    // Not enough headroom for the header: leave it to the caller.
                    buffer.push_front(p);
                    break;
                }
            }
            let desc = Desc {
                addr: p.bus_addr(),
                len: p.len() as u32,
                flags: 0,
            };
            let Some(id) = queue.vq.add(&[desc]) else {
                // Cannot happen (a descriptor is free), but never lose the packet.
                let _ = p.strip_front(NET_HDR_LEN);
                buffer.push_front(p);
                break;
            };
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
        sent
    }

    fn stats(&mut self) -> DeviceStats {
        self.stats
    }

    fn reset_stats(&mut self) {
        self.stats = DeviceStats::default();
    }
}

impl Drop for VirtioDevice {
    fn drop(&mut self) {
        // Reset stops all DMA before the rings and buffers are freed (3.3.1).
        if let Err(e) = self.set_status(0) {
            log::error!("{}: reset on close failed: {e}", self.name);
            let _ = self.set_status(status::FAILED);
        }
    }
}
