//! The driver against a fake 82576 register file: what it writes, in which state it
//! leaves the device, and its refusals.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::*;
use crate::memory::HeapDma;

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
    let w = dev.regs.writes.borrow().clone();
    let reg = |o: usize| dev.regs.read32(o);
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
        let ring = dev.rx[q].descriptors();
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
fn drop_stops_receive_and_every_queue_then_resets() {
    let dev = open(Fake::default(), &options().queues(2, 2)).unwrap();
    let (writes, mem) = (dev.regs.writes.clone(), dev.regs.mem.clone());
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
    assert_eq!(dev.regs.read32(regs::RCTL) & regs::RCTL_UPE_MPE, 0);
    dev.set_mac_addr([2, 0, 0, 0, 0, 1]).unwrap();
    assert_eq!(dev.regs.read32(regs::RAH0), regs::RAH_AV | 0x0100);
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
        dev.regs.mem.borrow_mut().insert(reg, v);
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
fn open_refuses_wrong_devices_and_bad_options_before_unbinding() {
    use crate::pci::testing::{fake_sysfs, open_error, unbind_written};
    let cfg = DeviceConfig::new("0000:00:04.0");
    for (tag, vendor, device, driver, other) in [
        ("igb-on-virtio", 0x1af4, 0x1000, "virtio-pci", "virtio"),
        ("igb-on-82599", 0x8086, 0x10fb, "ixgbe", "ixgbe"),
    ] {
        let (root, _) = fake_sysfs(tag, [0, 0, 2], vendor, device, Some(driver));
        let err = open_error(&root, |pci| IgbDevice::open(pci, &cfg));
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        let which =
            format!("the igb driver does not drive it; it is a device for the {other} driver");
        assert!(err.to_string().contains(&which), "{tag}: {err}");
        assert_eq!(unbind_written(&root, driver), "", "{tag}: never unbound");
    }
    let (root, _) = fake_sysfs("igb-checks", [0, 0, 2], 0x8086, 0x10c9, Some("igb"));
    let err = open_error(&root, |pci| {
        IgbDevice::open(pci, &cfg.clone().queues(17, 1))
    });
    assert_eq!(
        err.to_string(),
        "invalid configuration: 17 rx queues requested: igb supports 1 to 16"
    );
    let err = open_error(&root, |pci| {
        IgbDevice::open(pci, &cfg.clone().hugepage_dir("/nonexistent/ixy-huge"))
    });
    assert!(matches!(err, Error::Hugepages { .. }), "{err}");
    assert_eq!(unbind_written(&root, "igb"), "", "never unbound");
}

#[test]
fn interrupts_route_queue_q_to_vector_q_and_an_idle_queue_unmasks_its_vector_to_sleep() {
    let o = IxgbeOptions {
        interrupt_timeout_ms: 1,
        ..options().queues(2, 1)
    };
    let mut dev = open(Fake::default(), &o).unwrap();
    let reg = |o: usize| dev.regs.read32(o);
    assert_eq!(reg(regs::GPIE), regs::GPIE_MSIX);
    assert_eq!(reg(regs::ivar(0)), 0x80, "rx queue 0 -> vector 0, valid");
    assert_eq!(reg(regs::ivar(1)), 0x81);
    assert_eq!(reg(regs::eitr(1)), 40);
    assert_eq!((reg(regs::EIAC), reg(regs::EIAM)), (0b11, 0b11));
    assert!(dev.queue_interrupt(1).is_some() && dev.queue_interrupt(2).is_none());
    let mut q = VecDeque::new();
    for _ in 0..crate::interrupts::IDLE_POLLS_BEFORE_SLEEP {
        assert_eq!(dev.rx_batch(1, &mut q, 8), 0);
    }
    let w = dev.regs.writes.borrow();
    let n = w.len();
    assert_eq!(
        w[n - 2..],
        [(regs::EICR, 0b10), (regs::EIMS, 0b10)],
        "{:x?}",
        &w[n - 4..]
    );
    assert_eq!(dev.queue_interrupt(1).unwrap().sleeps(), 1);
}
