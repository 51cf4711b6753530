//! The PF side of SR-IOV: a model of what the Linux ixgbe PF driver does for its virtual
//! functions (`drivers/net/ethernet/intel/ixgbe/ixgbe_sriov.c`): it brings the port up,
//! answers the VFs' mailbox messages, programs their MAC filters, and can reset the device
//! under them.
//!
//! Behaviour, per message (word 0 bits 15:0; replies or ACK / NACK and CTS into word 0):
//! * RESET (0x01): the VF's MAC filter is (re)programmed, the VF becomes clear to send, the
//!   reply is `RESET | ACK`, the MAC in words 1-2 (bytes in memory order, as Linux copies
//!   them) and the multicast filter type (0) in word 3;
//! * before a RESET, every other message is answered with NACK and without CTS;
//! * API_NEGOTIATE (0x08): ACK for a version in the PF's list (default 1.0 to 1.4), NACK
//!   otherwise;
//! * GET_QUEUES (0x09): with API 1.1 or later, [`QUEUES_PER_POOL`] tx and rx queues, no
//!   transparent VLAN, default queue 0; NACK with API 1.0;
//! * SET_MAC_ADDR (0x02): NACK for a multicast or zero address, and for a change of the
//!   PF-assigned address unless the VF is trusted;
//! * SET_LPE (0x05): ACK (frames up to 1518 bytes always fit);
//! * UPDATE_XCAST_MODE (0x0C): API 1.2 or later (promiscuous: 1.3 or later); an untrusted
//!   VF asking for more than multicast gets multicast (ACK, the granted mode in word 1);
//!   promiscuous is NACKed unless allowed with [`Model::set_pf_allows_vf_promisc`] (an 82599
//!   PF never allows it; X540/X550 PFs do while they are promiscuous themselves). The model
//!   grants promiscuous or all-multicast reception by setting FCTRL.UPE / FCTRL.MPE on the
//!   port, standing in for the per-pool VMOLR bits it does not model;
//! * anything else: NACK.

use super::lock;
use super::regs::*;
use super::vf::{VfState, mbx};
use super::{Completion, Model, ModelInner, Port};

/// Queues of each VF (the 82599 in 64-pool mode: 2 queues per pool). VF `n`'s queue `q` is
/// the port's queue `2n + q`.
pub const QUEUES_PER_POOL: usize = 2;

/// VFs a port can have in the model (their queues stay in the port's first 64).
pub const MAX_VFS: usize = 32;

/// VFMAILBOX reads by a VF during which a PF reset stays in progress (RSTI), standing in
/// for the PF driver's re-initialisation time.
pub const PF_RESET_READS: u32 = 3;

/// Mailbox API versions (Linux numbering) the PF accepts by default: 1.0, 1.1, 1.2, 1.3
/// and 1.4 (2.0, number 1, is Solaris').
pub const DEFAULT_API_VERSIONS: [u32; 5] = [0, 2, 3, 4, 5];

/// The PF driver's settings for one port.
#[derive(Debug, Clone)]
pub(crate) struct PfSide {
    pub(crate) port: usize,
    /// Never answers the mailbox.
    pub(crate) silent: bool,
    /// Accepted API versions.
    pub(crate) apis: Vec<u32>,
    /// Allows trusted VFs promiscuous mode.
    pub(crate) promisc_allowed: bool,
    /// VFs created on this port.
    pub(crate) vfs: usize,
}

/// SR-IOV state of the model: the PF driver of each port with VFs, and the VFs.
#[derive(Default)]
pub(crate) struct Sriov {
    pub(crate) pfs: Vec<PfSide>,
    pub(crate) vfs: Vec<VfState>,
}

impl Sriov {
    pub(crate) fn pf(&self, port: usize) -> Option<&PfSide> {
        self.pfs.iter().find(|p| p.port == port)
    }

    fn pf_mut(&mut self, port: usize) -> Option<&mut PfSide> {
        self.pfs.iter_mut().find(|p| p.port == port)
    }
}

/// The MAC address the modelled PF assigns to VF `vf` of port `port` (locally
/// administered).
pub(crate) fn assigned_mac(port: usize, vf: usize) -> [u8; 6] {
    [0x02, 0x10, 0xed, port as u8, (vf >> 8) as u8, vf as u8]
}

/// Message ids (Linux `ixgbe_mbx.h`).
mod id {
    pub(super) const RESET: u32 = 0x01;
    pub(super) const SET_MAC_ADDR: u32 = 0x02;
    pub(super) const SET_LPE: u32 = 0x05;
    pub(super) const API_NEGOTIATE: u32 = 0x08;
    pub(super) const GET_QUEUES: u32 = 0x09;
    pub(super) const UPDATE_XCAST_MODE: u32 = 0x0c;
    pub(super) const ACK: u32 = 0x8000_0000;
    pub(super) const NACK: u32 = 0x4000_0000;
    pub(super) const CTS: u32 = 0x2000_0000;
}

/// API version numbers (Linux `enum ixgbe_pfvf_api_rev`).
const API_10: u32 = 0;
const API_12: u32 = 3;
const API_13: u32 = 4;
/// Xcast modes (Linux `enum ixgbevf_xcast_modes`).
const XCAST_MULTI: u32 = 1;
const XCAST_ALLMULTI: u32 = 2;
const XCAST_PROMISC: u32 = 3;

fn valid_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

impl ModelInner {
    /// The PF driver brings port `p` up for its VFs (like `ixgbe_up` with SR-IOV): CRC
    /// stripping, broadcast, transmit DMA, 10 Gb/s serial link with auto-negotiation
    /// restarted. Receive (RXCTRL.RXEN) follows with the first VF queue enabled.
    pub(crate) fn pf_bring_up(&mut self, p: usize) {
        // All receive packet buffer to buffer 0 with its flow control threshold, and the
        // RDRXCTL bits software must set (§4.6.3.2, §4.6.11.3.4, §8.2.3.8.8).
        for n in 1..8 {
            self.write(p, RXPBSIZE + 4 * n, 0);
        }
        let pb = self.read(p, RXPBSIZE);
        self.write(p, FCRTH, pb - 0x6000);
        let rdrxctl = self.read(p, RDRXCTL) & !RDRXCTL_RSCFRSTSIZE;
        self.write(
            p,
            RDRXCTL,
            rdrxctl | RDRXCTL_CRCSTRIP | RDRXCTL_RSCACKC | RDRXCTL_FCOE_WRFIX,
        );
        let fctrl = self.read(p, FCTRL);
        self.write(p, FCTRL, fctrl | FCTRL_BAM);
        let dmatxctl = self.read(p, DMATXCTL);
        self.write(p, DMATXCTL, dmatxctl | DMATXCTL_TE);
        // Laser on (as Linux `ixgbe_enable_tx_laser_multispeed_fiber`).
        let esdp = self.read(p, ESDP);
        self.write(p, ESDP, esdp & !ESDP_SDP3);
        let autoc = self.read(p, AUTOC) & !AUTOC_LMS_MASK;
        let autoc = autoc | AUTOC_LMS_10G_SERIAL << AUTOC_LMS_SHIFT;
        self.write(p, AUTOC, autoc);
        self.write(p, AUTOC, autoc | AUTOC_RESTART_AN);
    }

    /// The PF resets the device (CTRL.RST) under its VFs: their queues stop, VFMAILBOX
    /// shows RSTI for [`PF_RESET_READS`] reads, then RSTD; the PF brings the port up again
    /// and forgets the VFs' negotiated state until each sends RESET.
    pub(crate) fn pf_reset(&mut self, p: usize) {
        // Master disable first (§4.2.1.6.1), ~1 ms before touching a register after
        // CTRL.RST (§8.2.3.1.1), then CTRL.RST self-clears; the PF driver polls it.
        // Like Linux `ixgbe_down`, every queue is stopped (and waited for) first.
        self.ports[p].stop_queues(0..NUM_QUEUES);
        let ctrl = self.read(p, CTRL);
        self.write(p, CTRL, ctrl | CTRL_MASTER_DISABLE);
        // Bounded polls: a completion held back (Model::hold_back) must not hang the model.
        let poll = |m: &mut Self, reg, bit| (0..1000).any(|_| m.read(p, reg) & bit == 0);
        poll(self, STATUS, STATUS_GIO_MASTER_ENABLE);
        self.write(p, CTRL, CTRL_RST);
        std::thread::sleep(std::time::Duration::from_millis(1));
        poll(self, CTRL, CTRL_RST);
        self.pf_bring_up(p);
        let snapshot = self.ports[p].wire;
        for vf in self.sriov.vfs.iter_mut().filter(|v| v.port == p) {
            vf.mailbox = mbx::RSTI;
            vf.rsti_reads = PF_RESET_READS;
            vf.forget_pf_state();
            vf.unacked = false;
            vf.pending = None;
            vf.restart_counters(snapshot);
        }
    }

    /// Recomputes FCTRL.UPE / FCTRL.MPE of port `p` from its VFs' xcast modes.
    pub(crate) fn pf_apply_xcast(&mut self, p: usize) {
        let modes = self.sriov.vfs.iter().filter(|v| v.port == p);
        let max = modes.map(|v| v.xcast).max().unwrap_or(0);
        let mut fctrl = self.read(p, FCTRL) & !(FCTRL_UPE | FCTRL_MPE);
        if max >= XCAST_ALLMULTI {
            fctrl |= FCTRL_MPE;
        }
        if max >= XCAST_PROMISC {
            fctrl |= FCTRL_UPE;
        }
        // Filters change only with receive off (§8.2.3.7.1).
        let rxctrl = self.read(p, RXCTRL);
        self.write(p, RXCTRL, rxctrl & !RXCTRL_RXEN);
        self.write(p, FCTRL, fctrl);
        // Back on if a queue still runs; otherwise the next VF queue enable turns it on.
        if rxctrl & RXCTRL_RXEN != 0 && self.ports[p].any_rx_queue_enabled() {
            self.pf_enable_rx(p);
        }
    }

    /// The PF driver sets RXCTRL.RXEN with the receive data path halted (§4.6.7).
    pub(crate) fn pf_enable_rx(&mut self, p: usize) {
        let secrxctrl = self.read(p, SECRXCTRL);
        self.write(p, SECRXCTRL, secrxctrl | SECRXCTRL_RX_DIS);
        while self.read(p, SECRXSTAT) & SECRXSTAT_SECRX_RDY == 0 {}
        let rxctrl = self.read(p, RXCTRL);
        self.write(p, RXCTRL, rxctrl | RXCTRL_RXEN);
        self.write(p, SECRXCTRL, secrxctrl & !SECRXCTRL_RX_DIS);
    }

    /// Programs (or with `None` removes) the receive address entry of VF `vf` (entry
    /// 1 + VF number; entry 0 is the PF's).
    pub(crate) fn pf_set_vf_filter(&mut self, vf: usize, mac: Option<[u8; 6]>) {
        let (p, n) = (self.sriov.vfs[vf].port, self.sriov.vfs[vf].number);
        let ral = RAL + 8 * (1 + n);
        match mac {
            Some(m) => {
                self.write(p, ral, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
                self.write(p, ral + 4, u32::from_le_bytes([m[4], m[5], 0, 0]) | RAH_AV);
            }
            None => self.write(p, ral + 4, 0),
        }
    }

    /// The VF posted a message (VFMAILBOX.REQ): the PF acknowledges it, handles it and
    /// writes its reply, unless it is silent or resetting.
    pub(crate) fn pf_receive(&mut self, vf: usize) {
        let p = self.sriov.vfs[vf].port;
        let silent = self.sriov.pf(p).is_none_or(|pf| pf.silent);
        if silent
            || self.ports[p].held(Completion::PfAck)
            || self.sriov.vfs[vf].mailbox & mbx::RSTI != 0
        {
            return;
        }
        let mut words = self.sriov.vfs[vf].mbmem;
        self.sriov.vfs[vf].log.push(words[0]);
        self.sriov.vfs[vf].mailbox |= mbx::PFACK;
        // A message with ACK/NACK already set was processed before (Linux ignores it).
        if words[0] & (id::ACK | id::NACK) != 0 || self.ports[p].held(Completion::PfReply) {
            return;
        }
        let len = if words[0] == id::RESET {
            self.pf_reset_msg(vf, &mut words);
            4
        } else if !self.sriov.vfs[vf].clear_to_send {
            words[0] |= id::NACK;
            1
        } else {
            let ok = match words[0] & 0xffff {
                id::SET_MAC_ADDR => self.pf_set_mac_msg(vf, &words),
                id::SET_LPE => true,
                id::API_NEGOTIATE => self.pf_negotiate(vf, words[1]),
                id::GET_QUEUES => self.pf_get_queues(vf, &mut words),
                id::UPDATE_XCAST_MODE => self.pf_xcast(vf, &mut words),
                _ => false,
            };
            words[0] |= if ok { id::ACK } else { id::NACK } | id::CTS;
            mbx::WORDS
        };
        self.pf_post(vf, words, len);
    }

    /// The PF writes a message (`len` words) to VF `vf`: at once if the VF acknowledged
    /// (VFMAILBOX.ACK) the PF's previous message, otherwise once it does. Linux's PF waits
    /// for the VF's ACK after every message it posts (`ixgbe_write_posted_mbx`,
    /// `ixgbe_poll_for_ack` in `ixgbe_mbx.c`), so a VF that never ACKs gets no more.
    pub(crate) fn pf_post(&mut self, vf: usize, words: [u32; mbx::WORDS], len: usize) {
        let v = &mut self.sriov.vfs[vf];
        if v.unacked {
            v.pending = Some((words, len));
            return;
        }
        v.mbmem[..len].copy_from_slice(&words[..len]);
        v.mailbox |= mbx::PFSTS;
        v.unacked = true;
    }

    fn pf_reset_msg(&mut self, vf: usize, words: &mut [u32; mbx::WORDS]) {
        let mac = self.sriov.vfs[vf].mac;
        // No address yet (Linux: a zero `vf_mac`): no filter, and RESET answered with
        // NACK and no address; the VF is clear to send all the same.
        let assigned = mac != [0; 6];
        self.pf_set_vf_filter(vf, assigned.then_some(mac));
        let v = &mut self.sriov.vfs[vf];
        v.forget_pf_state();
        v.clear_to_send = true;
        *words = [0; mbx::WORDS];
        words[0] = id::RESET | if assigned { id::ACK } else { id::NACK };
        words[1] = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        words[2] = u32::from_le_bytes([mac[4], mac[5], 0, 0]);
        // Word 3: the multicast filter type (MCSTCTRL.MO), 0 after reset.
        words[3] = 0;
        let p = v.port;
        self.pf_apply_xcast(p);
    }

    fn pf_set_mac_msg(&mut self, vf: usize, words: &[u32; mbx::WORDS]) -> bool {
        let a = words[1].to_le_bytes();
        let b = words[2].to_le_bytes();
        let mac = [a[0], a[1], a[2], a[3], b[0], b[1]];
        let v = &self.sriov.vfs[vf];
        if !valid_unicast(&mac) || (!v.trusted && v.pf_set_mac && mac != v.mac) {
            return false;
        }
        self.sriov.vfs[vf].mac = mac;
        self.pf_set_vf_filter(vf, Some(mac));
        true
    }

    fn pf_negotiate(&mut self, vf: usize, api: u32) -> bool {
        let p = self.sriov.vfs[vf].port;
        let ok = self.sriov.pf(p).is_some_and(|pf| pf.apis.contains(&api));
        if ok {
            self.sriov.vfs[vf].api = api;
        }
        ok
    }

    fn pf_get_queues(&mut self, vf: usize, words: &mut [u32; mbx::WORDS]) -> bool {
        if self.sriov.vfs[vf].api == API_10 {
            return false;
        }
        words[1] = QUEUES_PER_POOL as u32;
        words[2] = QUEUES_PER_POOL as u32;
        [words[3], words[4]] = self.sriov.vfs[vf].tcs;
        true
    }

    fn pf_xcast(&mut self, vf: usize, words: &mut [u32; mbx::WORDS]) -> bool {
        let v = &self.sriov.vfs[vf];
        let p = v.port;
        let mut mode = words[1];
        if v.api < API_12 || (mode == XCAST_PROMISC && v.api < API_13) || mode > XCAST_PROMISC {
            return false;
        }
        if mode > XCAST_MULTI && !v.trusted {
            mode = XCAST_MULTI;
        }
        if mode == XCAST_PROMISC && !self.sriov.pf(p).is_some_and(|pf| pf.promisc_allowed) {
            return false;
        }
        self.sriov.vfs[vf].xcast = mode;
        self.pf_apply_xcast(p);
        words[1] = mode;
        true
    }
}

impl Model {
    fn pf_settings(&self, pf: &Port, f: impl FnOnce(&mut PfSide)) {
        let p = self.check_port(pf);
        let mut inner = lock(&self.inner);
        match inner.sriov.pf_mut(p) {
            Some(side) => f(side),
            None => panic!("82599 model: port {p} has no VFs (Model::add_vf first)"),
        }
    }

    /// Makes the PF driver of `pf` stop answering the mailbox (`silent`), or answer again.
    pub fn set_pf_silent(&self, pf: &Port, silent: bool) {
        self.pf_settings(pf, |s| s.silent = silent);
    }

    /// The mailbox API versions the PF of `pf` accepts, as numbered on the wire (Linux
    /// `enum ixgbe_pfvf_api_rev`: 0 = 1.0, 2 = 1.1, 3 = 1.2, 4 = 1.3, 5 = 1.4).
    pub fn set_pf_api_versions(&self, pf: &Port, versions: &[u32]) {
        self.pf_settings(pf, |s| s.apis = versions.to_vec());
    }

    /// Lets the PF of `pf` grant promiscuous mode to trusted VFs (an X540/X550 PF that is
    /// itself promiscuous), or not (an 82599 PF: the default).
    pub fn set_pf_allows_vf_promisc(&self, pf: &Port, allowed: bool) {
        self.pf_settings(pf, |s| s.promisc_allowed = allowed);
    }

    /// Resets `pf` as its PF driver would mid-run (see [`PF_RESET_READS`]): the VFs'
    /// queues stop and their mailboxes show a reset until they initialise again.
    pub fn pf_reset(&self, pf: &Port) {
        let p = self.check_port(pf);
        lock(&self.inner).pf_reset(p);
    }
}
