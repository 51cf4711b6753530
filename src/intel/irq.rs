//! Receive interrupts of the Intel PF drivers (ixgbe, igb): receive queue `q` raises MSI-X
//! vector `q`, whose eventfd VFIO signals, and sleeps on it when idle (the state machine of
//! [`crate::interrupts`]). The devices differ only in where their extended interrupt
//! registers are ([`IrqRegs`]) and in how causes are routed to vectors (their drivers).

use std::collections::VecDeque;

use super::regs::IVAR_VALID;
use super::ring::RxRing;
use crate::error::Result;
use crate::interrupts::{IrqAction, QueueInterrupt};
use crate::ixgbe::IxgbeOptions;
use crate::memory::Packet;
use crate::pci::{IrqMode, PciDevice};
use crate::registers::RegisterSpace;

/// Where one MAC has its extended interrupt registers: the same set on the 82599
/// (datasheet 8.2.3.5) and the 82576 (8.8), at other offsets ([`super::regs::IRQ_82599`],
/// [`super::regs::IRQ_82576`]). Bit `v` of each is MSI-X vector `v`. The VFs, which have
/// no receive interrupts, hold the default (never read).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IrqRegs {
    /// Extended Interrupt Cause Read (write 1b to clear).
    pub(crate) eicr: usize,
    /// Extended Interrupt Auto Clear: in MSI-X mode, a cause set here is cleared when its
    /// vector's message is sent.
    pub(crate) eiac: usize,
    /// Extended Interrupt Mask Set: writing 1b enables (unmasks) a cause.
    pub(crate) eims: usize,
    /// Extended Interrupt Mask Clear: writing 1b masks a cause.
    pub(crate) eimc: usize,
    /// Extended Interrupt Auto Mask: with GPIE.EIAME, a cause set here is masked when its
    /// vector's message is sent.
    pub(crate) eiam: usize,
    /// General Purpose Interrupt Enable.
    pub(crate) gpie: usize,
    /// Extended Interrupt Throttle of vector 0; vector `v`'s is `4 * v` further.
    pub(crate) eitr0: usize,
}

impl IrqRegs {
    /// Extended Interrupt Throttle of vector `v`.
    pub(crate) const fn eitr(&self, v: usize) -> usize {
        self.eitr0 + 4 * v
    }
}

/// The receive queues' interrupts of a PF opened with `o` (one [`QueueInterrupt`] per
/// receive queue, none when polling), and the options as they apply. On hardware (`pci`):
/// the device's id, and VFIO signals queue `q`'s eventfd on vector `q` (MSI-X, else MSI;
/// `irq_mode` is what was enabled); a device on sysfs cannot deliver interrupts: a
/// warning, and polling. On bare registers nothing outside the device is set up.
pub(crate) fn pf_vectors(
    o: &IxgbeOptions,
    pci: Option<&PciDevice>,
) -> Result<(IxgbeOptions, Vec<QueueInterrupt>)> {
    let mut o = o.clone();
    let n = if o.interrupt_timeout_ms == 0 {
        0
    } else {
        o.rx_queues
    };
    let irqs: Vec<_> = (0..n)
        .map(|_| QueueInterrupt::new(o.interrupt_timeout_ms))
        .collect::<Result<_>>()?;
    let Some(pci) = pci else { return Ok((o, irqs)) };
    o.device_id = pci.id().device;
    let fds: Vec<_> = irqs.iter().map(QueueInterrupt::eventfd).collect();
    if irqs.is_empty() {
        return Ok((o, irqs));
    }
    match pci.enable_irqs(&fds, &[IrqMode::MsiX, IrqMode::Msi]) {
        Ok(mode) => o.irq_mode = mode,
        Err(e) => {
            log::warn!("{}: {e}; polling instead of interrupts", pci.name());
            o.interrupt_timeout_ms = 0;
            return Ok((o, Vec::new()));
        }
    }
    Ok((o, irqs))
}

/// Routes receive queue `q`'s cause to MSI-X vector `q` for each of `queues` queues, as
/// the 82599 (datasheet 7.3, 8.2.3.5) and the 82576 (7.3, 8.8) both do it: the queue's
/// IVAR entry (`ivar(q)`: its register and bit position) with the valid bit, the
/// vector's throttle (EITR(q) set to `itr`); with `auto` (MSI-X: EIAC and EIAM) causes
/// that clear and mask themselves when their message goes out; old causes cleared (EICR,
/// write 1b). Every vector stays masked: a queue unmasks its own only while it sleeps.
pub(crate) fn route_vectors<R: RegisterSpace>(
    r: &R,
    (at, queues): (IrqRegs, usize),
    ivar: impl Fn(usize) -> (usize, u32),
    itr: u32,
    auto: bool,
) {
    for q in 0..queues {
        let (reg, shift) = ivar(q);
        let entry = (q as u32 | IVAR_VALID) << shift;
        r.write32(reg, r.read32(reg) & !(0xff << shift) | entry);
        r.write32(at.eitr(q), itr);
    }
    let vectors = ((1u64 << queues) - 1) as u32;
    if auto {
        r.write32(at.eiac, vectors);
        r.write32(at.eiam, vectors);
    }
    r.write32(at.eicr, vectors);
}

/// How the receive queues are woken, for the log: nothing when polling.
pub(crate) fn describe(irqs: &[QueueInterrupt], mode: IrqMode) -> &'static str {
    match (irqs.is_empty(), mode) {
        (true, _) => "",
        (false, IrqMode::MsiX) => ", MSI-X interrupts (one vector per rx queue)",
        (false, IrqMode::Msi) => ", MSI interrupts",
    }
}

/// The register space seen from the interrupt paths: the same registers, a distinct type,
/// so the ring's poll called there is a separate instance of the generic function (the
/// polling path's instance keeps its single call site and stays inlined there).
struct IrqPath<'a, R>(&'a R);

impl<R: RegisterSpace> RegisterSpace for IrqPath<'_, R> {
    #[inline(always)]
    fn read32(&self, offset: usize) -> u32 {
        self.0.read32(offset)
    }

    #[inline(always)]
    fn write32(&self, offset: usize, value: u32) {
        self.0.write32(offset, value)
    }
}

/// `rx_batch` of queue `q` with interrupts on: poll, then the state machine of
/// [`crate::interrupts`]: an idle queue sleeps, then polls again. No system call unless the
/// queue goes to sleep.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn rx_batch<R: RegisterSpace>(
    regs: &R,
    at: IrqRegs,
    name: &str,
    q: usize,
    ring: &mut RxRing,
    intr: &mut QueueInterrupt,
    buffer: &mut VecDeque<Packet>,
    num_packets: usize,
) -> usize {
    let mut n = ring.rx_batch(&IrqPath(regs), buffer, num_packets);
    let mut action = intr.after_poll(n);
    if action == IrqAction::Sleep {
        sleep(regs, at, name, q, ring, intr);
        n = ring.rx_batch(&IrqPath(regs), buffer, num_packets);
        action = intr.after_poll(n);
    }
    if action == IrqAction::Disarm {
        regs.write32(at.eimc, 1 << q);
    }
    n
}

/// Queue `q` is idle: unmask its vector, look at the ring once more, and sleep until an
/// armed queue of this thread fires or the timeout passes.
#[cold]
#[inline(never)]
fn sleep<R: RegisterSpace>(
    regs: &R,
    at: IrqRegs,
    name: &str,
    q: usize,
    ring: &RxRing,
    intr: &mut QueueInterrupt,
) {
    let bit = 1u32 << q;
    // A cause latched while the queue was masked would wake us at once: clear it (write
    // 1b). A frame that arrived meanwhile is on the ring: looked at below.
    regs.write32(at.eicr, bit);
    regs.write32(at.eims, bit);
    // The unmask must reach the device before the ring is looked at: a frame written
    // after this either shows up in the look or raises the interrupt.
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    if !ring.frame_ready()
        && let Err(e) = intr.wait()
    {
        log::error!("{name}: waiting for an interrupt on queue {q}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::pci::testing::fake_sysfs;

    /// Eight registers, offsets 0, 4, ... 28.
    #[derive(Default)]
    struct Eight([Cell<u32>; 8]);

    impl RegisterSpace for Eight {
        fn read32(&self, offset: usize) -> u32 {
            self.0[offset / 4].get()
        }
        fn write32(&self, offset: usize, value: u32) {
            self.0[offset / 4].set(value)
        }
    }

    #[test]
    fn the_interrupt_paths_register_space_is_the_devices() {
        let regs = Eight::default();
        regs.write32(0, 0x1234_5678);
        let path = IrqPath(&regs);
        assert_eq!(path.read32(0), 0x1234_5678);
        path.write32(4, 0x9abc_def0);
        assert_eq!(regs.read32(4), 0x9abc_def0);
    }

    #[test]
    fn routing_writes_each_queues_ivar_entry_and_keeps_the_registers_other_entries() {
        let regs = Eight::default();
        regs.write32(0, 0x1122_3344);
        let at = IrqRegs {
            eicr: 12,
            eiac: 16,
            eims: 24,
            eimc: 28,
            eiam: 20,
            gpie: 8,
            eitr0: 4,
        };
        // Queue 0's entry in bits 15:8 of the register at 0, queue 1's in bits 31:24;
        // EITR(q) at 4 + 4q; EIAC and EIAM at 16 and 20; GPIE is not written here.
        let ivar = |q: usize| (0, 8 + 16 * q as u32);
        route_vectors(&regs, (at, 2), ivar, 0x28, true);
        let all: Vec<_> = (0..8).map(|i| regs.read32(4 * i)).collect();
        assert_eq!(all, [0x8122_8044, 0x28, 0x28, 0b11, 0b11, 0b11, 0, 0]);
    }

    #[test]
    fn the_log_names_the_interrupt_mode_only_when_queues_sleep() {
        let one = [QueueInterrupt::new(10).unwrap()];
        assert_eq!(describe(&[], IrqMode::MsiX), "");
        let msix = describe(&one, IrqMode::MsiX);
        assert_eq!(msix, ", MSI-X interrupts (one vector per rx queue)");
        assert_eq!(describe(&one, IrqMode::Msi), ", MSI interrupts");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads a fake sysfs tree: file system access is isolated under Miri"
    )]
    fn a_device_on_sysfs_polls_instead_of_sleeping_on_interrupts() {
        let (root, _) = fake_sysfs("irq-on-sysfs", [0, 0, 2], 0x8086, 0x10fb, None);
        let pci = PciDevice::open_at("0000:00:04.0".parse().unwrap(), &root).unwrap();
        let mut options = IxgbeOptions::default();
        (options.rx_queues, options.interrupt_timeout_ms) = (2, 20);
        let (_, asked) = pf_vectors(&options, None).unwrap();
        assert_eq!(asked.len(), 2, "one per rx queue on bare registers");
        let (o, irqs) = pf_vectors(&options, Some(&pci)).unwrap();
        assert!(irqs.is_empty());
        assert_eq!(o.interrupt_timeout_ms, 0, "switched to polling");
        assert_eq!(o.device_id, 0x10fb);
    }
}
