//! The crate's one error type.
//!
//! Every variant carries enough context to tell the user what went wrong and what to do
//! about it; the `Display` text is meant to be printed as-is.

use std::fmt;
use std::io;

/// Where the PCI address errors send the user: the example that lists the NICs.
const LIST_HINT: &str = "`cargo run --example list` shows the network controllers";

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while setting up or driving a device.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A PCI address string that does not have the form `DDDD:BB:DD.F`.
    InvalidPciAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No PCI device exists at the given address.
    NoSuchDevice {
        /// The address as given.
        address: String,
    },
    /// The device exists but is not a network controller (PCI class 0x02).
    NotANic {
        /// The device's address.
        address: String,
        /// The PCI class code read from config space.
        class: u32,
    },
    /// The device is a network controller that no driver of this crate supports.
    Unsupported {
        /// The device's address.
        address: String,
        /// PCI vendor id.
        vendor: u16,
        /// PCI device id.
        device: u16,
        /// Why it is not supported.
        reason: String,
    },
    /// The device is bound to a kernel network driver whose interface is in use.
    InterfaceActive {
        /// The device's address.
        address: String,
        /// The kernel interface name, e.g. `eth0`.
        interface: String,
        /// What makes it active (addresses, routes, link up).
        detail: String,
    },
    /// Hugepages are missing or exhausted.
    Hugepages {
        /// What failed, and the command that fixes it (naming the mount in use).
        detail: String,
    },
    /// A virtual address has no physical frame number in /proc/self/pagemap.
    NoPhysicalAddress {
        /// What failed.
        detail: String,
    },
    /// A configuration value that cannot work (queue counts, ring sizes, pool sizes).
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// The device did not do what the datasheet says within the allowed time, or reported
    /// something impossible.
    Device {
        /// The device's address.
        address: String,
        /// What the device did or did not do.
        detail: String,
    },
    /// The VFIO path failed: group not viable, group file not accessible, no IOMMU,
    /// device not bound to vfio-pci when VFIO is required.
    Vfio {
        /// The device's address (or the resource concerned).
        address: String,
        /// What is wrong and what to do.
        detail: String,
    },
    /// Mapping DMA memory through the IOMMU would exceed `RLIMIT_MEMLOCK`.
    MemlockLimit {
        /// The soft limit in bytes.
        limit: u64,
        /// Bytes already locked by this process.
        locked: u64,
        /// Bytes the failed mapping asked for.
        requested: u64,
    },
    /// Something the operating system refused: opening, mapping or writing a file.
    Io {
        /// What was being attempted (includes the path).
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an `io::Error` with a description of what was being attempted.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A device misbehaved.
    pub(crate) fn device(address: impl fmt::Display, detail: impl Into<String>) -> Self {
        Error::Device {
            address: address.to_string(),
            detail: detail.into(),
        }
    }

    /// A VFIO failure concerning `address` (a device's, or the resource concerned).
    pub(crate) fn vfio(address: impl fmt::Display, detail: impl Into<String>) -> Self {
        Error::Vfio {
            address: address.to_string(),
            detail: detail.into(),
        }
    }

    /// Missing or exhausted hugepages.
    pub(crate) fn hugepages(detail: impl Into<String>) -> Self {
        Error::Hugepages {
            detail: detail.into(),
        }
    }

    /// An impossible configuration.
    pub(crate) fn config(detail: impl Into<String>) -> Self {
        Error::InvalidConfig {
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidPciAddress { address, reason } => write!(
                f,
                "invalid PCI address '{address}': {reason}; expected the form 0000:03:00.0 \
                 ({LIST_HINT})"
            ),
            Error::NoSuchDevice { address } => write!(
                f,
                "no PCI device at address {address}: check the address ({LIST_HINT})"
            ),
            Error::NotANic { address, class } => write!(
                f,
                "device {address} is not a network controller (PCI class {class:06x}); \
                 pass the address of an Ethernet controller ({LIST_HINT})"
            ),
            Error::Unsupported {
                address,
                vendor,
                device,
                reason,
            } => write!(
                f,
                "network controller {address} ({vendor:04x}:{device:04x}) is not supported: \
                 {reason}"
            ),
            Error::InterfaceActive {
                address,
                interface,
                detail,
            } => write!(
                f,
                "refusing to take device {address} from the kernel: its interface {interface} \
                 is in use ({detail}); taking it would cut that link. Bring {interface} down \
                 and remove its addresses first (`ip link set {interface} down`), or force \
                 it (DeviceConfig.force_unbind = true, or IXY_FORCE_UNBIND=1 for the examples)"
            ),
            Error::Hugepages { detail } => write!(f, "hugepage memory unavailable: {detail}"),
            Error::NoPhysicalAddress { detail } => write!(
                f,
                "cannot translate DMA memory to physical addresses: {detail}; \
                 /proc/self/pagemap only reveals frame numbers to root (CAP_SYS_ADMIN): \
                 run as root, or bind the device to vfio-pci to run without root"
            ),
            Error::InvalidConfig { detail } => write!(f, "invalid configuration: {detail}"),
            Error::Device { address, detail } => write!(f, "device {address}: {detail}"),
            Error::Vfio { address, detail } => write!(f, "VFIO: device {address}: {detail}"),
            Error::MemlockLimit {
                limit,
                locked,
                requested,
            } => memlock_advice(f, [*limit, *locked, *requested]),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

/// The text of [`Error::MemlockLimit`]: the figures in KiB and how to raise the limit.
fn memlock_advice(f: &mut fmt::Formatter<'_>, bytes: [u64; 3]) -> fmt::Result {
    let [limit, locked, requested] = bytes.map(|b| b / 1024);
    let needed = locked + requested;
    write!(
        f,
        "cannot pin {requested} KiB of DMA memory for the IOMMU: the locked-memory limit \
         (RLIMIT_MEMLOCK) is {limit} KiB and {locked} KiB are already locked; this process \
         needs at least {needed} KiB for this allocation (each device pins about 12-16 MiB: \
         its rings and packet pool). Raise it before starting (as root, or via \
         /etc/security/limits.conf: `<user> - memlock unlimited`), e.g. `ulimit -l {}` or \
         `ulimit -l unlimited`",
        needed.max(65536)
    )
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Asserts that `result` is an [`Error::InvalidConfig`] whose message names `fact` (the
/// variant and the one fact, not the whole sentence).
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_invalid<T>(result: Result<T>, fact: &str) {
    match result {
        Err(e @ Error::InvalidConfig { .. }) => {
            assert!(e.to_string().contains(fact), "{e:?} does not name {fact:?}")
        }
        Err(e) => panic!("expected InvalidConfig naming {fact:?}, got {e:?}"),
        Ok(_) => panic!("expected InvalidConfig naming {fact:?}, got Ok"),
    }
}
