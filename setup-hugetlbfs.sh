#!/bin/sh
# Reserves 2 MiB hugepages and mounts hugetlbfs for ixy's DMA memory, or undoes both.
#
#   ./setup-hugetlbfs.sh [pages [mount point [owner]]]
#       reserves `pages` 2 MiB hugepages (default 512), mounts hugetlbfs at `mount point`
#       (default /mnt/huge) and, with `owner`, gives the mount to that user (for running
#       through VFIO without root). Point ixy at another mount point with IXY_HUGEPAGE_DIR.
#   ./setup-hugetlbfs.sh --undo [mount point]
#       unmounts it (default /mnt/huge), removes the directory if empty and releases the
#       reservation.
#
# Idempotent: a second run changes nothing. Never shrinks the reservation below the pages
# in use, and never unmounts a mount whose pages a program still holds. Prints what it did;
# exit status 0 when done, 1 when refused or failed, 2 on bad arguments. Needs root.
# POSIX sh (runs under busybox). IXY_ROOT (for tests) is put in front of /sys and /proc.
set -eu

R="${IXY_ROOT:-}"
HP="$R/sys/kernel/mm/hugepages/hugepages-2048kB"
MOUNTS="$R/proc/mounts"

say() { echo "setup-hugetlbfs: $*"; }
die() { echo "setup-hugetlbfs: $*" >&2; exit 1; }
usage() {
    echo "setup-hugetlbfs: $1" >&2
    echo "usage: $0 [pages [mount point [owner]]]   or   $0 --undo [mount point]" >&2
    exit 2
}

hp() { cat "$HP/$1"; }
# Pages taken by mappings, or promised to them (Documentation/admin-guide/mm/hugetlbpage.rst).
in_use() { echo $(($(hp nr_hugepages) - $(hp free_hugepages) + $(hp resv_hugepages))); }
mounted_as() { awk -v m="$1" '$2 == m { t = $3 } END { print t }' "$MOUNTS"; }

# reserve N: sets the reservation to N pages, unless fewer than the pages in use.
reserve() {
    have="$(hp nr_hugepages)"
    used="$(in_use)"
    if [ "$1" = "$have" ]; then
        say "$have hugepages of 2 MiB already reserved"
        return 0
    fi
    [ "$1" -ge "$used" ] || die "refusing to shrink the reservation from $have to $1 \
hugepages: $used are in use (stop the programs that use them first)"
    echo "$1" >"$HP/nr_hugepages" 2>/dev/null || die "cannot write $HP/nr_hugepages (needs root)"
    got="$(hp nr_hugepages)"
    say "reserved $got hugepages of 2 MiB (before: $have)"
    [ "$got" -ge "$1" ] || die "the kernel found only $got of $1 hugepages (memory too \
fragmented: ask for fewer, or run this early after boot)"
}

check_mount_point() {
    case "$1" in
        /*) ;;
        *) usage "the mount point must be an absolute path, not '$1'" ;;
    esac
}

undo() {
    [ $# -le 1 ] || usage "--undo takes at most a mount point"
    MNT="${1:-/mnt/huge}"
    check_mount_point "$MNT"
    case "$(mounted_as "$MNT")" in
        hugetlbfs)
            umount "$MNT" 2>/dev/null || die "cannot unmount $MNT: a program still holds \
its hugepages (stop it first)"
            say "unmounted $MNT"
            rmdir "$MNT" 2>/dev/null && say "removed the empty directory $MNT"
            ;;
        "") say "nothing mounted at $MNT" ;;
        *) die "$MNT is a $(mounted_as "$MNT") mount, not hugetlbfs: left alone" ;;
    esac
    reserve 0
}

[ -d "$HP" ] || die "this kernel offers no 2 MiB hugepages ($HP is missing)"
if [ "${1:-}" = --undo ]; then
    shift
    undo "$@"
    exit 0
fi
[ $# -le 3 ] || usage "too many arguments"
PAGES="${1:-512}"
MNT="${2:-/mnt/huge}"
OWNER="${3:-}"
case "$PAGES" in
    '' | *[!0-9]*) usage "'$PAGES' is not a number of pages" ;;
esac
check_mount_point "$MNT"

reserve "$PAGES"
case "$(mounted_as "$MNT")" in
    hugetlbfs) say "hugetlbfs already mounted at $MNT" ;;
    "")
        mkdir -p "$MNT" || die "cannot create $MNT"
        mount -t hugetlbfs -o pagesize=2M hugetlbfs "$MNT" || die "cannot mount hugetlbfs at $MNT"
        say "mounted hugetlbfs at $MNT"
        ;;
    *) die "$MNT is a $(mounted_as "$MNT") mount, not hugetlbfs: pick another mount point" ;;
esac
if [ -n "$OWNER" ]; then
    chown "$OWNER" "$MNT" && chmod 0700 "$MNT" || die "cannot give $MNT to $OWNER"
    say "$MNT belongs to $OWNER"
fi
say "$(hp nr_hugepages) hugepages reserved, $(hp free_hugepages) free; ixy uses them with \
IXY_HUGEPAGE_DIR=$MNT (the default is /mnt/huge)"
