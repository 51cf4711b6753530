#!/bin/sh
# Gives a PCI device back to a kernel driver: the reverse of taking it (by ixy, which leaves
# a device it drove through sysfs bound to no driver, or by scripts/vfio-bind.sh).
#
#   scripts/rebind-kernel.sh <pci address> [driver]
#
# Takes the device from vfio-pci (or uio_pci_generic, pci-stub), clears its driver_override
# (or sets it to `driver` for the probe), loads the matching module and has the kernel probe
# the device (drivers_probe): without `driver` the kernel picks the driver whose id table
# matches, as at boot. A device already bound to another driver is left alone. Prints the
# driver and the interfaces the device got; exit status 0 when bound, 1 when not, 2 on bad
# arguments. Needs root. POSIX sh (runs under busybox). IXY_ROOT (for tests) is put in
# front of /sys.
set -eu

say() { echo "rebind-kernel: $*"; }
die() { echo "rebind-kernel: $*" >&2; exit 1; }
usage() {
    echo "rebind-kernel: $1" >&2
    echo "usage: $0 <pci address, e.g. 0000:03:00.0> [kernel driver, e.g. ixgbe]" >&2
    exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage "expected a PCI address and an optional driver"
ADDR="$1"
DRIVER="${2:-}"
case "$ADDR" in
    [0-9a-f][0-9a-f][0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7]) ;;
    [0-9a-f][0-9a-f]:[0-9a-f][0-9a-f].[0-7]) ADDR="0000:$ADDR" ;;
    *) usage "invalid PCI address '$ADDR'; expected the form 0000:03:00.0" ;;
esac
PCI="${IXY_ROOT:-}/sys/bus/pci"
DEV="$PCI/devices/$ADDR"
[ -e "$DEV/config" ] || die "no PCI device at $ADDR (cargo run --example list shows the NICs)"

driver_of() {
    if [ -e "$DEV/driver" ]; then basename "$(readlink "$DEV/driver")"; fi
}

CURRENT="$(driver_of)"
case "$CURRENT" in
    "") ;;
    vfio-pci | uio_pci_generic | pci-stub)
        echo "$ADDR" >"$DEV/driver/unbind" || die "cannot unbind $ADDR from $CURRENT (needs root)"
        [ -z "$(driver_of)" ] || die "$ADDR is still bound to $CURRENT after unbind"
        say "took $ADDR from $CURRENT"
        ;;
    *)
        [ -z "$DRIVER" ] || [ "$DRIVER" = "$CURRENT" ] ||
            die "$ADDR is bound to $CURRENT, not $DRIVER; left alone"
        say "$ADDR is already bound to kernel driver $CURRENT"
        exit 0
        ;;
esac

# An empty driver_override lets the kernel match by id table; a name allows only that driver.
echo "$DRIVER" >"$DEV/driver_override" || die "cannot write $DEV/driver_override (needs root)"
if [ -n "$DRIVER" ]; then
    modprobe "$DRIVER" 2>/dev/null || true
else
    modprobe "$(cat "$DEV/modalias")" 2>/dev/null || true
fi
echo "$ADDR" >"$PCI/drivers_probe" 2>/dev/null || true
NOW="$(driver_of)"
if [ -n "$DRIVER" ]; then
    echo >"$DEV/driver_override"
fi
[ -n "$NOW" ] || die "no kernel driver took $ADDR: ${DRIVER:+is $DRIVER the right driver? }\
load its driver's module (modprobe) and run this again"
IFACES=""
for n in "$DEV"/net/* "$DEV"/virtio*/net/*; do
    if [ -e "$n" ]; then IFACES="$IFACES $(basename "$n")"; fi
done
say "$ADDR is bound to $NOW; interfaces:${IFACES:- none}"
