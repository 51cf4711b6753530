//! Finding NICs without `lspci`: every network-class PCI function in sysfs, with the ixy
//! driver that would drive it, its kernel driver and interfaces, and the interface guard's
//! verdict. Only reads; `examples/list.rs` prints it.

use std::fs;
use std::path::Path;

use super::guard::{self, InterfaceState, NetView};
use super::{DeviceId, DriverKind, PciAddress};
use crate::error::{Error, Result};

/// One network-class PCI function, as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicInfo {
    /// Address, vendor, device and class.
    pub id: DeviceId,
    /// The ixy driver that would drive it (`None`: no ixy driver does).
    pub driver: Option<DriverKind>,
    /// The kernel driver it is bound to (`None`: no driver).
    pub kernel_driver: Option<String>,
    /// Its kernel network interfaces (also those below a virtio child) and their state.
    pub interfaces: Vec<InterfaceState>,
}

impl NicInfo {
    /// The device's model name from the ixy drivers' id tables, if an ixy driver drives it.
    pub fn name(&self) -> Option<&'static str> {
        self.driver?.model(self.id.vendor, self.id.device)
    }

    /// The interface for which the guard (when a driver claims it) refuses to take the
    /// device: one that is up with an address or a route. `None`: the guard lets it go.
    pub fn refused_by(&self) -> Option<&InterfaceState> {
        self.interfaces.iter().find(|i| i.is_active())
    }
}

/// Every network-class PCI function of this machine, in address order. Reads
/// `/sys/bus/pci/devices` and the interfaces' state; changes nothing.
pub fn list_nics() -> Result<Vec<NicInfo>> {
    list_nics_at(Path::new(super::SYSFS_PCI_DEVICES), &NetView::kernel())
}

/// [`list_nics`] on the device tree at `root`, with interface state from `net`.
pub(crate) fn list_nics_at(root: &Path, net: &NetView) -> Result<Vec<NicInfo>> {
    let entries =
        fs::read_dir(root).map_err(|e| Error::io(format!("cannot list {}", root.display()), e))?;
    let mut nics = Vec::new();
    for entry in entries.flatten() {
        let Ok(address) = entry.file_name().to_string_lossy().parse::<PciAddress>() else {
            continue;
        };
        let path = entry.path();
        let id = match super::identify(address, &path) {
            Ok(id) => id,
            Err(Error::NotANic { .. }) => continue,
            Err(e) => return Err(e),
        };
        let names = guard::interface_names(&path);
        nics.push(NicInfo {
            driver: super::driver_for(&id),
            id,
            kernel_driver: super::kernel_driver(&path),
            interfaces: names.iter().map(|n| net.interface_state(n)).collect(),
        });
    }
    nics.sort_by_key(|n| n.id.address.to_string());
    Ok(nics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::testing::fake_device;
    use crate::testing::TempDir;

    /// Interface state from `<root>/sys/class/net/<name>/flags`; only eth0 has an address.
    fn net(root: &Path) -> NetView {
        NetView {
            root: root.into(),
            addresses: |name| match name {
                "eth0" => vec!["10.0.0.5".into()],
                _ => vec![],
            },
        }
    }

    /// Gives the device at `dev` the interface `name` (below `sub`), up or down.
    fn interface(root: &Path, dev: &Path, sub: &str, name: &str, up: bool) {
        fs::create_dir_all(dev.join(sub).join(name)).unwrap();
        let class = root.join("sys/class/net").join(name);
        fs::create_dir_all(&class).unwrap();
        let flags = if up { "0x1003" } else { "0x1002" };
        fs::write(class.join("flags"), flags).unwrap();
    }

    #[test]
    fn lists_network_functions_with_drivers_interfaces_and_the_guards_verdict() {
        let root = TempDir::new("list");
        let net_class = [0, 0, 2];
        let virtio = fake_device(
            &root,
            "0000:00:03.0",
            net_class,
            0x1af4,
            0x1041,
            Some("virtio-pci"),
        );
        interface(&root, &virtio, "virtio2/net", "eth0", true);
        // Not a network controller (a virtio console, class ffff00): left out.
        fake_device(&root, "0000:00:01.0", [0, 0xff, 0xff], 0x1af4, 0x1045, None);
        fake_device(
            &root,
            "0000:03:00.0",
            net_class,
            0x8086,
            0x10fb,
            Some("vfio-pci"),
        );
        let pf = fake_device(
            &root,
            "0000:03:00.1",
            net_class,
            0x8086,
            0x10fb,
            Some("ixgbe"),
        );
        interface(&root, &pf, "net", "enp3s0f1", false);
        let rtl = fake_device(
            &root,
            "0000:05:00.0",
            net_class,
            0x10ec,
            0x8168,
            Some("r8169"),
        );
        interface(&root, &rtl, "net", "enp5s0", true);
        fake_device(&root, "0000:06:10.0", net_class, 0x8086, 0x10ed, None);

        let nics = list_nics_at(&root, &net(&root)).unwrap();
        let rows: Vec<_> = nics
            .iter()
            .map(|n| {
                (
                    n.id.address.to_string(),
                    n.name(),
                    n.driver.map(DriverKind::name),
                    n.kernel_driver.as_deref(),
                    n.interfaces
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>(),
                    n.refused_by().map(|i| i.name.as_str()),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "0000:00:03.0".into(),
                    Some("virtio-net 1.0"),
                    Some("virtio"),
                    Some("virtio-pci"),
                    vec!["eth0"],
                    Some("eth0")
                ),
                (
                    "0000:03:00.0".into(),
                    Some("82599 SFP+"),
                    Some("ixgbe"),
                    Some("vfio-pci"),
                    vec![],
                    None
                ),
                // Down: the guard lets it go.
                (
                    "0000:03:00.1".into(),
                    Some("82599 SFP+"),
                    Some("ixgbe"),
                    Some("ixgbe"),
                    vec!["enp3s0f1"],
                    None
                ),
                // Up but with no address or route: the guard lets it go.
                (
                    "0000:05:00.0".into(),
                    None,
                    None,
                    Some("r8169"),
                    vec!["enp5s0"],
                    None
                ),
                (
                    "0000:06:10.0".into(),
                    Some("82599 VF"),
                    Some("ixgbevf"),
                    None,
                    vec![],
                    None
                ),
            ]
        );
        assert_eq!((nics[0].id.vendor, nics[0].id.device), (0x1af4, 0x1041));
        assert_eq!(nics[0].interfaces[0].addresses, vec!["10.0.0.5"]);
        assert!(nics[3].interfaces[0].up);
    }

    #[test]
    fn a_tree_that_cannot_be_read_is_an_error() {
        let root = TempDir::new("list-missing");
        let missing = root.join("missing");
        let err = list_nics_at(&missing, &net(&root)).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
    }
}
