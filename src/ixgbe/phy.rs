//! X540 and X550-T link setup through the integrated PHY, as Linux does it
//! (`ixgbe_phy.c` `ixgbe_setup_phy_link_generic`, called through `ixgbe_setup_mac_link_X540`
//! for both MACs): the speeds the PHY can do are advertised in its auto-negotiation MMD
//! and auto-negotiation restarts; the MAC follows the PHY's link.
//!
//! The PHY is reached over MDIO with IEEE 802.3 clause-45 cycles (an address cycle, then
//! the read or write) through MSCA/MSRWD, each register access under the PHY's SW/FW
//! semaphore (Linux `ixgbe_read_phy_reg_generic`, `ixgbe_write_phy_reg_generic`,
//! `ixgbe_read_phy_reg_mdi`, `ixgbe_write_phy_reg_mdi`).
//!
//! Linux resets neither PHY from software (`phy_ops_X540` and `phy_ops_X550` have no
//! `reset`: the MAC reset covers it), and its overtemp check on these MACs,
//! `ixgbe_tn_check_overtemp`, acts only on the 82599 T3 LOM; neither is done here.

use std::time::Duration;

use super::{IxgbeDevice, MacType, regs};
use crate::error::Result;
use crate::registers::RegisterSpace;

// ---- MDIO interface, 82599 datasheet 8.2.3.22.11-12 (same offsets on the X540/X550;
// bits as Linux `ixgbe_type.h` `IXGBE_MSCA_*`, `IXGBE_MSRWD_*`) ----
/// MDI Single Command and Address: register address (15:0), MMD (20:16), PHY address
/// (25:21), OP_CODE (27:26), ST_CODE (29:28: 00b is clause 45), MDI_COMMAND (30).
pub const MSCA: usize = 0x0425c;
/// MSCA.DEV_TYPE field position: the MMD.
pub const MSCA_DEV_TYPE_SHIFT: u32 = 16;
/// MSCA.PHY_ADDR field position.
pub const MSCA_PHY_ADDR_SHIFT: u32 = 21;
/// MSCA.OP_CODE 00b: address cycle.
pub const MSCA_ADDR_CYCLE: u32 = 0;
/// MSCA.OP_CODE 01b: write cycle.
pub const MSCA_WRITE: u32 = 0b01 << 26;
/// MSCA.OP_CODE 11b: read cycle.
pub const MSCA_READ: u32 = 0b11 << 26;
/// MSCA.MDI_COMMAND: starts the cycle; the MAC clears it when the cycle is done.
pub const MSCA_MDI_COMMAND: u32 = 1 << 30;
/// MDI Single Read and Write Data: data to write (15:0), data read (31:16).
pub const MSRWD: usize = 0x04260;
/// MSRWD read data field position.
pub const MSRWD_READ_DATA_SHIFT: u32 = 16;

// ---- PHY registers: IEEE 802.3 clause 45 (Linux `mdio.h`), the vendor register and
// bits as Linux `ixgbe_type.h` `IXGBE_MII_*` ----
/// MMD 1, PMA/PMD: device identifier 1 (reg 2; neither 0 nor 0xffff where a PHY answers,
/// DPDK/FreeBSD `ixgbe_validate_phy_addr`) and speed ability (reg 4).
pub const MMD_PMAPMD: u32 = 1;
/// PMA/PMD device identifier 1.
pub const PMA_DEVID1: u32 = 2;
/// PMA/PMD speed ability: 10G (bit 0), 1000 Mb/s (4), 100 Mb/s (5).
pub const PMA_SPEED: u32 = 4;
/// [`PMA_SPEED`] bits 10G, 1000 and 100 Mb/s.
pub const PMA_SPEED_10G: u16 = 1;
/// See [`PMA_SPEED_10G`].
pub const PMA_SPEED_1000: u16 = 1 << 4;
/// See [`PMA_SPEED_10G`].
pub const PMA_SPEED_100: u16 = 1 << 5;
/// MMD 7, auto-negotiation.
pub const MMD_AN: u32 = 7;
/// AN control 1 (reg 0): bit 9 restarts auto-negotiation (self-clearing).
pub const AN_CTRL1: u32 = 0;
/// AN control 1 restart bit.
pub const AN_CTRL1_RESTART: u16 = 1 << 9;
/// AN advertisement (reg 16): 100BASE-TX full duplex (bit 8), half duplex (bit 7).
pub const AN_ADVERTISE: u32 = 0x10;
/// 100BASE-TX full and half duplex in [`AN_ADVERTISE`].
pub const AN_ADV_100: [u16; 2] = [1 << 8, 1 << 7];
/// 10GBASE-T AN control (reg 32): bit 12 advertises 10GBASE-T.
pub const AN_10GBT_CTRL: u32 = 0x20;
/// 10GBASE-T in [`AN_10GBT_CTRL`].
pub const AN_10GBT_ADV_10G: u16 = 1 << 12;
/// Vendor provisioning 1 (reg 0xc400): 1000BASE-T (bit 15), 5GBASE-T (11) and
/// 2.5GBASE-T (10), the last two on the X550 only.
pub const AN_VENDOR_PROV1: u32 = 0xc400;
/// 1000BASE-T in [`AN_VENDOR_PROV1`].
pub const AN_PROV1_ADV_1G: u16 = 1 << 15;
/// 5GBASE-T and 2.5GBASE-T in [`AN_VENDOR_PROV1`].
pub const AN_PROV1_ADV_5G_2_5G: u16 = 0b11 << 10;

/// Time an MDIO cycle may take (Linux polls MDI_COMMAND 100 times 10 µs apart: 1 ms;
/// 10 ms is generous).
const MDIO_TIMEOUT: Duration = Duration::from_millis(10);
/// PHY addresses on the MDIO bus (5 bits; Linux `IXGBE_MAX_PHY_ADDR`).
const PHY_ADDRESSES: u32 = 32;

impl<R: RegisterSpace> IxgbeDevice<R> {
    /// 4.6.4 on the X540/X550: finds the PHY (the first MDIO address whose PMA/PMD
    /// identifier is neither 0 nor 0xffff, as DPDK's and FreeBSD's
    /// `ixgbe_identify_phy_generic`; Linux scans the same addresses with the kernel's
    /// `mdio45_probe`, then reads that identifier: one register read here instead of the
    /// MMD presence checks), advertises every speed it can do (PMA/PMD speed ability; 2.5G
    /// and 5G on the X550, Linux `ixgbe_get_copper_speeds_supported`) and nothing else,
    /// then restarts auto-negotiation unless MMNGC.MNG_VETO forbids it. An MDIO cycle that
    /// does not complete is an error.
    pub(super) fn setup_phy_link(&self) -> Result<()> {
        let (id, mut addr) = (|a| self.phy_reg(a, MMD_PMAPMD, PMA_DEVID1, None), 0);
        while matches!(id(addr)?, 0 | 0xffff) {
            addr += 1;
            if addr == PHY_ADDRESSES {
                let e = "no PHY answers on MDIO (PMA/PMD identifier 0 or 0xffff at every address)";
                return Err(self.shell.err(e));
            }
        }
        let ability = self.phy_reg(addr, MMD_PMAPMD, PMA_SPEED, None)?;
        let has = |bit: u16| ability & bit != 0;
        let adv = |on: bool, bits: u16| if on { bits } else { 0 };
        let nbase_t = adv(self.d.mac == MacType::X550, AN_PROV1_ADV_5G_2_5G);
        let ([full, half], g10, g1) = (AN_ADV_100, AN_10GBT_ADV_10G, AN_PROV1_ADV_1G);
        let g1_adv = adv(has(PMA_SPEED_1000), g1) | nbase_t;
        let writes = [
            (AN_10GBT_CTRL, g10, adv(has(PMA_SPEED_10G), g10)),
            (AN_VENDOR_PROV1, g1 | nbase_t, g1_adv),
            (AN_ADVERTISE, full | half, adv(has(PMA_SPEED_100), full)),
            (AN_CTRL1, 0, AN_CTRL1_RESTART),
        ];
        // Manageability firmware that vetoes link resets keeps its link: no restart
        // (Linux `ixgbe_setup_phy_link_generic`, `ixgbe_check_reset_blocked`).
        let veto = self.shell.regs.read32(regs::MMNGC) & regs::MMNGC_MNG_VETO != 0;
        for &(reg, field, set) in &writes[..writes.len() - usize::from(veto)] {
            let value = self.phy_reg(addr, MMD_AN, reg, None)? & !field | set;
            self.phy_reg(addr, MMD_AN, reg, Some(value))?;
        }
        Ok(())
    }

    /// SW_FW_SYNC's bit for this port's PHY (Linux `IXGBE_GSSR_PHY0_SM`/`PHY1_SM` by
    /// STATUS.LAN_ID).
    pub(super) fn phy_semaphore(&self) -> u32 {
        let lan_id = self.shell.regs.read32(regs::STATUS) >> regs::STATUS_LAN_ID_SHIFT & 1;
        regs::SW_FW_SYNC_SW_PHY0_SM << lan_id
    }

    /// Reads PHY `addr`'s register `reg` of MMD `mmd`, or writes `data` to it (then
    /// returns what MSRWD reads), holding the PHY's SW/FW semaphore.
    fn phy_reg(&self, addr: u32, mmd: u32, reg: u32, data: Option<u16>) -> Result<u16> {
        let semaphore = self.phy_semaphore();
        self.swfw(semaphore, true)?;
        let (s, r) = (&self.shell, &self.shell.regs);
        let cycles = || {
            let target = reg | mmd << MSCA_DEV_TYPE_SHIFT | addr << MSCA_PHY_ADDR_SHIFT;
            if let Some(d) = data {
                r.write32(MSRWD, d.into());
            }
            let what =
                format!("MDIO cycle on PHY {addr} register {mmd}.{reg:#x} (MSCA.MDI_COMMAND)");
            for cycle in [MSCA_ADDR_CYCLE, data.map_or(MSCA_READ, |_| MSCA_WRITE)] {
                r.write32(MSCA, target | cycle | MSCA_MDI_COMMAND);
                s.wait(MSCA, MSCA_MDI_COMMAND, 0, MDIO_TIMEOUT, &what)?;
            }
            Ok((r.read32(MSRWD) >> MSRWD_READ_DATA_SHIFT) as u16)
        };
        let done = cycles();
        self.swfw(semaphore, false).and(done)
    }
}
