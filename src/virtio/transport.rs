//! How the driver reaches a virtio device over PCI: the legacy I/O-port interface or the
//! modern (virtio 1.0) interface of vendor-specific PCI capabilities.
//!
//! Both expose the same operations — status, features, queue setup, notification, device
//! config, MSI-X vectors — so the net driver (`super`) and the rings exist once.
//!
//! * Legacy (virtio 1.1, 4.1.4.8): one I/O BAR (BAR 0) with fixed register offsets. Every
//!   access is a system call (pread/pwrite on the sysfs resource file).
//! * Modern (virtio 1.1, 4.1.4): capabilities in config space name a BAR, offset and length
//!   for the common configuration, the notification area, the ISR byte and the device
//!   configuration; all are memory-mapped, so a notification is one store.

use std::rc::Rc;

use super::virtqueue::Virtqueue;
use crate::error::{Error, Result};
use crate::memory::DmaAllocator;
use crate::pci::DEVICE_VIRTIO_NET_MODERN;
use crate::registers::{MmioRegion, RegisterSpace};

/// `msix_config` / `queue_msix_vector` value meaning "no vector" (virtio 1.1, 4.1.5.1.2).
pub const VIRTIO_MSI_NO_VECTOR: u16 = 0xffff;

/// Device status bits (virtio 1.1, 2.1).
pub mod status {
    /// The guest has noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest knows how to drive the device.
    pub const DRIVER: u8 = 2;
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete (modern only).
    pub const FEATURES_OK: u8 = 8;
    /// Something went wrong in the guest; it gave up on the device.
    pub const FAILED: u8 = 128;
}

/// Where each register both interfaces have lives: `[legacy, modern]`, in I/O BAR 0
/// (legacy, virtio 1.1 4.1.4.8) or in the common configuration structure (modern,
/// 4.1.4.3). One table for both interfaces, so every operation below exists once.
mod reg {
    pub const DEVICE_FEATURES: [usize; 2] = [0x00, 0x04];
    pub const DRIVER_FEATURES: [usize; 2] = [0x04, 0x0c];
    /// Legacy: present only while MSI-X is enabled on the function.
    pub const CONFIG_VECTOR: [usize; 2] = [0x14, 0x10];
    pub const STATUS: [usize; 2] = [0x12, 0x14];
    pub const QUEUE_SELECT: [usize; 2] = [0x0e, 0x16];
    pub const QUEUE_SIZE: [usize; 2] = [0x0c, 0x18];
    pub const QUEUE_VECTOR: [usize; 2] = [0x16, 0x1a];
}

/// Legacy-only registers in I/O BAR 0 (4.1.4.8).
mod legacy_reg {
    pub const QUEUE_ADDRESS: usize = 0x08;
    pub const QUEUE_NOTIFY: usize = 0x10;
    /// Device-specific config without MSI-X: right after the status register.
    pub const CONFIG_NO_MSIX: usize = 0x14;
    /// Device-specific config with MSI-X enabled: after the two vector registers.
    pub const CONFIG_MSIX: usize = 0x18;
}

/// Modern-only fields of the common configuration structure (4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const NUM_QUEUES: usize = 0x12;
    pub const CONFIG_GENERATION: usize = 0x15;
    pub const QUEUE_ENABLE: usize = 0x1c;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// Size of the structure as far as this driver uses it.
    pub const LEN: u32 = 0x38;
}

/// PCI configuration space facts (PCI Local Bus spec 3.0, 6.2 and 6.7).
mod pci_cfg {
    /// Status register; bit 4 says a capability list exists.
    pub const STATUS: usize = 0x06;
    pub const STATUS_CAP_LIST: u32 = 1 << 4;
    /// Offset of the first capability.
    pub const CAP_PTR: usize = 0x34;
    /// Capability id of vendor-specific capabilities.
    pub const CAP_ID_VENDOR: u32 = 0x09;
    /// Base address register 0.
    pub const BAR0: usize = 0x10;
}

/// `cfg_type` values of `struct virtio_pci_cap` (virtio 1.1, 4.1.4).
mod cap_type {
    pub const COMMON_CFG: usize = 1;
    pub const NOTIFY_CFG: usize = 2;
    pub const DEVICE_CFG: usize = 4;
}

/// Where one virtio structure lives: a BAR, an offset and a length (`struct virtio_pci_cap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CapRegion {
    /// BAR number (0-5).
    bar: u8,
    /// Offset within the BAR.
    offset: u32,
    /// Length in bytes.
    length: u32,
}

/// Walks the capability list of a config space image (at least 256 bytes) and returns the
/// virtio structures by `cfg_type` (1 to 4: common config, notification area, ISR, device
/// config; 4.1.4) and the multiplier for `queue_notify_off` from the notification
/// capability (4.1.4.4). The first capability of each type wins, as the spec asks (4.1.4).
///
/// A legacy-only device has none (the ISR capability, for INTx, goes unused); an error if
/// the list is malformed.
fn parse_capabilities(cfg: &[u8]) -> std::result::Result<([Option<CapRegion>; 5], u32), String> {
    // A little-endian field of `n` bytes at `o`.
    let rd = |o: usize, n: usize| match cfg.get(o..o + n) {
        Some(b) => Ok(b.iter().rev().fold(0, |v, &b| v << 8 | u32::from(b))),
        None => Err(format!("offset {o:#x} beyond config")),
    };
    let (mut found, mut multiplier) = ([None; 5], 0);
    if rd(pci_cfg::STATUS, 2)? & pci_cfg::STATUS_CAP_LIST == 0 {
        return Ok((found, multiplier));
    }
    let mut ptr = rd(pci_cfg::CAP_PTR, 1)? as usize & 0xfc;
    // Capabilities live above the standard header; a list longer than what fits in 256
    // bytes loops.
    let mut seen = 0;
    while ptr != 0 {
        seen += 1;
        if ptr < 0x40 || seen > 48 {
            return Err(format!("malformed capability list (entry at {ptr:#x})"));
        }
        // struct virtio_pci_cap: vndr, next, len, cfg_type, bar, id, pad[2], offset
        // (le32), length (le32); the notify cap adds notify_off_multiplier (le32).
        let (at, head) = (ptr, rd(ptr, 4)?);
        let (t, cap_len) = ((head >> 24) as usize, head >> 16 & 0xff);
        let notify = t == cap_type::NOTIFY_CFG;
        ptr = (head >> 8) as usize & 0xfc;
        let usable = head & 0xff == pci_cfg::CAP_ID_VENDOR && cap_len >= 16 + 4 * notify as u32;
        // BARs 0-5 only; other values are reserved (and skipped, 4.1.4.1).
        let known = (cap_type::COMMON_CFG..=cap_type::DEVICE_CFG).contains(&t);
        if !usable || !known || found[t].is_some() || rd(at + 4, 1)? > 5 {
            continue;
        }
        found[t] = Some(CapRegion {
            bar: rd(at + 4, 1)? as u8,
            offset: rd(at + 8, 4)?,
            length: rd(at + 12, 4)?,
        });
        if notify {
            multiplier = rd(at + 16, 4)?;
        }
    }
    Ok((found, multiplier))
}

/// One BAR of a virtio function as the transport reaches it: an I/O BAR (system calls), a
/// memory-mapped BAR, or the virtio device model. The one seam between the driver and the
/// device: everything the driver does to the device goes through it.
///
/// Accesses are 1, 2 or 4 bytes wide, little-endian, each one device access of that width.
pub trait VirtioBar {
    /// Reads `width` bytes at `offset`.
    fn read(&self, offset: usize, width: usize) -> Result<u32>;
    /// Writes the low `width` bytes of `value` at `offset`.
    fn write(&self, offset: usize, width: usize, value: u32) -> Result<()>;
    /// Size of the BAR in bytes.
    fn size(&self) -> usize;
}

impl VirtioBar for MmioRegion {
    fn read(&self, offset: usize, width: usize) -> Result<u32> {
        Ok(match width {
            1 => self.load::<u8>(offset) as u32,
            2 => u16::from_le(self.load(offset)) as u32,
            _ => u32::from_le(self.read32(offset)),
        })
    }

    fn write(&self, offset: usize, width: usize, value: u32) -> Result<()> {
        match width {
            1 => self.store(offset, value as u8),
            2 => self.store(offset, (value as u16).to_le()),
            _ => self.write32(offset, value.to_le()),
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.len()
    }
}

/// A structure inside a BAR: `len` bytes from `base`. Accesses outside it are errors.
struct Window {
    bar: Rc<dyn VirtioBar>,
    base: usize,
    len: usize,
}

impl Window {
    fn new(bar: Rc<dyn VirtioBar>, base: usize, len: usize) -> Self {
        Window { bar, base, len }
    }

    fn check(&self, offset: usize, width: usize) -> Result<usize> {
        let len = self.len;
        if offset + width > len {
            let detail = format!("virtio register {offset:#x} is outside its {len}-byte structure");
            return Err(Error::config(detail));
        }
        Ok(self.base + offset)
    }

    fn read(&self, offset: usize, width: usize) -> Result<u32> {
        self.bar.read(self.check(offset, width)?, width)
    }

    fn write(&self, offset: usize, width: usize, value: u32) -> Result<()> {
        self.bar.write(self.check(offset, width)?, width, value)
    }
}

/// How the driver reaches one virtio function: legacy or modern, behind one set of
/// operations.
pub struct Transport {
    /// The function, for errors.
    pub(crate) name: String,
    /// The modern (virtio 1.0) interface, else the legacy one.
    pub(crate) modern: bool,
    /// Legacy: I/O BAR 0; modern: the common configuration structure.
    common: Window,
    /// The device-specific configuration (legacy: in BAR 0 behind the registers).
    device: Window,
    /// Where the doorbells are (legacy: BAR 0; modern: the notification structure).
    notify: Window,
    notify_off_multiplier: u32,
    /// Offset in the notification BAR of each queue's doorbell, by queue index.
    doorbells: Vec<usize>,
}

/// Opens BAR `n` of a function (`true`: it is an I/O BAR, for the legacy interface).
pub(crate) type OpenBar<'a> = dyn FnMut(u8, bool) -> Result<Rc<dyn VirtioBar>> + 'a;

/// How often a device config read is retried while the device keeps changing it.
const CONFIG_READ_ATTEMPTS: u32 = 100;

impl Transport {
    /// Opens the interface a function described by its config space image (256 bytes) is
    /// driven through: a modern-only device always uses the modern one; a transitional
    /// device the modern one if `prefer_modern` (VFIO, `IXY_VIRTIO_MODERN=1`) or if BAR 0
    /// is no I/O BAR, else the legacy one, I/O BAR 0 (see the [`super`] docs).
    /// Crate-private: a transport can point the device's queues anywhere
    /// ([`Transport::setup_queue`]).
    pub(crate) fn open(
        name: &str,
        cfg: &[u8],
        prefer_modern: bool,
        open: &mut OpenBar,
    ) -> Result<Self> {
        let caps = parse_capabilities(cfg).map_err(|e| Error::device(name, e))?;
        let ([_, common, notify, _isr, device], notify_off_multiplier) = caps;
        let modern_only = u16::from_le_bytes([cfg[2], cfg[3]]) == DEVICE_VIRTIO_NET_MODERN;
        let (modern, [common, device, notify]) = match common.zip(notify) {
            // A memory BAR 0 (no I/O BAR: bit 0 clear, PCI 3.0 6.2.5.1) has no legacy interface.
            Some(regions) if modern_only || prefer_modern || cfg[pci_cfg::BAR0] & 1 == 0 => {
                (true, Self::modern_windows(name, open, regions, device)?)
            }
            None if modern_only => {
                let detail = "modern virtio device lacks the common or notification capability";
                return Err(Error::device(name, detail));
            }
            _ => {
                let bar = open(0, true)?;
                let whole = |base| Window::new(bar.clone(), base, 0x100 - base);
                let windows = [whole(0), whole(legacy_reg::CONFIG_NO_MSIX), whole(0)];
                (false, windows)
            }
        };
        Ok(Transport {
            name: name.to_string(),
            modern,
            common,
            device,
            notify,
            notify_off_multiplier,
            doorbells: Vec::new(),
        })
    }

    /// The common config, device config and notification windows of the modern interface
    /// from the capabilities' regions, mapping the BARs they name (each once).
    fn modern_windows(
        name: &str,
        open: &mut OpenBar,
        (common, notify): (CapRegion, CapRegion),
        device: Option<CapRegion>,
    ) -> Result<[Window; 3]> {
        let mut bars: [Option<Rc<dyn VirtioBar>>; 6] = Default::default();
        let mut locate = |r: CapRegion, min_len: u32, what: &str| -> Result<Window> {
            let bar = match &bars[r.bar as usize] {
                Some(b) => Rc::clone(b),
                None => bars[r.bar as usize].insert(open(r.bar, false)?).clone(),
            };
            let (offset, length, size) = (r.offset as usize, r.length as usize, bar.size());
            if r.length < min_len || offset + length > size {
                let detail = format!(
                    "virtio {what} structure ({offset:#x}+{length:#x}) does not fit BAR{} ({size} bytes) or is shorter than {min_len} bytes",
                    r.bar
                );
                return Err(Error::device(name, detail));
            }
            Ok(Window::new(bar, offset, length))
        };
        let common = locate(common, common::LEN, "common config")?;
        let device = match device {
            Some(d) => locate(d, 1, "device config")?,
            None => Window::new(common.bar.clone(), 0, 0),
        };
        Ok([common, device, locate(notify, 2, "notification")?])
    }

    /// Reads `width` bytes of register `r` ([`reg`]) of this interface.
    fn read(&self, r: [usize; 2], width: usize) -> Result<u32> {
        self.common.read(r[usize::from(self.modern)], width)
    }

    /// Writes `width` bytes of register `r` ([`reg`]) of this interface.
    fn write(&self, r: [usize; 2], width: usize, value: u32) -> Result<()> {
        self.common.write(r[usize::from(self.modern)], width, value)
    }

    /// Reads the device status byte.
    pub fn status(&self) -> Result<u8> {
        Ok(self.read(reg::STATUS, 1)? as u8)
    }

    /// Writes the device status byte (0 resets the device).
    pub fn set_status(&self, s: u8) -> Result<()> {
        self.write(reg::STATUS, 1, s as u32)
    }

    /// The device's feature bits, a 32-bit word at a time (4.1.4.3; legacy devices have one
    /// word and no select register).
    pub fn device_features(&self) -> Result<u64> {
        let mut f = 0;
        for word in 0..=u32::from(self.modern) {
            if self.modern {
                self.common.write(common::DEVICE_FEATURE_SELECT, 4, word)?;
            }
            f |= (self.read(reg::DEVICE_FEATURES, 4)? as u64) << (32 * word);
        }
        Ok(f)
    }

    /// Tells the device which features the driver uses.
    pub fn set_driver_features(&self, features: u64) -> Result<()> {
        for word in 0..=u32::from(self.modern) {
            if self.modern {
                self.common.write(common::DRIVER_FEATURE_SELECT, 4, word)?;
            }
            self.write(reg::DRIVER_FEATURES, 4, (features >> (32 * word)) as u32)?;
        }
        Ok(())
    }

    /// Virtqueue configuration (4.1.5.1.3): creates queue `index` on `dma` with the size
    /// the device offers (an error if it is no power of two, 0: no such queue; modern
    /// devices also say how many queues they have), routes its interrupts to MSI-X `vector` (if MSI-X is on), gives
    /// the device its parts' addresses and enables it. Legacy devices take only the
    /// descriptor table address, as a page number, and find the other parts by the legacy
    /// layout (4.1.4.8). The queue's interrupts start disabled.
    pub(crate) fn setup_queue<T>(
        &mut self,
        dma: &dyn DmaAllocator,
        index: u16,
        vector: Option<u16>,
    ) -> Result<Virtqueue<T>> {
        let mut size = 0;
        if !self.modern || self.common.read(common::NUM_QUEUES, 2)? > u32::from(index) {
            self.write(reg::QUEUE_SELECT, 2, index as u32)?;
            size = self.read(reg::QUEUE_SIZE, 2)? as u16;
        }
        if !size.is_power_of_two() {
            let detail = format!(
                "virtqueue {index} does not exist or has unusable size {size} (not a power of two)"
            );
            return Err(Error::device(&self.name, detail));
        }
        let mut vq = Virtqueue::new(dma, size)?;
        if let Some(v) = vector {
            self.set_vector(reg::QUEUE_VECTOR, v, &format!("virtqueue {index}"))?;
        }
        let ((desc, driver, device), c) = (vq.bus_addrs(), &self.common);
        let doorbell = if !self.modern {
            // The legacy queue address register holds a 4096-byte page number (32 bits).
            if !desc.is_multiple_of(4096) || desc >> 12 > u32::MAX as u64 {
                let detail = format!("a legacy device cannot reach virtqueue memory at {desc:#x}");
                return Err(Error::device(&self.name, detail));
            }
            c.write(legacy_reg::QUEUE_ADDRESS, 4, (desc >> 12) as u32)?;
            legacy_reg::QUEUE_NOTIFY
        } else {
            // 64-bit fields are written as two 32-bit halves, low first (4.1.3.1).
            for (field, v) in [
                (common::QUEUE_DESC, desc),
                (common::QUEUE_DRIVER, driver),
                (common::QUEUE_DEVICE, device),
            ] {
                c.write(field, 4, v as u32)?;
                c.write(field + 4, 4, (v >> 32) as u32)?;
            }
            let notify_off = c.read(common::QUEUE_NOTIFY_OFF, 2)? as usize;
            c.write(common::QUEUE_ENABLE, 2, 1)?;
            notify_off * self.notify_off_multiplier as usize
        };
        // Kept as an offset in the BAR, checked here once.
        let (doorbell, i) = (self.notify.check(doorbell, 2)?, usize::from(index));
        self.doorbells
            .resize(self.doorbells.len().max(i + 1), doorbell);
        self.doorbells[i] = doorbell;
        vq.disable_interrupts();
        Ok(vq)
    }

    /// Rings the doorbell of queue `index` (set up with `Transport::setup_queue`). A
    /// failed write (of an I/O BAR) is logged: the packet path has no one to tell.
    #[inline]
    pub fn notify(&self, index: u16) {
        let at = self.doorbells[usize::from(index)];
        if let Err(e) = self.notify.bar.write(at, 2, index as u32) {
            log::error!("{}: queue notification failed: {e}", self.name);
        }
    }

    /// The device config generation (modern: `config_generation`, 4.1.4.3), which changes
    /// whenever the device changes its config. `None` on the legacy interface, which has no
    /// such counter.
    fn config_generation(&self) -> Result<Option<u8>> {
        let read = || Ok(self.common.read(common::CONFIG_GENERATION, 1)? as u8);
        self.modern.then(read).transpose()
    }

    /// Reads a little-endian field of `width` bytes (1 or 2) of the device-specific
    /// configuration.
    pub fn config_read(&self, offset: usize, width: usize) -> Result<u16> {
        Ok(self.device.read(offset, width)? as u16)
    }

    /// Reads `buf.len()` bytes of the device-specific configuration from `offset`, again
    /// until the config generation is the same before and after, so that they come from
    /// one version of the config (virtio 1.1 2.4.1 / 1.2 2.5.1). Legacy: one read.
    pub fn config_bytes(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        for _ in 0..CONFIG_READ_ATTEMPTS {
            let before = self.config_generation()?;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.device.read(offset + i, 1)? as u8;
            }
            if self.config_generation()? == before {
                return Ok(());
            }
        }
        let detail = "the device config changed during each of 100 reads (config_generation never stable); reset the device";
        Err(Error::device(&self.name, detail))
    }

    /// Writes bytes of the device-specific configuration. Legacy devices only: modern
    /// drivers must not write fields such as the MAC (5.1.4.2), so the driver never does.
    pub(crate) fn config_write(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        for (i, b) in bytes.iter().enumerate() {
            self.device.write(offset + i, 1, u32::from(*b))?;
        }
        Ok(())
    }

    /// Tells the transport that MSI-X was enabled on the function (legacy: the device
    /// config moves from 0x14 to 0x18, 4.1.4.8). Configuration changes get no vector: the
    /// driver reads the link state when asked.
    pub fn msix_enabled(&mut self) -> Result<()> {
        if !self.modern {
            let at = legacy_reg::CONFIG_MSIX;
            self.device = Window::new(self.device.bar.clone(), at, 0x100 - at);
        }
        self.set_vector(reg::CONFIG_VECTOR, VIRTIO_MSI_NO_VECTOR, "config changes")
    }

    /// Routes the interrupts of `what` to MSI-X `vector` through vector register `r`; an
    /// error if the device does not take it (it reads back [`VIRTIO_MSI_NO_VECTOR`],
    /// 4.1.5.1.2).
    fn set_vector(&self, r: [usize; 2], vector: u16, what: &str) -> Result<()> {
        self.write(r, 2, vector as u32)?;
        let got = self.read(r, 2)?;
        if got != u32::from(vector) {
            let detail = format!("MSI-X vector {vector} for {what} refused (read back {got:#x})");
            return Err(Error::device(&self.name, detail));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::HeapDma;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A config space image like QEMU's modern virtio-net: MSI-X at 0x98, then the vendor
    /// capabilities for common (BAR4 0x0), ISR (0x1000), device (0x2000), notify (0x3000,
    /// multiplier 4) and a PCI cfg access cap.
    fn qemu_like_config() -> Vec<u8> {
        let mut c = vec![0u8; 256];
        c[0x06] = 0x10; // capability list present
        c[0x34] = 0x98;
        // MSI-X: id, next, message control (table size 4 -> 3)
        c[0x98..0x9c].copy_from_slice(&[0x11, 0x84, 0x03, 0x00]);
        let mut vcap = |at: usize, next: u8, len: u8, ty: u8, bar: u8, off: u32, l: u32| {
            c[at] = 0x09;
            c[at + 1] = next;
            c[at + 2] = len;
            c[at + 3] = ty;
            c[at + 4] = bar;
            c[at + 8..at + 12].copy_from_slice(&off.to_le_bytes());
            c[at + 12..at + 16].copy_from_slice(&l.to_le_bytes());
        };
        vcap(0x84, 0x70, 20, 5, 0, 0, 0); // PCI cfg access: ignored
        vcap(0x70, 0x60, 20, 2, 4, 0x3000, 0x1000);
        vcap(0x60, 0x50, 16, 4, 4, 0x2000, 0x1000);
        vcap(0x50, 0x40, 16, 3, 4, 0x1000, 0x1000);
        vcap(0x40, 0x00, 16, 1, 4, 0x0000, 0x1000);
        c[0x70 + 16..0x70 + 20].copy_from_slice(&4u32.to_le_bytes());
        c
    }

    #[test]
    fn qemu_modern_capabilities_are_found() {
        let ([_, common, notify, isr, device], multiplier) =
            parse_capabilities(&qemu_like_config()).unwrap();
        let region = |offset| CapRegion {
            bar: 4,
            offset,
            length: 0x1000,
        };
        assert_eq!(common, Some(region(0)));
        assert_eq!((isr, device), (Some(region(0x1000)), Some(region(0x2000))));
        assert_eq!((notify, multiplier), (Some(region(0x3000)), 4));
    }

    #[test]
    fn the_first_capability_of_a_type_wins() {
        let mut c = qemu_like_config();
        // Insert a second common cfg cap (BAR 2) at the end of the list: ignored.
        c[0x41] = 0xa0;
        c[0xa0..0xb0].copy_from_slice(&[9, 0, 16, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
        let ([_, common, ..], _) = parse_capabilities(&c).unwrap();
        assert_eq!(common.unwrap().bar, 4);
    }

    #[test]
    fn a_legacy_device_has_no_modern_capabilities() {
        let mut c = vec![0u8; 256];
        assert_eq!(parse_capabilities(&c), Ok(([None; 5], 0)));
        // Capability list with only MSI-X.
        c[0x06] = 0x10;
        c[0x34] = 0x40;
        c[0x40..0x44].copy_from_slice(&[0x11, 0, 2, 0]);
        assert_eq!(parse_capabilities(&c), Ok(([None; 5], 0)));
    }

    #[test]
    fn looping_or_bad_capability_lists_are_errors() {
        let mut c = vec![0u8; 256];
        c[0x06] = 0x10;
        c[0x34] = 0x40;
        c[0x40..0x42].copy_from_slice(&[0x09, 0x40]); // points to itself
        let err = parse_capabilities(&c).unwrap_err();
        assert!(err.contains("capability list (entry at 0x40)"), "{err}");
        c[0x34] = 0x10; // inside the header
        let err = parse_capabilities(&c).unwrap_err();
        assert!(err.contains("capability list (entry at 0x10)"), "{err}");
    }

    #[test]
    fn reserved_bar_numbers_are_skipped() {
        let mut c = qemu_like_config();
        c[0x40 + 4] = 7; // common cfg in "BAR 7"
        assert_eq!(parse_capabilities(&c).unwrap().0[1], None);
    }

    /// Words of the memory standing in for "BAR 4".
    const FAKE_BAR_WORDS: usize = 0x300 / 8;

    /// Ordinary memory standing in for a BAR, owned through a raw pointer: the region
    /// and the test both reach it through that pointer (a `Box` would assert unique
    /// access whenever it moves or is indexed, invalidating the region's pointer).
    struct FakeBar(std::ptr::NonNull<u64>);

    impl FakeBar {
        fn new() -> Self {
            let words = vec![0u64; FAKE_BAR_WORDS].into_boxed_slice();
            FakeBar(std::ptr::NonNull::new(Box::into_raw(words).cast()).unwrap())
        }

        /// Writes word `i` (what the device side of the BAR holds).
        fn set(&self, i: usize, value: u64) {
            assert!(i < FAKE_BAR_WORDS);
            // SAFETY: in bounds of the live allocation; no reference into it exists.
            unsafe { self.0.as_ptr().add(i).write_volatile(value) }
        }

        /// The BAR's bytes.
        fn bytes(&self) -> Vec<u8> {
            // SAFETY: in bounds of the live allocation; no reference into it exists.
            let word = |i: usize| unsafe { self.0.as_ptr().add(i).read_volatile() };
            (0..FAKE_BAR_WORDS)
                .flat_map(|i| word(i).to_le_bytes())
                .collect()
        }
    }

    impl Drop for FakeBar {
        fn drop(&mut self) {
            let words = std::ptr::slice_from_raw_parts_mut(self.0.as_ptr(), FAKE_BAR_WORDS);
            // SAFETY: the allocation made in `new`, freed once.
            drop(unsafe { Box::from_raw(words) });
        }
    }

    /// A modern transport over ordinary memory: common config at 0 of "BAR 4", notify area
    /// at 0x100 (multiplier 4), device config at 0x200. Returns it with its backing
    /// memory (dropped after it).
    fn modern_on_memory() -> (Transport, FakeBar) {
        let mem = FakeBar::new();
        // SAFETY: `mem` is 0x300 bytes, 8-byte aligned, outlives the transport in every
        // test (returned together, the transport dropped first) and is otherwise only
        // accessed through the same raw pointer; no unmap.
        let region: Rc<dyn VirtioBar> =
            Rc::new(unsafe { MmioRegion::from_raw_parts(mem.0.cast(), 0x300, None) });
        // Modern-only device, vendor capabilities at 0x40 (common), 0x54 (notify), 0x68
        // (device), all in BAR 4.
        let mut c = vec![0u8; 256];
        c[2..4].copy_from_slice(&DEVICE_VIRTIO_NET_MODERN.to_le_bytes());
        (c[0x06], c[0x34]) = (0x10, 0x40);
        for (at, next, ty, offset) in [
            (0x40, 0x54, 1, 0),
            (0x54, 0x68, 2, 0x100),
            (0x68, 0, 4, 0x200),
        ] {
            c[at..at + 5].copy_from_slice(&[0x09, next, 20, ty, 4]);
            c[at + 8..at + 10].copy_from_slice(&u16::to_le_bytes(offset));
            c[at + 12..at + 14].copy_from_slice(&u16::to_le_bytes(0x100));
        }
        c[0x54 + 16] = 4; // notify_off_multiplier
        let t = Transport::open("d", &c, false, &mut |_, _| Ok(Rc::clone(&region))).unwrap();
        (t, mem)
    }

    #[test]
    fn modern_queue_setup_writes_the_common_config_at_the_spec_offsets() {
        let (mut t, mem) = modern_on_memory();
        // The device's side: 3 queues, queue_notify_off 5 for the selected queue, maximum
        // size 128.
        mem.set(0x10 / 8, 3 << 16); // num_queues at 0x12
        mem.set(0x18 / 8, 5 << 48 | 128); // queue_notify_off at 0x1e, queue_size at 0x18
        let vq: Virtqueue<()> = t.setup_queue(&HeapDma, 2, Some(7)).unwrap();
        let (desc, driver, device) = vq.bus_addrs();
        t.notify(2);
        let b = mem.bytes();
        let le16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let le64 = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(le16(0x16), 2, "queue_select");
        assert_eq!(le16(0x18), 128, "queue_size: the device's maximum, taken");
        assert_eq!(le16(0x1a), 7, "queue_msix_vector");
        assert_eq!(le16(0x1c), 1, "queue_enable");
        assert_eq!(le64(0x20), desc, "queue_desc");
        assert_eq!(le64(0x28), driver, "queue_driver");
        assert_eq!(le64(0x30), device, "queue_device");
        assert!(desc != 0 && driver > desc && device > driver);
        // Doorbell: notify area + queue_notify_off * notify_off_multiplier, 16-bit index.
        assert_eq!(le16(0x100 + 5 * 4), 2);
        let err = t
            .setup_queue::<()>(&HeapDma, 3, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("virtqueue 3 does not exist"),
            "beyond num_queues: {err}"
        );
    }

    #[test]
    fn modern_status_generation_and_vectors_use_their_own_bytes() {
        let (mut t, mem) = modern_on_memory();
        mem.set(0x10 / 8, 0x2a << 40 | 0x1234); // config_generation at 0x15, msix_config
        t.set_status(0x0b).unwrap();
        assert_eq!(t.config_generation().unwrap(), Some(0x2a));
        t.msix_enabled().unwrap();
        let b = mem.bytes();
        assert_eq!(b[0x14], 0x0b, "device_status");
        assert_eq!(b[0x15], 0x2a, "config_generation untouched");
        assert_eq!(&b[0x10..0x12], &[0xff, 0xff], "msix_config: no vector");
        // The device config is bounded by its capability's length.
        mem.set(0x200 / 8, 0x0605_0403_0201);
        assert_eq!(t.config_read(5, 1).unwrap(), 6);
        let mut mac = [0; 6];
        t.config_bytes(0, &mut mac).unwrap();
        assert_eq!(mac, [1, 2, 3, 4, 5, 6]);
        assert!(t.config_read(0xff, 2).is_err());
    }

    /// A BAR of `size` bytes whose byte at `o` reads as `o & 0xff`, except the modern
    /// `config_generation` (0x15), which reads as `generation(n)` on its `n`th read, and
    /// registers that read back what was written. Records the offsets read.
    struct ScriptedBar {
        size: usize,
        generation: fn(usize) -> u8,
        reads: RefCell<Vec<usize>>,
        written: RefCell<HashMap<usize, u32>>,
    }

    impl ScriptedBar {
        fn reads_of(&self, offset: usize) -> usize {
            self.reads.borrow().iter().filter(|&&o| o == offset).count()
        }
    }

    impl VirtioBar for ScriptedBar {
        fn read(&self, offset: usize, _width: usize) -> Result<u32> {
            let n = self.reads_of(offset);
            self.reads.borrow_mut().push(offset);
            Ok(match self.written.borrow().get(&offset) {
                Some(&v) => v,
                None if offset == common::CONFIG_GENERATION => u32::from((self.generation)(n)),
                None => offset as u32 & 0xff,
            })
        }

        fn write(&self, offset: usize, _width: usize, value: u32) -> Result<()> {
            self.written.borrow_mut().insert(offset, value);
            Ok(())
        }

        fn size(&self) -> usize {
            self.size
        }
    }

    /// Opens a transport for `cfg` on [`ScriptedBar`]s of 0x4000 bytes; returns it with the
    /// BARs opened (number, I/O) and the BAR.
    fn open_scripted(
        cfg: &[u8],
        prefer_modern: bool,
        generation: fn(usize) -> u8,
    ) -> (Result<Transport>, Vec<(u8, bool)>, Rc<ScriptedBar>) {
        let bar = Rc::new(ScriptedBar {
            size: 0x4000,
            generation,
            reads: RefCell::new(Vec::new()),
            written: RefCell::new(HashMap::new()),
        });
        let mut opened = Vec::new();
        let t = Transport::open("d", cfg, prefer_modern, &mut |n, io| {
            opened.push((n, io));
            Ok(bar.clone() as Rc<dyn VirtioBar>)
        });
        (t, opened, bar)
    }

    #[test]
    fn the_interface_follows_the_device_id_the_capabilities_and_bar_0() {
        let config = |id: u16, bar0: u8, caps: bool| {
            let mut c = if caps {
                qemu_like_config()
            } else {
                vec![0; 256]
            };
            c[2..4].copy_from_slice(&id.to_le_bytes());
            c[0x10] = bar0;
            c
        };
        let open = |c: &[u8], prefer| {
            let (t, opened, _) = open_scripted(c, prefer, |_| 0);
            (t.map(|t| t.modern).map_err(|e| e.to_string()), opened)
        };
        // Modern-only: modern, BAR 4 mapped once; without capabilities an error.
        assert_eq!(
            open(&config(0x1041, 0, true), false),
            (Ok(true), vec![(4, false)])
        );
        let (err, _) = open(&config(0x1041, 0, false), false);
        assert!(
            err.unwrap_err()
                .contains("lacks the common or notification")
        );
        // Transitional with an I/O BAR 0: legacy unless the modern one is preferred.
        let transitional = config(0x1000, 0x41, true);
        assert_eq!(open(&transitional, false), (Ok(false), vec![(0, true)]));
        assert_eq!(open(&transitional, true), (Ok(true), vec![(4, false)]));
        // Transitional without an I/O BAR 0: modern; legacy-only: legacy.
        assert_eq!(open(&config(0x1000, 0, true), false).0, Ok(true));
        assert_eq!(
            open(&config(0x1000, 1, false), true),
            (Ok(false), vec![(0, true)])
        );
    }

    #[test]
    fn config_reads_are_repeated_until_the_generation_is_stable() {
        let modern = qemu_like_config();
        // The generation changes during the first read (7, then 8): read again. The
        // device config (BAR 4 at 0x2000) reads as the low byte of its offset.
        let (t, _, bar) = open_scripted(&modern, true, |n| if n == 0 { 7 } else { 8 });
        let mut mac = [0xee; 6];
        t.unwrap().config_bytes(2, &mut mac).unwrap();
        assert_eq!((mac, bar.reads_of(0x15)), ([2, 3, 4, 5, 6, 7], 4));
        // A generation that never settles is an error, not an endless loop.
        let (t, _, bar) = open_scripted(&modern, true, |n| n as u8);
        let err = t.unwrap().config_bytes(0, &mut mac).unwrap_err();
        assert!(err.to_string().contains("config_generation never stable"));
        assert_eq!(bar.reads_of(0x15), 200);
        // Legacy: no generation, one read (the config behind the registers at 0x14).
        let (t, _, bar) = open_scripted(&[0; 256], false, |_| 0x15);
        t.unwrap().config_bytes(0, &mut mac).unwrap();
        assert_eq!(mac, [0x14, 0x15, 0x16, 0x17, 0x18, 0x19]);
        assert_eq!(*bar.reads.borrow(), [0x14, 0x15, 0x16, 0x17, 0x18, 0x19]);
    }
}
