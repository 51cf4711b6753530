//! ixgbevf: driver for the SR-IOV virtual functions of Intel's 10 GbE controllers — 82599,
//! X540 and X550 families (device ids: [`DEVICE_IDS`]).
//!
//! A virtual function owns a few queues of its physical function and nothing global: link,
//! filters and the MAC address belong to the PF driver (on Linux, `ixgbe`), which the VF asks
//! through the mailbox (`intel::mailbox`, 82599 datasheet 7.10.2). Bring-up, in the
//! order of the Linux VF driver (`ixgbevf_reset_hw_vf`, `ixgbevf_negotiate_api`,
//! `ixgbevf_get_queues`, `ixgbevf_configure`):
//!
//! 1. queues off, interrupts masked, VF reset (VFCTRL.RST), then wait until the PF is not
//!    resetting (VFMAILBOX.RSTI clear);
//! 2. RESET message: the reply carries the MAC address the PF assigned (a NACK means none
//!    is assigned yet: a random locally administered address is used, as in Linux);
//! 3. mailbox API negotiation, newest first (1.4, 1.3, 1.2, 1.1, 1.0);
//! 4. GET_QUEUES (API 1.1 and later): how many queues the PF gives this VF;
//! 5. the rings (`intel::ring`, shared with ixgbe), SET_LPE, queue enable;
//! 6. UPDATE_XCAST_MODE (API 1.2 and later) and SET_MAC_ADDR;
//! 7. wait for the link (VFLINKS).
//!
//! Every wait has a timeout that ends in an error naming what did not happen.
//!
//! **PF resets** (VFMAILBOX.RSTI/RSTD) are handled as `intel::vf` describes: steps 1 to 7
//! run again with the rings the VF has ([`IxgbevfDevice::check_pf_reset`]).
//!
//! **Statistics** come from the VF's rolling counters (VFGPRC/VFGPTC, 32 bits; VFGORC/VFGOTC,
//! 36 bits in LSB/MSB pairs), which are not cleared on read: the driver adds the difference
//! to the previous reading, modulo the counter width, and takes a new base after every
//! reset. The VF has no drop counter, so `rx_dropped` stays 0.

pub mod regs;

use std::time::Duration;

use crate::error::{Error, Result};
use crate::intel::mailbox::MailboxAt;
use crate::intel::mailbox::{self, XcastMode, msg};
use crate::intel::shell::IntelDevice;
use crate::intel::shell::Queues2;
use crate::intel::vf::VfDriver;
use crate::ixgbe::Options;
use crate::pci::DriverKind;
use crate::registers::{MmioRegion, RegisterSpace};

pub use crate::intel::mailbox::ApiVersion;
pub use crate::intel::vf::{PF_CHECK_INTERVAL, Vf};

/// PCI device ids of the Intel 10 GbE SR-IOV virtual functions the ixgbevf driver handles
/// (Linux `drivers/net/ethernet/intel/ixgbevf/defines.h`). The Hyper-V variants (0x152e,
/// 0x1530, 0x1564, 0x15a9) talk to the PF through the hypervisor, not the mailbox, and are
/// not included.
pub const DEVICE_IDS: &[(u16, &str)] = &[
    (0x10ed, "82599 VF"),
    (0x1515, "X540 VF"),
    (0x1565, "X550 VF"),
    (0x15a8, "X550EM_x VF"),
    (0x15c5, "X550EM_a VF"),
];

/// Most queues of either kind a VF has (Linux `IXGBE_VF_MAX_TX_QUEUES`); the PF may give
/// fewer (GET_QUEUES).
pub const MAX_QUEUES: u16 = 8;
/// Default time for each mailbox step and for a PF reset to finish (Linux allows 2000
/// polls of 500 µs).
pub const DEFAULT_MAILBOX_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest frame (with CRC) the VF asks the PF to accept (SET_LPE): standard Ethernet.
const MAX_FRAME: u32 = 1518;
/// Without RSS the 82599 puts all of a pool's frames in its first queue. The 82599 VF's
/// RSS is the PF's (MRQC, key and redirection table; the VF picks only the queue count,
/// VFPSRTYPE.RQPL, Linux `ixgbevf_setup_psrtype`), the X550 VF's VFMRQC/VFRETA are not in
/// the 82599 model: one receive queue.
const ONE_RX_QUEUE: &str = " (it receives on one queue: it programs no RSS, so the device \
                            would deliver every frame to queue 0)";

/// How to set up a virtual function (also an 82576 one, [`crate::igbvf`]): queues (rx: 1,
/// see the driver's docs; tx: at most [`MAX_QUEUES`], and what the PF offers), rings,
/// pools, link wait and promiscuous mode (off by default).
pub type IxgbevfOptions = Options<VfOptions>;

/// What only a virtual function has.
#[derive(Debug, Clone)]
pub struct VfOptions {
    /// Longest wait for each mailbox step and for a PF reset to finish.
    pub mailbox_timeout: Duration,
}

impl Default for IxgbevfOptions {
    fn default() -> Self {
        let only = VfOptions {
            mailbox_timeout: DEFAULT_MAILBOX_TIMEOUT,
        };
        Options::with(only, false)
    }
}

impl IxgbevfOptions {
    /// Sets the mailbox timeout.
    pub fn mailbox_timeout(mut self, timeout: Duration) -> Self {
        self.mailbox_timeout = timeout;
        self
    }
}

/// An Intel 10 GbE virtual function.
///
/// `R` is the register space (the VF's BAR0): [`MmioRegion`] on hardware
/// ([`IxgbevfDevice::open`]), the device model's VF in tests
/// ([`IxgbevfDevice::with_registers`]).
pub type IxgbevfDevice<R = MmioRegion> = IntelDevice<Vf<Ixgbevf>, R>;

/// What only an ixgbevf device knows.
#[derive(Default)]
pub struct Ixgbevf {
    api: ApiVersion,
}

impl<R: RegisterSpace> IxgbevfDevice<R> {
    /// Step 3: the newest API version the PF accepts.
    fn negotiate_api(&self) -> Result<ApiVersion> {
        for api in ApiVersion::NEWEST_FIRST {
            let reply = self.request(&[msg::API_NEGOTIATE, api as u32])?;
            if reply.acked() {
                return Ok(api);
            }
            log::debug!("{}: PF refused mailbox API {}", self.shell.name, api.name());
        }
        Err(self.shell.err(
            "the PF refused every mailbox API version this driver speaks (1.4, 1.3, 1.2, 1.1, \
             1.0), answering each with NACK; the PF driver is incompatible (too old or not \
             Linux-compatible)",
        ))
    }

    /// Step 4: the queues the PF gives this VF (GET_QUEUES; one of each before API 1.1)
    /// must cover the ones asked for. With more than one traffic class the VF transmits on
    /// one queue, the PF's default one (Linux `ixgbevf_configure_dcb`), which must not
    /// move while the VF has rings on it.
    fn check_queue_counts(&mut self) -> Result<()> {
        let api = self.d.x.api.name();
        let (mut tx, mut rx, mut first) = (1, 1, 0);
        if self.d.x.api >= ApiVersion::V1_1 {
            let refused =
                |_: &_| format!("the PF refused GET_QUEUES though it agreed to API {api}");
            let w = self.ask(&[msg::GET_QUEUES], refused)?.words;
            let (name, tcs, def_q) = (&self.shell.name, w[msg::TRAFFIC_CLASSES], w[msg::DEF_QUEUE]);
            log::debug!("{name}: PF: {tcs} traffic classes, default queue {def_q}");
            (tx, rx, first) = match tcs > 1 {
                true => (1, w[msg::RX_QUEUES], def_q as usize),
                false => (w[msg::TX_QUEUES], w[msg::RX_QUEUES], 0),
            };
        }
        if !self.shell.tx.is_empty() && first != self.d.tx_first {
            let moved = "the PF moved the default queue; open the VF again";
            return Err(self.shell.err(moved));
        }
        self.d.tx_first = first;
        let o = &self.d.options;
        if u32::from(o.rx_queues) > rx || u32::from(o.tx_queues) > tx {
            let (name, want) = (&self.shell.name, (o.rx_queues, o.tx_queues));
            return Err(Error::config(format!(
                "{name}: the PF gives this VF {rx} rx and {tx} tx queues (mailbox API {api}); \
                 {want:?} (rx, tx) were requested"
            )));
        }
        Ok(())
    }

    /// The mailbox API version agreed with the PF.
    pub fn api_version(&self) -> ApiVersion {
        self.d.x.api
    }
}

impl<R: RegisterSpace> VfDriver<R> for IxgbevfDevice<R> {
    const KIND: DriverKind = DriverKind::Ixgbevf;
    const RX_RING_SIZE: usize = crate::ixgbe::DEFAULT_RX_RING_SIZE;

    const MAILBOX: MailboxAt = mailbox::AT_IXGBEVF;
    /// VFGPRC/VFGPTC: 32 bits; VFGORC/VFGOTC: the LSB register and 4 bits of the MSB.
    const COUNTER_BITS: [u32; 4] = [32, 32, 36, 36];
    const QUEUE_REGS: Queues2 = [regs::rx_queue, regs::tx_queue];
    const HW_QUEUES: usize = MAX_QUEUES as usize;
    const EIMC: (usize, u32) = (regs::VTEIMC, regs::VTEIMC_ALL);
    const MAX_QUEUES: ([u16; 2], &'static str) = ([1, MAX_QUEUES], ONE_RX_QUEUE);

    /// Steps 3 and 4: API version, queue counts.
    fn negotiate(&mut self) -> Result<()> {
        self.d.x.api = self.negotiate_api()?;
        log::info!("{}: mailbox API {}", self.shell.name, self.d.x.api.name());
        self.check_queue_counts()
    }

    /// Steps 5 to 7 with the rings the device already has.
    fn start(&mut self) -> Result<()> {
        if !self.request(&[msg::SET_LPE, MAX_FRAME])?.acked() {
            let name = &self.shell.name;
            log::warn!("{name}: the PF refused frames of up to {MAX_FRAME} bytes (SET_LPE)");
        }
        let bits = crate::ixgbe::SRRCTL_BITS;
        self.start_rings(regs::vfsrrctl, bits, regs::VFTXDCTL_THRESH)?;
        let want = self.d.options.promisc;
        if (want || self.d.x.api >= ApiVersion::V1_2)
            && let Err(e) = crate::IxyDevice::set_promisc(self, want)
        {
            if want {
                return Err(e);
            }
            log::warn!("{}: {e}", self.shell.name);
        }
        self.register_mac()?;
        self.wait_for_link(&self.d.options, || self.link(), ("VFLINKS", regs::VFLINKS))
    }

    /// Link speed in Mbit/s from VFLINKS (8.3; the PF's LINKS): 0 while down. The VF does
    /// not know its MAC, so LINKS.NON_STD (X550 2.5/5 Gb/s) is not decoded.
    fn link(&self) -> u32 {
        crate::ixgbe::links_speed(self.shell.regs.read32(regs::VFLINKS), false)
    }

    /// UPDATE_XCAST_MODE: promiscuous, or back to multicast. Needs mailbox API 1.3 (1.2
    /// to turn it off) and a PF that allows it (not 82599 PFs; X540/X550 PFs for trusted
    /// VFs whose PF is promiscuous itself); an error names the reason.
    fn promisc_request(&mut self, enabled: bool) -> Result<()> {
        let (mode, needs) = if enabled {
            (XcastMode::Promisc, ApiVersion::V1_3)
        } else {
            (XcastMode::Multi, ApiVersion::V1_2)
        };
        let wanted = XcastMode::describe(mode as u32);
        let api = self.d.x.api;
        if api < needs {
            let (needs, api) = (needs.name(), api.name());
            let e =
                format!("{wanted} mode needs mailbox API {needs} or later; the PF agreed to {api}");
            return Err(self.shell.err(e));
        }
        let refused = |_: &_| {
            format!(
                "the PF refused {wanted} mode (UPDATE_XCAST_MODE NACK): 82599 PFs never allow \
                 promiscuous VFs; X540/X550 PFs allow it for a trusted VF (`ip link set <pf> \
                 vf <n> trust on`) while the PF itself is promiscuous"
            )
        };
        let reply = self.ask(&[msg::UPDATE_XCAST_MODE, mode as u32], refused)?;
        if reply.words[1] != mode as u32 {
            let granted = XcastMode::describe(reply.words[1]);
            return Err(self.shell.err(format!(
                "the PF granted {granted} mode instead of {wanted}: the VF is not trusted (`ip \
                 link set <pf> vf <n> trust on`)"
            )));
        }
        Ok(())
    }

    /// VFGPRC, VFGPTC (32 bits), VFGORC, VFGOTC (LSB and 4 bits of MSB).
    fn counter_values(&self) -> [u64; 4] {
        let r = |reg| u64::from(self.shell.regs.read32(reg));
        let pair = |[lsb, msb]: [usize; 2]| r(lsb) | (r(msb) & 0xf) << 32;
        [
            r(regs::VFGPRC),
            r(regs::VFGPTC),
            pair(regs::VFGORC),
            pair(regs::VFGOTC),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let check = |rx, tx| {
            let o = IxgbevfOptions::default().queues(rx, tx);
            o.check_queues("ixgbevf", [1, MAX_QUEUES], ONE_RX_QUEUE)
                .unwrap_err()
                .to_string()
        };
        assert!(
            check(2, 1).contains(
                "2 rx queues requested: ixgbevf supports 1 to 1 (it receives on one queue"
            )
        );
        assert!(check(1, 9).contains("9 tx queues requested: ixgbevf supports 1 to 8"));
        assert!(check(1, 0).contains("0 tx queues"));
        let o = IxgbevfOptions::default();
        o.check_queues("ixgbevf", [1, MAX_QUEUES], ONE_RX_QUEUE)
            .unwrap();
        assert!(!o.promisc);
    }
}
