#!/usr/bin/env bash
# Boots a QEMU guest with the main boot's legacy virtio NICs (A-B on hub 1,
# C-D on hub 2, D a kernel-driven sink; see guest/main.sh),
# runs `forwarder B C` and `generator A` for a few seconds and shows their
# per-second statistics. Usage: vm/demo.sh [SECONDS]   (default 10)
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
