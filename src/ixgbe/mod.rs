//! ixgbe: driver for the physical functions of Intel's 10 GbE controllers — 82599 (X520),
//! X540 and X550 families.
//!
//! The initialisation follows the Intel 82599 10 GbE Controller Datasheet, section 4.6
//! ("Software Initialization and Diagnostics"), step by step; each step cites its
//! section. The X540 and X550 share the 82599's programming model for everything used
//! here (queues, descriptors, filters, statistics); what differs in what this driver
//! programs is in [`MacType`] (EEC location, receive packet buffer size, the reset, the
//! receive enable, and whether the driver sets up the link through AUTOC or through the
//! PHY, [`phy`]), and per device id in [`is_sfp`] and [`has_laser_control`]
//! (Linux `ixgbe_82599.c`, `ixgbe_x540.c`, `ixgbe_x550.c`). The X550EM_x/X550EM_a ids are
//! refused ([`MacType::from_device_id`]). The in-process device model is an 82599 that also
//! shows the X540/X550 reset, semaphore and PHY (over MDIO)
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
//! `q` (the original ixy binds all queues to vector 0) and a [`QueueInterrupt`](crate::interrupts::QueueInterrupt): the queue
//! polls while traffic flows and, once idle, unmasks its vector (EIMS) and sleeps until
//! the vector fires or the timeout passes (see [`crate::interrupts`]). The registers are
//! programmed the same way for hardware and for the device model: [`IxgbeDevice::open`]
//! enables the vectors through VFIO first (a device on sysfs logs a warning and polls);
//! [`IxgbeDevice::with_registers`] only programs the device ("registers only": nothing
//! outside the device is set up, and a queue's eventfd fires only when the caller
//! signals it through [`IxgbeDevice::queue_interrupt`]).

pub mod phy;
pub mod regs;

pub use crate::intel::shell::IntelDevice;

use std::time::Duration;

use crate::DeviceConfig;
use crate::error::{Error, Result};
use crate::intel::irq;
use crate::intel::regs::IRQ_82599;
use crate::intel::shell::{IntelDriver, On, Queues2, Shell};
use crate::intel::{byte_fields, queue};
use crate::memory::DmaAllocator;
use crate::pci::{DriverKind, IrqMode};
use crate::registers::{Deadline, MmioRegion, RegisterSpace};

/// PCI device ids of the Intel 10 GbE physical functions the ixgbe driver handles, with
/// the names Linux gives them (drivers/net/ethernet/intel/ixgbe/ixgbe_type.h).
pub const DEVICE_IDS: &[(u16, &str)] = &[
    // 82599 family (X520 adapters)
    (0x10f7, "82599 KX4"),
    (0x1514, "82599 KX4 mezzanine"),
    (0x1517, "82599 KR"),
    (0x10f8, "82599 combo backplane"),
    (0x10f9, "82599 CX4"),
    (0x10fb, "82599 SFP+"),
    (0x152a, "82599 backplane FCoE"),
    (0x1529, "82599 SFP+ FCoE"),
    (0x1507, "82599 SFP+ EM"),
    (0x154d, "82599 SFP+ SF2"),
    (0x154a, "82599 SFP+ SF QP"),
    (0x1558, "82599 QSFP+ SF QP"),
    (0x1557, "82599EN SFP+"),
    (0x10fc, "82599 XAUI LOM"),
    (0x151c, "82599 T3 LOM"),
    (0x154f, "82599 LS"),
    // X540 family
    (0x1528, "X540-T"),
    (0x1560, "X540-T1"),
    // X550 family
    (0x1563, "X550-T"),
    (0x15d1, "X550-T1"),
    (0x15aa, "X550EM_x KX4"),
    (0x15ab, "X550EM_x KR"),
    (0x15ac, "X550EM_x SFP+"),
    (0x15ad, "X550EM_x 10GBASE-T"),
    (0x15ae, "X550EM_x 1GBASE-T"),
    (0x15b0, "X550EM_x XFI"),
    (0x15c2, "X550EM_a KR"),
    (0x15c3, "X550EM_a KR-L"),
    (0x15c4, "X550EM_a SFP+ N"),
    (0x15c6, "X550EM_a SGMII"),
    (0x15c7, "X550EM_a SGMII-L"),
    (0x15c8, "X550EM_a 10GBASE-T"),
    (0x15ca, "X550EM_a QSFP+"),
    (0x15cc, "X550EM_a QSFP+ N"),
    (0x15ce, "X550EM_a SFP+"),
    (0x15e4, "X550EM_a 1GBASE-T"),
    (0x15e5, "X550EM_a 1GBASE-T-L"),
];

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

/// SRRCTL's BSIZEPACKET field and DROP_EN bit (8.2.3.8.7; VFSRRCTL has the same).
pub(crate) const SRRCTL_BITS: [u32; 2] = [regs::SRRCTL_BSIZEPACKET_MASK, regs::SRRCTL_DROP_EN];

/// Where the receive and transmit queues' registers are.
const QUEUES: Queues2 = [regs::rx_queue, regs::tx_queue];

/// Times of the PCIe buffer flush (Linux `ixgbe_clear_tx_pending`): for a last completion
/// after HLREG0.LPBK is set (3 ms), and with GCR_EXT.BUFFERS_CLEAR set (20 µs).
const FLUSH_TIMES: [Duration; 2] = [Duration::from_millis(3), Duration::from_micros(20)];
/// SECRXSTAT.SECRX_RDY timeout (4.6.7 gives none; Linux, DPDK and FreeBSD poll ~40 ms,
/// log, and set RXEN anyway).
const SECRX_TIMEOUT: Duration = Duration::from_millis(40);
/// Time the SW/FW semaphore is waited for before software takes it anyway (Linux
/// `ixgbe_acquire_swfw_sync_X540`: 200 tries 5-10 ms apart, then it ignores the firmware).
const SWFW_TIMEOUT: Duration = Duration::from_secs(1);
/// Time for the SFP+ laser to light up after ESDP.SDP3 is cleared (Linux
/// `ixgbe_enable_tx_laser_multispeed_fiber`: 100 ms).
const LASER_ON_DELAY: Duration = Duration::from_millis(100);
/// Extra wait after a receive queue reads back disabled, before its memory is released
/// (4.6.7.1.2: "wait additional ~100 us").
const QUEUE_DISABLE_SETTLE: Duration = Duration::from_micros(100);
/// EEPROM auto-read and DMA init timeout (4.6.3).
const INIT_DONE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default time to wait for the link after init (ixy waits 10 s).
pub const DEFAULT_LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// Most receive queues with interrupts: vector `q` is bit `q` of EIMS/EIMC/EIAC/EIAM_EX(0),
/// whose queue bits (RTxQ) are 15:0, one per MSI-X vector 0-15 (8.2.3.5).
pub const MAX_INTERRUPT_QUEUES: u16 = 16;

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
}

impl MacType {
    /// The MAC of PCI device id `device` (Intel vendor id assumed), from its name in
    /// [`DEVICE_IDS`], which starts with the family; `None` for any other id, and for the
    /// X550EM_x/X550EM_a ids, which this driver does not bring up: their links need PHY
    /// init, external-PHY or SFP setup, KR/iXFI over IOSF or firmware link commands (Linux
    /// `ixgbe_x550.c`), none of which exists here.
    pub fn from_device_id(device: u16) -> Option<MacType> {
        let (_, name) = DEVICE_IDS.iter().find(|d| d.0 == device)?;
        let families = [
            ("X540", Some(MacType::X540)),
            ("X550EM", None),
            ("X550", Some(MacType::X550)),
        ];
        let family = families.into_iter().find(|(f, _)| name.starts_with(f));
        family.map_or(Some(MacType::M82599), |(_, mac)| mac)
    }

    /// Size of the receive packet buffer in KB, all of it given to buffer 0: 512 on the
    /// 82599 (8.2.3.8.9), 384 on the X540 and X550 (Linux `IXGBE_X540_RX_PB_SIZE`, set
    /// by `ixgbe_get_invariants_X540`, which the X550 calls too).
    pub fn rx_pb_size_kb(self) -> u32 {
        if self.is_82599() { 512 } else { 384 }
    }

    /// Whether the link is set up through AUTOC (4.6.4) and the receive data path halted
    /// around RXCTRL.RXEN (the 82599's errata workaround, Linux
    /// `ixgbe_enable_rx_dma_82599`). The X540/X550 link is set up through their PHY
    /// ([`phy`]), and they set RXEN directly (Linux `ixgbe_enable_rx_dma_generic`).
    pub fn is_82599(self) -> bool {
        self == MacType::M82599
    }

    /// Wait after a reset: 50 ms on the 82599 (Linux `ixgbe_reset_hw_82599`), 100 ms on
    /// the X540 and X550 (`ixgbe_reset_hw_X540`, which the X550 uses too).
    pub fn reset_settle(self) -> Duration {
        Duration::from_millis(if self.is_82599() { 50 } else { 100 })
    }
}

/// The MAC of PCI device id `device`; an id this driver does not bring up is refused,
/// naming the device (`name`: its address).
fn mac_type(device: u16, name: &str) -> Result<MacType> {
    let known = DEVICE_IDS.iter().find(|d| d.0 == device);
    MacType::from_device_id(device).ok_or_else(|| Error::Unsupported {
        address: name.to_string(),
        vendor: crate::pci::VENDOR_INTEL,
        device,
        reason: format!(
            "{} has no link setup in ixgbe (it needs PHY, SFP or firmware link setup that \
             only the kernel driver has); leave it to its kernel driver",
            known.map_or("this device", |d| d.1)
        ),
    })
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

/// What an Intel driver is asked for: queues, rings, pools, the link wait, promiscuous
/// mode, and in `only` (also reached through `Deref`) what only its kind of function has:
/// [`PfOptions`] ([`IxgbeOptions`], for ixgbe and igb) or
/// [`VfOptions`](crate::ixgbevf::VfOptions) ([`IxgbevfOptions`](crate::ixgbevf::IxgbevfOptions)).
#[derive(Debug, Clone)]
pub struct Options<X> {
    /// Receive queues (ixgbe: 1 to 16, RSS spreads traffic over at most 16, 7.1.2.8).
    pub rx_queues: u16,
    /// Transmit queues (ixgbe: 1 to [`MAX_QUEUES`]).
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
    /// Start in promiscuous mode (PFs: on by default, like ixy, so a forwarder works out
    /// of the box; VFs: off, 82599 PFs never allow it to a VF).
    pub promisc: bool,
    /// What only this kind of function has.
    pub only: X,
}

/// The options of the physical function drivers (ixgbe, igb).
pub type IxgbeOptions = Options<PfOptions>;

/// What only a physical function has.
#[derive(Debug, Clone)]
pub struct PfOptions {
    /// Receive interrupts, as [`DeviceConfig::interrupt_timeout_ms`]: 0 polls and leaves
    /// every interrupt register alone; otherwise each receive queue (at most
    /// [`MAX_INTERRUPT_QUEUES`]) gets its own vector and sleeps when idle.
    pub interrupt_timeout_ms: i16,
    /// How the vectors are delivered: MSI-X (one message per vector) or MSI. Only used
    /// with interrupts; [`IxgbeDevice::open`] sets it to what VFIO enabled.
    pub irq_mode: IrqMode,
    /// The PCI device id (one of [`DEVICE_IDS`]): the MAC generation and the port's media
    /// follow from it; [`IxgbeDevice::open`] sets it.
    pub device_id: u16,
}

impl<X> std::ops::Deref for Options<X> {
    type Target = X;

    fn deref(&self) -> &X {
        &self.only
    }
}

impl<X> std::ops::DerefMut for Options<X> {
    fn deref_mut(&mut self) -> &mut X {
        &mut self.only
    }
}

impl<X> Options<X> {
    /// The defaults, with `only` and `promisc`.
    pub(crate) fn with(only: X, promisc: bool) -> Self {
        Options {
            rx_queues: 1,
            tx_queues: 1,
            rx_ring_size: DEFAULT_RX_RING_SIZE,
            tx_ring_size: DEFAULT_TX_RING_SIZE,
            pool_entries: DEFAULT_POOL_ENTRIES,
            link_timeout: DEFAULT_LINK_TIMEOUT,
            require_link: false,
            promisc,
            only,
        }
    }

    /// Sets the queue counts.
    pub fn queues(mut self, rx: u16, tx: u16) -> Self {
        (self.rx_queues, self.tx_queues) = (rx, tx);
        self
    }

    /// Sets the link wait timeout.
    pub fn link_timeout(mut self, timeout: Duration) -> Self {
        self.link_timeout = timeout;
        self
    }

    /// Asks for promiscuous mode at start, or not.
    pub fn promisc(mut self, on: bool) -> Self {
        self.promisc = on;
        self
    }

    /// Refuses queue counts outside `1..=max` (`[rx, tx]`, `why_rx` saying why for
    /// receive) and a pool that cannot fill the receive ring.
    pub(crate) fn check_queues(&self, driver: &str, max: [u16; 2], why_rx: &str) -> Result<()> {
        let queues = [(self.rx_queues, "rx", why_rx), (self.tx_queues, "tx", "")];
        for ((n, what, why), max) in queues.into_iter().zip(max) {
            if n == 0 || n > max {
                return Err(Error::config(format!(
                    "{n} {what} queues requested: {driver} supports 1 to {max}{why}"
                )));
            }
        }
        if (self.pool_entries as usize) < self.rx_ring_size {
            return Err(Error::config(format!(
                "receive pool of {} buffers is smaller than the receive ring ({})",
                self.pool_entries, self.rx_ring_size
            )));
        }
        Ok(())
    }
}

impl Default for IxgbeOptions {
    fn default() -> Self {
        let only = PfOptions {
            interrupt_timeout_ms: 0,
            irq_mode: IrqMode::MsiX,
            device_id: 0x10fb,
        };
        Options::with(only, true)
    }
}

impl IxgbeOptions {
    /// Sets the interrupt timeout (0 polls; see the field).
    pub fn interrupt_timeout_ms(mut self, timeout: i16) -> Self {
        self.interrupt_timeout_ms = timeout;
        self
    }
}

/// An ixgbe physical function.
///
/// `R` is the register space: [`MmioRegion`] on hardware ([`IxgbeDevice::open`]), the
/// device model in tests ([`IxgbeDevice::with_registers`]).
pub type IxgbeDevice<R = MmioRegion> = IntelDevice<Ixgbe, R>;

/// What an ixgbe device knows besides its shell.
pub struct Ixgbe {
    /// How the vectors are delivered (meaningful only with interrupts).
    irq_mode: IrqMode,
    /// The MAC generation and the PCI device id (the port's media).
    mac: MacType,
    device_id: u16,
}

impl<R: RegisterSpace> IxgbeDevice<R> {
    /// 4.6.3.1: masks every interrupt cause: EIMC, and EIMC_EX(0/1) for the queue
    /// vectors of MSI-X mode (Linux `ixgbe_irq_disable` on every MAC after the 82598).
    fn mask_interrupts(&self) {
        let r = &self.shell.regs;
        r.write32(IRQ_82599.eimc, regs::EIMC_ALL);
        r.write32(regs::eimc_ex(0), u32::MAX);
        r.write32(regs::eimc_ex(1), u32::MAX);
    }

    /// 4.6.3.2 / 4.2.1.6.1: master disable, then the MAC reset. After a master disable
    /// timeout, as Linux: the PCIe buffers flushed (`ixgbe_clear_tx_pending`: HLREG0.LPBK so
    /// nothing leaves, GCR_EXT.BUFFERS_CLEAR, both restored; Linux's poll of the PCIe
    /// Device Status in config space in between is not done), then two resets
    /// (`IXGBE_FLAGS_DOUBLE_RESET_REQUIRED` in `ixgbe_reset_hw_82599`/`_X540`; 5.2.5.3.2).
    fn reset(&self) -> Result<()> {
        if !self.shell.master_disable() {
            let r = &self.shell.regs;
            let (hlreg0, gcr_ext) = (r.read32(regs::HLREG0), r.read32(regs::GCR_EXT));
            r.write32(regs::HLREG0, hlreg0 | regs::HLREG0_LPBK);
            std::thread::sleep(FLUSH_TIMES[0]);
            r.write32(regs::GCR_EXT, gcr_ext | regs::GCR_EXT_BUFFERS_CLEAR);
            std::thread::sleep(FLUSH_TIMES[1]);
            r.write32(regs::GCR_EXT, gcr_ext);
            r.write32(regs::HLREG0, hlreg0);
            self.reset_once()?;
        }
        self.reset_once()
    }

    /// One MAC reset as Linux `reset_hw` does it per MAC: the 82599 sets CTRL.LRST (device
    /// and link) while the link is down, CTRL.RST while it is up (a link reset could reset
    /// a PHY the firmware uses; `ixgbe_reset_hw_82599`); the X540/X550 set CTRL.RST
    /// holding their PHY's SW/FW semaphore (`ixgbe_reset_hw_X540`). Then ~1 ms before any
    /// access (8.2.3.1.1), the self-clear, and the MAC's settle time.
    fn reset_once(&self) -> Result<()> {
        let (x5x0, phy) = (!self.d.mac.is_82599(), self.phy_semaphore());
        let lrst = !x5x0 && self.speed() == 0;
        if x5x0 {
            self.swfw(phy, true)?;
        }
        self.shell.reset_ctrl(if lrst {
            regs::CTRL_LRST
        } else {
            regs::CTRL_RST
        })?;
        if x5x0 {
            self.swfw(phy, false)?;
        }
        std::thread::sleep(self.d.mac.reset_settle());
        Ok(())
    }

    /// Sets (`take`) or clears software's SW_FW_SYNC bits `mask` (X540/X550, Linux
    /// `ixgbe_acquire_swfw_sync_X540`) under the two semaphores guarding the register,
    /// SWSM.SMBI and SW_FW_SYNC.REGSMP (each free when a read returns 0; that read takes
    /// it). Taking waits until neither software nor firmware holds `mask`, and takes it
    /// anyway after [`SWFW_TIMEOUT`] (logged), as Linux does.
    fn swfw(&self, mask: u32, take: bool) -> Result<()> {
        let (s, sync, regsmp) = (&self.shell, regs::SW_FW_SYNC, regs::SW_FW_SYNC_REGSMP);
        let mut deadline = Deadline::new(SWFW_TIMEOUT);
        loop {
            s.wait(regs::SWSM, regs::SWSM_SMBI, 0, SWFW_TIMEOUT, "SWSM.SMBI")?;
            s.wait(sync, regsmp, 0, SWFW_TIMEOUT, "SW_FW_SYNC.REGSMP")?;
            let v = s.regs.read32(sync) & !regsmp;
            let held = take && v & (mask | mask << regs::SW_FW_SYNC_FW_SHIFT) != 0;
            let wait = held && !deadline.passed();
            let set = if take { v | mask } else { v & !mask };
            s.regs.write32(sync, if wait { v } else { set });
            s.regs.clear_bits(regs::SWSM, regs::SWSM_SMBI);
            if !wait {
                if held {
                    log::warn!("{}: SW_FW_SYNC {v:#010x} still held; taking it", s.name);
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
        self.reset()?;

        // 4.6.3.1: interrupts again, the reset may have enabled some.
        self.mask_interrupts();

        // 4.6.3: wait for the EEPROM auto-read and for DMA initialisation.
        let (eec, ard, dmaidone) = (regs::EEC, regs::EEC_ARD, regs::RDRXCTL_DMAIDONE);
        let (s, t) = (&self.shell, INIT_DONE_TIMEOUT);
        s.wait(eec, ard, ard, t, "EEPROM auto-read done (EEC.ARD)")?;
        let what = "DMA initialisation done (RDRXCTL.DMAIDONE)";
        s.wait(regs::RDRXCTL, dmaidone, dmaidone, t, what)?;
        // The firmware learns that a driver owns the port (Linux `ixgbe_get_hw_control`).
        s.regs.set_bits(regs::CTRL_EXT, regs::CTRL_EXT_DRV_LOAD);

        // 4.6.4: link setup, through AUTOC on the 82599, through the PHY on the X540/X550
        // (`phy`); the link comes up while the rest is initialised.
        if self.d.mac.is_82599() {
            self.init_link();
        } else {
            self.setup_phy_link()?;
        }

        self.init_stats();

        // 4.6.7 and 4.6.8: receive and transmit paths.
        self.shell.add_rings(dma, o, QUEUES, 0)?;
        self.init_rx(o)?;
        self.init_tx()?;

        // 4.6.3 ends with enabling interrupts (4.6.3.1); polling needs none.
        if !self.shell.irqs.is_empty() {
            self.init_interrupts();
        }

        self.wait_for_link(o, || self.speed(), ("LINKS", regs::LINKS))?;
        self.log_ready(irq::describe(&self.shell.irqs, self.d.irq_mode));
        Ok(())
    }

    /// 4.6.5: statistics registers clear on read: read them once to zero them. Queue q
    /// counts in per-queue statistics counter q (the last one for q >= 16).
    fn init_stats(&mut self) {
        crate::IxyDevice::reset_stats(self);
        let r = &self.shell.regs;
        for n in 0..MAX_QUEUES as usize / 4 {
            let map = byte_fields(n, |q| q.min(regs::NUM_QPRDC - 1));
            r.write32(regs::rqsmr(n), map);
            r.write32(regs::tqsm(n), map);
        }
    }

    /// The interrupt setup of 4.6.3.1 / 7.3, for receive queue `q` on vector `q` (one
    /// vector per queue; tx queues raise no interrupt). All vectors stay masked: a queue
    /// unmasks its own (EIMS) only while it sleeps, see `intel::irq`.
    fn init_interrupts(&self) {
        let r = &self.shell.regs;
        let msix = self.d.irq_mode == IrqMode::MsiX;
        // Mask everything while the causes are routed.
        self.mask_interrupts();
        // 8.2.3.5 GPIE: MSI-X mode with the pending bit array, and auto-masking (EIAM)
        // when a vector's message is sent, so a woken queue needs no EIMC write.
        if msix {
            let bits = regs::GPIE_MULTIPLE_MSIX | regs::GPIE_EIAME | regs::GPIE_PBA_SUPPORT;
            r.set_bits(IRQ_82599.gpie, bits);
        }
        // 8.2.3.5: IVAR(q / 2) holds rx queue q's entry; EIAC and EIAM_EX(0) (MSI-X only).
        let ivar = |q| (regs::ivar(q / 2), regs::ivar_rx_shift(q));
        let at = (IRQ_82599, self.shell.irqs.len());
        irq::route_vectors(r, at, ivar, RX_EITR, msix);
    }

    /// How the receive vectors are delivered; `None` when polling.
    pub fn irq_mode(&self) -> Option<IrqMode> {
        (!self.shell.irqs.is_empty()).then_some(self.d.irq_mode)
    }

    /// 4.6.4: the 82599 MAC link, as Linux sets it up: the link enabled even if the NVM
    /// disabled it (AUTOC2, `ixgbe_reset_hw_82599`), an SFP+ port's laser on (ESDP.SDP3
    /// clear, then 100 ms) and its link mode 10 Gb/s serial (`ixgbe_setup_sfp_modules_82599`;
    /// AUTOC.10G_PMA_PMD is left as loaded, as there); every other port keeps the mode its
    /// NVM loaded into AUTOC. Then auto-negotiation restarts. The datasheet waits for the
    /// link here; that happens at the end.
    fn init_link(&self) {
        let r = &self.shell.regs;
        r.clear_bits(regs::AUTOC2, regs::AUTOC2_LINK_DISABLE_MASK);
        if has_laser_control(self.d.device_id) {
            r.clear_bits(regs::ESDP, regs::ESDP_SDP3);
            std::thread::sleep(LASER_ON_DELAY);
        }
        let mut autoc = r.read32(regs::AUTOC);
        if is_sfp(self.d.device_id) {
            autoc = autoc & !regs::AUTOC_LMS_MASK | regs::AUTOC_LMS_10G_SERIAL;
        }
        r.write32(regs::AUTOC, autoc | regs::AUTOC_RESTART_AN);
    }

    /// 4.6.7: receive initialisation, then 4.6.7.1: enabling each queue.
    fn init_rx(&mut self, o: &IxgbeOptions) -> Result<()> {
        // Receive stays off while it is configured.
        self.shell.regs.clear_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        self.init_rx_buffers();
        // Receive filters while RXEN is clear (8.2.3.7.1): broadcast, and promiscuous if
        // asked for.
        self.shell.regs.set_bits(regs::FCTRL, regs::FCTRL_BAM);
        crate::IxyDevice::set_promisc(self, o.promisc)?;
        let s = &mut self.shell;
        // Per queue: buffers, descriptor type, ring (4.6.7, 7.1.9), and (last sentence of
        // 4.6.7) a reserved DCA bit that resets to 1 but must be 0.
        for (q, ring) in s.rx.iter().enumerate() {
            queue::set_srrctl(&s.regs, regs::srrctl(q), SRRCTL_BITS);
            queue::program_ring(&s.regs, &regs::rx_queue(q), ring.descriptors());
            (s.regs).clear_bits(regs::dca_rxctrl(q), regs::DCA_RXCTRL_RESERVED_BIT12);
        }
        // RSS over several queues (7.1.2.8; 8.2.3.7.12-14), set while receive is off.
        // With one queue MRQC stays 0 (its reset value): every frame goes to queue 0.
        if s.rx.len() > 1 {
            crate::intel::program_rss(&s.regs, s.rx.len(), regs::MRQC_MRQE_RSS);
        }
        // Last sentence of 4.6.7: no-snoop disable.
        s.regs.set_bits(regs::CTRL_EXT, regs::CTRL_EXT_NS_DIS);
        // 4.6.7.1: enable each queue, wait until the enable bit reads back, then hand the
        // buffers to the device by moving the tail.
        for q in 0..s.rx.len() {
            let what = format!("receive queue {q} to enable (RXDCTL.ENABLE)");
            s.enable_queue(&regs::rx_queue(q), &what)?;
            s.rx[q].start(&s.regs);
        }
        // Finally receive on (4.6.7: RXCTRL.RXEN after all other settings).
        self.enable_rx();
        Ok(())
    }

    /// 4.6.7 / 4.6.11.3.4 (no DCB, no virtualisation): the receive packet buffers, flow
    /// control thresholds and CRC stripping.
    fn init_rx_buffers(&self) {
        let r = &self.shell.regs;
        // All packet buffer to buffer 0, whose size depends on the MAC.
        let pb_bytes = self.d.mac.rx_pb_size_kb() << regs::RXPBSIZE_SHIFT;
        r.write32(regs::rxpbsize(0), pb_bytes);
        // 4.6.3.2: FCRTH[n].RTH is set whether flow control is used or not, typically to
        // RXPBSIZE[n] - 0x6000 (0 for the unused buffers; Linux `ixgbe_fc_enable_generic`).
        r.write32(regs::fcrth(0), pb_bytes - regs::FCRTH_HEADROOM);
        for i in 1..8 {
            r.write32(regs::rxpbsize(i), 0);
            r.write32(regs::fcrth(i), 0);
        }
        // 4.6.11.3.4 (DCB off): receive legacy flow control on (MFLCN.RFCE).
        r.set_bits(regs::MFLCN, regs::MFLCN_RFCE);

        // CRC stripping, in the MAC (HLREG0) and the DMA (RDRXCTL) alike.
        r.set_bits(regs::HLREG0, regs::HLREG0_RXCRCSTRP);
        // 4.6.7 / 8.2.3.8.8: RSCFRSTSIZE to 0 (not its default), RSCACKC and FCOE_WRFIX
        // to 1b (Linux `ixgbe_setup_rdrxctl` does the same on the 82599 and X540).
        let set = regs::RDRXCTL_CRCSTRIP | regs::RDRXCTL_RSCACKC | regs::RDRXCTL_FCOE_WRFIX;
        let rdrxctl = r.read32(regs::RDRXCTL) & !regs::RDRXCTL_RSCFRSTSIZE;
        r.write32(regs::RDRXCTL, rdrxctl | set);
    }

    /// Sets RXCTRL.RXEN; on the 82599 with the receive data path halted around it (4.6.7,
    /// an errata workaround in Linux `ixgbe_enable_rx_dma_82599`): SECRXCTRL.RX_DIS, wait
    /// for SECRXSTAT.SECRX_RDY, RXEN, clear RX_DIS. A halt that does not come is logged and
    /// RXEN set anyway, as Linux, DPDK and FreeBSD do.
    fn enable_rx(&self) {
        let r = &self.shell.regs;
        let rxen = || r.set_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        if !self.d.mac.is_82599() {
            return rxen();
        }
        let secrxctrl = r.read32(regs::SECRXCTRL);
        r.write32(regs::SECRXCTRL, secrxctrl | regs::SECRXCTRL_RX_DIS);
        let rdy = regs::SECRXSTAT_SECRX_RDY;
        let what = "receive data path to halt (SECRXSTAT.SECRX_RDY)";
        let halted = (self.shell).wait(regs::SECRXSTAT, rdy, rdy, SECRX_TIMEOUT, what);
        if let Err(e) = halted {
            log::warn!("{}: {e}; enabling receive anyway", self.shell.name);
        }
        rxen();
        r.write32(regs::SECRXCTRL, secrxctrl & !regs::SECRXCTRL_RX_DIS);
    }

    /// 4.6.8: transmit initialisation, then 4.6.8.1: enabling each queue.
    fn init_tx(&mut self) -> Result<()> {
        let r = &self.shell.regs;
        // CRC and padding of short frames by the MAC.
        r.set_bits(regs::HLREG0, regs::HLREG0_TXCRCEN | regs::HLREG0_TXPADEN);

        // 4.6.11.3.4 (no DCB, no virtualisation): arbiter off while configuring, all
        // packet buffer to buffer 0, the DCB-off request size, arbiter on.
        r.set_bits(regs::RTTDCS, regs::RTTDCS_ARBDIS);
        r.write32(regs::txpbsize(0), regs::TXPBSIZE_160KB);
        for i in 1..8 {
            r.write32(regs::txpbsize(i), 0);
        }
        r.write32(regs::DTXMXSZRQ, regs::DTXMXSZRQ_MAX);
        r.clear_bits(regs::RTTDCS, regs::RTTDCS_ARBDIS);

        // Per queue: empty ring (head = tail = 0) and write-back thresholds (7.2.3.4.1,
        // 7.2.3.5).
        for (q, ring) in self.shell.tx.iter().enumerate() {
            let qr = regs::tx_queue(q);
            queue::program_ring(r, &qr, ring.descriptors());
            let txdctl = r.read32(qr.ctl) & !regs::TXDCTL_THRESH_MASK;
            r.write32(qr.ctl, txdctl | regs::TXDCTL_THRESH);
        }

        // Transmit DMA on.
        r.set_bits(regs::DMATXCTL, regs::DMATXCTL_TE);

        // 4.6.8.1: enable each queue, wait for the read-back.
        for q in 0..self.shell.tx.len() {
            let what = format!("transmit queue {q} to enable (TXDCTL.ENABLE)");
            self.shell.enable_queue(&regs::tx_queue(q), &what)?;
        }
        Ok(())
    }
}

impl<R: RegisterSpace> IntelDriver<R> for IxgbeDevice<R> {
    type Only = PfOptions;
    const KIND: DriverKind = DriverKind::Ixgbe;
    const QUEUES: Option<Queues2> = Some(QUEUES);

    /// Queue counts and interrupt timeout from `cfg`, defaults for the rest.
    fn options(cfg: &DeviceConfig) -> IxgbeOptions {
        let o = IxgbeOptions::default().queues(cfg.rx_queues, cfg.tx_queues);
        o.interrupt_timeout_ms(cfg.interrupt_timeout_ms)
    }

    /// Also queue counts and pools the device cannot have: received traffic is spread by
    /// RSS, over at most 16 queues (7.1.2.8), each of which can have its own vector
    /// (RSS_MAX_QUEUES = MAX_INTERRUPT_QUEUES).
    fn check(o: &IxgbeOptions) -> Result<()> {
        let rss = " (RSS spreads received traffic over at most 16, 82599 datasheet 7.1.2.8)";
        o.check_queues("ixgbe", [regs::RSS_MAX_QUEUES, MAX_QUEUES], rss)
    }

    fn supports(id: &crate::pci::DeviceId) -> Result<()> {
        mac_type(id.device, &id.address.to_string()).map(drop)
    }

    fn init(on: On<'_, R>, o: &IxgbeOptions) -> Result<Self> {
        let (o, irqs) = irq::pf_vectors(o, on.pci)?;
        let (mac, irq_mode) = (mac_type(o.device_id, on.name)?, o.irq_mode);
        let d = Ixgbe {
            mac,
            irq_mode,
            device_id: o.device_id,
        };
        let mut dev = IntelDevice::new(Shell::new(on.name, on.regs, IRQ_82599, irqs), d);
        // On error `dev` is dropped, which resets the device before its memory is freed.
        dev.init(on.dma, &o)?;
        Ok(dev)
    }

    /// The MAC in receive address entry 0 (RAL(0)/RAH(0)), loaded from the EEPROM.
    fn mac(&self) -> [u8; 6] {
        crate::intel::read_mac(&self.shell.regs, regs::ral(0), regs::rah(0))
    }

    fn set_mac(&mut self, mac: [u8; 6]) -> Result<()> {
        crate::intel::write_mac(&self.shell.regs, regs::ral(0), regs::rah(0), mac);
        Ok(())
    }

    /// Speed from LINKS ([`links_speed`]; LINKS.NON_STD on the X550): 0 while down.
    fn speed(&self) -> u32 {
        let links = self.shell.regs.read32(regs::LINKS);
        links_speed(links, self.d.mac == MacType::X550)
    }

    /// Unicast and multicast promiscuous (FCTRL.UPE, FCTRL.MPE). Receive, if on, is
    /// switched off around the filter change (8.2.3.7.1: filters change only with
    /// RXCTRL.RXEN clear) and back on with the sequence of 4.6.7.
    fn promisc_on(&mut self, enabled: bool) -> Result<()> {
        let r = &self.shell.regs;
        let rx_on = r.read32(regs::RXCTRL) & regs::RXCTRL_RXEN != 0;
        if rx_on {
            r.clear_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        }
        let (fctrl, bits) = (r.read32(regs::FCTRL), regs::FCTRL_UPE | regs::FCTRL_MPE);
        let fctrl = if enabled { fctrl | bits } else { fctrl & !bits };
        r.write32(regs::FCTRL, fctrl);
        if rx_on {
            self.enable_rx();
        }
        Ok(())
    }

    /// Adds the clear-on-read counters to the accumulated ones (8.2.3.23), per queue from
    /// the queue statistics counters mapped in `init_stats`. GPRC/GORC are
    /// MAC counters: they also count frames the DMA then drops for lack of descriptors
    /// (SRRCTL.DROP_EN, counted in QPRDC; the 82598 datasheet says GPRC leaves out only
    /// MPC's packet buffer misses, and MoonGen reads GPRC as frames at the NIC). So
    /// `rx_packets` is GPRC minus QPRDC, the frames delivered into the rings (QPRDC read
    /// first: a frame counted there is already in GPRC); `rx_bytes` (GORC) still
    /// includes the dropped frames' octets, which no counter separates.
    fn read_counters(&mut self) {
        let (rx, tx) = self.shell.queues();
        let (dev, s) = (&self.shell.regs, &mut self.shell.stats);
        let r = |reg: usize| u64::from(dev.read32(reg));
        // Per queue: QPRC, QBRC, QPTC, QBTC (octets without the CRC, like the totals). Low
        // register first: reading the high one clears the pair.
        let wide = |low: usize| r(low) | r(low + 4) << 32;
        let per_queue = [
            (&mut s.rx_queues, rx, [regs::qprc, regs::qbrc_l]),
            (&mut s.tx_queues, tx, [regs::qptc, regs::qbtc_l]),
        ];
        for (list, n, [packets, bytes]) in per_queue {
            list.resize(n.min(regs::NUM_QPRDC), Default::default());
            for (c, q) in list.iter_mut().enumerate() {
                let (p, b) = (r(packets(c)), wide(bytes(c)));
                (q.packets, q.bytes) = (q.packets + p, q.bytes + b.saturating_sub(4 * p));
            }
        }
        let counted = rx.min(regs::NUM_QPRDC);
        let qprdc: u64 = (0..counted).map(|q| r(regs::qprdc(q))).sum();
        let mpc: u64 = (0..regs::NUM_MPC).map(|i| r(regs::mpc(i))).sum();
        // Receive errors: CRC and length (Linux `ixgbe_update_stats` counts CRCERRS and
        // RLEC), and the frames too short or too long to pass (RUC, ROC).
        let errors = [regs::CRCERRS, regs::RLEC, regs::RUC, regs::ROC].map(r);
        s.rx_errors += errors.iter().sum::<u64>();
        s.rx_dropped += mpc + qprdc;
        self.shell.add_good_counters();
        let s = &mut self.shell.stats;
        s.rx_packets = s.rx_packets.saturating_sub(qprdc);
    }

    /// Receive off, queues disabled and read back disabled (4.6.7.1.2, 4.6.8.1), then
    /// master disable and a global reset (4.2.1.6.1, 4.6.3.2).
    fn close(&mut self) {
        // 4.6.3.1: no interrupts while the device goes down.
        self.mask_interrupts();
        let s = &self.shell;
        s.regs.clear_bits(regs::RXCTRL, regs::RXCTRL_RXEN);
        // Each queue off and read back off, then (4.6.7.1.2) ~100 us more.
        s.stop_queues(s.queue_ctls(QUEUES));
        std::thread::sleep(QUEUE_DISABLE_SETTLE);
        let (reset, r) = (self.reset(), &self.shell.regs);
        // Linux `ixgbe_down`, `ixgbe_release_hw_control`: laser off, firmware told.
        if has_laser_control(self.d.device_id) {
            r.set_bits(regs::ESDP, regs::ESDP_SDP3);
        }
        r.clear_bits(regs::CTRL_EXT, regs::CTRL_EXT_DRV_LOAD);
        if let Err(e) = reset {
            log::error!("{}: {e}", self.shell.name);
            self.shell.fence_off();
        }
    }
}
