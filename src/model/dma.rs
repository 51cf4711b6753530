//! DMA memory for the model: heap memory whose regions the model knows.
//!
//! A real 82599 reaches whatever bus address a descriptor or a ring register holds; a
//! driver bug there corrupts memory silently. The model instead checks every DMA access
//! against the regions the driver allocated through [`ModelDma`] (and has not freed yet),
//! and fails the test when an access falls outside them.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use super::lock;
use crate::error::Result;
use crate::memory::dma::DmaDomain;
use crate::memory::{DmaAllocator, DmaMemory, HeapDma};

/// Live regions, sorted by start address, as half-open `[start, end)` bus ranges.
#[derive(Debug)]
pub(crate) struct Regions {
    /// The model's DMA domain: its devices reach only memory of this domain.
    pub(crate) domain: DmaDomain,
    ranges: Vec<(u64, u64)>,
    /// Index of the range that satisfied the last lookup (packet buffers of one pool hit
    /// the same range again and again).
    last: usize,
}

impl Default for Regions {
    fn default() -> Self {
        Regions {
            domain: DmaDomain::unique(),
            ranges: Vec::new(),
            last: 0,
        }
    }
}

impl Regions {
    fn insert(&mut self, start: u64, end: u64) {
        let at = self.ranges.partition_point(|&(s, _)| s < start);
        self.ranges.insert(at, (start, end));
        self.last = 0;
    }

    fn remove(&mut self, start: u64) {
        if let Ok(i) = self.ranges.binary_search_by_key(&start, |&(s, _)| s) {
            self.ranges.remove(i);
        }
        self.last = 0;
    }

    /// True if `[addr, addr + len)` lies inside one live region.
    #[inline]
    pub(crate) fn contains(&mut self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        if let Some(&(s, e)) = self.ranges.get(self.last)
            && addr >= s
            && end <= e
        {
            return true;
        }
        let i = self.ranges.partition_point(|&(s, _)| s <= addr);
        if i == 0 {
            return false;
        }
        let (s, e) = self.ranges[i - 1];
        if addr >= s && end <= e {
            self.last = i - 1;
            true
        } else {
            false
        }
    }

    /// Number of live regions.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }
}

/// The model's [`DmaAllocator`]: heap memory (bus address == virtual address, like
/// [`HeapDma`]) whose regions are registered with the model while they live.
///
/// Get one from [`Model::dma`](super::Model::dma); clones share the registry.
#[derive(Debug, Clone)]
pub struct ModelDma {
    pub(crate) regions: Arc<Mutex<Regions>>,
    /// Allocate below 2 GiB, where a legacy virtio device's 32-bit page numbers reach.
    low: bool,
}

impl ModelDma {
    pub(crate) fn new(regions: Arc<Mutex<Regions>>) -> Self {
        ModelDma {
            regions,
            low: false,
        }
    }

    /// An allocator whose regions lie below 2 GiB (the virtio model's: a legacy device
    /// takes queue addresses as 32-bit page numbers, 4.1.4.8).
    pub(crate) fn low(regions: Arc<Mutex<Regions>>) -> Self {
        ModelDma { regions, low: true }
    }

    /// Number of regions allocated through this allocator and not yet freed.
    pub fn live_regions(&self) -> usize {
        lock(&self.regions).len()
    }
}

// SAFETY: the regions are `HeapDma` regions (at least `size` bytes, zeroed, 4096-byte
// aligned, bus address == virtual address), which is how the model reaches memory; they
// are in the model's own domain (no other device reaches them, the model no other memory).
unsafe impl DmaAllocator for ModelDma {
    #[inline(never)]
    fn allocate(&self, size: usize) -> Result<DmaMemory> {
        let inner = if self.low {
            low_memory(size)?
        } else {
            HeapDma.allocate(size)?
        };
        let virt = inner.virt();
        let len = inner.size();
        let start = virt as u64;
        let chunks: Box<[u64]> = (0..len.div_ceil(crate::memory::dma::CHUNK_SIZE))
            .map(|i| inner.bus_addr(i * crate::memory::dma::CHUNK_SIZE))
            .collect();
        let domain = {
            let mut regions = lock(&self.regions);
            regions.insert(start, start + len as u64);
            regions.domain
        };
        let regions = Arc::clone(&self.regions);
        // The heap region itself is owned by the release closure and freed after the
        // model has forgotten it.
        let release = Box::new(move |_: NonNull<u8>, _: usize| {
            lock(&regions).remove(start);
            drop(inner);
        });
        let virt = NonNull::new(virt).ok_or_else(|| crate::Error::Hugepages {
            detail: "heap allocation returned a null pointer".into(),
        })?;
        // SAFETY: `virt..virt + len` is the heap region `inner` owns; `inner` lives inside
        // the release closure, so the memory stays valid until release runs (once, on drop
        // of the returned value) and is freed only then. `chunks` are `inner`'s own bus
        // addresses (identity mapped, so every chunk is contiguous).
        Ok(unsafe { DmaMemory::from_raw_parts(virt, len, chunks, domain, release) })
    }
}

/// Zeroed anonymous memory mapped below 2 GiB (`MAP_32BIT`), identity "bus" addresses.
fn low_memory(size: usize) -> Result<DmaMemory> {
    let size = size.max(1).next_multiple_of(crate::memory::dma::DMA_ALIGN);
    #[cfg(target_arch = "x86_64")]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT;
    #[cfg(not(target_arch = "x86_64"))]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh anonymous mapping; no existing memory is touched.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), size, prot, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(crate::Error::Hugepages {
            detail: format!("cannot map {size} bytes below 2 GiB for the virtio model"),
        });
    }
    let virt = NonNull::new(p.cast::<u8>()).ok_or_else(|| crate::Error::Hugepages {
        detail: "mmap returned a null pointer".into(),
    })?;
    let release = Box::new(|p: NonNull<u8>, len| {
        // SAFETY: the mapping made above, unmapped once.
        unsafe { libc::munmap(p.as_ptr().cast(), len) };
    });
    // SAFETY: the mapping is `size` bytes, page-aligned, zeroed, exclusively ours, and
    // unmapped exactly once by the release closure.
    Ok(unsafe { crate::memory::dma::identity_mapped(virt, size, release) })
}
