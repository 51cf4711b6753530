//! ixgbe: driver for the physical functions of Intel's 10 GbE controllers — 82599 (X520),
//! X540 and X550 families.
//!
//! The initialisation follows the Intel 82599 10 GbE Controller Datasheet, section 4.6
//! ("Software Initialization and Diagnostics"), step by step; each step cites its
//! section. The X540 and X550 share the 82599's programming model for everything used
//! here (queues, descriptors, filters, statistics); what differs in what this driver
//! programs is in [`MacType`] (EEC location, receive packet buffer size, the reset, the
//! receive enable, and whether the driver sets up the MAC link through AUTOC or leaves
//! the link to the PHY), and per device id in [`is_sfp`] and [`has_laser_control`]
//! (Linux `ixgbe_82599.c`, `ixgbe_x540.c`, `ixgbe_x550.c`). The X550EM_x/X550EM_a ids are
//! refused ([`MacType::brought_up`]). The in-process device model is an 82599 that also
//! shows the X540/X550 reset, semaphore and PHY-driven link
//! (`Model::add_port_with_id`, feature `model`).
//!
//! The device is generic over its register space: [`MmioRegion`] (BAR0 mapped from sysfs)
//! on hardware, the in-process 82599 model in tests. Register access and DMA addresses are
//! the only injection points; the init and packet code is the same for both, with no
//! test-only branch, and monomorphisation makes the register accessors plain volatile
//! loads and stores on hardware.
//!
//! Descriptor rings are the ones in `src/intel/ring.rs`, shared with the VF driver.
//!
//! # Interrupts
//!
//! With an interrupt timeout ([`DeviceConfig::interrupt_timeout_ms`] or
//! [`IxgbeOptions::interrupt_timeout_ms`]), every receive queue `q` gets its own vector
//! `q` (the original ixy binds all queues to vector 0) and a [`QueueInterrupt`]: the queue
//! polls while traffic flows and, once idle, unmasks its vector (EIMS) and sleeps until
//! the vector fires or the timeout passes (see [`crate::interrupts`]). The registers are
//! programmed the same way for hardware and for the device model: [`IxgbeDevice::open`]
//! enables the vectors through VFIO first (a device on sysfs logs a warning and polls);
//! [`IxgbeDevice::with_registers`] only programs the device ("registers only": nothing
//! outside the device is set up, and a queue's eventfd fires only when the caller
//! signals it through [`IxgbeDevice::queue_interrupt`]).

pub mod regs;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::intel::irq::{self, IrqRegs};
use crate::intel::ring::{RxRing, TxRing};
use crate::intel::{RSS_KEY, byte_fields, queue};
use crate::interrupts::QueueInterrupt;
use crate::memory::{DmaAllocator, Mempool, Packet};
use crate::pci::{DriverKind, IrqMode, PciDevice};
use crate::queues::{self, QueueControl, Queues};
use crate::registers::{Deadline, MmioRegion, RegisterSpace, wait_device};
use crate::{DeviceConfig, DeviceStats, IxyDevice};

/// Largest number of tx queues this driver sets up (the 82599 has 128; the queue register
/// blocks of the first 64 are contiguous, and ixy needs no more). Receive queues: at most
/// 16, the queues RSS can spread traffic over (7.1.2.8).
pub const MAX_QUEUES: u16 = 64;

/// Default descriptors per receive ring.
pub const DEFAULT_RX_RING_SIZE: usize = 512;
/// Default descriptors per transmit ring.
pub const DEFAULT_TX_RING_SIZE: usize = 512;
/// Default buffers per receive queue's pool: a full rx ring, a full tx ring of another
/// port holding this pool's packets, and the application's batches, with room to spare.
pub const DEFAULT_POOL_ENTRIES: u32 = 4096;
/// Pool buffer size: with [`HEADROOM`](crate::memory::mempool::HEADROOM) in front, 3968
/// bytes of data, programmed as a 3 KB receive buffer (SRRCTL.BSIZEPACKET is in 1 KB
/// units), so every standard frame (up to 1522 bytes) fits in one buffer.
pub const POOL_ENTRY_SIZE: usize = 4096;

/// Where the extended interrupt registers are (8.2.3.5).
const IRQ_REGS: IrqRegs = IrqRegs {
    eims: regs::EIMS,
    eimc: regs::EIMC,
    eicr: regs::EICR,
};

/// Global reset completion timeout (the datasheet gives no bound; 1 s is generous).
const RESET_TIMEOUT: Duration = Duration::from_secs(1);
/// Time after setting CTRL.RST before any register access, the poll of CTRL.RST
/// included (8.2.3.1.1: "approximately 1 ms").
const RESET_ACCESS_DELAY: Duration = Duration::from_millis(1);
/// Master disable timeout (5.2.5.3.2 gives none; Linux `ixgbe_disable_pcie_master` polls
/// for up to 80 ms, then resets anyway, twice).
const MASTER_DISABLE_TIMEOUT: Duration = Duration::from_millis(100);
/// SECRXSTAT.SECRX_RDY timeout (4.6.7 gives none; Linux, DPDK and FreeBSD poll ~40 ms,
/// log, and set RXEN anyway).
const SECRX_TIMEOUT: Duration = Duration::from_millis(40);
/// Time the SW/FW semaphore is waited for before software takes it anyway (Linux
/// `ixgbe_acquire_swfw_sync_X540`: 200 tries 5-10 ms apart, then it ignores the firmware).
const SWFW_TIMEOUT: Duration = Duration::from_secs(1);
/// Time for the SFP+ laser to light up after ESDP.SDP3 is cleared (Linux
/// `ixgbe_enable_tx_laser_multispeed_fiber`: 100 ms).
const LASER_ON_DELAY: Duration = Duration::from_millis(100);
/// Queue disable read-back timeout (4.6.7.1.2 / 4.6.8.1 give none).
const QUEUE_DISABLE_TIMEOUT: Duration = Duration::from_millis(100);
/// Extra wait after a receive queue reads back disabled, before its memory is released
/// (4.6.7.1.2: "wait additional ~100 us").
const QUEUE_DISABLE_SETTLE: Duration = Duration::from_micros(100);
/// EEPROM auto-read and DMA init timeout (4.6.3).
const INIT_DONE_TIMEOUT: Duration = Duration::from_secs(1);
/// Queue enable read-back timeout (4.6.7, 4.6.8).
const QUEUE_ENABLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default time to wait for the link after init (ixy waits 10 s).
pub const DEFAULT_LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// Most receive queues with interrupts: vector `q` is bit `q` of EIMS/EIMC/EIAC/EIAM_EX(0),
/// whose queue bits are 15:0 (8.2.3.5).
pub const MAX_INTERRUPT_QUEUES: u16 = regs::NUM_RTXQ_BITS as u16;

/// EITR value of every receive vector: an interval of 5 x 2.048 µs, about 10 µs between
/// interrupts (at most ~98k/s; the rate the original ixy uses, 0x028). Interrupts only
/// wake an idle queue, so the throttle barely matters; it bounds a storm.
pub const RX_EITR: u32 = 5 << regs::EITR_ITR_INTERVAL_SHIFT | regs::EITR_CNT_WDIS;

/// The MAC generation of an ixgbe physical function, and the few things this driver
/// programs differently on each (Linux `ixgbe_type.h` `enum ixgbe_mac_type`; values from
/// `ixgbe_type.h`, `ixgbe_82599.c`, `ixgbe_x540.c`, `ixgbe_x550.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacType {
    /// 82599 (X520): the datasheet this driver follows, and the device model.
    #[default]
    M82599,
    /// X540 (10GBASE-T, integrated PHY).
    X540,
    /// X550 (10GBASE-T, integrated PHY).
    X550,
    /// X550EM_x (SoC-integrated, external PHY or backplane).
    X550EmX,
    /// X550EM_a (SoC-integrated, EEC moved).
    X550EmA,
}

impl MacType {
    /// The MAC of PCI device id `device` (Intel vendor id assumed), for the ids in
    /// [`crate::pci::IXGBE_DEVICE_IDS`]; `None` for any other id.
    pub fn from_device_id(device: u16) -> Option<MacType> {
        Some(match device {
            0x10f7 | 0x1514 | 0x1517 | 0x10f8 | 0x10f9 | 0x10fb | 0x152a | 0x1529 | 0x1507
            | 0x154d | 0x154a | 0x1558 | 0x1557 | 0x10fc | 0x151c | 0x154f => MacType::M82599,
            0x1528 | 0x1560 => MacType::X540,
            0x1563 | 0x15d1 => MacType::X550,
            0x15aa | 0x15ab | 0x15ac | 0x15ad | 0x15ae | 0x15b0 => MacType::X550EmX,
            0x15c2 | 0x15c3 | 0x15c4 | 0x15c6 | 0x15c7 | 0x15c8 | 0x15ca | 0x15cc | 0x15ce
            | 0x15e4 | 0x15e5 => MacType::X550EmA,
            _ => return None,
        })
    }

    /// Offset of EEC (EEPROM/Flash Control): 0x10010, but 0x15FF8 on the X550EM_a
    /// (Linux `IXGBE_EEC_BY_MAC`).
    pub fn eec(self) -> usize {
        match self {
            MacType::X550EmA => regs::EEC_X550EM_A,
            _ => regs::EEC,
        }
    }

    /// Size of the receive packet buffer in KB, all of it given to buffer 0: 512 on the
    /// 82599 (8.2.3.8.9), 384 on the X540 and X550 families (Linux
    /// `IXGBE_X540_RX_PB_SIZE`, set by `ixgbe_get_invariants_X540`, which the X550
    /// variants call too).
    pub fn rx_pb_size_kb(self) -> u32 {
        match self {
            MacType::M82599 => 512,
            _ => 384,
        }
    }

    /// Whether this driver brings the MAC up. The X550EM_x/X550EM_a links need PHY init,
    /// external-PHY or SFP setup, KR/iXFI over IOSF or firmware link commands (Linux
    /// `ixgbe_x550.c`), none of which exists here: those ids are refused.
    pub fn brought_up(self) -> bool {
        !matches!(self, MacType::X550EmX | MacType::X550EmA)
    }

    /// Whether the driver owns the MAC link: the 82599 sets it up through AUTOC (4.6.4)
    /// and needs the receive data path halted around RXCTRL.RXEN (its errata workaround,
    /// Linux `ixgbe_enable_rx_dma_82599`). The X540/X550 link is their PHY's, and they
    /// set RXEN directly (Linux `ixgbe_enable_rx_dma_generic`).
    pub fn is_82599(self) -> bool {
        self == MacType::M82599
    }

    /// Wait after a reset: 50 ms on the 82599 (Linux `ixgbe_reset_hw_82599`), 100 ms on
    /// the X540 and X550 (`ixgbe_reset_hw_X540`, which the X550 uses too).
    pub fn reset_settle(self) -> Duration {
        Duration::from_millis(if self.is_82599() { 50 } else { 100 })
    }

    /// Whether LINKS.NON_STD selects 2.5/5 Gb/s (X550 and later).
    pub fn non_std_speeds(self) -> bool {
        !matches!(self, MacType::M82599 | MacType::X540)
    }
}

/// Whether 82599 device `device` is an SFP+ port (Linux `ixgbe_get_media_type_82599`:
/// fibre and QSFP media): the driver selects 10 Gb/s serial there, as Linux
/// `ixgbe_setup_sfp_modules_82599` does; every other 82599 keeps the link mode its NVM
/// loaded into AUTOC.
pub fn is_sfp(device: u16) -> bool {
    has_laser_control(device) || device == 0x1558
}

/// Whether 82599 device `device` has its SFP+ transmit laser on ESDP.SDP3 (Linux: fibre
/// media only, not QSFP or LS).
pub fn has_laser_control(device: u16) -> bool {
    matches!(device, 0x10fb | 0x1529 | 0x1507 | 0x154d | 0x154a | 0x1557)
}

/// Link speed in Mbit/s of a LINKS value, 0 while down (8.2.3.22; X550 speeds as Linux
/// `ixgbe_check_mac_link_generic`): LINK_SPEED 11b 10G (2.5G with NON_STD), 10b 1G, 01b
/// 100M (5G with NON_STD), 00b 10M (X550EM_a 1G-T). `non_std`: the MAC has NON_STD.
pub fn links_speed(links: u32, non_std: bool) -> u32 {
    if links & regs::LINKS_UP == 0 {
        return 0;
    }
    let alt = non_std && links & regs::LINKS_SPEED_NON_STD != 0;
    let mbit = [[10, 100, 1_000, 10_000], [10, 5_000, 1_000, 2_500]][alt as usize];
    mbit[((links & regs::LINKS_SPEED_MASK) >> regs::LINKS_SPEED_SHIFT) as usize]
}

/// Everything [`IxgbeDevice::with_registers`] needs besides registers and memory.
#[derive(Debug, Clone)]
pub struct IxgbeOptions {
    /// Receive queues (1 to 16: RSS spreads traffic over at most 16, 7.1.2.8).
    pub rx_queues: u16,
    /// Transmit queues (1 to [`MAX_QUEUES`]).
    pub tx_queues: u16,
    /// Descriptors per receive ring (power of two, 64 to 4096).
    pub rx_ring_size: usize,
    /// Descriptors per transmit ring (power of two, 64 to 4096).
    pub tx_ring_size: usize,
    /// Buffers in each receive queue's pool (at least `rx_ring_size`).
    pub pool_entries: u32,
    /// How long to wait for the link after init.
    pub link_timeout: Duration,
    /// If set, a link that is not up within `link_timeout` is an error; otherwise it is
    /// a warning and the device opens with the link down.
    pub require_link: bool,
    /// Start in promiscuous mode (like ixy, so a forwarder works out of the box).
    pub promisc: bool,
    /// Receive interrupts, as [`DeviceConfig::interrupt_timeout_ms`]: 0 polls and leaves
    /// every interrupt register alone; otherwise each receive queue (at most
    /// [`MAX_INTERRUPT_QUEUES`]) gets its own vector and sleeps when idle.
    pub interrupt_timeout_ms: i16,
    /// How the vectors are delivered: MSI-X (one message per vector) or MSI. Only used
    /// with interrupts; [`IxgbeDevice::open`] sets it to what VFIO enabled.
    pub irq_mode: IrqMode,
    /// The PCI device id (one of [`crate::pci::IXGBE_DEVICE_IDS`]): the MAC generation
    /// and the port's media follow from it; [`IxgbeDevice::open`] sets it.
    pub device_id: u16,
}

impl Default for IxgbeOptions {
    fn default() -> Self {
        IxgbeOptions {
            rx_queues: 1,
            tx_queues: 1,
            rx_ring_size: DEFAULT_RX_RING_SIZE,
            tx_ring_size: DEFAULT_TX_RING_SIZE,
            pool_entries: DEFAULT_POOL_ENTRIES,
            link_timeout: DEFAULT_LINK_TIMEOUT,
            require_link: false,
            promisc: true,
            interrupt_timeout_ms: 0,
            irq_mode: IrqMode::MsiX,
            device_id: 0x10fb,
        }
    }
}

impl IxgbeOptions {
    /// The options a [`DeviceConfig`] asks for (queue counts, interrupt timeout;
    /// defaults for the rest).
    pub fn from_config(cfg: &DeviceConfig) -> Self {
        IxgbeOptions {
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            interrupt_timeout_ms: cfg.interrupt_timeout_ms,
            ..Default::default()
        }
    }

    /// Sets the queue counts.
    pub fn queues(mut self, rx: u16, tx: u16) -> Self {
        self.rx_queues = rx;
        self.tx_queues = tx;
        self
    }

    /// Sets the link wait timeout.
    pub fn link_timeout(mut self, timeout: Duration) -> Self {
        self.link_timeout = timeout;
        self
    }

    /// Sets the interrupt timeout (0 polls; see the field).
    pub fn interrupt_timeout_ms(mut self, timeout: i16) -> Self {
        self.interrupt_timeout_ms = timeout;
        self
    }

    /// The MAC of `device_id`; an id this driver does not bring up is refused, naming
    /// the device (`name`: its address).
    pub fn mac_type(&self, name: &str) -> Result<MacType> {
        let mac = MacType::from_device_id(self.device_id).filter(|m| m.brought_up());
        let known = crate::pci::IXGBE_DEVICE_IDS
            .iter()
            .find(|d| d.0 == self.device_id);
        mac.ok_or_else(|| Error::Unsupported {
            address: name.to_string(),
            vendor: crate::pci::VENDOR_INTEL,
            device: self.device_id,
            reason: format!(
                "{} has no link setup in ixgbe (it needs PHY, SFP or firmware link \
                 setup that only the kernel driver has); leave it to its kernel driver",
                known.map_or("this device", |d| d.1)
            ),
        })
    }

    fn check(&self) -> Result<()> {
        // Received traffic is spread by RSS, over at most 16 queues (7.1.2.8), each of
        // which can have its own vector (RSS_MAX_QUEUES = MAX_INTERRUPT_QUEUES).
        let rss = " (RSS spreads received traffic over at most 16, 82599 datasheet 7.1.2.8)";
        for (what, n, max, why) in [
            ("rx", self.rx_queues, regs::RSS_MAX_QUEUES, rss),
            ("tx", self.tx_queues, MAX_QUEUES, ""),
        ] {
            if n == 0 || n > max {
                return Err(Error::config(format!(
                    "{n} {what} queues requested: ixgbe supports 1 to {max}{why}"
                )));
            }
        }
        self.check_pool()
    }

    /// Refuses a receive pool smaller than the receive ring (also for ixgbevf).
    pub(crate) fn check_pool(&self) -> Result<()> {
        if (self.pool_entries as usize) < self.rx_ring_size {
            return Err(Error::config(format!(
                "receive pool of {} buffers is smaller than the receive ring ({})",
                self.pool_entries, self.rx_ring_size
            )));
        }
        Ok(())
    }
}

/// An ixgbe physical function.
///
/// `R` is the register space: [`MmioRegion`] on hardware ([`IxgbeDevice::open`]), the
/// device model in tests ([`IxgbeDevice::with_registers`]).
pub struct IxgbeDevice<R: RegisterSpace = MmioRegion> {
    name: String,
    /// Shared with the queues' handles once split ([`IxgbeDevice::split`]).
    regs: Arc<R>,
    rx: Vec<RxRing>,
    tx: Vec<TxRing>,
    /// Receive and transmit queues the device has, also once their rings have moved out
    /// ([`IxgbeDevice::split`]): for the statistics and the queues' shutdown.
    queues: (usize, usize),
    /// Counters accumulated from the clear-on-read registers.
    stats: DeviceStats,
    promisc: bool,
    /// One per receive queue when interrupts are on, empty when polling. Checked once per
    /// `rx_batch`: the only cost of interrupts on the polling path.
    irqs: Vec<QueueInterrupt>,
    /// How the vectors are delivered (meaningful only with `irqs`).
    irq_mode: IrqMode,
    /// The MAC generation and the PCI device id (the port's media).
    mac: MacType,
    device_id: u16,
    /// Keeps the PCI device (and with it the claim on it) while the driver runs.
    _pci: Option<PciDevice>,
}

impl IxgbeDevice<MmioRegion> {
    /// Takes `pci` from its kernel driver, maps BAR0 and initialises the device as `cfg`
    /// asks, with DMA memory from hugepages.
    ///
    /// Refuses, before touching the device, anything that is not an ixgbe physical
    /// function, options that cannot work, and a missing hugetlbfs mount.
    pub fn open(pci: PciDevice, cfg: &DeviceConfig) -> Result<Self> {
        let mut options = IxgbeOptions::from_config(cfg);
        options.check()?;
        pci.claim(cfg, &[DriverKind::Ixgbe], |id| {
            options.device_id = id.device;
            options.mac_type(pci.name()).map(drop)
        })?;
        pci.enable_bus_master()?;
        let claimed = pci
            .map_bar(0)
            .and_then(|bar| Ok((bar, irq::enable_vectors(&pci, &mut options)?)));
        let (bar, irqs) = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                // Nothing was programmed yet: just take the bus back.
                let _ = pci.disable_bus_master();
                return Err(e);
            }
        };
        let mut dev = Self::init_with(pci.name(), bar, &cfg.dma(), &options, irqs)?;
        dev._pci = Some(pci);
        Ok(dev)
    }
}

impl<R: RegisterSpace> IxgbeDevice<R> {
    /// Initialises the device behind `regs` (its BAR0) with descriptor rings and packet
    /// buffers from `dma`. `name` identifies it in messages (the PCI address on hardware).
    ///
    /// With `options.interrupt_timeout_ms` set, the interrupt registers are programmed for
    /// `options.irq_mode` exactly as [`IxgbeDevice::open`] does, but no vector is enabled
    /// outside the device (there is no VFIO here): each queue's eventfd fires only when
    /// the caller signals it ([`IxgbeDevice::queue_interrupt`]), so an idle queue sleeps
    /// for the full timeout.
    pub fn with_registers(
        name: &str,
        regs: R,
        dma: &dyn DmaAllocator,
        options: &IxgbeOptions,
    ) -> Result<Self> {
        options.check()?;
        let irqs = irq::queue_interrupts(options)?;
        Self::init_with(name, regs, dma, options, irqs)
    }

    /// [`IxgbeDevice::with_registers`] with the queues' interrupts already created
    /// (`irqs[q]` is woken by vector `q`; empty when polling).
    fn init_with(
        name: &str,
        regs: R,
        dma: &dyn DmaAllocator,
        options: &IxgbeOptions,
        irqs: Vec<QueueInterrupt>,
    ) -> Result<Self> {
        let mac = options.mac_type(name)?;
        let mut dev = IxgbeDevice {
            name: name.to_string(),
            regs: Arc::new(regs),
            rx: Vec::new(),
            tx: Vec::new(),
            queues: (options.rx_queues.into(), options.tx_queues.into()),
            stats: DeviceStats::default(),
            promisc: false,
            irqs,
            irq_mode: options.irq_mode,
            mac,
            device_id: options.device_id,
            _pci: None,
        };
        // On error `dev` is dropped, which resets the device before its memory is freed.
        dev.init(dma, options)?;
        Ok(dev)
    }

    // ---- the three register helpers ----

    #[inline(always)]
    fn get_reg(&self, offset: usize) -> u32 {
        self.regs.read32(offset)
    }

    #[inline(always)]
    fn set_reg(&self, offset: usize, value: u32) {
        self.regs.write32(offset, value)
    }

    fn wait_reg(
        &self,
        offset: usize,
        mask: u32,
        expected: u32,
        timeout: Duration,
        what: &str,
    ) -> Result<()> {
        wait_device(
            &self.regs, &self.name, offset, mask, expected, timeout, what,
        )
    }

    /// 4.6.3.1: masks every interrupt cause: EIMC, and EIMC_EX(0/1) for the queue
    /// vectors of MSI-X mode (Linux `ixgbe_irq_disable` on every MAC after the 82598).
    fn mask_interrupts(&self) {
        self.set_reg(regs::EIMC, regs::EIMC_ALL);
        self.set_reg(regs::eimc_ex(0), u32::MAX);
        self.set_reg(regs::eimc_ex(1), u32::MAX);
    }

    /// The master disable algorithm (5.2.5.3.2), required before a software reset
    /// (4.2.1.6.1): no new master requests, then wait until none is pending. A timeout
    /// is logged and the reset goes ahead (as Linux `ixgbe_disable_pcie_master` does): the
    /// reset is what stops the device for good. Returns whether requests stopped.
    fn master_disable(&self) -> bool {
        self.regs.set_bits(regs::CTRL, regs::CTRL_MASTER_DISABLE);
        let stopped = self.wait_reg(
            regs::STATUS,
            regs::STATUS_GIO_MASTER_ENABLE,
            0,
            MASTER_DISABLE_TIMEOUT,
            "master requests to stop (STATUS.GIO_MASTER_ENABLE)",
        );
        if let Err(e) = &stopped {
            log::warn!("{}: {e}; resetting anyway, twice", self.name);
        }
        stopped.is_ok()
    }

    /// 4.6.3.2 / 4.2.1.6.1: master disable, then the MAC reset; after a master disable
    /// timeout, both again (Linux `IXGBE_FLAGS_DOUBLE_RESET_REQUIRED` resets twice; the
    /// flush of pending transactions it does in between is not done here).
    fn reset(&self, what: &str) -> Result<()> {
        if !self.master_disable() {
            self.reset_once(what)?;
            self.master_disable();
        }
        self.reset_once(what)
    }

    /// One MAC reset as Linux `reset_hw` does it per MAC: the 82599 sets CTRL.LRST (device
    /// and link) while the link is down, CTRL.RST while it is up (a link reset could reset
    /// a PHY the firmware uses; `ixgbe_reset_hw_82599`); the X540/X550 set CTRL.RST
    /// holding their PHY's SW/FW semaphore (`ixgbe_reset_hw_X540`). Then ~1 ms before any
    /// access (8.2.3.1.1), the self-clear, and the MAC's settle time.
    fn reset_once(&self, what: &str) -> Result<()> {
        let link_down = self.link_speed() == 0;
        let phy = regs::SW_FW_SYNC_SW_PHY0_SM
            << (self.get_reg(regs::STATUS) >> regs::STATUS_LAN_ID_SHIFT & 1);
        let ctrl = match self.mac.is_82599() {
            true if link_down => regs::CTRL_LRST,
            true => regs::CTRL_RST,
            false => {
                self.swfw(phy, true)?;
                regs::CTRL_RST
            }
        };
        self.regs.set_bits(regs::CTRL, ctrl);
        std::thread::sleep(RESET_ACCESS_DELAY);
        self.wait_reg(regs::CTRL, regs::CTRL_RST_MASK, 0, RESET_TIMEOUT, what)?;
        if !self.mac.is_82599() {
            self.swfw(phy, false)?;
        }
        std::thread::sleep(self.mac.reset_settle());
        Ok(())
    }

    /// Sets (`take`) or clears software's SW_FW_SYNC bits `mask` (X540/X550, Linux
    /// `ixgbe_acquire_swfw_sync_X540`) under the two semaphores guarding the register,
    /// SWSM.SMBI and SW_FW_SYNC.REGSMP (each free when a read returns 0; that read takes
    /// it). Taking waits until neither software nor firmware holds `mask`, and takes it
    /// anyway after [`SWFW_TIMEOUT`] (logged), as Linux does.
    fn swfw(&self, mask: u32, take: bool) -> Result<()> {
        let (sync, regsmp) = (regs::SW_FW_SYNC, regs::SW_FW_SYNC_REGSMP);
        let mut deadline = Deadline::new(SWFW_TIMEOUT);
        loop {
            self.wait_reg(regs::SWSM, regs::SWSM_SMBI, 0, SWFW_TIMEOUT, "SWSM.SMBI")?;
            self.wait_reg(sync, regsmp, 0, SWFW_TIMEOUT, "SW_FW_SYNC.REGSMP")?;
            let v = self.get_reg(sync) & !regsmp;
            let held = take && v & (mask | mask << regs::SW_FW_SYNC_FW_SHIFT) != 0;
            let wait = held && !deadline.passed();
            let set = if take { v | mask } else { v & !mask };
            self.set_reg(sync, if wait { v } else { set });
            self.regs.clear_bits(regs::SWSM, regs::SWSM_SMBI);
            if !wait {
                if held {
                    log::warn!("{}: SW_FW_SYNC {v:#010x} still held; taking it", self.name);
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Datasheet 4.6.3 "Initialization Sequence" and the sections it refers to.
    fn init(&mut self, dma: &dyn DmaAllocator, o: &IxgbeOptions) -> Result<()> {
        // 4.6.3.1: disable interrupts.
        self.mask_interrupts();

        // 4.6.3.2: global reset, then wait for it to complete and settle.
        self.reset("reset to complete (CTRL.RST)")?;

        // 4.6.3.1: interrupts again, the reset may have enabled some.
        self.mask_interrupts();

        // 4.6.3: wait for the EEPROM auto-read and for DMA initialisation.
        let (eec, dma_done) = (self.mac.eec(), regs::RDRXCTL_DMAIDONE);
        for (reg, bit, what) in [
            (eec, regs::EEC_ARD, "EEPROM auto-read done (EEC.ARD)"),
            (
                regs::RDRXCTL,
                dma_done,
                "DMA initialisation done (RDRXCTL.DMAIDONE)",
            ),
        ] {
            self.wait_reg(reg, bit, bit, INIT_DONE_TIMEOUT, what)?;
        }

        // The firmware learns that a driver owns the port (Linux `ixgbe_get_hw_control`).
        self.regs.set_bits(regs::CTRL_EXT, regs::CTRL_EXT_DRV_LOAD);

        // 4.6.4: link setup (82599 only: the X540/X550 PHY negotiates by itself after the
        // reset, with the speeds it advertises by default); the link comes up while the
        // rest is initialised.
        if self.mac.is_82599() {
            self.init_link();
        }

        self.init_stats();

        // 4.6.7 and 4.6.8: receive and transmit paths.
        self.init_rx(dma, o)?;
        self.init_tx(dma, o)?;

        // 4.6.3 ends with enabling interrupts (4.6.3.1); polling needs none.
        if !self.irqs.is_empty() {
            self.init_interrupts();
        }

        self.wait_for_link(o)?;
        log::info!(
            "{}: ixgbe ready, MAC {}, {} rx / {} tx queues, link {} Mbit/s{}",
            self.name,
            crate::format_mac(&self.mac_addr()),
            self.rx.len(),
            self.tx.len(),
            self.link_speed(),
            match (self.irqs.is_empty(), self.irq_mode) {
                (true, _) => "",
                (false, IrqMode::MsiX) => ", MSI-X interrupts (one vector per rx queue)",
                (false, IrqMode::Msi) => ", MSI interrupts",
            }
        );
        Ok(())
    }

    /// 4.6.5: statistics registers clear on read: read them once to zero them. Queue q
    /// counts in per-queue statistics counter q (the last one for q >= 16).
    fn init_stats(&mut self) {
        self.read_stats();
        self.stats = DeviceStats::default();
        for n in 0..MAX_QUEUES as usize / 4 {
            let map = byte_fields(n, |q| q.min(regs::NUM_QPRDC - 1));
            self.set_reg(regs::rqsmr(n), map);
            self.set_reg(regs::tqsm(n), map);
        }
    }

    /// The interrupt setup of 4.6.3.1 / 7.3, for receive queue `q` on vector `q` (one
    /// vector per queue; tx queues raise no interrupt). All vectors stay masked: a queue
    /// unmasks its own (EIMS) only while it sleeps, see [`IxgbeDevice::rx_batch`].
    fn init_interrupts(&self) {
        let queues = self.irqs.len();
        let msix = self.irq_mode == IrqMode::MsiX;
        // Mask everything while the causes are routed.
        self.mask_interrupts();
        // 8.2.3.5 GPIE: MSI-X mode with the pending bit array, and auto-masking (EIAM)
        // when a vector's message is sent, so a woken queue needs no EIMC write.
        if msix {
            self.regs.set_bits(
                regs::GPIE,
                regs::GPIE_MULTIPLE_MSIX | regs::GPIE_EIAME | regs::GPIE_PBA_SUPPORT,
            );
        }
        for q in 0..queues {
            // 7.3 / 8.2.3.5 IVAR: rx queue q's cause -> vector q, entry valid.
            let shift = regs::ivar_rx_shift(q);
            let entry = (q as u32 & regs::IVAR_ALLOC_MASK) | regs::IVAR_ALLOC_VAL;
            let ivar = self.get_reg(regs::ivar(q / 2)) & !(0xff << shift);
            self.set_reg(regs::ivar(q / 2), ivar | entry << shift);
            // 7.3 / 8.2.3.5 EITR: throttle of vector q.
            self.set_reg(regs::eitr(q), RX_EITR);
        }
        let vectors = vector_mask(queues);
        if msix {
            // 8.2.3.5 EIAC (MSI-X only): the queue causes clear themselves when their
            // message goes out, so nobody has to read EICR. EIAM: and mask themselves.
            self.set_reg(regs::EIAC, vectors);
            self.set_reg(regs::eiam_ex(0), vectors);
        }
        // Old causes cleared (write 1b to clear); EIMS stays clear for the queues.
        self.set_reg(regs::EICR, vectors);
    }

    /// The receive queue's interrupt, when interrupts are on: its eventfd is what vector
    /// `queue` signals (tests against the model signal it to stand in for the device).
    pub fn queue_interrupt(&self, queue: u16) -> Option<&QueueInterrupt> {
        self.irqs.get(queue as usize)
    }

    /// How the receive vectors are delivered; `None` when polling.
    pub fn irq_mode(&self) -> Option<IrqMode> {
        (!self.irqs.is_empty()).then_some(self.irq_mode)
    }

    /// 4.6.4: the 82599 MAC link, as Linux sets it up: the link enabled even if the NVM
    /// disabled it (AUTOC2, `ixgbe_reset_hw_82599`), an SFP+ port's laser on (ESDP.SDP3
    /// clear, then 100 ms) and its link mode 10 Gb/s serial (`ixgbe_setup_sfp_modules_82599`;
    /// AUTOC.10G_PMA_PMD is left as loaded, as there); every other port keeps the mode its
    /// NVM loaded into AUTOC. Then auto-negotiation restarts. The datasheet waits for the
    /// link here; that happens at the end.
    fn init_link(&self) {
        self.regs
            .clear_bits(regs::AUTOC2, regs::AUTOC2_LINK_DISABLE_MASK);
        if has_laser_control(self.device_id) {
            self.regs.clear_bits(regs::ESDP, regs::ESDP_SDP3);
            std::thread::sleep(LASER_ON_DELAY);
        }
        let mut autoc = self.get_reg(regs::AUTOC);
        if is_sfp(self.device_id) {
            autoc = autoc & !regs::AUTOC_LMS_MASK | regs::AUTOC_LMS_10G_SERIAL;
        }
        self.set_reg(regs::AUTOC, autoc | regs::AUTOC_RESTART_AN);
    }

    /// 4.6.7: receive initialisation, then 4.6.7.1: enabling each queue.
    fn init_rx(&mut self, dma: &dyn DmaAllocator, o: &IxgbeOptions) -> Result<()> {
        // Receive stays off while it is configured.
        self.regs.clear_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        self.init_rx_buffers();
        // Receive filters while RXEN is clear (8.2.3.7.1): broadcast, and promiscuous if
        // asked for.
        self.regs.set_bits(regs::FCTRL, regs::FCTRL_BAM);
        self.set_promisc_bits(o.promisc);

        // Per queue: buffers, descriptor type, ring (4.6.7, 7.1.9).
        for q in 0..o.rx_queues as usize {
            let pool = Mempool::new(dma, o.pool_entries, POOL_ENTRY_SIZE)?;
            let ring = RxRing::new(dma, o.rx_ring_size, pool, regs::rdt(q))?;
            queue::set_srrctl(&self.regs, regs::srrctl(q));
            queue::program_ring(&self.regs, &regs::rx_queue(q), ring.descriptors());
            self.rx.push(ring);
        }
        self.init_rss();

        // Last sentence of 4.6.7: no-snoop disable, and a reserved DCA bit that resets
        // to 1 but must be 0.
        self.regs.set_bits(regs::CTRL_EXT, regs::CTRL_EXT_NS_DIS);
        for q in 0..self.rx.len() {
            self.regs
                .clear_bits(regs::dca_rxctrl(q), regs::DCA_RXCTRL_RESERVED_BIT12);
        }

        // 4.6.7.1: enable each queue, wait until the enable bit reads back, then hand the
        // buffers to the device by moving the tail.
        for (q, ring) in self.rx.iter_mut().enumerate() {
            queue::enable_queue(
                &self.regs,
                &self.name,
                &regs::rx_queue(q),
                regs::RXDCTL_ENABLE,
                0,
                QUEUE_ENABLE_TIMEOUT,
                &format!("receive queue {q} to enable (RXDCTL.ENABLE)"),
            )?;
            ring.start(&self.regs);
        }

        // Finally receive on (4.6.7: RXCTRL.RXEN after all other settings).
        self.enable_rx();
        Ok(())
    }

    /// 4.6.7 / 4.6.11.3.4 (no DCB, no virtualisation): the receive packet buffers, flow
    /// control thresholds and CRC stripping.
    fn init_rx_buffers(&self) {
        // All packet buffer to buffer 0, whose size depends on the MAC.
        let pb_bytes = self.mac.rx_pb_size_kb() << regs::RXPBSIZE_SHIFT;
        self.set_reg(regs::rxpbsize(0), pb_bytes);
        // 4.6.3.2: FCRTH[n].RTH is set whether flow control is used or not, typically to
        // RXPBSIZE[n] - 0x6000 (0 for the unused buffers; Linux `ixgbe_fc_enable_generic`).
        self.set_reg(regs::fcrth(0), pb_bytes - regs::FCRTH_HEADROOM);
        for i in 1..8 {
            self.set_reg(regs::rxpbsize(i), 0);
            self.set_reg(regs::fcrth(i), 0);
        }
        // 4.6.11.3.4 (DCB off): receive legacy flow control on (MFLCN.RFCE).
        self.regs.set_bits(regs::MFLCN, regs::MFLCN_RFCE);

        // CRC stripping, in the MAC (HLREG0) and the DMA (RDRXCTL) alike.
        self.regs.set_bits(regs::HLREG0, regs::HLREG0_RXCRCSTRP);
        // 4.6.7 / 8.2.3.8.8: RSCFRSTSIZE to 0 (not its default), RSCACKC and FCOE_WRFIX
        // to 1b (Linux `ixgbe_setup_rdrxctl` does the same on the 82599 and X540).
        self.set_reg(
            regs::RDRXCTL,
            (self.get_reg(regs::RDRXCTL) & !regs::RDRXCTL_RSCFRSTSIZE)
                | regs::RDRXCTL_CRCSTRIP
                | regs::RDRXCTL_RSCACKC
                | regs::RDRXCTL_FCOE_WRFIX,
        );
    }

    /// FCTRL.UPE and FCTRL.MPE (unicast and multicast promiscuous) set or cleared;
    /// receive must be off (8.2.3.7.1).
    fn set_promisc_bits(&mut self, enabled: bool) {
        let bits = regs::FCTRL_UPE | regs::FCTRL_MPE;
        match enabled {
            true => self.regs.set_bits(regs::FCTRL, bits),
            false => self.regs.clear_bits(regs::FCTRL, bits),
        }
        self.promisc = enabled;
    }

    /// RSS over several receive queues (7.1.2.8; 8.2.3.7.12-14), set while receive is
    /// off: the key, the redirection table (entry i to queue i mod queues), then MRQC:
    /// RSS on, hashing IPv4/IPv6 addresses and TCP/UDP ports. With one queue MRQC stays
    /// 0 (its reset value) and every frame goes to queue 0.
    fn init_rss(&self) {
        let queues = self.rx.len();
        if queues < 2 {
            return;
        }
        for (n, &key) in RSS_KEY.iter().enumerate() {
            self.set_reg(regs::rssrk(n), key);
        }
        for n in 0..regs::RETA_ENTRIES / 4 {
            self.set_reg(regs::reta(n), byte_fields(n, |i| i % queues));
        }
        self.set_reg(regs::MRQC, regs::MRQC_MRQE_RSS | regs::MRQC_RSS_FIELDS);
    }

    /// Sets RXCTRL.RXEN; on the 82599 with the receive data path halted around it (4.6.7,
    /// an errata workaround in Linux `ixgbe_enable_rx_dma_82599`): SECRXCTRL.RX_DIS, wait
    /// for SECRXSTAT.SECRX_RDY, RXEN, clear RX_DIS. A halt that does not come is logged and
    /// RXEN set anyway, as Linux, DPDK and FreeBSD do.
    fn enable_rx(&self) {
        let rxen = || self.regs.set_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        if !self.mac.is_82599() {
            return rxen();
        }
        let secrxctrl = self.get_reg(regs::SECRXCTRL);
        self.set_reg(regs::SECRXCTRL, secrxctrl | regs::SECRXCTRL_RX_DIS);
        if let Err(e) = self.wait_reg(
            regs::SECRXSTAT,
            regs::SECRXSTAT_SECRX_RDY,
            regs::SECRXSTAT_SECRX_RDY,
            SECRX_TIMEOUT,
            "receive data path to halt (SECRXSTAT.SECRX_RDY)",
        ) {
            log::warn!("{}: {e}; enabling receive anyway", self.name);
        }
        rxen();
        self.set_reg(regs::SECRXCTRL, secrxctrl & !regs::SECRXCTRL_RX_DIS);
    }

    /// 4.6.8: transmit initialisation, then 4.6.8.1: enabling each queue.
    fn init_tx(&mut self, dma: &dyn DmaAllocator, o: &IxgbeOptions) -> Result<()> {
        // CRC and padding of short frames by the MAC.
        self.regs
            .set_bits(regs::HLREG0, regs::HLREG0_TXCRCEN | regs::HLREG0_TXPADEN);

        // 4.6.11.3.4 (no DCB, no virtualisation): arbiter off while configuring, all
        // packet buffer to buffer 0, the DCB-off request size, arbiter on.
        self.regs.set_bits(regs::RTTDCS, regs::RTTDCS_ARBDIS);
        self.set_reg(regs::txpbsize(0), regs::TXPBSIZE_160KB);
        for i in 1..8 {
            self.set_reg(regs::txpbsize(i), 0);
        }
        self.set_reg(regs::DTXMXSZRQ, regs::DTXMXSZRQ_MAX);
        self.regs.clear_bits(regs::RTTDCS, regs::RTTDCS_ARBDIS);

        // Per queue: empty ring (head = tail = 0) and write-back thresholds (7.2.3.4.1,
        // 7.2.3.5).
        for q in 0..o.tx_queues as usize {
            let ring = TxRing::new(dma, o.tx_ring_size, regs::tdt(q))?;
            queue::program_ring(&self.regs, &regs::tx_queue(q), ring.descriptors());
            let txdctl = self.get_reg(regs::txdctl(q)) & !regs::TXDCTL_THRESH_MASK;
            self.set_reg(regs::txdctl(q), txdctl | regs::TXDCTL_THRESH);
            self.tx.push(ring);
        }

        // Transmit DMA on.
        self.regs.set_bits(regs::DMATXCTL, regs::DMATXCTL_TE);

        // 4.6.8.1: enable each queue, wait for the read-back.
        for q in 0..self.tx.len() {
            queue::enable_queue(
                &self.regs,
                &self.name,
                &regs::tx_queue(q),
                regs::TXDCTL_ENABLE,
                0,
                QUEUE_ENABLE_TIMEOUT,
                &format!("transmit queue {q} to enable (TXDCTL.ENABLE)"),
            )?;
        }
        Ok(())
    }

    /// Waits up to `o.link_timeout` for LINKS.LINK_UP; never forever.
    fn wait_for_link(&self, o: &IxgbeOptions) -> Result<()> {
        let links = || format!("LINKS = {:#010x}", self.get_reg(regs::LINKS));
        let (timeout, require) = (o.link_timeout, o.require_link);
        crate::intel::wait_for_link(&self.name, timeout, require, || self.link_speed(), links)
    }

    /// Adds the clear-on-read counters to the accumulated ones (8.2.3.23). GPRC/GORC are
    /// MAC counters: they also count frames the DMA then drops for lack of descriptors
    /// (SRRCTL.DROP_EN, counted in QPRDC; the 82598 datasheet says GPRC leaves out only
    /// MPC's packet buffer misses, and MoonGen reads GPRC as frames at the NIC). So
    /// `rx_packets` is GPRC minus QPRDC, the frames delivered into the rings (QPRDC read
    /// first: a frame counted there is already in GPRC); `rx_bytes` (GORC) still
    /// includes the dropped frames' octets, which no counter separates.
    fn read_stats(&mut self) {
        self.read_queue_stats();
        let qprdc: u64 = (0..self.queues.0.min(regs::NUM_QPRDC))
            .map(|q| self.get_reg(regs::qprdc(q)) as u64)
            .sum();
        let mpc: u64 = (0..regs::NUM_MPC)
            .map(|i| self.get_reg(regs::mpc(i)) as u64)
            .sum();
        let gprc = self.get_reg(regs::GPRC) as u64;
        let tx_packets = self.get_reg(regs::GPTC) as u64;
        // Low register first: reading the high one clears the pair.
        let rx_bytes = self.get_reg(regs::GORCL) as u64 | (self.get_reg(regs::GORCH) as u64) << 32;
        let tx_bytes = self.get_reg(regs::GOTCL) as u64 | (self.get_reg(regs::GOTCH) as u64) << 32;
        // Receive errors: CRC and length (Linux `ixgbe_update_stats` counts CRCERRS and
        // RLEC), and the frames too short or too long to pass (RUC, ROC).
        let errors = [regs::CRCERRS, regs::RLEC, regs::RUC, regs::ROC];
        let errors: u64 = errors.iter().map(|&r| self.get_reg(r) as u64).sum();
        let nombuf: u64 = self.rx.iter_mut().map(RxRing::take_nombuf).sum();
        let s = &mut self.stats;
        s.rx_errors += errors;
        s.rx_nombuf += nombuf;
        s.tx_dropped += self.tx.iter_mut().map(TxRing::take_dropped).sum::<u64>();
        s.rx_packets = (s.rx_packets + gprc).saturating_sub(qprdc);
        s.tx_packets += tx_packets;
        // The octet counters include the 4-byte CRC; DeviceStats counts frames without it.
        s.rx_bytes += rx_bytes.saturating_sub(4 * gprc);
        s.tx_bytes += tx_bytes.saturating_sub(4 * tx_packets);
        s.rx_dropped += mpc + qprdc;
    }

    /// Adds the per-queue counters of the queues' statistics counters (QPRC, QBRC, QPTC,
    /// QBTC; octets without the CRC, like the totals).
    fn read_queue_stats(&mut self) {
        // Low register first: reading the high one clears the pair.
        let wide = |low: usize| self.get_reg(low) as u64 | (self.get_reg(low + 4) as u64) << 32;
        let read = |n: usize, packets: fn(usize) -> usize, bytes: fn(usize) -> usize| {
            let n = n.min(regs::NUM_QPRDC);
            (0..n)
                .map(|c| (self.get_reg(packets(c)) as u64, wide(bytes(c))))
                .collect::<Vec<_>>()
        };
        let rx = read(self.queues.0, regs::qprc, regs::qbrc_l);
        let tx = read(self.queues.1, regs::qptc, regs::qbtc_l);
        let s = &mut self.stats;
        for (list, counts) in [(&mut s.rx_queues, rx), (&mut s.tx_queues, tx)] {
            list.resize(counts.len(), Default::default());
            for (q, (packets, bytes)) in list.iter_mut().zip(counts) {
                q.packets += packets;
                q.bytes += bytes.saturating_sub(4 * packets);
            }
        }
    }

    /// The pool receive queue `queue` takes its buffers from, if the queue exists.
    pub fn rx_pool(&self, queue: u16) -> Option<&Mempool> {
        self.rx.get(queue as usize).map(|r| r.pool())
    }

    /// Packets queued on transmit queue `queue` whose descriptors have not been cleaned
    /// yet (0 for a queue that does not exist).
    pub fn tx_in_flight(&self, queue: u16) -> usize {
        self.tx.get(queue as usize).map_or(0, |t| t.in_flight())
    }
}

impl<R: RegisterSpace> IxyDevice for IxgbeDevice<R> {
    fn driver_name(&self) -> &str {
        "ixgbe"
    }

    fn pci_addr(&self) -> &str {
        &self.name
    }

    /// The MAC in receive address entry 0 (RAL(0)/RAH(0)), loaded from the EEPROM.
    fn mac_addr(&self) -> [u8; 6] {
        let low = self.get_reg(regs::ral(0)).to_le_bytes();
        let high = self.get_reg(regs::rah(0)).to_le_bytes();
        [low[0], low[1], low[2], low[3], high[0], high[1]]
    }

    fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()> {
        if mac[0] & 1 != 0 {
            return Err(Error::config(format!(
                "{} is a multicast address and cannot be a station address",
                crate::format_mac(&mac)
            )));
        }
        self.set_reg(
            regs::ral(0),
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        );
        self.set_reg(
            regs::rah(0),
            u32::from_le_bytes([mac[4], mac[5], 0, 0]) | regs::RAH_AV,
        );
        Ok(())
    }

    /// Speed from LINKS ([`links_speed`]): 0 while the link is down.
    fn link_speed(&self) -> u32 {
        links_speed(self.get_reg(regs::LINKS), self.mac.non_std_speeds())
    }

    /// Unicast and multicast promiscuous (FCTRL.UPE, FCTRL.MPE). Receive is switched
    /// off around the filter change (8.2.3.7.1: filters change only with RXCTRL.RXEN
    /// clear) and back on with the sequence of 4.6.7.
    fn set_promisc(&mut self, enabled: bool) -> Result<()> {
        let rx_on = self.get_reg(regs::RXCTRL) & regs::RXCTRL_RXEN != 0;
        if rx_on {
            self.regs.clear_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        }
        self.set_promisc_bits(enabled);
        if rx_on {
            self.enable_rx();
        }
        Ok(())
    }

    fn promisc(&self) -> bool {
        self.promisc
    }

    fn num_rx_queues(&self) -> u16 {
        self.rx.len() as u16
    }

    fn num_tx_queues(&self) -> u16 {
        self.tx.len() as u16
    }

    /// Polls the ring; with interrupts, an idle queue sleeps (see [`crate::interrupts`]).
    /// Polling costs one predictable branch per batch for interrupts.
    #[inline]
    fn rx_batch(
        &mut self,
        queue_id: u16,
        buffer: &mut VecDeque<Packet>,
        num_packets: usize,
    ) -> usize {
        let ring = crate::queue_mut(&mut self.rx, queue_id, "rx");
        if let Some(intr) = self.irqs.get_mut(usize::from(queue_id)) {
            let (q, name) = (usize::from(queue_id), &self.name);
            return irq::rx_batch(
                &self.regs,
                IRQ_REGS,
                name,
                q,
                ring,
                intr,
                buffer,
                num_packets,
            );
        }
        ring.rx_batch(&self.regs, buffer, num_packets)
    }

    #[inline]
    fn tx_batch(&mut self, queue_id: u16, buffer: &mut VecDeque<Packet>) -> usize {
        crate::queue_mut(&mut self.tx, queue_id, "tx").tx_batch(&self.regs, buffer)
    }

    fn stats(&mut self) -> DeviceStats {
        self.read_stats();
        self.stats.clone()
    }

    fn reset_stats(&mut self) {
        self.read_stats();
        self.stats = DeviceStats::default();
    }

    /// Queue control: RXDCTL.ENABLE and TXDCTL.ENABLE (8.2.3.8.6, 8.2.3.9.10).
    fn split(&mut self) -> Result<Queues> {
        if !self.irqs.is_empty() {
            return Err(Error::config(format!(
                "{}: a device with interrupts cannot be split into queues (open it polling)",
                self.name
            )));
        }
        let ctl = QueueControl {
            rx: (regs::rxdctl, regs::RXDCTL_ENABLE),
            tx: (regs::txdctl, regs::TXDCTL_ENABLE),
        };
        queues::split(&self.name, &self.regs, &mut self.rx, &mut self.tx, ctl)
    }
}

impl<R: RegisterSpace> Drop for IxgbeDevice<R> {
    /// Stops all DMA before the rings and buffers are freed: receive off, queues
    /// disabled and read back disabled (4.6.7.1.2, 4.6.8.1), then master disable and a
    /// global reset (4.2.1.6.1, 4.6.3.2).
    fn drop(&mut self) {
        // 4.6.3.1: no interrupts while the device goes down.
        self.mask_interrupts();
        self.regs.clear_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        // Each queue off, then (4.6.7.1.2) polled until it reads back disabled, then
        // ~100 us more. A queue that stays enabled is logged; the reset stops it anyway.
        let queues = (0..self.queues.0)
            .map(|q| (regs::rxdctl(q), regs::RXDCTL_ENABLE, "receive", q))
            .chain(
                (0..self.queues.1).map(|q| (regs::txdctl(q), regs::TXDCTL_ENABLE, "transmit", q)),
            );
        for (reg, bit, ..) in queues.clone() {
            self.regs.clear_bits(reg, bit);
        }
        for (reg, bit, kind, q) in queues {
            if let Err(e) = self.wait_reg(
                reg,
                bit,
                0,
                QUEUE_DISABLE_TIMEOUT,
                &format!("{kind} queue {q} to disable"),
            ) {
                log::warn!("{}: {e}", self.name);
            }
        }
        std::thread::sleep(QUEUE_DISABLE_SETTLE);
        let reset = self.reset("reset on close (CTRL.RST)");
        // Linux `ixgbe_down`, `ixgbe_release_hw_control`: laser off, firmware told.
        if has_laser_control(self.device_id) && self.mac.is_82599() {
            self.regs.set_bits(regs::ESDP, regs::ESDP_SDP3);
        }
        self.regs
            .clear_bits(regs::CTRL_EXT, regs::CTRL_EXT_DRV_LOAD);
        if let Err(e) = reset {
            log::error!("{}: {e}", self.name);
            crate::intel::fence_off(&self.name, self._pci.as_ref(), &mut self.rx, &mut self.tx);
        }
    }
}

/// EIMS/EIMC/EIAC/EIAM bits of vectors 0 to `queues - 1` (`queues` <= 16).
fn vector_mask(queues: usize) -> u32 {
    ((1u64 << queues) - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::testing::{fake_sysfs, open_error, unbind_written};

    #[test]
    fn open_refuses_wrong_devices_and_missing_hugepages_before_unbinding() {
        let open = |root: &std::path::Path, cfg: &DeviceConfig| {
            open_error(root, |pci| IxgbeDevice::open(pci, cfg))
        };
        let cfg = DeviceConfig::new("0000:00:04.0");
        // An NVMe disk (not a NIC), a virtio NIC and an 82599 VF are not ixgbe PFs.
        for (tag, class, vendor, device, driver) in [
            ("pf-on-nvme", [2, 8, 1], 0x144d, 0xa808, "nvme"),
            ("pf-on-virtio", [0, 0, 2], 0x1af4, 0x1000, "virtio-pci"),
            ("pf-on-vf", [0, 0, 2], 0x8086, 0x10ed, "ixgbevf"),
        ] {
            let (root, _) = fake_sysfs(tag, class, vendor, device, Some(driver));
            let err = open(&root, &cfg);
            let msg = err.to_string();
            match tag {
                "pf-on-nvme" => {
                    assert!(matches!(err, Error::NotANic { .. }), "{msg}");
                    assert!(msg.contains("(PCI class 010802)"), "{msg}");
                }
                _ => {
                    assert!(matches!(err, Error::Unsupported { .. }), "{msg}");
                    let id = format!("0000:00:04.0 ({vendor:04x}:{device:04x}) is not supported");
                    assert!(msg.contains(&id), "{tag}: {msg}");
                    let other = if tag == "pf-on-vf" {
                        "ixgbevf"
                    } else {
                        "virtio"
                    };
                    let which = format!(
                        "the ixgbe driver does not drive it; it is a device for the {other} driver"
                    );
                    assert!(msg.contains(&which), "{tag}: {msg}");
                }
            }
            assert_eq!(unbind_written(&root, driver), "", "{tag}: never unbound");
        }
        // An 82599 PF, but 65 queues, or no hugetlbfs mount.
        let (root, _) = fake_sysfs("pf-checks", [0, 0, 2], 0x8086, 0x10fb, Some("ixgbe"));
        let err = open(&root, &cfg.clone().queues(1, 65));
        assert_eq!(
            err.to_string(),
            "invalid configuration: 65 tx queues requested: ixgbe supports 1 to 64"
        );
        let err = open(&root, &cfg.clone().hugepage_dir("/nonexistent/ixy-huge"));
        assert!(matches!(err, Error::Hugepages { .. }), "{err}");
        assert_eq!(unbind_written(&root, "ixgbe"), "", "never unbound");
    }
}
