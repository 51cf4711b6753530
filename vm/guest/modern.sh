# Guest script of the modern boot: four modern-only virtio-net NICs (1af4:1041, virtio
# 1.0, no IOMMU), no kernel driver on them, driven through sysfs as root. Hub 1 joins A
# and B, hub 2 joins C and D; the host records what A sends and what reaches D.
# Scenario: virtio-modern-forward.
A=0000:00:04.0
B=0000:00:05.0
C=0000:00:06.0
D=0000:00:07.0

NICS="$(pci_find 0x1af4 0x1041 | tr '\n' ' ')"
echo "@@NICS $NICS"
if [ "$NICS" != "$A $B $C $D " ]; then
    fail virtio-modern-forward "unexpected NICs in guest: $NICS"
    return 0 2>/dev/null || exit 0
fi
if ! have_examples; then
    fail virtio-modern-forward "example binaries missing from the initramfs"
    return 0 2>/dev/null || exit 0
fi
hugepages_on 256
# G (legacy, 00:0a.0) on hub 1 is a kernel-driven sink: it keeps A's hub port open while B
# has no free RX buffers, else QEMU's hub reorders frames (see guest/main.sh).
for n in $A $B $C $D; do echo none >/sys/bus/pci/devices/$n/driver_override; done
kernel_sinks 0000:00:0a.0

begin virtio-modern-forward
# D must be driven: QEMU's hub holds back C's transmissions while D cannot receive.
pcap "$D" /tmp/msink.pcap >/tmp/msink.out 2>&1 &
SPID=$!
# Paced, as in guest/main.sh: an unthrottled generator floods the forwarder.
forward_paced m "$A" "$B" "$C"
stop_bg $SPID
show /tmp/msink.out sink
grep -q "modern interface" /tmp/mfwd.out || why="$why; forwarder did not use the modern interface"
if [ -z "$why" ]; then pass virtio-modern-forward; else fail virtio-modern-forward "${why#; }"; fi
