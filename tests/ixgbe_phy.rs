//! Issue 15 item 3: the X540 and X550-T links, set up through the PHY over MDIO as Linux
//! does (`ixgbe_setup_phy_link_generic`): the advertisement written, auto-negotiation
//! restarted, each access under the PHY's SW/FW semaphore, a stuck MDIO cycle a clear
//! error. The model's PHY advertises nothing until a driver writes it, and checks the
//! MDIO protocol (the `rule_*` tests show each rule firing).

mod common;

use std::time::Duration;

use common::{deadline, warnings};
use ixy::ixgbe::IxgbeOptions;
use ixy::ixgbe::phy::{self, AN_10GBT_CTRL, AN_ADVERTISE, AN_CTRL1, AN_VENDOR_PROV1, MMD_AN};
use ixy::model::{Completion, Model, Port, PortRegisters};
use ixy::registers::RegisterSpace;
use ixy::{Error, IxyDevice};

const X5X0: [u16; 4] = [0x1528, 0x1560, 0x1563, 0x15d1];

fn x550(device: u16) -> bool {
    matches!(device, 0x1563 | 0x15d1)
}

fn port(model: &Model, device: u16) -> (Port, IxgbeOptions) {
    let mut o = IxgbeOptions::default().link_timeout(Duration::from_millis(200));
    o.device_id = device;
    (model.add_port_with_id(device), o)
}

#[test]
fn advertisement_written_and_auto_negotiation_restarted() {
    let _d = deadline();
    let model = Model::new();
    for device in X5X0 {
        let (port, o) = port(&model, device);
        let dev = model.ixgbe(&port, &o).unwrap();
        let an = |reg| model.phy_reg(&port, MMD_AN, reg).unwrap();
        // 10GBASE-T, 1000BASE-T, 100BASE-TX full duplex (half cleared: the model's PHY
        // starts with it), and on the X550 5G and 2.5G (bit 10, set at first, is left
        // alone on the X540); the model's other bits kept (0x0001, 0x0040).
        assert_eq!(an(AN_10GBT_CTRL), 0x1001, "{device:04x}");
        let nbase_t = if x550(device) { 0x0c00 } else { 0x0400 };
        assert_eq!(an(AN_VENDOR_PROV1), 0x8040 | nbase_t, "{device:04x}");
        assert_eq!(an(AN_ADVERTISE), 0x0101, "{device:04x}");
        assert_eq!(model.phy_an_restarts(&port), 1, "{device:04x}");
        assert_eq!(an(AN_CTRL1), 0x3000, "restart self-clears, other bits kept");
        assert_eq!(dev.link_speed(), 10_000);
        // Every access held the semaphore (the model flags one without), and gave it
        // back: the close takes it again for its reset, without a warning.
        let ((), log) = warnings(|| drop(dev));
        assert_eq!(log, Vec::<String>::new());
    }
}

/// Only what the PHY's PMA/PMD speed ability lists is advertised (and what else was
/// advertised is cleared), as Linux `ixgbe_get_copper_speeds_supported`; the X550 adds 5G
/// and 2.5G.
#[test]
fn only_the_speeds_the_phy_can_do_are_advertised() {
    let _d = deadline();
    let model = Model::new();
    for (device, ability, want, speed) in [
        (0x1528, 0x0010, [0x0001, 0x8440, 0x0001], 1_000),
        (0x1528, 0x0001, [0x1001, 0x0440, 0x0001], 10_000),
        (0x1563, 0x0020, [0x0001, 0x0c40, 0x0101], 5_000),
    ] {
        let (port, o) = port(&model, device);
        model.set_phy_speed_ability(&port, ability);
        let dev = model.ixgbe(&port, &o).unwrap();
        let an = |reg| model.phy_reg(&port, MMD_AN, reg).unwrap();
        let got = [an(AN_10GBT_CTRL), an(AN_VENDOR_PROV1), an(AN_ADVERTISE)];
        assert_eq!(got, want, "{device:04x} {ability:#06x}");
        assert_eq!(dev.link_speed(), speed);
    }
}

/// With manageability firmware vetoing link resets (MMNGC.MNG_VETO) the advertisement is
/// written but auto-negotiation is not restarted (Linux `ixgbe_check_reset_blocked`).
#[test]
fn mng_veto_leaves_auto_negotiation_alone() {
    let _d = deadline();
    let model = Model::new();
    let (port, o) = port(&model, 0x1528);
    model.set_mng_veto(&port, true);
    let (dev, log) = warnings(|| model.ixgbe(&port, &o).unwrap());
    assert_eq!(model.phy_reg(&port, MMD_AN, AN_10GBT_CTRL), Some(0x1001));
    assert_eq!(model.phy_an_restarts(&port), 0);
    assert_eq!((dev.link_speed(), log.len()), (0, 1), "{log:?}");
}

/// The link comes up at the fastest speed both the PHY and the partner advertise: 2.5G
/// only where the driver advertised it (X550), none at all if nothing is shared.
#[test]
fn link_at_the_fastest_common_speed() {
    let _d = deadline();
    let model = Model::new();
    for (device, partner, want) in [
        (0x1563, &[2_500, 1_000][..], 2_500),
        (0x15d1, &[5_000, 100][..], 5_000),
        (0x1528, &[2_500, 1_000][..], 1_000),
        (0x1560, &[100][..], 100),
        (0x1528, &[5_000][..], 0),
    ] {
        let (port, o) = port(&model, device);
        model.set_link_partner(&port, partner);
        let (dev, log) = warnings(|| model.ixgbe(&port, &o).unwrap());
        assert_eq!(dev.link_speed(), want, "{device:04x} {partner:?}");
        assert_eq!(log.len(), (want == 0) as usize, "{log:?}");
    }
}

/// An MDIO cycle that never completes: an `Error::Device` naming MSCA.MDI_COMMAND within
/// the deadline, with the semaphore given back (else the reset on the way out would wait
/// for it and warn).
#[test]
fn mdio_timeout_is_an_error_and_the_semaphore_is_given_back() {
    let _d = deadline();
    let model = Model::new();
    for device in [0x1528, 0x1563] {
        let (port, o) = port(&model, device);
        model.hold_back(&port, Completion::Mdio, true);
        let (err, log) = warnings(|| model.ixgbe(&port, &o).err().expect("init must fail"));
        match err {
            Error::Device { detail, .. } => {
                assert!(
                    detail.contains("MDIO cycle on PHY 0 register 1.0x2 (MSCA.MDI_COMMAND)"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(log, Vec::<String>::new());
        assert_eq!(model.phy_an_restarts(&port), 0);
    }
}

/// The PHY is found wherever it answers on the MDIO bus (Linux scans the 32 addresses);
/// a port where none answers is an error saying so.
#[test]
fn phy_found_at_any_address_or_an_error() {
    let _d = deadline();
    let model = Model::new();
    let (port1, o) = port(&model, 0x1528);
    model.set_phy_address(&port1, Some(31));
    assert_eq!(model.ixgbe(&port1, &o).unwrap().link_speed(), 10_000);
    let (port2, o) = port(&model, 0x1563);
    model.set_phy_address(&port2, None);
    match model.ixgbe(&port2, &o).err() {
        Some(Error::Device { detail, .. }) => {
            assert!(detail.starts_with("no PHY answers on MDIO"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------ the model's PHY and rules

const MSCA: usize = phy::MSCA;
const MSRWD: usize = phy::MSRWD;
const SW_FW_SYNC: usize = 0x10160;
const PHY0_SM: u32 = 1 << 1;
const LINKS: usize = 0x042A4;
const READ: u32 = 3;
const WRITE: u32 = 1;

/// An X540 port and its registers, with the PHY's semaphore taken.
fn raw_x540(model: &Model) -> (Port, PortRegisters) {
    let port = model.add_port_with_id(0x1528);
    // SAFETY: only the MDIO registers, SW_FW_SYNC and LINKS are used: no DMA.
    let regs = unsafe { port.registers() };
    regs.write32(SW_FW_SYNC, PHY0_SM);
    (port, regs)
}

/// One MSCA command (`op`: 0 address, 1 write, 3 read) on PHY `addr`, register `reg` of
/// MMD `mmd`, polled until done.
fn cycle(port: &PortRegisters, op: u32, addr: u32, mmd: u32, reg: u32) {
    port.write32(
        MSCA,
        reg | mmd << 16 | addr << 21 | op << 26 | phy::MSCA_MDI_COMMAND,
    );
    assert_eq!(port.read32(MSCA) & phy::MSCA_MDI_COMMAND, 0);
}

fn read(port: &PortRegisters, addr: u32, mmd: u32, reg: u32) -> u16 {
    cycle(port, 0, addr, mmd, reg);
    cycle(port, READ, addr, mmd, reg);
    (port.read32(MSRWD) >> 16) as u16
}

fn write(port: &PortRegisters, addr: u32, mmd: u32, reg: u32, value: u16) {
    port.write32(MSRWD, value.into());
    cycle(port, 0, addr, mmd, reg);
    cycle(port, WRITE, addr, mmd, reg);
}

#[test]
fn model_phy_answers_at_one_address_and_links_after_restart() {
    let model = Model::new();
    let (handle, port) = raw_x540(&model);
    assert_eq!(read(&port, 0, 1, 2), 0xffff, "no PHY at 0");
    assert_eq!(read(&port, 1, 1, 2), 0x0154);
    assert_eq!(read(&port, 1, 1, 4), 0x0031, "10G, 1000, 100");
    write(&port, 1, MMD_AN, AN_VENDOR_PROV1, 0x8000);
    assert_eq!(read(&port, 1, MMD_AN, AN_VENDOR_PROV1), 0x8000);
    write(&port, 1, MMD_AN, AN_CTRL1, 0x3200);
    assert_eq!(model.phy_an_restarts(&handle), 1);
    // Up at 1G (LINK_SPEED 10b) after a few polls.
    let polls: Vec<u32> = (0..4).map(|_| port.read32(LINKS) >> 28).collect();
    assert_eq!(polls, [0, 0, 0b110, 0b110]);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: MDIO cycle (MSCA) without the PHY's SW/FW semaphore"
)]
fn rule_mdio_without_semaphore() {
    let model = Model::new();
    let (_, port) = raw_x540(&model);
    port.write32(SW_FW_SYNC, 0);
    read(&port, 1, 1, 2);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: MSCA written while an MDIO cycle is in progress"
)]
fn rule_mdio_while_busy() {
    let model = Model::new();
    let (_, port) = raw_x540(&model);
    port.write32(MSCA, 2 | 1 << 16 | 1 << 21 | phy::MSCA_MDI_COMMAND);
    port.write32(
        MSCA,
        2 | 1 << 16 | 1 << 21 | READ << 26 | phy::MSCA_MDI_COMMAND,
    );
}

#[test]
#[should_panic(expected = "82599 model: rule violated: MDIO cycle not as clause 45 wants it")]
fn rule_mdio_read_without_address_cycle() {
    let model = Model::new();
    let (_, port) = raw_x540(&model);
    cycle(&port, 0, 1, 1, 2);
    cycle(&port, READ, 1, 1, 4);
}
