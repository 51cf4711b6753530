#!/usr/bin/env bash
# Shared pieces of the ixy QEMU test bench. Source this file; do not run it.
#
# Everything here runs the drivers inside a QEMU guest (TCG). Guest NICs are
# joined only to QEMU hubs: nothing reaches the host network, and no host PCI
# device is ever touched.

VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$VM_DIR/.." && pwd)"
IXY_VM_CACHE="${IXY_VM_CACHE:-${HOME:-/root}/.cache/ixy-vm}"
# Where cargo builds the static examples (override with IXY_VM_TARGET_DIR or CARGO_TARGET_DIR).
IXY_VM_TARGET_DIR="${IXY_VM_TARGET_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}}"
IXY_VM_TARGET=x86_64-unknown-linux-gnu
IXY_VM_MEM="${IXY_VM_MEM:-2G}"
IXY_VM_TIMEOUT="${IXY_VM_TIMEOUT:-300}"
EXAMPLES=(generator forwarder pcap)

log() { echo "[vm] $*" >&2; }
die() { echo "[vm] ERROR: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Install qemu (from bookworm-backports on Debian 12), busybox-static, cpio,
# gzip. apt-get runs only when something is missing.
ensure_deps() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    [ -x /bin/busybox ] && file_is_static /bin/busybox || missing+=(busybox-static)
    command -v cpio >/dev/null || missing+=(cpio)
    command -v gzip >/dev/null || missing+=(gzip)
    command -v dpkg-deb >/dev/null || missing+=(dpkg)
    if [ ${#missing[@]} -eq 0 ]; then return 0; fi
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing: ${missing[*]}"
    local codename=""
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
    local qemu_opts=()
    if [ "$codename" = bookworm ]; then
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            echo 'deb http://deb.debian.org/debian bookworm-backports main' |
                as_root tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
        fi
        qemu_opts=(-t bookworm-backports)
    fi
    as_root apt-get update -qq
    local pkg
    for pkg in "${missing[@]}"; do
        if [ "$pkg" = qemu-system-x86 ]; then
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${qemu_opts[@]}" qemu-system-x86 >/dev/null
        else
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "$pkg" >/dev/null
        fi
    done
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 still missing"
    command -v cpio >/dev/null || die "cpio still missing"
}

file_is_static() {
    # busybox-static installs /bin/busybox as a static binary; the dynamic
    # 'busybox' package would not run in the initramfs.
    dpkg -s busybox-static >/dev/null 2>&1
}

# Download and unpack a Debian 6.1 kernel into $IXY_VM_CACHE/kernel.
# Sets KERNEL_IMAGE and KERNEL_MODDIR.
ensure_kernel() {
    local kdir="$IXY_VM_CACHE/kernel"
    if [ ! -f "$kdir/.done" ]; then
        command -v apt-get >/dev/null || die "no kernel in $kdir and no apt-get to fetch one"
        mkdir -p "$IXY_VM_CACHE"
        local pkg
        pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
        if [ -z "$pkg" ]; then
            as_root apt-get update -qq
            pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
        fi
        [ -n "$pkg" ] || die "cannot resolve the linux-image package name"
        log "downloading $pkg"
        rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
        if ! (cd "$kdir.tmp" && chmod 777 . && apt-get download "$pkg" >/dev/null 2>&1); then
            # Stale package lists name a version the mirror no longer has.
            as_root apt-get update -qq
            pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
            (cd "$kdir.tmp" && apt-get download "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
        fi
        dpkg-deb -x "$kdir.tmp"/*.deb "$kdir.tmp/root"
        rm -f "$kdir.tmp"/*.deb
        rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
        touch "$kdir/.done"
    fi
    KERNEL_IMAGE="$(ls "$kdir"/root/boot/vmlinuz-* | head -1)"
    KERNEL_MODDIR="$(ls -d "$kdir"/root/lib/modules/* | head -1)"
    [ -f "$KERNEL_IMAGE" ] || die "no kernel image in $kdir"
}

# Build the examples as static binaries. Sets EXAMPLES_DIR.
# IXY_VM_EXAMPLES_DIR names a directory of ready binaries instead (no build).
build_examples() {
    if [ -n "${IXY_VM_EXAMPLES_DIR:-}" ]; then
        EXAMPLES_DIR="$IXY_VM_EXAMPLES_DIR"
        return 0
    fi
    log "building examples (static, target dir $IXY_VM_TARGET_DIR)"
    (cd "$REPO_DIR" &&
        CARGO_TARGET_DIR="$IXY_VM_TARGET_DIR" RUSTFLAGS='-C target-feature=+crt-static' \
            cargo build --release --examples --target "$IXY_VM_TARGET" >&2) || return 1
    EXAMPLES_DIR="$IXY_VM_TARGET_DIR/$IXY_VM_TARGET/release/examples"
    local e
    for e in "${EXAMPLES[@]}"; do
        [ -x "$EXAMPLES_DIR/$e" ] || { log "example $e was not built"; return 1; }
    done
}

# Find a module's .ko path (modules.dep names, with - and _ equivalent).
module_path() {
    local name="$1" f
    f="$(find "$KERNEL_MODDIR/kernel" \( -name "$name.ko" -o -name "${name//-/_}.ko" -o -name "${name//_/-}.ko" \) | head -1)"
    [ -n "$f" ] || die "module $name not found in $KERNEL_MODDIR"
    echo "$f"
}

# make_initramfs OUT GUEST_SCRIPT [MODULES...]
# The guest script is sourced by a generated /init after the basic setup,
# with the example binaries in /bin (if built), modules in /lib/ixy-mods and
# setup-hugetlbfs.sh and scripts/*.sh in /scripts.
make_initramfs() {
    local out="$1" script="$2"
    shift 2
    local root
    root="$(mktemp -d "${TMPDIR:-/tmp}/ixy-initramfs.XXXXXX")"
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt/huge,lib/ixy-mods,etc,root}
    cp /bin/busybox "$root/bin/busybox"
    local m
    for m in "$@"; do
        cp "$(module_path "$m")" "$root/lib/ixy-mods/"
    done
    if [ -n "${EXAMPLES_DIR:-}" ]; then
        local e
        for e in "${EXAMPLES[@]}"; do
            [ -x "$EXAMPLES_DIR/$e" ] && cp "$EXAMPLES_DIR/$e" "$root/bin/$e"
        done
    fi
    mkdir -p "$root/scripts"
    cp "$REPO_DIR/setup-hugetlbfs.sh" "$REPO_DIR"/scripts/*.sh "$root/scripts/"
    cp "$VM_DIR/guest-common.sh" "$root/guest-common.sh"
    cp "$script" "$root/guest-script.sh"
    cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "@@BOOTED"
# A subshell: a shell error in the script must not end init (a kernel panic).
(
    . /guest-common.sh
    . /guest-script.sh
)
echo "@@DONE rc=$?"
sync
poweroff -f
INIT
    chmod +x "$root/init"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
    rm -rf "$root"
}

# run_vm LOG INITRD [extra qemu args...]
# Boots the guest with a hard timeout; the serial console goes to LOG.
# `no_timer_check`: under TCG on a busy host the kernel's early check that the timer ticks
# through the (interrupt-remapped) IO-APIC can miss its window and panic the boot ("timer
# doesn't work through Interrupt-remapped IO-APIC", seen in CI on 2026-12-01); the timer works,
# only the check's timing does not (Linux arch/x86/kernel/apic/io_apic.c, timer_irq_works).
run_vm() {
    local logf="$1" initrd="$2"
    shift 2
    local rc=0
    timeout --foreground -k 10 "$IXY_VM_TIMEOUT" qemu-system-x86_64 \
        -accel tcg -machine q35 -cpu max -smp 1 -m "$IXY_VM_MEM" \
        -nographic -no-reboot -nodefaults -serial "file:$logf" -monitor none \
        -kernel "$KERNEL_IMAGE" -initrd "$initrd" \
        -append "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check ${IXY_VM_APPEND:-}" \
        "$@" </dev/null >"$logf.qemu" 2>&1 || rc=$?
    return $rc
}

NET_MODS=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)

# legacy_nic NETDEV SLOT MAC HUB: qemu arguments of a legacy virtio-net NIC on a hub.
legacy_nic() {
    echo "-netdev hubport,id=$1,hubid=$4 -device virtio-net-pci,disable-modern=on,romfile=,netdev=$1,addr=$2,mac=$3"
}

# The NICs of the main (and demo) boot, see guest/main.sh:
# A-B-G on hub 1, C-D on hub 2, E-F on hub 3; netdevs na..ng.
main_nics() {
    legacy_nic na 0x4 52:54:00:00:00:0a 1
    legacy_nic nb 0x5 52:54:00:00:00:0b 1
    legacy_nic nc 0x6 52:54:00:00:00:0c 2
    legacy_nic nd 0x7 52:54:00:00:00:0d 2
    legacy_nic ne 0x8 52:54:00:00:00:0e 3
    legacy_nic nf 0x9 52:54:00:00:00:0f 3
    legacy_nic ng 0xa 52:54:00:00:00:10 1
}

# hub_nics NIC MAC: qemu arguments of NICs A-D of the modern and vfio boots, made by NIC
# (modern_nic or iommu_nic, see scenarios-vfio.sh): netdevs na..nd in slots 4..7, MACs
# MAC:0a..MAC:0d, A-B on hub 1, C-D on hub 2.
hub_nics() {
    "$1" na 0x4 "$2:0a" 1
    "$1" nb 0x5 "$2:0b" 1
    "$1" nc 0x6 "$2:0c" 2
    "$1" nd 0x7 "$2:0d" 2
}

# ad_dumps PREFIX: remove old captures and set the array AD_DUMPS to qemu arguments by
# which filter-dump records what NIC A transmits (netdev na, queue=rx) in
# PREFIXa-sent.pcap and what is delivered to NIC D (netdev nd, queue=tx) in
# PREFIXd-received.pcap.
ad_dumps() {
    rm -f "$1a-sent.pcap" "$1d-received.pcap"
    AD_DUMPS=(-object "filter-dump,id=dumpa,netdev=na,queue=rx,file=$1a-sent.pcap"
        -object "filter-dump,id=dumpd,netdev=nd,queue=tx,file=$1d-received.pcap")
}
