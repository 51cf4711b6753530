#!/usr/bin/env bash
# Boots a QEMU guest with the main boot's legacy virtio NICs (A-B on hub 1,
# C-D on hub 2, D a kernel-driven sink; see guest/main.sh),
# runs `forwarder B C` and `generator A` for a few seconds and shows their
# per-second statistics, then a one-line verdict (demo: PASS|FAIL ...; exit status 0|1).
# Installs what it needs (QEMU, busybox-static, cpio, a Debian guest kernel).
# Usage: vm/demo.sh [SECONDS]   (default 10)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS="${1:-10}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ixy-vm-demo.XXXXXX")"
ensure_deps
ensure_kernel
build_examples || die "the examples do not build"
# The guest reads the run time from /demo-seconds.
cp "$VM_DIR/guest/demo.sh" "$WORK/demo-script.sh"
sed -i "1i echo $SECS >/demo-seconds" "$WORK/demo-script.sh"
make_initramfs "$WORK/demo.cpio.gz" "$WORK/demo-script.sh" "${NET_MODS[@]}"
: >"$WORK/demo.log"
log "booting the guest (TCG; about 10 s to boot)"
# shellcheck disable=SC2046
run_vm "$WORK/demo.log" "$WORK/demo.cpio.gz" -smp 2 \
    $(main_nics) &
QPID=$!
tail -n +1 -f --pid=$QPID "$WORK/demo.log" | tr -d '\r' | sed -un 's/^@@DEMO //p'
wait $QPID || log "qemu exited with $?; console log: $WORK/demo.log"
# The verdict: average TX rates of the generator (port A) and of the forwarder towards the
# kernel sink (port C), from the per-second lines above, each from its first busy second on.
tr -d '\r' <"$WORK/demo.log" | awk -v logfile="$WORK/demo.log" '
    function tx(line, parts) { split(line, parts, "TX: "); return parts[2] + 0 }
    /^@@DEMO generator: \[0000:00:04.0\]/ && (gn || tx($0) > 0) { g += tx($0); gn++ }
    /^@@DEMO forwarder: \[0000:00:06.0\]/ && (fn || tx($0) > 0) { f += tx($0); fn++ }
    END {
        if (gn > 0) g /= gn
        if (fn > 0) f /= fn
        if (g > 0 && f > 0) {
            printf "demo: PASS, packets moved: the generator sent %.3f Mpps, the ixy forwarder " \
                "moved %.3f Mpps from B to C (averages over %d s, in QEMU TCG: they measure the " \
                "emulator, not the driver)\n", g, f, fn
            exit 0
        }
        printf "demo: FAIL, no packets moved (generator %.3f Mpps, forwarder %.3f Mpps); " \
            "console log: %s\n", g, f, logfile
        exit 1
    }'
