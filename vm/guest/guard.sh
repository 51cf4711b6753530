# Guest script of the kernel-bound boot: two legacy virtio NICs on one hub,
# both driven by the guest kernel's virtio_net. The first is up with an
# address: the ixy driver must refuse it. The second is a silent sink, so that
# the first one's hub port can send (IXY_FORCE_UNBIND run).
hugepages_on 256
SINK=0000:00:05.0
kernel_sinks $SINK
sleep 1
NIC="$(pci_find 0x1af4 0x1000 | head -n 1)"
IF="$(ls /sys/bus/pci/devices/$NIC/virtio*/net/ 2>/dev/null | head -n 1)"
echo "@@INFO NIC=$NIC IF=$IF"
begin active-interface-guard
if [ -z "$NIC" ] || [ -z "$IF" ]; then
    fail active-interface-guard "no kernel-bound virtio NIC in the guest (NIC=$NIC IF=$IF)"
elif ! have_examples; then
    fail active-interface-guard "example binaries missing from the initramfs"
else
    ip addr add 192.0.2.1/24 dev "$IF"
    ip link set "$IF" up
    sleep 1
    run_cmd guard timeout 60 generator "$NIC" 100
    drv="$(basename "$(readlink /sys/bus/pci/devices/$NIC/driver)" 2>/dev/null)"
    why="$(refusal generator -qF "$IF" "error message does not name $IF" " on a NIC in use by $IF")"
    [ "$drv" = virtio-pci ] || why="$why; device now bound to '$drv', expected virtio-pci"
    ip link show "$IF" 2>/dev/null | grep -q '[<,]UP[,>]' || why="$why; $IF is no longer up"
    ip addr show "$IF" 2>/dev/null | grep -q '192\.0\.2\.1/24' || why="$why; $IF lost its address"
    # With IXY_FORCE_UNBIND=1 the generator may take the device over.
    run_cmd force env IXY_FORCE_UNBIND=1 timeout 60 generator "$NIC" 1000
    echo "@@INFO force-unbind rc=$RC driver now: $(basename "$(readlink /sys/bus/pci/devices/$NIC/driver)" 2>/dev/null)"
    [ "$RC" = 0 ] || why="$why; with IXY_FORCE_UNBIND=1 the generator exited $RC"
    no_panic "$OUT" || why="$why; with IXY_FORCE_UNBIND=1 the generator panicked"
    if [ -z "$why" ]; then pass active-interface-guard; else fail active-interface-guard "${why#; }"; fi
fi
