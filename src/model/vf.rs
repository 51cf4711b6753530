//! SR-IOV virtual functions of a modelled 82599 port: each VF's BAR0 (datasheet 8.3, offsets
//! as in Linux `ixgbevf/regs.h`) as a [`RegisterSpace`] ([`VfRegisters`]).
//!
//! A VF's queue registers are windows onto the port's queues of its pool (VF `n`, queue
//! `q` = port queue `QUEUES_PER_POOL * n + q`): the model forwards them to the port, so the
//! PF's rules (ring alignment, enable before tail, DMA checks...) and its data path apply to
//! VF queues unchanged. Frames from a wire or [`Model::inject`] arrive at the port queue
//! the port's MRQC steers them to (queue 0 with the reset value), which is VF 0's queue 0
//! (the model does not steer by pool); reach another VF with [`Model::inject_to_vf`],
//! which delivers to the VF's first queue: the PF model enables no RSS for the pools
//! (it writes no MRQC, §8.2.3.7.12, and the VF's VFPSRTYPE is not consulted), so on the
//! 82599 every frame of a pool goes to the pool's queue 0.
//!
//! What the VF has of its own:
//! * VFCTRL.RST: a VF reset: its queues stop, the PF forgets its negotiated state and MAC
//!   filter until the next RESET message;
//! * VFLINKS / VFSTATUS: the port's LINKS / STATUS;
//! * VFMAILBOX / VFMBMEM (8.3.5): the mailbox, answered by the PF model ([`super::pf`]);
//!   writing VFMBMEM without holding the buffer (VFU) breaks a rule;
//! * VFGPRC, VFGPTC (32 bits), VFGORC, VFGOTC (36 bits, LSB/MSB): rolling counters, not
//!   cleared on read, counting the port's traffic (with one VF per port, the VF's); the
//!   octet counters include the CRC, like GORC/GOTC. They restart from 0 at a PF reset and
//!   can be preset near their wrap ([`Model::preset_vf_counters`]).
//!
//! Everything else reads back as written.

use std::sync::{Arc, Mutex};

use super::lock;
use super::pf::{self, MAX_VFS, PfSide, QUEUES_PER_POOL};
use super::regs::*;
use super::{Completion, Model, ModelInner, Port, WireStats};
use crate::error::{Error, Result};
use crate::ixgbevf::{IxgbevfDevice, IxgbevfOptions};
use crate::registers::RegisterSpace;

/// VFMAILBOX bits and the message buffer size (8.3.5; Linux `mbx.h`).
pub(crate) mod mbx {
    pub(crate) const REQ: u32 = 1 << 0;
    pub(crate) const ACK: u32 = 1 << 1;
    pub(crate) const VFU: u32 = 1 << 2;
    pub(crate) const PFSTS: u32 = 1 << 4;
    pub(crate) const PFACK: u32 = 1 << 5;
    pub(crate) const RSTI: u32 = 1 << 6;
    pub(crate) const RSTD: u32 = 1 << 7;
    /// Bits cleared by a read.
    pub(crate) const R2C: u32 = PFSTS | PFACK | RSTD;
    pub(crate) const WORDS: usize = 16;
}

/// Size of a VF's BAR0 (16 KiB).
const VF_BAR_SIZE: usize = 0x4000;
const VFCTRL: usize = 0x00000;
const VFCTRL_RST: u32 = 1 << 26;
const VFSTATUS: usize = 0x00008;
const VFLINKS: usize = 0x00010;
const VFMBMEM: usize = 0x00200;
const VFMAILBOX: usize = 0x002fc;
/// VF rx queue registers: queue q at 0x01000 + 0x40 q; tx at 0x02000 + 0x40 q.
const VF_RXQ: usize = 0x01000;
const VF_TXQ: usize = 0x02000;
/// Queue register windows a VF has (Linux `IXGBE_VF_MAX_RX_QUEUES`).
const VF_QUEUE_SLOTS: usize = 8;
const VFGPRC: usize = 0x0101c;
const VFGORC_LSB: usize = 0x01020;
const VFGORC_MSB: usize = 0x01024;
const VFGPTC: usize = 0x0201c;
const VFGOTC_LSB: usize = 0x02020;
const VFGOTC_MSB: usize = 0x02024;

/// Rolling counters: a base snapshot of the port's wire counts and a preset.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    base: WireStats,
    /// rx packets, tx packets, rx octets, tx octets at the base.
    preset: [u64; 4],
}

/// One VF, and what the PF driver keeps about it.
pub(crate) struct VfState {
    pub(crate) port: usize,
    /// VF number on its port.
    pub(crate) number: usize,
    /// Plain storage for registers that read back as written.
    regs: Box<[u32]>,
    /// VFMAILBOX as the VF sees it.
    pub(crate) mailbox: u32,
    pub(crate) mbmem: [u32; mbx::WORDS],
    /// VFMAILBOX reads left until a PF reset is done.
    pub(crate) rsti_reads: u32,
    counters: Counters,
    // The PF driver's data for this VF (Linux `struct vf_data_storage`).
    pub(crate) mac: [u8; 6],
    pub(crate) clear_to_send: bool,
    pub(crate) api: u32,
    pub(crate) xcast: u32,
    pub(crate) trusted: bool,
    /// GET_QUEUES words 3 and 4: traffic classes (Linux `IXGBE_VF_TRANS_VLAN`) and the
    /// default queue.
    pub(crate) tcs: [u32; 2],
    /// The host assigned `mac` (Linux `pf_set_mac`): the VF may not change it unless
    /// trusted. False for a VF the host gave no MAC.
    pub(crate) pf_set_mac: bool,
    /// Word 0 of every message the PF received.
    pub(crate) log: Vec<u32>,
    /// A driver's register handle ([`VfRegisters`] from [`Model::ixgbevf`]) is live.
    pub(crate) driver: bool,
    /// The PF's last message is not acknowledged yet (VFMAILBOX.ACK).
    pub(crate) unacked: bool,
    /// A message the PF holds back until that acknowledgement.
    pub(crate) pending: Option<([u32; mbx::WORDS], usize)>,
}

impl VfState {
    /// A VF reset or a PF reset: the PF forgets what the VF negotiated.
    pub(crate) fn forget_pf_state(&mut self) {
        self.clear_to_send = false;
        self.api = 0;
        self.xcast = 0;
    }

    pub(crate) fn restart_counters(&mut self, wire: WireStats) {
        self.counters = Counters {
            base: wire,
            preset: [0; 4],
        };
    }

    fn counter(&self, wire: &WireStats, which: usize) -> u64 {
        let b = &self.counters.base;
        let rx = wire.rx_frames - b.rx_frames;
        let tx = wire.tx_frames - b.tx_frames;
        let delta = match which {
            0 => rx,
            1 => tx,
            2 => wire.rx_bytes - b.rx_bytes + 4 * rx,
            _ => wire.tx_bytes - b.tx_bytes + 4 * tx,
        };
        let width = if which < 2 { 32 } else { 36 };
        self.counters.preset[which].wrapping_add(delta) & ((1u64 << width) - 1)
    }
}

/// One virtual function of a modelled 82599 port: a safe handle for observing and
/// steering it ([`Model::inject_to_vf`], [`Model::vf_mac`]...) and for opening a driver
/// on it ([`Model::ixgbevf`]). Clones refer to the same VF. Its BAR0 is [`VfRegisters`].
#[derive(Clone)]
pub struct VfPort {
    model: Arc<Mutex<ModelInner>>,
    index: usize,
}

impl std::fmt::Debug for VfPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfPort")
            .field("index", &self.index)
            .finish()
    }
}

impl VfPort {
    /// The VF's number on its port (0 for the first `add_vf` on that port).
    pub fn number(&self) -> usize {
        lock(&self.model).sriov.vfs[self.index].number
    }

    /// Index of the port (PF) the VF belongs to.
    pub fn port_index(&self) -> usize {
        lock(&self.model).sriov.vfs[self.index].port
    }

    /// Raw access to the VF's BAR0, as a driver has it: a [`RegisterSpace`].
    ///
    /// # Safety
    /// As for [`Port::registers`](super::Port::registers): the caller must make sure that
    /// nothing written through the handle makes the device write memory that Rust code
    /// holds a reference to (no writes to the queue registers of a ring a driver uses).
    pub unsafe fn registers(&self) -> VfRegisters {
        VfRegisters {
            vf: self.clone(),
            driver: false,
        }
    }
}

/// BAR0 of a modelled VF as a [`RegisterSpace`]: what the ixgbevf driver runs on. Get one
/// with [`Model::ixgbevf`] (inside the driver) or with the unsafe [`VfPort::registers`].
/// Dereferences to its [`VfPort`].
#[derive(Debug)]
pub struct VfRegisters {
    vf: VfPort,
    /// Made by [`Model::ixgbevf`]: the VF's one driver. Dropping it releases the VF.
    driver: bool,
}

impl std::ops::Deref for VfRegisters {
    type Target = VfPort;
    fn deref(&self) -> &VfPort {
        &self.vf
    }
}

impl RegisterSpace for VfRegisters {
    #[inline(never)]
    fn read32(&self, offset: usize) -> u32 {
        lock(&self.vf.model).vf_read(self.vf.index, offset)
    }

    #[inline(never)]
    fn write32(&self, offset: usize, value: u32) {
        lock(&self.vf.model).vf_write(self.vf.index, offset, value)
    }
}

impl Drop for VfRegisters {
    /// As for [`PortRegisters`](super::PortRegisters): the VF's queues stop before the
    /// driver's memory is freed, and the VF takes a new driver.
    fn drop(&mut self) {
        if !self.driver {
            return;
        }
        let mut inner = lock(&self.vf.model);
        let first = inner.vf_queue(self.vf.index, 0);
        let v = &mut inner.sriov.vfs[self.vf.index];
        v.driver = false;
        let p = v.port;
        let running = inner.ports[p].stop_queues(first..first + QUEUES_PER_POOL);
        drop(inner);
        if running && !std::thread::panicking() {
            violated(
                self.vf.index,
                super::port::rule::DMA_AFTER_CLOSE,
                "a queue was still enabled".into(),
            );
        }
    }
}

/// Fails the test: the VF driver broke a rule.
fn violated(vf: usize, rule: &str, detail: String) -> ! {
    panic!("82599 model: rule violated: {rule} (VF {vf}: {detail})")
}

/// The port register behind register `reg` of a VF queue block mapped to port queue `pq`
/// (`port_base`: the port's rx or tx queue registers), if it is a ring register.
fn port_queue_offset(port_base: usize, pq: usize, reg: usize, tx: bool) -> Option<usize> {
    match (reg, tx) {
        (Q_BAL | Q_BAH | Q_LEN | Q_H | Q_T | Q_DCTL, _) | (RXQ_SRRCTL, false) => {
            Some(port_base + QUEUE_STRIDE * pq + reg)
        }
        _ => None,
    }
}

impl ModelInner {
    fn vf_queue(&self, vf: usize, q: usize) -> usize {
        QUEUES_PER_POOL * self.sriov.vfs[vf].number + q
    }

    /// Maps a VF queue register to the port's register, if it is one.
    fn vf_queue_reg(&self, vf: usize, offset: usize) -> Option<(usize, bool, usize)> {
        let (base, port_base, tx) = match offset {
            o if (VF_RXQ..VF_RXQ + 0x40 * VF_QUEUE_SLOTS).contains(&o) => (VF_RXQ, RXQ_LOW, false),
            o if (VF_TXQ..VF_TXQ + 0x40 * VF_QUEUE_SLOTS).contains(&o) => (VF_TXQ, TXQ, true),
            _ => return None,
        };
        let q = (offset - base) / 0x40;
        let reg = (offset - base) % 0x40;
        let target = port_queue_offset(port_base, self.vf_queue(vf, q), reg, tx)?;
        Some((q, tx, target))
    }

    pub(crate) fn vf_read(&mut self, vf: usize, offset: usize) -> u32 {
        if offset >= VF_BAR_SIZE || !offset.is_multiple_of(4) {
            violated(
                vf,
                "register access outside BAR0 or not 4-byte aligned",
                format!("read at {offset:#x}"),
            );
        }
        let p = self.sriov.vfs[vf].port;
        if let Some((q, _, target)) = self.vf_queue_reg(vf, offset) {
            if q >= QUEUES_PER_POOL {
                return 0;
            }
            return self.read(p, target);
        }
        let wire = self.ports[p].wire;
        let v = &mut self.sriov.vfs[vf];
        match offset {
            VFCTRL => 0,
            VFSTATUS => self.read(p, STATUS),
            VFLINKS => self.read(p, LINKS),
            VFMAILBOX => {
                let value = v.mailbox;
                v.mailbox &= !mbx::R2C;
                if v.rsti_reads > 0 {
                    v.rsti_reads -= 1;
                    if v.rsti_reads == 0 {
                        v.mailbox = (v.mailbox & !mbx::RSTI) | mbx::RSTD;
                    }
                }
                value
            }
            o if (VFMBMEM..VFMBMEM + 4 * mbx::WORDS).contains(&o) => v.mbmem[(o - VFMBMEM) / 4],
            VFGPRC => v.counter(&wire, 0) as u32,
            VFGPTC => v.counter(&wire, 1) as u32,
            VFGORC_LSB => v.counter(&wire, 2) as u32,
            VFGORC_MSB => (v.counter(&wire, 2) >> 32) as u32,
            VFGOTC_LSB => v.counter(&wire, 3) as u32,
            VFGOTC_MSB => (v.counter(&wire, 3) >> 32) as u32,
            o => v.regs[o / 4],
        }
    }

    pub(crate) fn vf_write(&mut self, vf: usize, offset: usize, value: u32) {
        if offset >= VF_BAR_SIZE || !offset.is_multiple_of(4) {
            violated(
                vf,
                "register access outside BAR0 or not 4-byte aligned",
                format!("write of {value:#x} at {offset:#x}"),
            );
        }
        let p = self.sriov.vfs[vf].port;
        if let Some((q, tx, target)) = self.vf_queue_reg(vf, offset) {
            if q >= QUEUES_PER_POOL {
                if value & DCTL_ENABLE != 0 && offset % 0x40 == 0x28 {
                    violated(
                        vf,
                        "VF queue beyond its pool enabled",
                        format!(
                            "queue {q}: the PF gives each VF {QUEUES_PER_POOL} queues (GET_QUEUES)"
                        ),
                    );
                }
                return;
            }
            self.write(p, target, value);
            // The PF driver runs with receive on; the model allows RXCTRL.RXEN only once a
            // queue is enabled, so the PF model turns it on with the first VF queue.
            if !tx
                && offset % 0x40 == 0x28
                && value & DCTL_ENABLE != 0
                && self.read(p, RXCTRL) & RXCTRL_RXEN == 0
                && self.ports[p].any_rx_queue_enabled()
            {
                self.pf_enable_rx(p);
            }
            return;
        }
        match offset {
            VFCTRL => {
                if value & VFCTRL_RST != 0 {
                    self.vf_reset(vf);
                }
            }
            VFSTATUS | VFLINKS | VFGPRC | VFGPTC | VFGORC_LSB | VFGORC_MSB | VFGOTC_LSB
            | VFGOTC_MSB => {}
            VFMAILBOX => {
                let v = &mut self.sriov.vfs[vf];
                v.mailbox = (v.mailbox & !mbx::VFU) | (value & mbx::VFU);
                if value & mbx::ACK != 0 {
                    v.unacked = false;
                    if let Some((words, len)) = v.pending.take() {
                        self.pf_post(vf, words, len);
                    }
                }
                if value & mbx::REQ != 0 {
                    self.pf_receive(vf);
                }
            }
            o if (VFMBMEM..VFMBMEM + 4 * mbx::WORDS).contains(&o) => {
                let v = &mut self.sriov.vfs[vf];
                if v.mailbox & mbx::VFU == 0 {
                    violated(
                        vf,
                        "mailbox buffer written without owning it",
                        format!(
                            "VFMBMEM word {} = {value:#x} while VFMAILBOX.VFU is clear (7.10.2)",
                            (o - VFMBMEM) / 4
                        ),
                    );
                }
                v.mbmem[(o - VFMBMEM) / 4] = value;
            }
            o => self.sriov.vfs[vf].regs[o / 4] = value,
        }
    }

    /// VFCTRL.RST: the VF's queues stop and its registers return to their defaults; the PF
    /// forgets the VF's filter and negotiated state (Linux `ixgbe_vf_reset_event`).
    fn vf_reset(&mut self, vf: usize) {
        let p = self.sriov.vfs[vf].port;
        let first = self.vf_queue(vf, 0);
        self.ports[p].stop_queues(first..first + QUEUES_PER_POOL);
        self.pf_set_vf_filter(vf, None);
        let held = self.ports[p].held(Completion::VfReset);
        let v = &mut self.sriov.vfs[vf];
        v.regs.fill(0);
        v.mailbox &= mbx::RSTI | mbx::RSTD;
        v.unacked = false;
        v.pending = None;
        if held {
            // The reset never finishes: RSTI stays set (no countdown).
            v.mailbox |= mbx::RSTI;
            v.rsti_reads = 0;
        }
        v.forget_pf_state();
        self.pf_apply_xcast(p);
    }
}

impl Model {
    /// Adds a virtual function to `pf` (the first one enables SR-IOV: the modelled PF
    /// driver brings the port up, see [`super::pf`]). The PF assigns it a MAC address
    /// ([`Model::vf_mac`]) and [`QUEUES_PER_POOL`] queues. Do not run the ixgbe driver on
    /// a port with VFs: the PF model drives it.
    pub fn add_vf(&self, pf: &Port) -> VfPort {
        let p = self.check_port(pf);
        let mut inner = lock(&self.inner);
        if inner.sriov.pf(p).is_none() {
            inner.sriov.pfs.push(PfSide {
                port: p,
                silent: false,
                apis: pf::DEFAULT_API_VERSIONS.to_vec(),
                promisc_allowed: false,
                vfs: 0,
            });
            inner.pf_bring_up(p);
        }
        let wire = inner.ports[p].wire;
        let side = inner
            .sriov
            .pfs
            .iter_mut()
            .find(|s| s.port == p)
            .expect("just added");
        let number = side.vfs;
        assert!(
            number < MAX_VFS,
            "82599 model: at most {MAX_VFS} VFs per port"
        );
        side.vfs += 1;
        let mut state = VfState {
            port: p,
            number,
            regs: vec![0; VF_BAR_SIZE / 4].into_boxed_slice(),
            mailbox: 0,
            mbmem: [0; mbx::WORDS],
            rsti_reads: 0,
            counters: Counters::default(),
            mac: pf::assigned_mac(p, number),
            clear_to_send: false,
            api: 0,
            xcast: 0,
            trusted: false,
            tcs: [0, 0],
            pf_set_mac: true,
            log: Vec::new(),
            driver: false,
            unacked: false,
            pending: None,
        };
        state.restart_counters(wire);
        inner.sriov.vfs.push(state);
        VfPort {
            model: Arc::clone(&self.inner),
            index: inner.sriov.vfs.len() - 1,
        }
    }

    /// Opens the ixgbevf driver on `vf`, with its DMA memory from [`Model::dma`] and the
    /// name `model:vf<number>`: the safe way to drive a VF.
    ///
    /// A VF takes one driver at a time: [`Error::Device`] while
    /// another driver opened here is live on it, or while an ixgbe driver runs on its
    /// port. When the driver is dropped, the VF's queues stop and it takes a new one.
    // Inlined: no `ixy::model::Model::*` symbol around driver init, so the callgrind
    // toggles of the module documentation count init as driver code and exclude the model.
    #[inline(always)]
    pub fn ixgbevf(
        &self,
        vf: &VfPort,
        options: IxgbevfOptions,
    ) -> Result<IxgbevfDevice<VfRegisters>> {
        let i = self.check_vf(vf);
        let mut inner = lock(&self.inner);
        let name = format!("model:vf{}", inner.sriov.vfs[i].number);
        let port = inner.sriov.vfs[i].port;
        if inner.sriov.vfs[i].driver || inner.ports[port].driver {
            return Err(Error::device(
                &name,
                "the VF already has a driver (or an ixgbe driver runs on its port); drop \
                 that driver first",
            ));
        }
        inner.sriov.vfs[i].driver = true;
        drop(inner);
        let regs = VfRegisters {
            vf: vf.clone(),
            driver: true,
        };
        IxgbevfDevice::with_registers(&name, regs, &self.dma(), &options)
    }

    fn check_vf(&self, vf: &VfPort) -> usize {
        assert!(
            Arc::ptr_eq(&self.inner, &vf.model),
            "82599 model: VF {} belongs to another model",
            vf.index
        );
        vf.index
    }

    /// The MAC address the PF assigned to `vf`.
    pub fn vf_mac(&self, vf: &VfPort) -> [u8; 6] {
        let i = self.check_vf(vf);
        lock(&self.inner).sriov.vfs[i].mac
    }

    /// Takes `vf`'s MAC assignment away, as for a VF the host never gave a MAC: the PF
    /// answers RESET with NACK and no address (Linux `ixgbe_vf_reset_msg` with a zero
    /// address) and accepts the address the VF then asks for with SET_MAC_ADDR.
    pub fn set_vf_mac_unassigned(&self, vf: &VfPort) {
        let i = self.check_vf(vf);
        let mut inner = lock(&self.inner);
        let v = &mut inner.sriov.vfs[i];
        v.mac = [0; 6];
        v.pf_set_mac = false;
    }

    /// Lets `vf` change its MAC address and ask for more than multicast reception
    /// (`ip link set <pf> vf <n> trust on`).
    pub fn set_vf_trusted(&self, vf: &VfPort, trusted: bool) {
        let i = self.check_vf(vf);
        lock(&self.inner).sriov.vfs[i].trusted = trusted;
    }

    /// Makes the PF answer GET_QUEUES with `traffic_classes` (word 3) and `default_queue`
    /// (word 4), as a Linux PF with DCB or a port VLAN does: with more than one class the
    /// VF transmits on one queue, the default one.
    pub fn set_vf_traffic_classes(&self, vf: &VfPort, traffic_classes: u32, default_queue: u32) {
        let i = self.check_vf(vf);
        lock(&self.inner).sriov.vfs[i].tcs = [traffic_classes, default_queue];
    }

    /// Word 0 of every mailbox message the PF received from `vf`, oldest first.
    pub fn pf_messages(&self, vf: &VfPort) -> Vec<u32> {
        let i = self.check_vf(vf);
        lock(&self.inner).sriov.vfs[i].log.clone()
    }

    /// The mailbox API version the PF agreed with `vf` (wire numbering), and its xcast
    /// mode (0 none, 1 multicast, 2 all-multicast, 3 promiscuous).
    pub fn vf_negotiated(&self, vf: &VfPort) -> (u32, u32) {
        let i = self.check_vf(vf);
        let inner = lock(&self.inner);
        (inner.sriov.vfs[i].api, inner.sriov.vfs[i].xcast)
    }

    /// True if the PF accepts requests from `vf` (it completed a RESET handshake since its
    /// last reset).
    pub fn vf_clear_to_send(&self, vf: &VfPort) -> bool {
        let i = self.check_vf(vf);
        lock(&self.inner).sriov.vfs[i].clear_to_send
    }

    /// Sets `vf`'s rolling counters (rx packets, tx packets, rx octets, tx octets) to
    /// these values now, e.g. just below their wrap.
    pub fn preset_vf_counters(&self, vf: &VfPort, values: [u64; 4]) {
        let i = self.check_vf(vf);
        let mut inner = lock(&self.inner);
        let wire = inner.ports[inner.sriov.vfs[i].port].wire;
        let v = &mut inner.sriov.vfs[i];
        v.counters = Counters {
            base: wire,
            preset: values,
        };
    }

    /// The port queue behind `vf`'s queue `queue`.
    pub fn vf_port_queue(&self, vf: &VfPort, queue: usize) -> usize {
        let i = self.check_vf(vf);
        assert!(
            queue < QUEUES_PER_POOL,
            "82599 model: a VF has {QUEUES_PER_POOL} queues"
        );
        lock(&self.inner).vf_queue(i, queue)
    }

    /// One frame arrives for `vf` (its pool): it goes to the VF's receive queue 0, where
    /// the 82599 puts a pool's frames without RSS (see the module documentation).
    pub fn inject_to_vf(&self, vf: &VfPort, frame: &[u8]) -> bool {
        let pq = self.vf_port_queue(vf, 0);
        let p = lock(&self.inner).sriov.vfs[vf.index].port;
        lock(&self.inner).receive_on(p, pq, frame)
    }
}
