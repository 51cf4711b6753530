#!/usr/bin/env bash
# VFIO, interrupt and virtio 1.0 scenarios of the QEMU bench. Sourced by vm/test.sh after
# lib.sh and its SCENARIOS/BOOT_OF/RESULT declarations; adds two guest boots:
#
#   modern: four modern-only virtio-net NICs (1af4:1041), A-B on hub 1, C-D on hub 2,
#           driven through sysfs as root (virtio-modern-forward); filter-dump records
#           what A sends and what reaches D.
#   vfio:   q35 + intel-iommu (intel_iommu=on), four modern virtio-net NICs with
#           iommu_platform=on bound to vfio-pci by scripts/vfio-bind.sh, plus one legacy
#           NIC left unbound (vfio-nonroot-forward, interrupts-idle, vfio-errors).
#
# IXY_VM_ONLY=modern or IXY_VM_ONLY=vfio runs just that boot.

VFIO_SCENARIOS=(virtio-modern-forward vfio-nonroot-forward interrupts-idle vfio-errors)
SCENARIOS+=("${VFIO_SCENARIOS[@]}")
BOOT_OF[virtio-modern-forward]=modern
BOOT_OF[vfio-nonroot-forward]=vfio
BOOT_OF[interrupts-idle]=vfio
BOOT_OF[vfio-errors]=vfio

modern_nic() { # modern_nic NETDEV SLOT MAC HUB
    echo "-netdev hubport,id=$1,hubid=$4 -device virtio-net-pci-non-transitional,romfile=,netdev=$1,addr=$2,mac=$3"
}
iommu_nic() { # iommu_nic NETDEV SLOT MAC HUB: modern only, DMA through the IOMMU
    echo "-netdev hubport,id=$1,hubid=$4 -device virtio-net-pci,disable-legacy=on,iommu_platform=on,romfile=,netdev=$1,addr=$2,mac=$3"
}

run_vfio_boots() {
    local t rc
    if [ "${IXY_VM_ONLY:-modern}" = modern ]; then
        t=$SECONDS
        make_initramfs "$WORK/modern.cpio.gz" "$VM_DIR/guest/modern.sh" "${NET_MODS[@]}"
        rm -f "$WORK/modern-a-sent.pcap" "$WORK/modern-d-received.pcap"
        rc=0
        # shellcheck disable=SC2046
        run_vm "$WORK/modern.log" "$WORK/modern.cpio.gz" -smp 2 \
            $(modern_nic na 0x4 52:54:00:00:02:0a 1) \
            $(modern_nic nb 0x5 52:54:00:00:02:0b 1) \
            $(modern_nic nc 0x6 52:54:00:00:02:0c 2) \
            $(modern_nic nd 0x7 52:54:00:00:02:0d 2) \
            $(legacy_nic ng 0xa 52:54:00:00:02:10 1) \
            -object "filter-dump,id=dumpa,netdev=na,queue=rx,file=$WORK/modern-a-sent.pcap" \
            -object "filter-dump,id=dumpd,netdev=nd,queue=tx,file=$WORK/modern-d-received.pcap" ||
            rc=$?
        parse_boot modern "$rc"
        log "modern boot: $((SECONDS - t)) s (qemu rc=$rc)"
        host_check virtio-modern-forward python3 "$VM_DIR/check_pcap.py" forward \
            "$WORK/modern-d-received.pcap" --ref "$WORK/modern-a-sent.pcap" --min 10000
    fi

    if [ "${IXY_VM_ONLY:-vfio}" = vfio ]; then
        t=$SECONDS
        # The guest gets scripts/vfio-bind.sh as /bin/vfio-bind.sh, then the scenarios.
        {
            echo "cat >/bin/vfio-bind.sh <<'IXY_VFIO_BIND_EOF'"
            cat "$REPO_DIR/scripts/vfio-bind.sh"
            echo "IXY_VFIO_BIND_EOF"
            echo "chmod +x /bin/vfio-bind.sh"
            cat "$VM_DIR/guest/vfio.sh"
        } >"$WORK/vfio-guest.sh"
        make_initramfs "$WORK/vfio.cpio.gz" "$WORK/vfio-guest.sh" \
            irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci "${NET_MODS[@]}"
        rm -f "$WORK/vfio-a-sent.pcap" "$WORK/vfio-d-received.pcap"
        rc=0
        # intel-iommu must come before the NICs; interrupt remapping lets vfio-pci use MSI-X.
        # shellcheck disable=SC2046
        IXY_VM_APPEND="intel_iommu=on ${IXY_VM_APPEND:-}" \
            run_vm "$WORK/vfio.log" "$WORK/vfio.cpio.gz" -smp 2 \
            -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on \
            $(iommu_nic na 0x4 52:54:00:00:03:0a 1) \
            $(iommu_nic nb 0x5 52:54:00:00:03:0b 1) \
            $(iommu_nic nc 0x6 52:54:00:00:03:0c 2) \
            $(iommu_nic nd 0x7 52:54:00:00:03:0d 2) \
            -netdev hubport,id=ne,hubid=4 \
            -device virtio-net-pci,disable-modern=on,romfile=,netdev=ne,addr=0x8,mac=52:54:00:00:03:0e \
            $(legacy_nic ng 0x9 52:54:00:00:03:10 1) \
            $(legacy_nic nh 0xa 52:54:00:00:03:11 2) \
            -object "filter-dump,id=dumpa,netdev=na,queue=rx,file=$WORK/vfio-a-sent.pcap" \
            -object "filter-dump,id=dumpd,netdev=nd,queue=tx,file=$WORK/vfio-d-received.pcap" ||
            rc=$?
        parse_boot vfio "$rc"
        log "vfio boot: $((SECONDS - t)) s (qemu rc=$rc)"
        # interrupts-idle sends through the forwarder to D again later: --first-run.
        host_check vfio-nonroot-forward python3 "$VM_DIR/check_pcap.py" forward \
            "$WORK/vfio-d-received.pcap" --ref "$WORK/vfio-a-sent.pcap" --min 10000 --first-run
        if [ "${RESULT[vfio-nonroot-forward]:-}" = PASS ]; then
            extract_file vfio vfiocap "$WORK/vfio-capture.pcap"
            host_check vfio-nonroot-forward python3 "$VM_DIR/check_pcap.py" forward \
                "$WORK/vfio-capture.pcap" --ref "$WORK/vfio-a-sent.pcap" --min 2000
        fi
    fi
}
