//! Split virtqueues (virtio spec 1.1, 2.6): descriptor table, available ring, used ring.
//!
//! This module knows the ring layout and the driver's side of the protocol, and nothing
//! about how the device is reached (legacy I/O port or modern MMIO). It runs unchanged on
//! ordinary memory, which is how it is tested. Everything read from the used ring — written
//! by the device — is validated before use: a bad descriptor id, length or index is
//! reported ([`UsedError`]), not trusted.

use std::collections::VecDeque;
use std::sync::atomic::{Ordering, fence};

use crate::error::{Error, Result};
use crate::memory::dma::DMA_ALIGN;
use crate::memory::mempool::Returns;
use crate::memory::{DmaAllocator, DmaMemory, Mempool, Packet};

/// Descriptor flag: the buffer continues in the descriptor named by `next` (2.6.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes into the buffer (2.6.5).
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
/// Available ring flag: do not interrupt when buffers are used (2.6.7).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used ring flag: the device does not need to be notified of new buffers (2.6.8).
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;

/// Transmit reclaims sent packets once this many are used (or the ring is short of room).
const RECLAIM_BATCH: u16 = 32;

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

/// Something the device did that the spec does not allow, seen on a used ring. Small and
/// `Copy`: the packet path reports it without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsedError {
    /// The device returned a descriptor id that is not an outstanding chain.
    UnknownId(u32),
    /// The used index moved by more than the queue size since the driver last looked
    /// (forwards or backwards): the ring cannot be trusted.
    IndexJump {
        /// The driver's next used index.
        expected: u16,
        /// The index the device published.
        found: u16,
    },
    /// The device reported writing more bytes than the buffer holds.
    TooLong {
        /// The length the device reported.
        len: u32,
        /// The buffer's length.
        max: u32,
    },
}

/// The driver's side of one split virtqueue, holding a `T` (a packet, or nothing for the
/// control queue) for each chain the device owns.
///
/// Single buffers go in available-ring order: the buffer in available slot `i` uses
/// descriptor `i` (the avail entry names it), so there is no free list and no chain
/// bookkeeping on the packet path. A device may use buffers out of order (2.6.8): then a
/// slot whose descriptor is still in flight is simply not refilled until it returns.
/// Chains (control commands, one at a time) start at descriptor 0.
#[derive(Debug)]
pub struct Virtqueue<T> {
    mem: DmaMemory,
    layout: Layout,
    /// Next index to use in the available ring (free-running).
    avail_idx: u16,
    /// Next used ring index to read (free-running).
    last_used: u16,
    /// What the chain headed by each descriptor id holds; `None`: not in flight.
    items: Box<[Option<T>]>,
    /// The device has so far used every buffer in the order it was made available (the
    /// usual case; cleared for good when it does not): then exactly the slots from
    /// `last_used` to `avail_idx` are in flight, which the packet path relies on to work
    /// without per-slot checks.
    in_order: bool,
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

impl<T> Virtqueue<T> {
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
        // descriptors and rings for the typed accesses). The allocator's memory is zeroed,
        // as 4.1.5.1.3 asks of the rings: nothing to clear here.
        const _: () = assert!(DMA_ALIGN.is_multiple_of(LEGACY_ALIGN));
        let mem =
            allocator
                .allocate(layout.total)?
                .checked(layout.total, LEGACY_ALIGN, "virtqueue")?;
        let mut vq = Virtqueue {
            mem,
            layout,
            avail_idx: 0,
            last_used: 0,
            items: (0..size).map(|_| None).collect(),
            in_order: true,
        };
        // `avail.ring[i] = i` once: single buffers go in slot order, so the available ring
        // never changes on the packet path (control chains write their own entry).
        for i in 0..size {
            vq.write16(layout.avail + 4 + 2 * i as usize, i);
        }
        Ok(vq)
    }

    /// Bus addresses of the descriptor table, the available ring and the used ring.
    pub fn bus_addrs(&self) -> (u64, u64, u64) {
        let at = |offset| self.mem.bus_addr(offset);
        (at(0), at(self.layout.avail), at(self.layout.used))
    }

    /// Pointer to the `u16` at `offset` of the region, an offset from the layout.
    #[inline(always)]
    fn ring16(&self, offset: usize) -> *mut u16 {
        debug_assert!(offset + 2 <= self.layout.total);
        self.mem.virt().wrapping_add(offset).cast()
    }

    #[inline(always)]
    fn write16(&mut self, offset: usize, v: u16) {
        // SAFETY: offsets come from the layout, so they lie within `layout.total` bytes,
        // which `new` checked the region holds, and are 2-byte aligned from a 4096-byte
        // aligned start (also checked in `new`); volatile because the device reads the
        // memory concurrently.
        unsafe { self.ring16(offset).write_volatile(v.to_le()) }
    }

    #[inline(always)]
    fn read16(&self, offset: usize) -> u16 {
        // SAFETY: as in write16; the device writes these concurrently.
        u16::from_le(unsafe { self.ring16(offset).read_volatile() })
    }

    /// Pointers to used ring element, descriptor and item `slot` (< size).
    #[inline(always)]
    fn slot_ptrs(&mut self, slot: usize) -> (*const u32, *mut u64, *mut Option<T>) {
        debug_assert!(slot < self.layout.size as usize);
        let base = self.mem.virt();
        // SAFETY: slot < size: the element and the descriptor lie inside the region
        // (checked in `new`), the item inside `items`.
        unsafe {
            (
                base.add(self.layout.used + 4 + 8 * slot) as *const u32,
                base.add(16 * slot) as *mut u64,
                self.items.as_mut_ptr().add(slot),
            )
        }
    }

    /// Adds a chain of buffers holding `item`, in descriptors 0, 1, ... (not yet visible
    /// to the device). `None` if the queue is too short or a chain is in flight.
    pub fn add_chain(&mut self, chain: &[Desc], item: T) -> Option<()> {
        if chain.is_empty()
            || chain.len() > self.layout.size as usize
            || self.items.iter().any(Option::is_some)
        {
            return None;
        }
        for (i, d) in chain.iter().enumerate() {
            // Each descriptor but the last links to the next one.
            let link = u64::from(i + 1 < chain.len());
            let flags = d.flags as u64 | (link * VIRTQ_DESC_F_NEXT as u64);
            let meta = d.len as u64 | flags << 32 | (link * (i as u64 + 1)) << 48;
            let (_, desc, _) = self.slot_ptrs(i);
            // SAFETY: `slot_ptrs` points into the table; no chain is in flight, so the
            // device does not read it; volatile: it will.
            unsafe {
                desc.write_volatile(d.addr.to_le());
                desc.add(1).write_volatile(meta.to_le());
            }
        }
        // Chains head descriptor 0 in any available slot: not the packet path's order.
        self.in_order = false;
        self.items[0] = Some(item);
        let slot = self.avail_idx & (self.layout.size - 1);
        self.write16(self.layout.avail + 4 + 2 * slot as usize, 0);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Some(())
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

    /// Number of used entries the device has published and the driver not yet taken.
    ///
    /// An error if the device's index moved by more than the queue size (it jumped, or went
    /// backwards): nothing on the ring is taken then.
    #[inline(always)]
    pub fn used_ready(&self) -> std::result::Result<u16, UsedError> {
        let found = self.read16(self.layout.used + 2);
        let ready = found.wrapping_sub(self.last_used);
        if ready > self.layout.size {
            return Err(UsedError::IndexJump {
                expected: self.last_used,
                found,
            });
        }
        // Read the entries only after seeing the index (2.6.14).
        fence(Ordering::Acquire);
        Ok(ready)
    }

    /// Takes the next used chain if there is one (control path: one index read per call):
    /// what it held and the number of bytes the device wrote. An error if the device
    /// named an id that is not in flight; the entry is skipped.
    pub fn pop_used(&mut self) -> std::result::Result<Option<(T, u32)>, UsedError> {
        if self.used_ready()? == 0 {
            return Ok(None);
        }
        let slot = (self.last_used & (self.layout.size - 1)) as usize;
        self.last_used = self.last_used.wrapping_add(1);
        let (used, _, _) = self.slot_ptrs(slot);
        // SAFETY: `slot_ptrs` points into the used ring; volatile: the device writes it.
        let (id, len) = unsafe { (used.read_volatile(), used.add(1).read_volatile()) };
        let id = u32::from_le(id);
        let item = self.items.get_mut(id as usize).and_then(Option::take);
        // Anything but the in-order entry ends the in-order paths for good.
        self.in_order &= id as usize == slot && item.is_some();
        let item = item.ok_or(UsedError::UnknownId(id))?;
        Ok(Some((item, u32::from_le(len))))
    }

    /// Entries the device has used but the driver not yet taken (0 if the index is bad).
    pub fn pending_used(&self) -> u16 {
        self.used_ready().unwrap_or(0)
    }
}

/// Device errors seen in one batch: how many, and the last one (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Entries the device got wrong.
    pub count: u64,
    /// The last of them.
    pub last: UsedError,
}

impl Faults {
    /// No errors yet.
    pub const NONE: Faults = Faults {
        count: 0,
        last: UsedError::UnknownId(0),
    };

    #[cold]
    fn add(&mut self, e: UsedError) {
        self.count += 1;
        self.last = e;
    }
}

/// The packet path: rx and tx queues hold one packet per descriptor, descriptor `i` in
/// available slot `i`. While the device uses buffers in order, the used entries and the
/// free slots are contiguous runs ("spans", cut at the end of the ring), which the loops
/// below walk with plain pointers: one compare per used entry (its id names its own slot)
/// is the whole validity check. Anything else — another id, a bad length — ends the span
/// and goes to the checked path, entry by entry.
impl Virtqueue<Packet> {
    /// The run of used entries the in-order path may take: its first slot and length (at
    /// most `max`, none past the end of the ring). Empty unless the device has used every
    /// buffer in order so far and `ready` does not exceed the buffers in flight: then each
    /// slot of the run holds a packet.
    #[inline(always)]
    fn used_span(&self, ready: u16, max: usize) -> (usize, usize) {
        let size = self.layout.size as usize;
        let start = self.last_used as usize & (size - 1);
        let in_flight = self.avail_idx.wrapping_sub(self.last_used);
        let n = match self.in_order && ready <= in_flight {
            true => (ready as usize).min(max).min(size - start),
            false => 0,
        };
        debug_assert!(start + n <= size);
        (start, n)
    }

    /// The run of free slots the next buffers go to: its first slot and length (at most
    /// `max`, none past the end of the ring). In order, every slot from `avail_idx` up to
    /// the in-flight ones is free; otherwise only the next slot, if it is free.
    #[inline(always)]
    fn free_span(&self, max: usize) -> (usize, usize) {
        let size = self.layout.size as usize;
        let start = self.avail_idx as usize & (size - 1);
        let free = match self.in_order {
            true => size - self.avail_idx.wrapping_sub(self.last_used) as usize,
            false => self.items[start].is_none() as usize,
        };
        let n = free.min(size - start).min(max);
        debug_assert!(start + n <= size);
        (start, n)
    }

    /// Takes up to `max` used entries one by one, each checked, handing the packet and the
    /// length to `f` (which may refuse the entry); faults are counted and their entries
    /// skipped. Returns how many packets `f` took.
    #[cold]
    fn drain_checked(
        &mut self,
        max: usize,
        faults: &mut Faults,
        mut f: impl FnMut(Packet, u32) -> std::result::Result<(), UsedError>,
    ) {
        for _ in 0..max {
            match self.pop_used().map(|e| e.map(|(p, len)| f(p, len))) {
                Ok(None) => return,
                Ok(Some(Ok(()))) => {}
                Ok(Some(Err(e))) => faults.add(e),
                Err(e @ UsedError::IndexJump { .. }) => return faults.add(e),
                Err(e) => faults.add(e),
            }
        }
    }

    /// Receive: moves up to `num` received packets into `buffer`, their length set from
    /// the device's minus the `HDR`-byte net header in front. A length beyond the buffer
    /// is a fault: that packet is dropped. While the ring is full and in order, each used
    /// slot gets a fresh buffer from `pool` at once. Returns (packets, bytes, buffers
    /// refilled: not yet published).
    #[inline(always)]
    pub fn receive<const HDR: usize>(
        &mut self,
        pool: &Mempool,
        buffer: &mut VecDeque<Packet>,
        num: usize,
        faults: &mut Faults,
    ) -> (usize, u64, usize) {
        let ready = match self.used_ready() {
            Ok(0) => return (0, 0, 0),
            Ok(n) => (n as usize).min(num),
            Err(e) => {
                faults.add(e);
                return (0, 0, 0);
            }
        };
        // A plain Vec: O(1) both ways when the deque starts at its buffer's beginning (else
        // it is rotated in place), and packets are written by pointer.
        let mut out = Vec::from(std::mem::take(buffer));
        let before = out.len();
        out.reserve(ready);
        let (mut refilled, mut bytes) = (0, 0);
        while self.avail_idx.wrapping_sub(self.last_used) == self.layout.size {
            let left = ready - refilled;
            let (start, n) = self.used_span(left as u16, left);
            let n = n.min(pool.ready());
            // SAFETY: `out` has room for `ready` more packets, n <= ready - refilled, and
            // n <= pool.ready() just now.
            let (k, b) = unsafe {
                self.receive_span::<HDR>(pool, out.as_mut_ptr().add(out.len()), start, n)
            };
            (refilled, bytes) = (refilled + k, bytes + b);
            // SAFETY: the k packets were written by `receive_span`.
            unsafe { out.set_len(out.len() + k) };
            if k < n || k == 0 || refilled == ready {
                break;
            }
        }
        let max = pool.max_packet_len() as u32 + HDR as u32;
        if refilled < ready {
            self.drain_checked(ready - refilled, faults, |mut p, len| {
                if len > max {
                    return Err(UsedError::TooLong { len, max });
                }
                // SAFETY: at most the pool's largest packet (above); ring buffers come
                // from `pool` with the standard headroom.
                unsafe { p.set_len_unchecked(len.saturating_sub(HDR as u32) as usize) };
                bytes += p.len() as u64;
                out.push(p);
                Ok(())
            });
        }
        let received = out.len() - before;
        // `buffer` holds the empty deque `take` left, which owns no memory.
        std::mem::forget(std::mem::replace(buffer, VecDeque::from(out)));
        (received, bytes, refilled)
    }

    /// The in-order receive path over `n` used entries from `start` (a span): each
    /// packet, with its length, goes to the end of `out`, and its slot gets a fresh buffer
    /// from `pool`, made available at once. Stops at an entry that does not name its own
    /// slot or whose length does not fit. Returns (packets, bytes).
    ///
    /// # Safety
    /// `out` must have room for `n` more packets; `n` must be at most what
    /// [`Mempool::ready`] returned, with no allocation since.
    #[inline(always)]
    unsafe fn receive_span<const HDR: usize>(
        &mut self,
        pool: &Mempool,
        out: *mut Packet,
        start: usize,
        n: usize,
    ) -> (usize, u64) {
        let max = pool.max_packet_len() as u32;
        let meta = (max as u64 + HDR as u64) | (VIRTQ_DESC_F_WRITE as u64) << 32;
        let (used, descs, items) = self.slot_ptrs(start);
        // SAFETY: n <= pool.ready() (contract); nothing allocates from the pool while
        // `fresh` is in use (received packets go to `out`); the ones not taken are put
        // back below.
        let mut fresh = unsafe { pool.reserve(n) };
        let (mut k, mut bytes) = (0, 0);
        while k < n {
            // SAFETY: k < n: the span lies inside the used ring, the table and `items`
            // (`used_span`); volatile: the device writes the used ring, reads descriptors.
            unsafe {
                let id = u32::from_le(used.add(2 * k).read_volatile());
                let len = u32::from_le(used.add(2 * k + 1).read_volatile());
                let data = len.wrapping_sub(HDR as u32);
                if id as usize != start + k || data > max {
                    break;
                }
                // In order, with `ready` within the buffers in flight, slot start + k
                // holds a packet (`used_span`); the k-th of the n reserved buffers.
                let (buf, bus) = fresh.take();
                let p = std::ptr::replace(items.add(k), Some(buf)).unwrap_unchecked();
                descs.add(2 * k).write_volatile((bus - HDR as u64).to_le());
                descs.add(2 * k + 1).write_volatile(meta.to_le());
                out.add(k).write(p);
                // The length was checked against the buffer above, read once.
                (*out.add(k)).set_len_unchecked(data as usize);
                bytes += data as u64;
            }
            k += 1;
        }
        if k < n {
            // SAFETY: n reserved, k taken.
            unsafe { fresh.put_back(n - k) };
        }
        self.last_used = self.last_used.wrapping_add(k as u16);
        self.avail_idx = self.avail_idx.wrapping_add(k as u16);
        (k, bytes)
    }

    /// Gives consecutive free slots fresh buffers from `pool` for the device to write a
    /// `hdr_len`-byte header (into the headroom) and a frame (at the data start) into,
    /// until the pool is empty or the next slot is in flight. Returns how many were added
    /// (not yet published).
    #[inline]
    pub fn refill(&mut self, pool: &Mempool, hdr_len: usize) -> usize {
        let meta = (pool.max_packet_len() + hdr_len) as u64 | (VIRTQ_DESC_F_WRITE as u64) << 32;
        let start = self.avail_idx;
        let mut slot = (start & (self.layout.size - 1)) as usize;
        while self.items[slot].is_none()
            && let Some(p) = pool.alloc_empty()
        {
            let (_, desc, item) = self.slot_ptrs(slot);
            // SAFETY: `slot_ptrs` points into the table and `items`; the slot is free, so
            // the device does not read the descriptor; volatile: it will.
            unsafe {
                desc.write_volatile((p.bus_addr() - hdr_len as u64).to_le());
                desc.add(1).write_volatile(meta.to_le());
                item.write(Some(p));
            }
            self.avail_idx = self.avail_idx.wrapping_add(1);
            slot = (self.avail_idx & (self.layout.size - 1)) as usize;
        }
        self.avail_idx.wrapping_sub(start) as usize
    }

    /// Transmit: reclaims what the device has sent (dropping returns the buffers) once
    /// 32 packets are used or the ring lacks room for `buffer`, then moves
    /// packets from the front of `buffer` into free slots, each with an all-zero
    /// `HDR`-byte net header written into its headroom (no offloads, 5.1.6.2). A packet
    /// with less headroom, or in memory the device cannot reach, can never be sent: it is
    /// taken and dropped. Returns (sent, dropped, bytes sent); not yet published.
    #[inline(always)]
    pub fn transmit<const HDR: usize>(
        &mut self,
        buffer: &mut VecDeque<Packet>,
        faults: &mut Faults,
    ) -> (usize, usize, u64) {
        // Sent packets go back in batches (as on the Intel rings), or when the ring lacks
        // room for `buffer`: most small calls skip the reclaim's fixed cost. Anything odd
        // (out of order, more used than in flight, a bad index) is looked at at once.
        let in_flight = self.avail_idx.wrapping_sub(self.last_used);
        let room = usize::from(self.layout.size - in_flight) >= buffer.len();
        match self.used_ready() {
            Ok(n) if self.in_order && room && n <= in_flight && n < RECLAIM_BATCH => {}
            _ => self.reclaim(faults),
        }
        // A plain Vec, as in `receive`, whose packets are moved out by pointer.
        let mut packets = Vec::from(std::mem::take(buffer));
        let total = packets.len();
        let src = packets.as_mut_ptr();
        // SAFETY: the Vec forgets its packets while they are moved out by pointer (a
        // panic in between, from a packet's drop, leaks the rest instead of dropping
        // moved-out packets again). `set_len` below gives the untaken ones back.
        unsafe { packets.set_len(0) };
        let (mut k, mut dropped, mut bytes) = (0, 0, 0);
        while k < total {
            let (start, n) = self.free_span(total - k);
            if n == 0 {
                break;
            }
            // SAFETY: k + n <= total: packets of the Vec's buffer, not yet moved out.
            let (j, b) = unsafe { self.put_span::<HDR>(src.add(k), start, n) };
            (k, bytes) = (k + j, bytes + b);
            if j < n {
                // SAFETY: k < total: the packet that ended the span, not yet moved out.
                let p = unsafe { &*src.add(k) };
                // From another pool than the span's: the next span takes it. A packet
                // without room for the header, or in memory the device cannot reach (it
                // would read other memory at those bus addresses), is never sent.
                if p.headroom() < HDR || p.dma_domain() != self.mem.domain() {
                    // SAFETY: as above; moved out here, owned once (the Vec's length is 0).
                    drop(unsafe { std::ptr::read(src.add(k)) });
                    (k, dropped) = (k + 1, dropped + 1);
                }
            }
        }
        // SAFETY: the first k packets were moved out above; the rest (still initialised,
        // total <= capacity) moves to the front (overlapping copy), and the length becomes
        // just them.
        unsafe {
            if total > k {
                std::ptr::copy(src.add(k), src, total - k);
            }
            packets.set_len(total - k);
        }
        // `buffer` holds the empty deque `take` left, which owns no memory.
        std::mem::forget(std::mem::replace(buffer, VecDeque::from(packets)));
        (k - dropped, dropped, bytes)
    }

    /// Takes back what the device has sent (the packets return to their pools).
    #[inline(never)]
    fn reclaim(&mut self, faults: &mut Faults) {
        let mut ready = match self.used_ready() {
            Ok(n) => n as usize,
            Err(e) => return faults.add(e),
        };
        let mut returns = Returns::default();
        while ready > 0 {
            let (start, n) = self.used_span(ready as u16, ready);
            let (used, _, items) = self.slot_ptrs(0);
            let mut slot = start;
            while slot < start + n {
                // SAFETY: a slot of the span, inside the used ring and `items`; volatile:
                // the device writes the used ring.
                let id = unsafe { used.add(2 * slot).read_volatile() };
                if u32::from_le(id) as usize != slot {
                    break;
                }
                // SAFETY: as above; in order, with `ready` within the buffers in flight,
                // the slot holds a packet (`used_span`). It returns to its pool with its
                // run (a chain per pool).
                returns.push(unsafe { (*items.add(slot)).take().unwrap_unchecked() });
                slot += 1;
            }
            let k = slot - start;
            self.last_used = self.last_used.wrapping_add(k as u16);
            ready -= k;
            if k < n || k == 0 {
                break;
            }
        }
        drop(returns);
        if ready > 0 {
            // Out of order: the packets go back one by one.
            self.drain_checked(ready, faults, |p, _| {
                drop(p);
                Ok(())
            });
        }
    }

    /// Moves `n` packets from `src` into the `n` free slots from `start` on (a span),
    /// writing their net headers and descriptors. Takes none if the first packet's pool is
    /// out of the device's reach; stops at a packet without room for the header or from
    /// another pool than the first. Returns (packets, bytes).
    ///
    /// # Safety
    /// `src` must point to `n` packets the caller gives up (moved out by pointer).
    #[inline(always)]
    unsafe fn put_span<const HDR: usize>(
        &mut self,
        src: *mut Packet,
        start: usize,
        n: usize,
    ) -> (usize, u64) {
        let (_, descs, items) = self.slot_ptrs(start);
        // SAFETY: a span is never empty: a packet of the caller's. Its pool must be in the
        // device's DMA domain (checked once per span: the first packet keeps its pool
        // alive, so the pool address compared below is not stale).
        let first = unsafe { &*src };
        if first.dma_domain() != self.mem.domain() {
            return (0, 0);
        }
        // Its pool's map serves every packet taken below: they are of its pool.
        let (pool, map) = (first.pool_id(), first.map());
        // Packets, descriptors and items are 16 bytes each: one byte offset walks all three.
        const STEP: usize = size_of::<Packet>();
        const _: () = assert!(size_of::<Option<Packet>>() == STEP && 2 * size_of::<u64>() == STEP);
        let (mut off, mut bytes) = (0, 0);
        while off < n * STEP {
            // SAFETY: off / STEP < n: a packet of the caller's, not yet moved out.
            let p = unsafe { &*src.byte_add(off) };
            if p.headroom() < HDR || p.pool_id() != pool {
                break;
            }
            // SAFETY: of the map's pool (above).
            let (bus, len) = (unsafe { map.bus_addr(p) } - HDR as u64, p.len() as u64);
            // SAFETY: the packet owns its buffer, whose HDR <= headroom bytes before the
            // data no reference points into: two stores cover the 10 or 12 bytes. The
            // span's descriptors and items lie inside the table and `items`, free (so the
            // device does not read them); volatile: it will. The packet moves into its
            // slot (None: nothing to drop), owned once.
            unsafe {
                let hdr = map.data_ptr(p).sub(HDR);
                hdr.cast::<[u8; 8]>().write_unaligned([0; 8]);
                hdr.add(HDR - 4).cast::<[u8; 4]>().write_unaligned([0; 4]);
                let desc = descs.byte_add(off);
                desc.write_volatile(bus.to_le());
                desc.add(1).write_volatile((len + HDR as u64).to_le());
                items
                    .byte_add(off)
                    .write(Some(std::ptr::read(src.byte_add(off))));
            }
            bytes += len;
            off += STEP;
        }
        let k = off / STEP;
        self.avail_idx = self.avail_idx.wrapping_add(k as u16);
        (k, bytes)
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
        pub fn take<T>(&mut self, q: &Virtqueue<T>) -> Option<u16> {
            let avail_idx = q.read16(q.layout.avail + 2);
            if avail_idx == self.next_avail {
                return None;
            }
            let slot = q.layout.avail + 4 + 2 * (self.next_avail % q.layout.size) as usize;
            self.next_avail = self.next_avail.wrapping_add(1);
            Some(q.read16(slot))
        }

        /// Completes chain `id` with `len` bytes written.
        pub fn complete<T>(&mut self, q: &mut Virtqueue<T>, id: u32, len: u32) {
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

        pub fn set_no_notify<T>(&self, q: &mut Virtqueue<T>, on: bool) {
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

    impl<T> Virtqueue<T> {
        /// Adds one buffer holding `item` (not yet visible to the device: see
        /// [`Virtqueue::publish`]). Gives `item` back if the next slot is still in flight.
        #[inline(always)]
        pub fn add_one(&mut self, d: Desc, item: T) -> std::result::Result<(), T> {
            let slot = (self.avail_idx & (self.layout.size - 1)) as usize;
            if self.items[slot].is_some() {
                return Err(item);
            }
            let (_, desc, _) = self.slot_ptrs(slot);
            // SAFETY: `slot_ptrs` points into the table.
            unsafe {
                desc.write_volatile(d.addr.to_le());
                desc.add(1)
                    .write_volatile((d.len as u64 | (d.flags as u64) << 32).to_le());
            }
            self.items[slot] = Some(item);
            self.avail_idx = self.avail_idx.wrapping_add(1);
            Ok(())
        }

        /// Entries in the queue.
        pub fn size(&self) -> u16 {
            self.layout.size
        }

        /// True if the next buffer can be added (its descriptor is not in flight).
        pub fn can_add(&self) -> bool {
            self.items[(self.avail_idx & (self.layout.size - 1)) as usize].is_none()
        }

        /// Reads back descriptor `id` (for tests and debugging).
        pub fn desc(&self, id: u16) -> Desc {
            let off = (id % self.layout.size) as usize * 16;
            // SAFETY: id % size < size: within the table, which lies within the region
            // (checked in `new`); 16-byte aligned.
            unsafe {
                let p = self.mem.virt().add(off);
                Desc {
                    addr: u64::from_le((p as *const u64).read_volatile()),
                    len: u32::from_le((p.add(8) as *const u32).read_volatile()),
                    flags: u16::from_le((p.add(12) as *const u16).read_volatile()),
                }
            }
        }

        /// Chains the device owns.
        pub fn in_flight(&self) -> usize {
            self.items.iter().filter(|i| i.is_some()).count()
        }
    }

    fn d(addr: u64) -> Desc {
        Desc {
            addr,
            len: 1,
            flags: 0,
        }
    }

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
        // Virtio 1.x 2.7.2 (legacy interfaces): ALIGN(16 n + 2 (3 + n)) + ALIGN(6 + 8 n),
        // ALIGN to 4096. For 1024: 20480 + 12288.
        assert_eq!(
            Layout::legacy(1024),
            Layout {
                size: 1024,
                avail: 16384,
                used: 20480,
                total: 32768
            }
        );
        // 2048: ALIGN(32768 + 4102) + ALIGN(16390) = 40960 + 20480.
        assert_eq!(
            Layout::legacy(2048),
            Layout {
                size: 2048,
                avail: 32768,
                used: 40960,
                total: 61440
            }
        );
    }

    #[test]
    fn sizes_must_be_powers_of_two() {
        for bad in [0, 100] {
            let fact = format!("virtqueue size {bad} is not a power of two from 1 to 32768");
            crate::error::assert_invalid(Virtqueue::<()>::new(&HeapDma, bad), &fact);
        }
        assert_eq!(Virtqueue::<()>::new(&HeapDma, 128).unwrap().size(), 128);
    }

    #[test]
    fn chains_are_written_linked_and_published() {
        let mut q = Virtqueue::new(&HeapDma, 8).unwrap();
        let write = Desc {
            addr: 0x3000,
            len: 1,
            flags: VIRTQ_DESC_F_WRITE,
        };
        q.add_chain(&[d(0x1000), d(0x2000), write], 'c').unwrap();
        assert_eq!(q.in_flight(), 1);
        let mut first = d(0x1000);
        first.flags = VIRTQ_DESC_F_NEXT;
        assert_eq!(q.desc(0), first);
        assert_eq!(q.read16(14), 1); // next of descriptor 0
        assert_eq!(q.desc(2), write);
        assert_eq!(q.add_chain(&[d(1)], 'd'), None, "one chain at a time");
        let mut dev = FakeDevice::new();
        assert_eq!(dev.take(&q), None, "not visible before publish");
        assert!(q.publish());
        assert_eq!(dev.take(&q), Some(0));
        dev.complete(&mut q, 0, 1);
        assert_eq!(q.pop_used(), Ok(Some(('c', 1))));
        assert_eq!(q.in_flight(), 0);
        assert_eq!(q.pop_used(), Ok(None));
    }

    #[test]
    fn a_short_region_from_the_allocator_is_an_error_not_an_overflow() {
        // 256 entries need 12288 bytes; the allocator returns 4096.
        let err = Virtqueue::<()>::new(&crate::memory::dma::ShortDma, 256).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{msg}");
        assert!(msg.contains("virtqueue, which needs 12288"), "{msg}");
    }

    #[test]
    fn a_chain_may_fill_the_queue_and_keeps_a_next_flag_given() {
        let mut q = Virtqueue::new(&HeapDma, 8).unwrap();
        let mut linked = d(0x1000);
        linked.flags = VIRTQ_DESC_F_NEXT;
        let mut chain = [d(0x2000); 8];
        chain[0] = linked;
        assert_eq!(q.add_chain(&chain, 'c'), Some(()), "as long as the queue");
        assert_eq!(q.desc(0), linked, "NEXT kept");
        assert_eq!(q.read16(14), 1, "linked to descriptor 1");
    }

    #[test]
    fn the_device_may_use_every_entry_but_not_more() {
        let mut q = Virtqueue::<()>::new(&HeapDma, 8).unwrap();
        let used_idx = q.layout.used + 2;
        q.write16(used_idx, 8);
        assert_eq!(q.used_ready(), Ok(8));
        assert_eq!(q.pending_used(), 8);
        q.write16(used_idx, 9);
        assert_eq!(
            q.used_ready(),
            Err(UsedError::IndexJump {
                expected: 0,
                found: 9
            })
        );
        assert_eq!(q.pending_used(), 0, "a bad index");
    }

    #[test]
    fn a_full_queue_refuses_more_buffers() {
        let mut q = Virtqueue::new(&HeapDma, 8).unwrap();
        assert_eq!(q.add_chain(&[d(1); 9], ()), None, "longer than the queue");
        assert_eq!(q.add_chain(&[], ()), None);
        for _ in 0..8 {
            assert!(q.can_add());
            q.add_one(d(1), ()).unwrap();
        }
        assert!(!q.can_add());
        assert_eq!(q.add_one(d(1), ()), Err(()));
        assert_eq!(q.in_flight(), 8);
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
            q.add_one(d(round as u64), round).unwrap();
            q.publish();
            let id = dev.take(&q).unwrap();
            assert_eq!(q.desc(id).addr, round as u64);
            dev.complete(&mut q, id as u32, round % 1500);
            assert_eq!(q.used_ready(), Ok(1));
            assert_eq!(q.pop_used(), Ok(Some((round, round % 1500))));
        }
        assert_eq!(q.in_flight(), 0);
        assert_eq!(q.avail_idx, (70_000u32 % 65_536) as u16);
    }

    #[test]
    fn out_of_order_completion_returns_the_right_items_and_blocks_busy_slots() {
        let mut q = Virtqueue::new(&HeapDma, 2).unwrap();
        let mut dev = FakeDevice::new();
        q.add_one(d(1), 'a').unwrap();
        q.add_one(d(2), 'b').unwrap();
        q.publish();
        let a = dev.take(&q).unwrap();
        let b = dev.take(&q).unwrap();
        dev.complete(&mut q, b as u32, 0);
        assert_eq!(q.pop_used(), Ok(Some(('b', 0))));
        assert!(
            !q.in_order,
            "a completion out of order ends the in-order paths"
        );
        // The next slot (descriptor 0) still holds `a`: nothing is added over it.
        assert_eq!(q.add_one(d(3), 'c'), Err('c'));
        dev.complete(&mut q, a as u32, 0);
        assert_eq!(q.pop_used(), Ok(Some(('a', 0))));
        q.add_one(d(3), 'c').unwrap();
        assert_eq!(q.desc(0).addr, 3);
    }

    #[test]
    fn ids_the_driver_did_not_hand_out_and_index_jumps_are_rejected() {
        let mut q = Virtqueue::<()>::new(&HeapDma, 4).unwrap();
        let mut dev = FakeDevice::new();
        dev.complete(&mut q, 9, 0); // out of range
        assert_eq!(q.pop_used(), Err(UsedError::UnknownId(9)));
        assert!(!q.in_order, "so does an id never handed out");
        dev.complete(&mut q, 2, 0); // in range, but not in use
        assert_eq!(q.pop_used(), Err(UsedError::UnknownId(2)));
        assert_eq!(q.in_flight(), 0, "nothing freed twice");
        assert_eq!(q.pop_used(), Ok(None));
        dev.used_idx = dev.used_idx.wrapping_add(4);
        dev.complete(&mut q, 0, 0); // 5 ahead in a 4-entry queue
        let jump = UsedError::IndexJump {
            expected: 2,
            found: 7,
        };
        assert_eq!((q.used_ready(), q.pending_used()), (Err(jump), 0));
    }

    /// A packet queue of 4 entries, a pool of `buffers`, the device, no faults yet.
    fn rig(buffers: u32) -> (Mempool, Virtqueue<Packet>, FakeDevice, Faults) {
        let pool = Mempool::new(&HeapDma, buffers, 2048).unwrap();
        let q = Virtqueue::<Packet>::new(&HeapDma, 4).unwrap();
        (pool, q, FakeDevice::new(), Faults::NONE)
    }

    #[test]
    fn used_entries_beyond_the_buffers_in_flight_are_unknown_ids() {
        // A transmit that neither takes nor drops the packet ending a span spins.
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(8);
        let mut one: VecDeque<_> = [pool.alloc(60).unwrap()].into();
        assert_eq!(q.transmit::<12>(&mut one, &mut faults), (1, 0, 60));
        // Entries for slots 0, 1 and 2, in order, with only slot 0 in flight.
        for id in 0..3 {
            dev.complete(&mut q, id, 0);
        }
        q.transmit::<12>(&mut VecDeque::new(), &mut faults);
        assert_eq!((faults.count, faults.last), (2, UsedError::UnknownId(2)));
        assert_eq!(pool.free_count(), 8, "the one packet came back, once");
    }

    #[test]
    fn buffers_are_refilled_in_place_only_while_the_ring_is_full() {
        // A receive that keeps looking at a full ring while the pool is empty spins.
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(5);
        let mut held = VecDeque::new();
        assert_eq!(q.refill(&pool, 12), 4);
        // Slot 0 comes back while the ring is full (refilled in place: the pool's last
        // buffer), slot 1 while the pool is empty (the ring is no longer full).
        for (slot, refilled) in [(0, 1), (1, 0)] {
            dev.complete(&mut q, slot, 72);
            let got = q.receive::<12>(&pool, &mut held, 32, &mut faults);
            assert_eq!(got, (1, 60, refilled), "slot {slot}");
        }
        drop(held);
        dev.complete(&mut q, 2, 72);
        assert_eq!(
            q.receive::<12>(&pool, &mut VecDeque::new(), 32, &mut faults)
                .0,
            1
        );
        q.refill(&pool, 12);
        // Every available entry names a slot that holds a buffer.
        for i in q.last_used..q.avail_idx {
            let slot = q.read16(q.layout.avail + 4 + 2 * (i % 4) as usize);
            assert!(q.items[slot as usize].is_some(), "entry {i}: slot {slot}");
        }
        assert_eq!(faults.count, 0);
    }

    #[test]
    fn a_run_of_used_entries_across_the_ring_end_is_refilled_in_place() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(16);
        let mut got = VecDeque::new();
        assert_eq!(q.refill(&pool, 12), 4);
        for slot in 0..2 {
            dev.complete(&mut q, slot, 72);
        }
        assert_eq!(
            q.receive::<12>(&pool, &mut got, 32, &mut faults),
            (2, 120, 2)
        );
        // Slots 2, 3, then 0, 1: two spans (cut at the end of the ring), both in place.
        for slot in [2, 3, 0, 1] {
            dev.complete(&mut q, slot, 72);
        }
        assert_eq!(
            q.receive::<12>(&pool, &mut got, 32, &mut faults),
            (4, 240, 4)
        );
        assert_eq!((q.avail_idx, q.last_used, faults.count), (10, 6, 0));
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn the_checked_path_takes_a_frame_filling_the_buffer_and_refuses_a_longer_one() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(8);
        let mut got = VecDeque::new();
        assert_eq!(q.refill(&pool, 12), 4);
        // The net header and a frame that fills the buffer: the most the device may write.
        let max = pool.max_packet_len() as u32 + 12;
        // Out of order: both entries go down the checked path.
        dev.complete(&mut q, 1, max);
        dev.complete(&mut q, 0, max + 1);
        let got_n = q.receive::<12>(&pool, &mut got, 32, &mut faults);
        assert_eq!(got_n, (1, max as u64 - 12, 0));
        assert_eq!(got[0].len(), pool.max_packet_len());
        let too_long = UsedError::TooLong { len: max + 1, max };
        assert_eq!((faults.count, faults.last), (1, too_long));
    }

    #[test]
    fn receive_takes_at_most_num_packets_when_the_in_order_run_ends_early() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(8);
        let mut got = VecDeque::new();
        assert_eq!(q.refill(&pool, 12), 4);
        // Slot 0 in order (refilled in place), then slot 2 before slot 1: checked.
        for slot in [0, 2, 1] {
            dev.complete(&mut q, slot, 72);
        }
        assert_eq!(
            q.receive::<12>(&pool, &mut got, 2, &mut faults),
            (2, 120, 1)
        );
        assert_eq!((q.pending_used(), faults.count), (1, 0));
        assert_eq!(q.receive::<12>(&pool, &mut got, 2, &mut faults), (1, 60, 0));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn refill_describes_each_buffer_from_its_header_to_the_end_for_the_device_to_write() {
        let (pool, mut q, _, _) = rig(8);
        assert_eq!(q.refill(&pool, 12), 4);
        for slot in 0..4 {
            let buf = q.items[slot as usize].as_ref().unwrap();
            let whole = Desc {
                addr: buf.bus_addr() - 12,
                len: (pool.max_packet_len() + 12) as u32,
                flags: VIRTQ_DESC_F_WRITE,
            };
            assert_eq!(q.desc(slot), whole, "slot {slot}");
        }
    }

    #[test]
    fn a_full_transmit_ring_takes_no_more_packets_until_the_device_returns_one() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(16);
        let mut two: VecDeque<_> = (0..2).map(|_| pool.alloc(60).unwrap()).collect();
        assert_eq!(q.transmit::<12>(&mut two, &mut faults), (2, 0, 120));
        // Five for the two free slots: the three left stay in the buffer, in order.
        let mut five: VecDeque<_> = (61..66).map(|len| pool.alloc(len).unwrap()).collect();
        let lens = |b: &VecDeque<Packet>| b.iter().map(Packet::len).collect::<Vec<_>>();
        assert_eq!(q.transmit::<12>(&mut five, &mut faults), (2, 0, 123));
        assert_eq!(lens(&five), [63, 64, 65]);
        assert_eq!(q.transmit::<12>(&mut five, &mut faults), (0, 0, 0));
        assert_eq!((lens(&five), pool.free_count()), (vec![63, 64, 65], 9));
        dev.complete(&mut q, 0, 0);
        assert_eq!(q.transmit::<12>(&mut five, &mut faults), (1, 0, 63));
        assert_eq!(
            (lens(&five), pool.free_count(), faults.count),
            (vec![64, 65], 10, 0)
        );
    }

    /// Transmits `n` fresh packets from `pool`; returns how many were sent.
    fn send(q: &mut Virtqueue<Packet>, pool: &Mempool, n: usize, faults: &mut Faults) -> usize {
        let mut b: VecDeque<_> = (0..n).map(|_| pool.alloc(60).unwrap()).collect();
        q.transmit::<12>(&mut b, faults).0
    }

    #[test]
    fn reclaim_takes_what_the_device_returned_not_stale_used_entries() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(8);
        assert_eq!(send(&mut q, &pool, 4, &mut faults), 4);
        for slot in 0..4 {
            dev.complete(&mut q, slot, 0);
        }
        q.reclaim(&mut faults);
        assert_eq!(pool.free_count(), 8);
        // The used ring still holds last round's entries, each naming its own slot: only
        // the one the device published now is taken.
        assert_eq!(send(&mut q, &pool, 4, &mut faults), 4);
        dev.complete(&mut q, 0, 0);
        q.reclaim(&mut faults);
        assert_eq!((pool.free_count(), faults.count), (5, 0));
    }

    #[test]
    fn reclaim_returns_the_packet_an_out_of_order_entry_names() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(8);
        assert_eq!(send(&mut q, &pool, 4, &mut faults), 4);
        for slot in 0..2 {
            dev.complete(&mut q, slot, 0);
        }
        assert_eq!(
            send(&mut q, &pool, 2, &mut faults),
            2,
            "slots 0 and 1 again"
        );
        // Slot 0 before slots 2 and 3: the entry names slot 0's packet, not slot 2's.
        for slot in [0, 2, 3, 1] {
            dev.complete(&mut q, slot, 0);
        }
        q.reclaim(&mut faults);
        assert_eq!((pool.free_count(), faults.count, q.in_flight()), (8, 0, 0));
    }

    #[test]
    fn reclaim_reads_each_used_entrys_id_not_a_neighbouring_word() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, mut dev, mut faults) = rig(8);
        assert_eq!(send(&mut q, &pool, 2, &mut faults), 2);
        // Slot 1 first: slot 0's packet stays with the device (the next entry is still
        // unwritten, zero, and must not be read as "slot 0 done").
        dev.complete(&mut q, 1, 0);
        q.reclaim(&mut faults);
        assert_eq!((pool.free_count(), q.in_flight()), (7, 1));
        dev.complete(&mut q, 0, 0);
        q.reclaim(&mut faults);
        assert_eq!((pool.free_count(), faults.count, q.in_flight()), (8, 0, 0));
    }

    #[test]
    fn a_packet_with_exactly_the_headers_room_from_another_pool_is_sent() {
        let _deadline = crate::testing::deadline();
        let (pool, mut q, _, mut faults) = rig(8);
        let other = Mempool::new(&HeapDma, 8, 2048).unwrap();
        let mut tight = other.alloc(60).unwrap();
        tight
            .prepend(crate::memory::mempool::HEADROOM - 12)
            .unwrap();
        assert_eq!(tight.headroom(), 12);
        let mut b = VecDeque::from([pool.alloc(60).unwrap(), tight]);
        let (sent, dropped, _) = q.transmit::<12>(&mut b, &mut faults);
        assert_eq!((sent, dropped, b.len(), q.in_flight()), (2, 0, 0, 2));
    }

    #[test]
    fn transmit_reclaims_once_32_are_used_or_the_ring_lacks_room() {
        let _deadline = crate::testing::deadline();
        let pool = Mempool::new(&HeapDma, 128, 2048).unwrap();
        let mut q = Virtqueue::<Packet>::new(&HeapDma, 64).unwrap();
        let (mut dev, mut faults) = (FakeDevice::new(), Faults::NONE);
        assert_eq!(send(&mut q, &pool, 40, &mut faults), 40);
        for slot in 0..31 {
            dev.complete(&mut q, slot, 0);
        }
        assert_eq!(send(&mut q, &pool, 0, &mut faults), 0);
        assert_eq!(pool.free_count(), 88, "31 used: not yet taken back");
        dev.complete(&mut q, 31, 0);
        assert_eq!(send(&mut q, &pool, 0, &mut faults), 0);
        assert_eq!(pool.free_count(), 120, "32 used: taken back");
        // 8 in flight, 56 slots free, one more used: 57 packets fit once it is taken back.
        dev.complete(&mut q, 32, 0);
        assert_eq!(send(&mut q, &pool, 57, &mut faults), 57);
        assert_eq!(
            (q.in_flight(), pool.free_count(), faults.count),
            (64, 64, 0)
        );
    }

    #[test]
    fn notification_suppression_is_honoured() {
        let mut q = Virtqueue::new(&HeapDma, 4).unwrap();
        let dev = FakeDevice::new();
        q.add_one(d(1), ()).unwrap();
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
