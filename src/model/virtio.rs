//! A behavioural model of a virtio-net PCI function (feature `model`): the device side of
//! the virtio 1.1 specification, reached through the same transport code the driver uses
//! on hardware ([`VirtioBar`]).
//!
//! A function is legacy (`1af4:1000`, registers in I/O BAR 0, 4.1.4.8) or modern
//! (`1af4:1041`, the common, notification, ISR and device structures in memory BAR 4,
//! found through vendor capabilities in its config space, 4.1.4). The test chooses the
//! features the device offers ([`VirtioOptions`]). The model keeps rx, tx and control
//! queues, writes the used rings back, honours and sets notification suppression, filters
//! received frames (MAC, promiscuous, all-multicast, set through the control queue) and
//! links devices to each other or to traffic sources and sinks, like the 82599 model.
//!
//! It checks the driver's side of the specification and fails the test with a message
//! starting `virtio model: rule violated:` ([`rule`]) when the driver breaks it: the
//! status sequence, features, queue setup before DRIVER_OK, descriptors within the queue,
//! buffers inside live DMA regions (from [`VirtioModel::dma`]), the net header.
//!
//! A device is processed synchronously: a doorbell write runs the queue before it returns.
//! A device sleeps until notified, as a real one may: buffers the driver makes available
//! without ringing the doorbell are not seen, unless the device suppressed notifications
//! ([`VirtioModel::set_no_notify`]), in which case it polls them on
//! [`VirtioModel::poll`] and whenever it runs.
//!
//! **Soundness.** A driver opened with [`VirtioModel::virtio`] owns its device: the model
//! writes only into buffers that driver made available. Raw access to the registers
//! ([`VirtioNet::registers`]) is `unsafe`, because through it the model can be pointed at any
//! live DMA memory, including packets safe code holds as `&mut [u8]`.
//!
//! ```
//! use ixy::model::{VirtioModel, VirtioOptions};
//! use ixy::{DeviceConfig, IxyDevice};
//!
//! let model = VirtioModel::new();
//! let net = model.add_device(&VirtioOptions::modern());
//! let dev = model.virtio(&net, &DeviceConfig::new("model")).unwrap();
//! assert_eq!(dev.mac_addr(), VirtioOptions::modern().mac);
//! assert!(model.virtio(&net, &DeviceConfig::new("model")).is_err(), "one driver at a time");
//! ```
//!
//! Safe code cannot reach the registers:
//!
//! ```compile_fail,E0133
//! let model = ixy::model::VirtioModel::new();
//! let net = model.add_device(&ixy::model::VirtioOptions::legacy());
//! let regs = net.registers(0); // unsafe fn
//! ```
//!
//! ## Excluding the model from instruction counts (callgrind)
//!
//! The driver reaches the model only through `<ixy::model::virtio::VirtioRegisters as
//! ixy::virtio::transport::VirtioBar>::{read,write}` (`#[inline(never)]`) and the DMA
//! allocator (see the [`model`](super) docs for the toggle pattern and its pitfalls).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use super::dma::Regions;
use super::lock;
use super::{ModelDma, Peer, Source, WireStats};
use crate::virtio::VirtioDevice;
use crate::virtio::transport::VirtioBar;
use crate::virtio::virtqueue::Layout;
use crate::{DeviceConfig, Result};

/// Fails the test: the driver broke a rule of the virtio specification.
macro_rules! violated {
    ($dev:expr, $rule:expr, $($detail:tt)*) => {
        panic!(
            "virtio model: rule violated: {} (device {}: {})",
            $rule,
            $dev,
            format_args!($($detail)*)
        )
    };
}

/// The rules, by name (the text after `virtio model: rule violated: `).
pub mod rule {
    /// 3.1.1: ACKNOWLEDGE, DRIVER, (modern) FEATURES_OK, DRIVER_OK, each adding bits.
    pub const STATUS_ORDER: &str =
        "device status written out of the order of 3.1.1 or clearing bits without a reset";
    /// 3.1.1: features are negotiated between DRIVER and FEATURES_OK (legacy: DRIVER_OK).
    pub const FEATURES_LATE: &str =
        "driver features written outside DRIVER..FEATURES_OK (legacy: DRIVER_OK)";
    /// 2.2.1: the driver must not accept a feature the device did not offer.
    pub const FEATURE_NOT_OFFERED: &str = "driver accepted a feature the device did not offer";
    /// 5.1.3.1: CTRL_RX, MQ and CTRL_MAC_ADDR require CTRL_VQ.
    pub const FEATURE_DEPENDENCY: &str =
        "driver accepted a feature without the one it depends on (5.1.3.1)";
    /// 3.1.1 step 7: queues are set up after feature negotiation and before DRIVER_OK.
    pub const QUEUE_SETUP_ORDER: &str =
        "virtqueue set up before features were negotiated or after DRIVER_OK";
    /// A queue the device does not have.
    pub const QUEUE_MISSING: &str = "virtqueue that does not exist set up or notified";
    /// 2.6: a power of two, at most the device's maximum.
    pub const QUEUE_SIZE: &str = "queue size not a power of two or above the device's maximum";
    /// 2.6: descriptors 16-byte, available ring 2-byte, used ring 4-byte aligned.
    pub const RING_ALIGN: &str = "virtqueue part not aligned as 2.6 requires";
    /// Every ring and buffer must lie in memory from the model's allocator.
    pub const DMA_OUTSIDE: &str = "DMA outside the live regions from VirtioModel::dma()";
    /// 3.1.1: the driver must not notify the device before DRIVER_OK.
    pub const NOTIFY_EARLY: &str = "queue notified before DRIVER_OK";
    /// 4.1.4.4 / 4.1.4.8: the doorbell takes the index of its queue.
    pub const NOTIFY_VALUE: &str = "doorbell written with another queue's index";
    /// 2.6.5 / 2.6.6: descriptor indices are below the queue size.
    pub const DESC_INDEX: &str = "descriptor index beyond the queue size";
    /// 2.6.5.1: a chain is at most as long as the queue (else it loops).
    pub const CHAIN_LOOP: &str = "descriptor chain longer than the queue";
    /// 2.6.6: the driver cannot make more buffers available than the queue holds.
    pub const AVAIL_AHEAD: &str = "available index more than the queue size ahead of the device";
    /// 2.6.5.1 / 5.1.6: rx buffers are device-writable, tx and command buffers readable.
    pub const WRITE_FLAG: &str =
        "rx buffer not device-writable, or tx/command buffer device-writable";
    /// 5.1.6.3.1: without MRG_RXBUF or GUEST offloads, rx buffers hold header + 1514 bytes.
    pub const RX_BUFFER_SMALL: &str = "receive buffer smaller than the net header plus 1514 bytes";
    /// 5.1.6.2: without offloads the transmit header is all zero (flags 0, GSO_NONE).
    pub const NET_HDR: &str =
        "transmit buffer without the all-zero virtio_net_hdr of the negotiated length";
    /// 5.1.4.2: a modern driver must not write the device configuration.
    pub const CONFIG_WRITE: &str = "device configuration written through the modern interface";
    /// 5.1.6.5: header (class, command), data, one writable ack byte.
    pub const CTRL_FORMAT: &str = "malformed control command";
    /// 5.1.6.5.1 and following: commands only for negotiated features.
    pub const CTRL_FEATURE: &str = "control command of a feature the driver did not negotiate";
    /// The registers the transport defines, at their widths.
    pub const BAD_ACCESS: &str = "register access outside the defined registers";
}

/// Feature bits (virtio 1.1, 5.1.3 and 6): the driver's names for them.
pub use crate::virtio::feature;

/// Device status bits (2.1).
mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const FAILED: u8 = 128;
}

/// Ring flags (2.6.5, 2.6.7, 2.6.8).
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const AVAIL_F_NO_INTERRUPT: u16 = 1;
const USED_F_NO_NOTIFY: u16 = 1;

/// Control classes and commands (5.1.6.5).
const CTRL_RX: u8 = 0;
const CTRL_RX_PROMISC: u8 = 0;
const CTRL_RX_ALLMULTI: u8 = 1;
const CTRL_MAC: u8 = 1;
const CTRL_MAC_ADDR_SET: u8 = 1;
const CTRL_MQ: u8 = 4;
const CTRL_MQ_VQ_PAIRS_SET: u8 = 0;
const CTRL_OK: u8 = 0;
const CTRL_ERR: u8 = 1;

/// Largest frame without offloads (5.1.6.3.1: 1514 bytes behind the header).
const MAX_FRAME: usize = 1514;

/// The modern layout of BAR 4: where each structure lives (as QEMU lays them out).
mod bar4 {
    pub const COMMON: usize = 0x0000;
    pub const ISR: usize = 0x1000;
    pub const DEVICE: usize = 0x2000;
    pub const NOTIFY: usize = 0x3000;
    pub const STRUCT_LEN: usize = 0x1000;
    pub const NOTIFY_MULTIPLIER: usize = 4;
    pub const SIZE: usize = 0x4000;
}

/// Legacy I/O BAR 0: registers (4.1.4.8), then the device config (no MSI-X in the model).
const LEGACY_CONFIG: usize = 0x14;
const LEGACY_SIZE: usize = 0x20;

/// What a test lets a modelled function be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioOptions {
    /// The modern interface (`1af4:1041`) instead of the legacy one (`1af4:1000`).
    pub modern: bool,
    /// The feature bits the device offers.
    pub features: u64,
    /// Maximum (legacy: the) size of each queue.
    pub queue_size: u16,
    /// `max_virtqueue_pairs` (with MQ offered).
    pub max_pairs: u16,
    /// The MAC address in the device config.
    pub mac: [u8; 6],
    /// The device does not accept FEATURES_OK whatever the driver chose.
    pub refuse_features: bool,
}

impl VirtioOptions {
    /// A legacy function offering what QEMU offers on a hub netdev: MAC, STATUS, the
    /// control queue with RX and MAC_ADDR, ANY_LAYOUT; 256-entry queues.
    pub fn legacy() -> Self {
        VirtioOptions {
            modern: false,
            features: feature::MAC
                | feature::STATUS
                | feature::CTRL_VQ
                | feature::CTRL_RX
                | feature::CTRL_MAC_ADDR
                | feature::ANY_LAYOUT,
            queue_size: 256,
            max_pairs: 1,
            mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            refuse_features: false,
        }
    }

    /// A modern function: the legacy offer without ANY_LAYOUT, with VERSION_1.
    pub fn modern() -> Self {
        let legacy = Self::legacy();
        VirtioOptions {
            modern: true,
            features: legacy.features & !feature::ANY_LAYOUT | feature::VERSION_1,
            ..legacy
        }
    }
}

/// Something a hostile device does on the next used-ring write of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioFault {
    /// Returns a descriptor id the driver never handed out (beyond the queue).
    UnknownId,
    /// Reports 100 bytes more than the buffer (chain) holds.
    TooLong,
    /// Moves the used index by more than the queue size.
    IndexJump,
    /// Moves the used index backwards by 3 after the write.
    IndexBackwards,
}

#[derive(Debug, Default, Clone, Copy)]
struct Queue {
    /// 0: not set up.
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    enabled: bool,
    next_avail: u16,
    used_idx: u16,
    /// Available index seen at the last doorbell: what a sleeping device knows of.
    kicked: u16,
    no_notify: bool,
    notifications: u64,
    interrupts: u64,
    fault: Option<VirtioFault>,
}

/// One modelled function.
struct Net {
    index: usize,
    opts: VirtioOptions,
    status: u8,
    status_log: Vec<u8>,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    queue_select: u16,
    queues: Vec<Queue>,
    mac: [u8; 6],
    promisc: bool,
    allmulti: bool,
    link_up: bool,
    pairs: u16,
    ctrl_unanswered: bool,
    claimed: bool,
    peer: Peer,
    /// The traffic source feeding queue pair 0.
    source: Option<Source>,
    capture: bool,
    captured: Vec<Vec<u8>>,
    wire: WireStats,
}

impl Net {
    fn new(index: usize, opts: &VirtioOptions) -> Net {
        let queues =
            2 * opts.max_pairs as usize + usize::from(opts.features & feature::CTRL_VQ != 0);
        let mut n = Net {
            index,
            opts: opts.clone(),
            status: 0,
            status_log: Vec::new(),
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            queue_select: 0,
            queues: vec![Queue::default(); queues],
            mac: opts.mac,
            promisc: true,
            allmulti: false,
            link_up: true,
            pairs: 1,
            ctrl_unanswered: false,
            claimed: false,
            peer: Peer::Sink,
            source: None,
            capture: false,
            captured: Vec::new(),
            wire: WireStats::default(),
        };
        n.reset();
        n
    }

    /// Device reset (status 0): queues, features and filter back to their initial state
    /// (QEMU starts promiscuous).
    fn reset(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        self.queues.iter_mut().for_each(|q| {
            *q = Queue {
                no_notify: q.no_notify,
                notifications: q.notifications,
                interrupts: q.interrupts,
                ..Queue::default()
            }
        });
        self.mac = self.opts.mac;
        self.promisc = true;
        self.allmulti = false;
        self.pairs = 1;
    }

    fn has(&self, f: u64) -> bool {
        self.driver_features & f != 0
    }

    fn hdr_len(&self) -> usize {
        if self.has(feature::VERSION_1) { 12 } else { 10 }
    }

    fn ctrl_index(&self) -> Option<usize> {
        if self.opts.features & feature::CTRL_VQ == 0 {
            return None;
        }
        Some(if self.has(feature::MQ) {
            2 * self.opts.max_pairs as usize
        } else {
            2
        })
    }

    fn ready(&self) -> bool {
        self.status & status::DRIVER_OK != 0 && self.status & status::FAILED == 0
    }

    fn accepts(&self, frame: &[u8]) -> bool {
        let Some(dst) = frame.get(..6) else {
            return false;
        };
        if frame.len() > MAX_FRAME {
            return false;
        }
        self.promisc || dst == self.mac || dst == [0xff; 6] || (dst[0] & 1 == 1 && self.allmulti)
    }

    fn write_status(&mut self, s: u8) {
        self.status_log.push(s);
        if s == 0 {
            self.reset();
            return;
        }
        let old = self.status;
        let added = s & !old;
        let order_ok = old & !s == 0
            && (s & status::DRIVER == 0 || s & status::ACKNOWLEDGE != 0)
            && (s & status::FEATURES_OK == 0 || s & status::DRIVER != 0)
            && (added & status::FEATURES_OK == 0 || self.opts.modern)
            && (s & status::DRIVER_OK == 0
                || s & status::DRIVER != 0 && (!self.opts.modern || s & status::FEATURES_OK != 0));
        if !order_ok && added != status::FAILED {
            violated!(self.index, rule::STATUS_ORDER, "status {old:#x} -> {s:#x}");
        }
        let mut s = s;
        if added & status::FEATURES_OK != 0 && !self.features_acceptable() {
            s &= !status::FEATURES_OK;
        }
        self.status = s;
    }

    /// Whether the device accepts the driver's features at FEATURES_OK (modern).
    fn features_acceptable(&self) -> bool {
        !self.opts.refuse_features && self.has(feature::VERSION_1)
    }

    fn write_features(&mut self, half: u32, value: u32) {
        let late = if self.opts.modern {
            status::FEATURES_OK | status::DRIVER_OK
        } else {
            status::DRIVER_OK
        };
        if self.status & status::DRIVER == 0 || self.status & late != 0 {
            violated!(self.index, rule::FEATURES_LATE, "status {:#x}", self.status);
        }
        let shift = 32 * half;
        let f = self.driver_features & !(0xffff_ffffu64 << shift) | (value as u64) << shift;
        if f & !self.opts.features != 0 {
            violated!(
                self.index,
                rule::FEATURE_NOT_OFFERED,
                "accepted {f:#x}, offered {:#x}",
                self.opts.features
            );
        }
        let needs_ctrl = feature::CTRL_RX | feature::MQ | feature::CTRL_MAC_ADDR;
        if f & needs_ctrl != 0 && f & feature::CTRL_VQ == 0 {
            violated!(self.index, rule::FEATURE_DEPENDENCY, "features {f:#x}");
        }
        self.driver_features = f;
    }

    fn device_features(&self) -> u32 {
        match self.device_feature_select {
            0 => self.opts.features as u32,
            1 if self.opts.modern => (self.opts.features >> 32) as u32,
            _ => 0,
        }
    }

    /// The device-specific configuration (5.1.4): mac, status, max_virtqueue_pairs.
    fn config(&self, offset: usize, width: usize) -> u32 {
        let mut c = [0u8; 10];
        c[..6].copy_from_slice(&self.mac);
        c[6..8].copy_from_slice(&u16::from(self.link_up).to_le_bytes());
        c[8..10].copy_from_slice(&self.opts.max_pairs.to_le_bytes());
        let mut v = [0u8; 4];
        for (i, b) in v.iter_mut().enumerate().take(width) {
            *b = c.get(offset + i).copied().unwrap_or(0);
        }
        u32::from_le_bytes(v)
    }

    fn selected(&mut self) -> &mut Queue {
        let (i, q) = (self.index, self.queue_select as usize);
        match self.queues.get_mut(q) {
            Some(queue) => queue,
            None => violated!(i, rule::QUEUE_MISSING, "queue {q} selected and configured"),
        }
    }

    /// Checks that a queue may be set up now (3.1.1 step 7).
    fn check_setup_window(&self) {
        let needed = if self.opts.modern {
            status::FEATURES_OK
        } else {
            status::DRIVER
        };
        if self.status & needed == 0 || self.status & status::DRIVER_OK != 0 {
            violated!(
                self.index,
                rule::QUEUE_SETUP_ORDER,
                "queue {} with status {:#x}",
                self.queue_select,
                self.status
            );
        }
    }
}

/// The shared state behind all handles.
pub(crate) struct VirtioInner {
    nets: Vec<Net>,
    regions: Arc<Mutex<Regions>>,
    /// Scratch for one descriptor chain: (address, length, flags).
    chain: Vec<(u64, u32, u16)>,
    /// Scratch for one frame.
    frame: Vec<u8>,
}

/// Fails the test unless `[addr, addr + len)` lies in live memory from the model's DMA.
fn check_dma(regions: &mut Regions, dev: usize, addr: u64, len: u64, what: &str) {
    if !regions.contains(addr, len) {
        violated!(
            dev,
            rule::DMA_OUTSIDE,
            "{what} at {addr:#x}, {len} bytes, is not inside a live region from VirtioModel::dma()"
        );
    }
}

/// Reads `N` bytes of guest memory.
///
/// # Safety
/// `[addr, addr + N)` must lie in live memory from the model's allocator (checked with
/// [`check_dma`]); the model is single-threaded and the driver holds no reference into
/// memory it gave the device, like with a real device.
unsafe fn read_mem<const N: usize>(addr: u64) -> [u8; N] {
    // SAFETY: per the function's contract; byte-wise, so any alignment.
    unsafe { std::ptr::read_volatile(addr as *const [u8; N]) }
}

/// Writes bytes into guest memory.
///
/// # Safety
/// As for [`read_mem`], for `[addr, addr + data.len())`.
unsafe fn write_mem(addr: u64, data: &[u8]) {
    // SAFETY: per the function's contract; `data` is model memory, never guest memory.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) }
}

impl VirtioInner {
    fn read16(&self, dev: usize, addr: u64, what: &str) -> u16 {
        check_dma(&mut lock(&self.regions), dev, addr, 2, what);
        // SAFETY: checked just above.
        u16::from_le_bytes(unsafe { read_mem::<2>(addr) })
    }

    fn write_bytes(&self, dev: usize, addr: u64, data: &[u8], what: &str) {
        check_dma(&mut lock(&self.regions), dev, addr, data.len() as u64, what);
        // SAFETY: checked just above.
        unsafe { write_mem(addr, data) }
    }

    /// Checks a queue's rings: aligned (2.6) and in live memory.
    fn check_rings(&self, d: usize, q: usize) {
        let vq = self.nets[d].queues[q];
        let n = vq.size as u64;
        if !vq.desc.is_multiple_of(16) || !vq.avail.is_multiple_of(2) || !vq.used.is_multiple_of(4)
        {
            violated!(
                d,
                rule::RING_ALIGN,
                "queue {q}: desc {:#x}, avail {:#x}, used {:#x}",
                vq.desc,
                vq.avail,
                vq.used
            );
        }
        let mut regions = lock(&self.regions);
        check_dma(&mut regions, d, vq.desc, 16 * n, "descriptor table");
        check_dma(&mut regions, d, vq.avail, 6 + 2 * n, "available ring");
        check_dma(&mut regions, d, vq.used, 6 + 8 * n, "used ring");
    }

    /// The available index the device knows of on queue `q`.
    fn avail_known(&self, d: usize, q: usize) -> u16 {
        let vq = self.nets[d].queues[q];
        let idx = if vq.no_notify {
            self.read16(d, vq.avail + 2, "available index")
        } else {
            vq.kicked
        };
        if idx.wrapping_sub(vq.next_avail) > vq.size {
            violated!(
                d,
                rule::AVAIL_AHEAD,
                "queue {q}: available index {idx}, device at {}, size {}",
                vq.next_avail,
                vq.size
            );
        }
        idx
    }

    /// Takes the next available chain of queue `q` into `self.chain`; returns its head.
    fn take_chain(&mut self, d: usize, q: usize, limit: u16) -> Option<u16> {
        let vq = self.nets[d].queues[q];
        if !vq.enabled || vq.next_avail == limit {
            return None;
        }
        let slot = vq.avail + 4 + 2 * (vq.next_avail % vq.size) as u64;
        let head = self.read16(d, slot, "available ring");
        self.nets[d].queues[q].next_avail = vq.next_avail.wrapping_add(1);
        self.chain.clear();
        let mut id = head;
        loop {
            if id >= vq.size {
                violated!(
                    d,
                    rule::DESC_INDEX,
                    "queue {q}: descriptor {id} of {}",
                    vq.size
                );
            }
            if self.chain.len() >= vq.size as usize {
                violated!(d, rule::CHAIN_LOOP, "queue {q}: chain from {head}");
            }
            let at = vq.desc + 16 * id as u64;
            check_dma(&mut lock(&self.regions), d, at, 16, "descriptor");
            // SAFETY: checked just above.
            let raw = unsafe { read_mem::<16>(at) };
            let addr = u64::from_le_bytes(raw[..8].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(raw[8..12].try_into().unwrap_or_default());
            let flags = u16::from_le_bytes([raw[12], raw[13]]);
            let next = u16::from_le_bytes([raw[14], raw[15]]);
            check_dma(&mut lock(&self.regions), d, addr, len as u64, "buffer");
            self.chain.push((addr, len, flags));
            if flags & DESC_F_NEXT == 0 {
                return Some(head);
            }
            id = next;
        }
    }

    /// Writes used element (`id`, `len`) on queue `q`, with a pending fault applied.
    fn put_used(&mut self, d: usize, q: usize, id: u16, len: u32) {
        let vq = self.nets[d].queues[q];
        let fault = self.nets[d].queues[q].fault.take();
        let (id, len) = match fault {
            Some(VirtioFault::UnknownId) => (vq.size as u32 + 7, len),
            Some(VirtioFault::TooLong) => {
                (id as u32, self.chain.iter().map(|c| c.1).sum::<u32>() + 100)
            }
            _ => (id as u32, len),
        };
        let elem = vq.used + 4 + 8 * (vq.used_idx % vq.size) as u64;
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&id.to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        self.write_bytes(d, elem, &e, "used ring");
        let mut idx = vq.used_idx.wrapping_add(1);
        match fault {
            Some(VirtioFault::IndexJump) => idx = idx.wrapping_add(vq.size + 1),
            Some(VirtioFault::IndexBackwards) => idx = idx.wrapping_sub(3),
            _ => {}
        }
        // The element before the index (2.6.8.2).
        self.write_bytes(d, vq.used + 2, &idx.to_le_bytes(), "used index");
        let queue = &mut self.nets[d].queues[q];
        queue.used_idx = idx;
        let flags = self.read16(d, vq.avail, "available flags");
        if flags & AVAIL_F_NO_INTERRUPT == 0 {
            self.nets[d].queues[q].interrupts += 1;
        }
    }

    /// Copies the current chain's device-readable bytes into `self.frame`.
    fn gather(&mut self, d: usize, q: usize) {
        self.frame.clear();
        for &(addr, len, flags) in &self.chain {
            if flags & DESC_F_WRITE != 0 {
                violated!(
                    d,
                    rule::WRITE_FLAG,
                    "queue {q}: writable buffer at {addr:#x}"
                );
            }
            // SAFETY: take_chain checked every buffer of the chain.
            let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) };
            self.frame.extend_from_slice(bytes);
        }
    }

    /// The device runs queue `q` of device `d` (after a doorbell or when polling).
    fn run_queue(&mut self, d: usize, q: usize) {
        if !self.nets[d].ready() || !self.nets[d].queues[q].enabled {
            return;
        }
        self.check_rings(d, q);
        if Some(q) == self.nets[d].ctrl_index() {
            self.run_ctrl(d, q);
        } else if q % 2 == 1 {
            self.transmit(d, q);
        } else {
            self.run_source(d, q / 2);
        }
    }

    fn transmit(&mut self, d: usize, q: usize) {
        let limit = self.avail_known(d, q);
        let hdr = self.nets[d].hdr_len();
        while let Some(head) = self.take_chain(d, q, limit) {
            self.gather(d, q);
            if self.frame.len() < hdr || self.frame[..hdr].iter().any(|&b| b != 0) {
                violated!(
                    d,
                    rule::NET_HDR,
                    "queue {q}: {hdr}-byte header expected, buffer starts {:02x?}",
                    &self.frame[..self.frame.len().min(hdr)]
                );
            }
            self.put_used(d, q, head, 0);
            let frame = std::mem::take(&mut self.frame);
            self.send(d, &frame[hdr..]);
            self.frame = frame;
        }
    }

    /// A frame leaves device `d`: onto its wire (peer or sink), captured if asked.
    fn send(&mut self, d: usize, frame: &[u8]) {
        let net = &mut self.nets[d];
        net.wire.tx_frames += 1;
        net.wire.tx_bytes += frame.len() as u64;
        if net.capture {
            net.captured.push(frame.to_vec());
        }
        if let Peer::Port(p) = net.peer {
            self.receive(p, 0, frame);
        }
    }

    /// A frame arrives at device `d` for queue pair `pair`: filtered, then written into the
    /// next receive buffer. Returns whether it was delivered.
    fn receive(&mut self, d: usize, pair: usize, frame: &[u8]) -> bool {
        let q = 2 * pair;
        let net = &self.nets[d];
        if !net.ready() || !net.accepts(frame) || pair >= net.pairs as usize {
            self.nets[d].wire.rx_dropped += 1;
            return false;
        }
        let limit = self.avail_known(d, q);
        let Some(head) = self.take_chain(d, q, limit) else {
            self.nets[d].wire.rx_dropped += 1;
            return false;
        };
        let hdr_len = self.nets[d].hdr_len();
        let total: u64 = self.chain.iter().map(|c| c.1 as u64).sum();
        if total < (hdr_len + MAX_FRAME) as u64 {
            violated!(d, rule::RX_BUFFER_SMALL, "queue {q}: {total} bytes");
        }
        // The header: no offloads, num_buffers 1 when present (5.1.6.4); then the frame,
        // scattered over the chain's buffers.
        let mut hdr = [0u8; 12];
        hdr[10] = 1;
        let total = hdr_len + frame.len();
        let mut done = 0;
        for i in 0..self.chain.len() {
            let (addr, len, flags) = self.chain[i];
            if flags & DESC_F_WRITE == 0 {
                violated!(
                    d,
                    rule::WRITE_FLAG,
                    "queue {q}: read-only rx buffer at {addr:#x}"
                );
            }
            let mut off = 0;
            while off < len as usize && done < total {
                let src = if done < hdr_len {
                    &hdr[done..hdr_len]
                } else {
                    &frame[done - hdr_len..]
                };
                let n = src.len().min(len as usize - off);
                self.write_bytes(d, addr + off as u64, &src[..n], "rx buffer");
                (off, done) = (off + n, done + n);
            }
        }
        self.put_used(d, q, head, (hdr_len + frame.len()) as u32);
        let net = &mut self.nets[d];
        net.wire.rx_frames += 1;
        net.wire.rx_bytes += frame.len() as u64;
        true
    }

    /// True if receive queue `q` of device `d` has a buffer the device knows of.
    fn rx_buffer_known(&self, d: usize, q: usize) -> bool {
        let net = &self.nets[d];
        net.ready() && net.queues[q].enabled && self.avail_known(d, q) != net.queues[q].next_avail
    }

    /// Lets the source of device `d` (on queue pair 0) fill every buffer it can (a
    /// source waits for buffers: it never drops).
    fn run_source(&mut self, d: usize, pair: usize) {
        if pair != 0 {
            return;
        }
        let Some(mut source) = self.nets[d].source.take() else {
            return;
        };
        let mut remaining = source.remaining.unwrap_or(u64::MAX);
        while remaining > 0
            && self.nets[d].accepts(&source.template)
            && self.rx_buffer_known(d, 0)
            && self.receive(d, 0, &source.template)
        {
            remaining -= 1;
        }
        if let Some(r) = source.remaining.as_mut() {
            *r = remaining;
        }
        self.nets[d].source = Some(source);
    }

    fn run_ctrl(&mut self, d: usize, q: usize) {
        if self.nets[d].ctrl_unanswered {
            return;
        }
        let limit = self.avail_known(d, q);
        while let Some(head) = self.take_chain(d, q, limit) {
            let n = self.chain.len();
            let (ack_addr, ack_len, ack_flags) = self.chain[n - 1];
            if n < 2 || ack_len < 1 || ack_flags & DESC_F_WRITE == 0 || self.chain[0].1 < 2 {
                violated!(d, rule::CTRL_FORMAT, "chain of {n} descriptors");
            }
            self.chain.truncate(n - 1);
            self.gather(d, q);
            let ack = self.ctrl_command(d);
            self.write_bytes(d, ack_addr, &[ack], "control ack");
            self.put_used(d, q, head, 1);
        }
    }

    /// Executes the command in `self.frame` (class, command, data); returns the ack.
    fn ctrl_command(&mut self, d: usize) -> u8 {
        let net = &mut self.nets[d];
        let (class, cmd, data) = (self.frame[0], self.frame[1], &self.frame[2..]);
        let needs = match class {
            CTRL_RX => feature::CTRL_RX,
            CTRL_MAC => feature::CTRL_MAC_ADDR,
            CTRL_MQ => feature::MQ,
            _ => 0,
        };
        if needs != 0 && !net.has(needs) {
            violated!(d, rule::CTRL_FEATURE, "class {class} command {cmd}");
        }
        match (class, cmd, data.len()) {
            (CTRL_RX, CTRL_RX_PROMISC, 1) => net.promisc = data[0] != 0,
            (CTRL_RX, CTRL_RX_ALLMULTI, 1) => net.allmulti = data[0] != 0,
            (CTRL_MAC, CTRL_MAC_ADDR_SET, 6) => net.mac.copy_from_slice(data),
            (CTRL_MQ, CTRL_MQ_VQ_PAIRS_SET, 2) => {
                let pairs = u16::from_le_bytes([data[0], data[1]]);
                if pairs == 0 || pairs > net.opts.max_pairs {
                    return CTRL_ERR;
                }
                net.pairs = pairs;
            }
            _ => return CTRL_ERR,
        }
        CTRL_OK
    }

    /// The driver rang queue `q`'s doorbell.
    fn notify(&mut self, d: usize, q: usize) {
        let net = &self.nets[d];
        if q >= net.queues.len() {
            violated!(d, rule::QUEUE_MISSING, "doorbell of queue {q}");
        }
        if net.status & status::DRIVER_OK == 0 {
            violated!(d, rule::NOTIFY_EARLY, "queue {q}, status {:#x}", net.status);
        }
        let vq = net.queues[q];
        self.nets[d].queues[q].notifications += 1;
        if vq.enabled {
            let idx = self.read16(d, vq.avail + 2, "available index");
            self.nets[d].queues[q].kicked = idx;
        }
        self.run_queue(d, q);
    }

    /// Enables queue `q` of device `d` (modern queue_enable, legacy queue address).
    fn enable_queue(&mut self, d: usize, q: usize) {
        self.nets[d].check_setup_window();
        self.check_rings(d, q);
        let used = self.nets[d].queues[q].used;
        let no_notify = self.nets[d].queues[q].no_notify;
        self.nets[d].queues[q].enabled = true;
        let flags = if no_notify { USED_F_NO_NOTIFY } else { 0 };
        self.write_bytes(d, used, &flags.to_le_bytes(), "used flags");
    }

    fn read(&mut self, d: usize, bar: u8, offset: usize, width: usize) -> u32 {
        let net = &mut self.nets[d];
        match (net.opts.modern, bar, offset) {
            (false, 0, o) => self.legacy_read(d, o, width),
            (true, 4, o) if o < bar4::ISR => self.common_read(d, o, width),
            (true, 4, bar4::ISR) => 0,
            (true, 4, o) if (bar4::DEVICE..bar4::NOTIFY).contains(&o) => {
                net.config(o - bar4::DEVICE, width)
            }
            _ => violated!(d, rule::BAD_ACCESS, "read BAR{bar} {offset:#x}/{width}"),
        }
    }

    fn legacy_read(&mut self, d: usize, offset: usize, width: usize) -> u32 {
        let net = &mut self.nets[d];
        match (offset, width) {
            (0x00, 4) => net.device_features(),
            (0x04, 4) => net.driver_features as u32,
            (0x08, 4) => (net.selected().desc >> 12) as u32,
            (0x0c, 2) => match net.queues.get(net.queue_select as usize) {
                Some(_) => net.opts.queue_size as u32,
                None => 0,
            },
            (0x0e, 2) => net.queue_select as u32,
            (0x12, 1) => net.status as u32,
            (0x13, 1) => 0,
            (o, w) if (LEGACY_CONFIG..LEGACY_SIZE).contains(&o) && o + w <= LEGACY_SIZE => {
                net.config(o - LEGACY_CONFIG, w)
            }
            _ => violated!(d, rule::BAD_ACCESS, "legacy read {offset:#x}/{width}"),
        }
    }

    fn common_read(&mut self, d: usize, offset: usize, width: usize) -> u32 {
        let net = &mut self.nets[d];
        let exists = (net.queue_select as usize) < net.queues.len();
        match (offset, width) {
            (0x00, 4) => net.device_feature_select,
            (0x04, 4) => net.device_features(),
            (0x08, 4) => net.driver_feature_select,
            (0x0c, 4) => (net.driver_features >> (32 * net.driver_feature_select.min(1))) as u32,
            (0x10, 2) | (0x1a, 2) => 0xffff, // no MSI-X vectors in the model
            (0x12, 2) => net.queues.len() as u32,
            (0x14, 1) => net.status as u32,
            (0x15, 1) => 0,
            (0x16, 2) => net.queue_select as u32,
            (0x18, 2) if exists => match net.selected().size {
                0 => net.opts.queue_size as u32,
                s => s as u32,
            },
            (0x18, 2) => 0,
            (0x1c, 2) => net.selected().enabled as u32,
            (0x1e, 2) => net.queue_select as u32,
            _ => violated!(
                d,
                rule::BAD_ACCESS,
                "common config read {offset:#x}/{width}"
            ),
        }
    }

    fn write(&mut self, d: usize, bar: u8, offset: usize, width: usize, value: u32) {
        match (self.nets[d].opts.modern, bar, offset) {
            (false, 0, o) => self.legacy_write(d, o, width, value),
            (true, 4, o) if o < bar4::ISR => self.common_write(d, o, width, value),
            (true, 4, o) if (bar4::DEVICE..bar4::NOTIFY).contains(&o) => {
                violated!(d, rule::CONFIG_WRITE, "offset {:#x}", o - bar4::DEVICE)
            }
            (true, 4, o) if (bar4::NOTIFY..bar4::SIZE).contains(&o) && width == 2 => {
                let q = (o - bar4::NOTIFY) / bar4::NOTIFY_MULTIPLIER;
                if value as usize != q {
                    violated!(d, rule::NOTIFY_VALUE, "doorbell of queue {q} got {value}");
                }
                self.notify(d, q);
            }
            _ => violated!(d, rule::BAD_ACCESS, "write BAR{bar} {offset:#x}/{width}"),
        }
    }

    fn legacy_write(&mut self, d: usize, offset: usize, width: usize, value: u32) {
        let net = &mut self.nets[d];
        match (offset, width) {
            (0x04, 4) => net.write_features(0, value),
            (0x08, 4) => {
                let size = net.opts.queue_size;
                let vq = net.selected();
                if value == 0 {
                    *vq = Queue::default();
                    return;
                }
                let layout = Layout::legacy(size);
                let desc = (value as u64) << 12;
                (vq.size, vq.desc) = (size, desc);
                vq.avail = desc + layout.avail as u64;
                vq.used = desc + layout.used as u64;
                let q = net.queue_select as usize;
                self.enable_queue(d, q);
            }
            (0x0e, 2) => net.queue_select = value as u16,
            (0x10, 2) => self.notify(d, value as usize),
            (0x12, 1) => net.write_status(value as u8),
            (o, 1) if (LEGACY_CONFIG..LEGACY_CONFIG + 6).contains(&o) => {
                net.mac[o - LEGACY_CONFIG] = value as u8
            }
            _ => violated!(d, rule::BAD_ACCESS, "legacy write {offset:#x}/{width}"),
        }
    }

    fn common_write(&mut self, d: usize, offset: usize, width: usize, value: u32) {
        let net = &mut self.nets[d];
        let set_addr = |q: &mut Queue, which: usize, hi: bool| {
            let field = match which {
                0 => &mut q.desc,
                1 => &mut q.avail,
                _ => &mut q.used,
            };
            let shift = if hi { 32 } else { 0 };
            *field = *field & !(0xffff_ffffu64 << shift) | (value as u64) << shift;
        };
        match (offset, width) {
            (0x00, 4) => net.device_feature_select = value,
            (0x08, 4) => net.driver_feature_select = value,
            (0x0c, 4) if net.driver_feature_select < 2 => {
                net.write_features(net.driver_feature_select, value)
            }
            (0x0c, 4) if value == 0 => {}
            (0x10, 2) | (0x1a, 2) => {}
            (0x14, 1) => net.write_status(value as u8),
            (0x16, 2) => net.queue_select = value as u16,
            (0x18, 2) => {
                net.check_setup_window();
                let max = net.opts.queue_size;
                let (i, q) = (net.index, net.queue_select);
                if !(value as u16).is_power_of_two() || value as u16 > max {
                    violated!(
                        i,
                        rule::QUEUE_SIZE,
                        "queue {q}: size {value}, maximum {max}"
                    );
                }
                net.selected().size = value as u16;
            }
            (0x1c, 2) if value == 1 => {
                let q = net.queue_select as usize;
                if net.selected().size == 0 {
                    net.selected().size = net.opts.queue_size;
                }
                self.enable_queue(d, q);
            }
            (o @ 0x20..=0x37, 4) => {
                net.check_setup_window();
                set_addr(net.selected(), (o - 0x20) / 8, o % 8 == 4);
            }
            _ => violated!(
                d,
                rule::BAD_ACCESS,
                "common config write {offset:#x}/{width}"
            ),
        }
    }

    /// The config space image (256 bytes): ids, BARs, and for a modern function the
    /// capability list with the four virtio structures in BAR 4 (4.1.4).
    fn config_space(&self, d: usize) -> Vec<u8> {
        let modern = self.nets[d].opts.modern;
        let mut c = vec![0u8; 256];
        c[0..2].copy_from_slice(&0x1af4u16.to_le_bytes());
        let device: u16 = if modern { 0x1041 } else { 0x1000 };
        c[2..4].copy_from_slice(&device.to_le_bytes());
        c[0x0b] = 0x02; // network controller
        if !modern {
            c[0x10] = 0x01; // BAR 0: I/O
            return c;
        }
        c[0x06] = 0x10; // capability list
        c[0x34] = 0x40;
        let caps: [(u8, usize, usize); 4] = [
            (1, bar4::COMMON, 0x38),
            (3, bar4::ISR, 1),
            (4, bar4::DEVICE, 10),
            (2, bar4::NOTIFY, bar4::STRUCT_LEN),
        ];
        for (i, (ty, offset, len)) in caps.into_iter().enumerate() {
            let at = 0x40 + 0x14 * i;
            let next = if i + 1 < caps.len() { at + 0x14 } else { 0 };
            c[at..at + 4].copy_from_slice(&[0x09, next as u8, 20, ty]);
            c[at + 4] = 4;
            c[at + 8..at + 12].copy_from_slice(&(offset as u32).to_le_bytes());
            c[at + 12..at + 16].copy_from_slice(&(len as u32).to_le_bytes());
            c[at + 16..at + 20].copy_from_slice(&(bar4::NOTIFY_MULTIPLIER as u32).to_le_bytes());
        }
        c
    }
}

/// A set of modelled virtio-net functions, the wires between them and the DMA memory
/// their drivers allocate. Clones share the model.
#[derive(Clone)]
pub struct VirtioModel {
    inner: Rc<RefCell<VirtioInner>>,
}

impl Default for VirtioModel {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for VirtioModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioModel")
            .field("devices", &self.inner.borrow().nets.len())
            .finish()
    }
}

/// One modelled function, as a test names it to the model. Holds no access to the
/// device's registers: opening a driver ([`VirtioModel::virtio`]) is the safe way in.
#[derive(Clone)]
pub struct VirtioNet {
    model: Rc<RefCell<VirtioInner>>,
    index: usize,
}

impl std::fmt::Debug for VirtioNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioNet")
            .field("index", &self.index)
            .finish()
    }
}

/// Raw access to one BAR of a modelled function: what the driver's transport uses.
/// Obtained only through the `unsafe` [`VirtioNet::registers`].
pub struct VirtioRegisters {
    model: Rc<RefCell<VirtioInner>>,
    index: usize,
    bar: u8,
    /// Held by the driver [`VirtioModel::virtio`] opened: frees the device when dropped.
    _claim: Option<Rc<Claim>>,
}

/// A driver's hold on a device: one live driver per device.
struct Claim {
    model: Rc<RefCell<VirtioInner>>,
    index: usize,
}

impl Drop for Claim {
    /// The driver is gone (its rings not yet freed): the device stops and is free again.
    fn drop(&mut self) {
        let net = &mut self.model.borrow_mut().nets[self.index];
        net.claimed = false;
        net.reset();
    }
}

impl VirtioBar for VirtioRegisters {
    #[inline(never)]
    fn read(&self, offset: usize, width: usize) -> Result<u32> {
        Ok(self
            .model
            .borrow_mut()
            .read(self.index, self.bar, offset, width))
    }

    #[inline(never)]
    fn write(&self, offset: usize, width: usize, value: u32) -> Result<()> {
        self.model
            .borrow_mut()
            .write(self.index, self.bar, offset, width, value);
        Ok(())
    }

    fn size(&self) -> usize {
        let modern = self.model.borrow().nets[self.index].opts.modern;
        match (modern, self.bar) {
            (false, 0) => LEGACY_SIZE,
            (true, 4) => bar4::SIZE,
            _ => 0,
        }
    }
}

impl VirtioNet {
    /// Index of this function in its model (0 for the first).
    pub fn index(&self) -> usize {
        self.index
    }

    /// [`VirtioModel::virtio`].
    fn open(&self, cfg: &DeviceConfig) -> Result<VirtioDevice> {
        let name = format!("virtio-model:{}", self.index);
        let (cfg_space, dma) = {
            let mut inner = self.model.borrow_mut();
            if inner.nets[self.index].claimed {
                return Err(crate::Error::device(
                    &name,
                    "a driver already drives this modelled device; drop it first",
                ));
            }
            inner.nets[self.index].claimed = true;
            (
                inner.config_space(self.index),
                ModelDma::low(Arc::clone(&inner.regions)),
            )
        };
        let claim = Rc::new(Claim {
            model: Rc::clone(&self.model),
            index: self.index,
        });
        let mut open = |bar: u8, _io: bool| -> Result<Rc<dyn VirtioBar>> {
            Ok(Rc::new(VirtioRegisters {
                model: Rc::clone(&self.model),
                index: self.index,
                bar,
                _claim: Some(Rc::clone(&claim)),
            }))
        };
        let transport =
            crate::virtio::transport::Transport::open(&name, &cfg_space, false, &mut open)?;
        drop(claim);
        VirtioDevice::with_transport(transport, &dma, cfg, None)
    }

    /// Raw access to BAR `bar` of this function (legacy: 0, modern: 4), for tests of the
    /// model's rules.
    ///
    /// # Safety
    /// Through the registers the model can be made to read and write any live memory from
    /// [`VirtioModel::dma`] (queue addresses, doorbells). The caller must not let it
    /// reach memory that Rust code holds a reference into — packets, rings or buffers of
    /// a driver — so: do not use it while a driver drives this function, and point queues
    /// only at memory no reference covers.
    pub unsafe fn registers(&self, bar: u8) -> VirtioRegisters {
        VirtioRegisters {
            model: Rc::clone(&self.model),
            index: self.index,
            bar,
            _claim: None,
        }
    }

    /// The function's config space image (256 bytes).
    pub fn config_space(&self) -> Vec<u8> {
        self.model.borrow().config_space(self.index)
    }
}

impl VirtioModel {
    /// A model with no functions.
    pub fn new() -> Self {
        VirtioModel {
            inner: Rc::new(RefCell::new(VirtioInner {
                nets: Vec::new(),
                regions: Arc::new(Mutex::new(Regions::default())),
                chain: Vec::new(),
                frame: Vec::new(),
            })),
        }
    }

    /// Opens the virtio driver on function `n`, as [`VirtioDevice::open`] does on a PCI
    /// device: the same transport selection, initialisation and packet path, with DMA
    /// memory from [`VirtioModel::dma`]. One driver per function at a time: a second
    /// open while the first driver lives is an [`Error::Device`](crate::Error::Device);
    /// when the driver drops, the function is reset and free again.
    pub fn virtio(&self, n: &VirtioNet, cfg: &DeviceConfig) -> Result<VirtioDevice> {
        self.check(n);
        n.open(cfg)
    }

    /// The allocator drivers of this model's functions take DMA memory from.
    pub fn dma(&self) -> ModelDma {
        ModelDma::low(Arc::clone(&self.inner.borrow().regions))
    }

    /// Adds a function (reset, link up) whose transmitted frames go to a sink.
    pub fn add_device(&self, opts: &VirtioOptions) -> VirtioNet {
        let mut inner = self.inner.borrow_mut();
        let index = inner.nets.len();
        inner.nets.push(Net::new(index, opts));
        VirtioNet {
            model: Rc::clone(&self.inner),
            index,
        }
    }

    fn check(&self, n: &VirtioNet) -> usize {
        assert!(
            Rc::ptr_eq(&self.inner, &n.model),
            "virtio model: device {} belongs to another model",
            n.index
        );
        n.index
    }

    fn with<T>(&self, n: &VirtioNet, f: impl FnOnce(&mut Net) -> T) -> T {
        let i = self.check(n);
        f(&mut self.inner.borrow_mut().nets[i])
    }

    /// Connects `a` and `b`: frames each transmits arrive at the other's receive queue 0.
    pub fn connect(&self, a: &VirtioNet, b: &VirtioNet) {
        let (ia, ib) = (self.check(a), self.check(b));
        let mut inner = self.inner.borrow_mut();
        inner.nets[ia].peer = Peer::Port(ib);
        inner.nets[ib].peer = Peer::Port(ia);
    }

    /// Frames `n` transmits are counted and dropped; disconnects its peer too.
    pub fn attach_sink(&self, n: &VirtioNet) {
        let i = self.check(n);
        let mut inner = self.inner.borrow_mut();
        if let Peer::Port(j) = inner.nets[i].peer
            && inner.nets[j].peer == Peer::Port(i)
        {
            inner.nets[j].peer = Peer::Sink;
        }
        inner.nets[i].peer = Peer::Sink;
    }

    /// Attaches a traffic source to receive queue 0 of `n`: whenever the device has
    /// receive buffers (now, and whenever it runs that queue), they are filled with copies
    /// of `template`, until `count` frames were sent (if `Some`).
    pub fn attach_source(&self, n: &VirtioNet, template: Vec<u8>, count: Option<u64>) {
        let i = self.check(n);
        let mut inner = self.inner.borrow_mut();
        inner.nets[i].source = Some(Source {
            template,
            remaining: count,
        });
        inner.run_source(i, 0);
    }

    /// One frame arrives on `n`'s wire now (receive queue 0): true if it was delivered
    /// into a receive buffer, false if it was dropped (filtered, driver not ready, no
    /// buffer the device knows of).
    pub fn inject(&self, n: &VirtioNet, frame: &[u8]) -> bool {
        let i = self.check(n);
        self.inner.borrow_mut().receive(i, 0, frame)
    }

    /// Starts (`on`) or stops recording the frames `n` transmits.
    pub fn set_capture(&self, n: &VirtioNet, on: bool) {
        self.with(n, |net| {
            net.capture = on;
            net.captured.clear();
        })
    }

    /// The frames `n` transmitted since the last call while capture was on.
    pub fn take_transmitted(&self, n: &VirtioNet) -> Vec<Vec<u8>> {
        self.with(n, |net| std::mem::take(&mut net.captured))
    }

    /// What crossed `n`'s wire so far.
    pub fn wire_stats(&self, n: &VirtioNet) -> WireStats {
        self.with(n, |net| net.wire)
    }

    /// Every value the driver wrote to the device status, in order.
    pub fn status_log(&self, n: &VirtioNet) -> Vec<u8> {
        self.with(n, |net| net.status_log.clone())
    }

    /// The current device status byte.
    pub fn status(&self, n: &VirtioNet) -> u8 {
        self.with(n, |net| net.status)
    }

    /// The features the driver accepted.
    pub fn driver_features(&self, n: &VirtioNet) -> u64 {
        self.with(n, |net| net.driver_features)
    }

    /// The receive filter: (MAC, promiscuous, all-multicast).
    pub fn filter(&self, n: &VirtioNet) -> ([u8; 6], bool, bool) {
        self.with(n, |net| (net.mac, net.promisc, net.allmulti))
    }

    /// Doorbells the driver rang on queue `q`.
    pub fn notifications(&self, n: &VirtioNet, q: usize) -> u64 {
        self.with(n, |net| net.queues[q].notifications)
    }

    /// Used-buffer interrupts the device would have raised on queue `q` (not suppressed
    /// by `VIRTQ_AVAIL_F_NO_INTERRUPT`).
    pub fn interrupts(&self, n: &VirtioNet, q: usize) -> u64 {
        self.with(n, |net| net.queues[q].interrupts)
    }

    /// Sets or clears `VIRTQ_USED_F_NO_NOTIFY` on queue `q` (2.6.8): the device polls
    /// that queue ([`VirtioModel::poll`]) instead of waiting for doorbells.
    pub fn set_no_notify(&self, n: &VirtioNet, q: usize, on: bool) {
        let i = self.check(n);
        let mut inner = self.inner.borrow_mut();
        inner.nets[i].queues[q].no_notify = on;
        let vq = inner.nets[i].queues[q];
        if vq.enabled {
            inner.check_rings(i, q);
            let flags = if on { USED_F_NO_NOTIFY } else { 0 };
            inner.write_bytes(i, vq.used, &flags.to_le_bytes(), "used flags");
        }
    }

    /// The device runs every queue of `n` now, as a polling device would.
    pub fn poll(&self, n: &VirtioNet) {
        let i = self.check(n);
        let mut inner = self.inner.borrow_mut();
        for q in 0..inner.nets[i].queues.len() {
            inner.run_queue(i, q);
        }
    }

    /// The device stops answering control commands (`true`): they stay outstanding.
    pub fn set_ctrl_unanswered(&self, n: &VirtioNet, on: bool) {
        self.with(n, |net| net.ctrl_unanswered = on)
    }

    /// Makes the device hostile once: `fault` on the next used-ring write of queue `q`.
    pub fn inject_fault(&self, n: &VirtioNet, q: usize, fault: VirtioFault) {
        self.with(n, |net| net.queues[q].fault = Some(fault))
    }

    /// Sets the link state the device reports (VIRTIO_NET_S_LINK_UP).
    pub fn set_link_up(&self, n: &VirtioNet, up: bool) {
        self.with(n, |net| net.link_up = up)
    }
}
