//! Split virtqueues (virtio spec 1.1, 2.6): descriptor table, available ring, used ring.
//!
//! This module knows the ring layout and the driver's side of the protocol, and nothing
//! about how the device is reached (legacy I/O port or modern MMIO). It runs unchanged on
//! ordinary memory, which is how it is tested. Everything read from the used ring — written
//! by the device — is validated before use: a bad descriptor id or length is reported, not
//! trusted.

use std::sync::atomic::{Ordering, fence};

use crate::error::{Error, Result};
use crate::memory::dma::DMA_ALIGN;
use crate::memory::{DmaAllocator, DmaMemory};

/// Descriptor flag: the buffer continues in the descriptor named by `next` (2.6.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes into the buffer (2.6.5).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Available ring flag: do not interrupt when buffers are used (2.6.7).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used ring flag: the device does not need to be notified of new buffers (2.6.8).
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// Legacy interfaces require the used ring on a 4096-byte boundary (2.6.2 / 4.1.4.8).
const LEGACY_ALIGN: usize = 4096;

/// Byte offsets of the three parts of a queue of `size` entries in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Entries in the queue (a power of two).
    pub size: u16,
    /// Offset of the available ring (after 16-byte descriptors).
    pub avail: usize,
    /// Offset of the used ring.
    pub used: usize,
    /// Total bytes.
    pub total: usize,
}

impl Layout {
    /// The legacy layout (2.6.2): descriptors, available ring, then the used ring on the
    /// next 4096-byte boundary. Modern devices accept it too.
    pub fn legacy(size: u16) -> Layout {
        let n = size as usize;
        let avail = 16 * n;
        // flags, idx, ring[n], used_event
        let used = (avail + 2 * (3 + n)).next_multiple_of(LEGACY_ALIGN);
        // flags, idx, ring[n] of (id u32, len u32), avail_event
        let total = (used + 6 + 8 * n).next_multiple_of(LEGACY_ALIGN);
        Layout {
            size,
            avail,
            used,
            total,
        }
    }
}

/// The driver's side of one split virtqueue.
///
/// Buffers are added as chains of descriptors taken from a free list; the id of a chain is
/// its head descriptor. The ring does not own what the buffers hold; callers keep that per
/// id (see `VirtioQueue` in the driver).
#[derive(Debug)]
pub struct Virtqueue {
    mem: DmaMemory,
    layout: Layout,
    /// Free descriptor ids (a stack).
    free: Box<[u16]>,
    num_free: u16,
    /// Next index to use in the available ring (free-running).
    avail_idx: u16,
    /// Next used ring index to read (free-running).
    last_used: u16,
    /// Length of the chain starting at each head, to free it on completion; 0 = not in use.
    chain_len: Box<[u16]>,
    /// The driver's own copy of each descriptor's `next` link, written in `add` and
    /// followed in `pop_used`. The copy in the table is shared with the device, which
    /// could rewrite it; following that one would let a device put an id on the free
    /// list twice and make the driver hand out a buffer the device still owns.
    next: Box<[u16]>,
}

/// A descriptor as written into the table (2.6.5), little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    /// Bus address of the buffer.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// `VIRTQ_DESC_F_*`.
    pub flags: u16,
}

impl Virtqueue {
    /// Allocates a queue of `size` entries (a power of two up to 32768) on `allocator`.
    pub fn new(allocator: &dyn DmaAllocator, size: u16) -> Result<Self> {
        if size == 0 || !size.is_power_of_two() || size > 32768 {
            return Err(Error::config(format!(
                "virtqueue size {size} is not a power of two from 1 to 32768"
            )));
        }
        let layout = Layout::legacy(size);
        // Checked once here: every access below relies on the region holding the whole
        // layout, 4096-byte aligned (the used ring's alignment; it also aligns the
        // descriptors and rings for the typed accesses).
        const _: () = assert!(DMA_ALIGN.is_multiple_of(LEGACY_ALIGN));
        let mut mem =
            allocator
                .allocate(layout.total)?
                .checked(layout.total, LEGACY_ALIGN, "virtqueue")?;
        mem.zero();
        Ok(Virtqueue {
            mem,
            layout,
            free: (0..size).rev().collect(),
            num_free: size,
            avail_idx: 0,
            last_used: 0,
            chain_len: vec![0; size as usize].into_boxed_slice(),
            next: vec![0; size as usize].into_boxed_slice(),
        })
    }

    /// Entries in the queue.
    pub fn size(&self) -> u16 {
        self.layout.size
    }

    /// The DMA domain of the queue's memory: the device's.
    pub(crate) fn dma_domain(&self) -> crate::memory::dma::DmaDomain {
        self.mem.domain()
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// The layout of the ring memory.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Bus address of the descriptor table (the start of the region).
    pub fn bus_addr(&self) -> u64 {
        self.mem.bus_addr(0)
    }

    /// Bus address of the available ring.
    pub fn avail_bus_addr(&self) -> u64 {
        self.mem.bus_addr(self.layout.avail)
    }

    /// Bus address of the used ring.
    pub fn used_bus_addr(&self) -> u64 {
        self.mem.bus_addr(self.layout.used)
    }

    #[inline(always)]
    fn write16(&mut self, offset: usize, v: u16) {
        debug_assert!(offset + 2 <= self.layout.total);
        // SAFETY: offsets come from the layout, so they lie within `layout.total` bytes,
        // which `new` checked the region holds, and are 2-byte aligned from a 4096-byte
        // aligned start (also checked in `new`); volatile because the device reads the
        // memory concurrently.
        unsafe { (self.mem.virt().add(offset) as *mut u16).write_volatile(v.to_le()) }
    }

    #[inline(always)]
    fn read16(&self, offset: usize) -> u16 {
        debug_assert!(offset + 2 <= self.layout.total);
        // SAFETY: as in write16; the device writes these concurrently.
        u16::from_le(unsafe { (self.mem.virt().add(offset) as *const u16).read_volatile() })
    }

    #[inline(always)]
    fn read32(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= self.layout.total);
        // SAFETY: as in write16, 4-byte aligned.
        u32::from_le(unsafe { (self.mem.virt().add(offset) as *const u32).read_volatile() })
    }

    #[inline(always)]
    fn write_desc(&mut self, id: u16, d: Desc, next: u16) {
        let off = id as usize * 16;
        // SAFETY: id < size, so the 16-byte descriptor lies within the table, which lies
        // within the region (checked in `new`); 16-byte aligned from an aligned start.
        unsafe {
            let p = self.mem.virt().add(off);
            (p as *mut u64).write_volatile(d.addr.to_le());
            (p.add(8) as *mut u32).write_volatile(d.len.to_le());
            (p.add(12) as *mut u16).write_volatile(d.flags.to_le());
            (p.add(14) as *mut u16).write_volatile(next.to_le());
        }
    }

    /// Reads back descriptor `id` (for tests and debugging).
    pub fn desc(&self, id: u16) -> Desc {
        let off = (id % self.layout.size) as usize * 16;
        // SAFETY: id % size < size: within the table, which lies within the region
        // (checked in `new`); aligned as in write_desc.
        unsafe {
            let p = self.mem.virt().add(off);
            Desc {
                addr: u64::from_le((p as *const u64).read_volatile()),
                len: u32::from_le((p.add(8) as *const u32).read_volatile()),
                flags: u16::from_le((p.add(12) as *const u16).read_volatile()),
            }
        }
    }

    /// Puts a chain of buffers into the descriptor table and the available ring (not yet
    /// visible to the device: see [`Virtqueue::publish`]). Returns the chain's id, or `None`
    /// if there are not enough free descriptors.
    #[inline]
    pub fn add(&mut self, chain: &[Desc]) -> Option<u16> {
        let mut ids = [0u16; 4];
        if chain.is_empty() || chain.len() > ids.len() || chain.len() > self.num_free as usize {
            return None;
        }
        let n = chain.len() as u16;
        let ids = &mut ids[..chain.len()];
        for id in ids.iter_mut() {
            self.num_free -= 1;
            *id = self.free[self.num_free as usize];
        }
        for (i, d) in chain.iter().enumerate() {
            let (flags, next) = match ids.get(i + 1) {
                Some(&next) => (d.flags | VIRTQ_DESC_F_NEXT, next),
                None => (d.flags, 0),
            };
            self.write_desc(ids[i], Desc { flags, ..*d }, next);
            self.next[ids[i] as usize] = next;
        }
        let head = ids[0];
        self.chain_len[head as usize] = n;
        let slot = self.layout.avail + 4 + 2 * (self.avail_idx % self.layout.size) as usize;
        self.write16(slot, head);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Some(head)
    }

    /// Makes the buffers added so far visible to the device. Returns true if the device
    /// wants to be notified (it did not set `VIRTQ_USED_F_NO_NOTIFY`).
    #[inline]
    pub fn publish(&mut self) -> bool {
        // Descriptors and ring entries must be visible before the index (2.6.13.3).
        fence(Ordering::Release);
        self.write16(self.layout.avail + 2, self.avail_idx);
        // The index must be visible before we read the device's flags (2.6.13.6).
        fence(Ordering::SeqCst);
        self.read16(self.layout.used) & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    /// Asks the device not to interrupt on used buffers (polling mode).
    pub fn disable_interrupts(&mut self) {
        self.write16(self.layout.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
    }

    /// Lets the device interrupt on used buffers again (while the driver sleeps).
    pub fn enable_interrupts(&mut self) {
        self.write16(self.layout.avail, 0);
    }

    /// Takes the next used chain: its id and the number of bytes the device wrote.
    ///
    /// `Ok(None)` if the device has not used anything new. An error if the device reports
    /// an id that is not an outstanding chain; the entry is skipped.
    #[inline]
    pub fn pop_used(&mut self) -> std::result::Result<Option<(u16, u32)>, String> {
        let used_idx = self.read16(self.layout.used + 2);
        if used_idx == self.last_used {
            return Ok(None);
        }
        // Read the entry only after seeing the index (2.6.14).
        fence(Ordering::Acquire);
        let elem = self.layout.used + 4 + 8 * (self.last_used % self.layout.size) as usize;
        self.last_used = self.last_used.wrapping_add(1);
        let id = self.read32(elem);
        let len = self.read32(elem + 4);
        if id >= self.layout.size as u32 || self.chain_len[id as usize] == 0 {
            return Err(format!(
                "device returned descriptor id {id}, which is not in use"
            ));
        }
        let id = id as u16;
        // Free the chain by following the driver's copy of its next links (never the
        // table's, which the device can write).
        let mut cur = id;
        for _ in 0..self.chain_len[id as usize] {
            self.free[self.num_free as usize] = cur;
            self.num_free += 1;
            cur = self.next[cur as usize];
        }
        self.chain_len[id as usize] = 0;
        Ok(Some((id, len)))
    }

    /// Entries the device has used but the driver not yet taken (for tests).
    pub fn pending_used(&self) -> u16 {
        self.read16(self.layout.used + 2)
            .wrapping_sub(self.last_used)
    }
}

/// Plays the device's side of a ring on ordinary memory, for tests.
#[cfg(test)]
pub(crate) mod fake_device {
    use super::*;

    /// Reads the available ring and writes the used ring as a device would.
    pub struct FakeDevice {
        pub next_avail: u16,
        pub used_idx: u16,
    }

    impl FakeDevice {
        pub fn new() -> Self {
            FakeDevice {
                next_avail: 0,
                used_idx: 0,
            }
        }

        /// Takes the next available chain head, if the driver published one.
        pub fn take(&mut self, q: &Virtqueue) -> Option<u16> {
            let avail_idx = q.read16(q.layout.avail + 2);
            if avail_idx == self.next_avail {
                return None;
            }
            let slot = q.layout.avail + 4 + 2 * (self.next_avail % q.layout.size) as usize;
            self.next_avail = self.next_avail.wrapping_add(1);
            Some(q.read16(slot))
        }

        /// Completes chain `id` with `len` bytes written.
        pub fn complete(&mut self, q: &mut Virtqueue, id: u32, len: u32) {
            let elem = q.layout.used + 4 + 8 * (self.used_idx % q.layout.size) as usize;
            // SAFETY: within the used ring, aligned.
            unsafe {
                let p = q.mem.virt().add(elem);
                (p as *mut u32).write_volatile(id.to_le());
                (p.add(4) as *mut u32).write_volatile(len.to_le());
            }
            self.used_idx = self.used_idx.wrapping_add(1);
            let used = q.layout.used;
            q.write16(used + 2, self.used_idx);
        }

        pub fn set_no_notify(&self, q: &mut Virtqueue, on: bool) {
            let used = q.layout.used;
            q.write16(used, if on { VIRTQ_USED_F_NO_NOTIFY } else { 0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake_device::FakeDevice;
    use super::*;
    use crate::memory::HeapDma;

    #[test]
    fn legacy_layout_matches_the_spec_for_qemus_256_entry_queues() {
        // 256 * 16 = 4096 descriptors, avail 6 + 512 = 518 -> used at 8192,
        // used 6 + 2048 -> total 12288.
        assert_eq!(
            Layout::legacy(256),
            Layout {
                size: 256,
                avail: 4096,
                used: 8192,
                total: 12288
            }
        );
        assert_eq!(Layout::legacy(64).used, 4096);
    }

    #[test]
    fn sizes_must_be_powers_of_two() {
        for bad in [0, 100] {
            assert_eq!(
                Virtqueue::new(&HeapDma, bad).err().unwrap().to_string(),
                format!(
                    "invalid configuration: virtqueue size {bad} is not a power of two from 1 to 32768"
                )
            );
        }
        assert_eq!(Virtqueue::new(&HeapDma, 128).unwrap().num_free(), 128);
    }

    #[test]
    fn chains_are_written_linked_and_published() {
        let mut q = Virtqueue::new(&HeapDma, 8).unwrap();
        let chain = [
            Desc {
                addr: 0x1000,
                len: 2,
                flags: 0,
            },
            Desc {
                addr: 0x2000,
                len: 1,
                flags: 0,
            },
            Desc {
                addr: 0x3000,
                len: 1,
                flags: VIRTQ_DESC_F_WRITE,
            },
        ];
        let id = q.add(&chain).unwrap();
        assert_eq!(id, 0);
        assert_eq!(q.num_free(), 5);
        assert_eq!(
            q.desc(0),
            Desc {
                addr: 0x1000,
                len: 2,
                flags: VIRTQ_DESC_F_NEXT
            }
        );
        assert_eq!(q.read16(14), 1); // next of descriptor 0
        assert_eq!(
            q.desc(2),
            Desc {
                addr: 0x3000,
                len: 1,
                flags: VIRTQ_DESC_F_WRITE
            }
        );
        let mut dev = FakeDevice::new();
        assert_eq!(dev.take(&q), None, "not visible before publish");
        assert!(q.publish());
        assert_eq!(dev.take(&q), Some(0));
        dev.complete(&mut q, 0, 1);
        assert_eq!(q.pop_used(), Ok(Some((0, 1))));
        assert_eq!(q.num_free(), 8);
        assert_eq!(q.pop_used(), Ok(None));
    }

    #[test]
    fn a_short_region_from_the_allocator_is_an_error_not_an_overflow() {
        // 256 entries need 12288 bytes; the allocator returns 4096.
        let err = Virtqueue::new(&crate::memory::dma::ShortDma, 256).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{msg}");
        assert!(msg.contains("virtqueue, which needs 12288"), "{msg}");
    }

    #[test]
    fn chains_longer_than_four_or_than_the_free_count_are_refused() {
        let mut q = Virtqueue::new(&HeapDma, 8).unwrap();
        let d = Desc {
            addr: 1,
            len: 1,
            flags: 0,
        };
        // 65537 descriptors: a length that truncates to 1 as a u16.
        assert_eq!(q.add(&vec![d; 65_537]), None);
        assert_eq!(q.add(&[d; 5]), None);
        assert_eq!(q.add(&[]), None);
        assert_eq!(q.num_free(), 8);
    }

    #[test]
    fn a_device_rewriting_next_links_cannot_cause_a_double_hand_out() {
        let mut q = Virtqueue::new(&HeapDma, 4).unwrap();
        let mut dev = FakeDevice::new();
        let d = Desc {
            addr: 1,
            len: 1,
            flags: 0,
        };
        let a = q.add(&[d, d]).unwrap();
        let b = q.add(&[d]).unwrap();
        q.publish();
        assert_eq!(dev.take(&q), Some(a));
        // The device points the second descriptor of chain `a` at `b`, which is still in
        // flight, and completes `a`.
        let second = q.next[a as usize];
        assert_ne!(second, b);
        q.write16(second as usize * 16 + 14, b);
        q.write16(a as usize * 16 + 14, b);
        dev.complete(&mut q, a as u32, 0);
        assert_eq!(q.pop_used(), Ok(Some((a, 0))));
        assert_eq!(q.num_free(), 3);
        // Every id handed out from now on is distinct from `b` and from each other.
        let mut handed = vec![b];
        for _ in 0..3 {
            let id = q.add(&[d]).unwrap();
            assert!(
                !handed.contains(&id),
                "id {id} handed out twice: {handed:?}"
            );
            handed.push(id);
        }
        assert_eq!(q.add(&[d]), None);
    }

    #[test]
    fn a_full_ring_refuses_more_buffers() {
        let mut q = Virtqueue::new(&HeapDma, 4).unwrap();
        let d = Desc {
            addr: 1,
            len: 1,
            flags: 0,
        };
        for i in 0..4 {
            assert_eq!(q.add(&[d]), Some(i));
        }
        assert_eq!(q.add(&[d]), None);
        assert_eq!(q.add(&[d, d]), None);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "the u16 indices wrap after 65536 rounds: about 5 minutes under Miri"
    )]
    fn indices_wrap_around_over_many_rounds() {
        let mut q = Virtqueue::new(&HeapDma, 4).unwrap();
        let mut dev = FakeDevice::new();
        // 70000 buffers: both free-running u16 indices wrap.
        for round in 0..70_000u32 {
            let id = q
                .add(&[Desc {
                    addr: round as u64,
                    len: 60,
                    flags: 0,
                }])
                .unwrap();
            q.publish();
            let got = dev.take(&q).unwrap();
            assert_eq!(got, id);
            assert_eq!(q.desc(id).addr, round as u64);
            dev.complete(&mut q, id as u32, round % 1500);
            assert_eq!(q.pop_used(), Ok(Some((id, round % 1500))));
        }
        assert_eq!(q.num_free(), 4);
        assert_eq!(q.avail_idx, (70_000u32 % 65_536) as u16);
    }

    #[test]
    fn out_of_order_completion_frees_the_right_descriptors() {
        let mut q = Virtqueue::new(&HeapDma, 4).unwrap();
        let mut dev = FakeDevice::new();
        let a = q
            .add(&[Desc {
                addr: 1,
                len: 1,
                flags: 0,
            }])
            .unwrap();
        let b = q
            .add(&[Desc {
                addr: 2,
                len: 1,
                flags: 0,
            }])
            .unwrap();
        q.publish();
        dev.take(&q);
        dev.take(&q);
        dev.complete(&mut q, b as u32, 0);
        dev.complete(&mut q, a as u32, 0);
        assert_eq!(q.pop_used(), Ok(Some((b, 0))));
        assert_eq!(q.pop_used(), Ok(Some((a, 0))));
        assert_eq!(q.num_free(), 4);
    }

    #[test]
    fn ids_the_driver_did_not_hand_out_are_rejected() {
        let mut q = Virtqueue::new(&HeapDma, 4).unwrap();
        let mut dev = FakeDevice::new();
        dev.complete(&mut q, 9, 0); // out of range
        assert_eq!(
            q.pop_used().unwrap_err(),
            "device returned descriptor id 9, which is not in use"
        );
        dev.complete(&mut q, 2, 0); // in range, but not in use
        assert_eq!(
            q.pop_used().unwrap_err(),
            "device returned descriptor id 2, which is not in use"
        );
        assert_eq!(q.num_free(), 4, "nothing freed twice");
        assert_eq!(q.pop_used(), Ok(None));
    }

    #[test]
    fn notification_suppression_is_honoured() {
        let mut q = Virtqueue::new(&HeapDma, 4).unwrap();
        let dev = FakeDevice::new();
        q.add(&[Desc {
            addr: 1,
            len: 1,
            flags: 0,
        }])
        .unwrap();
        dev.set_no_notify(&mut q, true);
        assert!(!q.publish());
        dev.set_no_notify(&mut q, false);
        assert!(q.publish());
        q.disable_interrupts();
        assert_eq!(q.read16(q.layout.avail), VIRTQ_AVAIL_F_NO_INTERRUPT);
        q.enable_interrupts();
        assert_eq!(q.read16(q.layout.avail), 0);
    }
}
