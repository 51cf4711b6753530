//! Handing a descriptor ring to a queue and enabling it, for a queue given by its register
//! offsets ([`QueueRegs`]): the 82599's PF queues (82599 datasheet 4.6.7.1 / 4.6.8.1),
//! its VF queues (8.3) and the 82576's PF and VF queues, with the same layout and enable
//! protocol.

use super::ring::DescRing;
use crate::ixgbe::POOL_ENTRY_SIZE;
use crate::memory::mempool::HEADROOM;
use crate::registers::RegisterSpace;

/// Byte offsets of one queue's ring registers (RDBAL/RDBAH/RDLEN/RDH/RDT/RXDCTL, their
/// transmit or VF counterparts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueRegs {
    /// Descriptor base address, low 32 bits.
    pub(crate) base_lo: usize,
    /// Descriptor base address, high 32 bits.
    pub(crate) base_hi: usize,
    /// Ring length in bytes.
    pub(crate) len: usize,
    /// Head.
    pub(crate) head: usize,
    /// Tail.
    pub(crate) tail: usize,
    /// Queue control (the ENABLE bit).
    pub(crate) ctl: usize,
}

/// The ring registers of a queue whose 0x40-byte register block starts at `block`: the
/// layout of the 82599's PF and VF queues (82599 datasheet 8.2.3.8, 8.2.3.9, 8.3) and of
/// the 82576's PF and VF queues (82576 datasheet 8.10, 8.12; Linux igb `e1000_regs.h`).
pub(crate) const fn queue_block(block: usize) -> QueueRegs {
    QueueRegs {
        base_lo: block,
        base_hi: block + 0x04,
        len: block + 0x08,
        head: block + 0x10,
        tail: block + 0x18,
        ctl: block + 0x28,
    }
}

/// SRRCTL (or VFSRRCTL) at `srrctl`: advanced one-buffer descriptors, the buffer size of
/// the drivers' pools in KB, and drop when out of descriptors instead of holding up the
/// shared packet buffer (82599 datasheet 8.2.3.8.7; the 82576's BSIZEPACKET field is wider
/// and its DROP_EN elsewhere: 82576 datasheet 8.10). `bits` are that field's mask and that
/// bit: the PF's `SRRCTL_BITS`, which its VF shares.
pub(crate) fn set_srrctl<R: RegisterSpace>(regs: &R, srrctl: usize, bits: [u32; 2]) {
    let [bsize_mask, drop_en] = bits;
    let buf_kb = ((POOL_ENTRY_SIZE - HEADROOM) / 1024) as u32;
    let keep = regs.read32(srrctl) & !(super::regs::SRRCTL_DESCTYPE_MASK | bsize_mask);
    let set = super::regs::SRRCTL_DESCTYPE_ADV_ONEBUF | drop_en | buf_kb;
    regs.write32(srrctl, keep | set);
}

/// Points the queue at `ring`, empty (head = tail = 0). The queue must be disabled.
pub(crate) fn program_ring<R: RegisterSpace>(regs: &R, q: &QueueRegs, ring: &DescRing) {
    let bus_addr = ring.bus_addr();
    regs.write32(q.base_lo, bus_addr as u32);
    regs.write32(q.base_hi, (bus_addr >> 32) as u32);
    regs.write32(q.len, ring.len_bytes());
    regs.write32(q.head, 0);
    regs.write32(q.tail, 0);
}
