//! The active-interface guard: before a device is taken from a kernel network driver, find
//! its network interfaces and tell whether any is in use (up, with an address or a route).
//! Taking such a device would cut a live link — possibly the user's own SSH session — so
//! a claim ([`super::PciDevice::claim`]) refuses unless forced (as `dpdk-devbind.py` does).

use std::ffi::CStr;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

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
pub(crate) fn interface_names(dev_path: &Path) -> Vec<String> {
    let entries = |dir: &Path| fs::read_dir(dir).into_iter().flatten().flatten();
    let name = |e: fs::DirEntry| e.file_name().to_string_lossy().into_owned();
    let virtio =
        entries(dev_path).filter(|e| e.file_name().to_string_lossy().starts_with("virtio"));
    let nets = std::iter::once(dev_path.join("net")).chain(virtio.map(|e| e.path().join("net")));
    let mut names: Vec<String> = nets.flat_map(|net| entries(&net).map(name)).collect();
    names.sort();
    names
}

/// Where the guard reads interface state: the running kernel (`/sys/class/net`,
/// `/proc/net`, getifaddrs), or a test's fake tree.
#[derive(Debug, Clone)]
pub(crate) struct NetView {
    /// What `sys/class/net` (one directory per interface with its `flags`) and `proc/net`
    /// (the `route` and `ipv6_route` tables) are below: `/` for the running kernel.
    pub(super) root: PathBuf,
    /// The IPv4 and non-link-local IPv6 addresses of an interface.
    pub(super) addresses: fn(&str) -> Vec<String>,
}

impl NetView {
    /// The running kernel's view.
    pub(crate) fn kernel() -> NetView {
        NetView {
            root: "/".into(),
            addresses,
        }
    }

    /// The first (by name) of the device's interfaces that is in use.
    pub(crate) fn first_active(&self, dev_path: &Path) -> Option<InterfaceState> {
        let names = interface_names(dev_path);
        let mut states = names.iter().map(|n| self.interface_state(n));
        states.find(InterfaceState::is_active)
    }

    /// The state of interface `name`.
    pub(crate) fn interface_state(&self, name: &str) -> InterfaceState {
        let read = |path: &str| fs::read_to_string(self.root.join(path)).unwrap_or_default();
        // linux/if.h: IFF_UP = 0x1. sysfs prints flags as "0x1003".
        let flags = read(&format!("sys/class/net/{name}/flags"));
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        InterfaceState {
            name: name.to_string(),
            up: flags & 1 != 0,
            addresses: (self.addresses)(name),
            routes: count_routes(name, &read("proc/net/route"), &read("proc/net/ipv6_route")),
        }
    }
}

/// Counts routes through `name` in the text of /proc/net/route and /proc/net/ipv6_route.
fn count_routes(name: &str, ipv4: &str, ipv6: &str) -> usize {
    // /proc/net/route: header line, then "Iface Destination Gateway ..." per route.
    let v4 = ipv4.lines().skip(1).map(|l| l.split_whitespace().next());
    let v4 = v4.filter(|&iface| iface == Some(name)).count();
    // /proc/net/ipv6_route: "dest plen src plen gateway metric refcnt use flags iface";
    // link-local (fe80::/10) and multicast (ff00::/8) routes do not count.
    let local = |dest: &str| dest.starts_with("fe80") || dest.starts_with("ff");
    let v6 = ipv6.lines().map(|l| Vec::from_iter(l.split_whitespace()));
    let v6 = v6.filter(|f| f.len() == 10 && f[9] == name && !local(f[0]));
    v4 + v6.count()
}

/// IPv4 and non-link-local IPv6 addresses of `name`, from getifaddrs(3).
fn addresses(name: &str) -> Vec<String> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head to `ifap`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    // SAFETY: the head of the list getifaddrs returned, alive until freeifaddrs.
    let mut cur = unsafe { ifap.as_ref() };
    while let Some(ifa) = cur {
        // SAFETY: the next node (or null) of the same list; ifa_name is a NUL-terminated
        // string owned by the list.
        let (next, ifname) = unsafe { (ifa.ifa_next.as_ref(), CStr::from_ptr(ifa.ifa_name)) };
        cur = next;
        let addr = ifa.ifa_addr;
        if addr.is_null() || ifname.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: `addr` is a sockaddr owned by the list, whose family says which struct it is.
        match i32::from(unsafe { (*addr).sa_family }) {
            libc::AF_INET => {
                // SAFETY: AF_INET addresses are sockaddr_in.
                let sin = unsafe { &*(addr as *const libc::sockaddr_in) };
                out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string());
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 addresses are sockaddr_in6.
                let sin6 = unsafe { &*(addr as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                out.extend((ip.segments()[0] & 0xffc0 != 0xfe80).then(|| ip.to_string()));
            }
            _ => {}
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

    /// A fake kernel view: `eth9` is up with a default route, `eth8` up with an address,
    /// `eth7` down with an address; anything else does not exist.
    fn fake_view(dir: &Path) -> NetView {
        for (name, flags) in [("eth9", "0x1003"), ("eth8", "0x1043"), ("eth7", "0x1002")] {
            let class = dir.join("sys/class/net").join(name);
            fs::create_dir_all(&class).unwrap();
            fs::write(class.join("flags"), flags).unwrap();
        }
        fs::create_dir_all(dir.join("proc/net")).unwrap();
        fs::write(
            dir.join("proc/net/route"),
            "Iface\tDestination\tGateway\tFlags\neth9\t00000000\t0100000A\t0003\n",
        )
        .unwrap();
        NetView {
            root: dir.into(),
            addresses: |name| match name {
                "eth8" | "eth7" => vec!["192.0.2.8".into()],
                _ => vec![],
            },
        }
    }

    #[test]
    fn interface_state_comes_from_flags_routes_and_addresses() {
        let dir = crate::testing::TempDir::new("guard-view");
        let view = fake_view(&dir);
        let state = |name| view.interface_state(name);
        assert_eq!(state("eth9").describe(), "up, 1 route(s)");
        assert_eq!(state("eth8").describe(), "up, addresses 192.0.2.8");
        assert_eq!(state("eth7").describe(), "down, addresses 192.0.2.8");
        assert!(state("eth9").is_active() && state("eth8").is_active());
        assert!(!state("eth7").is_active());
        // An interface that does not exist: down, no addresses, no routes.
        assert_eq!(
            state("ixy-no-such0"),
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
        let root = crate::testing::TempDir::new("guard");
        fs::create_dir_all(root.join("net/enp0s3")).unwrap();
        fs::create_dir_all(root.join("virtio0/net/eth0")).unwrap();
        // A `net` directory below a child that is not virtio belongs to another device.
        fs::create_dir_all(root.join("usb1/net/usb0")).unwrap();
        assert_eq!(interface_names(&root), vec!["enp0s3", "eth0"]);
        assert_eq!(interface_names(&root.join("missing")), Vec::<String>::new());
        // Of a device with eth7 (down), eth8 (up, address) and eth9 (up, route), the last
        // two are in use.
        let other = root.join("other");
        for name in ["eth7", "eth8", "eth9"] {
            fs::create_dir_all(other.join("net").join(name)).unwrap();
        }
        let view = fake_view(&root);
        assert_eq!(view.first_active(&other).unwrap().name, "eth8");
        fs::remove_dir(other.join("net/eth8")).unwrap();
        assert_eq!(view.first_active(&other).unwrap().name, "eth9");
        fs::remove_dir(other.join("net/eth9")).unwrap();
        assert_eq!(view.first_active(&other), None, "eth7 is down");
    }
}
