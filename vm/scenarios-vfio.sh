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
        ad_dumps "$WORK/modern-"
        rc=0
        # shellcheck disable=SC2046
        run_vm "$WORK/modern.log" "$WORK/modern.cpio.gz" -smp 2 \
            $(hub_nics modern_nic 52:54:00:00:02) \
            $(legacy_nic ng 0xa 52:54:00:00:02:10 1) \
            "${AD_DUMPS[@]}" || rc=$?
        parse_boot modern "$rc"
        log "modern boot: $((SECONDS - t)) s (qemu rc=$rc)"
        check_forward virtio-modern-forward "$WORK/modern-"
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
        ad_dumps "$WORK/vfio-"
        rc=0
        # intel-iommu must come before the NICs; interrupt remapping lets vfio-pci use MSI-X.
        # E (hub 4) is left unbound.
        # shellcheck disable=SC2046
        IXY_VM_APPEND="intel_iommu=on ${IXY_VM_APPEND:-}" \
            run_vm "$WORK/vfio.log" "$WORK/vfio.cpio.gz" -smp 2 \
            -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on \
            $(hub_nics iommu_nic 52:54:00:00:03) \
            $(legacy_nic ne 0x8 52:54:00:00:03:0e 4) \
            $(legacy_nic ng 0x9 52:54:00:00:03:10 1) \
            $(legacy_nic nh 0xa 52:54:00:00:03:11 2) \
            "${AD_DUMPS[@]}" || rc=$?
        parse_boot vfio "$rc"
        log "vfio boot: $((SECONDS - t)) s (qemu rc=$rc)"
        # interrupts-idle sends through the forwarder to D again later: --first-run.
        check_forward vfio-nonroot-forward "$WORK/vfio-" --first-run
        if [ "${RESULT[vfio-nonroot-forward]:-}" = PASS ]; then
            extract_file vfio vfiocap "$WORK/vfio-capture.pcap"
            host_check vfio-nonroot-forward python3 "$VM_DIR/check_pcap.py" forward \
                "$WORK/vfio-capture.pcap" --ref "$WORK/vfio-a-sent.pcap" --min 2000
        fi
    fi
}
