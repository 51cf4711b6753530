//! The active-interface guard: before a device is taken from a kernel network driver, find
//! its network interfaces and tell whether any is in use (up, with an address or a route).
//! Taking such a device would cut a live link — possibly the user's own SSH session — so
//! [`super::PciDevice::unbind`] refuses unless forced (as `dpdk-devbind.py` does).

use std::ffi::CStr;
use std::fs;
use std::path::Path;

/// What the kernel says about one network interface of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceState {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// IFF_UP is set.
    pub up: bool,
    /// IPv4 and non-link-local IPv6 addresses.
    pub addresses: Vec<String>,
    /// Number of routes through the interface (IPv4, and IPv6 other than link-local and
    /// multicast).
    pub routes: usize,
}

impl InterfaceState {
    /// True if taking the device would cut a link in use.
    pub fn is_active(&self) -> bool {
        self.up && (!self.addresses.is_empty() || self.routes > 0)
    }

    /// One line for an error message.
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.up { "up" } else { "down" }.to_string()];
        if !self.addresses.is_empty() {
            parts.push(format!("addresses {}", self.addresses.join(", ")));
        }
        if self.routes > 0 {
            parts.push(format!("{} route(s)", self.routes));
        }
        parts.join(", ")
    }
}

/// Names of the kernel network interfaces belonging to the device at `dev_path`
/// (`net/*` directly, or below a virtio child: `virtio*/net/*`).
pub fn interface_names(dev_path: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut collect = |net: &Path| {
        if let Ok(entries) = fs::read_dir(net) {
            names.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    };
    collect(&dev_path.join("net"));
    if let Ok(entries) = fs::read_dir(dev_path) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("virtio") {
                collect(&e.path().join("net"));
            }
        }
    }
    names.sort();
    names
}

/// The device's interfaces that are in use.
pub fn active_interfaces(dev_path: &Path) -> Vec<InterfaceState> {
    interface_names(dev_path)
        .into_iter()
        .map(|name| interface_state(&name))
        .filter(InterfaceState::is_active)
        .collect()
}

/// Reads the state of interface `name` from sysfs, getifaddrs and /proc/net.
pub fn interface_state(name: &str) -> InterfaceState {
    // linux/if.h: IFF_UP = 0x1. sysfs prints flags as "0x1003".
    let flags = fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    let routes = count_routes(
        name,
        &fs::read_to_string("/proc/net/route").unwrap_or_default(),
        &fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default(),
    );
    InterfaceState {
        name: name.to_string(),
        up: flags & 1 != 0,
        addresses: addresses(name),
        routes,
    }
}

/// Counts routes through `name` in the text of /proc/net/route and /proc/net/ipv6_route.
fn count_routes(name: &str, ipv4: &str, ipv6: &str) -> usize {
    // /proc/net/route: header line, then "Iface Destination Gateway ..." per route.
    let v4 = ipv4
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().next() == Some(name))
        .count();
    // /proc/net/ipv6_route: "dest plen src plen gateway metric refcnt use flags iface".
    let v6 = ipv6
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 10 && f[9] == name && !f[0].starts_with("fe80") && !f[0].starts_with("ff")
        })
        .count();
    v4 + v6
}

/// IPv4 and non-link-local IPv6 addresses of `name`, from getifaddrs(3).
fn addresses(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head to `ifap`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says which struct it is.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family == libc::AF_INET {
            // SAFETY: AF_INET addresses are sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            out.push(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string());
        } else if family == libc::AF_INET6 {
            // SAFETY: AF_INET6 addresses are sockaddr_in6.
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            if ip.segments()[0] & 0xffc0 != 0xfe80 {
                out.push(ip.to_string());
            }
        }
    }
    // SAFETY: frees the list from getifaddrs exactly once; no node is used afterwards.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_counted_per_interface() {
        let v4 = "Iface\tDestination\tGateway\tFlags\n\
                  eth0\t00000000\t0100000A\t0003\n\
                  eth0\t0000000A\t00000000\t0001\n\
                  eth1\t0001A8C0\t00000000\t0001\n\
                  eth10\t0002A8C0\t00000000\t0001\n";
        let v6 = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 \
                  00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                  20010db8000000000000000000000000 40 00000000000000000000000000000000 00 \
                  00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                  ff000000000000000000000000000000 08 00000000000000000000000000000000 00 \
                  00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1\n";
        assert_eq!(count_routes("eth0", v4, v6), 3);
        assert_eq!(count_routes("eth1", v4, v6), 1);
        assert_eq!(count_routes("eth2", v4, v6), 0);
        // Names match whole fields only; the header line is no route.
        assert_eq!(count_routes("eth10", v4, v6), 1);
        assert_eq!(count_routes("eth", v4, v6), 0);
        assert_eq!(count_routes("Iface", v4, v6), 0);
        // Only the non-link-local, non-multicast IPv6 route of eth0 counts.
        assert_eq!(count_routes("eth0", "", v6), 1);
        assert_eq!(count_routes("eth1", "", v6), 0);
    }

    #[test]
    fn active_means_up_with_address_or_route() {
        let mut s = InterfaceState {
            name: "eth0".into(),
            up: true,
            addresses: vec![],
            routes: 0,
        };
        assert!(!s.is_active());
        assert_eq!(s.describe(), "up");
        s.routes = 1;
        assert!(s.is_active());
        assert_eq!(s.describe(), "up, 1 route(s)");
        s.up = false;
        assert!(!s.is_active());
        assert_eq!(s.describe(), "down, 1 route(s)");
        s.up = true;
        s.routes = 0;
        s.addresses.push("10.0.0.1".into());
        assert!(s.is_active());
        assert_eq!(s.describe(), "up, addresses 10.0.0.1");
        s.addresses.push("2001:db8::1".into());
        s.routes = 2;
        assert!(s.is_active());
        assert_eq!(
            s.describe(),
            "up, addresses 10.0.0.1, 2001:db8::1, 2 route(s)"
        );
        s.up = false;
        assert!(!s.is_active(), "a down interface carries no link");
    }

    #[test]
    fn loopback_is_seen_as_up_with_an_address() {
        // The one interface every machine has; proves the sysfs/getifaddrs reading works.
        let lo = interface_state("lo");
        assert_eq!(lo.name, "lo");
        assert!(lo.up, "{lo:?}");
        assert!(lo.addresses.iter().any(|a| a == "127.0.0.1"), "{lo:?}");
        assert!(lo.is_active(), "{lo:?}");
        // An interface that does not exist: down, no addresses, no routes.
        assert_eq!(
            interface_state("ixy-no-such0"),
            InterfaceState {
                name: "ixy-no-such0".into(),
                up: false,
                addresses: vec![],
                routes: 0,
            }
        );
    }

    #[test]
    fn interfaces_are_found_directly_and_below_virtio_children() {
        let root = std::env::temp_dir().join(format!("ixy-guard-{}", std::process::id()));
        fs::create_dir_all(root.join("net/enp0s3")).unwrap();
        fs::create_dir_all(root.join("virtio0/net/eth0")).unwrap();
        // A `net` directory below a child that is not virtio belongs to another device.
        fs::create_dir_all(root.join("usb1/net/usb0")).unwrap();
        assert_eq!(interface_names(&root), vec!["enp0s3", "eth0"]);
        assert_eq!(interface_names(&root.join("missing")), Vec::<String>::new());
        // Of a device with `lo` and an interface that does not exist, only `lo` is in use.
        let other = root.join("other");
        fs::create_dir_all(other.join("net/lo")).unwrap();
        fs::create_dir_all(other.join("net/ixy-no-such0")).unwrap();
        let active = active_interfaces(&other);
        assert_eq!(
            active.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            vec!["lo"]
        );
        fs::remove_dir_all(root).unwrap();
    }
}
