# Guest script of the main boot: seven legacy virtio NICs.
#   hub 1: A - B (+ G)  generator A -> forwarder B / pcap B
#   hub 2: C - D        forwarder C -> D (the host records what reaches D)
#   hub 3: E - F        generator E for the hugepage scenarios
# D, F and G are driven by the guest kernel's virtio_net as sinks: up, not
# promiscuous, so that QEMU drops the generator's frames (to a foreign MAC)
# cheaply. A hub port can send only while some other port can receive: a
# NIC without a driver would stall its peer's TX. G keeps hub 1 open while B
# has no free RX buffers; without it QEMU queues the frame at A's hub port and,
# when B's driver refills, delivers it before the older frame queued at B
# (net_hub_flush runs before the NIC's own queue flush): a reordering that is
# QEMU's, not the driver's. A, B, C, E get driver_override=none so that the
# kernel leaves them alone.
A=0000:00:04.0
B=0000:00:05.0
C=0000:00:06.0
D=0000:00:07.0
E=0000:00:08.0
F=0000:00:09.0
G=0000:00:0a.0
MACB=52:54:00:00:00:0b
FOREIGN=10:10:10:10:10:10
SCENARIOS="no-hugepages bad-pci-address not-a-nic virtio-legacy-forward virtio-promisc no-hugepage-leak"

NICS="$(pci_find 0x1af4 0x1000 | tr '\n' ' ')"
echo "@@NICS $NICS"
if [ "$NICS" != "$A $B $C $D $E $F $G " ]; then
    for s in $SCENARIOS; do fail "$s" "unexpected NICs in guest: $NICS"; done
    return 0 2>/dev/null || exit 0
fi
if ! have_examples; then
    for s in $SCENARIOS; do fail "$s" "example binaries missing from the initramfs"; done
    return 0 2>/dev/null || exit 0
fi

for n in $A $B $C $E; do echo none >/sys/bus/pci/devices/$n/driver_override; done
kernel_sinks $D $F $G

# ---- no-hugepages: (1) nothing mounted and no hugepages reserved;
# (2) hugetlbfs mounted but no hugepages reserved (a driver that maps the
# file without checking would die of SIGBUS on first touch).
begin no-hugepages
hugepages_off
why=""
for variant in unmounted empty; do
    if [ $variant = empty ]; then
        mkdir -p /mnt/huge
        mount -t hugetlbfs hugetlbfs /mnt/huge
    fi
    run_cmd "nohuge-$variant" timeout 60 generator "$E" 100
    if [ "$RC" -gt 128 ] && [ "$RC" != 143 ]; then
        r="generator killed by signal $((RC - 128))"
    else
        r="$(refusal generator -qi hugepage "error message does not mention hugepages" \
            " without hugepages")"
    fi
    [ -z "$r" ] || why="$why; $r ($variant)"
done
hugepages_off
if [ -z "$why" ]; then pass no-hugepages; else fail no-hugepages "${why#; }"; fi

hugepages_on 256
echo "@@INFO HugePages_Free=$(huge_free)"

# ---- bad-pci-address
begin bad-pci-address
why=""
for addr in 0000:zz:00.0 0000:00:1f.7; do
    run_cmd badpci timeout 60 generator "$addr" 100
    r="$(refusal "generator $addr" -qF "$addr" "error for $addr does not name the address")"
    [ -z "$r" ] || why="$why; $r"
done
if [ -z "$why" ]; then pass bad-pci-address; else fail bad-pci-address "${why#; }"; fi

# ---- not-a-nic: the host bridge
begin not-a-nic
run_cmd notanic timeout 60 generator 0000:00:00.0 100
why="$(refusal generator -qi 'not a network' "error message does not contain 'not a network'" \
    " on the host bridge")"
if [ -z "$why" ]; then pass not-a-nic; else fail not-a-nic "$why"; fi

# ---- virtio-legacy-forward: generator A -> hub1 -> B forwarder C -> hub2 -> D (captured on host)
begin virtio-legacy-forward
# Under TCG one QEMU thread moves every frame. An unthrottled generator floods
# B (G keeps hub 1 open) and the forwarder, which drops what its TX ring has no
# room for (as ixy's does), loses 0-35 % at C, varying run to run. Paced to 20 %
# of a vCPU (its own; the forwarder has the other) the generator sends 20000
# frames in about 2 s and practically all of them get through.
forward_paced "" "$A" "$B" "$C"
# The host checks the capture at D after the guest has stopped.
if [ -z "$why" ]; then pass virtio-legacy-forward; else fail virtio-legacy-forward "${why#; }"; fi

# ---- virtio-promisc
begin virtio-promisc
why=""
# Promiscuous (default): pcap on B records frames to a foreign MAC.
IXY_PROMISC=1 timeout 60 pcap "$B" /tmp/promisc1.pcap 100 >/tmp/pcap1.out 2>&1 &
P=$!
sleep 3
run_cmd promgen1 timeout 60 generator "$A" 3000
wait $P
PRC=$?
show /tmp/pcap1.out pcap-promisc-on
[ "$PRC" = 0 ] || why="$why; promiscuous pcap exited $PRC (expected 100 frames to $FOREIGN)"
no_panic /tmp/pcap1.out || why="$why; pcap panicked"
# Not promiscuous: frames to a foreign MAC come first, then frames to B's own
# MAC; pcap must stop after 100 frames, all to B's MAC.
IXY_PROMISC=0 timeout 60 pcap "$B" /tmp/promisc0.pcap 100 >/tmp/pcap0.out 2>&1 &
P=$!
sleep 3
run_cmd promgen0a timeout 60 generator "$A" 3000
run_cmd promgen0b env IXY_DST_MAC=$MACB timeout 60 generator "$A" 1000
wait $P
PRC=$?
show /tmp/pcap0.out pcap-promisc-off
[ "$PRC" = 0 ] || why="$why; non-promiscuous pcap exited $PRC (expected 100 frames to $MACB)"
no_panic /tmp/pcap0.out || why="$why; pcap panicked"
emit_file promisc1 /tmp/promisc1.pcap
emit_file promisc0 /tmp/promisc0.pcap
if [ -z "$why" ]; then pass virtio-promisc; else fail virtio-promisc "${why#; }"; fi

# ---- no-hugepage-leak
begin no-hugepage-leak
why=""
before=$(huge_free)
i=0
while [ $i -lt 20 ]; do
    timeout 60 generator "$E" 1000 >/tmp/leak.out 2>&1
    rc=$?
    if [ $rc != 0 ] || ! no_panic /tmp/leak.out; then
        show /tmp/leak.out "leak-run-$i"
        why="$why; run $i exited $rc"
        break
    fi
    i=$((i + 1))
done
after=$(huge_free)
echo "@@INFO HugePages_Free before=$before after 20 runs=$after"
[ "$before" = "$after" ] || why="$why; HugePages_Free $before before 20 runs, $after after"
generator "$E" >/tmp/leak-kill.out 2>&1 &
P=$!
sleep 3
during=$(huge_free)
if kill -0 $P 2>/dev/null; then
    kill -9 $P
    wait $P 2>/dev/null
else
    wait $P
    why="$why; endless generator exited by itself (rc=$?)"
    show /tmp/leak-kill.out leak-kill
fi
sleep 1
after2=$(huge_free)
echo "@@INFO HugePages_Free during=$during after SIGKILL=$after2"
ls -la /mnt/huge | sed 's/^/@@| mnt-huge: /'
[ "$after" = "$after2" ] || why="$why; HugePages_Free $after before SIGKILL run, $after2 after"
[ "$during" -lt "$after" ] || why="$why; HugePages_Free did not drop while the generator ran ($during): no hugepages used?"
if [ -z "$why" ]; then pass no-hugepage-leak; else fail no-hugepage-leak "${why#; }"; fi
