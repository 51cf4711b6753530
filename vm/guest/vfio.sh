# Guest script of the VFIO boot (q35 + intel-iommu, intel_iommu=on): four modern
# virtio-net NICs with iommu_platform=on (1af4:1041), A-B on hub 1, C-D on hub 2, and one
# legacy NIC E (1af4:1000) left unbound. /bin/vfio-bind.sh is scripts/vfio-bind.sh.
# Scenarios: vfio-nonroot-forward, interrupts-idle, vfio-errors.
#
# The igb VFIO boot (vm/scenarios-igb.sh) runs this script too, with VFIO_* set before it:
# other NICs (VFIO_NIC_ID, VFIO_A..VFIO_D, VFIO_SINKS), scenario names (VFIO_NONROOT,
# VFIO_IDLE; VFIO_ERRORS empty leaves vfio-errors out), generator pacing (VFIO_PACE) and
# the frames it sends (VFIO_FRAMES).
A=${VFIO_A:-0000:00:04.0}
B=${VFIO_B:-0000:00:05.0}
C=${VFIO_C:-0000:00:06.0}
D=${VFIO_D:-0000:00:07.0}
E=0000:00:08.0
NIC_ID="${VFIO_NIC_ID:-0x1af4 0x1041}"
SINKS="${VFIO_SINKS:-0000:00:09.0 0000:00:0a.0}"
NONROOT=${VFIO_NONROOT:-vfio-nonroot-forward}
IDLE=${VFIO_IDLE:-interrupts-idle}
ERRORS=${VFIO_ERRORS-vfio-errors}
PACE=${VFIO_PACE:-20}
FRAMES=${VFIO_FRAMES:-20000}
IXY_UID=1000
OTHER_UID=1001
SCENARIOS="$NONROOT $IDLE $ERRORS"
# Locked memory for the unprivileged runs: each virtio device pins about 12 MiB.
MEMLOCK_KIB=262144

fail_all() {
    for s in $SCENARIOS; do fail "$s" "$*"; done
}

# as_user UID CMD... &: run CMD as UID (no root), with the memlock limit and the user's
# hugetlbfs mount. Call it only in the background (it execs): $! is then CMD's PID.
as_user() {
    u="$1"
    shift
    ulimit -l "$MEMLOCK_KIB"
    exec su -s /bin/sh "u$u" -c 'exec "$@"' sh env IXY_HUGEPAGE_DIR=/mnt/huge-ixy "$@"
}
# The initramfs root comes from a mktemp directory (mode 0700): open it up for the
# unprivileged runs.
chmod 755 /
chmod 1777 /tmp
# Unprivileged users for busybox su.
{
    echo "root:x:0:0:root:/root:/bin/sh"
    echo "u$IXY_UID:x:$IXY_UID:$IXY_UID:ixy:/tmp:/bin/sh"
    echo "u$OTHER_UID:x:$OTHER_UID:$OTHER_UID:other:/tmp:/bin/sh"
} >/etc/passwd
printf 'root:x:0:\nu%s:x:%s:\nu%s:x:%s:\n' $IXY_UID $IXY_UID $OTHER_UID $OTHER_UID >/etc/group

# shellcheck disable=SC2086
NICS="$(pci_find $NIC_ID | tr '\n' ' ')"
echo "@@NICS modern: $NICS legacy: $(pci_find 0x1af4 0x1000 | tr '\n' ' ')"
if [ "$NICS" != "$A $B $C $D " ]; then
    fail_all "unexpected NICs in guest: $NICS"
    return 0 2>/dev/null || exit 0
fi
if ! have_examples; then
    fail_all "example binaries missing from the initramfs"
    return 0 2>/dev/null || exit 0
fi
insmod_all irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci
ls /sys/kernel/iommu_groups | tr '\n' ' ' | sed 's/^/@@INFO iommu groups: /'
echo

hugepages_on 256
mkdir -p /mnt/huge-ixy
mount -t hugetlbfs -o uid=$IXY_UID,gid=$IXY_UID,mode=0700 hugetlbfs /mnt/huge-ixy

BIND_ERR=""
for dev in $A $B $C $D; do
    run_cmd bind-$dev vfio-bind.sh "$dev" $IXY_UID
    [ "$RC" = 0 ] || BIND_ERR="$BIND_ERR; vfio-bind.sh $dev exited $RC"
done
ls -ln /dev/vfio | sed 's/^/@@| dev-vfio: /'
# G (legacy, 00:09.0) on hub 1 and H (legacy, 00:0a.0) on hub 2 are kernel-driven sinks:
# they keep A's and C's hub ports open while B or D has no free RX buffers, else QEMU's
# hub reorders frames (see guest/main.sh) and pcap on D records them out of order. E
# stays unbound (driver_override), the modern NICs are vfio-pci's already.
[ -n "$ERRORS" ] && echo none >/sys/bus/pci/devices/$E/driver_override
# shellcheck disable=SC2086
kernel_sinks $SINKS
if [ -n "$BIND_ERR" ]; then
    fail_all "${BIND_ERR#; }"
    return 0 2>/dev/null || exit 0
fi

# uid_of PID: the real uid of a running process.
uid_of() { awk '/^Uid:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# cpu_ticks PID: utime + stime in clock ticks (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

# ---- vfio-nonroot-forward: generator A -> hub1 -> B forwarder C -> hub2 -> D pcap, all
# as uid 1000 through VFIO; the host also records what reaches D (filter-dump).
begin $NONROOT
why=""
as_user $IXY_UID forwarder "$B" "$C" >/tmp/vfwd.out 2>&1 &
FPID=$!
taskset -p 2 $FPID >/dev/null
# The capture runs for the whole test (QEMU's hub holds back C's transmissions while D
# cannot receive); its first 2000 frames go to the host.
as_user $IXY_UID pcap "$D" /tmp/vfio-cap.pcap >/tmp/vpcap.out 2>&1 &
PPID_=$!
sleep 4
fu="$(uid_of $FPID)"
pu="$(uid_of $PPID_)"
echo "@@INFO forwarder uid=$fu pcap uid=$pu"
echo "@@FWD_START"
as_user $IXY_UID generator "$A" "$FRAMES" >/tmp/vgen.out 2>&1 &
GPID=$!
# Paced, as in guest/main.sh: an unthrottled generator floods the forwarder.
taskset -p 1 $GPID >/dev/null
pace_pid $PACE $GPID
sleep 1
gu="$(uid_of $GPID)"
echo "@@INFO generator uid=$gu"
wait $GPID
GRC=$?
show /tmp/vgen.out generator
sleep 2
echo "@@FWD_END"
stop_running $PPID_ || why="$why; pcap exited early ($EXITED)"
show /tmp/vpcap.out pcap
# pcap header (24 bytes) + 2000 records of 16 + 60 bytes.
head -c $((24 + 2000 * 76)) /tmp/vfio-cap.pcap >/tmp/vfio-cap2000.pcap
stop_running $FPID || why="$why; forwarder exited early (rc=$EXITED)"
show /tmp/vfwd.out forwarder
[ "$GRC" = 0 ] || why="$why; generator exited $GRC"
for u in "$fu" "$pu" "$gu"; do
    [ -n "$u" ] && [ "$u" != 0 ] || why="$why; a program ran as uid '${u:-?}' (expected $IXY_UID)"
done
for f in /tmp/vfwd.out /tmp/vpcap.out /tmp/vgen.out; do
    no_panic $f || why="$why; $(basename $f .out) panicked"
done
grep -q VFIO /tmp/vfwd.out || echo "@@WARN forwarder log does not mention VFIO"
emit_file vfiocap /tmp/vfio-cap2000.pcap
if [ -z "$why" ]; then pass $NONROOT; else fail $NONROOT "${why#; }"; fi

# ---- interrupts-idle: forwarder with interrupts (timeout 100 ms), no traffic for 5 s:
# under 5 % CPU; then traffic: it forwards (pcap on D counts 500 frames).
begin $IDLE
why=""
as_user $IXY_UID env IXY_INTERRUPT_TIMEOUT_MS=100 forwarder "$B" "$C" >/tmp/ifwd.out 2>&1 &
FPID=$!
sleep 4
if kill -0 $FPID 2>/dev/null; then
    t0="$(cpu_ticks $FPID)"
    sleep 5
    t1="$(cpu_ticks $FPID)"
    hz=100
    ticks=$((t1 - t0))
    # percent with one decimal: ticks / (5 s * hz) * 100
    pct10=$((ticks * 1000 / (5 * hz)))
    echo "@@INFO interrupts-idle: forwarder used $ticks ticks in 5 s = $((pct10 / 10)).$((pct10 % 10)) % CPU"
    [ "$ticks" -lt $((5 * hz * 5 / 100)) ] || why="$why; idle forwarder used $((pct10 / 10)).$((pct10 % 10)) % CPU over 5 s (limit 5 %)"
    as_user $IXY_UID pcap "$D" /tmp/irq-cap.pcap 500 >/tmp/ipcap.out 2>&1 &
    P=$!
    sleep 3
    as_user $IXY_UID generator "$A" 3000 >/tmp/irqgen.out 2>&1 &
    wait $!
    show /tmp/irqgen.out generator
    i=0
    while kill -0 $P 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
    if stop_running $P; then
        why="$why; forwarder with interrupts did not forward 500 frames to D"
    elif [ "$EXITED" != 0 ]; then
        why="$why; pcap exited $EXITED"
    fi
    show /tmp/ipcap.out pcap
    busy="$(cpu_ticks $FPID)"
    echo "@@INFO interrupts-idle: forwarder ticks after traffic: $((busy - t1))"
    stop_bg $FPID
else
    wait $FPID
    why="$why; forwarder with interrupts exited early (rc=$?)"
fi
show /tmp/ifwd.out forwarder-irq
grep -q "MSI-X" /tmp/ifwd.out || why="$why; forwarder did not report MSI-X interrupts"
no_panic /tmp/ifwd.out || why="$why; forwarder panicked"
if [ -z "$why" ]; then pass $IDLE; else fail $IDLE "${why#; }"; fi

# ---- vfio-errors: clear errors, no panic, no hang.
[ -n "$ERRORS" ] || return 0 2>/dev/null || exit 0
begin vfio-errors
why=""
# expect TAG PATTERN CMD...: CMD must fail (not hang, not panic) with PATTERN in its output.
expect() {
    tag="$1" pat="$2"
    shift 2
    OUT="/tmp/$tag.out"
    "$@" >"$OUT" 2>&1 &
    ep=$!
    n=0
    while kill -0 $ep 2>/dev/null && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
    if stop_running $ep; then RC=124; else RC=$EXITED; fi
    echo "@@CMD $tag rc=$RC: $*"
    sed -n '1,20p' "$OUT" | sed "s/^/@@| /"
    r="$(refusal "$tag:" -qi "$pat" "$tag: output lacks '$pat'")"
    [ -z "$r" ] || why="$why; $r"
}
# Not bound to vfio-pci, unprivileged: must say vfio-pci and how to bind.
expect notbound-user "vfio-bind.sh" as_user $IXY_UID generator "$E" 100
# Not bound, VFIO required by IXY_VFIO=1 (root).
expect notbound-required "not vfio-pci" env IXY_VFIO=1 generator "$E" 100
# Memlock too low: 1 MiB.
MEMLOCK_SAVE=$MEMLOCK_KIB
MEMLOCK_KIB=1024
expect memlock "ulimit -l" as_user $IXY_UID generator "$A" 100
grep -q "RLIMIT_MEMLOCK" "$OUT" || why="$why; memlock: output does not name RLIMIT_MEMLOCK"
MEMLOCK_KIB=$MEMLOCK_SAVE
# Group file owned by another user.
expect group-perm "chown" as_user $OTHER_UID generator "$A" 100
if [ -z "$why" ]; then pass vfio-errors; else fail vfio-errors "${why#; }"; fi
