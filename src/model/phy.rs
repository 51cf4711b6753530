//! The PHY of a modelled X540/X550 port, behind MSCA/MSRWD: IEEE 802.3 clause-45 MDIO
//! cycles (an address cycle names the MMD and register, the read or write cycle that
//! follows uses it), the PMA/PMD identifier and speed ability, and the auto-negotiation
//! advertisement (register numbers and bits as Linux `ixgbe_phy.c`
//! `ixgbe_setup_phy_link_generic` and `ixgbe_type.h` use them). The PHY starts advertising
//! nothing, so the link comes up only after a driver advertised speeds and restarted
//! auto-negotiation, at the fastest speed it shares with the link partner. Its state
//! survives MAC resets. The rules on how the MDIO is driven (semaphore, busy bit) are
//! checked by the port ([`super::port`]).

use super::regs::{LINKS_SPEED_1G, LINKS_SPEED_10G};

/// MSCA (§8.2.3.22.11): register (15:0), MMD (20:16), PHY address (25:21), OP_CODE (27:26),
/// ST_CODE (29:28, 00b clause 45), MDI_COMMAND (30). MSRWD (§8.2.3.22.12): write data
/// 15:0, read data 31:16.
pub(crate) const MSCA: usize = 0x0425C;
pub(crate) const MSRWD: usize = 0x04260;
pub(crate) const MSCA_MDI_COMMAND: u32 = 1 << 30;

/// The MDIO address the model's PHY answers at unless a test moves it (Linux scans all
/// 32).
const PHY_ADDRESS: u32 = 1;
/// PMA/PMD identifier 1 (Linux `X540_PHY_ID` 0x01540200, high half).
const DEVID1: u16 = 0x0154;
/// PMA/PMD speed ability: 10G, 1000 and 100 Mb/s (bits 0, 4, 5).
pub(crate) const SPEED_ABILITY: u16 = 0x0031;
/// MMD 7 registers: control 1 (restart bit 9, self-clearing), advertisement (100 full
/// bit 8, half bit 7), 10GBASE-T control (10G bit 12), vendor provisioning 1 (1G bit 15,
/// 5G bit 11, 2.5G bit 10; X550 only for the last two).
const AN_CTRL1: u32 = 0;
const AN_RESTART: u16 = 1 << 9;
const AN_ADVERTISE: u32 = 0x10;
const AN_10GBT_CTRL: u32 = 0x20;
const AN_PROV1: u32 = 0xC400;
/// LINKS.NON_STD (bit 27, X550): LINK_SPEED 11b is 2.5 Gb/s, 01b 5 Gb/s.
const LINKS_NON_STD: u32 = 1 << 27;
const LINKS_SPEED_100M: u32 = 0x1 << 28;

/// Speeds in Mb/s, the register of MMD 7 and bit that advertise each, and its LINKS
/// speed bits; fastest first.
const SPEEDS: [(u32, u32, u16, u32); 5] = [
    (10_000, AN_10GBT_CTRL, 1 << 12, LINKS_SPEED_10G),
    (5_000, AN_PROV1, 1 << 11, LINKS_SPEED_100M | LINKS_NON_STD),
    (2_500, AN_PROV1, 1 << 10, LINKS_SPEED_10G | LINKS_NON_STD),
    (1_000, AN_PROV1, 1 << 15, LINKS_SPEED_1G),
    (100, AN_ADVERTISE, 1 << 8, LINKS_SPEED_100M),
];

/// The PHY of one X540/X550 port.
#[derive(Debug)]
pub(crate) struct Phy {
    /// An X550's (2.5G and 5G) rather than an X540's.
    x550: bool,
    /// The MMD 7 registers the driver writes, with the model's other bits set (which a
    /// driver must keep: it read-modify-writes them, as Linux does), 100BASE-TX half duplex
    /// (which Linux clears), 1000BASE-T and bit 10 (2.5GBASE-T on an X550, left alone on
    /// an X540) advertised, 10GBASE-T not.
    an: [(u32, u16); 4],
    /// The MDIO address the PHY answers at; `None`: it answers nowhere.
    pub(crate) address_on_bus: Option<u32>,
    /// PMA/PMD speed ability.
    pub(crate) ability: u16,
    /// The last address cycle: PHY address, MMD, register.
    address: Option<(u32, u32, u32)>,
    /// Speeds (Mb/s) the link partner advertises.
    pub(crate) partner: Vec<u32>,
    /// Auto-negotiation restarts so far.
    pub(crate) restarts: u32,
    /// LINKS speed bits of the link the last restart negotiated, if one.
    pub(crate) negotiated: Option<u32>,
}

impl Phy {
    pub(crate) fn new(x550: bool) -> Self {
        Phy {
            x550,
            an: [
                (AN_CTRL1, 0x3000),
                (AN_ADVERTISE, 0x0081),
                (AN_10GBT_CTRL, 0x0001),
                (AN_PROV1, 0x8440),
            ],
            address_on_bus: Some(PHY_ADDRESS),
            ability: SPEED_ABILITY,
            address: None,
            partner: SPEEDS.iter().map(|s| s.0).collect(),
            restarts: 0,
            negotiated: None,
        }
    }

    /// A register of MMD `mmd` as the PHY holds it.
    pub(crate) fn reg(&self, mmd: u32, reg: u32) -> Option<u16> {
        match (mmd, reg) {
            (1, 2) => Some(DEVID1),
            (1, 4) => Some(self.ability),
            (7, r) => self.an.iter().find(|a| a.0 == r).map(|a| a.1),
            _ => None,
        }
    }

    /// One MDIO cycle started by MSCA = `msca`, with MSRWD = `msrwd`: the new MSRWD, or
    /// what is wrong with the cycle.
    pub(crate) fn cycle(&mut self, msca: u32, msrwd: u32) -> Result<u32, String> {
        let (op, st) = (msca >> 26 & 3, msca >> 28 & 3);
        let target = (msca >> 21 & 0x1f, msca >> 16 & 0x1f, msca & 0xffff);
        if st != 0 {
            return Err(format!("ST_CODE {st:#b}: only clause 45 (00b) is modelled"));
        }
        if op == 0 {
            self.address = Some(target);
            return Ok(msrwd);
        }
        if self.address.take() != Some(target) {
            return Err(format!(
                "cycle {op:#b} on PHY {} register {}.{:#x} without an address cycle for it \
                 just before",
                target.0, target.1, target.2
            ));
        }
        let (addr, mmd, reg) = target;
        let present = self
            .reg(mmd, reg)
            .filter(|_| self.address_on_bus == Some(addr));
        match op {
            // A write to an address where no PHY answers goes nowhere.
            1 if present.is_some() => self.write(mmd, reg, msrwd as u16).map(|_| msrwd),
            1 => Ok(msrwd),
            3 => Ok(u32::from(present.unwrap_or(0xffff)) << 16 | msrwd & 0xffff),
            _ => Err("read with post-increment (OP_CODE 10b) is not modelled".into()),
        }
    }

    fn write(&mut self, mmd: u32, reg: u32, value: u16) -> Result<(), String> {
        let Some(slot) = self.an.iter_mut().find(|a| mmd == 7 && a.0 == reg) else {
            return Err(format!("write to read-only PHY register {mmd}.{reg:#x}"));
        };
        slot.1 = value & !AN_RESTART;
        if reg == AN_CTRL1 && value & AN_RESTART != 0 {
            self.restarts += 1;
            self.negotiated = self.common_speed();
        }
        Ok(())
    }

    /// LINKS speed bits of the fastest speed both this PHY advertises and the partner.
    fn common_speed(&self) -> Option<u32> {
        let advertised = |&&(mbit, reg, bit, _): &&(u32, u32, u16, u32)| {
            let own = self.x550 || !matches!(mbit, 2_500 | 5_000);
            own && self.reg(7, reg).is_some_and(|v| v & bit != 0) && self.partner.contains(&mbit)
        };
        SPEEDS.iter().find(advertised).map(|s| s.3)
    }
}
