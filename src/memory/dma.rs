//! DMA memory: pinned regions with known bus addresses.
//!
//! A NIC reads descriptors and packet data straight from memory, so the driver must know,
//! for every byte it hands to the device, the address the device uses to reach it (the bus
//! address). Without an IOMMU that is the physical address; with VFIO it is an I/O virtual
//! address chosen by the process.
//!
//! Regions are tracked in 2 MiB chunks: each chunk is physically contiguous (a hugepage),
//! consecutive chunks need not be. Rings and packet buffers never straddle a chunk.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::ptr::{NonNull, null_mut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Size of a hugepage and of the chunks a region's bus addresses are tracked in.
pub const CHUNK_SIZE: usize = 2 * 1024 * 1024;

/// Alignment every region has, in this process's address space and in bus address space:
/// one 4 KiB page. It covers what every consumer needs (legacy virtqueues: 4096; Intel
/// descriptor rings: 128; descriptors: 16).
pub const DMA_ALIGN: usize = 4096;

/// The address space a region's bus addresses belong to: which devices reach it.
///
/// A device reaches only memory of its own domain: physical addresses (hugepages, no
/// IOMMU), the I/O virtual addresses of one VFIO container, or the memory of one device
/// model. [`DmaDomain::NONE`] is ordinary memory no device reaches. The drivers send a
/// packet only if its pool is in their device's domain (the domain of their rings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DmaDomain(u64);

impl DmaDomain {
    /// Ordinary memory: no device reaches it (`HeapDma`, whose bus addresses are
    /// virtual addresses; only fake devices in the same process use it).
    pub const NONE: DmaDomain = DmaDomain(0);
    /// Physical addresses: devices without an IOMMU ([`Hugepages`] without VFIO).
    pub const PHYSICAL: DmaDomain = DmaDomain(1);

    /// A domain of its own, distinct from every other (a VFIO container, a device model).
    pub(crate) fn unique() -> DmaDomain {
        static NEXT: AtomicU64 = AtomicU64::new(2);
        DmaDomain(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// How a region is given back when it is dropped.
type Release = Box<dyn FnOnce(NonNull<u8>, usize) + Send>;

/// A pinned memory region that a device can reach by DMA.
///
/// The region is released (unmapped or freed) when this value is dropped; everything that
/// hands its addresses to a device must make sure the device is stopped first.
pub struct DmaMemory {
    virt: NonNull<u8>,
    size: usize,
    /// Bus address of the start of each 2 MiB chunk.
    chunks: Box<[u64]>,
    domain: DmaDomain,
    release: Option<Release>,
}

// SAFETY: the region is owned exclusively by this value (`from_raw_parts`' contract) and
// its release closure is `Send`: it may be used and released on any thread (a pool's last
// packet may come back on another thread than the pool's).
unsafe impl Send for DmaMemory {}

impl DmaMemory {
    /// Builds a region from its parts.
    ///
    /// # Safety
    /// `virt..virt + size` must be valid, writable memory owned exclusively by the returned
    /// value until `release` is called with `(virt, size)`, which happens exactly once, on
    /// drop. `virt` and every `chunks[i]` must be [`DMA_ALIGN`]-byte aligned (code that
    /// lays rings over the region casts it to aligned types). `chunks` must have an entry
    /// for every chunk of the region: `chunks[i]` is the bus address of
    /// `virt + i * CHUNK_SIZE`, and each chunk must be contiguous in bus address space.
    /// The bus addresses must be addresses of `domain`: the devices of that domain, and
    /// only they, reach this memory at them.
    pub unsafe fn from_raw_parts(
        virt: NonNull<u8>,
        size: usize,
        chunks: Box<[u64]>,
        domain: DmaDomain,
        release: Release,
    ) -> Self {
        debug_assert!(
            (virt.as_ptr() as usize).is_multiple_of(DMA_ALIGN),
            "DMA region at {virt:p} is not {DMA_ALIGN}-byte aligned"
        );
        debug_assert!(chunks.len() >= size.div_ceil(CHUNK_SIZE));
        DmaMemory {
            virt,
            size,
            chunks,
            domain,
            release: Some(release),
        }
    }

    /// The domain of the region's bus addresses: the devices that reach it.
    pub fn domain(&self) -> DmaDomain {
        self.domain
    }

    /// Start of the region in this process's address space.
    pub fn virt(&self) -> *mut u8 {
        self.virt.as_ptr()
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bus address of the byte at `offset`.
    ///
    /// # Panics
    /// If `offset` is outside the region (a driver bug, not an input error).
    pub fn bus_addr(&self, offset: usize) -> u64 {
        assert!(offset < self.size, "offset {offset} outside DMA region");
        self.chunks[offset / CHUNK_SIZE] + (offset % CHUNK_SIZE) as u64
    }

    /// Checks that this region is really what its user asked for: at least `min_size`
    /// bytes. (Its user's `align`, at most [`DMA_ALIGN`], every region has, here and in bus
    /// address space: [`DmaMemory::from_raw_parts`]' contract.)
    ///
    /// Every user that lays a structure over a region (pools, rings, control buffers)
    /// calls this once, so an allocator that returns less than it promised is an error,
    /// never an access out of bounds. `what` names the user for the message.
    pub(crate) fn checked(self, min_size: usize, align: usize, what: &str) -> Result<Self> {
        debug_assert!(
            align <= DMA_ALIGN,
            "{what}: alignment {align} beyond DMA_ALIGN"
        );
        if self.size < min_size {
            let detail = format!(
                "the DMA allocator returned {} bytes for the {what}, which needs {min_size}; \
                 use an allocator that returns at least the size asked for",
                self.size
            );
            return Err(Error::config(detail));
        }
        Ok(self)
    }

    /// Zeroes the whole region.
    pub fn zero(&mut self) {
        // SAFETY: the region is valid and writable for `size` bytes (constructor contract)
        // and `&mut self` guarantees no other Rust reference into it is live.
        unsafe { std::ptr::write_bytes(self.virt.as_ptr(), 0, self.size) }
    }
}

impl Drop for DmaMemory {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release(self.virt, self.size);
        }
    }
}

impl std::fmt::Debug for DmaMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaMemory")
            .field("virt", &self.virt)
            .field("size", &self.size)
            .field("bus", &self.chunks.first())
            .finish()
    }
}

/// Something that hands out DMA memory.
///
/// Drivers give the bus addresses of these regions to devices, which then read and write
/// them with no further check; that is why implementing this trait is `unsafe`.
///
/// # Safety
/// Every region `allocate` returns must
/// * hold at least `size` bytes, zeroed, and start on a [`DMA_ALIGN`]-byte boundary in
///   this process's address space and in bus address space;
/// * have bus addresses ([`DmaMemory::bus_addr`]) at which the devices it is used with
///   reach exactly this memory, and no other (physical addresses without an IOMMU, I/O
///   virtual addresses mapped in the device's IOMMU domain with VFIO; for the in-process
///   device model, the virtual address).
///
/// (The drivers also check size and alignment, but they cannot check the second point.)
pub unsafe trait DmaAllocator {
    /// Allocates a zeroed region of at least `size` bytes.
    ///
    /// Regions of up to [`CHUNK_SIZE`] bytes are contiguous in bus address space.
    fn allocate(&self, size: usize) -> Result<DmaMemory>;
}

/// Ordinary heap memory whose "bus address" is its virtual address.
///
/// **For unit tests and the device model only** (it exists only with the `model`
/// feature): no real device reaches these addresses (without an IOMMU they are taken as
/// physical addresses of unrelated memory, so a real device sending a packet from such a
/// pool would put unrelated memory on the wire).
#[cfg(any(test, feature = "model"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct HeapDma;

// SAFETY: regions are at least `size` bytes, zeroed, 4096-byte aligned (the layout), and
// their bus address is their virtual address, which is exactly how the in-process model
// (the only "device" this allocator is for, see the type's documentation) reaches memory.
#[cfg(any(test, feature = "model"))]
unsafe impl DmaAllocator for HeapDma {
    fn allocate(&self, size: usize) -> Result<DmaMemory> {
        if size == 0 {
            return Err(Error::config("DMA allocation of 0 bytes"));
        }
        let size = size.next_multiple_of(DMA_ALIGN);
        let layout = std::alloc::Layout::from_size_align(size, DMA_ALIGN)
            .map_err(|_| Error::config(format!("DMA allocation of {size} bytes is too large")))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let failed = || Error::hugepages(format!("heap allocation of {size} bytes failed"));
        let virt = NonNull::new(ptr).ok_or_else(failed)?;
        let release = Box::new(move |p: NonNull<u8>, _| {
            // SAFETY: the allocation made here, freed once with its layout.
            unsafe { std::alloc::dealloc(p.as_ptr(), layout) }
        });
        // SAFETY: freshly allocated, exclusively owned; released with the same layout.
        Ok(unsafe { identity_mapped(virt, size, release) })
    }
}

/// A region whose bus address is its virtual address (heap memory, the device models').
///
/// # Safety
/// As for [`DmaMemory::from_raw_parts`]; every chunk is contiguous (identity mapping).
#[cfg(any(test, feature = "model"))]
pub(crate) unsafe fn identity_mapped(
    virt: NonNull<u8>,
    size: usize,
    release: Release,
) -> DmaMemory {
    let base = virt.as_ptr() as u64;
    let chunks = (0..size.div_ceil(CHUNK_SIZE))
        .map(|i| base + (i * CHUNK_SIZE) as u64)
        .collect();
    // SAFETY: per the function's contract. Ordinary memory: no device's domain.
    unsafe { DmaMemory::from_raw_parts(virt, size, chunks, DmaDomain::NONE, release) }
}

/// Live regions whose bus addresses are physical addresses (from `Hugepages` without a
/// VFIO container). While there are any, no VFIO container may be created: its devices
/// would not reach them, and once it exists new regions get I/O virtual addresses, which
/// the devices using physical addresses would misread. One DMA domain per process: the
/// VFIO container refuses to come into being while this is not 0.
pub(crate) static LIVE_PHYSICAL_REGIONS: AtomicUsize = AtomicUsize::new(0);

/// Counts one physical region while it lives (also while it is being set up, so that a
/// container created concurrently either is seen by the allocation or sees it).
struct PhysicalRegion;

impl PhysicalRegion {
    fn new() -> Self {
        LIVE_PHYSICAL_REGIONS.fetch_add(1, Ordering::SeqCst);
        PhysicalRegion
    }
}

impl Drop for PhysicalRegion {
    fn drop(&mut self) {
        LIVE_PHYSICAL_REGIONS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Hugepage-backed memory on a hugetlbfs mount, translated through `/proc/self/pagemap`.
///
/// Each allocation creates a file on the mount, maps it, and unlinks it at once: the
/// hugepages go back to the system when the mapping goes away, even if the process is
/// killed.
#[derive(Debug, Clone)]
pub struct Hugepages {
    dir: PathBuf,
}

/// `statfs` magic number of hugetlbfs (linux/magic.h).
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

/// Default hugetlbfs mount point, as set up by `setup-hugetlbfs.sh`.
pub const DEFAULT_HUGEPAGE_DIR: &str = "/mnt/huge";

/// Number of 2 MiB hugepages `setup-hugetlbfs.sh` reserves by default.
const DEFAULT_PAGES: usize = 512;

/// The number of 2 MiB hugepages reserved (Documentation/admin-guide/mm/hugetlbpage.rst).
const NR_HUGEPAGES: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";

impl Hugepages {
    /// Uses the hugetlbfs mount at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Hugepages { dir: dir.into() }
    }

    /// Uses `$IXY_HUGEPAGE_DIR`, or `/mnt/huge` if it is unset.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("IXY_HUGEPAGE_DIR");
        Self::new(dir.unwrap_or_else(|| DEFAULT_HUGEPAGE_DIR.into()))
    }

    /// The error for a problem with this mount: what went wrong, then the command that
    /// sets the mount up (reserving `pages` hugepages; `owner` gives it to a user).
    fn error(&self, what: impl std::fmt::Display, pages: usize, owner: &str) -> Error {
        Error::hugepages(format!(
            "{what}; to fix it run, as root in the ixy directory, \
             `./setup-hugetlbfs.sh {pages} {}{owner}`",
            self.dir.display()
        ))
    }

    /// Checks that the directory is a hugetlbfs mount.
    pub(crate) fn check_mount(&self) -> Result<()> {
        let dir = self.dir.display();
        let path = CString::new(self.dir.as_os_str().as_encoded_bytes());
        let path = path.map_err(|_| Error::hugepages(format!("{dir} contains a NUL byte")))?;
        // SAFETY: statfs is plain old data; zeroed is a valid value.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `st` is a valid out-pointer.
        let what = if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
            let e = io::Error::last_os_error();
            format!("{dir} does not exist or cannot be read ({e})")
        } else if st.f_type as i64 != HUGETLBFS_MAGIC {
            format!("{dir} is not a hugetlbfs mount")
        } else {
            return Ok(());
        };
        Err(self.error(what, DEFAULT_PAGES, ""))
    }

    /// A new file on the mount, already unlinked: the mapping keeps the pages, and nothing
    /// is left behind on exit.
    fn create_file(&self) -> Result<File> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("ixy-{}-{n}", std::process::id()));
        let mut options = fs::OpenOptions::new();
        let file = options.read(true).write(true).create_new(true).open(&path);
        let file = file.map_err(|e| {
            // A mount that belongs to someone else: give it to this user.
            let denied = e.kind() == io::ErrorKind::PermissionDenied;
            let owner = if denied { " $USER" } else { "" };
            let what = format!("cannot create {}: {e}", path.display());
            self.error(what, DEFAULT_PAGES, owner)
        })?;
        let _ = fs::remove_file(&path);
        Ok(file)
    }

    /// Maps `size` bytes (a multiple of 2 MiB) of hugepages from a fresh, unlinked file.
    /// hugetlbfs reserves the pages at mmap time for shared mappings, so a shortage fails
    /// here (ENOMEM) rather than with SIGBUS on first touch.
    fn map(&self, size: usize) -> Result<NonNull<u8>> {
        let file = self.create_file()?;
        map_shared(&file, size, 0).map_err(|e| {
            // Reserving this many more than now fixes a shortage.
            let total = fs::read_to_string(NR_HUGEPAGES).unwrap_or_default();
            let total: usize = total.trim().parse().unwrap_or(0);
            let (mib, dir) = (size >> 20, self.dir.display());
            let what = format!(
                "cannot map {mib} MiB of hugepages from {dir} ({e}); too few free hugepages? \
                 (see HugePages_Free in /proc/meminfo)"
            );
            self.error(what, total + size / CHUNK_SIZE, "")
        })
    }
}

/// Maps `len` bytes of `file` from `offset`, shared, readable and writable, at an address
/// the kernel picks (on hugetlbfs, hugepages).
pub(crate) fn map_shared(file: &File, len: usize, offset: libc::off_t) -> io::Result<NonNull<u8>> {
    let (fd, rw) = (file.as_raw_fd(), libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: a new mapping at an address the kernel picks (no MAP_FIXED) replaces none;
    // the kernel checks the range against the file.
    let ptr = unsafe { libc::mmap(null_mut(), len, rw, libc::MAP_SHARED, fd, offset) };
    let mapped = NonNull::new(ptr.cast::<u8>()).filter(|_| ptr != libc::MAP_FAILED);
    mapped.ok_or_else(io::Error::last_os_error)
}

/// The physical address of each 2 MiB chunk of the hugepage mapping at `virt` (`size`
/// bytes), which it locks first (the frames of locked pages stay put), from
/// /proc/self/pagemap.
fn physical_chunks(virt: NonNull<u8>, size: usize) -> Result<Box<[u64]>> {
    const PAGE: usize = 4096;
    // SAFETY: `virt..virt + size` is a mapping the caller owns; locking keeps it resident
    // (hugepages are not swapped anyway; this also pre-faults them).
    if unsafe { libc::mlock(virt.as_ptr().cast(), size) } != 0 {
        let (mib, e) = (size >> 20, io::Error::last_os_error());
        let what = format!("cannot lock {mib} MiB of hugepages in memory ({e})");
        return Err(Error::hugepages(what));
    }
    let no_frame = |detail: String| Error::NoPhysicalAddress { detail };
    let fail = |e| no_frame(format!("cannot read /proc/self/pagemap ({e})"));
    let pagemap = File::open("/proc/self/pagemap").map_err(fail)?;
    let chunk = |i: usize| {
        let mut entry = [0u8; 8];
        let at = ((virt.as_ptr() as usize + i * CHUNK_SIZE) / PAGE * 8) as u64;
        pagemap.read_exact_at(&mut entry, at).map_err(fail)?;
        // Documentation/admin-guide/mm/pagemap.rst: bit 63 page present, bits 0-54 the
        // PFN. A chunk starts on a page, so its address is the frame's.
        let entry = u64::from_ne_bytes(entry);
        let (present, pfn) = (entry >> 63 == 1, entry & ((1 << 55) - 1));
        let missing = || no_frame("pagemap reports no frame number for a locked page".into());
        let frame = (present && pfn != 0).then_some(pfn * PAGE as u64);
        frame.ok_or_else(missing)
    };
    (0..size / CHUNK_SIZE).map(chunk).collect()
}

// SAFETY: regions are whole 2 MiB hugepages (so at least `size` bytes, 2 MiB aligned, and
// zeroed by hugetlbfs), and their bus addresses are the physical addresses looked up in
// pagemap for locked pages, or with a VFIO container, IOVAs mapped in that container (see
// `pci::vfio::Container::map_dma`), which is what the devices of this process reach.
unsafe impl DmaAllocator for Hugepages {
    fn allocate(&self, size: usize) -> Result<DmaMemory> {
        if size == 0 {
            return Err(Error::config("DMA allocation of 0 bytes"));
        }
        self.check_mount()?;
        let size = size.next_multiple_of(CHUNK_SIZE);
        // Counted before looking for a container (see PhysicalRegion).
        let physical = PhysicalRegion::new();
        let container = crate::pci::vfio::active_container();
        let virt = self.map(size)?;
        let unmap = move |p: NonNull<u8>, s: usize| {
            // SAFETY: (p, s) is exactly the mapping made by `map`, unmapped once.
            unsafe { libc::munmap(p.as_ptr().cast(), s) };
        };
        let translated = match container {
            // With a VFIO container in this process, memory is mapped at I/O virtual
            // addresses through the IOMMU instead (no pagemap, no root needed).
            Some(c) => {
                drop(physical);
                // SAFETY: the mapping stays valid until the release below, which removes
                // the IOMMU mapping before unmapping the memory.
                let iova = unsafe { c.map_dma(virt.as_ptr(), size as u64) };
                iova.map(|iova| {
                    let chunks = (0..size / CHUNK_SIZE).map(|i| iova + (i * CHUNK_SIZE) as u64);
                    let domain = c.domain;
                    let release: Release = Box::new(move |p, s| {
                        c.unmap_dma(iova, s as u64);
                        unmap(p, s);
                    });
                    (chunks.collect(), domain, release)
                })
            }
            None => physical_chunks(virt, size).map(|chunks| {
                let release: Release = Box::new(move |p, s| {
                    unmap(p, s);
                    drop(physical);
                });
                (chunks, DmaDomain::PHYSICAL, release)
            }),
        };
        let (chunks, domain, release) = translated.inspect_err(|_| unmap(virt, size))?;
        // SAFETY: a fresh shared mapping of a file this call created (create_new) and
        // unlinked at once: `size` bytes owned by this region, 2 MiB aligned here and in
        // bus address space; each 2 MiB chunk is one hugepage, at the physical address just
        // looked up (locked pages, so it stays valid), or inside one contiguous IOVA range
        // (2 MiB aligned by alloc_iova) that VFIO pinned until the release unmaps it.
        // hugetlbfs pages come zeroed.
        Ok(unsafe { DmaMemory::from_raw_parts(virt, size, chunks, domain, release) })
    }
}

/// An allocator that breaks its contract on purpose, for tests: it returns one zeroed
/// page whatever the size asked for, so the code using it must notice the short region.
#[cfg(test)]
pub(crate) struct ShortDma;

// SAFETY: deliberately violates the size promise (tests only): the regions are real
// heap memory, so the code under test can only fail by indexing past them, which is what
// the tests show it does not.
#[cfg(test)]
unsafe impl DmaAllocator for ShortDma {
    fn allocate(&self, _size: usize) -> Result<DmaMemory> {
        HeapDma.allocate(DMA_ALIGN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_regions_are_identity_mapped_and_zeroed() {
        let mem = HeapDma.allocate(10_000).unwrap();
        assert_eq!(mem.size(), 12_288);
        assert_eq!(mem.bus_addr(0), mem.virt() as u64);
        assert_eq!(mem.bus_addr(4097), mem.virt() as u64 + 4097);
        // SAFETY: reading within the region.
        let bytes = unsafe { std::slice::from_raw_parts(mem.virt(), mem.size()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn checked_refuses_short_regions() {
        let mem = HeapDma.allocate(4096).unwrap();
        let mem = mem.checked(4096, DMA_ALIGN, "test ring").unwrap();
        let err = mem.checked(4097, 1, "test ring").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{msg}");
        assert!(msg.contains("test ring, which needs 4097"), "{msg}");
    }

    #[test]
    fn zero_sized_allocation_is_an_error() {
        let err = HeapDma.allocate(0).err().unwrap();
        assert!(matches!(&err, Error::InvalidConfig { detail } if detail.contains("0 bytes")));
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "checks the hugetlbfs mount with statfs, which Miri cannot call"
    )]
    fn missing_hugetlbfs_mount_is_a_clear_error() {
        let err = Hugepages::new("/nonexistent/ixy-huge")
            .allocate(4096)
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Hugepages { .. }));
        // The hint names the directory in use and the command that sets it up.
        assert!(
            msg.contains("`./setup-hugetlbfs.sh 512 /nonexistent/ixy-huge`"),
            "{msg}"
        );
        assert!(!msg.contains(DEFAULT_HUGEPAGE_DIR), "{msg}");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "checks the hugetlbfs mount with statfs, which Miri cannot call"
    )]
    fn a_directory_that_is_not_hugetlbfs_is_rejected() {
        let dir = crate::testing::TempDir::new("not-hugetlbfs");
        let err = Hugepages::new(&*dir).allocate(4096).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not a hugetlbfs mount"), "{msg}");
        let fix = format!("`./setup-hugetlbfs.sh 512 {}`", dir.display());
        assert!(msg.contains(&fix), "{msg}");
    }
}
