//! DMA memory for devices driven through VFIO: hugepages mapped at an I/O virtual address
//! (IOVA) chosen by this process, through the type1 IOMMU of the process-wide container.
//!
//! The device sees the IOVA as the bus address; the IOMMU translates it. No physical
//! address is ever needed, so `/proc/self/pagemap` (root only) is not read: this is what
//! lets ixy run without root. VFIO pins the pages and charges them to `RLIMIT_MEMLOCK`;
//! the pages are therefore not also `mlock`ed.
//!
//! [`super::Hugepages`] allocates this way by itself as soon as a VFIO container exists in
//! the process, so `Mempool::allocate` and the drivers need no change.

use std::ptr::NonNull;
use std::sync::Arc;

use super::dma::{CHUNK_SIZE, DmaMemory, Hugepages};
use crate::error::Result;
use crate::pci::vfio::Container;

/// Maps `size` bytes (a non-zero multiple of [`CHUNK_SIZE`]) of hugepages from
/// `hugepages`' mount at one IOVA range of `container`.
pub(crate) fn allocate(
    hugepages: &Hugepages,
    container: &Arc<Container>,
    size: usize,
) -> Result<DmaMemory> {
    let virt = hugepages.map(size, false)?;
    let unmap_memory = move |p: NonNull<u8>, s: usize| {
        // SAFETY: (p, s) is exactly the hugepage mapping made above, released once.
        unsafe { libc::munmap(p.as_ptr().cast(), s) };
    };
    // SAFETY: the mapping stays valid until the release closure below, which removes
    // the IOMMU mapping before unmapping the memory.
    let iova = match unsafe { container.map_dma(virt.as_ptr(), size as u64) } {
        Ok(iova) => iova,
        Err(e) => {
            unmap_memory(virt, size);
            return Err(e);
        }
    };
    let chunks = (0..size / CHUNK_SIZE)
        .map(|i| iova + (i * CHUNK_SIZE) as u64)
        .collect();
    let domain = container.dma_domain();
    let container = container.clone();
    let release = Box::new(move |p: NonNull<u8>, s: usize| {
        container.unmap_dma(iova, s as u64);
        unmap_memory(p, s);
    });
    // SAFETY: a fresh mapping of `size` bytes owned by this region, 2 MiB aligned here and
    // at its IOVA (IovaAllocator hands out 2 MiB aligned ranges); the whole region is one
    // contiguous IOVA range, so every chunk is contiguous in bus address space; VFIO pinned
    // the pages, so the translation stays valid until the release closure unmaps it. The
    // IOVAs are the container's domain.
    Ok(unsafe { DmaMemory::from_raw_parts(virt, size, chunks, domain, release) })
}
