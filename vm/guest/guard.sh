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

# rebind-kernel: the IXY_FORCE_UNBIND=1 run left $NIC bound to no driver;
# scripts/rebind-kernel.sh gives it back to virtio-pci, and its interface returns.
begin rebind-kernel
echo "@@INFO before rebind: driver '$(basename "$(readlink /sys/bus/pci/devices/$NIC/driver)" 2>/dev/null)'"
if [ -z "$NIC" ]; then
    fail rebind-kernel "no NIC"
else
    run_cmd rebind sh /scripts/rebind-kernel.sh "$NIC"
    drv="$(basename "$(readlink /sys/bus/pci/devices/$NIC/driver)" 2>/dev/null)"
    ifs="$(ls /sys/bus/pci/devices/$NIC/virtio*/net/ 2>/dev/null | head -n 1)"
    why=""
    [ "$RC" = 0 ] || why="exit status $RC"
    [ "$drv" = virtio-pci ] || why="$why; driver '$drv', expected virtio-pci"
    [ -n "$ifs" ] || why="$why; no interface below the device"
    grep -q "bound to virtio-pci; interfaces: $ifs" "$OUT" || why="$why; the driver and interface were not reported"
    run_cmd rebind-again sh /scripts/rebind-kernel.sh "$NIC"
    { [ "$RC" = 0 ] && grep -q "already bound to kernel driver virtio-pci" "$OUT"; } ||
        why="$why; a second run was not a no-op"
    if [ -z "$why" ]; then pass rebind-kernel; else fail rebind-kernel "${why#; }"; fi
fi

# setup-hugetlbfs: reserve and mount, again (no change), refuse to shrink or unmount
# while a generator holds pages of the mount, then undo.
begin setup-hugetlbfs
S=/scripts/setup-hugetlbfs.sh
nr() { cat /proc/sys/vm/nr_hugepages; }
why=""
run_cmd hs-setup sh $S 64 /mnt/h2
[ "$RC" = 0 ] || why="$why; setup exited $RC"
grep -q ' /mnt/h2 hugetlbfs ' /proc/mounts || why="$why; /mnt/h2 not mounted"
[ "$(nr)" = 64 ] || why="$why; $(nr) hugepages reserved, not 64"
run_cmd hs-again sh $S 64 /mnt/h2
{ [ "$RC" = 0 ] && grep -q 'already reserved' "$OUT" && grep -q 'already mounted' "$OUT"; } ||
    why="$why; a second run was not a no-op"
[ "$(grep -c ' /mnt/h2 ' /proc/mounts)" = 1 ] || why="$why; /mnt/h2 mounted twice"
IXY_HUGEPAGE_DIR=/mnt/h2 generator "$NIC" >/tmp/hs-gen.out 2>&1 &
GEN=$!
i=0
while [ "$(huge_free)" = 64 ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
echo "@@INFO generator holds $((64 - $(huge_free))) hugepages of /mnt/h2"
run_cmd hs-shrink sh $S 0 /mnt/h2
{ [ "$RC" = 1 ] && grep -q 'refusing to shrink' "$OUT"; } || why="$why; shrinking pages in use was not refused"
[ "$(nr)" = 64 ] || why="$why; the reservation changed to $(nr) while in use"
run_cmd hs-undo-busy sh $S --undo /mnt/h2
{ [ "$RC" = 1 ] && grep -q 'cannot unmount /mnt/h2' "$OUT"; } || why="$why; undo while in use was not refused"
kill "$GEN"
wait "$GEN"
sed 's/^/@@| hs-gen: /' /tmp/hs-gen.out | head -n 5
run_cmd hs-undo sh $S --undo /mnt/h2
[ "$RC" = 0 ] || why="$why; undo exited $RC"
grep -q ' /mnt/h2 ' /proc/mounts && why="$why; /mnt/h2 still mounted"
[ "$(nr)" = 0 ] || why="$why; $(nr) hugepages still reserved after undo"
if [ -z "$why" ]; then pass setup-hugetlbfs; else fail setup-hugetlbfs "${why#; }"; fi
