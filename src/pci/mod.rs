//! PCI access through sysfs: finding a device, identifying it, taking it from its kernel
//! driver (with a guard against cutting an active link), enabling bus mastering and mapping
//! or accessing its BARs.
//!
//! Everything goes through `/sys/bus/pci/devices/<address>/`: `config` (config space),
//! `driver/unbind`, `resourceN` (BARs; mmap for memory BARs, pread/pwrite for I/O BARs) —
//! unless the device is bound to `vfio-pci`: then config space, BARs, bus mastering and
//! interrupts go through VFIO (`pci/vfio.rs`), and DMA memory is mapped through the IOMMU.

mod guard;
mod list;
pub(crate) mod vfio;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::RawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::str::FromStr;

use crate::DeviceConfig;
use crate::error::{Error, Result};
use crate::memory::dma::map_shared;
use crate::registers::MmioRegion;

pub use guard::InterfaceState;
pub use list::{NicInfo, list_nics};
pub use vfio::IrqMode;

/// A PCI address `domain:bus:device.function`, e.g. `0000:03:00.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciAddress {
    /// PCI domain (segment), 16 bits.
    pub domain: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number, 0-31.
    pub device: u8,
    /// Function number, 0-7.
    pub function: u8,
}

impl FromStr for PciAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidPciAddress {
            address: s.to_string(),
            reason,
        };
        // 1 to `len` hex digits, at most `max`.
        let hex = |part: &str, len: usize, max: u32, what| {
            let digits = part.bytes().all(|b| b.is_ascii_hexdigit());
            let value = u32::from_str_radix(part, 16).ok();
            let value = value.filter(|&v| digits && part.len() <= len && v <= max);
            value.ok_or_else(|| bad(what))
        };
        let (rest, function) = s
            .rsplit_once('.')
            .ok_or_else(|| bad("missing '.function'"))?;
        let (domain, bus, device) = match rest.split(':').collect::<Vec<_>>()[..] {
            // The domain may be left out: `03:00.0` means `0000:03:00.0`.
            [bus, device] => ("0", bus, device),
            [domain, bus, device] => (domain, bus, device),
            _ => return Err(bad("expected domain:bus:device.function")),
        };
        Ok(PciAddress {
            domain: hex(domain, 4, 0xffff, "domain must be up to 4 hex digits")? as u16,
            bus: hex(bus, 2, 0xff, "bus must be up to 2 hex digits")? as u8,
            device: hex(device, 2, 0x1f, "device must be 2 hex digits, at most 1f")? as u8,
            function: hex(function, 1, 7, "function must be one digit 0-7")? as u8,
        })
    }
}

impl std::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (domain, bus, device, function) = (self.domain, self.bus, self.device, self.function);
        write!(f, "{domain:04x}:{bus:02x}:{device:02x}.{function:x}")
    }
}

/// What a device says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    /// The device's address.
    pub address: PciAddress,
    /// Vendor id (config offset 0x00).
    pub vendor: u16,
    /// Device id (config offset 0x02).
    pub device: u16,
    /// Class code, subclass and programming interface (config offsets 0x0b..0x09).
    pub class: u32,
}

/// PCI vendor ids (pci.ids).
pub(crate) const VENDOR_INTEL: u16 = 0x8086;
/// Red Hat / Qumranet, the virtio vendor id (virtio spec 1.1, 4.1.2).
pub(crate) const VENDOR_VIRTIO: u16 = 0x1af4;
/// Legacy or transitional virtio-net (virtio spec 1.1, 4.1.2.1).
pub(crate) const DEVICE_VIRTIO_NET_LEGACY: u16 = 0x1000;
/// Modern (virtio 1.0) virtio-net: 0x1040 + device type 1.
pub(crate) const DEVICE_VIRTIO_NET_MODERN: u16 = 0x1041;

/// The command register and its bits (PCI Local Bus spec 3.0, 6.2.2).
const COMMAND: u64 = 0x04;
const COMMAND_MEMORY: u16 = 1 << 1;
const COMMAND_BUS_MASTER: u16 = 1 << 2;

/// PCI base class of network controllers (PCI Code and ID Assignment spec, 1.3).
const CLASS_NETWORK: u32 = 0x02;

/// Which driver handles a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// virtio-net: legacy or transitional (`1af4:1000`) or modern-only (`1af4:1041`,
    /// virtio 1.0) device.
    Virtio,
    /// Intel 82599/X520, X540 or X550 physical function (ixgbe).
    Ixgbe,
    /// Intel 82599, X540 or X550 SR-IOV virtual function (ixgbevf).
    Ixgbevf,
    /// Intel 82576 physical function (igb).
    Igb,
    /// Intel 82576 SR-IOV virtual function (igbvf).
    Igbvf,
}

impl DriverKind {
    /// The driver's name, as [`crate::IxyDevice::driver_name`] reports it.
    pub fn name(self) -> &'static str {
        DRIVERS[self as usize].1
    }

    /// The model name of `device` in this kind's id table.
    pub(crate) fn model(self, vendor: u16, device: u16) -> Option<&'static str> {
        let (_, _, v, ids) = DRIVERS[self as usize];
        let found = ids.iter().find(|&&(d, _)| v == vendor && d == device);
        found.map(|&(_, name)| name)
    }
}

/// (device id, model name) pairs of one vendor's devices.
type IdTable = &'static [(u16, &'static str)];

/// Each kind of driver (in the order of [`DriverKind`]) with its name, the vendor and the
/// devices it drives.
const DRIVERS: [(DriverKind, &str, u16, IdTable); 5] = {
    use DriverKind as K;
    [
        (K::Virtio, "virtio", VENDOR_VIRTIO, VIRTIO_IDS),
        (K::Ixgbe, "ixgbe", VENDOR_INTEL, IXGBE_DEVICE_IDS),
        (K::Ixgbevf, "ixgbevf", VENDOR_INTEL, IXGBEVF_DEVICE_IDS),
        (K::Igb, "igb", VENDOR_INTEL, IGB_DEVICE_IDS),
        (K::Igbvf, "igbvf", VENDOR_INTEL, IGBVF_DEVICE_IDS),
    ]
};

/// The virtio-net device ids (virtio spec 1.1, 4.1.2.1); the legacy id is also that of
/// transitional devices.
const VIRTIO_IDS: IdTable = &[
    (DEVICE_VIRTIO_NET_LEGACY, "virtio-net (legacy)"),
    (DEVICE_VIRTIO_NET_MODERN, "virtio-net 1.0"),
];

// The Intel drivers' device ids: one table per driver, in the driver.
pub use crate::igb::DEVICE_IDS as IGB_DEVICE_IDS;
pub use crate::igbvf::DEVICE_IDS as IGBVF_DEVICE_IDS;
pub use crate::ixgbe::DEVICE_IDS as IXGBE_DEVICE_IDS;
pub use crate::ixgbevf::DEVICE_IDS as IXGBEVF_DEVICE_IDS;

impl DeviceId {
    /// The error for a network controller no driver handles.
    pub fn unsupported(&self) -> Error {
        self.unsupported_because(match self.vendor {
            VENDOR_INTEL => {
                "this Intel device is not one of the 82599/X520, X540 or X550 physical \
                 functions ixgbe supports (device ids: ixy::pci::IXGBE_DEVICE_IDS), one of \
                 their virtual functions (ixy::pci::IXGBEVF_DEVICE_IDS) nor an 82576 \
                 or its VF (ixy::pci::IGB_DEVICE_IDS, IGBVF_DEVICE_IDS); leave it to its \
                 kernel driver"
            }
            _ => "no ixy driver for this vendor/device id",
        })
    }

    fn unsupported_because(&self, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            address: self.address.to_string(),
            vendor: self.vendor,
            device: self.device,
            reason: reason.into(),
        }
    }
}

/// Picks the driver for a network controller, or `None` if no driver fits.
pub fn driver_for(id: &DeviceId) -> Option<DriverKind> {
    let mut kinds = DRIVERS.iter().map(|d| d.0);
    kinds.find(|kind| kind.model(id.vendor, id.device).is_some())
}

/// What the device at `path` is, from the sysfs attributes `vendor`, `device` and `class`:
/// readable without VFIO or root, and right for an SR-IOV virtual function too, whose
/// config space reads 0xFFFF there (PCI SR-IOV spec 3.4.1.1/3.4.1.2). Only a network
/// controller has an identity here: anything else is [`Error::NotANic`].
fn identify(address: PciAddress, path: &Path) -> Result<DeviceId> {
    let attr = |name: &str| -> Result<u32> {
        let file = path.join(name);
        let text = fs::read_to_string(&file);
        let text = text.map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
        let text = text.trim();
        let bad = format!("{} holds {text:?}, not a hex number", file.display());
        u32::from_str_radix(text.trim_start_matches("0x"), 16)
            .map_err(|_| Error::device(address, bad))
    };
    let class = attr("class")?;
    if class >> 16 != CLASS_NETWORK {
        let address = address.to_string();
        return Err(Error::NotANic { address, class });
    }
    Ok(DeviceId {
        address,
        vendor: attr("vendor")? as u16,
        device: attr("device")? as u16,
        class,
    })
}

/// Name of the kernel driver the device at `path` is bound to, if any.
fn kernel_driver(path: &Path) -> Option<String> {
    let link = fs::read_link(path.join("driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// A network controller found in sysfs.
///
/// Its public methods find and observe the device: none can make it start DMA. What can
/// — claiming it from its kernel driver, config-space writes (bus mastering), memory and
/// I/O BAR access (ring addresses) — is crate-private, for the drivers, which hand the
/// device only their own DMA memory (and route its interrupts through VFIO):
///
/// ```compile_fail,E0624
/// let dev = ixy::pci::PciDevice::open("0000:00:04.0").unwrap();
/// dev.enable_bus_master().unwrap(); // private: the device would DMA to stale rings
/// ```
#[derive(Debug)]
pub struct PciDevice {
    id: DeviceId,
    name: String,
    path: PathBuf,
    /// Present when the device is bound to vfio-pci.
    vfio: Option<vfio::VfioDevice>,
    /// Where the interface guard reads the state of the device's interfaces.
    net: guard::NetView,
}

/// Root of the sysfs PCI device tree.
const SYSFS_PCI_DEVICES: &str = "/sys/bus/pci/devices";

/// Name of the kernel driver that hands devices to user space through VFIO.
pub(crate) const VFIO_PCI_DRIVER: &str = "vfio-pci";

impl PciDevice {
    /// Finds the network controller at `address` (a string like `0000:03:00.0`) and reads
    /// what it is.
    ///
    /// A device bound to vfio-pci is opened through VFIO, but only if a driver of this
    /// crate supports it; others are refused (before VFIO is touched).
    pub fn open(address: &str) -> Result<Self> {
        let address: PciAddress = address.trim().parse()?;
        Self::open_at(address, Path::new(SYSFS_PCI_DEVICES))
    }

    pub(crate) fn open_at(address: PciAddress, root: &Path) -> Result<Self> {
        let name = address.to_string();
        let path = root.join(&name);
        if !path.join("config").exists() {
            return Err(Error::NoSuchDevice { address: name });
        }
        let id = identify(address, &path)?;
        let vfio = match kernel_driver(&path).as_deref() {
            // Opening it through VFIO creates the process-wide container, which sends every
            // later DMA allocation of the process through the IOMMU: only for a device a
            // driver of this crate takes.
            Some(VFIO_PCI_DRIVER) if driver_for(&id).is_none() => return Err(id.unsupported()),
            Some(VFIO_PCI_DRIVER) => Some(vfio::VfioDevice::open(&name, &path)?),
            _ => None,
        };
        Ok(PciDevice {
            id,
            name,
            path,
            vfio,
            net: guard::NetView::kernel(),
        })
    }

    /// What the device is (read once, when it was opened).
    pub fn id(&self) -> &DeviceId {
        &self.id
    }

    /// True if the device is driven through VFIO (it is bound to vfio-pci).
    pub fn is_vfio(&self) -> bool {
        self.vfio.is_some()
    }

    /// Enables interrupts with vector `i` signalling eventfd `fds[i]`, by the first of
    /// `modes` (MSI-X, MSI) for which the function has enough vectors (VFIO only: sysfs
    /// cannot deliver interrupts). The device must then be programmed to raise vector `i`
    /// for queue `i`.
    pub(crate) fn enable_irqs(&self, fds: &[RawFd], modes: &[IrqMode]) -> Result<IrqMode> {
        let detail = "interrupts need the device bound to vfio-pci (scripts/vfio-bind.sh); \
                      through sysfs only polling works";
        match &self.vfio {
            Some(vfio) => vfio.enable_irqs(fds, modes),
            None => Err(Error::vfio(&self.name, detail)),
        }
    }

    /// Refuses the device (not on vfio-pci: `claim` calls this only then) if it must be:
    /// VFIO is required (`cfg.require_vfio` or `IXY_VFIO=1`), the process runs without
    /// root, or another device of the process is driven through VFIO (DMA memory then comes
    /// with I/O virtual addresses, which a device without VFIO would take as physical
    /// addresses; the other direction is refused when the VFIO container would be created).
    fn check_vfio_rule(&self, cfg: &DeviceConfig) -> Result<()> {
        let required = cfg.require_vfio || std::env::var("IXY_VFIO").is_ok_and(|v| v == "1");
        let (why, or) = match () {
            _ if required => ("VFIO is required (IXY_VFIO=1 / require_vfio)", ""),
            _ if !vfio::is_root() => (
                "without root a device can only be driven through VFIO",
                " (or run as root)",
            ),
            _ if vfio::active_container().is_some() => (
                "another device of this process is (its DMA memory is mapped through the \
                 IOMMU, which all devices of a process must share)",
                " (or drive no device of this process through VFIO)",
            ),
            _ => return Ok(()),
        };
        let driver =
            kernel_driver(&self.path).map_or("no driver".into(), |d| format!("driver {d}"));
        let detail = format!(
            "the device is bound to {driver}, not vfio-pci, and {why}; bind it to vfio-pci \
             and give your user its group: `sudo scripts/vfio-bind.sh {} $USER`{or}",
            self.name
        );
        Err(Error::vfio(&self.name, detail))
    }

    /// The device's address as a string.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `io` on the file config space is in (the sysfs `config` file, or the VFIO
    /// device fd) with the offset of config space in it.
    fn config_io(&self, write: bool, io: impl FnOnce(&File, u64) -> io::Result<()>) -> Result<()> {
        let verb = if write { "write" } else { "read" };
        let fail = |e| Error::io(format!("cannot {verb} config space of {}", self.name), e);
        if let Some(v) = &self.vfio {
            return io(&v.fd, v.config_offset).map_err(fail);
        }
        let path = self.path.join("config");
        let file = OpenOptions::new().read(true).write(write).open(path);
        io(&file.map_err(fail)?, 0).map_err(fail)
    }

    /// Reads `buf.len()` bytes of config space at `offset`.
    pub fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.config_io(false, |file, base| file.read_exact_at(buf, base + offset))
    }

    /// Writes `buf` to config space at `offset`.
    ///
    /// Crate-private: config writes (bus mastering, BARs) on a device that can DMA are
    /// memory-unsafe outside the drivers, which first give the device memory it may use.
    pub(crate) fn write_config(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.config_io(true, |file, base| file.write_all_at(buf, base + offset))
    }

    /// The one claim of a device by a driver: every check first, in this order, and only
    /// if all pass the device is taken from its kernel driver. The device must be of `kind`
    /// (the driver's) and pass the driver's own `check` of its identity; without VFIO, it
    /// must be allowed to run without VFIO ([`PciDevice::check_vfio_rule`]) and the
    /// hugetlbfs mount for its DMA memory must exist (a device taken from its kernel driver
    /// and then not driven would be left without a driver).
    pub(crate) fn claim(
        &self,
        cfg: &DeviceConfig,
        kind: DriverKind,
        check: impl FnOnce(&DeviceId) -> Result<()>,
    ) -> Result<()> {
        let id = &self.id;
        let found = driver_for(id).ok_or_else(|| id.unsupported())?;
        if found != kind {
            let (want, found) = (kind.name(), found.name());
            return Err(id.unsupported_because(format!(
                "the {want} driver does not drive it; it is a device for the {found} driver \
                 (ixy::ixy_init and DeviceConfig::open pick the right one)"
            )));
        }
        check(id)?;
        if self.vfio.is_none() {
            self.check_vfio_rule(cfg)?;
            cfg.dma().check_mount()?;
        }
        self.unbind(cfg.force_unbind)
    }

    /// Takes the device from its kernel driver, if it has one other than vfio-pci.
    ///
    /// Refuses with [`Error::InterfaceActive`] if the device has a kernel network interface
    /// that is up with an address or a route, unless `force` is set.
    fn unbind(&self, force: bool) -> Result<()> {
        let driver = kernel_driver(&self.path);
        let Some(driver) = driver.filter(|_| self.vfio.is_none()) else {
            return Ok(());
        };
        if let Some(active) = self.net.first_active(&self.path).filter(|_| !force) {
            return Err(Error::InterfaceActive {
                address: self.name.clone(),
                detail: active.describe(),
                interface: active.name,
            });
        }
        let unbind = self.path.join("driver/unbind");
        log::info!("unbinding {} from kernel driver {driver}", self.name);
        let (name, path) = (&self.name, unbind.display());
        let what = || format!("cannot unbind {name} from {driver} (writing {path}; needs root)");
        fs::write(&unbind, name).map_err(|e| Error::io(what(), e))
    }

    /// Sets the bus master enable bit (command register, bit 2) so the device can DMA,
    /// and memory space (bit 1) with it, as the kernel's pci_enable_device does: on an
    /// SR-IOV VF the bit is read-only zero on hardware, but QEMU (10.0) decodes a VF's BAR
    /// only once it is set.
    ///
    /// Crate-private: a device left programmed by an earlier user would DMA to stale ring
    /// addresses; only the drivers, which reset it and give it their own memory first
    /// (or right after), turn mastering on.
    pub(crate) fn enable_bus_master(&self) -> Result<()> {
        self.update_command(|cmd| cmd | COMMAND_BUS_MASTER | COMMAND_MEMORY)
    }

    /// Clears the bus master enable bit: the device can no longer start DMA. For a device
    /// that did not stop when told to, before its memory is given back.
    pub(crate) fn disable_bus_master(&self) -> Result<()> {
        self.update_command(|cmd| cmd & !COMMAND_BUS_MASTER)
    }

    /// Read-modify-write of the command register.
    fn update_command(&self, update: impl FnOnce(u16) -> u16) -> Result<()> {
        let mut cmd = [0u8; 2];
        self.read_config(COMMAND, &mut cmd)?;
        self.write_config(COMMAND, &update(u16::from_le_bytes(cmd)).to_le_bytes())
    }

    /// The file BAR `bar` is accessed through (its sysfs resource file, or the VFIO device
    /// fd), the BAR's offset in it and its size.
    fn bar(&self, bar: u8) -> Result<(File, u64, u64)> {
        if let Some(v) = &self.vfio {
            return v.region(bar);
        }
        let path = self.path.join(format!("resource{bar}"));
        let fail = |e| Error::io(format!("cannot open {} (needs root)", path.display()), e);
        let file = vfio::open_rw(&path).map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        Ok((file, 0, len))
    }

    /// Maps memory BAR `bar` into the address space.
    ///
    /// Crate-private: register writes (ring addresses) make a device DMA anywhere, so only
    /// the drivers, which hand it their own DMA memory, get a mapping.
    pub(crate) fn map_bar(&self, bar: u8) -> Result<MmioRegion> {
        let (file, offset, len) = self.bar(bar)?;
        if len == 0 {
            return Err(Error::device(&self.name, format!("BAR{bar} is empty")));
        }
        let what = || format!("cannot map BAR{bar} of {} (is it a memory BAR?)", self.name);
        // (VFIO region offsets are below 2^63.)
        let base =
            map_shared(&file, len as usize, offset as _).map_err(|e| Error::io(what(), e))?;
        fn unmap(p: NonNull<u8>, len: usize) {
            // SAFETY: exactly the mapping made in map_bar, unmapped once on drop.
            unsafe { libc::munmap(p.as_ptr().cast(), len) };
        }
        // SAFETY: a fresh, page-aligned device mapping of `len` bytes, unmapped only on drop.
        Ok(unsafe { MmioRegion::from_raw_parts(base, len as usize, Some(unmap)) })
    }

    /// Opens I/O-port BAR `bar` for reads and writes.
    ///
    /// Crate-private for the same reason as [`PciDevice::map_bar`] (a legacy virtio
    /// device takes its queue addresses through it).
    pub(crate) fn io_bar(&self, bar: u8) -> Result<IoBar> {
        let (file, base, len) = self.bar(bar)?;
        Ok(IoBar {
            file,
            base,
            len,
            name: self.name.clone(),
        })
    }
}

/// An I/O-port BAR, accessed with pread/pwrite on its sysfs resource file.
///
/// Each access is a system call: keep them off the per-packet path. Crate-private, like
/// [`PciDevice::io_bar`]: writes can point a device's queues anywhere.
#[derive(Debug)]
pub(crate) struct IoBar {
    file: File,
    /// Offset of the BAR within `file` (0 for sysfs, the region offset for VFIO).
    base: u64,
    len: u64,
    name: String,
}

impl IoBar {
    /// Runs `access` (a pread or pwrite of `width` bytes) at `offset` in the BAR.
    fn access<F>(&self, offset: usize, width: usize, verb: &str, access: F) -> Result<()>
    where
        F: FnOnce(&File, u64) -> io::Result<()>,
    {
        if (offset + width) as u64 > self.len {
            let detail = format!("I/O BAR offset {offset:#x} out of range");
            return Err(Error::device(&self.name, detail));
        }
        let what = || format!("I/O BAR {verb} of {} at {offset:#x}", self.name);
        access(&self.file, self.base + offset as u64).map_err(|e| Error::io(what(), e))
    }
}

/// Each access is one pread/pwrite of `width` bytes on the resource (or VFIO region) file.
impl crate::virtio::transport::VirtioBar for IoBar {
    fn read(&self, offset: usize, width: usize) -> Result<u32> {
        let mut b = [0u8; 4];
        let buf = &mut b[..width];
        self.access(offset, width, "read", |f, at| f.read_exact_at(buf, at))?;
        Ok(u32::from_le_bytes(b))
    }

    fn write(&self, offset: usize, width: usize, value: u32) -> Result<()> {
        let b = &value.to_le_bytes()[..width];
        self.access(offset, width, "write", |f, at| f.write_all_at(b, at))
    }

    fn size(&self) -> usize {
        self.len as usize
    }
}

/// Fake sysfs device directories for tests of the code that refuses devices.
#[cfg(test)]
pub(crate) mod testing {
    use std::fs;
    use std::path::{Path, PathBuf};

    use crate::testing::TempDir;

    /// Creates a temporary root with one device, `0000:00:04.0` (see [`fake_device`]).
    /// Returns the root (pass it to `PciDevice::open_at`; removed on drop) and the device
    /// directory.
    pub(crate) fn fake_sysfs(
        tag: &str,
        class: [u8; 3],
        vendor: u16,
        device: u16,
        driver: Option<&str>,
    ) -> (TempDir, PathBuf) {
        let root = TempDir::new(&format!("fake-{tag}"));
        let dir = fake_device(&root, "0000:00:04.0", class, vendor, device, driver);
        (root, dir)
    }

    /// Creates `<root>/<address>/` with a 64-byte `config` holding `vendor`, `device` and
    /// `class` (bytes 0x09..0x0b), the sysfs attributes `vendor`, `device` and `class`,
    /// and, with `driver`, a link `driver` to `<root>/drivers/<driver>`, a directory with
    /// an empty `unbind` file (as sysfs has). Returns the device directory.
    pub(crate) fn fake_device(
        root: &Path,
        address: &str,
        class: [u8; 3],
        vendor: u16,
        device: u16,
        driver: Option<&str>,
    ) -> PathBuf {
        let dir = root.join(address);
        fs::create_dir_all(&dir).unwrap();
        let mut cfg = vec![0u8; 64];
        cfg[0..2].copy_from_slice(&vendor.to_le_bytes());
        cfg[2..4].copy_from_slice(&device.to_le_bytes());
        cfg[9..12].copy_from_slice(&class);
        fs::write(dir.join("config"), &cfg).unwrap();
        fs::write(dir.join("vendor"), format!("0x{vendor:04x}\n")).unwrap();
        fs::write(dir.join("device"), format!("0x{device:04x}\n")).unwrap();
        let class = u32::from_le_bytes([class[0], class[1], class[2], 0]);
        fs::write(dir.join("class"), format!("0x{class:06x}\n")).unwrap();
        if let Some(driver) = driver {
            let drv = root.join("drivers").join(driver);
            fs::create_dir_all(&drv).unwrap();
            fs::write(drv.join("unbind"), "").unwrap();
            std::os::unix::fs::symlink(&drv, dir.join("driver")).unwrap();
        }
        dir
    }

    /// Opens the fake device under `root` with a driver's `open` and returns the error it
    /// must give (the caller checks which): that of `PciDevice::open_at` if it fails.
    pub(crate) fn open_error<T>(
        root: &std::path::Path,
        open: impl FnOnce(super::PciDevice) -> crate::Result<T>,
    ) -> crate::Error {
        match super::PciDevice::open_at("0000:00:04.0".parse().unwrap(), root).and_then(open) {
            Ok(_) => panic!("opening the fake device must fail"),
            Err(e) => e,
        }
    }

    /// Whether `err` is how a device not on vfio-pci is refused when its hugetlbfs mount is
    /// missing: as root the mount error; without root the VFIO rule refuses it first.
    pub(crate) fn is_mount_refusal(err: &crate::Error) -> bool {
        match super::vfio::is_root() {
            true => matches!(err, crate::Error::Hugepages { .. }),
            false => matches!(err, crate::Error::Vfio { .. }),
        }
    }

    /// What was written to the fake driver's `unbind` file.
    pub(crate) fn unbind_written(root: &std::path::Path, driver: &str) -> String {
        fs::read_to_string(root.join("drivers").join(driver).join("unbind")).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PciAddress> {
        s.parse()
    }

    #[test]
    fn parses_full_and_short_addresses() {
        let a = parse("0000:03:1f.7").unwrap();
        assert_eq!(
            a,
            PciAddress {
                domain: 0,
                bus: 3,
                device: 0x1f,
                function: 7
            }
        );
        assert_eq!(a.to_string(), "0000:03:1f.7");
        assert_eq!(parse("af:00.1").unwrap().to_string(), "0000:af:00.1");
        assert_eq!(parse("10000:00:00.0").ok(), None);
        assert_eq!(parse("ABCD:EF:01.2").unwrap().domain, 0xabcd);
    }

    #[test]
    fn rejects_malformed_addresses_with_a_reason() {
        for (s, reason) in [
            ("", "missing '.function'"),
            ("0000:zz:00.0", "bus"),
            ("0000:00:20.0", "at most 1f"),
            ("0000:00:00.8", "0-7"),
            ("0000:00:00.", "function"),
            ("0000:00:000.0", "device"),
            ("1:2:3:4.0", "domain:bus:device.function"),
            ("0000:00:1f", "missing"),
            ("0000:-1:00.0", "bus"),
        ] {
            let err = parse(s).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::InvalidPciAddress { .. }), "{s}: {msg}");
            assert!(msg.contains(reason), "{s}: {msg}");
            assert!(msg.contains("cargo run --example list"), "{msg}");
        }
    }

    #[test]
    fn missing_device_is_reported_with_its_address() {
        let dir = crate::testing::TempDir::new("pci-test");
        let err = PciDevice::open_at(parse("0000:00:1f.7").unwrap(), &dir).unwrap_err();
        assert!(err.to_string().contains("0000:00:1f.7"), "{err}");
        assert!(matches!(err, Error::NoSuchDevice { .. }));
    }

    fn fake_device(
        class: [u8; 3],
        vendor: u16,
        device: u16,
    ) -> (Result<PciDevice>, crate::testing::TempDir) {
        let (root, _) = testing::fake_sysfs(
            &format!("pci-{vendor:x}-{device:x}-{:x}", class[2]),
            class,
            vendor,
            device,
            None,
        );
        (
            PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root),
            root,
        )
    }

    #[test]
    fn a_vfio_bound_device_no_driver_takes_is_refused_before_vfio_is_opened() {
        let addr = parse("0000:00:04.0").unwrap();
        for (tag, class, vendor, device) in [
            ("vfio-nvme", [2, 8, 1], 0x144d, 0xa808),
            ("vfio-rtl", [0, 0, 2], 0x10ec, 0x8139),
        ] {
            let (root, _) = testing::fake_sysfs(tag, class, vendor, device, Some(VFIO_PCI_DRIVER));
            let err = PciDevice::open_at(addr, &root).unwrap_err();
            match tag {
                "vfio-nvme" => assert!(matches!(
                    err,
                    Error::NotANic {
                        class: 0x010802,
                        ..
                    }
                )),
                _ => assert!(matches!(err, Error::Unsupported { device: 0x8139, .. })),
            }
            // Refused before VFIO: no group was looked up, so no container exists.
            assert!(vfio::active_container().is_none());
        }
    }

    #[test]
    fn a_supported_vfio_bound_device_is_opened_through_vfio() {
        let (root, _) = testing::fake_sysfs(
            "vfio-ixgbe",
            [0, 0, 2],
            VENDOR_INTEL,
            0x10fb,
            Some("vfio-pci"),
        );
        // VFIO is tried (and finds no IOMMU group here, before any container exists).
        let err = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap_err();
        assert!(matches!(&err, Error::Vfio { detail, .. } if detail.contains("intel_iommu=on")));
        assert!(vfio::active_container().is_none());
    }

    #[test]
    fn a_device_on_vfio_is_reached_through_its_device_fd_and_never_unbound() {
        let (root, dir) = testing::fake_sysfs("vfio-fake", [0, 0, 2], VENDOR_INTEL, 0x10fb, None);
        let mut dev = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap();
        assert!(!dev.is_vfio());
        assert_eq!(dev.name(), "0000:00:04.0");
        // Without VFIO here: bind it to a fake vfio-pci and give it a stand-in device fd.
        let drv = root.join("drivers/vfio-pci");
        fs::create_dir_all(&drv).unwrap();
        fs::write(drv.join("unbind"), "").unwrap();
        std::os::unix::fs::symlink(&drv, dir.join("driver")).unwrap();
        let fd_file = root.join("vfio-device-fd");
        fs::write(&fd_file, [0x86, 0x80, 0xfb, 0x10, 0, 0]).unwrap();
        let fd = vfio::open_rw(&fd_file).unwrap();
        dev.vfio = Some(vfio::VfioDevice::fake("0000:00:04.0", fd));
        assert!(dev.is_vfio());
        dev.enable_bus_master().unwrap();
        assert_eq!(
            fs::read(&fd_file).unwrap()[4..6],
            [6, 0],
            "written through the fd"
        );
        dev.unbind(false).unwrap();
        assert_eq!(
            testing::unbind_written(&root, "vfio-pci"),
            "",
            "vfio-pci keeps it"
        );
    }

    #[test]
    fn unbinding_is_refused_while_an_interface_is_in_use_unless_forced() {
        let (root, dir) =
            testing::fake_sysfs("guard", [0, 0, 2], VENDOR_INTEL, 0x10fb, Some("ixgbe"));
        for name in ["eth8", "eth9"] {
            fs::create_dir_all(dir.join("net").join(name)).unwrap();
            fs::create_dir_all(root.join("sys/class/net").join(name)).unwrap();
        }
        fs::write(root.join("sys/class/net/eth9/flags"), "0x1003").unwrap();
        let mut dev = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap();
        dev.net = guard::NetView {
            root: root.to_path_buf(),
            addresses: |name| match name {
                "eth9" => vec!["192.0.2.9".into()],
                _ => vec![],
            },
        };
        let err = dev.unbind(false).unwrap_err();
        assert!(
            matches!(&err, Error::InterfaceActive { interface, .. } if interface == "eth9"),
            "{err}"
        );
        assert_eq!(testing::unbind_written(&root, "ixgbe"), "", "not unbound");
        dev.unbind(true).unwrap();
        assert_eq!(testing::unbind_written(&root, "ixgbe"), "0000:00:04.0");
        // With eth9 down nothing is in use, and the device is taken without force.
        fs::write(root.join("sys/class/net/eth9/flags"), "0x1002").unwrap();
        fs::write(root.join("drivers/ixgbe/unbind"), "").unwrap();
        dev.unbind(false).unwrap();
        assert_eq!(testing::unbind_written(&root, "ixgbe"), "0000:00:04.0");
    }

    #[test]
    fn bus_mastering_can_be_switched_on_and_off_again() {
        let (dev, _root) = fake_device([0, 0, 2], VENDOR_VIRTIO, DEVICE_VIRTIO_NET_LEGACY);
        let dev = dev.unwrap();
        let cmd = || {
            let mut cmd = [0u8; 2];
            dev.read_config(4, &mut cmd).unwrap();
            u16::from_le_bytes(cmd)
        };
        dev.enable_bus_master().unwrap();
        assert_eq!(cmd(), 6, "bus master and memory space");
        dev.write_config(4, &0x0107u16.to_le_bytes()).unwrap();
        dev.disable_bus_master().unwrap();
        assert_eq!(cmd(), 0x0103, "only bit 2 cleared");
        dev.enable_bus_master().unwrap();
        assert_eq!(
            cmd(),
            0x0107,
            "set again, memory space stays set, the rest kept"
        );
        dev.enable_bus_master().unwrap();
        assert_eq!(cmd(), 0x0107, "setting what is set changes nothing");
    }

    #[test]
    fn bars_are_reached_through_their_resource_files() {
        use crate::registers::RegisterSpace;
        use crate::virtio::transport::VirtioBar;
        let (root, dir) = testing::fake_sysfs("bars", [0, 0, 2], VENDOR_INTEL, 0x10fb, None);
        let dev = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap();
        // An I/O BAR of 8 bytes: little-endian accesses of 1 to 4 bytes, bounds checked.
        fs::write(dir.join("resource0"), [1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let io = dev.io_bar(0).unwrap();
        assert_eq!(io.size(), 8);
        assert_eq!(io.read(4, 4).unwrap(), 0x0807_0605);
        assert_eq!(io.read(1, 2).unwrap(), 0x0302);
        io.write(2, 2, 0xbeef).unwrap();
        assert_eq!(
            fs::read(dir.join("resource0")).unwrap(),
            [1, 2, 0xef, 0xbe, 5, 6, 7, 8]
        );
        assert!(matches!(io.read(6, 4), Err(Error::Device { .. })));
        assert!(matches!(io.write(8, 1, 0), Err(Error::Device { .. })));
        io.write(7, 1, 9).unwrap();
        // A memory BAR of one page, mapped shared: writes land in the file.
        fs::write(dir.join("resource2"), [0u8; 4096]).unwrap();
        let bar = dev.map_bar(2).unwrap();
        bar.write32(8, 0x1234_5678);
        assert_eq!(bar.read32(8), 0x1234_5678);
        assert_eq!(bar.len(), 4096);
        drop(bar);
        assert_eq!(
            fs::read(dir.join("resource2")).unwrap()[8..12],
            [0x78, 0x56, 0x34, 0x12]
        );
        // An empty BAR.
        fs::write(dir.join("resource1"), []).unwrap();
        assert!(matches!(dev.map_bar(1), Err(Error::Device { .. })));
    }

    #[test]
    fn the_device_is_identified_from_sysfs_when_opened() {
        let (root, dir) = testing::fake_sysfs("vf-ffff", [0, 0, 2], VENDOR_INTEL, 0x10ca, None);
        // An SR-IOV VF: its config space reads 0xffff for vendor and device id.
        fs::write(dir.join("config"), [0xffu8; 64]).unwrap();
        let dev = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap();
        let id = dev.id();
        assert_eq!((id.vendor, id.device, id.class), (0x8086, 0x10ca, 0x020000));
        assert_eq!(driver_for(id), Some(DriverKind::Igbvf));
        assert_eq!(id.address, parse("0000:00:04.0").unwrap());
        fs::write(dir.join("device"), "0x10zz\n").unwrap();
        let err = PciDevice::open_at(id.address, &root).unwrap_err();
        assert!(matches!(err, Error::Device { .. }), "{err}");
        assert!(err.to_string().contains("\"0x10zz\""), "{err}");
    }

    #[test]
    fn a_claim_checks_kind_driver_check_and_mount_before_unbinding() {
        let (root, _) =
            testing::fake_sysfs("claim", [0, 0, 2], VENDOR_INTEL, 0x10fb, Some("ixgbe"));
        let dev = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap();
        let cfg = DeviceConfig::new("0000:00:04.0").hugepage_dir(&*root);
        let ok = |_: &DeviceId| Ok(());
        let err = dev.claim(&cfg, DriverKind::Ixgbevf, ok).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(
            err.to_string().contains("device for the ixgbe driver"),
            "{err}"
        );
        let refuse = |id: &DeviceId| Err(Error::config(format!("{:x}", id.device)));
        let err = dev.claim(&cfg, DriverKind::Ixgbe, refuse).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { detail } if detail == "10fb"));
        // The right driver gets as far as the hugetlbfs mount (a plain directory here);
        // without root, the VFIO rule refuses the device first.
        let err = dev.claim(&cfg, DriverKind::Ixgbe, ok).unwrap_err();
        assert!(testing::is_mount_refusal(&err), "{err}");
        assert_eq!(testing::unbind_written(&root, "ixgbe"), "", "never unbound");
    }

    #[test]
    fn required_vfio_is_reported_before_a_missing_hugetlbfs_mount() {
        // With VFIO required (IXY_VFIO=1 / require_vfio) a device not on vfio-pci is
        // refused as such, not with advice to mount hugetlbfs.
        let (root, _) =
            testing::fake_sysfs("order", [0, 0, 2], VENDOR_INTEL, 0x10fb, Some("ixgbe"));
        let dev = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap();
        let mut cfg = DeviceConfig::new("0000:00:04.0").hugepage_dir(&*root);
        cfg.require_vfio = true;
        let err = dev.claim(&cfg, DriverKind::Ixgbe, |_| Ok(())).unwrap_err();
        assert!(matches!(err, Error::Vfio { .. }), "{err}");
    }

    #[test]
    fn a_device_not_on_vfio_is_refused_when_vfio_is_required() {
        let (root, _) = testing::fake_sysfs("rule", [0, 0, 2], VENDOR_INTEL, 0x10fb, Some("ixgbe"));
        let dev = PciDevice::open_at(parse("0000:00:04.0").unwrap(), &root).unwrap();
        let mut cfg = DeviceConfig::new("0000:00:04.0");
        cfg.require_vfio = true;
        let err = dev.check_vfio_rule(&cfg).unwrap_err();
        assert!(
            matches!(&err, Error::Vfio { detail, .. } if detail.contains("driver ixgbe, not vfio-pci"))
        );
        assert!(
            err.to_string().contains("vfio-bind.sh 0000:00:04.0"),
            "{err}"
        );
    }

    #[test]
    fn a_host_bridge_is_not_a_nic() {
        let (dev, _root) = fake_device([0, 0, 6], VENDOR_INTEL, 0x29c0);
        assert!(matches!(
            dev,
            Err(Error::NotANic {
                class: 0x060000,
                ..
            })
        ));
    }

    #[test]
    fn an_unknown_nic_is_unsupported_not_guessed() {
        let (dev, _root) = fake_device([0, 0, 2], 0x10ec, 0x8139);
        let dev = dev.unwrap();
        assert_eq!(driver_for(dev.id()), None);
        let err = dev.id().unsupported();
        assert!(matches!(
            err,
            Error::Unsupported {
                vendor: 0x10ec,
                device: 0x8139,
                ..
            }
        ));
        // An Intel NIC no driver takes (an e1000e): the error names the supported ids.
        let (dev, _root) = fake_device([0, 0, 2], VENDOR_INTEL, 0x10d3);
        let err = dev.unwrap().id().unsupported();
        assert!(
            matches!(err, Error::Unsupported { reason, .. } if reason.contains("IGB_DEVICE_IDS"))
        );
    }

    #[test]
    fn every_id_table_entry_picks_its_driver_and_model() {
        for (i, (kind, driver, vendor, ids)) in DRIVERS.into_iter().enumerate() {
            assert_eq!(
                (kind as usize, kind.name()),
                (i, driver),
                "in DriverKind's order"
            );
            for &(device, name) in ids {
                let address = parse("0000:00:04.0").unwrap();
                let id = DeviceId {
                    address,
                    vendor,
                    device,
                    class: 0x020000,
                };
                assert_eq!(driver_for(&id), Some(kind), "{name}");
                assert_eq!(kind.model(vendor, device), Some(name));
            }
        }
        assert_eq!(
            DriverKind::Ixgbe.model(VENDOR_VIRTIO, 0x10fb),
            None,
            "vendor counts"
        );
    }
}
