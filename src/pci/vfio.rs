//! VFIO: driving a PCI device bound to `vfio-pci` through the kernel's container / group /
//! device API, with DMA translated by the IOMMU (type1).
//!
//! Why: the device's config space, BARs and interrupts are reached through one file
//! descriptor that an unprivileged user can own (`/dev/vfio/<group>`), and DMA memory is
//! mapped at I/O virtual addresses chosen by this process, so `/proc/self/pagemap` (root
//! only) is not needed. That is what lets ixy run without root.
//!
//! Layout (linux/vfio.h, Documentation/driver-api/vfio.rst):
//! * one process-wide [`Container`] (`/dev/vfio/vfio`) holding the IOMMU context; every
//!   group joins it, so every device sees every DMA mapping (a forwarder's packets from
//!   one port's pool are reachable by the other port);
//! * a group (`/dev/vfio/N`) per IOMMU group, opened once and kept open;
//! * a [`VfioDevice`] per PCI function: regions (BARs, config space) and interrupts.
//!
//! The ioctl numbers and structures are those of linux/vfio.h (`_IO(';', 100 + n)`); the
//! structures are declared here with the same layout.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::memory::dma::DmaDomain;

/// ioctl numbers: `_IO(VFIO_TYPE, VFIO_BASE + n)` with VFIO_TYPE = ';' and VFIO_BASE = 100.
mod ioctl {
    const fn io(n: u64) -> u64 {
        ((b';' as u64) << 8) | (100 + n)
    }
    pub const GET_API_VERSION: u64 = io(0);
    pub const SET_IOMMU: u64 = io(2);
    pub const GROUP_GET_STATUS: u64 = io(3);
    pub const GROUP_SET_CONTAINER: u64 = io(4);
    pub const GROUP_GET_DEVICE_FD: u64 = io(6);
    pub const DEVICE_GET_REGION_INFO: u64 = io(8);
    pub const DEVICE_GET_IRQ_INFO: u64 = io(9);
    pub const DEVICE_SET_IRQS: u64 = io(10);
    pub const IOMMU_MAP_DMA: u64 = io(13);
    pub const IOMMU_UNMAP_DMA: u64 = io(14);
}

/// `VFIO_API_VERSION`.
const VFIO_API_VERSION: i32 = 0;
/// `VFIO_TYPE1v2_IOMMU`: offered by vfio_iommu_type1 and by
/// iommufd's VFIO compatibility, which keeps huge IOMMU pages only for v2.
const VFIO_TYPE1V2_IOMMU: usize = 3;
/// `vfio_group_status.flags`: the group's devices are all bound to VFIO (or to no driver).
const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
/// Region index of PCI config space (`VFIO_PCI_CONFIG_REGION_INDEX`); BARs are 0-5.
const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// `vfio_irq_set.flags`.
const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 4;
const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 32;
/// `vfio_iommu_type1_dma_map.flags`.
const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;

/// `struct vfio_region_info`.
#[repr(C)]
#[derive(Default)]
struct RegionInfo {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
struct DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap`.
#[repr(C)]
struct DmaUnmap {
    argsz: u32,
    flags: u32,
    iova: u64,
    size: u64,
}

/// Which interrupt mechanism a device driven through VFIO delivers its vectors by (the
/// discriminant is its VFIO interrupt index, `VFIO_PCI_MSI_IRQ_INDEX` /
/// `VFIO_PCI_MSIX_IRQ_INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqMode {
    /// MSI-X: vector `i` signals eventfd `i`.
    MsiX = 2,
    /// MSI (fallback when the function has no MSI-X): vector `i` signals eventfd `i`.
    Msi = 1,
}

/// First I/O virtual address handed out (2 MiB aligned): above 4 GiB, clear of the x86
/// interrupt window (0xfee00000) and of low reserved regions.
const IOVA_BASE: u64 = 1 << 32;
/// End of the I/O virtual address space used: 39 bits, the smallest address width of
/// Intel IOMMUs (and QEMU's intel-iommu default).
const IOVA_END: u64 = 1 << 39;
/// DMA mappings are aligned and sized to hugepages.
const IOVA_ALIGN: u64 = 2 * 1024 * 1024;

/// Reserves `size` bytes (rounded up to 2 MiB) of I/O virtual address space at `*next`, a
/// bump allocator up to [`IOVA_END`]: addresses are not reused after an unmap (the space is
/// far larger than any pool set).
fn alloc_iova(next: &mut u64, size: u64) -> Result<u64> {
    let iova = *next;
    let end = iova + size.next_multiple_of(IOVA_ALIGN);
    if end > IOVA_END {
        let left = IOVA_END - iova;
        let detail = format!("I/O virtual address space exhausted ({size} bytes, {left} left)");
        return Err(Error::vfio("DMA memory", detail));
    }
    *next = end;
    Ok(iova)
}

/// The first number after `key` on its line of `/proc/self/<file>` (`None`: no such line,
/// or not a number, such as `unlimited`).
fn proc_self_number(file: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/self/{file}")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix(key))?;
    line.split_whitespace().next()?.parse().ok()
}

/// True when running as root (effective user id 0).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// An ioctl on `fd`; returns the raw result or the OS error.
///
/// # Safety
/// `arg` must be what `request` expects: a pointer to a structure of its type, valid for
/// the kernel to read and write, or for the requests that take an integer, that integer.
unsafe fn ioctl<T>(fd: &impl AsRawFd, request: u64, arg: *mut T) -> io::Result<i32> {
    // SAFETY: forwarded to the caller's contract.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    (r >= 0).then_some(r).ok_or_else(io::Error::last_os_error)
}

/// Opens `path` for reading and writing.
pub(crate) fn open_rw(path: impl AsRef<Path>) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// The process-wide VFIO container: the IOMMU context every device's DMA goes through.
#[derive(Debug)]
pub(crate) struct Container {
    fd: File,
    state: Mutex<ContainerState>,
    /// The address space of the IOVAs mapped here.
    pub(crate) domain: DmaDomain,
}

#[derive(Debug)]
struct ContainerState {
    /// Open groups by number; kept open for the life of the process. The IOMMU type is
    /// chosen when the first group joins.
    groups: HashMap<u32, File>,
    /// The next I/O virtual address to hand out.
    next_iova: u64,
}

/// The container, created on first use.
static CONTAINER: Mutex<Option<Arc<Container>>> = Mutex::new(None);

/// The process's VFIO container, if a device has been opened through VFIO. While it
/// exists, all DMA memory ([`crate::memory::Hugepages`], hence `Mempool::allocate`) is
/// mapped through it at I/O virtual addresses.
pub(crate) fn active_container() -> Option<Arc<Container>> {
    CONTAINER.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Container {
    /// The process's container, created on first use (opening `/dev/vfio/vfio` and
    /// checking the API version).
    fn open() -> Result<Arc<Container>> {
        let mut slot = CONTAINER.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        // One DMA domain per process (checked under the slot lock, see
        // memory::dma::PhysicalRegion).
        let physical = crate::memory::dma::LIVE_PHYSICAL_REGIONS.load(Ordering::SeqCst);
        if physical > 0 {
            let detail = format!(
                "this process holds {physical} DMA regions addressed by physical address (of \
                 a device not bound to vfio-pci), which a device behind the IOMMU cannot \
                 reach: drive all devices of a process through vfio-pci, or none"
            );
            return Err(Error::vfio("DMA memory", detail));
        }
        let path = "/dev/vfio/vfio";
        let advice = "is the vfio module loaded? `modprobe vfio-pci`";
        let fd =
            open_rw(path).map_err(|e| Error::io(format!("cannot open {path} ({advice})"), e))?;
        // SAFETY: GET_API_VERSION takes no argument.
        let v = unsafe { ioctl(&fd, ioctl::GET_API_VERSION, std::ptr::null_mut::<u8>()) };
        let v = v.map_err(|e| Error::io("VFIO_GET_API_VERSION", e))?;
        if v != VFIO_API_VERSION {
            let detail = format!("unknown VFIO API version {v} (expected {VFIO_API_VERSION})");
            return Err(Error::vfio(path, detail));
        }
        let c = slot.insert(Arc::new(Container {
            fd,
            domain: DmaDomain::unique(),
            state: Mutex::new(ContainerState {
                groups: HashMap::new(),
                next_iova: IOVA_BASE,
            }),
        }));
        Ok(c.clone())
    }

    fn state(&self) -> MutexGuard<'_, ContainerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device fd of `address` in IOMMU group `group`; the group joins the container
    /// first if it has not yet.
    fn open_device(&self, address: &str, group: u32) -> Result<File> {
        let mut st = self.state();
        if !st.groups.contains_key(&group) {
            let file = self.attach_group(address, group)?;
            if st.groups.is_empty() {
                self.set_iommu(address)?;
            }
            st.groups.insert(group, file);
        }
        device_fd(&st.groups[&group], address)
    }

    /// Opens `/dev/vfio/<group>`, checks that the group is viable and puts it in the
    /// container.
    fn attach_group(&self, address: &str, group: u32) -> Result<File> {
        let path = format!("/dev/vfio/{group}");
        let file = open_rw(&path).map_err(|e| group_open_error(address, &path, e))?;
        let path = &path;
        let fail = |what| move |e| Error::io(format!("VFIO_GROUP_{what} on {path}"), e);
        // struct vfio_group_status {argsz, flags}
        let mut status = [8u32, 0];
        // SAFETY: GROUP_GET_STATUS takes a vfio_group_status, which `status` mirrors.
        unsafe { ioctl(&file, ioctl::GROUP_GET_STATUS, status.as_mut_ptr()) }
            .map_err(fail("GET_STATUS"))?;
        if status[1] & VFIO_GROUP_FLAGS_VIABLE == 0 {
            let groups_root = Path::new("/sys/kernel/iommu_groups");
            return Err(not_viable_error(address, group, groups_root));
        }
        // A group is opened once per process (the kernel refuses a second open), so this
        // one is in no container yet.
        let mut container: i32 = self.fd.as_raw_fd();
        // SAFETY: GROUP_SET_CONTAINER takes a pointer to the container's fd (int).
        unsafe { ioctl(&file, ioctl::GROUP_SET_CONTAINER, &mut container) }
            .map_err(fail("SET_CONTAINER"))?;
        Ok(file)
    }

    /// Gives the container a type1 (v2) IOMMU, once it holds a group.
    fn set_iommu(&self, address: &str) -> Result<()> {
        // SAFETY: SET_IOMMU takes an integer (the IOMMU type), not a pointer.
        let set = unsafe { ioctl(&self.fd, ioctl::SET_IOMMU, VFIO_TYPE1V2_IOMMU as *mut u8) };
        set.map(drop).map_err(|e| {
            let detail = format!(
                "the kernel refuses a type1 IOMMU for VFIO ({e}): load vfio_iommu_type1 and \
                 enable the IOMMU (intel_iommu=on / amd_iommu=on on the kernel command line)"
            );
            Error::vfio(address, detail)
        })
    }

    /// Maps `size` bytes at `vaddr` for the devices of this container at one I/O virtual
    /// address (IOVA) range chosen here, and returns its start: the devices see it as the
    /// bus address and the IOMMU translates, so no physical address is needed (and
    /// `/proc/self/pagemap`, root only, is not read: this is what lets ixy run without root).
    ///
    /// VFIO pins every mapped page and charges it to the process's locked memory; above
    /// `RLIMIT_MEMLOCK` (root, with CAP_IPC_LOCK, is exempt) the kernel answers ENOMEM,
    /// which is [`Error::MemlockLimit`] here.
    ///
    /// # Safety
    /// `vaddr..vaddr + size` must be a mapping owned by the caller that stays valid until
    /// [`Container::unmap_dma`] is called with the returned address.
    pub(crate) unsafe fn map_dma(&self, vaddr: *mut u8, size: u64) -> Result<u64> {
        // Bytes the kernel counts as locked (VFIO's pinned pages included).
        let locked = proc_self_number("status", "VmLck:").unwrap_or(0) * 1024;
        let iova = alloc_iova(&mut self.state().next_iova, size)?;
        let mut map = DmaMap {
            argsz: size_of::<DmaMap>() as u32,
            flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: vaddr as u64,
            iova,
            size,
        };
        // SAFETY: IOMMU_MAP_DMA takes a vfio_iommu_type1_dma_map, which DmaMap mirrors;
        // the caller guarantees the memory stays mapped.
        match unsafe { ioctl(&self.fd, ioctl::IOMMU_MAP_DMA, &mut map) } {
            Ok(_) => Ok(iova),
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => Err(Error::MemlockLimit {
                // The soft limit, in bytes.
                limit: proc_self_number("limits", "Max locked memory").unwrap_or(u64::MAX),
                locked,
                requested: size,
            }),
            Err(e) => {
                let what = format!("VFIO_IOMMU_MAP_DMA of {} MiB at IOVA {iova:#x}", size >> 20);
                Err(Error::io(what, e))
            }
        }
    }

    /// Removes a mapping made by [`Container::map_dma`] (by the region's release only).
    pub(crate) fn unmap_dma(&self, iova: u64, size: u64) {
        let mut unmap = DmaUnmap {
            argsz: size_of::<DmaUnmap>() as u32,
            flags: 0,
            iova,
            size,
        };
        // SAFETY: IOMMU_UNMAP_DMA takes a vfio_iommu_type1_dma_unmap, which DmaUnmap mirrors.
        if let Err(e) = unsafe { ioctl(&self.fd, ioctl::IOMMU_UNMAP_DMA, &mut unmap) } {
            log::error!("VFIO_IOMMU_UNMAP_DMA at {iova:#x}: {e}");
        }
    }
}

/// The device fd of `address` from its group's file `group`.
fn device_fd(group: &File, address: &str) -> Result<File> {
    let mut name = format!("{address}\0").into_bytes();
    // SAFETY: GROUP_GET_DEVICE_FD takes a NUL-terminated device name (a PCI address, which
    // holds no NUL byte of its own).
    let fd = unsafe { ioctl(group, ioctl::GROUP_GET_DEVICE_FD, name.as_mut_ptr()) };
    let fd = fd.map_err(|e| {
        let why = "is it bound to vfio-pci and not in use by another process?";
        Error::io(format!("VFIO_GROUP_GET_DEVICE_FD for {address} ({why})"), e)
    })?;
    // SAFETY: a fresh descriptor returned by the kernel, owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Explains why `/dev/vfio/N` could not be opened.
fn group_open_error(address: &str, path: &str, e: io::Error) -> Error {
    let detail = match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "{path} is not accessible to this user ({e}); give the user the group: \
             `sudo chown $USER {path}` (scripts/vfio-bind.sh {address} $USER does it)"
        ),
        io::ErrorKind::NotFound => format!(
            "{path} does not exist ({e}); bind the device to vfio-pci first \
             (scripts/vfio-bind.sh {address} $USER)"
        ),
        _ if e.raw_os_error() == Some(libc::EBUSY) => {
            format!("{path} is in use by another process ({e}); one process per group")
        }
        _ => format!("cannot open {path}: {e}"),
    };
    Error::vfio(address, detail)
}

/// The error for a group that is not viable: names the group's devices bound to a driver
/// other than vfio-pci (those keep the group from being handed to user space).
fn not_viable_error(address: &str, group: u32, groups_root: &Path) -> Error {
    let dir = groups_root.join(group.to_string()).join("devices");
    let entries = fs::read_dir(&dir).into_iter().flatten().flatten();
    let mut others: Vec<_> = entries
        .filter_map(|e| {
            let driver = super::kernel_driver(&e.path())?;
            let harmless = ["vfio-pci", "pci-stub", "pcieport"].contains(&driver.as_str());
            let dev = e.file_name().to_string_lossy().into_owned();
            (!harmless).then(|| format!("{dev} (bound to {driver})"))
        })
        .collect();
    others.sort();
    let detail = format!(
        "IOMMU group {group} is not viable: some of its devices are bound to host drivers \
         ({}). Every device of a group must be bound to vfio-pci (or to no driver) before \
         the group can be used (scripts/vfio-bind.sh for each, or see {})",
        others.join(", "),
        dir.display()
    );
    Error::vfio(address, detail)
}

/// Where region `index` (a BAR, or config space) of the device fd `fd` is, and its size.
fn region_info(fd: &File, address: &str, index: u32) -> Result<RegionInfo> {
    let argsz = size_of::<RegionInfo>() as u32;
    let mut info = RegionInfo {
        argsz,
        index,
        ..RegionInfo::default()
    };
    // SAFETY: DEVICE_GET_REGION_INFO takes a vfio_region_info, which RegionInfo mirrors.
    let done = unsafe { ioctl(fd, ioctl::DEVICE_GET_REGION_INFO, &mut info) };
    let what = || format!("VFIO region {index} info of {address}");
    done.map(|_| info).map_err(|e| Error::io(what(), e))
}

/// The IOMMU group number of the device at `sysfs` (`iommu_group` link).
fn iommu_group(address: &str, sysfs: &Path) -> Result<u32> {
    let link = fs::read_link(sysfs.join("iommu_group")).map_err(|e| {
        let detail = format!(
            "the device has no IOMMU group ({e}): the IOMMU is off; enable it in the \
             firmware (VT-d / AMD-Vi) and on the kernel command line (intel_iommu=on)"
        );
        Error::vfio(address, detail)
    })?;
    let group = link.file_name().and_then(|n| n.to_str()?.parse().ok());
    let detail = || format!("unexpected iommu_group link {}", link.display());
    group.ok_or_else(|| Error::vfio(address, detail()))
}

/// A PCI function opened through VFIO.
#[derive(Debug)]
pub(crate) struct VfioDevice {
    address: String,
    /// The device file descriptor. Writes through it reach the device's registers and
    /// config space: only `pci` uses it (see [`PciDevice::map_bar`](super::PciDevice)).
    pub(super) fd: File,
    /// Offset of config space within `fd`.
    pub(super) config_offset: u64,
}

impl VfioDevice {
    /// A stand-in for tests: `fd` plays the device fd, config space at offset 0.
    #[cfg(test)]
    pub(super) fn fake(address: &str, fd: File) -> Self {
        let address = address.to_string();
        VfioDevice {
            address,
            fd,
            config_offset: 0,
        }
    }

    /// Opens the device at `address` (sysfs directory `sysfs`), which must be bound to
    /// vfio-pci, joining the process-wide container (which lives as long as the process).
    pub(crate) fn open(address: &str, sysfs: &Path) -> Result<Self> {
        let group = iommu_group(address, sysfs)?;
        let fd = Container::open()?.open_device(address, group)?;
        let config_offset = region_info(&fd, address, VFIO_PCI_CONFIG_REGION_INDEX)?.offset;
        log::info!("{address}: opened through VFIO (IOMMU group {group})");
        Ok(VfioDevice {
            address: address.to_string(),
            fd,
            config_offset,
        })
    }

    /// BAR `bar` (0-5): a duplicate of the device fd, and the BAR's offset and size in it.
    pub(crate) fn region(&self, bar: u8) -> Result<(File, u64, u64)> {
        let info = region_info(&self.fd, &self.address, u32::from(bar))?;
        let what = || format!("cannot duplicate the VFIO fd of {}", self.address);
        let file = self.fd.try_clone().map_err(|e| Error::io(what(), e))?;
        Ok((file, info.offset, info.size))
    }

    /// Number of vectors the function offers for interrupt `mode`.
    fn irq_count(&self, mode: IrqMode) -> usize {
        // struct vfio_irq_info {argsz, flags, index, count}
        let mut info = [16u32, 0, mode as u32, 0];
        // SAFETY: DEVICE_GET_IRQ_INFO takes a vfio_irq_info, which `info` mirrors.
        let done = unsafe { ioctl(&self.fd, ioctl::DEVICE_GET_IRQ_INFO, info.as_mut_ptr()) };
        done.map_or(0, |_| info[3] as usize)
    }

    /// Enables interrupts with vector `i` signalling eventfd `fds[i]`, by the first of
    /// `modes` for which the function has enough vectors. The device must then be
    /// programmed to raise vector `i` for queue `i`.
    pub(crate) fn enable_irqs(&self, fds: &[RawFd], modes: &[IrqMode]) -> Result<IrqMode> {
        let Some(&mode) = modes.iter().find(|&&m| self.irq_count(m) >= fds.len()) else {
            let detail = format!(
                "{} interrupt vectors needed; the function offers too few {modes:?} vectors \
                 (QEMU virtio-net: vectors=N)",
                fds.len()
            );
            return Err(Error::device(&self.address, detail));
        };
        // struct vfio_irq_set {argsz, flags, index, start, count} and `count` int32 eventfds.
        let argsz = 4 * (5 + fds.len()) as u32;
        let flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
        let mut buf = vec![argsz, flags, mode as u32, 0, fds.len() as u32];
        buf.extend(fds.iter().map(|&fd| fd as u32));
        // SAFETY: DEVICE_SET_IRQS takes a vfio_irq_set of `argsz` bytes: `buf` holds its
        // five header words and the eventfds.
        let done = unsafe { ioctl(&self.fd, ioctl::DEVICE_SET_IRQS, buf.as_mut_ptr()) };
        let what = || format!("VFIO_DEVICE_SET_IRQS ({mode:?}) on {}", self.address);
        done.map(|_| mode).map_err(|e| Error::io(what(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux_vfio_h() {
        // _IO(';', 100) = 0x3b64 ... values from linux/vfio.h.
        assert_eq!(ioctl::GET_API_VERSION, 0x3b64);
        assert_eq!(ioctl::SET_IOMMU, 0x3b66);
        assert_eq!(ioctl::GROUP_GET_DEVICE_FD, 0x3b6a);
        assert_eq!(ioctl::DEVICE_SET_IRQS, 0x3b6e);
        assert_eq!(ioctl::IOMMU_MAP_DMA, 0x3b71);
        assert_eq!(std::mem::size_of::<RegionInfo>(), 32);
        assert_eq!(std::mem::size_of::<DmaMap>(), 32);
        assert_eq!(std::mem::size_of::<DmaUnmap>(), 24);
    }

    #[test]
    fn iovas_are_aligned_disjoint_and_bounded() {
        let mut next = IOVA_BASE;
        let x = alloc_iova(&mut next, 4096).unwrap();
        let y = alloc_iova(&mut next, 3 * 1024 * 1024).unwrap();
        let z = alloc_iova(&mut next, IOVA_ALIGN).unwrap();
        assert_eq!(x, IOVA_BASE);
        assert_eq!(y, x + IOVA_ALIGN);
        assert_eq!(z, y + 2 * IOVA_ALIGN, "3 MiB takes two hugepages");
        // 6 MiB left.
        let mut next = IOVA_END - 3 * IOVA_ALIGN;
        let err = alloc_iova(&mut next, 4 * IOVA_ALIGN).unwrap_err();
        assert!(matches!(err, Error::Vfio { .. }), "{err}");
        assert!(err.to_string().contains("exhausted"), "{err}");
        assert_eq!(
            alloc_iova(&mut next, 3 * IOVA_ALIGN).unwrap(),
            IOVA_END - 3 * IOVA_ALIGN
        );
        assert_eq!(next, IOVA_END);
        assert!(alloc_iova(&mut next, 1).is_err());
        // Above the interrupt window and 4 GiB, and 2 MiB aligned.
        const { assert!(IOVA_BASE > 0xfeef_ffff && IOVA_BASE.is_multiple_of(IOVA_ALIGN)) };
    }

    #[test]
    fn the_memlock_limit_error_says_what_is_needed_and_how_to_raise_it() {
        let mib = 1 << 20;
        let (limit, locked, requested) = (8 * mib, 2 * mib, 8 * mib);
        let msg = Error::MemlockLimit {
            limit,
            locked,
            requested,
        }
        .to_string();
        assert!(msg.contains("8192 KiB"), "limit: {msg}");
        assert!(msg.contains("at least 10240 KiB"), "needed: {msg}");
        assert!(msg.contains("ulimit -l"), "{msg}");
        assert!(msg.contains("limits.conf"), "{msg}");
    }

    #[test]
    fn a_group_that_is_not_viable_names_the_culprits() {
        let root = crate::testing::TempDir::new("vfio-groups");
        let devs = root.join("7/devices");
        let drivers = root.join("drivers");
        for d in ["e1000e", "vfio-pci"] {
            fs::create_dir_all(drivers.join(d)).unwrap();
        }
        for (dev, drv) in [
            ("0000:00:02.0", Some("e1000e")),
            ("0000:00:03.0", Some("vfio-pci")),
            ("0000:00:04.0", None),
        ] {
            fs::create_dir_all(devs.join(dev)).unwrap();
            if let Some(drv) = drv {
                std::os::unix::fs::symlink(drivers.join(drv), devs.join(dev).join("driver"))
                    .unwrap();
            }
        }
        let msg = not_viable_error("0000:00:03.0", 7, &root).to_string();
        assert!(msg.contains("group 7 is not viable"), "{msg}");
        assert!(msg.contains("0000:00:02.0 (bound to e1000e)"), "{msg}");
        assert!(!msg.contains("0000:00:04.0"), "{msg}");
        assert!(!msg.contains("0000:00:03.0 (bound"), "{msg}");
    }

    #[test]
    fn inaccessible_group_files_say_chown() {
        let e = group_open_error(
            "0000:00:03.0",
            "/dev/vfio/7",
            io::Error::from_raw_os_error(libc::EACCES),
        );
        let msg = e.to_string();
        assert!(msg.contains("chown"), "{msg}");
        assert!(msg.contains("/dev/vfio/7"), "{msg}");
        let e = group_open_error(
            "0000:00:03.0",
            "/dev/vfio/7",
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert!(e.to_string().contains("vfio-bind.sh"), "{e}");
    }

    #[test]
    fn no_iommu_group_means_the_iommu_is_off() {
        let dir = crate::testing::TempDir::new("vfio-nogroup");
        let msg = iommu_group("0000:00:03.0", &dir).unwrap_err().to_string();
        assert!(msg.contains("intel_iommu=on"), "{msg}");
        std::os::unix::fs::symlink("../../../kernel/iommu_groups/12", dir.join("iommu_group"))
            .unwrap();
        assert_eq!(iommu_group("0000:00:03.0", &dir).unwrap(), 12);
    }
}
