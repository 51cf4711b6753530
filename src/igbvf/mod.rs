//! igbvf: driver for the SR-IOV virtual functions of the Intel 82576 (device ids:
//! [`DEVICE_IDS`]), as the Linux `igb` PF driver creates them
//! (`echo N > /sys/bus/pci/devices/<pf>/sriov_numvfs`).
//!
//! A VF owns queue pairs of its PF and nothing global; it asks the PF for what it needs
//! through the mailbox (`intel::mailbox`, the 82599's protocol at the 82576 VF's offsets,
//! V2PMAILBOX at 0x0C40, VMBMEM at 0x0800). Bring-up, in the order of Linux `igbvf`
//! (`e1000_reset_hw_vf`, `igbvf_configure`):
//!
//! 1. queues off, interrupts masked, VF reset (CTRL.RST), then wait until the PF is not
//!    resetting (V2PMAILBOX.RSTI clear);
//! 2. RESET message: the reply carries the MAC address the PF assigned (NACK: none; a
//!    random locally administered address is used, as in Linux);
//! 3. the rings (`intel::ring`, shared with the other Intel drivers), queue enable;
//! 4. SET_MAC_ADDR, and SET_PROMISC if promiscuous mode is asked for;
//! 5. the link (the PF's STATUS, which the VF reads), waited for with a deadline.
//!
//! The igb PF speaks the first mailbox API only: no version negotiation, no queue-count
//! query (a VF has one queue pair in Linux's igb), and its own SET_PROMISC message (id
//! 0x06, Linux `igb/e1000_mbx.h`), which allows multicast promiscuous only: unicast
//! promiscuous mode is refused with a clear error.
//!
//! **PF resets** (V2PMAILBOX.RSTI/RSTD) are handled as `intel::vf` describes: steps 1 to
//! 5 run again with the rings the VF has ([`IgbvfDevice::check_pf_reset`]).
//!
//! **Statistics** come from the VF's 32-bit rolling counters (VFGPRC, VFGPTC, VFGORC,
//! VFGOTC); the VF has no drop counter, so `rx_dropped` stays 0.

pub mod regs;

use crate::error::Result;
use crate::intel::mailbox::MailboxAt;
use crate::intel::shell::IntelDevice;
use crate::intel::shell::Queues2;
use crate::intel::vf::{Vf, VfDriver};
use crate::pci::DriverKind;
use crate::registers::{MmioRegion, RegisterSpace};

pub use crate::intel::vf::PF_CHECK_INTERVAL;

/// PCI device ids of the 82576 SR-IOV virtual functions the igbvf driver handles (Linux
/// `drivers/net/ethernet/intel/igbvf/vf.h`, `E1000_DEV_ID_82576_VF`; QEMU's igbvf).
pub const DEVICE_IDS: &[(u16, &str)] = &[(0x10ca, "82576 VF")];

/// Queues of each kind this driver uses (the 82576 VF has two pairs; the Linux PF and VF
/// drivers use one).
pub const MAX_QUEUES: u16 = 1;
/// SET_PROMISC (Linux `igb/e1000_mbx.h`; not in the 82599's message set).
const SET_PROMISC: u32 = 0x06;
/// SET_PROMISC info bits (23:16): unicast and multicast promiscuous.
const PROMISC_UNICAST_MULTICAST: u32 = 0x3 << 16;

/// An Intel 82576 virtual function.
///
/// `R` is the register space (the VF's BAR0): [`MmioRegion`] on hardware
/// ([`IgbvfDevice::open`]), a fake in tests ([`IgbvfDevice::with_registers`]).
pub type IgbvfDevice<R = MmioRegion> = IntelDevice<Vf<Igbvf>, R>;

/// What only an igbvf device knows: nothing.
#[derive(Default)]
pub struct Igbvf;

impl<R: RegisterSpace> VfDriver<R> for IgbvfDevice<R> {
    const KIND: DriverKind = DriverKind::Igbvf;
    // QEMU drops a VF's receive backlog beyond its free descriptors as a PF's: the PF's
    // ring size (see crate::igb::RX_RING_SIZE).
    const RX_RING_SIZE: usize = crate::igb::RX_RING_SIZE;

    const MAILBOX: MailboxAt = regs::MAILBOX;
    /// VFGPRC, VFGPTC, VFGORC, VFGOTC: 32 bits each.
    const COUNTER_BITS: [u32; 4] = [32; 4];
    const QUEUE_REGS: Queues2 = [regs::rx_queue, regs::tx_queue];
    const HW_QUEUES: usize = 2;
    const EIMC: (usize, u32) = (regs::EIMC, regs::EIMC_ALL);
    const MAX_QUEUES: ([u16; 2], &'static str) = ([MAX_QUEUES; 2], "");

    /// Steps 3 to 5 with the rings the VF has.
    fn start(&mut self) -> Result<()> {
        self.start_rings(|_| regs::SRRCTL0, crate::igb::SRRCTL_BITS, 0)?;
        self.register_mac()?;
        if self.d.options.promisc || self.shell.promisc {
            crate::IxyDevice::set_promisc(self, true)?;
        }
        let status = ("the PF's STATUS", regs::STATUS);
        self.wait_for_link(&self.d.options, || self.link(), status)
    }

    /// Link speed from the PF's STATUS (LU, SPEED), 0 while down.
    fn link(&self) -> u32 {
        crate::igb::speed_from_status(self.shell.regs.read32(regs::STATUS))
    }

    /// SET_PROMISC: the igb PF grants multicast promiscuous only, so turning promiscuous
    /// mode on is refused (an error naming why); turning it off always works.
    fn promisc_request(&mut self, enabled: bool) -> Result<()> {
        let info = if enabled {
            PROMISC_UNICAST_MULTICAST
        } else {
            0
        };
        self.ask(&[SET_PROMISC | info], |_| {
            "the PF refused promiscuous mode (SET_PROMISC NACK): the Linux igb PF lets a VF \
             receive all multicast frames, never all unicast ones; send to the VF's MAC"
                .into()
        })
        .map(drop)
    }

    /// VFGPRC, VFGPTC, VFGORC, VFGOTC: 32-bit rolling counters.
    fn counter_values(&self) -> [u64; 4] {
        [regs::VFGPRC, regs::VFGPTC, regs::VFGORC, regs::VFGOTC]
            .map(|r| u64::from(self.shell.regs.read32(r)))
    }
}

#[cfg(test)]
mod tests {
    // The VF driver against a fake 82576 VF whose mailbox answers like the Linux igb PF.

    use crate::igb::regs as pf;
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::rc::Rc;

    use super::*;
    use crate::IxyDevice;
    use crate::intel::mailbox::{self, msg};
    use crate::intel::mailbox::{
        VFMAILBOX_PFACK, VFMAILBOX_PFSTS, VFMAILBOX_REQ, VFMAILBOX_RSTD, VFMAILBOX_VFU,
    };
    use crate::intel::regs::{CTRL, CTRL_RST};
    use crate::ixgbevf::IxgbevfOptions;
    use crate::memory::HeapDma;
    use std::collections::VecDeque;
    use std::time::Duration;

    const MAC: [u8; 6] = [0x02, 0x1b, 0x21, 0x3c, 0x4d, 0x5e];

    /// Plain memory, a link at 1000 Mb/s, and a PF at the other end of the mailbox: each
    /// request is acknowledged and answered at once (RESET with MAC, or NACK when `no_mac`;
    /// SET_PROMISC with the unicast bit refused, as Linux `igb_set_vf_promisc` does).
    #[derive(Default, Clone)]
    struct Fake {
        mem: Rc<RefCell<HashMap<usize, u32>>>,
        requests: Rc<RefCell<Vec<u32>>>,
        /// Bits read-to-clear pending in V2PMAILBOX.
        pending: Rc<Cell<u32>>,
        no_mac: bool,
    }

    impl Fake {
        fn answer(&self, request: u32) {
            let m = &mut *self.mem.borrow_mut();
            self.requests.borrow_mut().push(request);
            let id = request & 0xffff;
            let refuse =
                (id == msg::RESET && self.no_mac) || request == SET_PROMISC | 1 << 16 | 2 << 16;
            let ack = if refuse { msg::NACK } else { msg::ACK };
            m.insert(regs::MAILBOX.mem, id | ack | msg::CTS);
            if id == msg::RESET {
                let [w1, w2] = mailbox::mac_words(MAC);
                m.insert(regs::MAILBOX.mem + 4, w1);
                m.insert(regs::MAILBOX.mem + 8, w2);
            }
            self.pending
                .set(self.pending.get() | VFMAILBOX_PFACK | VFMAILBOX_PFSTS);
        }
    }

    impl RegisterSpace for Fake {
        fn read32(&self, offset: usize) -> u32 {
            match offset {
                regs::STATUS => pf::STATUS_LU | 2 << pf::STATUS_SPEED_SHIFT,
                o if o == regs::MAILBOX.ctl => VFMAILBOX_VFU | self.pending.replace(0),
                o => self.mem.borrow().get(&o).copied().unwrap_or(0),
            }
        }

        fn write32(&self, offset: usize, value: u32) {
            if offset == regs::MAILBOX.ctl {
                if value & VFMAILBOX_REQ != 0 {
                    let request = self
                        .mem
                        .borrow()
                        .get(&regs::MAILBOX.mem)
                        .copied()
                        .unwrap_or(0);
                    self.answer(request);
                }
                return;
            }
            self.mem.borrow_mut().insert(offset, value);
        }
    }

    fn options() -> IxgbevfOptions {
        let mut o = IxgbevfOptions::default();
        (o.rx_ring_size, o.tx_ring_size, o.pool_entries) = (64, 64, 128);
        o.mailbox_timeout = Duration::from_millis(100);
        o
    }

    #[test]
    fn init_resets_takes_the_assigned_mac_and_starts_queue_0() {
        let fake = Fake::default();
        let dev =
            IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, &options()).unwrap();
        assert_eq!(dev.mac_addr(), MAC);
        let [w1, w2] = mailbox::mac_words(MAC);
        assert_eq!(*fake.requests.borrow(), vec![msg::RESET, msg::SET_MAC_ADDR]);
        assert_eq!(
            fake.mem.borrow()[&(regs::MAILBOX.mem + 4)],
            w1,
            "the SET_MAC_ADDR words"
        );
        assert_eq!(fake.mem.borrow()[&(regs::MAILBOX.mem + 8)], w2);
        let m = fake.mem.borrow();
        assert_eq!(m[&CTRL], CTRL_RST);
        assert_eq!(m[&regs::SRRCTL0], 1 << 25 | 1 << 31 | 3);
        assert_eq!(
            m[&0x2800],
            dev.shell.rx[0].descriptors().bus_addr() as u32,
            "RDBAL"
        );
        assert_eq!(m[&0x2818], 63, "RDT");
        assert_eq!(
            m[&0x3800],
            dev.shell.tx[0].descriptors().bus_addr() as u32,
            "TDBAL"
        );
        assert_eq!(m[&0x2828] & pf::XDCTL_ENABLE, pf::XDCTL_ENABLE);
        assert_eq!(m[&0x3828] & pf::XDCTL_ENABLE, pf::XDCTL_ENABLE);
        drop(m);
        assert_eq!(dev.link_speed(), 1000);
        drop(dev);
        let m = fake.mem.borrow();
        assert_eq!(m[&0x2828] & pf::XDCTL_ENABLE, 0, "queues stopped on drop");
        assert_eq!(m[&0x3828] & pf::XDCTL_ENABLE, 0);
    }

    #[test]
    fn a_nack_to_reset_means_a_random_local_mac_and_promisc_is_refused() {
        let fake = Fake {
            no_mac: true,
            ..Fake::default()
        };
        let mut dev =
            IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, &options()).unwrap();
        let mac = dev.mac_addr();
        assert_eq!(mac[0] & 3, 2, "unicast, locally administered: {mac:x?}");
        let err = dev.set_promisc(true).unwrap_err();
        assert!(err.to_string().contains("SET_PROMISC NACK"), "{err}");
        assert!(!dev.promisc());
        dev.set_promisc(false).unwrap();
        assert_eq!(fake.requests.borrow().last(), Some(&SET_PROMISC));
    }

    #[test]
    fn a_pf_reset_is_noticed_on_an_empty_poll_and_the_vf_starts_again() {
        let fake = Fake::default();
        let mut dev =
            IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, &options()).unwrap();
        fake.pending.set(VFMAILBOX_RSTD);
        fake.mem.borrow_mut().insert(0x2828, 0);
        let mut q = VecDeque::new();
        for _ in 0..PF_CHECK_INTERVAL {
            assert_eq!(dev.rx_batch(0, &mut q, 8), 0);
        }
        assert_eq!(dev.pf_resets(), 1);
        assert_eq!(
            fake.requests
                .borrow()
                .iter()
                .filter(|&&r| r == msg::RESET)
                .count(),
            2
        );
        assert_eq!(
            fake.mem.borrow()[&0x2828] & pf::XDCTL_ENABLE,
            pf::XDCTL_ENABLE
        );
    }

    #[test]
    fn a_vf_whose_config_space_reads_ffff_is_identified_from_sysfs() {
        use crate::pci::testing::fake_sysfs;
        let (root, dir) = fake_sysfs("vf-ffff", [0, 0, 2], 0x8086, 0x10ca, None);
        let mut cfg = std::fs::read(dir.join("config")).unwrap();
        cfg[0..4].copy_from_slice(&[0xff; 4]);
        std::fs::write(dir.join("config"), cfg).unwrap();
        let pci = crate::pci::PciDevice::open_at("0000:00:04.0".parse().unwrap(), &root).unwrap();
        let id = pci.id();
        assert_eq!((id.vendor, id.device), (0x8086, 0x10ca));
        assert_eq!(crate::pci::driver_for(id), Some(DriverKind::Igbvf));
    }
}
