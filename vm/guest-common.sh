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
    # The quota must be at least 1 ms: below 10 %, the period grows instead.
    local quota=$(($1 * 100)) period=10000
    while [ $quota -lt 1000 ]; do
        quota=$((quota * 2))
        period=$((period * 2))
    done
    echo "$quota $period" >/sys/fs/cgroup/paced/cpu.max
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

# stop_running PID: stop a background program that should still be running (stop_bg).
# If it has exited already, reap it, keep its exit status in EXITED and return 1.
stop_running() {
    if kill -0 "$1" 2>/dev/null; then
        stop_bg "$1"
        return 0
    fi
    wait "$1"
    EXITED=$?
    return 1
}

# refusal WHO GREP PATTERN ELSE [AT]: after a command that must refuse to run ($RC and
# $OUT from run_cmd), print why it did not: "WHO exited 0AT", "WHO hung", "WHO panicked",
# or ELSE when its output lacks PATTERN (grep GREP, e.g. -qi or -qF). Prints nothing when
# it failed as it should.
refusal() {
    if [ "$RC" = 0 ]; then
        echo "$1 exited 0${5:-}"
    elif [ "$RC" = 124 ] || [ "$RC" = 143 ]; then
        echo "$1 hung"
    elif ! no_panic "$OUT"; then
        echo "$1 panicked"
    elif ! grep $2 -- "$3" "$OUT"; then
        echo "$4"
    fi
}

# forward_paced PREFIX A B C [PERCENT [FRAMES]]: the forwarding run of guest/main.sh and guest/modern.sh.
# forwarder B C on vCPU 1 (output in /tmp/PREFIXfwd.out); after 3 s "@@FWD_START", then
# generator A sends FRAMES (default 20000) frames on vCPU 0, paced to PERCENT (default 20) % of it (run_cmd PREFIXfwdgen:
# under TCG an unthrottled generator floods the forwarder, which drops what its TX ring
# has no room for); 2 s later "@@FWD_END". Stops the forwarder and shows its output. Sets
# why: "" or "; "-separated reasons (forwarder exited early or panicked, generator
# failed or panicked). The host checks the capture at D after the guest has stopped.
forward_paced() {
    local fout="/tmp/${1}fwd.out" fpid grc
    # FWD_ENV: variables for the forwarder only (e.g. IXY_QUEUES=2).
    # shellcheck disable=SC2086
    env ${FWD_ENV:-} taskset 2 forwarder "$3" "$4" >"$fout" 2>&1 &
    fpid=$!
    sleep 3
    # FWD_DST_OF=PCI: the generator sends to the MAC the forwarder reported for that port
    # (a VF that receives only its own address).
    if [ -n "${FWD_DST_OF:-}" ]; then
        IXY_DST_MAC="$(sed -n "s/.*$FWD_DST_OF: .* ready, MAC \([0-9a-f:]*\).*/\1/p" "$fout" | head -n 1)"
        export IXY_DST_MAC
        echo "@@INFO generator sends to $IXY_DST_MAC"
    fi
    echo "@@FWD_START"
    run_cmd "${1}fwdgen" paced "${5:-20}" taskset 1 timeout 180 generator "$2" "${6:-20000}"
    grc=$RC
    unset IXY_DST_MAC
    sleep 2
    echo "@@FWD_END"
    why=""
    stop_running $fpid || why="$why; forwarder exited early (rc=$EXITED)"
    show "$fout" forwarder
    [ "$grc" = 0 ] || why="$why; generator exited $grc"
    no_panic "$fout" || why="$why; forwarder panicked"
    no_panic "$OUT" || why="$why; generator panicked"
}
