# Helpers for the guest's /init (busybox sh). Sourced before the scenario script.

# List PCI addresses of devices VENDOR:DEVICE (e.g. 0x1af4 0x1000), sorted.
pci_find() {
    local v="$1" d="$2" dev
    for dev in /sys/bus/pci/devices/*; do
        [ "$(cat "$dev/vendor")" = "$v" ] && [ "$(cat "$dev/device")" = "$d" ] && basename "$dev"
    done | sort
}

hugepages_on() {
    local want="${1:-256}" got="" i=0
    echo 3 >/proc/sys/vm/drop_caches
    echo 1 >/proc/sys/vm/compact_memory 2>/dev/null
    # The kernel stops reserving when a signal is pending for the writer:
    # retry until the count is reached.
    while [ $i -lt 10 ]; do
        echo "$want" >/proc/sys/vm/nr_hugepages
        got="$(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)"
        [ "$got" = "$want" ] && break
        i=$((i + 1))
    done
    if [ "$got" != "$want" ]; then
        echo "@@WARN only $got of $want hugepages reserved"
        free -m
        cat /proc/buddyinfo
    fi
    mkdir -p /mnt/huge
    grep -q ' /mnt/huge ' /proc/mounts || mount -t hugetlbfs hugetlbfs /mnt/huge
}

hugepages_off() {
    grep -q ' /mnt/huge ' /proc/mounts && umount /mnt/huge
    echo 0 >/proc/sys/vm/nr_hugepages
}

huge_free() { awk '/^HugePages_Free/ {print $2}' /proc/meminfo; }

# Record a scenario's verdict for the host: "@@SCENARIO name PASS" or
# "@@SCENARIO name FAIL reason".
pass() { echo "@@SCENARIO $1 PASS"; }
fail() {
    local n="$1"
    shift
    echo "@@SCENARIO $n FAIL $*"
}

# run_cmd TAG CMD... : run with output to /tmp/TAG.out, echo it framed on the
# console, set RC and OUT (path).
run_cmd() {
    local tag="$1"
    shift
    OUT="/tmp/$tag.out"
    "$@" >"$OUT" 2>&1
    RC=$?
    echo "@@CMD $tag rc=$RC: $*"
    sed -n '1,40p' "$OUT" | sed "s/^/@@| /"
}

insmod_all() {
    local m
    for m in "$@"; do
        insmod "/lib/ixy-mods/$m.ko" || insmod "/lib/ixy-mods/$(echo "$m" | tr _ -).ko" ||
            insmod "/lib/ixy-mods/$(echo "$m" | tr - _).ko" || echo "@@WARN insmod $m failed"
    done
}

# Mark the start of a scenario's section in the console log.
begin() { echo "@@BEGIN $1"; }

# no_panic FILE: true when the program output holds no Rust panic.
no_panic() { ! grep -q 'panicked' "$1"; }

# emit_file NAME PATH: copy a (small) file to the host through the console,
# one "@@B64 NAME <base64 line>" per line so that kernel messages cannot
# corrupt it.
emit_file() {
    if [ -f "$2" ]; then
        base64 "$2" | sed "s/^/@@B64 $1 /"
    fi
    echo "@@B64END $1"
}

have_examples() {
    command -v generator >/dev/null && command -v forwarder >/dev/null && command -v pcap >/dev/null
}

# Stop a background program: SIGTERM, then SIGKILL.
stop_bg() {
    kill "$1" 2>/dev/null
    local i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 20 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# show FILE TAG: print a file (its first 15 and last 10 lines) framed for the host log.
show() {
    local n
    n=$(wc -l <"$1")
    if [ "$n" -le 25 ]; then
        sed "s/^/@@| $2: /" "$1"
    else
        sed -n '1,15p' "$1" | sed "s/^/@@| $2: /"
        echo "@@| $2: ... ($((n - 25)) lines left out)"
        tail -n 10 "$1" | sed "s/^/@@| $2: /"
    fi
}

# kernel_sinks PCI...: bind these legacy virtio NICs to the guest kernel's
# virtio_net and bring their interfaces up silently (no IPv6, no ARP, no
# address): they take every frame and QEMU's receive filter drops those not
# addressed to them.
kernel_sinks() {
    echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
    echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
    insmod_all virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
        failover net_failover virtio_net
    local n ifc
    for n in "$@"; do
        ifc="$(ls /sys/bus/pci/devices/$n/virtio*/net/ 2>/dev/null | head -n 1)"
        if [ -z "$ifc" ]; then
            echo "@@WARN no kernel interface on $n"
            continue
        fi
        ip link set "$ifc" arp off
        ip link set "$ifc" multicast off
        ip link set "$ifc" up
        echo "@@INFO sink $n is $ifc"
    done
}

# pace_setup PERCENT: a cgroup "paced" limited to PERCENT % of one CPU (cgroup v2
# CPU bandwidth, 10 ms periods), so that a sender in it is steady instead of a flood.
pace_setup() {
    if [ ! -d /sys/fs/cgroup/paced ]; then
        mkdir -p /sys/fs/cgroup
        grep -q ' /sys/fs/cgroup ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
        mkdir -p /sys/fs/cgroup/paced
    fi
    echo "$(($1 * 100)) 10000" >/sys/fs/cgroup/paced/cpu.max
}

# pace_pid PERCENT PID: move a running process (and what it execs) into "paced".
pace_pid() {
    pace_setup "$1"
    echo "$2" >/sys/fs/cgroup/paced/cgroup.procs
}

# paced PERCENT CMD...: run CMD (a program, not a shell function) in "paced".
paced() {
    pace_setup "$1"
    shift
    sh -c 'echo $$ >/sys/fs/cgroup/paced/cgroup.procs && exec "$@"' paced "$@"
}
