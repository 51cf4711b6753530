#!/bin/sh
# Mutation testing of the packet path (issue 14): cargo-mutants changes the code that moves
# packets one small edit at a time, and every change must make a test fail.
#
#   scripts/mutants.sh [FILE...]
#
# Installs cargo-mutants if it is missing, then mutates the packet-path files below (or only
# the FILEs given) on both cores (-j 2). Mutants that cannot change behaviour are excluded, each with its reason, in
# .cargo/mutants.toml. The last line printed is cargo-mutants' summary
# ("N mutants tested in ...: N missed, N caught, N unviable, N timeouts"); the details are in
# target/mutants/mutants.out (missed.txt, timeout.txt, caught.txt). Exit status is
# cargo-mutants': 0 when every mutant was caught (or did not build).
#
# Test selection: every file below has unit tests beside it that exercise it directly (rings
# against a recording register space, the mailbox against a fake PF, pools against a
# counting allocator), so each mutant runs only the library's unit tests (`--lib`, a few
# seconds); the driver tests would add an integration-test link per mutant for no mutant
# they alone catch. Unit tests that loop on the packet path carry a deadline
# (crate::testing::deadline, 10 s) shorter than the test timeout here (60 s), so a mutant
# that makes a loop spin fails the run with a message and counts as caught, not as a timeout.
set -eu
cd "$(dirname "$0")/.."

# The packet path. If code moves, list the files that replace these.
FILES="src/intel/ring.rs src/intel/mailbox.rs src/memory/mempool.rs src/virtio/virtqueue.rs
src/interrupts.rs"

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants: installing cargo-mutants" >&2
    cargo install cargo-mutants --locked
fi

whole_path=yes
[ $# -gt 0 ] && { FILES="$*"; whole_path=no; }
set --
for f in $FILES; do
    [ -f "$f" ] || { echo "mutants: $f does not exist: update FILES in $0" >&2; exit 2; }
    set -- "$@" -f "$f"
done

# Every exclusion must still name a mutant: one that matches nothing was written for code
# that moved, and must be checked again.
if [ "$whole_path" = yes ]; then
    all=$(cargo mutants --list --no-config "$@")
    sed -n "s/^ *'\(.*\)',.*\$/\1/p" .cargo/mutants.toml | while IFS= read -r re; do
        printf '%s\n' "$all" | grep -Eq -- "$re" || {
            echo "mutants: the exclusion '$re' in .cargo/mutants.toml matches no mutant;" \
                "the code moved: check it again" >&2
            exit 2
        }
    done || exit 2
fi

out=target/mutants
mkdir -p "$out"
summary='^[0-9]+ mutants? tested in '
# Progress as it comes; the summary line is held back to be printed last.
# [profile.mutants]: a test build without debug info, which rebuilds and links faster.
{
    status=0
    cargo mutants -j 2 --profile mutants --timeout 60 -o "$out" "$@" -- --lib 2>&1 ||
        status=$?
    echo "$status" >"$out/status"
} | tee "$out/run.log" | grep --line-buffered -Ev "$summary" || true
status=$(cat "$out/status")
line=$(grep -E "$summary" "$out/run.log" | tail -n 1) || true
if [ -z "$line" ]; then
    echo "mutants: cargo-mutants ended without a summary (exit status $status); see $out/run.log" >&2
    [ "$status" -ne 0 ] || status=1
    exit "$status"
fi
echo "$line"
exit "$status"
