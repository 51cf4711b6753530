#!/bin/sh
# Mutation testing of the packet path (issue 14): cargo-mutants changes the code that moves
# packets one small edit at a time, and every change must make a test fail.
# (POSIX sh; bash runs it too: no bash special variables such as GROUPS are used.)
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
# Test selection, per group of files (the cheapest tests that reach the code):
# * lib: the rings, the mailbox, the mempool and the interrupt state machine have unit tests
#   beside them that play the device (a recording register space, a fake PF, a counting
#   allocator), so their mutants run the library's unit tests only (`--lib`, seconds).
# * virtio: the virtqueue's receive and transmit paths are driven by the virtio driver
#   tests against the device model (`--lib --test virtio`).
# * irq: the Intel PF queues' receive interrupts (poll, unmask, sleep, disarm), driven by
#   the ixgbe interrupt tests against the model, and the fallback to polling on sysfs,
#   tested beside the code (`--lib --test ixgbe_interrupts`).
# * queues: a device split into per-queue handles on threads (`--test threads`).
# Tests of code that loops carry a deadline (unit tests: crate::testing::deadline, 10 s;
# driver tests: tests/common, 60 s) shorter than the test timeout here (120 s), so a mutant
# that makes a loop spin fails with a message and counts as caught, not as a timeout.
# cargo-mutants does not mutate the bodies of `unsafe fn`s (e.g. the virtqueue's
# receive_span/put_span): their tests still run against every other mutant.
set -eu
cd "$(dirname "$0")/.."

# The packet path, in groups, each with its files and its test selection (see above). If
# code moves, list the files that replace these.
MUTANT_GROUPS="lib virtio irq queues"
files_of() {
    case $1 in
        lib) echo src/intel/ring.rs src/intel/mailbox.rs src/memory/mempool.rs src/interrupts.rs ;;
        virtio) echo src/virtio/virtqueue.rs ;;
        irq) echo src/intel/irq.rs ;;
        queues) echo src/queues.rs ;;
    esac
}
tests_of() {
    case $1 in
        lib) echo --lib ;;
        virtio) echo --lib --test virtio ;;
        irq) echo --lib --test ixgbe_interrupts ;;
        queues) echo --test threads ;;
    esac
}
ALL_FILES=$(echo $(for g in $MUTANT_GROUPS; do files_of "$g"; done))

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants: installing cargo-mutants" >&2
    cargo install cargo-mutants --locked
fi

# FILE arguments: only those files, each in its group.
for f in "$@"; do
    case " $ALL_FILES " in
        *" $f "*) ;;
        *) echo "mutants: $f is not in the packet-path lists of $0" >&2; exit 2 ;;
    esac
done
for f in $ALL_FILES; do
    [ -f "$f" ] || { echo "mutants: $f does not exist: update the file lists in $0" >&2; exit 2; }
done

# Every exclusion must still name a mutant: one that matches nothing was written for code
# that moved, and must be checked again.
if [ $# -eq 0 ]; then
    all=$(for f in $ALL_FILES; do cargo mutants --list --no-config -f "$f"; done)
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
failed=0 ran=
# run_group GROUP "FILES" TEST-ARGS...: one cargo-mutants run, its output as it comes.
run_group() {
    group=$1 files=$2
    shift 2
    [ -n "$files" ] || return 0 # none of its files was asked for
    rm -rf "${out:?}/$group"
    ran="$ran $group"
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
for group in $MUTANT_GROUPS; do
    files=$(files_of "$group")
    if [ $# -gt 0 ]; then
        chosen=""
        for f in $files; do
            case " $* " in *" $f "*) chosen="$chosen $f" ;; esac
        done
        files=$chosen
    fi
    # shellcheck disable=SC2046 # the test arguments are words
    run_group "$group" "$files" $(tests_of "$group")
done

count() { # count KIND: lines of KIND.txt over the groups that ran
    for g in $ran; do cat "$out/$g/mutants.out/$1.txt" 2>/dev/null; done | grep -c . || true
}
missed=$(count missed) caught=$(count caught) unviable=$(count unviable) timeouts=$(count timeout)
secs=$(($(date +%s) - start))
echo "$((missed + caught + unviable + timeouts)) mutants tested in $((secs / 60))m $((secs % 60))s:" \
    "$missed missed, $caught caught, $unviable unviable, $timeouts timeouts"
[ "$failed" -eq 0 ] && [ "$missed" -eq 0 ] && [ "$timeouts" -eq 0 ]
