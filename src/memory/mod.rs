//! Memory the NIC can reach: DMA regions, packet buffer pools and packets.
//!
//! * [`dma`] allocates physically pinned memory and knows its bus addresses: 2 MiB hugepages
//!   translated through `/proc/self/pagemap`, or ordinary heap memory for tests and the
//!   device model (where bus address = virtual address).
//!   With a VFIO container in the process, [`Hugepages`] maps its memory at I/O virtual
//!   addresses through the IOMMU instead (`pci::vfio::Container::map_dma`).
//! * [`mempool`] carves a DMA region into fixed-size packet buffers and hands them out as
//!   [`Packet`]s, which return to their pool when dropped.

pub mod dma;
pub mod mempool;

#[cfg(any(test, feature = "model"))]
pub use dma::HeapDma;
pub use dma::{DmaAllocator, DmaMemory, Hugepages};
pub use mempool::{Mempool, Packet};
