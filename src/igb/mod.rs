//! igb: driver for the physical function of the Intel 82576 Gigabit Ethernet controller
//! (device ids: [`DEVICE_IDS`]), the NIC QEMU emulates as `-device igb`.
//!
//! The sequence follows the Intel 82576EB datasheet, section 4.5 ("Software Initialization
//! and Diagnostics"), with the order of Linux `igb` (`igb_reset_hw_82575`,
//! `igb_setup_copper_link_82575`, `igb_configure_rx_ring`, `igb_configure_tx_ring`):
//!
//! 1. interrupts masked (IMC, EIMC), master disable, software reset (CTRL.RST), interrupts
//!    masked again, EEPROM auto-read done (EECD.AUTO_RD);
//! 2. link: CTRL.SLU, and the PHY's auto-negotiation restarted through MDIC (the 82576's
//!    copper PHY, address 1);
//! 3. receive: per queue a ring of advanced one-buffer descriptors (SRRCTL), enabled and
//!    read back; with several queues RSS (key, redirection table, MRQC); then RCTL
//!    (broadcast, CRC strip, promiscuous if asked) with EN;
//! 4. transmit: per queue a ring, enabled and read back, then TCTL.EN;
//! 5. the link, waited for with a deadline.
//!
//! The descriptor rings are the shared ones of `src/intel/ring.rs`: the 82576's advanced
//! receive and transmit descriptors have the 82599's layout in every field the rings use
//! (DD, EOP and length in the receive write-back; DTYP, DCMD, PAYLEN and DD on transmit).
//! Only SRRCTL differs (DROP_EN is bit 31, BSIZEPACKET 7 bits wide), in [`regs`].
//!
//! **Interrupts** (with an interrupt timeout and the device on VFIO): receive queue `q`
//! raises MSI-X vector `q` (IVAR, GPIE in MSI-X mode, EITR about 10 µs, auto-clear); an
//! idle queue unmasks its vector and sleeps (`intel::irq`, shared with ixgbe). On sysfs,
//! or if only MSI is available, the driver logs a warning and polls.
//!
//! QEMU's emulation (10.0) differs from the datasheet in two places this driver meets: it
//! never sets EECD.AUTO_RD (the driver waits 10 ms for it, as Linux does, and goes on),
//! and after CTRL.RST its link stays down until software restarts the PHY's
//! auto-negotiation (which the driver does on any 82576; on hardware it is harmless).

pub mod regs;

use std::time::Duration;

use crate::DeviceConfig;
use crate::error::Result;
use crate::intel::irq;
use crate::intel::queue;
use crate::intel::regs::IRQ_82576;
use crate::intel::shell::{IntelDevice, IntelDriver, On, Queues2, Shell};
use crate::ixgbe::{IxgbeOptions, PfOptions};
use crate::pci::{DriverKind, IrqMode};
use crate::registers::{MmioRegion, RegisterSpace};

/// PCI device ids of the Intel 1 GbE physical functions the igb driver handles: the
/// copper 82576, the one QEMU emulates and the driver is tested on (Linux
/// `drivers/net/ethernet/intel/igb/e1000_hw.h`, `E1000_DEV_ID_82576`).
pub const DEVICE_IDS: &[(u16, &str)] = &[(0x10c9, "82576")];

/// Largest number of rx or tx queues (the 82576 has 16 of each).
pub const MAX_QUEUES: u16 = 16;

/// Descriptors per receive ring: 2048 (the 82576 takes up to 4096), four times the Intel
/// default. QEMU (10.0) queues frames for an igb whose ring is full, and when software
/// then hands back descriptors it delivers the whole queue at once, dropping every frame
/// beyond the free descriptors: a larger ring rides out longer stalls of the polling
/// thread. The pool (4096 buffers) still holds a full ring twice.
pub const RX_RING_SIZE: usize = 2048;

/// EECD.AUTO_RD timeout (Linux `igb_get_auto_rd_done`: 10 ms, then goes on).
const AUTO_RD_TIMEOUT: Duration = Duration::from_millis(10);
/// MDIC completion timeout (Linux `igb_read_phy_reg_mdic`: 1920 polls of 50 µs).
const MDIC_TIMEOUT: Duration = Duration::from_millis(100);
/// SRRCTL's BSIZEPACKET field and DROP_EN bit (8.10; the VF's SRRCTL has the same).
pub(crate) const SRRCTL_BITS: [u32; 2] = [regs::SRRCTL_BSIZEPACKET_MASK, regs::SRRCTL_DROP_EN];
/// Where the receive and transmit queues' registers are.
const QUEUES: Queues2 = [regs::rx_queue, regs::tx_queue];
/// Receive vectors' EITR: about 10 µs between interrupts (interval in µs, bits 14:2).
const RX_EITR: u32 = 10 << 2;

/// An Intel 82576 physical function.
///
/// `R` is the register space (BAR0): [`MmioRegion`] on hardware ([`IgbDevice::open`]), a
/// fake register file in tests ([`IgbDevice::with_registers`]).
pub type IgbDevice<R = MmioRegion> = IntelDevice<Igb, R>;

/// What an igb device knows besides its shell: nothing.
pub struct Igb;

impl<R: RegisterSpace> IgbDevice<R> {
    /// Masks every interrupt cause, legacy (IMC) and extended (EIMC).
    fn mask_interrupts(&self) {
        self.shell.regs.write32(regs::IMC, u32::MAX);
        self.shell.regs.write32(IRQ_82576.eimc, u32::MAX);
    }

    /// Step 1: master disable (a timeout is logged; the reset stops the device anyway, as
    /// in Linux), software reset, and the EEPROM auto-read.
    fn reset(&self) -> Result<()> {
        let s = &self.shell;
        self.mask_interrupts();
        s.master_disable();
        s.reset_ctrl(regs::CTRL_RST)?;
        self.mask_interrupts();
        let ard = regs::EECD_AUTO_RD;
        if s.wait(regs::EECD, ard, ard, AUTO_RD_TIMEOUT, "EECD.AUTO_RD")
            .is_err()
        {
            // QEMU's igb never sets it; Linux goes on as well.
            log::debug!("{}: EEPROM auto-read not reported done", s.name);
        }
        Ok(())
    }

    /// Step 2: the MAC follows the PHY (CTRL.SLU, no forced speed or duplex); the PHY
    /// restarts auto-negotiation.
    fn start_link(&self) -> Result<()> {
        let r = &self.shell.regs;
        let ctrl = r.read32(regs::CTRL) & !regs::CTRL_FRCSPD_FRCDPX;
        r.write32(regs::CTRL, ctrl | regs::CTRL_SLU);
        let (read, write) = (regs::MDIC_OP_READ, regs::MDIC_OP_WRITE);
        let control = self.mdic(read, regs::PHY_CONTROL, 0)? | regs::PHY_CONTROL_AUTONEG;
        self.mdic(write, regs::PHY_CONTROL, control).map(drop)
    }

    /// One PHY register access through MDIC; returns the data read.
    fn mdic(&self, op: u32, reg: u32, data: u32) -> Result<u32> {
        let s = &self.shell;
        let cmd = op | regs::MDIC_PHY_1 | reg << regs::MDIC_REG_SHIFT | (data & 0xffff);
        s.regs.write32(regs::MDIC, cmd);
        let (ready, what) = (regs::MDIC_READY, "PHY access to complete (MDIC.R)");
        s.wait(regs::MDIC, ready, ready, MDIC_TIMEOUT, what)?;
        let mdic = s.regs.read32(regs::MDIC);
        if mdic & regs::MDIC_ERROR != 0 {
            let detail =
                format!("the PHY refused access to its register {reg} (MDIC = {mdic:#010x})");
            return Err(s.err(detail));
        }
        Ok(mdic & 0xffff)
    }

    /// Step 3: receive rings and RCTL. Queue 0 comes out of reset enabled, and a ring is
    /// only changed while its queue is disabled: every queue is stopped first.
    fn init_rx(&mut self, o: &IxgbeOptions) -> Result<()> {
        let s = &mut self.shell;
        s.regs.clear_bits(regs::RCTL, regs::RCTL_EN);
        if !s.stop_queues(s.queue_ctls(QUEUES)) {
            return Err(s.err("a queue did not stop after the reset"));
        }
        for q in 0..s.rx.len() {
            queue::set_srrctl(&s.regs, regs::srrctl(q), SRRCTL_BITS);
            let what = format!("receive queue {q} to enable (XDCTL.ENABLE)");
            s.start_queue(&regs::rx_queue(q), s.rx[q].descriptors(), &what)?;
            s.rx[q].start(&s.regs);
        }
        // Receive queue selection, before RCTL.EN. One queue: RXCSUM 0 and MRQC left at 0
        // (its reset value; every frame to queue 0). 2-16 queues: RXCSUM.PCSD and RSS
        // (datasheet 7.1.2; `program_rss`: key, redirection table, MRQC).
        let rss = s.rx.len() > 1;
        s.regs
            .write32(regs::RXCSUM, if rss { regs::RXCSUM_PCSD } else { 0 });
        if rss {
            crate::intel::program_rss(&s.regs, s.rx.len(), regs::MRQC_MRQE_RSS);
        }
        let rctl = s.regs.read32(regs::RCTL) & !regs::RCTL_UPE_MPE;
        let on = regs::RCTL_EN | regs::RCTL_BAM | regs::RCTL_SECRC;
        s.regs.write32(regs::RCTL, rctl | on);
        crate::IxyDevice::set_promisc(self, o.promisc)
    }

    /// Step 4: transmit rings and TCTL.
    fn init_tx(&mut self) -> Result<()> {
        let s = &self.shell;
        for (q, ring) in s.tx.iter().enumerate() {
            let what = format!("transmit queue {q} to enable (XDCTL.ENABLE)");
            s.start_queue(&regs::tx_queue(q), ring.descriptors(), &what)?;
        }
        s.regs.set_bits(regs::TCTL, regs::TCTL_EN_PSP);
        Ok(())
    }

    /// MSI-X: receive queue `q`'s cause to vector `q` (IVAR), its throttle (EITR), causes
    /// cleared and masked automatically when a message goes out (EIAC, EIAM). Every vector
    /// stays masked: a queue unmasks its own (EIMS) only while it sleeps.
    fn init_interrupts(&self) {
        let (r, queues) = (&self.shell.regs, self.shell.irqs.len());
        if queues == 0 {
            return;
        }
        r.write32(IRQ_82576.gpie, regs::GPIE_MSIX);
        // IVAR(q mod 8) holds rx queue q's entry: bits 7:0 for q < 8, else 23:16.
        let ivar = |q| (regs::ivar(q & 7), if q < 8 { 0 } else { 16 });
        irq::route_vectors(r, (IRQ_82576, queues), ivar, RX_EITR, true);
    }
}

impl<R: RegisterSpace> IntelDriver<R> for IgbDevice<R> {
    type Only = PfOptions;
    const KIND: DriverKind = DriverKind::Igb;
    const QUEUES: Option<Queues2> = Some(QUEUES);

    fn options(cfg: &DeviceConfig) -> IxgbeOptions {
        let mut o = <crate::ixgbe::IxgbeDevice<R> as IntelDriver<R>>::options(cfg);
        o.rx_ring_size = RX_RING_SIZE;
        o
    }

    /// Queue counts and pools the 82576 cannot have.
    fn check(o: &IxgbeOptions) -> Result<()> {
        o.check_queues("igb", [MAX_QUEUES; 2], "")
    }

    /// With an interrupt timeout the registers are programmed for MSI-X.
    fn init(on: On<'_, R>, o: &IxgbeOptions) -> Result<Self> {
        let (options, mut irqs) = irq::pf_vectors(o, on.pci)?;
        let (options, name, dma) = (&options, on.name, on.dma);
        if !irqs.is_empty() && options.irq_mode != IrqMode::MsiX {
            log::warn!("{name}: igb interrupts need MSI-X, VFIO enabled MSI; polling");
            irqs.clear();
        }
        let mut dev = IntelDevice::new(Shell::new(name, on.regs, IRQ_82576, irqs), Igb);
        // On error `dev` is dropped, which resets the device before its memory is freed.
        dev.reset()?;
        dev.start_link()?;
        crate::IxyDevice::reset_stats(&mut dev);
        dev.shell.add_rings(dma, options, QUEUES, 0)?;
        dev.init_rx(options)?;
        dev.init_tx()?;
        dev.init_interrupts();
        dev.wait_for_link(options, || dev.speed(), ("STATUS", regs::STATUS))?;
        dev.log_ready(irq::describe(&dev.shell.irqs, IrqMode::MsiX));
        Ok(dev)
    }

    /// The MAC in receive address 0 (RAL0/RAH0), loaded from the EEPROM at reset.
    fn mac(&self) -> [u8; 6] {
        crate::intel::read_mac(&self.shell.regs, regs::RAL0, regs::RAH0)
    }

    fn set_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        crate::intel::write_mac(&self.shell.regs, regs::RAL0, regs::RAH0, mac);
        Ok(())
    }

    /// Speed from STATUS (LU, SPEED): 0 while the link is down.
    fn speed(&self) -> u32 {
        speed_from_status(self.shell.regs.read32(regs::STATUS))
    }

    /// Unicast and multicast promiscuous (RCTL.UPE, RCTL.MPE).
    fn promisc_on(&mut self, enabled: bool) -> Result<()> {
        let (r, bits) = (&self.shell.regs, regs::RCTL_UPE_MPE);
        let rctl = r.read32(regs::RCTL);
        r.write32(regs::RCTL, if enabled { rctl | bits } else { rctl & !bits });
        Ok(())
    }

    /// Adds the clear-on-read counters (82576 datasheet 8.19) to the accumulated ones.
    fn read_counters(&mut self) {
        self.shell.add_good_counters();
        let r = |reg| u64::from(self.shell.regs.read32(reg));
        let queue_drops: u64 = (0..self.shell.queues().0).map(|q| r(regs::rqdpc(q))).sum();
        self.shell.stats.rx_dropped += r(regs::MPC) + queue_drops;
    }

    /// Receive off, every queue disabled and read back disabled, then master disable and
    /// a software reset. If the reset fails, bus mastering is taken away (or the memory
    /// is never given back).
    fn close(&mut self) {
        self.mask_interrupts();
        let s = &self.shell;
        s.regs.clear_bits(regs::RCTL, regs::RCTL_EN);
        s.stop_queues(s.queue_ctls(QUEUES));
        if let Err(e) = self.reset() {
            log::error!("{}: {e}", self.shell.name);
            self.shell.fence_off();
        }
    }
}

/// The link speed in Mbit/s that STATUS shows (LU; SPEED 00b 10, 01b 100, 1xb 1000), 0
/// while the link is down. Also what an 82576 VF reads from its STATUS.
pub(crate) fn speed_from_status(status: u32) -> u32 {
    if status & regs::STATUS_LU == 0 {
        return 0;
    }
    [10, 100, 1000, 1000][(status >> regs::STATUS_SPEED_SHIFT & 3) as usize]
}

#[cfg(test)]
mod tests {
    // The driver against a fake 82576 register file: what it writes, in which state it
    // leaves the device, and its refusals.

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use super::*;
    use crate::memory::HeapDma;
    use crate::{Error, IxyDevice};
    use std::collections::VecDeque;

    /// Plain memory, plus what the driver waits for: CTRL.RST self-clears, MDIC completes,
    /// STATUS shows the link (1000 Mb/s) and no master requests, EECD.AUTO_RD only when
    /// `auto_rd` (QEMU never sets it).
    #[derive(Default)]
    struct Fake {
        mem: Rc<RefCell<HashMap<usize, u32>>>,
        writes: Rc<RefCell<Vec<(usize, u32)>>>,
        auto_rd: bool,
        mdic_error: bool,
    }

    impl RegisterSpace for Fake {
        fn read32(&self, offset: usize) -> u32 {
            let v = self.mem.borrow().get(&offset).copied().unwrap_or(0);
            match offset {
                regs::STATUS => regs::STATUS_LU | 2 << regs::STATUS_SPEED_SHIFT,
                regs::EECD if self.auto_rd => regs::EECD_AUTO_RD,
                regs::MDIC if self.mdic_error => v | regs::MDIC_READY | regs::MDIC_ERROR,
                regs::MDIC => v | regs::MDIC_READY,
                _ => v,
            }
        }

        fn write32(&self, offset: usize, value: u32) {
            self.writes.borrow_mut().push((offset, value));
            let value = if offset == regs::CTRL {
                value & !regs::CTRL_RST
            } else {
                value
            };
            self.mem.borrow_mut().insert(offset, value);
        }
    }

    fn options() -> IxgbeOptions {
        IxgbeOptions {
            rx_ring_size: 64,
            tx_ring_size: 64,
            pool_entries: 128,
            ..IxgbeOptions::default()
        }
    }

    fn open(fake: Fake, o: &IxgbeOptions) -> Result<IgbDevice<Fake>> {
        IgbDevice::with_registers("fake-igb", fake, &HeapDma, o)
    }

    #[test]
    fn init_resets_restarts_autoneg_and_programs_rings_and_filters() {
        let dev = open(Fake::default(), &options().queues(2, 1)).unwrap();
        let w = dev.shell.regs.writes.borrow().clone();
        let reg = |o: usize| dev.shell.regs.read32(o);
        // Reset first, with master disable before it.
        let master = w
            .iter()
            .position(|&(o, v)| o == regs::CTRL && v & regs::CTRL_GIO_MASTER_DISABLE != 0);
        let rst = w
            .iter()
            .position(|&(o, v)| o == regs::CTRL && v & regs::CTRL_RST != 0);
        assert!(master.unwrap() < rst.unwrap());
        assert_eq!(
            reg(regs::CTRL) & (regs::CTRL_SLU | regs::CTRL_FRCSPD_FRCDPX),
            regs::CTRL_SLU
        );
        // The PHY's control register written with auto-negotiation enabled and restarted.
        let phy_write = regs::MDIC_OP_WRITE | regs::MDIC_PHY_1 | regs::PHY_CONTROL_AUTONEG;
        assert!(w.contains(&(regs::MDIC, phy_write)), "{w:x?}");
        // Receive: advanced one-buffer descriptors of 3 KB, drop enabled, ring, tail.
        for q in 0..2 {
            assert_eq!(reg(regs::srrctl(q)), 1 << 25 | 1 << 31 | 3);
            let qr = regs::rx_queue(q);
            let ring = dev.shell.rx[q].descriptors();
            assert_eq!(reg(qr.base_lo), ring.bus_addr() as u32);
            assert_eq!(reg(qr.base_hi), (ring.bus_addr() >> 32) as u32);
            assert_eq!(reg(qr.len), 64 * 16);
            assert_eq!(reg(qr.tail), 63);
            assert_eq!(reg(qr.ctl) & regs::XDCTL_ENABLE, regs::XDCTL_ENABLE);
        }
        assert_eq!(regs::rx_queue(1).base_lo, 0x0c040);
        assert_eq!(regs::tx_queue(0).tail, 0x0e018);
        assert_eq!(
            reg(regs::RCTL),
            1 << 1 | 1 << 3 | 1 << 4 | 1 << 15 | 1 << 26,
            "EN UPE MPE BAM SECRC"
        );
        assert_eq!(reg(regs::TCTL), 1 << 1 | 1 << 3, "EN PSP");
        assert_eq!(reg(regs::tx_queue(0).ctl), regs::XDCTL_ENABLE);
        assert_eq!(dev.link_speed(), 1000);
        assert!(dev.promisc());
    }

    #[test]
    fn four_rx_queues_turn_rss_on_before_receive_one_leaves_it_off() {
        let dev = open(Fake::default(), &options().queues(4, 1)).unwrap();
        let w = dev.shell.regs.writes.borrow().clone();
        let reg = |o: usize| dev.shell.regs.read32(o);
        // MRQE 010b and the six hash types; entry i to queue i mod 4, in the low bits.
        assert_eq!(reg(crate::intel::MRQC), 0x2 | 0x00f3_0000);
        assert_eq!(reg(crate::intel::reta(0)), 0x0302_0100);
        assert_eq!(reg(crate::intel::reta(31)), 0x0302_0100);
        assert_eq!(
            (crate::intel::reta(31), crate::intel::rssrk(9)),
            (0x05c7c, 0x05ca4)
        );
        // The Microsoft default key, 6d 5a 56 da first (QEMU hashes RSSRK's bytes in order).
        assert_eq!(
            reg(crate::intel::rssrk(0)).to_le_bytes(),
            [0x6d, 0x5a, 0x56, 0xda]
        );
        assert_eq!(reg(crate::intel::rssrk(9)), 0xfa01_acbe);
        assert_eq!(reg(regs::RXCSUM), 1 << 13, "PCSD, no offloads");
        let at = |o: usize| w.iter().rposition(|&(r, _)| r == o).unwrap();
        assert!(at(crate::intel::MRQC) < at(regs::RCTL), "{w:x?}");
        // Two queues (the fewest RSS is on for): 0 1 0 1; three: entries 4-7 to 1 2 0 1.
        let dev = open(Fake::default(), &options().queues(2, 1)).unwrap();
        assert_eq!(dev.shell.regs.read32(crate::intel::reta(0)), 0x0100_0100);
        let dev = open(Fake::default(), &options().queues(3, 1)).unwrap();
        assert_eq!(dev.shell.regs.read32(crate::intel::reta(1)), 0x0100_0201);
        let dev = open(Fake::default(), &options().queues(1, 1)).unwrap();
        let w = dev.shell.regs.writes.borrow().clone();
        assert!(
            !w.iter()
                .any(|&(o, _)| o == crate::intel::MRQC || o == crate::intel::reta(0)),
            "{w:x?}"
        );
        assert!(w.contains(&(regs::RXCSUM, 0)));
    }

    #[test]
    fn drop_stops_receive_and_every_queue_then_resets() {
        let dev = open(Fake::default(), &options().queues(2, 2)).unwrap();
        let (writes, mem) = (dev.shell.regs.writes.clone(), dev.shell.regs.mem.clone());
        let start = writes.borrow().len();
        drop(dev);
        let w = writes.borrow()[start..].to_vec();
        let at = |pred: &dyn Fn(&(usize, u32)) -> bool| w.iter().position(pred).unwrap();
        let rx_off = at(&|&(o, v)| o == regs::RCTL && v & regs::RCTL_EN == 0);
        let rst = at(&|&(o, v)| o == regs::CTRL && v & regs::CTRL_RST != 0);
        for q in 0..2 {
            for ctl in [regs::rx_queue(q).ctl, regs::tx_queue(q).ctl] {
                let off = at(&|&(o, v)| o == ctl && v & regs::XDCTL_ENABLE == 0);
                assert!(rx_off < off && off < rst, "queue {q}: {w:x?}");
                assert_eq!(mem.borrow()[&ctl] & regs::XDCTL_ENABLE, 0);
            }
        }
    }

    #[test]
    fn mac_stats_and_promisc() {
        let fake = Fake::default();
        fake.mem.borrow_mut().insert(regs::RAL0, 0x0054_5552);
        fake.mem.borrow_mut().insert(regs::RAH0, 0x8000_5634);
        let o = IxgbeOptions {
            promisc: false,
            ..options()
        };
        let mut dev = open(fake, &o).unwrap();
        assert_eq!(dev.mac_addr(), [0x52, 0x55, 0x54, 0x00, 0x34, 0x56]);
        assert!(!dev.promisc());
        assert_eq!(dev.shell.regs.read32(regs::RCTL) & regs::RCTL_UPE_MPE, 0);
        dev.set_mac_addr([2, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(dev.shell.regs.read32(regs::RAH0), 1 << 31 | 0x0100);
        assert!(matches!(
            dev.set_mac_addr([1, 0, 0, 0, 0, 1]),
            Err(Error::InvalidConfig { .. })
        ));
        for (reg, v) in [
            (regs::GPRC, 10),
            (regs::GORC[0], 10 * 64),
            (regs::MPC, 2),
            (regs::rqdpc(0), 1),
        ] {
            dev.shell.regs.mem.borrow_mut().insert(reg, v);
        }
        let s = dev.stats();
        assert_eq!((s.rx_packets, s.rx_bytes, s.rx_dropped), (10, 600, 3));
    }

    #[test]
    fn a_phy_that_does_not_answer_is_an_error_not_a_half_open_device() {
        let fake = Fake {
            mdic_error: true,
            ..Fake::default()
        };
        let err = open(fake, &options()).err().unwrap();
        assert!(matches!(err, Error::Device { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("PHY refused access to its register 0"),
            "{err}"
        );
    }

    #[test]
    fn interrupts_route_queue_q_to_vector_q_and_an_idle_queue_unmasks_its_vector_to_sleep() {
        let o = options().queues(2, 1).interrupt_timeout_ms(1);
        let mut dev = open(Fake::default(), &o).unwrap();
        let reg = |o: usize| dev.shell.regs.read32(o);
        let at = IRQ_82576;
        assert_eq!(reg(at.gpie), regs::GPIE_MSIX);
        assert_eq!(reg(regs::ivar(0)), 0x80, "rx queue 0 -> vector 0, valid");
        assert_eq!(reg(regs::ivar(1)), 0x81);
        assert_eq!(reg(at.eitr(1)), 40);
        assert_eq!((reg(at.eiac), reg(at.eiam)), (0b11, 0b11));
        assert!(dev.queue_interrupt(1).is_some() && dev.queue_interrupt(2).is_none());
        let mut q = VecDeque::new();
        for _ in 0..crate::interrupts::IDLE_POLLS_BEFORE_SLEEP {
            assert_eq!(dev.rx_batch(1, &mut q, 8), 0);
        }
        let w = dev.shell.regs.writes.borrow();
        let n = w.len();
        assert_eq!(
            w[n - 2..],
            [(at.eicr, 0b10), (at.eims, 0b10)],
            "{:x?}",
            &w[n - 4..]
        );
        assert_eq!(dev.queue_interrupt(1).unwrap().sleeps(), 1);
    }
}
