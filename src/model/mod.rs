//! Device models (feature `model`): the Intel 82599 10 GbE controller (this module) and a
//! virtio-net PCI function ([`virtio`]), and [`testbed`]: two modelled devices wired to
//! each other, the supported way to test an application without hardware.
//!
//! ## The 82599 model
//!
//! No ixgbe hardware is needed to test the ixgbe driver: the model implements BAR0 of an
//! 82599 physical function as a [`RegisterSpace`] ([`PortRegisters`]) and performs the
//! device's DMA on memory from its own allocator ([`ModelDma`]). It follows the Intel
//! 82599 10 GbE Controller Datasheet (section numbers are cited where the behaviour is
//! implemented) closely enough that a driver breaking the datasheet fails: the model
//! panics with a message starting with `82599 model: rule violated:` and naming the rule.
//!
//! The model checks the values a driver writes, not only their order: reserved bits
//! written as 1 (a per-register table cited to §8.2.3), interrupt mask and cause bits for
//! vectors no cause is mapped to (IVAR), ring and buffer registers changed while their
//! queue or the receiver runs, a reset while a queue has not read back disabled (a queue
//! takes a few polls to stop), and the PF model waits for the VF's acknowledgement of each
//! mailbox message before it sends the next. Every completion a driver waits for can be
//! held back ([`Model::hold_back`], [`Completion`]) to test that the wait is bounded.
//!
//! A port shows a PCI device id ([`Model::add_port_with_id`]): an 82599 SFP+ port (the
//! default), another 82599 port (backplane, CX4, ...) or an X540/X550, which differ in
//! what Linux's ixgbe does for them: the link mode AUTOC holds after reset, the SFP+ laser
//! (ESDP.SDP3), the reset (under the SW/FW semaphore on the X540/X550) and who brings the
//! link up (AUTOC on the 82599, the X540/X550's PHY over MDIO).
//!
//! Everything is single-threaded: handles ([`Model`], [`Port`], [`ModelDma`]) are cheap
//! clones of `Arc`s, and every register access runs the model synchronously (a tail write
//! moves the packets before it returns).
//!
//! ## A device's powers, behind `unsafe`
//!
//! Like a real 82599, the model writes wherever its ring registers point, within any live
//! [`ModelDma`] region, which includes packet buffers a driver has handed to the user as
//! `&mut [u8]`. Raw register access is therefore as unsafe as a mapped BAR
//! ([`MmioRegion`](crate::registers::MmioRegion)), and safe code reaches the model's DMA
//! only through a driver. Every device model follows this pattern:
//!
//! * a **safe handle** per device ([`Port`], [`VfPort`], [`VirtioNet`]): a `Clone` name for the device,
//!   passed to the [`Model`] methods that observe and steer it (wires, sources, `inject`,
//!   capture, statistics, link); it does not implement [`RegisterSpace`];
//! * its **registers** ([`PortRegisters`], [`VfRegisters`], [`virtio::VirtioRegisters`]):
//!   what a driver runs on, not `Clone`;
//! * a **safe constructor** opening the driver on the device with [`Model::dma`] memory
//!   ([`Model::ixgbe`], [`Model::ixgbevf`], [`VirtioModel::virtio`]). A device takes one
//!   live driver at a time (a second open is an [`Error::Device`]): two drivers on one queue
//!   would make the device write into buffers one of them handed out. When the driver's
//!   register handle drops (after the driver's own drop, before its memory is freed),
//!   the device stops its DMA and accepts the next driver;
//! * raw access, for tests of the model itself, through an **`unsafe fn registers`**
//!   ([`Port::registers`], [`VfPort::registers`], [`VirtioNet::registers`]) whose contract
//!   is that the caller never makes the device write memory Rust code holds a reference to.
//!
//! A driver's `with_registers` stays public and safe: without model registers (only
//! obtainable as above) it reaches no modelled device, whatever allocator it is given.
//!
//! Each model is its own DMA domain ([`DmaDomain`](crate::memory::dma::DmaDomain)): its
//! devices reach only [`Model::dma`] memory, so a driver on a modelled device drops (and
//! counts in `tx_dropped`) packets from any other pool, e.g. `HeapDma` or another model's.
//!
//! ```
//! use ixy::ixgbe::IxgbeOptions;
//! use ixy::model::Model;
//! use ixy::IxyDevice;
//!
//! let model = Model::new();
//! let a = model.add_port();
//! let b = model.add_port();
//! model.connect(&a, &b);
//! // The MAC "from the EEPROM", distinct per port (RAL(0)/RAH(0)).
//! assert_ne!(model.default_mac(&a), model.default_mac(&b));
//! let options = IxgbeOptions::default().link_timeout(std::time::Duration::from_secs(2));
//! let dev = model.ixgbe(&a, &options).unwrap();
//! assert_eq!(dev.mac_addr(), model.default_mac(&a));
//! // One driver per port at a time.
//! assert!(model.ixgbe(&a, &options).is_err());
//! drop(dev);
//! assert!(model.ixgbe(&a, &options).is_ok());
//! ```
//!
//! Safe code cannot write a port's registers:
//!
//! ```compile_fail,E0599
//! use ixy::registers::RegisterSpace;
//!
//! let port = ixy::model::Model::new().add_port();
//! port.write32(0x01000, 0); // RDBAL(0): no `write32` on a `Port`
//! ```
//!
//! ## Excluding the model from instruction counts (callgrind)
//!
//! Every entry point from driver code into the model is `#[inline(never)]`:
//! `PortRegisters::read32`, `PortRegisters::write32` and `ModelDma::allocate` (whose
//! release closure runs when the driver frees DMA memory). Their demangled symbols are
//! `<ixy::model::PortRegisters as ixy::registers::RegisterSpace>::{read32,write32}` and
//! `<ixy::model::dma::ModelDma as ixy::memory::dma::DmaAllocator>::allocate[::{{closure}}]`;
//! the test/bench-side API (`ixy::model::Model::*`) is a third entry point ([`Model::ixgbe`]
//! and [`Model::ixgbevf`] are inlined, so driver init counts as driver code). For the VF
//! driver the register entry point is
//! `<ixy::model::vf::VfRegisters as ixy::registers::RegisterSpace>::*`. Verified pattern:
//!
//! ```text
//! valgrind --tool=callgrind \
//!     '--toggle-collect=<ixy::model::PortRegisters as ixy::registers::RegisterSpace>::*' \
//!     '--toggle-collect=<ixy::model::dma::ModelDma as ixy::memory::dma::DmaAllocator>::*' \
//!     '--toggle-collect=ixy::model::Model::*' \
//!     --collect-atstart=yes <binary> <args>
//! ```
//!
//! Two pitfalls:
//! * `--collect-atstart=yes` must come **after** the `--toggle-collect` options: callgrind
//!   turns collection at start off whenever it parses a `--toggle-collect`, and then the
//!   toggles *invert*: only the model is counted.
//! * Do not use a broad pattern such as `*ixy::model::*`: it also matches internal model
//!   functions called from an entry point (each match flips collection again, turning it
//!   back on inside the model) and driver functions generic over `PortRegisters`, such as
//!   `drop_in_place<ixy::ixgbe::IxgbeDevice<ixy::model::PortRegisters>>`.

mod dma;
pub mod pf;
mod phy;
mod port;
mod regs;
mod reserved;
mod rss;
mod testbed;
mod vf;
pub mod virtio;

use std::sync::{Arc, Mutex};

pub use dma::ModelDma;
pub use rss::toeplitz_hash;
pub use testbed::{TestDevice, Testbed, Traffic, testbed};
pub use vf::{VfPort, VfRegisters};
pub use virtio::{VirtioFault, VirtioModel, VirtioNet, VirtioOptions};

use crate::error::{Error, Result};
use crate::ixgbe::{IxgbeDevice, IxgbeOptions};
use crate::registers::RegisterSpace;
use dma::Regions;
use port::PortState;

/// Locks a part of the model. A model that panicked (a rule violation) stays usable for
/// the drops that follow, as with the `RefCell`s it had before it became shareable
/// between threads.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Frame counts of one port's wire, as the model saw them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WireStats {
    /// Frames the port transmitted (left through its tx queues onto the wire).
    pub tx_frames: u64,
    /// Bytes of those frames (without CRC, after padding).
    pub tx_bytes: u64,
    /// Frames delivered into the port's rx rings (from a wire, a source or `inject`).
    pub rx_frames: u64,
    /// Bytes of those frames (as on the wire, without CRC).
    pub rx_bytes: u64,
    /// Frames that arrived at the port and were dropped: no rx descriptor, rx disabled,
    /// filtered by MAC address, or too long.
    pub rx_dropped: u64,
}

/// A completion a driver waits for, which a test can hold back with [`Model::hold_back`]
/// to see the driver's wait end in a clear error or warning within its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// EEC.ARD (EEPROM auto-read done, §8.2.3.2.1) reads 0.
    EepromAutoRead,
    /// RDRXCTL.DMAIDONE (DMA initialisation done, §8.2.3.8.8) reads 0.
    DmaInit,
    /// STATUS.GIO_MASTER_ENABLE stays 1 after CTRL.PCIe_Master_Disable (§5.2.5.3.2): a
    /// master request stays pending. After a few polls of STATUS a reset may follow.
    MasterDisable,
    /// SECRXSTAT.SECRX_RDY stays 0 after SECRXCTRL.RX_DIS: the receive data path does not
    /// halt (§4.6.7).
    SecRxReady,
    /// CTRL.RST never self-clears (§8.2.3.1.1): the device stays in reset, and ignores
    /// register writes instead of flagging them.
    Reset,
    /// The link never comes up (as [`Model::set_link_never_up`]).
    LinkUp,
    /// RXDCTL.ENABLE never reads back 1: the receive queues do not start.
    RxQueueEnable,
    /// TXDCTL.ENABLE never reads back 1: the transmit queues do not start.
    TxQueueEnable,
    /// RXDCTL.ENABLE keeps reading 1 after the driver cleared it (normally it reads 0 after
    /// a few polls). A driver that polled it that many times may then reset the device.
    RxQueueDisable,
    /// TXDCTL.ENABLE keeps reading 1 after the driver cleared it.
    TxQueueDisable,
    /// A VF reset (VFCTRL.RST) of a VF of this port never finishes: its VFMAILBOX keeps
    /// showing RSTI.
    VfReset,
    /// The PF never acknowledges (VFMAILBOX.PFACK) nor answers a message from a VF of this
    /// port (as [`Model::set_pf_silent`]).
    PfAck,
    /// The PF acknowledges the VFs' messages but never replies (no VFMAILBOX.PFSTS).
    PfReply,
    /// MSCA.MDI_COMMAND never clears on an X540/X550 port: the MDIO cycle to the PHY
    /// does not complete.
    Mdio,
}

impl Completion {
    pub(crate) fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// Where a port's transmitted frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// Counted and dropped.
    Sink,
    /// Delivered to the rx side of the port with this index.
    Port(usize),
}

/// A traffic source feeding a port: its frames go to the rx queue the port steers them
/// to.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) template: Vec<u8>,
    /// Frames still to send; `None` for unlimited.
    pub(crate) remaining: Option<u64>,
}

/// The shared state behind all handles.
pub(crate) struct ModelInner {
    pub(crate) ports: Vec<PortState>,
    pub(crate) regions: Arc<Mutex<Regions>>,
    /// SR-IOV: the PF driver model and the VFs (`pf`, `vf`).
    pub(crate) sriov: pf::Sriov,
}

/// The 82599 model: a set of ports (each one 82599 PF BAR0), wires between them, and the
/// DMA memory the driver allocates.
#[derive(Clone)]
pub struct Model {
    inner: Arc<Mutex<ModelInner>>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("ports", &lock(&self.inner).ports.len())
            .finish()
    }
}

/// One 82599 physical function: a safe handle for observing and steering the port
/// (pass it to [`Model::connect`], [`Model::inject`], [`Model::wire_stats`]...) and for
/// opening a driver on it ([`Model::ixgbe`]). Clones refer to the same port.
///
/// A `Port` gives no register access: its BAR0 is [`PortRegisters`], which only a
/// driver opened through [`Model::ixgbe`] or unsafe code ([`Port::registers`]) holds.
#[derive(Clone)]
pub struct Port {
    model: Arc<Mutex<ModelInner>>,
    index: usize,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port").field("index", &self.index).finish()
    }
}

impl Port {
    /// Index of this port in its model (0 for the first `add_port`).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Raw access to the port's BAR0, as a driver has it: a [`RegisterSpace`].
    ///
    /// # Safety
    /// Register writes reprogram the device, which then reads and writes memory wherever
    /// its registers point (within live regions of [`Model::dma`]), synchronously inside
    /// later register accesses and [`Model`] calls. The caller must make sure that the
    /// device never writes memory that Rust code holds a reference to: in particular,
    /// not write the queue registers (ring bases and lengths, heads, tails, enables) of
    /// a ring a driver uses, and not let two drivers use one queue. Reads only run the
    /// device as programmed.
    pub unsafe fn registers(&self) -> PortRegisters {
        PortRegisters {
            port: self.clone(),
            driver: false,
        }
    }
}

/// BAR0 of a modelled 82599 port (128 KiB of registers) as a [`RegisterSpace`]: what
/// the ixgbe driver runs on. Get one with [`Model::ixgbe`] (inside the driver) or with
/// the unsafe [`Port::registers`]. Dereferences to its [`Port`].
///
/// Register reads and writes run the model synchronously: writing a tail register
/// processes the descriptors before `write32` returns.
#[derive(Debug)]
pub struct PortRegisters {
    port: Port,
    /// Made by [`Model::ixgbe`]: the port's one driver. Dropping it releases the port.
    driver: bool,
}

impl std::ops::Deref for PortRegisters {
    type Target = Port;
    fn deref(&self) -> &Port {
        &self.port
    }
}

impl RegisterSpace for PortRegisters {
    fn share(this: &std::sync::Arc<Self>) -> Option<crate::registers::SharedRegs> {
        Some(Arc::clone(this) as crate::registers::SharedRegs)
    }

    #[inline(never)]
    fn read32(&self, offset: usize) -> u32 {
        lock(&self.port.model).read(self.port.index, offset)
    }

    #[inline(never)]
    fn write32(&self, offset: usize, value: u32) {
        lock(&self.port.model).write(self.port.index, offset, value)
    }
}

impl Drop for PortRegisters {
    /// A driver's handle goes away (after the driver's own drop, before its rings and
    /// buffers are freed): the port stops all DMA, like a function whose bus mastering
    /// is cut, and accepts a new driver.
    fn drop(&mut self) {
        if !self.driver {
            return;
        }
        let i = self.port.index;
        let mut inner = lock(&self.port.model);
        inner.ports[i].driver = false;
        let running = inner.ports[i].stop_queues(0..regs::NUM_QUEUES);
        drop(inner);
        if running && !std::thread::panicking() {
            panic!(
                "82599 model: rule violated: {} (port {i})",
                port::rule::DMA_AFTER_CLOSE
            );
        }
    }
}

impl Model {
    /// A model with no ports.
    pub fn new() -> Model {
        Model {
            inner: Arc::new(Mutex::new(ModelInner {
                ports: Vec::new(),
                regions: Arc::new(Mutex::new(Regions::default())),
                sriov: pf::Sriov::default(),
            })),
        }
    }

    /// The allocator the driver must take its DMA memory (rings, packet pools) from:
    /// the model checks every DMA access against the regions allocated here.
    pub fn dma(&self) -> ModelDma {
        ModelDma::new(Arc::clone(&lock(&self.inner).regions))
    }

    /// Adds a port (in its power-on state: as after a reset, link down) whose transmitted
    /// frames go to a sink until it is connected.
    pub fn add_port(&self) -> Port {
        self.add_port_with_id(0x10fb)
    }

    /// Adds a port that shows PCI device id `device` ([`Model::add_port`] is an 82599
    /// SFP+, 0x10fb). The id sets what the model checks and does: an X540 or X550 id
    /// (0x1528, 0x1560, 0x1563, 0x15d1) resets only under its PHY's SW/FW semaphore, has
    /// a PHY behind MSCA/MSRWD that brings the link up only after the driver advertised
    /// speeds and restarted auto-negotiation ([`Model::set_link_partner`]), and needs no
    /// receive halt around RXCTRL.RXEN; an 82599 SFP+ fibre id has its laser on ESDP.SDP3 (off at
    /// first) and an "NVM" AUTOC of 1 Gb/s, every other 82599 id KX4/KX/KR
    /// auto-negotiation. Everything else is the 82599 model.
    pub fn add_port_with_id(&self, device: u16) -> Port {
        let mut inner = lock(&self.inner);
        let index = inner.ports.len();
        inner.ports.push(PortState::new(index, device));
        Port {
            model: Arc::clone(&self.inner),
            index,
        }
    }

    /// Opens the ixgbe driver on `p`, with its DMA memory from [`Model::dma`] and the name
    /// `model:<index>`: the safe way to drive a port.
    ///
    /// A port takes one driver at a time (two could make the device write into buffers
    /// the other one handed out): [`Error::Device`] while another
    /// driver opened here is live, or while the port has VFs (the PF model drives it).
    /// When the driver is dropped, the port stops all DMA and takes a new one.
    // Inlined: no `ixy::model::Model::*` symbol around driver init, so the callgrind
    // toggles of the module documentation count init as driver code and exclude the model.
    #[inline(always)]
    pub fn ixgbe(&self, p: &Port, options: &IxgbeOptions) -> Result<IxgbeDevice<PortRegisters>> {
        let i = self.check_port(p);
        let name = format!("model:{i}");
        {
            let mut inner = lock(&self.inner);
            if inner.ports[i].driver || inner.sriov.pf(i).is_some() {
                return Err(Error::device(
                    &name,
                    "the port already has a driver (a live ixgbe driver, or the PF model \
                     of its VFs); drop that driver first",
                ));
            }
            inner.ports[i].driver = true;
        }
        let regs = PortRegisters {
            port: p.clone(),
            driver: true,
        };
        IxgbeDevice::with_registers(&name, regs, &self.dma(), options)
    }

    fn check_port(&self, p: &Port) -> usize {
        assert!(
            Arc::ptr_eq(&self.inner, &p.model),
            "82599 model: port {} belongs to another model",
            p.index
        );
        p.index
    }

    /// Connects `a` and `b` with a wire: frames `a` transmits arrive at `b`'s rx, and
    /// frames `b` transmits arrive at `a`'s. `connect(p, p)` is a loopback plug.
    pub fn connect(&self, a: &Port, b: &Port) {
        let (a, b) = (self.check_port(a), self.check_port(b));
        let mut inner = lock(&self.inner);
        inner.ports[a].peer = Peer::Port(b);
        inner.ports[b].peer = Peer::Port(a);
    }

    /// Attaches a traffic source to `p`: copies of `template` arrive at the rx queue the
    /// port steers them to (queue 0, or by RSS: see [`Model::inject`]) whenever that
    /// queue has rx descriptors available (checked when the driver writes its RDT, when rx
    /// or the queue is enabled, and now), until `count` frames were sent (if `Some`). The
    /// source never drops: it waits for descriptors. Sources add up: several templates
    /// of different flows feed several queues.
    pub fn attach_source(&self, p: &Port, template: Vec<u8>, count: Option<u64>) {
        let i = self.check_port(p);
        let mut inner = lock(&self.inner);
        inner.ports[i].sources.push(Source {
            template,
            remaining: count,
        });
        let si = inner.ports[i].sources.len() - 1;
        inner.run_source_at(i, si);
    }

    /// Removes all traffic sources of `p`.
    pub fn detach_sources(&self, p: &Port) {
        let i = self.check_port(p);
        lock(&self.inner).ports[i].sources.clear();
    }

    /// Frames `p` transmits are counted and dropped (the default for an unconnected port).
    /// Disconnects `p` from its peer, if any (the peer then transmits into a sink too).
    pub fn attach_sink(&self, p: &Port) {
        let i = self.check_port(p);
        let mut inner = lock(&self.inner);
        if let Peer::Port(j) = inner.ports[i].peer
            && inner.ports[j].peer == Peer::Port(i)
        {
            inner.ports[j].peer = Peer::Sink;
        }
        inner.ports[i].peer = Peer::Sink;
    }

    /// One frame arrives on `p`'s wire now: returns true if it was delivered into an rx
    /// ring, false if it was dropped (filtered by destination MAC unless promiscuous, rx
    /// disabled, too long, or no descriptor: then MPC or QPRDC counts it).
    ///
    /// The port picks the queue as the 82599 does (§7.1.2): queue 0 unless MRQC enables
    /// RSS, then the redirection table entry of the frame's Toeplitz hash (IPv4/IPv6
    /// addresses, and TCP/UDP ports where MRQC enables them). To reach queue `q`, send a
    /// frame of a flow that hashes there.
    pub fn inject(&self, p: &Port, frame: &[u8]) -> bool {
        let i = self.check_port(p);
        lock(&self.inner).receive(i, frame)
    }

    /// The rx queue `p` would deliver `frame` to under its current registers.
    pub fn rx_queue_of(&self, p: &Port, frame: &[u8]) -> usize {
        let i = self.check_port(p);
        lock(&self.inner).ports[i].rx_queue(frame)
    }

    /// The RSS hash `p` computes for `frame` under its current registers (MRQC, RSSRK;
    /// §7.1.2.8), or `None` if RSS is off or the frame is of no type MRQC enables.
    pub fn rss_hash(&self, p: &Port, frame: &[u8]) -> Option<u32> {
        let i = self.check_port(p);
        lock(&self.inner).ports[i].rss_hash(frame)
    }

    /// Starts (`on`) or stops recording the frames `p` transmits, for
    /// [`Model::take_transmitted`]. Recording does not change where the frames go.
    pub fn set_capture(&self, p: &Port, on: bool) {
        let i = self.check_port(p);
        let mut inner = lock(&self.inner);
        inner.ports[i].capture = on;
        if !on {
            inner.ports[i].captured.clear();
        }
    }

    /// The frames `p` transmitted since the last call while capture was on.
    pub fn take_transmitted(&self, p: &Port) -> Vec<Vec<u8>> {
        let i = self.check_port(p);
        std::mem::take(&mut lock(&self.inner).ports[i].captured)
    }

    /// Makes the link of `p` never come up (`never`), e.g. no cable; or lets it come up
    /// again after the next auto-negotiation restart.
    pub fn set_link_never_up(&self, p: &Port, never: bool) {
        let i = self.check_port(p);
        let mut inner = lock(&self.inner);
        inner.ports[i].link_never_up = never;
        if never {
            inner.ports[i].link_down();
        }
    }

    /// Holds `what` back on `p` (`held`), or lets it complete again (the next time the
    /// driver starts it: a queue enable or disable, a reset, an auto-negotiation restart
    /// or a mailbox message after release; EEC.ARD and RDRXCTL.DMAIDONE at once).
    pub fn hold_back(&self, p: &Port, what: Completion, held: bool) {
        if what == Completion::LinkUp {
            return self.set_link_never_up(p, held);
        }
        let i = self.check_port(p);
        let port = &mut lock(&self.inner).ports[i];
        port.held = if held {
            port.held | what.bit()
        } else {
            port.held & !what.bit()
        };
    }

    /// Makes `p`'s "NVM" disable the link (AUTOC2 bits 30:28 set after each reset, and
    /// no link while they are), as an NVM may (Linux clears them after reset).
    pub fn set_nvm_link_disabled(&self, p: &Port, disabled: bool) {
        let i = self.check_port(p);
        lock(&self.inner).ports[i].nvm_link_disabled = disabled;
    }

    /// Whether `p`'s transmit laser is on (ESDP.SDP3 clear on an SFP+ fibre port; ports
    /// without laser control always say yes).
    pub fn laser_on(&self, p: &Port) -> bool {
        lock(&self.inner).ports[self.check_port(p)].laser_on()
    }

    /// Whether CTRL_EXT.DRV_LOAD is set on `p`: a driver told the firmware it owns the port.
    pub fn driver_loaded(&self, p: &Port) -> bool {
        let i = self.check_port(p);
        lock(&self.inner).ports[i].reg(regs::CTRL_EXT) & regs::CTRL_EXT_DRV_LOAD != 0
    }

    /// The PHY of X540/X550 port `p` (panics for another port).
    fn phy<T>(&self, p: &Port, f: impl FnOnce(&mut phy::Phy) -> T) -> T {
        let i = self.check_port(p);
        let port = &mut lock(&self.inner).ports[i];
        f(port.phy.as_mut().expect("an X540/X550 port has a PHY"))
    }

    /// Sets the speeds (Mb/s) the link partner of X540/X550 port `p` advertises (at first
    /// 10000, 5000, 2500, 1000 and 100): the next auto-negotiation restart brings the link
    /// up at the fastest speed both sides advertise, or leaves it down.
    pub fn set_link_partner(&self, p: &Port, speeds: &[u32]) {
        self.phy(p, |phy| phy.partner = speeds.to_vec());
    }

    /// Moves X540/X550 port `p`'s PHY to MDIO address `address` (at first 1); `None`: no
    /// PHY answers (every read returns 0xffff).
    pub fn set_phy_address(&self, p: &Port, address: Option<u32>) {
        self.phy(p, |phy| phy.address_on_bus = address);
    }

    /// Sets the PMA/PMD speed ability of X540/X550 port `p`'s PHY (at first 0x0031: 10G
    /// bit 0, 1000 Mb/s bit 4, 100 Mb/s bit 5).
    pub fn set_phy_speed_ability(&self, p: &Port, ability: u16) {
        self.phy(p, |phy| phy.ability = ability);
    }

    /// Makes `p`'s manageability firmware veto link resets (MMNGC.MNG_VETO), or not.
    pub fn set_mng_veto(&self, p: &Port, veto: bool) {
        let i = self.check_port(p);
        let bit = if veto { regs::MMNGC_MNG_VETO } else { 0 };
        lock(&self.inner).ports[i].set_reg(regs::MMNGC, bit);
    }

    /// X540/X550 port `p`'s PHY register `reg` of MMD `mmd` (1: PMA/PMD, 7:
    /// auto-negotiation) as it holds it, without an MDIO cycle; `None` if not modelled.
    pub fn phy_reg(&self, p: &Port, mmd: u32, reg: u32) -> Option<u16> {
        self.phy(p, |phy| phy.reg(mmd, reg))
    }

    /// How often auto-negotiation was restarted on X540/X550 port `p`'s PHY.
    pub fn phy_an_restarts(&self, p: &Port) -> u32 {
        self.phy(p, |phy| phy.restarts)
    }

    /// Every reset of `p` so far: the CTRL reset bits written (RST, LRST) and whether the
    /// PHY's SW/FW semaphore bit was held.
    pub fn resets(&self, p: &Port) -> Vec<(u32, bool)> {
        lock(&self.inner).ports[self.check_port(p)].resets.clone()
    }

    /// What crossed `p`'s wire so far.
    pub fn wire_stats(&self, p: &Port) -> WireStats {
        let i = self.check_port(p);
        lock(&self.inner).ports[i].wire
    }

    /// The MAC address port `p` loads "from its EEPROM" at reset.
    pub fn default_mac(&self, p: &Port) -> [u8; 6] {
        port::eeprom_mac(self.check_port(p))
    }
}
