#!/bin/sh
# Binds a PCI network device to vfio-pci and gives a user its IOMMU group, so that ixy
# can drive it without root (README.md, section VFIO).
#
#   sudo scripts/vfio-bind.sh [--force] <pci address> [user]
#
# Steps (as in the ixy.rs README): load vfio-pci, take the device from its kernel driver,
# bind it to vfio-pci (driver_override: only this device, not every device with the same
# id), wait for /dev/vfio/<group> and chown it to the user.
#
# Guard (same rule as the library, src/pci/guard.rs): a device whose kernel network
# interface is up with an address or a route is refused, because taking it would cut a
# live link (possibly your own SSH session). --force overrides.
#
# POSIX sh (runs under busybox). Exit status 0 on success; prints the group number.
set -eu

die() { echo "vfio-bind: $*" >&2; exit 1; }

FORCE=0
if [ "${1:-}" = --force ]; then FORCE=1; shift; fi
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 [--force] <pci address, e.g. 0000:03:00.0> [user]"
ADDR="$1"
TARGET_USER="${2:-${SUDO_USER:-}}"
case "$ADDR" in
    ????:??:??.?) ;;
    ??:??.?) ADDR="0000:$ADDR" ;;
    *) die "invalid PCI address '$ADDR'; expected the form 0000:03:00.0 (cargo run --example list shows them)" ;;
esac
DEV="/sys/bus/pci/devices/$ADDR"
[ -e "$DEV/config" ] || die "no PCI device at $ADDR (cargo run --example list shows the NICs)"
[ "$(id -u)" = 0 ] || die "binding a device needs root: sudo $0 $*"

# --- active-interface guard: interfaces directly below the device or below a virtio child.
iface_names() {
    for n in "$DEV"/net/* "$DEV"/virtio*/net/*; do
        [ -e "$n" ] && basename "$n"
    done
    return 0
}
iface_active() { # prints a reason and returns 0 if interface $1 is in use
    ifc="$1"
    flags="$(cat "/sys/class/net/$ifc/flags" 2>/dev/null || echo 0)"
    # IFF_UP = 0x1 (linux/if.h)
    [ $((flags & 1)) = 1 ] || return 1
    addrs=""
    if command -v ip >/dev/null 2>&1; then
        addrs="$(ip -o addr show dev "$ifc" 2>/dev/null |
            awk '$3 == "inet" || ($3 == "inet6" && $4 !~ /^fe80/) {print $4}' | tr '\n' ' ')"
    fi
    routes="$(awk -v i="$ifc" 'NR > 1 && $1 == i' /proc/net/route 2>/dev/null | wc -l)"
    routes6="$(awk -v i="$ifc" 'NF == 10 && $10 == i && $1 !~ /^fe80/ && $1 !~ /^ff/' \
        /proc/net/ipv6_route 2>/dev/null | wc -l)"
    routes=$((routes + routes6))
    if [ -n "$addrs" ] || [ "$routes" -gt 0 ]; then
        echo "up, addresses: ${addrs:-none}, $routes route(s)"
        return 0
    fi
    return 1
}

DRIVER=""
[ -e "$DEV/driver" ] && DRIVER="$(basename "$(readlink "$DEV/driver")")"
if [ "$DRIVER" != vfio-pci ]; then
    for ifc in $(iface_names); do
        if why="$(iface_active "$ifc")"; then
            if [ "$FORCE" = 1 ]; then
                echo "vfio-bind: warning: taking $ADDR although $ifc is in use ($why)" >&2
            else
                die "refusing to take $ADDR from $DRIVER: its interface $ifc is in use ($why); \
taking it would cut that link. Bring $ifc down and remove its addresses first \
(ip link set $ifc down), or use --force"
            fi
        fi
    done
fi

# --- bind
if [ ! -d /sys/bus/pci/drivers/vfio-pci ]; then
    modprobe vfio-pci 2>/dev/null || die "cannot load vfio-pci (modprobe vfio-pci)"
fi
[ -e "$DEV/iommu_group" ] || die "$ADDR has no IOMMU group: enable the IOMMU (VT-d/AMD-Vi in \
the firmware, intel_iommu=on or amd_iommu=on on the kernel command line)"
GROUP="$(basename "$(readlink "$DEV/iommu_group")")"

if [ "$DRIVER" != vfio-pci ]; then
    if [ -n "$DRIVER" ]; then
        echo "$ADDR" >"$DEV/driver/unbind" || die "cannot unbind $ADDR from $DRIVER"
    fi
    echo vfio-pci >"$DEV/driver_override" || die "cannot set driver_override of $ADDR"
    echo "$ADDR" >/sys/bus/pci/drivers_probe 2>/dev/null || true
    if [ ! -e "$DEV/driver" ]; then
        echo "$ADDR" >/sys/bus/pci/drivers/vfio-pci/bind 2>/dev/null || true
    fi
    [ -e "$DEV/driver" ] && [ "$(basename "$(readlink "$DEV/driver")")" = vfio-pci ] ||
        die "binding $ADDR to vfio-pci failed (see dmesg)"
fi

# Other devices of the group must not be bound to host drivers (the group is not viable).
for d in /sys/kernel/iommu_groups/"$GROUP"/devices/*; do
    [ -e "$d/driver" ] || continue
    drv="$(basename "$(readlink "$d/driver")")"
    case "$drv" in
        vfio-pci | pci-stub | pcieport) ;;
        *) echo "vfio-bind: warning: $(basename "$d") in IOMMU group $GROUP is bound to $drv; \
the group is not usable until it is bound to vfio-pci too" >&2 ;;
    esac
done

# --- give the user the group
i=0
while [ ! -e "/dev/vfio/$GROUP" ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
[ -e "/dev/vfio/$GROUP" ] || die "/dev/vfio/$GROUP did not appear"
if [ -n "$TARGET_USER" ]; then
    chown "$TARGET_USER" "/dev/vfio/$GROUP" || die "cannot chown /dev/vfio/$GROUP to $TARGET_USER"
    echo "vfio-bind: $ADDR bound to vfio-pci, IOMMU group $GROUP, /dev/vfio/$GROUP owned by $TARGET_USER" >&2
    echo "vfio-bind: $TARGET_USER also needs a hugetlbfs mount it can write and a memlock limit \
(ulimit -l) of at least 64 MiB per device: ./setup-hugetlbfs.sh 512 /mnt/huge-$TARGET_USER $TARGET_USER, and README.md, section VFIO" >&2
else
    echo "vfio-bind: $ADDR bound to vfio-pci, IOMMU group $GROUP (no user given: /dev/vfio/$GROUP stays root's)" >&2
fi
echo "$GROUP"
