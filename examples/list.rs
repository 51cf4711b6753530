//! Lists the machine's network-class PCI functions without lspci: address, vendor:device,
//! name, the ixy driver that would drive it, its kernel driver and interfaces, and whether
//! the interface guard would refuse to take it. Reads sysfs only; changes nothing.
//!
//! `list` (no arguments)

mod common;

const USAGE: common::Usage = common::Usage {
    synopsis: "list   (prints every network-class PCI function; changes nothing)",
    env: &[],
    device_env: false,
};

fn main() {
    if std::env::args().len() != 1 {
        USAGE.exit("list takes no arguments");
    }
    let nics = ixy::pci::list_nics().unwrap_or_else(|e| common::fail(e));
    if nics.is_empty() {
        println!("no network-class PCI function found in /sys/bus/pci/devices");
        return;
    }
    println!(
        "{:<13} {:<10} {:<34} {:<8} {:<12} {:<24} interfaces",
        "address", "id", "name", "ixy", "kernel", "guard"
    );
    for n in &nics {
        let interfaces = n
            .interfaces
            .iter()
            .map(|i| format!("{} ({})", i.name, i.describe()))
            .collect::<Vec<_>>()
            .join(", ");
        let guard = match n.refused_by() {
            Some(i) => format!("refuses ({} in use)", i.name),
            None => "would let it go".to_string(),
        };
        println!(
            "{:<13} {:04x}:{:04x}  {:<34} {:<8} {:<12} {guard:<24} {}",
            n.id.address.to_string(),
            n.id.vendor,
            n.id.device,
            n.name().unwrap_or("(no ixy driver)"),
            n.driver.map_or("-", |d| d.name()),
            n.kernel_driver.as_deref().unwrap_or("(none)"),
            if interfaces.is_empty() {
                "-"
            } else {
                &interfaces
            }
        );
    }
}
