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

use crate::error::{Error, Result};
use crate::pci::{IoBar, PciDevice};
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

/// Legacy PCI register offsets in I/O BAR 0 (virtio 1.1, 4.1.4.8).
mod legacy_reg {
    pub const DEVICE_FEATURES: u64 = 0x00;
    pub const DRIVER_FEATURES: u64 = 0x04;
    pub const QUEUE_ADDRESS: u64 = 0x08;
    pub const QUEUE_SIZE: u64 = 0x0c;
    pub const QUEUE_SELECT: u64 = 0x0e;
    pub const QUEUE_NOTIFY: u64 = 0x10;
    pub const DEVICE_STATUS: u64 = 0x12;
    /// Present only while MSI-X is enabled on the function.
    pub const CONFIG_MSIX_VECTOR: u64 = 0x14;
    /// Present only while MSI-X is enabled on the function.
    pub const QUEUE_MSIX_VECTOR: u64 = 0x16;
    /// Device-specific config without MSI-X: right after the status register.
    pub const CONFIG_NO_MSIX: u64 = 0x14;
    /// Device-specific config with MSI-X enabled: after the two vector registers.
    pub const CONFIG_MSIX: u64 = 0x18;
}

/// Common configuration structure offsets (virtio 1.1, 4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0c;
    pub const MSIX_CONFIG: usize = 0x10;
    pub const NUM_QUEUES: usize = 0x12;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const CONFIG_GENERATION: usize = 0x15;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1a;
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
    pub const STATUS_CAP_LIST: u16 = 1 << 4;
    /// Offset of the first capability.
    pub const CAP_PTR: usize = 0x34;
    /// Capability id of vendor-specific capabilities.
    pub const CAP_ID_VENDOR: u8 = 0x09;
    /// Capability id of MSI-X (PCI 3.0, 6.8.2).
    pub const CAP_ID_MSIX: u8 = 0x11;
    /// Base address registers.
    pub const BAR0: usize = 0x10;
}

/// `cfg_type` values of `struct virtio_pci_cap` (virtio 1.1, 4.1.4).
pub mod cap_type {
    /// Common configuration.
    pub const COMMON_CFG: u8 = 1;
    /// Notifications.
    pub const NOTIFY_CFG: u8 = 2;
    /// ISR status.
    pub const ISR_CFG: u8 = 3;
    /// Device-specific configuration.
    pub const DEVICE_CFG: u8 = 4;
}

/// Where one virtio structure lives: a BAR, an offset and a length (`struct virtio_pci_cap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapRegion {
    /// BAR number (0-5).
    pub bar: u8,
    /// Offset within the BAR.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// The virtio capabilities found in a device's config space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioCaps {
    /// Common configuration.
    pub common: CapRegion,
    /// Notification area.
    pub notify: CapRegion,
    /// Multiplier for `queue_notify_off` (4.1.4.4).
    pub notify_off_multiplier: u32,
    /// ISR status byte.
    pub isr: CapRegion,
    /// Device-specific configuration (absent for devices that have none).
    pub device: Option<CapRegion>,
    /// Number of MSI-X vectors (table size), if the function has an MSI-X capability.
    pub msix_vectors: Option<u16>,
}

/// Walks the capability list of a config space image (at least 256 bytes) and collects the
/// virtio structures. The first capability of each type wins, as the spec asks (4.1.4).
///
/// `None` if the device has no complete set of modern capabilities (a legacy-only
/// device); an error if the list is malformed.
pub fn parse_capabilities(cfg: &[u8]) -> std::result::Result<Option<VirtioCaps>, String> {
    let rd8 = |o: usize| {
        cfg.get(o)
            .copied()
            .ok_or(format!("offset {o:#x} beyond config"))
    };
    let rd16 = |o: usize| Ok::<u16, String>(u16::from_le_bytes([rd8(o)?, rd8(o + 1)?]));
    let rd32 = |o: usize| {
        Ok::<u32, String>(u32::from_le_bytes([
            rd8(o)?,
            rd8(o + 1)?,
            rd8(o + 2)?,
            rd8(o + 3)?,
        ]))
    };
    if rd16(pci_cfg::STATUS)? & pci_cfg::STATUS_CAP_LIST == 0 {
        return Ok(None);
    }
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut multiplier = 0;
    let mut msix_vectors = None;
    let mut ptr = (rd8(pci_cfg::CAP_PTR)? & 0xfc) as usize;
    let mut seen = 0;
    while ptr != 0 {
        // Capabilities live above the standard header; a list longer than what fits in
        // 256 bytes loops.
        seen += 1;
        if ptr < 0x40 || seen > 48 {
            return Err(format!("malformed capability list (entry at {ptr:#x})"));
        }
        let id = rd8(ptr)?;
        let next = (rd8(ptr + 1)? & 0xfc) as usize;
        if id == pci_cfg::CAP_ID_MSIX {
            // Message control at +2: table size minus one in bits 0-10 (PCI 3.0, 6.8.2.3).
            msix_vectors = Some((rd16(ptr + 2)? & 0x7ff) + 1);
        } else if id == pci_cfg::CAP_ID_VENDOR {
            // struct virtio_pci_cap: vndr, next, len, cfg_type, bar, id, pad[2],
            // offset (le32), length (le32); the notify cap adds notify_off_multiplier.
            let cap_len = rd8(ptr + 2)?;
            let cfg_type = rd8(ptr + 3)?;
            let region = CapRegion {
                bar: rd8(ptr + 4)?,
                offset: rd32(ptr + 8)?,
                length: rd32(ptr + 12)?,
            };
            // BARs 0-5 only; other values are reserved (and skipped, 4.1.4.1).
            if cap_len >= 16 && region.bar <= 5 {
                match cfg_type {
                    cap_type::COMMON_CFG if common.is_none() => common = Some(region),
                    cap_type::NOTIFY_CFG if notify.is_none() && cap_len >= 20 => {
                        notify = Some(region);
                        multiplier = rd32(ptr + 16)?;
                    }
                    cap_type::ISR_CFG if isr.is_none() => isr = Some(region),
                    cap_type::DEVICE_CFG if device.is_none() => device = Some(region),
                    _ => {}
                }
            }
        }
        ptr = next;
    }
    match (common, notify, isr) {
        (Some(common), Some(notify), Some(isr)) => Ok(Some(VirtioCaps {
            common,
            notify,
            notify_off_multiplier: multiplier,
            isr,
            device,
            msix_vectors,
        })),
        _ => Ok(None),
    }
}

/// The legacy interface: registers in I/O BAR 0.
#[derive(Debug)]
pub struct LegacyTransport {
    bar: IoBar,
    /// Offset of the device config: it moves when MSI-X is enabled (4.1.4.8).
    config: u64,
}

/// One BAR mapped for the modern interface.
#[derive(Debug)]
struct MappedBar {
    bar: u8,
    region: MmioRegion,
}

/// The modern interface: structures located by PCI capabilities, memory-mapped.
#[derive(Debug)]
pub struct ModernTransport {
    bars: Vec<MappedBar>,
    /// (index into `bars`, offset) of each structure.
    common: (usize, usize),
    notify: (usize, usize),
    notify_len: usize,
    notify_off_multiplier: u32,
    device: Option<(usize, usize, usize)>,
    /// Byte offset within the notify BAR of each queue's doorbell, by queue index.
    doorbells: Vec<Option<usize>>,
}

/// Either interface behind one set of operations.
#[derive(Debug)]
pub enum Transport {
    /// Legacy I/O-port interface (`1af4:1000` in legacy mode).
    Legacy(LegacyTransport),
    /// Modern PCI-capability interface (`1af4:1041`, or transitional in modern mode).
    Modern(ModernTransport),
}

/// Reads the first 256 bytes of config space (the capability list lives there).
pub fn read_config_space(pci: &PciDevice) -> Result<Vec<u8>> {
    let mut cfg = vec![0u8; 256];
    pci.read_config(0, &mut cfg)?;
    Ok(cfg)
}

/// True if BAR `bar` of a config image is an I/O-space BAR (bit 0 set, PCI 3.0 6.2.5.1).
pub fn is_io_bar(cfg: &[u8], bar: u8) -> bool {
    let o = pci_cfg::BAR0 + 4 * bar as usize;
    cfg.get(o).is_some_and(|b| b & 1 == 1)
}

impl Transport {
    /// Opens the legacy interface (I/O BAR 0). Crate-private: a transport can point the
    /// device's queues anywhere ([`Transport::setup_queue`]).
    pub(crate) fn legacy(pci: &PciDevice) -> Result<Self> {
        Ok(Transport::Legacy(LegacyTransport {
            bar: pci.io_bar(0)?,
            config: legacy_reg::CONFIG_NO_MSIX,
        }))
    }

    /// Opens the modern interface described by `caps`, mapping the BARs it names.
    /// Crate-private, like [`Transport::legacy`].
    pub(crate) fn modern(pci: &PciDevice, caps: &VirtioCaps) -> Result<Self> {
        let name = pci.name().to_string();
        let mut bars: Vec<MappedBar> = Vec::new();
        let mut locate = |r: CapRegion, min_len: u32, what: &str| -> Result<(usize, usize)> {
            if r.length < min_len {
                return Err(Error::device(
                    &name,
                    format!(
                        "virtio {what} structure is {} bytes, need {min_len}",
                        r.length
                    ),
                ));
            }
            let idx = match bars.iter().position(|b| b.bar == r.bar) {
                Some(i) => i,
                None => {
                    bars.push(MappedBar {
                        bar: r.bar,
                        region: pci.map_bar(r.bar)?,
                    });
                    bars.len() - 1
                }
            };
            let end = r.offset as u64 + r.length as u64;
            if end > bars[idx].region.len() as u64 {
                return Err(Error::device(
                    &name,
                    format!(
                        "virtio {what} structure ({:#x}+{:#x}) lies outside BAR{} ({} bytes)",
                        r.offset,
                        r.length,
                        r.bar,
                        bars[idx].region.len()
                    ),
                ));
            }
            Ok((idx, r.offset as usize))
        };
        let common = locate(caps.common, common::LEN, "common config")?;
        let notify = locate(caps.notify, 2, "notification")?;
        let device = match caps.device {
            Some(d) => {
                let (i, o) = locate(d, 1, "device config")?;
                Some((i, o, d.length as usize))
            }
            None => None,
        };
        Ok(Transport::Modern(ModernTransport {
            bars,
            common,
            notify,
            notify_len: caps.notify.length as usize,
            notify_off_multiplier: caps.notify_off_multiplier,
            device,
            doorbells: Vec::new(),
        }))
    }

    /// True for the modern interface.
    pub fn is_modern(&self) -> bool {
        matches!(self, Transport::Modern(_))
    }

    /// Reads the device status byte.
    pub fn status(&self) -> Result<u8> {
        match self {
            Transport::Legacy(t) => t.bar.read8(legacy_reg::DEVICE_STATUS),
            Transport::Modern(t) => Ok(t.common().read8(t.common.1 + common::DEVICE_STATUS)),
        }
    }

    /// Writes the device status byte (0 resets the device).
    pub fn set_status(&self, s: u8) -> Result<()> {
        match self {
            Transport::Legacy(t) => t.bar.write8(legacy_reg::DEVICE_STATUS, s),
            Transport::Modern(t) => {
                t.common().write8(t.common.1 + common::DEVICE_STATUS, s);
                Ok(())
            }
        }
    }

    /// The device's feature bits (legacy devices have 32).
    pub fn device_features(&self) -> Result<u64> {
        match self {
            Transport::Legacy(t) => Ok(t.bar.read32(legacy_reg::DEVICE_FEATURES)? as u64),
            Transport::Modern(t) => {
                let (c, o) = (t.common(), t.common.1);
                c.write32(o + common::DEVICE_FEATURE_SELECT, 0);
                let lo = c.read32(o + common::DEVICE_FEATURE) as u64;
                c.write32(o + common::DEVICE_FEATURE_SELECT, 1);
                let hi = c.read32(o + common::DEVICE_FEATURE) as u64;
                Ok(hi << 32 | lo)
            }
        }
    }

    /// Tells the device which features the driver uses.
    pub fn set_driver_features(&self, features: u64) -> Result<()> {
        match self {
            Transport::Legacy(t) => t.bar.write32(legacy_reg::DRIVER_FEATURES, features as u32),
            Transport::Modern(t) => {
                let (c, o) = (t.common(), t.common.1);
                c.write32(o + common::DRIVER_FEATURE_SELECT, 0);
                c.write32(o + common::DRIVER_FEATURE, features as u32);
                c.write32(o + common::DRIVER_FEATURE_SELECT, 1);
                c.write32(o + common::DRIVER_FEATURE, (features >> 32) as u32);
                Ok(())
            }
        }
    }

    /// Number of virtqueues the device has (modern only; `None` for legacy).
    pub fn num_queues(&self) -> Option<u16> {
        match self {
            Transport::Legacy(_) => None,
            Transport::Modern(t) => Some(t.common().read16(t.common.1 + common::NUM_QUEUES)),
        }
    }

    /// Selects queue `index` and returns its maximum size (0: the queue does not exist).
    pub fn queue_max_size(&self, index: u16) -> Result<u16> {
        match self {
            Transport::Legacy(t) => {
                t.bar.write16(legacy_reg::QUEUE_SELECT, index)?;
                t.bar.read16(legacy_reg::QUEUE_SIZE)
            }
            Transport::Modern(t) => {
                if t.num_queues() <= index {
                    return Ok(0);
                }
                let (c, o) = (t.common(), t.common.1);
                c.write16(o + common::QUEUE_SELECT, index);
                Ok(c.read16(o + common::QUEUE_SIZE))
            }
        }
    }

    /// Gives the device the ring of queue `index` (size `size`, parts at the given bus
    /// addresses) and enables it. Legacy devices take only the descriptor table address
    /// as a page number and find the other parts by the legacy layout.
    pub fn setup_queue(
        &mut self,
        index: u16,
        size: u16,
        desc: u64,
        driver: u64,
        device: u64,
    ) -> std::result::Result<(), Error> {
        match self {
            Transport::Legacy(t) => {
                // The legacy queue address register holds a 4096-byte page number (32 bits).
                if !desc.is_multiple_of(4096) || desc >> 12 > u32::MAX as u64 {
                    return Err(Error::config(format!(
                        "virtqueue memory at {desc:#x} is not reachable by a legacy device"
                    )));
                }
                t.bar.write16(legacy_reg::QUEUE_SELECT, index)?;
                t.bar
                    .write32(legacy_reg::QUEUE_ADDRESS, (desc >> 12) as u32)
            }
            Transport::Modern(t) => {
                let (c, o) = (t.common(), t.common.1);
                c.write16(o + common::QUEUE_SELECT, index);
                // The driver may choose a smaller size than the maximum (4.1.4.3).
                c.write16(o + common::QUEUE_SIZE, size);
                write64(c, o + common::QUEUE_DESC, desc);
                write64(c, o + common::QUEUE_DRIVER, driver);
                write64(c, o + common::QUEUE_DEVICE, device);
                let notify_off = c.read16(o + common::QUEUE_NOTIFY_OFF) as usize;
                let off = notify_off * t.notify_off_multiplier as usize;
                if off + 2 > t.notify_len {
                    return Err(Error::config(format!(
                        "doorbell of virtqueue {index} ({off:#x}) lies outside the \
                         notification area ({} bytes)",
                        t.notify_len
                    )));
                }
                c.write16(o + common::QUEUE_ENABLE, 1);
                let i = index as usize;
                if t.doorbells.len() <= i {
                    t.doorbells.resize(i + 1, None);
                }
                t.doorbells[i] = Some(t.notify.1 + off);
                Ok(())
            }
        }
    }

    /// Rings the doorbell of queue `index`.
    #[inline]
    pub fn notify(&self, index: u16) -> Result<()> {
        match self {
            Transport::Legacy(t) => t.bar.write16(legacy_reg::QUEUE_NOTIFY, index),
            Transport::Modern(t) => {
                if let Some(Some(off)) = t.doorbells.get(index as usize) {
                    t.bars[t.notify.0].region.write16(*off, index);
                }
                Ok(())
            }
        }
    }

    /// The device config generation (modern: `config_generation`, 4.1.4.3), which changes
    /// whenever the device changes its config. `None` on the legacy interface, which has no
    /// such counter.
    pub fn config_generation(&self) -> Option<u8> {
        match self {
            Transport::Legacy(_) => None,
            Transport::Modern(t) => Some(t.common().read8(t.common.1 + common::CONFIG_GENERATION)),
        }
    }

    /// Reads a byte of the device-specific configuration.
    pub fn config_read8(&self, offset: usize) -> Result<u8> {
        match self {
            Transport::Legacy(t) => t.bar.read8(t.config + offset as u64),
            Transport::Modern(t) => {
                let (r, o) = t.device_cfg(offset, 1)?;
                Ok(r.read8(o))
            }
        }
    }

    /// Reads a little-endian 16-bit field of the device-specific configuration.
    pub fn config_read16(&self, offset: usize) -> Result<u16> {
        match self {
            Transport::Legacy(t) => t.bar.read16(t.config + offset as u64),
            Transport::Modern(t) => {
                let (r, o) = t.device_cfg(offset, 2)?;
                Ok(u16::from_le(r.read16(o)))
            }
        }
    }

    /// Writes a byte of the device-specific configuration (legacy devices only: modern
    /// drivers must not write fields such as the MAC, 5.1.4.2).
    pub fn config_write8(&self, offset: usize, value: u8) -> Result<()> {
        match self {
            Transport::Legacy(t) => t.bar.write8(t.config + offset as u64, value),
            Transport::Modern(_) => Err(Error::config(
                "the device config of a modern virtio device is read-only for the driver",
            )),
        }
    }

    /// Tells the transport that MSI-X was enabled on the function (legacy: the device
    /// config moves from 0x14 to 0x18, 4.1.4.8).
    pub fn msix_enabled(&mut self) {
        if let Transport::Legacy(t) = self {
            t.config = legacy_reg::CONFIG_MSIX;
        }
    }

    /// Routes configuration-change interrupts to MSI-X `vector` (or
    /// [`VIRTIO_MSI_NO_VECTOR`]). Returns the vector the device accepted.
    pub fn set_config_vector(&self, vector: u16) -> Result<u16> {
        match self {
            Transport::Legacy(t) => {
                t.bar.write16(legacy_reg::CONFIG_MSIX_VECTOR, vector)?;
                t.bar.read16(legacy_reg::CONFIG_MSIX_VECTOR)
            }
            Transport::Modern(t) => {
                let (c, o) = (t.common(), t.common.1);
                c.write16(o + common::MSIX_CONFIG, vector);
                Ok(c.read16(o + common::MSIX_CONFIG))
            }
        }
    }

    /// Routes used-buffer interrupts of queue `index` to MSI-X `vector`. Returns the vector
    /// the device accepted ([`VIRTIO_MSI_NO_VECTOR`] if it refused, 4.1.5.1.2).
    pub fn set_queue_vector(&self, index: u16, vector: u16) -> Result<u16> {
        match self {
            Transport::Legacy(t) => {
                t.bar.write16(legacy_reg::QUEUE_SELECT, index)?;
                t.bar.write16(legacy_reg::QUEUE_MSIX_VECTOR, vector)?;
                t.bar.read16(legacy_reg::QUEUE_MSIX_VECTOR)
            }
            Transport::Modern(t) => {
                let (c, o) = (t.common(), t.common.1);
                c.write16(o + common::QUEUE_SELECT, index);
                c.write16(o + common::QUEUE_MSIX_VECTOR, vector);
                Ok(c.read16(o + common::QUEUE_MSIX_VECTOR))
            }
        }
    }
}

/// Writes a 64-bit field as two 32-bit halves, low first (4.1.3.1: drivers may do so).
fn write64(r: &MmioRegion, offset: usize, v: u64) {
    r.write32(offset, v as u32);
    r.write32(offset + 4, (v >> 32) as u32);
}

impl ModernTransport {
    fn common(&self) -> &MmioRegion {
        &self.bars[self.common.0].region
    }

    fn num_queues(&self) -> u16 {
        self.common().read16(self.common.1 + common::NUM_QUEUES)
    }

    fn device_cfg(&self, offset: usize, len: usize) -> Result<(&MmioRegion, usize)> {
        match self.device {
            Some((i, o, l)) if offset + len <= l => Ok((&self.bars[i].region, o + offset)),
            _ => Err(Error::config(format!(
                "device config field at {offset:#x} is outside the device's config structure"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let caps = parse_capabilities(&qemu_like_config()).unwrap().unwrap();
        assert_eq!(
            caps.common,
            CapRegion {
                bar: 4,
                offset: 0,
                length: 0x1000
            }
        );
        assert_eq!(caps.isr.offset, 0x1000);
        assert_eq!(caps.device.unwrap().offset, 0x2000);
        assert_eq!(caps.notify.offset, 0x3000);
        assert_eq!(caps.notify_off_multiplier, 4);
        assert_eq!(caps.msix_vectors, Some(4));
    }

    #[test]
    fn the_first_capability_of_a_type_wins() {
        let mut c = qemu_like_config();
        // Insert a second common cfg cap (BAR 2) at the end of the list: ignored.
        c[0x41] = 0xa0;
        c[0xa0..0xb0].copy_from_slice(&[9, 0, 16, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
        let caps = parse_capabilities(&c).unwrap().unwrap();
        assert_eq!(caps.common.bar, 4);
    }

    #[test]
    fn a_legacy_device_has_no_modern_capabilities() {
        let mut c = vec![0u8; 256];
        assert_eq!(parse_capabilities(&c), Ok(None));
        // Capability list with only MSI-X.
        c[0x06] = 0x10;
        c[0x34] = 0x40;
        c[0x40..0x44].copy_from_slice(&[0x11, 0, 2, 0]);
        assert_eq!(parse_capabilities(&c), Ok(None));
    }

    #[test]
    fn looping_or_bad_capability_lists_are_errors() {
        let mut c = vec![0u8; 256];
        c[0x06] = 0x10;
        c[0x34] = 0x40;
        c[0x40..0x42].copy_from_slice(&[0x09, 0x40]); // points to itself
        assert_eq!(
            parse_capabilities(&c).unwrap_err(),
            "malformed capability list (entry at 0x40)"
        );
        c[0x34] = 0x10; // inside the header
        assert_eq!(
            parse_capabilities(&c).unwrap_err(),
            "malformed capability list (entry at 0x10)"
        );
    }

    #[test]
    fn reserved_bar_numbers_are_skipped() {
        let mut c = qemu_like_config();
        c[0x40 + 4] = 7; // common cfg in "BAR 7"
        assert_eq!(parse_capabilities(&c), Ok(None));
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
        let region = unsafe { MmioRegion::from_raw_parts(mem.0.cast(), 0x300, None) };
        let t = Transport::Modern(ModernTransport {
            bars: vec![MappedBar { bar: 4, region }],
            common: (0, 0),
            notify: (0, 0x100),
            notify_len: 0x100,
            notify_off_multiplier: 4,
            device: Some((0, 0x200, 0x100)),
            doorbells: Vec::new(),
        });
        (t, mem)
    }

    #[test]
    fn modern_queue_setup_writes_the_common_config_at_the_spec_offsets() {
        let (mut t, mem) = modern_on_memory();
        // The device's side: 3 queues, queue_notify_off 5 for the selected queue.
        mem.set(0x10 / 8, 3 << 16); // num_queues at 0x12
        mem.set(0x18 / 8, 5 << 48); // queue_notify_off at 0x1e
        t.setup_queue(
            2,
            128,
            0x1122_3344_5566_7000,
            0xaabb_ccdd_0000_1000,
            0x10_0000_2000,
        )
        .unwrap();
        t.notify(2).unwrap();
        let b = mem.bytes();
        let le16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let le64 = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(le16(0x16), 2, "queue_select");
        assert_eq!(le16(0x18), 128, "queue_size");
        assert_eq!(le16(0x1c), 1, "queue_enable");
        assert_eq!(le64(0x20), 0x1122_3344_5566_7000, "queue_desc");
        assert_eq!(le64(0x28), 0xaabb_ccdd_0000_1000, "queue_driver");
        assert_eq!(le64(0x30), 0x10_0000_2000, "queue_device");
        // Doorbell: notify area + queue_notify_off * notify_off_multiplier, 16-bit index.
        assert_eq!(le16(0x100 + 5 * 4), 2);
        assert_eq!(t.queue_max_size(3).unwrap(), 0, "beyond num_queues");
    }

    #[test]
    fn modern_status_generation_and_vectors_use_their_own_bytes() {
        let (t, mem) = modern_on_memory();
        mem.set(0x10 / 8, 0x2a << 40); // config_generation at 0x15
        t.set_status(0x0b).unwrap();
        assert_eq!(t.config_generation(), Some(0x2a));
        assert_eq!(t.set_queue_vector(1, 7).unwrap(), 7);
        assert_eq!(t.set_config_vector(VIRTIO_MSI_NO_VECTOR).unwrap(), 0xffff);
        let b = mem.bytes();
        assert_eq!(b[0x14], 0x0b, "device_status");
        assert_eq!(b[0x15], 0x2a, "config_generation untouched");
        assert_eq!(&b[0x10..0x12], &[0xff, 0xff], "msix_config");
        assert_eq!(&b[0x1a..0x1c], &[7, 0], "queue_msix_vector");
        assert_eq!(&b[0x16..0x18], &[1, 0], "queue_select");
        // The device config is bounded by its capability's length.
        mem.set(0x200 / 8, 0x0605_0403_0201);
        assert_eq!(t.config_read8(5).unwrap(), 6);
        assert!(t.config_read16(0xff).is_err());
    }

    #[test]
    fn io_bars_are_recognised() {
        let mut c = vec![0u8; 256];
        c[0x10] = 0x01;
        c[0x20] = 0x0c;
        assert!(is_io_bar(&c, 0));
        assert!(!is_io_bar(&c, 4));

        // Whole little-endian BARs: BAR0 I/O at 0xc040 (low byte 0x41, not just bit 0),
        // BAR1 32-bit memory, BAR2 unused, BAR3 I/O at 0xd0f0, BAR4/5 a 64-bit
        // prefetchable memory BAR.
        let bars: [u32; 6] = [0x0000_c041, 0xfebd_1000, 0, 0x0000_d0f1, 0xfe00_000c, 0];
        let mut c = vec![0u8; 256];
        for (i, b) in bars.iter().enumerate() {
            c[0x10 + 4 * i..0x14 + 4 * i].copy_from_slice(&b.to_le_bytes());
        }
        assert_eq!(
            (0..6).map(|bar| is_io_bar(&c, bar)).collect::<Vec<_>>(),
            vec![true, false, false, true, false, false]
        );
        // Beyond the config image or a config image too short: not an I/O BAR.
        assert!(!is_io_bar(&c, 60), "offset 0x100 is past the 256 bytes");
        assert!(!is_io_bar(&c[..0x10], 0));
        assert!(is_io_bar(&c[..0x11], 0));
    }
}
