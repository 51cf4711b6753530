#!/bin/sh
# Mutation testing of the packet path (issue 14): cargo-mutants changes the code that moves
# packets one small edit at a time, and every change must make a test fail.
#
#   scripts/mutants.sh [FILE...]
#
# Installs cargo-mutants if it is missing, then mutates the packet-path files below (or only
# the FILEs given) on both cores (-j 2), with [profile.mutants] (no debug info: faster
# rebuilds). Mutants that cannot change behaviour are excluded, each with its reason, in
# .cargo/mutants.toml; a full run first checks that every exclusion still names a mutant.
# The last line is the summary, in cargo-mutants' words but with every count given:
#   N mutants tested in Mm Ss: N missed, N caught, N unviable, N timeouts
# Details per group in target/mutants/<group>/mutants.out (missed.txt, timeout.txt, ...).
# Exit status 0 when nothing was missed and nothing timed out.
#
# Test selection, per group of files:
# * lib: the rings, the mailbox, the mempool and the interrupt state machine have unit tests
#   beside them that play the device (a recording register space, a fake PF, a counting
#   allocator), so their mutants run the library's unit tests only (`--lib`, seconds).
# * virtio: the virtqueue's receive and transmit paths are driven by the virtio driver
#   tests against the device model (`--lib --test virtio`).
# Tests of code that loops carry a deadline (unit tests: crate::testing::deadline, 10 s;
# driver tests: tests/common, 60 s) shorter than the test timeout here (120 s), so a mutant
# that makes a loop spin fails with a message and counts as caught, not as a timeout.
set -eu
cd "$(dirname "$0")/.."

# The packet path. If code moves, list the files that replace these.
LIB_FILES="src/intel/ring.rs src/intel/mailbox.rs src/memory/mempool.rs src/interrupts.rs"
VIRTIO_FILES="src/virtio/virtqueue.rs"

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants: installing cargo-mutants" >&2
    cargo install cargo-mutants --locked
fi

if [ $# -gt 0 ]; then
    lib="" virtio=""
    for f in "$@"; do
        case " $VIRTIO_FILES " in
            *" $f "*) virtio="$virtio $f" ;;
            *) lib="$lib $f" ;;
        esac
    done
    LIB_FILES=$lib VIRTIO_FILES=$virtio
fi
for f in $LIB_FILES $VIRTIO_FILES; do
    [ -f "$f" ] || { echo "mutants: $f does not exist: update the file lists in $0" >&2; exit 2; }
done

# Every exclusion must still name a mutant: one that matches nothing was written for code
# that moved, and must be checked again.
if [ $# -eq 0 ]; then
    all=$(for f in $LIB_FILES $VIRTIO_FILES; do cargo mutants --list --no-config -f "$f"; done)
    sed -n "s/^ *'\(.*\)',.*\$/\1/p" .cargo/mutants.toml | while IFS= read -r re; do
        printf '%s\n' "$all" | grep -Eq -- "$re" || {
            echo "mutants: the exclusion '$re' in .cargo/mutants.toml matches no mutant;" \
                "the code moved: check it again" >&2
            exit 2
        }
    done || exit 2
fi

out=target/mutants
start=$(date +%s)
failed=0
# run_group GROUP "FILES" TEST-ARGS...: one cargo-mutants run, its output as it comes.
run_group() {
    group=$1 files=$2
    shift 2
    rm -rf "${out:?}/$group"
    [ -n "$files" ] || return 0
    args=""
    for f in $files; do args="$args -f $f"; done
    mkdir -p "$out/$group"
    status=0
    # shellcheck disable=SC2086 # word splitting of $args is intended
    cargo mutants -j 2 --profile mutants --timeout 120 -o "$out/$group" $args -- "$@" 2>&1 ||
        status=$?
    case $status in
        0 | 2 | 3) ;; # all caught; some missed; some timed out
        *) echo "mutants: cargo-mutants failed on the $group group (exit status $status)" >&2
           failed=1 ;;
    esac
}
run_group lib "$LIB_FILES" --lib
run_group virtio "$VIRTIO_FILES" --lib --test virtio

count() { # count KIND: lines of KIND.txt over the groups run
    cat "$out"/lib/mutants.out/"$1".txt "$out"/virtio/mutants.out/"$1".txt 2>/dev/null |
        grep -c . || true
}
missed=$(count missed) caught=$(count caught) unviable=$(count unviable) timeouts=$(count timeout)
secs=$(($(date +%s) - start))
echo "$((missed + caught + unviable + timeouts)) mutants tested in $((secs / 60))m $((secs % 60))s:" \
    "$missed missed, $caught caught, $unviable unviable, $timeouts timeouts"
[ "$failed" -eq 0 ] && [ "$missed" -eq 0 ] && [ "$timeouts" -eq 0 ]
