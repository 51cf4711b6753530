//! The VF driver against a fake 82576 VF whose mailbox answers like the Linux igb PF.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::*;
use crate::intel::mailbox::{
    VFMAILBOX_PFACK, VFMAILBOX_PFSTS, VFMAILBOX_REQ, VFMAILBOX_RSTD, VFMAILBOX_VFU,
};
use crate::memory::HeapDma;

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
    (
        o.base.rx_ring_size,
        o.base.tx_ring_size,
        o.base.pool_entries,
    ) = (64, 64, 128);
    o.mailbox_timeout = Duration::from_millis(100);
    o
}

#[test]
fn init_resets_takes_the_assigned_mac_and_starts_queue_0() {
    let fake = Fake::default();
    let dev = IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, options()).unwrap();
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
    assert_eq!(m[&regs::CTRL], pf::CTRL_RST);
    assert_eq!(m[&regs::srrctl(0)], 1 << 25 | 1 << 31 | 3);
    assert_eq!(
        m[&0x2800],
        dev.rx[0].descriptors().bus_addr() as u32,
        "RDBAL"
    );
    assert_eq!(m[&0x2818], 63, "RDT");
    assert_eq!(
        m[&0x3800],
        dev.tx[0].descriptors().bus_addr() as u32,
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
        IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, options()).unwrap();
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
        IgbvfDevice::with_registers("fake-vf", fake.clone(), &HeapDma, options()).unwrap();
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
fn open_refuses_wrong_devices_and_two_queues_before_unbinding() {
    use crate::pci::testing::{fake_sysfs, open_error, unbind_written};
    let cfg = DeviceConfig::new("0000:00:04.0");
    let (root, _) = fake_sysfs("igbvf-on-pf", [0, 0, 2], 0x8086, 0x10c9, Some("igb"));
    let err = open_error(&root, |pci| IgbvfDevice::open(pci, &cfg));
    let which = "the igbvf driver does not drive it; it is a device for the igb driver";
    assert!(err.to_string().contains(which), "{err}");
    assert_eq!(unbind_written(&root, "igb"), "");
    let (root, _) = fake_sysfs("igbvf-checks", [0, 0, 2], 0x8086, 0x10ca, Some("igbvf"));
    let err = open_error(&root, |pci| {
        IgbvfDevice::open(pci, &cfg.clone().queues(2, 1))
    });
    assert_eq!(
        err.to_string(),
        "invalid configuration: 2 rx queues requested: igbvf supports 1 to 1"
    );
    assert_eq!(unbind_written(&root, "igbvf"), "");
}

#[test]
fn a_vf_whose_config_space_reads_ffff_is_identified_from_sysfs() {
    use crate::pci::testing::fake_sysfs;
    let (root, dir) = fake_sysfs("vf-ffff", [0, 0, 2], 0x8086, 0x10ca, None);
    let mut cfg = std::fs::read(dir.join("config")).unwrap();
    cfg[0..4].copy_from_slice(&[0xff; 4]);
    std::fs::write(dir.join("config"), cfg).unwrap();
    let pci = crate::pci::PciDevice::open_at("0000:00:04.0".parse().unwrap(), &root).unwrap();
    let id = pci.identify().unwrap();
    assert_eq!((id.vendor, id.device), (0x8086, 0x10ca));
    assert_eq!(crate::pci::driver_for(&id), Some(DriverKind::Igbvf));
}
