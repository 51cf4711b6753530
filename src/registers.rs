//! Register access: the one place where the drivers touch device registers.
//!
//! Drivers are generic over [`RegisterSpace`]. On hardware the implementation is
//! [`MmioRegion`], a memory-mapped BAR, whose accessors compile to single volatile loads and
//! stores; the device model implements the same trait, so the code tested against the model
//! is the code that runs on a card, without test-only branches.
//!
//! The three helpers every driver uses — read, write, and wait for bits with a timeout —
//! live here once.

use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 32-bit register access at byte offsets into a device's register space.
pub trait RegisterSpace {
    /// Reads the register at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// Writes `value` to the register at `offset`.
    fn write32(&self, offset: usize, value: u32);

    /// Sets `bits` in the register at `offset` (read-modify-write).
    #[inline]
    fn set_bits(&self, offset: usize, bits: u32) {
        self.write32(offset, self.read32(offset) | bits);
    }

    /// Clears `bits` in the register at `offset` (read-modify-write).
    #[inline]
    fn clear_bits(&self, offset: usize, bits: u32) {
        self.write32(offset, self.read32(offset) & !bits);
    }

    /// This register space as one that threads may share (a split device's queues
    /// use it from their threads, [`crate::queues`]), or `None` if it cannot be shared.
    fn share(_this: &Arc<Self>) -> Option<SharedRegs>
    where
        Self: Sized,
    {
        None
    }
}

/// A register space shared between threads.
pub type SharedRegs = Arc<dyn RegisterSpace + Send + Sync>;

/// Polls `offset` until `(value & mask) == expected` or `timeout` passes.
///
/// `what` names the condition for the error message (e.g. "EEPROM auto-read done
/// (EEC.ARD)"). Every wait on a device goes through here, so none can hang.
pub(crate) fn wait_for<R: RegisterSpace + ?Sized>(
    regs: &R,
    offset: usize,
    mask: u32,
    expected: u32,
    timeout: Duration,
    what: &str,
) -> std::result::Result<(), String> {
    let mut deadline = Deadline::new(timeout);
    loop {
        let value = regs.read32(offset);
        if value & mask == expected {
            return Ok(());
        }
        if deadline.passed() {
            return Err(format!(
                "timed out after {} ms waiting for {what} (register {offset:#x} = {value:#010x})",
                timeout.as_millis()
            ));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The end of a wait on a device: `timeout` has passed *and* the device was asked at least
/// [`Deadline::MIN_POLLS`] times, so a thread that was descheduled for longer than the
/// timeout does not give up on a device that was only slow to be asked.
pub(crate) struct Deadline {
    start: Instant,
    timeout: Duration,
    polls: u32,
}

impl Deadline {
    pub(crate) const MIN_POLLS: u32 = 10;

    pub(crate) fn new(timeout: Duration) -> Self {
        Deadline {
            start: Instant::now(),
            timeout,
            polls: 0,
        }
    }

    /// Called once per poll that found the device not done yet.
    pub(crate) fn passed(&mut self) -> bool {
        self.polls += 1;
        self.polls >= Self::MIN_POLLS && self.start.elapsed() >= self.timeout
    }
}

/// A memory-mapped register region (a PCI memory BAR).
///
/// Accesses are bounds- and alignment-checked, so no offset can reach outside the mapping.
#[derive(Debug)]
pub struct MmioRegion {
    base: NonNull<u8>,
    len: usize,
    /// Called once on drop to undo the mapping.
    unmap: Option<fn(NonNull<u8>, usize)>,
}

impl MmioRegion {
    /// Wraps a mapping.
    ///
    /// # Safety
    /// `base..base + len` must be a mapping of device registers (or memory) that stays
    /// valid until `unmap` is called on drop, and that nothing else in the process treats
    /// as ordinary Rust memory. `base` must be 8-byte aligned (accesses check only that
    /// the offset is aligned to their size); mappings are page-aligned.
    ///
    /// Whoever builds a region over a DMA-capable device's registers also vouches that
    /// what is written through it (ring addresses) is memory the device may use: the
    /// drivers do that, which is why mapping a BAR is crate-private.
    pub unsafe fn from_raw_parts(
        base: NonNull<u8>,
        len: usize,
        unmap: Option<fn(NonNull<u8>, usize)>,
    ) -> Self {
        debug_assert!(
            (base.as_ptr() as usize).is_multiple_of(8),
            "MMIO region at {base:p} is not 8-byte aligned"
        );
        MmioRegion { base, len, unmap }
    }

    /// Size of the region in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn ptr<T>(&self, offset: usize) -> *mut T {
        let size = std::mem::size_of::<T>();
        assert!(
            offset.is_multiple_of(size)
                && offset.checked_add(size).is_some_and(|end| end <= self.len),
            "register offset {offset:#x} outside the {}-byte region",
            self.len
        );
        // SAFETY: checked above: in bounds of the mapping.
        unsafe { self.base.as_ptr().add(offset).cast() }
    }

    /// Volatile load of the `T`-wide register at `offset`.
    #[inline(always)]
    pub(crate) fn load<T: Width>(&self, offset: usize) -> T {
        // SAFETY: in-bounds, aligned pointer into a live device mapping; any bits the
        // device returns are a valid `T` (a plain integer).
        unsafe { self.ptr::<T>(offset).read_volatile() }
    }

    /// Volatile store of `value` to the `T`-wide register at `offset`.
    #[inline(always)]
    pub(crate) fn store<T: Width>(&self, offset: usize, value: T) {
        // SAFETY: in-bounds, aligned pointer into a live device mapping.
        unsafe { self.ptr::<T>(offset).write_volatile(value) }
    }
}

/// The widths registers are accessed in.
///
/// # Safety
/// Implemented only for plain integers, for which any bits the device returns are a value
/// (`load` relies on it).
pub(crate) unsafe trait Width: Copy {}
// SAFETY: plain integers: every bit pattern is a value.
unsafe impl Width for u8 {}
// SAFETY: as for u8.
unsafe impl Width for u16 {}
// SAFETY: as for u8.
unsafe impl Width for u32 {}

impl RegisterSpace for MmioRegion {
    fn share(this: &Arc<Self>) -> Option<SharedRegs> {
        Some(Arc::clone(this) as SharedRegs)
    }

    #[inline(always)]
    fn read32(&self, offset: usize) -> u32 {
        self.load(offset)
    }

    #[inline(always)]
    fn write32(&self, offset: usize, value: u32) {
        self.store(offset, value)
    }
}

// SAFETY: the region is device register space, not Rust memory (`from_raw_parts`), reached
// only by volatile accesses; the device serialises them, so threads may share it: a split
// device's queues each write their own tail register while the control handle uses the
// rest (see `crate::queues`).
unsafe impl Send for MmioRegion {}
// SAFETY: as for `Send`.
unsafe impl Sync for MmioRegion {}

/// A register space shared between a device's control handle and its queues' handles,
/// once split ([`crate::queues`]).
impl<R: RegisterSpace + ?Sized> RegisterSpace for Arc<R> {
    #[inline(always)]
    fn read32(&self, offset: usize) -> u32 {
        (**self).read32(offset)
    }

    #[inline(always)]
    fn write32(&self, offset: usize, value: u32) {
        (**self).write32(offset, value)
    }
}

impl Drop for MmioRegion {
    fn drop(&mut self) {
        if let Some(unmap) = self.unmap.take() {
            unmap(self.base, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_passes_only_after_its_time_and_ten_polls() {
        // A thread descheduled past the timeout still asks the device ten times.
        let mut gone = Deadline::new(Duration::ZERO);
        let verdicts: Vec<bool> = (0..11).map(|_| gone.passed()).collect();
        assert_eq!(verdicts, [[false; 9].as_slice(), &[true, true]].concat());
        // Ten polls are not enough while the time has not passed.
        let mut long = Deadline::new(Duration::from_secs(3600));
        assert!((0..100).all(|_| !long.passed()));
    }
    use std::cell::Cell;

    /// A register file on ordinary memory, for testing the helpers.
    struct Fake {
        regs: [Cell<u32>; 4],
        reads: Cell<u32>,
    }

    impl RegisterSpace for Fake {
        fn read32(&self, offset: usize) -> u32 {
            self.reads.set(self.reads.get() + 1);
            // Register 1 counts up on every read, like a status bit that eventually sets.
            if offset == 4 {
                self.regs[1].set(self.regs[1].get() + 1);
            }
            self.regs[offset / 4].get()
        }
        fn write32(&self, offset: usize, value: u32) {
            self.regs[offset / 4].set(value);
        }
    }

    fn fake() -> Fake {
        Fake {
            regs: Default::default(),
            reads: Cell::new(0),
        }
    }

    #[test]
    fn set_and_clear_bits() {
        let f = fake();
        f.write32(0, 0b1010);
        f.set_bits(0, 0b0101);
        assert_eq!(f.read32(0), 0b1111);
        f.clear_bits(0, 0b0110);
        assert_eq!(f.read32(0), 0b1001);
    }

    #[test]
    fn wait_returns_once_the_bits_match() {
        let f = fake();
        wait_for(&f, 4, 0x4, 0x4, Duration::from_secs(1), "bit 2").unwrap();
        assert_eq!(f.regs[1].get(), 4);
    }

    #[test]
    fn wait_times_out_with_a_message_naming_the_condition() {
        let f = fake();
        let err = wait_for(&f, 8, 1, 1, Duration::from_millis(20), "the moon (X.Y)").unwrap_err();
        assert!(err.contains("the moon (X.Y)"), "{err}");
        assert!(err.contains("0x8"), "{err}");
        assert!(f.reads.get() > 1);
    }

    #[test]
    fn mmio_region_accesses_ordinary_memory() {
        let mut backing = [0u64; 2];
        let base = NonNull::new(backing.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `backing` is 8-byte aligned, outlives `r`, and is only accessed through
        // `r` meanwhile.
        let r = unsafe { MmioRegion::from_raw_parts(base, 16, None) };
        r.write32(4, 0xdead_beef);
        r.store(8, 0x1234u16);
        r.store(12, 0x56u8);
        assert_eq!(r.read32(4), 0xdead_beef);
        assert_eq!(r.load::<u16>(8), 0x1234);
        assert_eq!(r.load::<u8>(12), 0x56);
        drop(r);
        assert_eq!(backing[0] >> 32, 0xdead_beef);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn mmio_out_of_bounds_is_caught() {
        let mut backing = [0u64; 2];
        let base = NonNull::new(backing.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: as above.
        let r = unsafe { MmioRegion::from_raw_parts(base, 16, None) };
        r.read32(16);
    }
}
