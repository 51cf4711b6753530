//! Packet buffer pools and the [`Packet`] handle.
//!
//! A [`Mempool`] splits one DMA region into equally sized buffers. [`Packet`] owns one
//! buffer: it derefs to the packet's bytes and puts the buffer back into its pool when it is
//! dropped, exactly once. No heap allocation, no lock, no reference count per packet.
//!
//! ## Threads: one owner, returns from anywhere
//!
//! A pool has two free lists, linked through one array of buffer indices (`next`):
//! * the *local list*, used only through the pool's [`Mempool`] handles. Handles are
//!   `!Send`, so all of them live on one thread, the owner (a receive queue that moves to
//!   its own thread takes the pool's only handle along: [`crate::queues`]); allocation is a
//!   few plain loads and stores on it;
//! * the *return list*, one atomic word (first buffer, count) that any thread pushes
//!   returned buffers onto. [`Packet`] is `Send`: a packet received on one thread may be
//!   sent or dropped on another. Dropping it pushes its buffer with one compare-and-swap;
//!   the transmit rings return each cleaned batch of a pool as one chain with one
//!   compare-and-swap (`drop_batch`), like DPDK's per-core mempool caches flushing in
//!   bulk. Once per receive batch the owner takes the whole return list over with one
//!   atomic swap (so no ABA: nothing but the owner ever removes from it) and puts it in
//!   front of its local list, finding its end in one step per returned chain (each
//!   chain's first buffer names its last): recently used buffers are reused first, still
//!   warm in the cache, as from a LIFO free stack.
//!
//! So the per-packet paths of a queue do no atomic read-modify-write: allocation is local,
//! and returns are batched. Release on the push and Acquire on the take order a buffer's
//! last use before its reuse.
//!
//! The pool's memory lives until the last [`Mempool`] handle *and* the last [`Packet`] of it
//! are gone, so a packet can outlive the device or pool handle it came from: the last
//! handle adds the local list's count to the return list's, with an orphan mark, and from
//! then on whoever makes the count complete (that handle, or the last returner, on any
//! thread) frees the pool.
//!
//! Each buffer starts with [`HEADROOM`] bytes before the packet data, so headers can be
//! prepended without copying; the headroom belongs to the packet's own buffer.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::dma::{CHUNK_SIZE, DMA_ALIGN, DmaAllocator, DmaDomain, DmaMemory, Hugepages};
use crate::error::{Error, Result};

/// Bytes reserved in front of the packet data in every freshly allocated buffer.
pub const HEADROOM: usize = 128;

/// Default buffer size: a full Ethernet frame plus headroom fits.
pub const DEFAULT_ENTRY_SIZE: usize = 2048;

/// The end of a free list (no buffer).
const NIL: u32 = u32::MAX;
/// In `PoolInner::returned`: set once the pool's last handle is gone.
const ORPHAN: u64 = 1 << 63;
/// In `PoolInner::returned`: the count of returned buffers sits in bits 62:32, the first
/// buffer of the return list in bits 31:0.
const COUNT_SHIFT: u32 = 32;

struct PoolInner {
    /// Owns the memory; released when the pool is freed.
    mem: DmaMemory,
    base: *mut u8,
    entry_shift: u32,
    /// `1 << entry_shift`, kept to spare the receive path a shift.
    entry_size: usize,
    num_entries: u32,
    /// Bus address of each buffer.
    bus: Box<[u64]>,
    /// Free-list links: `next[i]` follows buffer `i` on the list that holds it. Written
    /// only by the holder of buffer `i` (relaxed: published by the list operations).
    next: Box<[AtomicU32]>,
    /// For the first buffer of each chain on the return list, the chain's last buffer
    /// (written by its returner), so that the owner finds the list's end chain by chain.
    chain_end: Box<[AtomicU32]>,
    /// The local free list, first buffer and length: used only through [`Mempool`]
    /// handles, which all live on one thread.
    head: Cell<u32>,
    count: Cell<u32>,
    /// Number of live `Mempool` handles (not packets); on the handles' thread.
    handles: Cell<u32>,
    /// The return list, pushed to from any thread: [`ORPHAN`], the number of buffers on
    /// it (after `ORPHAN`: of all buffers home) and its first buffer.
    returned: AtomicU64,
}

/// The return list's count.
fn returned_count(word: u64) -> u32 {
    ((word & !ORPHAN) >> COUNT_SHIFT) as u32
}

impl PoolInner {
    /// The link of buffer `idx`.
    #[inline(always)]
    fn link(&self, idx: u32) -> &AtomicU32 {
        // SAFETY: every index in the pool's lists and packets is < num_entries == next.len().
        unsafe { self.next.get_unchecked(idx as usize) }
    }

    /// Takes the first buffer of the local list. On the handles' thread.
    ///
    /// # Safety
    /// The local list must not be empty.
    #[inline(always)]
    unsafe fn pop(&self) -> u32 {
        let idx = self.head.get();
        self.head.set(self.link(idx).load(Ordering::Relaxed));
        self.count.set(self.count.get() - 1);
        idx
    }

    /// The local list's length, after taking the return list over if it holds anything:
    /// the buffers returned last are used first, still warm in the cache (as a LIFO free
    /// stack would). On the handles' thread; called once per batch.
    #[inline(always)]
    fn ready(&self) -> u32 {
        if returned_count(self.returned.load(Ordering::Relaxed)) > 0 {
            self.take_returned();
        }
        self.count.get()
    }

    /// Moves the whole return list in front of the local list: one atomic swap, and a
    /// walk to its end chain by chain (one step per returned batch, not per buffer).
    /// Acquire: the returners' writes to the buffers, links and chain ends are visible
    /// afterwards.
    #[inline(never)]
    fn take_returned(&self) {
        let word = self.returned.swap(u64::from(NIL), Ordering::Acquire);
        let first = word as u32;
        let end_of = |chain: u32| self.chain_end[chain as usize].load(Ordering::Relaxed);
        let mut end = end_of(first);
        loop {
            match self.link(end).load(Ordering::Relaxed) {
                NIL => break,
                next => end = end_of(next),
            }
        }
        self.link(end).store(self.head.get(), Ordering::Relaxed);
        self.head.set(first);
        self.count.set(self.count.get() + returned_count(word));
    }

    /// Pushes the chain `first` .. `last` of `n` buffers (linked through `next`, from any
    /// thread) onto the return list with one compare-and-swap. Returns true if the pool's
    /// last handle is gone and this made it complete: the caller then frees it.
    #[inline(always)]
    fn give_back(&self, first: u32, last: u32, n: u32) -> bool {
        // Read before: once the chain is in, another returner may complete and free it.
        let all = self.num_entries;
        self.chain_end[first as usize].store(last, Ordering::Relaxed);
        let mut old = self.returned.load(Ordering::Relaxed);
        loop {
            self.link(last).store(old as u32, Ordering::Relaxed);
            let new =
                (old + (u64::from(n) << COUNT_SHIFT)) & !u64::from(u32::MAX) | u64::from(first);
            // Release publishes the links and the buffers' contents to the taker; Acquire
            // lets the returner that completes an orphaned pool free it after all others.
            match self
                .returned
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return new & ORPHAN != 0 && returned_count(new) == all,
                Err(now) => old = now,
            }
        }
    }
}

/// Where a pool's buffers are, for the CPU and for the device: read once for a run of
/// packets of one pool, so that the per-packet path does not go through the pool pointer.
/// Valid while the pool lives (a handle or a packet of it is held).
#[derive(Clone, Copy)]
pub(crate) struct BufferMap {
    pool: NonNull<PoolInner>,
    base: *mut u8,
    shift: u32,
    bus: *const u64,
}

impl BufferMap {
    /// The map of the live pool at `pool`.
    #[inline(always)]
    fn of(pool: NonNull<PoolInner>) -> BufferMap {
        // SAFETY: live (caller); only what never changes is read.
        let p = unsafe { pool.as_ref() };
        let (base, shift, bus) = (p.base, p.entry_shift, p.bus.as_ptr());
        BufferMap {
            pool,
            base,
            shift,
            bus,
        }
    }

    /// Pointer to the first data byte of `p`, a packet of this map's pool (else a pointer
    /// into another pool's memory, or none: computed, never dereferenced here).
    #[inline(always)]
    pub(crate) fn data_ptr(self, p: &Packet) -> *mut u8 {
        debug_assert!(p.pool == self.pool);
        let at = ((p.idx as usize) << self.shift) + p.offset as usize;
        self.base.wrapping_add(at)
    }

    /// Bus address of the first data byte of `p`.
    ///
    /// # Safety
    /// `p` must be a packet of this map's pool.
    #[inline(always)]
    pub(crate) unsafe fn bus_addr(self, p: &Packet) -> u64 {
        debug_assert!(p.pool == self.pool);
        // SAFETY: p.idx < num_entries == bus.len() (contract).
        unsafe { *self.bus.add(p.idx as usize) + p.offset as u64 }
    }
}

/// Frees a pool that nothing refers to any more.
///
/// # Safety
/// `inner` must point to a pool allocated by `Mempool::new` with no handle left and every
/// buffer home; nothing may use it afterwards.
#[cold]
unsafe fn free(inner: NonNull<PoolInner>) {
    // SAFETY: allocated by Box::into_raw in Mempool::new; the last reference (contract).
    drop(unsafe { Box::from_raw(inner.as_ptr()) });
}

/// A pool of fixed-size DMA buffers. Cloning gives another handle to the same pool.
pub struct Mempool {
    inner: NonNull<PoolInner>,
}

impl Mempool {
    /// Creates a pool of `num_entries` buffers of `entry_size` bytes each on DMA memory
    /// from `allocator`.
    ///
    /// `entry_size` must be a power of two between 256 and 32768 (so that no buffer
    /// straddles a hugepage).
    pub fn new(allocator: &dyn DmaAllocator, num_entries: u32, entry_size: usize) -> Result<Self> {
        if !entry_size.is_power_of_two() || !(256..=32768).contains(&entry_size) {
            return Err(Error::config(format!(
                "mempool entry size {entry_size} must be a power of two from 256 to 32768"
            )));
        }
        if num_entries == 0 || num_entries > (1 << 24) {
            return Err(Error::config(format!(
                "mempool size {num_entries} must be between 1 and 16777216 buffers"
            )));
        }
        let size = num_entries as usize * entry_size;
        // Never index past what the allocator really returned (checked once, here).
        let mem =
            allocator
                .allocate(size)?
                .checked(size, entry_size.min(DMA_ALIGN), "packet pool")?;
        let bus = (0..num_entries as usize)
            .map(|i| mem.bus_addr(i * entry_size))
            .collect();
        debug_assert!(CHUNK_SIZE.is_multiple_of(entry_size));
        let inner = Box::new(PoolInner {
            base: mem.virt(),
            mem,
            entry_shift: entry_size.trailing_zeros(),
            entry_size,
            num_entries,
            bus,
            // List order makes the first allocations come from the lowest addresses.
            next: (1..=num_entries)
                .map(|i| AtomicU32::new(if i == num_entries { NIL } else { i }))
                .collect(),
            chain_end: (0..num_entries).map(|_| AtomicU32::new(NIL)).collect(),
            head: Cell::new(0),
            count: Cell::new(num_entries),
            handles: Cell::new(1),
            returned: AtomicU64::new(u64::from(NIL)),
        });
        Ok(Mempool {
            inner: NonNull::from(Box::leak(inner)),
        })
    }

    /// Creates a pool on hugepages from the default hugetlbfs mount
    /// (`$IXY_HUGEPAGE_DIR`, else `/mnt/huge`).
    pub fn allocate(num_entries: u32, entry_size: usize) -> Result<Self> {
        Self::new(&Hugepages::from_env(), num_entries, entry_size)
    }

    /// Creates a pool on hugepages from the hugetlbfs mount at `dir` (as
    /// [`crate::DeviceConfig::hugepage_dir`] does for a device's own memory).
    pub fn allocate_in(
        dir: impl Into<std::path::PathBuf>,
        num_entries: u32,
        entry_size: usize,
    ) -> Result<Self> {
        Self::new(&Hugepages::new(dir), num_entries, entry_size)
    }

    #[inline(always)]
    fn pool(&self) -> &PoolInner {
        // SAFETY: a handle keeps the pool alive (handles > 0).
        unsafe { self.inner.as_ref() }
    }

    /// Number of buffers in the pool.
    pub fn capacity(&self) -> usize {
        self.pool().num_entries as usize
    }

    /// Number of buffers currently free (including those returned from other threads and
    /// not yet taken back).
    #[inline(always)]
    pub fn free_count(&self) -> usize {
        let pool = self.pool();
        (pool.count.get() + returned_count(pool.returned.load(Ordering::Relaxed))) as usize
    }

    /// True if this is the pool's only handle (a receive queue that moves to another
    /// thread must hold its pool alone: see [`crate::queues`]).
    pub(crate) fn is_unique(&self) -> bool {
        self.pool().handles.get() == 1
    }

    /// Size of each buffer in bytes, headroom included.
    pub fn entry_size(&self) -> usize {
        self.pool().entry_size
    }

    /// Largest packet a buffer of this pool holds after the headroom.
    pub fn max_packet_len(&self) -> usize {
        self.entry_size() - HEADROOM
    }

    /// Takes a buffer as a packet of `len` bytes (contents are whatever the buffer held
    /// before). `None` if the pool is empty or `len` exceeds [`Mempool::max_packet_len`].
    #[inline]
    pub fn alloc(&self, len: usize) -> Option<Packet> {
        if len > self.max_packet_len() {
            return None;
        }
        let mut p = self.alloc_empty()?;
        p.len = len as u16;
        Some(p)
    }

    /// Appends up to `n` packets of `len` bytes to `buffer`; returns how many it added.
    pub fn alloc_batch(&self, buffer: &mut VecDeque<Packet>, n: usize, len: usize) -> usize {
        for i in 0..n {
            match self.alloc(len) {
                Some(p) => buffer.push_back(p),
                None => return i,
            }
        }
        n
    }

    /// Buffers the local list holds, after taking the return list over: how many
    /// [`Mempool::alloc_empty`] and [`Mempool::reserve`] hand out without another look at
    /// the return list. The receive rings size each batch by it.
    #[inline(always)]
    pub(crate) fn ready(&self) -> usize {
        self.pool().ready() as usize
    }

    /// Takes a buffer as an empty packet with the standard headroom (`None` if the pool
    /// is empty).
    #[inline(always)]
    pub(crate) fn alloc_empty(&self) -> Option<Packet> {
        if self.ready() == 0 {
            return None;
        }
        Some(Packet {
            pool: self.inner,
            // SAFETY: the local list holds a buffer.
            idx: unsafe { self.pool().pop() },
            offset: HEADROOM as u16,
            len: 0,
        })
    }

    /// Takes `n` buffers off the local list at once, to be turned into empty packets one
    /// by one with [`Reserved::take`] (a receive path refilling a batch).
    ///
    /// # Safety
    /// `n` must be at most what [`Mempool::ready`] returned, with no allocation since, and
    /// none while the result lives. Buffers not taken go back with [`Reserved::put_back`].
    #[inline(always)]
    pub(crate) unsafe fn reserve(&self, n: usize) -> Reserved<'_> {
        let pool = self.pool();
        // `n` fits in a u32: `ready` returned at least `n`.
        pool.count.set(pool.count.get() - n as u32);
        Reserved {
            map: BufferMap::of(self.inner),
            links: pool.next.as_ptr(),
            next: pool.head.get(),
            _handle: PhantomData,
        }
    }

    /// True if both handles refer to the same pool.
    pub fn same_pool(&self, other: &Mempool) -> bool {
        self.inner == other.inner
    }
}

/// Buffers reserved in a pool's free lists ([`Mempool::reserve`]).
pub(crate) struct Reserved<'a> {
    map: BufferMap,
    /// The pool's free-list links (`PoolInner::next`).
    links: *const AtomicU32,
    /// The next reserved buffer: the local list continues from here once this is gone.
    next: u32,
    /// Borrows the handle: no other allocation meanwhile, the pool stays alive.
    _handle: PhantomData<&'a Mempool>,
}

impl Reserved<'_> {
    /// The next reserved buffer as an empty packet with the standard headroom, and the
    /// bus address of its data.
    ///
    /// # Safety
    /// At most `n` calls (the count passed to [`Mempool::reserve`]).
    #[inline(always)]
    pub(crate) unsafe fn take(&mut self) -> (Packet, u64) {
        let idx = self.next;
        // One of the `n` buffers `reserve` found on the local list, which only this
        // takes from meanwhile.
        // SAFETY: idx < num_entries == next.len().
        self.next = unsafe { (*self.links.add(idx as usize)).load(Ordering::Relaxed) };
        let p = Packet {
            pool: self.map.pool,
            idx,
            offset: HEADROOM as u16,
            len: 0,
        };
        // SAFETY: a packet of the map's pool.
        let bus = unsafe { self.map.bus_addr(&p) };
        (p, bus)
    }

    /// Leaves the `left` buffers not taken on the pool's local list, where they still are.
    ///
    /// # Safety
    /// `left` must be the number of reserved buffers not taken.
    #[cold]
    pub(crate) unsafe fn put_back(self, left: usize) {
        // SAFETY: the borrowed handle keeps the pool alive.
        let pool = unsafe { self.map.pool.as_ref() };
        pool.count.set(pool.count.get() + left as u32);
    }
}

impl Drop for Reserved<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the borrowed handle keeps the pool alive.
        unsafe { self.map.pool.as_ref() }.head.set(self.next);
    }
}

impl Clone for Mempool {
    fn clone(&self) -> Self {
        let pool = self.pool();
        pool.handles.set(pool.handles.get() + 1);
        Mempool { inner: self.inner }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let pool = self.pool();
        pool.handles.set(pool.handles.get() - 1);
        if pool.handles.get() > 0 {
            return;
        }
        // The last handle: the local list's buffers are home for good. Count them into the
        // return list with the orphan mark; whoever completes the count frees the pool.
        // Read before: once the count is published, a returner may complete and free it.
        let (local, missing) = (pool.count.get(), pool.num_entries - pool.count.get());
        let old = pool
            .returned
            .fetch_add(ORPHAN | u64::from(local) << COUNT_SHIFT, Ordering::AcqRel);
        if returned_count(old) == missing {
            // SAFETY: no handle left and every buffer home; self is not used afterwards.
            unsafe { free(self.inner) };
        }
    }
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("capacity", &self.capacity())
            .field("free", &self.free_count())
            .field("entry_size", &self.entry_size())
            .field("memory", &self.pool().mem)
            .finish()
    }
}

/// A packet: one buffer of a [`Mempool`], holding `len()` bytes of data after some
/// headroom. Dereferences to the packet bytes; returns to its pool when dropped.
pub struct Packet {
    pool: NonNull<PoolInner>,
    idx: u32,
    /// Start of the data within the buffer.
    offset: u16,
    len: u16,
}

impl Packet {
    #[inline(always)]
    fn pool(&self) -> &PoolInner {
        // SAFETY: a packet keeps its pool alive (the pool is freed only when every buffer
        // is home, and this one is not).
        unsafe { self.pool.as_ref() }
    }

    /// Where the packet's pool keeps its buffers.
    #[inline(always)]
    pub(crate) fn map(&self) -> BufferMap {
        BufferMap::of(self.pool)
    }

    /// Pointer to the first data byte.
    #[inline(always)]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.map().data_ptr(self)
    }

    /// Bus address of the first data byte, for the device.
    #[inline(always)]
    pub(crate) fn bus_addr(&self) -> u64 {
        // SAFETY: the packet's own pool.
        unsafe { self.map().bus_addr(self) }
    }

    /// Identifies the packet's pool (its address): equal for packets of one pool.
    #[inline(always)]
    pub(crate) fn pool_id(&self) -> usize {
        self.pool.as_ptr() as usize
    }

    /// The DMA domain of the packet's pool: the devices that can reach its buffer.
    pub(crate) fn dma_domain(&self) -> DmaDomain {
        self.pool().mem.domain()
    }

    /// Sets the length of a fresh receive packet (standard headroom) without a check.
    ///
    /// # Safety
    /// `len` must be at most [`Mempool::max_packet_len`] of the packet's pool and the
    /// packet must have the standard headroom (as from `alloc_empty`).
    #[inline(always)]
    pub(crate) unsafe fn set_len_unchecked(&mut self, len: usize) {
        debug_assert!(len <= self.pool().entry_size - self.offset as usize);
        self.len = len as u16;
    }

    /// Hints the CPU to fetch the first cache line of packet data.
    #[inline(always)]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetching never faults, whatever the address; SSE is baseline on x86_64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                self.data_ptr().cast(),
            )
        };
    }

    /// Length of the packet data in bytes.
    #[inline(always)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Bytes free in front of the data.
    pub fn headroom(&self) -> usize {
        self.offset as usize
    }

    /// Bytes free behind the data.
    pub fn tailroom(&self) -> usize {
        self.pool().entry_size - self.offset as usize - self.len as usize
    }

    /// Changes the length, keeping the start. Growing exposes whatever the buffer held.
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        if len > self.len() + self.tailroom() {
            return Err(Error::config(format!(
                "packet length {len} exceeds the buffer ({} bytes available)",
                self.len() + self.tailroom()
            )));
        }
        self.len = len as u16;
        Ok(())
    }

    /// Grows the packet by `n` bytes at the front, into the headroom, and returns the new
    /// front bytes. Fails if the headroom is smaller than `n`.
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8]> {
        if n > self.headroom() {
            return Err(Error::config(format!(
                "cannot prepend {n} bytes: only {} bytes of headroom",
                self.headroom()
            )));
        }
        self.offset -= n as u16;
        self.len += n as u16;
        Ok(&mut self[..n])
    }

    /// Removes `n` bytes from the front; they become headroom. Fails if the packet is
    /// shorter than `n`.
    pub fn strip_front(&mut self, n: usize) -> Result<()> {
        if n > self.len() {
            return Err(Error::config(format!(
                "cannot strip {n} bytes from a {}-byte packet",
                self.len()
            )));
        }
        self.offset += n as u16;
        self.len -= n as u16;
        Ok(())
    }

    /// True if this packet's buffer belongs to `pool`.
    pub fn is_from(&self, pool: &Mempool) -> bool {
        self.pool == pool.inner
    }
}

impl Deref for Packet {
    type Target = [u8];

    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: offset + len <= entry_size: the bytes lie in this packet's own buffer,
        // which no one else accesses while the packet exists (the device only while the
        // driver owns the packet).
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.len as usize) }
    }
}

impl DerefMut for Packet {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), self.len as usize) }
    }
}

impl Drop for Packet {
    /// Returns the buffer to its pool's return list: one compare-and-swap. Packets
    /// dropped in numbers go back cheaper in chains (the transmit rings do).
    #[inline(always)]
    fn drop(&mut self) {
        if self.pool().give_back(self.idx, self.idx, 1) {
            // SAFETY: the pool's last handle is gone and this was its last buffer out.
            unsafe { free(self.pool) };
        }
    }
}

// SAFETY: a packet owns its buffer exclusively; of its pool it reads only what never
// changes (base, sizes, bus addresses, the memory's domain) and returns the buffer
// through the atomic return list, never the handles' local list. The last returner frees
// the pool, whose memory may be released on any thread (`DmaMemory` is `Send`).
unsafe impl Send for Packet {}

/// Drops the packets in `slots` (as dropping each would), through [`Returns`].
///
/// # Safety
/// Every slot must hold a packet; all count as uninitialised afterwards.
#[inline(always)]
pub(crate) unsafe fn drop_batch(slots: &mut [MaybeUninit<Packet>]) {
    let mut returns = Returns::default();
    for slot in slots {
        // SAFETY: initialised (contract); read once, the slot is forgotten.
        returns.push(unsafe { slot.assume_init_read() });
    }
}

/// Drops packets in numbers: each run of consecutive packets of one pool goes back to it
/// as one chain with one atomic operation (when the pool changes, or when this is
/// dropped), instead of one per packet. Plain fields, no reference to them kept: a local
/// `Returns` lives in registers.
#[derive(Default)]
pub(crate) struct Returns {
    /// The run being collected: its pool (`None`: no run yet), the pool's free-list links
    /// (set with the pool), first and last buffer, and length.
    pool: Option<NonNull<PoolInner>>,
    links: Option<NonNull<AtomicU32>>,
    first: u32,
    last: u32,
    n: u32,
}

impl Returns {
    /// Drops `p` (its buffer goes back with its run).
    #[inline(always)]
    pub(crate) fn push(&mut self, p: Packet) {
        let p = std::mem::ManuallyDrop::new(p);
        if self.pool == Some(p.pool) {
            // SAFETY: `links` is set with the pool: the run's pool's `next`, and
            // idx < num_entries.
            let link = unsafe { self.links.unwrap_unchecked().add(p.idx as usize).as_ref() };
            link.store(self.first, Ordering::Relaxed);
            (self.first, self.n) = (p.idx, self.n + 1);
            return;
        }
        if let Some(pool) = self.pool {
            give_back_run(pool, self.first, self.last, self.n);
        }
        let links = NonNull::from(&p.pool().next[..]).cast();
        (self.pool, self.links, self.first, self.last, self.n) =
            (Some(p.pool), Some(links), p.idx, p.idx, 1);
    }
}

/// Gives a run of `n` buffers, `first` .. `last`, back to `pool` (and frees the pool if
/// that was the last of an orphaned pool's buffers).
#[inline(never)]
fn give_back_run(pool: NonNull<PoolInner>, first: u32, last: u32, n: u32) {
    // SAFETY: the run's buffers, out of their pool until now, kept it alive.
    if unsafe { pool.as_ref() }.give_back(first, last, n) {
        // SAFETY: no handle left and every buffer home.
        unsafe { free(pool) };
    }
}

impl Drop for Returns {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(pool) = self.pool {
            give_back_run(pool, self.first, self.last, self.n);
        }
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("idx", &self.idx)
            .field("headroom", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::HeapDma;

    fn pool(n: u32) -> Mempool {
        Mempool::new(&HeapDma, n, 2048).unwrap()
    }

    /// Heap DMA memory that counts its live regions.
    #[derive(Default)]
    struct CountingDma {
        live: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl CountingDma {
        fn live(&self) -> usize {
            self.live.load(Ordering::SeqCst)
        }
    }

    // SAFETY: the regions are HeapDma's, unchanged; only their release is counted.
    unsafe impl DmaAllocator for CountingDma {
        fn allocate(&self, size: usize) -> Result<DmaMemory> {
            let heap = HeapDma.allocate(size)?;
            let (virt, size) = (NonNull::new(heap.virt()).unwrap(), heap.size());
            let chunks = (0..size.div_ceil(CHUNK_SIZE))
                .map(|i| heap.bus_addr(i * CHUNK_SIZE))
                .collect();
            let live = self.live.clone();
            live.fetch_add(1, Ordering::SeqCst);
            // SAFETY: the memory of `heap`, which the release closure owns until it runs.
            Ok(unsafe {
                DmaMemory::from_raw_parts(
                    virt,
                    size,
                    chunks,
                    heap.domain(),
                    Box::new(move |_, _| {
                        live.fetch_sub(1, Ordering::SeqCst);
                        drop(heap);
                    }),
                )
            })
        }
    }

    #[test]
    fn returns_gives_each_packet_back_to_its_own_pool() {
        let (a, b) = (pool(4), pool(4));
        let taken = [
            a.alloc(60),
            a.alloc(60),
            b.alloc(60),
            a.alloc(60),
            b.alloc(60),
        ];
        assert_eq!((a.free_count(), b.free_count()), (1, 2));
        let mut returns = Returns::default();
        for p in taken {
            returns.push(p.unwrap());
        }
        drop(returns);
        assert_eq!((a.free_count(), b.free_count()), (4, 4));
    }

    #[test]
    fn a_pool_is_unique_while_it_has_one_handle() {
        let p = pool(4);
        assert!(p.is_unique());
        let clone = p.clone();
        assert!(!p.is_unique() && !clone.is_unique());
        drop(clone);
        assert!(p.is_unique());
    }

    #[test]
    fn a_short_region_from_the_allocator_is_an_error_not_an_overflow() {
        let _deadline = crate::testing::deadline();
        let err = Mempool::new(&crate::memory::dma::ShortDma, 4, 2048).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{msg}");
        assert!(msg.contains("packet pool, which needs 8192"), "{msg}");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "checks the hugetlbfs mount with statfs, which Miri cannot call"
    )]
    fn allocate_in_takes_hugepages_from_the_directory_given() {
        let _deadline = crate::testing::deadline();
        let err = Mempool::allocate_in("/nonexistent/ixy-pool-dir", 4, 2048).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Hugepages { .. }), "{msg}");
        assert!(
            msg.contains("`./setup-hugetlbfs.sh 512 /nonexistent/ixy-pool-dir`"),
            "{msg}"
        );
    }

    #[test]
    fn allocate_until_exhausted_then_reuse() {
        let _deadline = crate::testing::deadline();
        let pool = pool(4);
        let pkts: Vec<Packet> = (0..4).map(|_| pool.alloc(60).unwrap()).collect();
        assert_eq!(pool.free_count(), 0);
        assert!(pool.alloc(60).is_none());
        let idxs: Vec<u32> = pkts.iter().map(|p| p.idx).collect();
        assert_eq!(idxs, vec![0, 1, 2, 3]);
        drop(pkts);
        assert_eq!(pool.free_count(), 4);
        // LIFO: the last buffer returned comes out first.
        assert_eq!(pool.alloc(60).unwrap().idx, 3);
    }

    #[test]
    fn packets_have_distinct_buffers_and_bus_addresses() {
        let _deadline = crate::testing::deadline();
        let pool = pool(3);
        let a = pool.alloc(100).unwrap();
        let b = pool.alloc(100).unwrap();
        assert_eq!(b.data_ptr() as usize - a.data_ptr() as usize, 2048);
        assert_eq!(a.bus_addr(), a.data_ptr() as u64); // heap memory is identity mapped
        assert_eq!(a.headroom(), HEADROOM);
        assert_eq!(a.tailroom(), 2048 - HEADROOM - 100);
    }

    #[test]
    fn oversized_packets_are_refused() {
        let _deadline = crate::testing::deadline();
        let pool = pool(2);
        assert!(pool.alloc(2048 - HEADROOM + 1).is_none());
        assert_eq!(pool.free_count(), 2);
        assert_eq!(pool.alloc(2048 - HEADROOM).unwrap().len(), 1920);
    }

    #[test]
    fn bad_pool_parameters_are_errors() {
        let _deadline = crate::testing::deadline();
        let err = |n: u32, size: usize| Mempool::new(&HeapDma, n, size).unwrap_err().to_string();
        for size in [1000, 128] {
            assert_eq!(
                err(16, size),
                format!(
                    "invalid configuration: mempool entry size {size} must be a power of two from 256 to 32768"
                )
            );
        }
        assert_eq!(
            err(0, 2048),
            "invalid configuration: mempool size 0 must be between 1 and 16777216 buffers"
        );
    }

    #[test]
    fn bytes_written_are_read_back() {
        let _deadline = crate::testing::deadline();
        let pool = pool(2);
        let mut p = pool.alloc(4).unwrap();
        p.copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(&p[..], &[1, 2, 3, 4]);
        p.set_len(6).unwrap();
        assert_eq!(p.len(), 6);
        let fact = "packet length 2048 exceeds the buffer (1920 bytes available)";
        crate::error::assert_invalid(p.set_len(2048), fact);
        assert_eq!(p.len(), 6, "unchanged by the refused set_len");
    }

    #[test]
    fn prepend_and_strip_stay_inside_the_buffer() {
        let _deadline = crate::testing::deadline();
        let pool = pool(1);
        let mut p = pool.alloc(10).unwrap();
        p.fill(7);
        p.prepend(2).unwrap().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(p.len(), 12);
        assert_eq!(&p[..3], &[0xaa, 0xbb, 7]);
        assert_eq!(p.headroom(), HEADROOM - 2);
        let fact = "cannot prepend 128 bytes: only 126 bytes of headroom";
        crate::error::assert_invalid(p.prepend(HEADROOM), fact);
        p.strip_front(2).unwrap();
        assert_eq!(&p[..], &[7; 10]);
        let fact = "cannot strip 11 bytes from a 10-byte packet";
        crate::error::assert_invalid(p.strip_front(11), fact);
        assert_eq!(&p[..], &[7; 10], "unchanged by the refused strip");
        p.prepend(HEADROOM).unwrap();
        assert_eq!(p.headroom(), 0);
        let fact = "cannot prepend 1 bytes: only 0 bytes of headroom";
        crate::error::assert_invalid(p.prepend(1), fact);
        assert_eq!(p.len(), 138);
    }

    #[test]
    fn batch_allocation_stops_at_exhaustion() {
        let _deadline = crate::testing::deadline();
        let pool = pool(5);
        let mut q = VecDeque::new();
        assert_eq!(pool.alloc_batch(&mut q, 3, 60), 3);
        assert_eq!(pool.alloc_batch(&mut q, 3, 60), 2);
        assert_eq!(q.len(), 5);
        assert!(q.iter().all(|p| p.len() == 60 && p.is_from(&pool)));
        q.clear();
        assert_eq!(pool.free_count(), 5);
    }

    #[test]
    fn the_pool_memory_is_freed_when_its_last_packet_outlives_every_handle() {
        let _deadline = crate::testing::deadline();
        let dma = CountingDma::default();
        let pool = Mempool::new(&dma, 4, 2048).unwrap();
        assert_eq!(dma.live(), 1);
        let first = pool.alloc(60).unwrap();
        let last = pool.alloc(60).unwrap();
        let clone = pool.clone();
        drop(pool);
        drop(clone);
        assert_eq!(dma.live(), 1, "two packets still use the pool");
        drop(first);
        assert_eq!(dma.live(), 1, "one packet still uses the pool");
        drop(last);
        assert_eq!(dma.live(), 0, "the last packet freed the pool");
    }

    #[test]
    fn the_pool_memory_is_freed_with_its_last_handle_once_every_packet_is_back() {
        let _deadline = crate::testing::deadline();
        let dma = CountingDma::default();
        let pool = Mempool::new(&dma, 2, 2048).unwrap();
        let clone = pool.clone();
        drop(pool.alloc(60).unwrap());
        drop(pool);
        assert_eq!(dma.live(), 1, "a handle is left");
        drop(clone);
        assert_eq!(dma.live(), 0, "the last handle freed the pool");
    }

    #[test]
    fn packets_know_their_pool_and_pools_their_clones() {
        let _deadline = crate::testing::deadline();
        let (a, b) = (pool(2), pool(2));
        let p = a.alloc(60).unwrap();
        assert!(p.is_from(&a) && p.is_from(&a.clone()));
        assert!(!p.is_from(&b), "a packet of another pool");
        assert!(a.same_pool(&a.clone()));
        assert!(!a.same_pool(&b) && !b.same_pool(&a), "two pools");
    }

    #[test]
    fn set_len_and_strip_front_take_their_exact_limits() {
        let _deadline = crate::testing::deadline();
        let pool = pool(1);
        let mut p = pool.alloc(10).unwrap();
        let max = p.len() + p.tailroom();
        assert_eq!(max, 2048 - HEADROOM);
        p.set_len(max).unwrap();
        assert_eq!((p.len(), p.tailroom()), (max, 0));
        let fact = "packet length 1921 exceeds the buffer (1920 bytes available)";
        crate::error::assert_invalid(p.set_len(max + 1), fact);
        p.set_len(10).unwrap();
        p.strip_front(10).unwrap();
        assert_eq!((p.len(), p.headroom()), (0, HEADROOM + 10));
        let fact = "cannot strip 1 bytes from a 0-byte packet";
        crate::error::assert_invalid(p.strip_front(1), fact);
    }

    #[test]
    fn debug_output_names_the_buffer_and_the_pool_state() {
        let pool = pool(2);
        let mut p = pool.alloc(60).unwrap();
        p.strip_front(4).unwrap();
        assert_eq!(
            format!("{p:?}"),
            "Packet { idx: 0, headroom: 132, len: 56 }"
        );
        let s = format!("{pool:?}");
        assert!(
            s.starts_with("Mempool { capacity: 2, free: 1, entry_size: 2048, memory: DmaMemory {"),
            "{s}"
        );
    }

    #[test]
    fn packets_outlive_the_pool_handle() {
        let _deadline = crate::testing::deadline();
        let pool = pool(2);
        let mut p = pool.alloc(8).unwrap();
        let clone = pool.clone();
        assert!(clone.same_pool(&pool));
        drop(pool);
        drop(clone);
        // The memory is still there: the packet keeps it.
        p.fill(0x5a);
        assert_eq!(&p[..], &[0x5a; 8]);
        drop(p); // frees the pool; Miri/ASan would flag a leak or double free here.
    }

    /// Rounds of the threaded tests (fewer under Miri, which runs them ~1000x slower).
    const ROUNDS: usize = if cfg!(miri) { 4 } else { 200 };

    #[test]
    fn packets_dropped_on_other_threads_come_back_once_each() {
        let _deadline = crate::testing::deadline();
        let pool = pool(16);
        for _ in 0..ROUNDS {
            // Every buffer out, each exactly once.
            let mut out: Vec<Packet> = std::iter::from_fn(|| pool.alloc(60)).collect();
            let mut idxs: Vec<u32> = out.iter().map(|p| p.idx).collect();
            idxs.sort();
            assert_eq!(idxs, (0..16).collect::<Vec<_>>());
            let (one_by_one, chained) = (out.split_off(8), out);
            std::thread::scope(|s| {
                s.spawn(move || drop(one_by_one));
                s.spawn(move || {
                    let mut returns = Returns::default();
                    chained.into_iter().for_each(|p| returns.push(p));
                });
                // Meanwhile the owner takes back what has arrived and drops it again.
                for _ in 0..4 {
                    drop(pool.alloc(60));
                }
            });
            assert_eq!(pool.free_count(), 16);
        }
    }

    #[test]
    fn the_last_buffer_back_frees_the_pool_on_whichever_thread_it_comes_back() {
        let _deadline = crate::testing::deadline();
        for _ in 0..ROUNDS {
            let dma = CountingDma::default();
            let pool = Mempool::new(&dma, 8, 2048).unwrap();
            let mut a: Vec<Packet> = (0..6).map(|_| pool.alloc(60).unwrap()).collect();
            let b = a.split_off(3);
            std::thread::scope(|s| {
                s.spawn(move || drop(a));
                s.spawn(move || drop(b));
                drop(pool); // the last handle, concurrently with the returns
            });
            assert_eq!(dma.live(), 0);
        }
    }

    /// Every order of the return list's operations (each takes effect at one atomic
    /// operation): two returns from other threads (one packet; a chain of two), the owner
    /// taking buffers back, and its last handle going. Each order must hand out no buffer
    /// twice and free the pool exactly when the last buffer is home and no handle is left.
    #[test]
    fn every_order_of_returns_takebacks_and_the_last_handle_keeps_each_buffer_once() {
        let _deadline = crate::testing::deadline();
        // 0: drop packet a; 1: return b and c as one chain; 2: the owner allocates (taking
        // the return list over if its own list is empty); 3: the owner drops its handle.
        let mut orders = vec![vec![]];
        for action in 0..4 {
            orders = orders
                .into_iter()
                .flat_map(|o: Vec<usize>| {
                    (0..=o.len()).map(move |i| [&o[..i], &[action], &o[i..]].concat())
                })
                .collect();
        }
        orders.retain(|o| o.iter().position(|&a| a == 2) < o.iter().position(|&a| a == 3));
        assert_eq!(orders.len(), 12);
        for order in orders {
            let dma = CountingDma::default();
            // All three buffers out: the owner can allocate only what came back.
            let pool = Mempool::new(&dma, 3, 2048).unwrap();
            let mut held: Vec<Option<Packet>> = (0..3).map(|_| pool.alloc(60)).collect();
            let mut pool = Some(pool);
            let mut taken = None;
            for &action in &order {
                match action {
                    0 => drop(held[0].take()),
                    1 => {
                        let mut returns = Returns::default();
                        returns.push(held[1].take().unwrap());
                        returns.push(held[2].take().unwrap());
                    }
                    2 => {
                        taken = pool.as_ref().unwrap().alloc(60);
                        let back = held.iter().filter(|h| h.is_none()).count();
                        assert_eq!(taken.is_some(), back > 0, "{order:?}");
                        let others = held.iter().flatten().map(|h| h.idx);
                        assert!(
                            others
                                .into_iter()
                                .all(|i| Some(i) != taken.as_ref().map(|p| p.idx))
                        );
                    }
                    _ => drop(pool.take()),
                }
                let home = held.iter().all(Option::is_none) && taken.is_none();
                assert_eq!(
                    dma.live(),
                    usize::from(pool.is_some() || !home),
                    "{order:?}"
                );
            }
            drop(taken);
            assert_eq!(dma.live(), 0, "{order:?}");
        }
    }
}
