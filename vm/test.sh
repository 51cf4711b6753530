#!/usr/bin/env bash
# Runs the ixy example programs inside QEMU guests (TCG) and checks them.
#
# Prints "PASS <scenario>" or "FAIL <scenario>: <why>" per scenario and
# "N passed, M failed" at the end; exits 0 only when every scenario passed.
#
# Two guest boots:
#   guard: two legacy virtio NICs bound to the guest kernel's virtio_net, one
#          up with an address, one a sink (active-interface-guard; then
#          rebind-kernel and setup-hugetlbfs run the scripts that undo things)
#   main:  seven legacy virtio NICs, A-B-G on hub 1, C-D on hub 2, E-F on
#          hub 3; D, F and G are kernel-driven sinks (no-hugepages, bad-pci-address,
#          not-a-nic, virtio-legacy-forward, virtio-promisc, no-hugepage-leak);
#          QEMU's filter-dump records on the host what A sends and what
#          reaches D.
#
# Environment: IXY_VM_CACHE (kernel cache, default ~/.cache/ixy-vm),
# IXY_VM_TARGET_DIR / CARGO_TARGET_DIR (cargo target dir), IXY_VM_WORK
# (directory for logs and captures, default a new /tmp/ixy-vm-test.*),
# IXY_VM_TIMEOUT (hard limit per boot in seconds), IXY_VM_ONLY (main|guard|modern|vfio|igb).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCENARIOS=(virtio-legacy-forward virtio-promisc bad-pci-address not-a-nic no-hugepages
    active-interface-guard no-hugepage-leak rebind-kernel setup-hugetlbfs)
declare -A BOOT_OF=(
    [virtio-legacy-forward]=main [virtio-promisc]=main [bad-pci-address]=main
    [not-a-nic]=main [no-hugepages]=main [no-hugepage-leak]=main
    [active-interface-guard]=guard [rebind-kernel]=guard [setup-hugetlbfs]=guard
)
declare -A RESULT=()
# More boots and scenarios (virtio 1.0, VFIO, interrupts): vm/scenarios-vfio.sh adds
# to SCENARIOS and BOOT_OF and defines run_vfio_boots. IXY_VM_VFIO=0 leaves them out.
if [ "${IXY_VM_VFIO:-1}" != 0 ] && [ -f "$VM_DIR/scenarios-vfio.sh" ]; then
    . "$VM_DIR/scenarios-vfio.sh"
fi
# The Intel 82576 boot (QEMU's igb): vm/scenarios-igb.sh, left out with IXY_VM_IGB=0.
if [ "${IXY_VM_IGB:-1}" != 0 ] && [ -f "$VM_DIR/scenarios-igb.sh" ]; then
    . "$VM_DIR/scenarios-igb.sh"
fi
if [ -n "${IXY_VM_ONLY:-}" ]; then
    only=()
    for s in "${SCENARIOS[@]}"; do [ "${BOOT_OF[$s]}" = "$IXY_VM_ONLY" ] && only+=("$s"); done
    SCENARIOS=("${only[@]}")
fi
MACB=52:54:00:00:00:0b
FOREIGN=10:10:10:10:10:10

WORK="${IXY_VM_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/ixy-vm-test.XXXXXX")}"
mkdir -p "$WORK"
T0=$SECONDS

finish() {
    local passed=0 failed=0 s
    for s in "${SCENARIOS[@]}"; do
        local r="${RESULT[$s]:-FAIL no result}"
        if [ "$r" = PASS ]; then
            echo "PASS $s"
            passed=$((passed + 1))
        else
            echo "FAIL $s: ${r#FAIL }"
            failed=$((failed + 1))
            show_section "$s"
        fi
    done
    log "logs and captures in $WORK; total time $((SECONDS - T0)) s"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
}

# Print the guest's log section of a failed scenario, indented, next to the verdict.
show_section() {
    local s="$1" boot="${BOOT_OF[$1]}" f
    f="$WORK/$boot.txt"
    [ -f "$f" ] || return 0
    echo "  --- guest log ($boot boot) for $s ---"
    if grep -q "^@@BEGIN $s\$" "$f"; then
        sed -n "/^@@BEGIN $s\$/,/^@@SCENARIO $s /p" "$f" | grep -v '^@@B64' >"$WORK/section.txt"
        if [ "$(wc -l <"$WORK/section.txt")" -le 80 ]; then
            sed 's/^/  /' "$WORK/section.txt"
        else
            head -n 50 "$WORK/section.txt" | sed 's/^/  /'
            echo "  ..."
            tail -n 30 "$WORK/section.txt" | sed 's/^/  /'
        fi
    else
        grep -v '^@@B64' "$f" | tail -n 40 | sed 's/^/  /'
        [ -s "$WORK/$boot.log.qemu" ] && sed 's/^/  qemu: /' "$WORK/$boot.log.qemu" | tail -n 10
    fi
    echo "  ---"
}

# parse_boot BOOT RC: read the verdicts the guest printed.
parse_boot() {
    local boot="$1" rc="$2" s line
    [ -f "$WORK/$boot.log" ] || : >"$WORK/$boot.log"
    tr -d '\r' <"$WORK/$boot.log" >"$WORK/$boot.txt"
    for s in "${SCENARIOS[@]}"; do
        [ "${BOOT_OF[$s]}" = "$boot" ] || continue
        line="$(grep -m1 "^@@SCENARIO $s " "$WORK/$boot.txt" || true)"
        if [ -z "$line" ]; then
            if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
                RESULT[$s]="FAIL no result: the $boot guest timed out after ${IXY_VM_TIMEOUT}s"
            elif ! grep -q '^@@DONE' "$WORK/$boot.txt"; then
                RESULT[$s]="FAIL no result: the $boot guest stopped early (qemu rc=$rc)"
            else
                RESULT[$s]="FAIL no result from the $boot guest"
            fi
            continue
        fi
        line="${line#@@SCENARIO $s }"
        if [ "$line" = PASS ]; then RESULT[$s]=PASS; else RESULT[$s]="FAIL ${line#FAIL }"; fi
    done
}

# extract_file BOOT NAME OUT: decode a file the guest sent with emit_file.
extract_file() {
    sed -n "s/^@@B64 $2 //p" "$WORK/$1.txt" | base64 -d >"$3" 2>/dev/null
}

# host_check SCENARIO CMD...: downgrade a guest PASS when a host check fails.
host_check() {
    local s="$1" out
    shift
    [ "${RESULT[$s]:-}" = PASS ] || return 0
    if out="$("$@" 2>&1)"; then
        log "$s: $out"
    else
        RESULT[$s]="FAIL ${out:-check failed: $*}"
    fi
}

# check_forward SCENARIO PREFIX [ARGS...]: host_check that PREFIXd-received.pcap (see
# ad_dumps) holds at least 10000 of the frames in PREFIXa-sent.pcap, in order.
check_forward() {
    host_check "$1" python3 "$VM_DIR/check_pcap.py" forward \
        "$2d-received.pcap" --ref "$2a-sent.pcap" --min 10000 "${@:3}"
}

ensure_deps
ensure_kernel
if ! build_examples; then
    for s in "${SCENARIOS[@]}"; do RESULT[$s]="FAIL the examples do not build"; done
    finish
fi


if [ "${IXY_VM_ONLY:-guard}" = guard ]; then
    t=$SECONDS
    rm -f "$WORK/guard.log" "$WORK/guard.txt"
    make_initramfs "$WORK/guard.cpio.gz" "$VM_DIR/guest/guard.sh" "${NET_MODS[@]}"
    rc=0
    # shellcheck disable=SC2046
    run_vm "$WORK/guard.log" "$WORK/guard.cpio.gz" -smp 1 \
        $(legacy_nic g0 0x4 52:54:00:00:01:0a 1) \
        $(legacy_nic g1 0x5 52:54:00:00:01:0b 1) || rc=$?
    parse_boot guard "$rc"
    log "guard boot: $((SECONDS - t)) s (qemu rc=$rc)"
fi

if [ "${IXY_VM_ONLY:-main}" = main ]; then
    t=$SECONDS
    rm -f "$WORK/main.log" "$WORK/main.txt"
    make_initramfs "$WORK/main.cpio.gz" "$VM_DIR/guest/main.sh" "${NET_MODS[@]}"
    ad_dumps "$WORK/"
    rc=0
    # shellcheck disable=SC2046
    run_vm "$WORK/main.log" "$WORK/main.cpio.gz" -smp "${IXY_VM_SMP:-2}" \
        $(main_nics) "${AD_DUMPS[@]}" || rc=$?
    parse_boot main "$rc"
    log "main boot: $((SECONDS - t)) s (qemu rc=$rc)"
    check_forward virtio-legacy-forward "$WORK/"
    if [ "${RESULT[virtio-promisc]:-}" = PASS ]; then
        extract_file main promisc1 "$WORK/promisc1.pcap"
        extract_file main promisc0 "$WORK/promisc0.pcap"
        host_check virtio-promisc python3 "$VM_DIR/check_pcap.py" dst \
            "$WORK/promisc1.pcap" --mac "$FOREIGN" --min 100
        host_check virtio-promisc python3 "$VM_DIR/check_pcap.py" dst \
            "$WORK/promisc0.pcap" --mac "$MACB" --min 100
    fi
fi

if declare -F run_vfio_boots >/dev/null; then
    run_vfio_boots
fi
if declare -F run_igb_boots >/dev/null; then
    run_igb_boots
fi

finish
