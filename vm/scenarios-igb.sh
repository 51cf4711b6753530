#!/usr/bin/env bash
# Intel 82576 (QEMU `-device igb`) scenarios of the QEMU bench. Sourced by vm/test.sh
# after lib.sh and its SCENARIOS/BOOT_OF/RESULT declarations; adds one guest boot:
#
#   igb: eight igb NICs (8086:10c9), A-E and L each behind its own PCIe root port, P1 and
#        P2 on the root bus: A, B, E and P1 on hub 1, C, D and P2 on hub 2, L alone on hub
#        3 with its link taken down by the QEMU monitor, plus legacy virtio kernel sinks G
#        (hub 1) and H (hub 2). igb-forward: A -> B, C -> D driven by ixy through sysfs as
#        root; filter-dump records what A sends and what reaches D. igbvf-forward: P1 and
#        P2 get the guest kernel's igb PF driver and one VF each; E -> VF of P1, VF of P2 ->
#        hub 2; filter-dump records what E sends and what P2 (its VF) transmits.
#        igb-bad-input: an e1000e (X, no backend) and a VF whose PF is down are refused; a
#        PF without link (L) is reported as such within the link deadline. rss-threads:
#        generator A sends 64 flows to 52:54:00:00:04:99 -> forwarder B C with two queue
#        pairs on two threads (RSS on B) -> hub 2; the same captures as igb-forward, cut
#        to that MAC.
#
#   igbvfio: q35 + intel-iommu (intel_iommu=on), four igb NICs A-D (hubs 1, 2, as above)
#        bound to vfio-pci by scripts/vfio-bind.sh, legacy virtio kernel sinks on hubs 1
#        and 2; vm/guest/vfio.sh with the igb NICs: igb-vfio-nonroot (all programs as uid
#        1000), igb-interrupts-idle (MSI-X; idle forwarder under 5 % CPU, then it forwards).
#
# IXY_VM_ONLY=igb or IXY_VM_ONLY=igbvfio runs just that boot; IXY_VM_IGB=0 leaves both out.

SCENARIOS+=(igb-forward igbvf-forward igb-bad-input rss-threads igb-vfio-nonroot igb-interrupts-idle)
BOOT_OF[igb-forward]=igb
BOOT_OF[igbvf-forward]=igb
BOOT_OF[igb-bad-input]=igb
BOOT_OF[rss-threads]=igb
BOOT_OF[igb-vfio-nonroot]=igbvfio
BOOT_OF[igb-interrupts-idle]=igbvfio

igb_nic() { # igb_nic NETDEV SLOT MAC HUB: an igb behind its own PCIe root port at SLOT
    # (the VFs an igb reserves at realize time would collide on one bus), so the NIC is
    # 0000:0N:00.0, N counting the root ports from 1.
    local n=$(($2 - 3))
    echo "-device pcie-root-port,id=rp$n,chassis=$n,addr=$2"
    echo "-netdev hubport,id=$1,hubid=$4 -device igb,romfile=,bus=rp$n,netdev=$1,mac=$3"
}

run_igb_boots() {
    local t rc
    run_igbvfio_boot
    [ "${IXY_VM_ONLY:-igb}" = igb ] || return 0
    # Three paced 40,000-frame runs (igb-forward, igbvf-forward, rss-threads): on a loaded
    # host the boot took 302 s before rss-threads had finished, so it gets 150 s more.
    local IXY_VM_TIMEOUT=$((IXY_VM_TIMEOUT + 150))
    t=$SECONDS
    make_initramfs "$WORK/igb.cpio.gz" "$VM_DIR/guest/igb.sh" "${NET_MODS[@]}" \
        dca i2c-algo-bit igb
    ad_dumps "$WORK/igb-"
    rm -f "$WORK/igbvf-a-sent.pcap" "$WORK/igbvf-d-received.pcap"
    # L has no link: the monitor reads this before the guest boots (igb-bad-input).
    echo "set_link nl off" >"$WORK/igb-monitor.in"
    rc=0
    # E (bus 5), L (bus 6); P1 and P2 on the root bus (slots 1 and 3, their VFs at slots
    # 0x11 and 0x13), where the guest kernel finds room for the VFs' BARs (the firmware
    # sizes a root port's window for its PF's own BARs only).
    # No 64-bit PCI window (pci-hole64-size=0): QEMU 10.0 decodes a VF's BAR at the low
    # 32 bits of the PF's 64-bit VF BAR only, so the VF BARs must lie below 4 GiB
    # (vm/README.md).
    # shellcheck disable=SC2046
    run_vm "$WORK/igb.log" "$WORK/igb.cpio.gz" -smp 2 \
        -global q35-pcihost.pci-hole64-size=0 \
        $(hub_nics igb_nic 52:54:00:00:04) \
        $(igb_nic ne 0x8 52:54:00:00:04:0e 1) \
        $(igb_nic nl 0x9 52:54:00:00:04:0f 3) \
        -chardev "file,id=mon,path=$WORK/igb-monitor.out,input-path=$WORK/igb-monitor.in" \
        -mon chardev=mon,mode=readline \
        -netdev hubport,id=np1,hubid=1 -device igb,romfile=,netdev=np1,addr=0x1,mac=52:54:00:00:04:21 \
        -netdev hubport,id=np2,hubid=2 -device igb,romfile=,netdev=np2,addr=0x3,mac=52:54:00:00:04:22 \
        -device e1000e,romfile=,addr=0xd \
        $(legacy_nic ng 0xa 52:54:00:00:04:10 1) \
        $(legacy_nic nh 0xb 52:54:00:00:04:11 2) \
        "${AD_DUMPS[@]}" \
        -object "filter-dump,id=dumpe,netdev=ne,queue=rx,file=$WORK/igbvf-a-sent.pcap" \
        -object "filter-dump,id=dumpp2,netdev=np2,queue=rx,file=$WORK/igbvf-d-received.pcap" ||
        rc=$?
    parse_boot igb "$rc"
    log "igb boot: $((SECONDS - t)) s (qemu rc=$rc)"
    # The VFs' frames reach D's hub later: --first-run.
    check_forward igb-forward "$WORK/igb-" --first-run
    check_forward igbvf-forward "$WORK/igbvf-"
    host_check rss-threads python3 "$VM_DIR/check_pcap.py" flows "$WORK/igb-d-received.pcap" \
        --ref "$WORK/igb-a-sent.pcap" --dst 52:54:00:00:04:99 --min 10000 --min-flows 2
    return 0
}

run_igbvfio_boot() {
    local t rc
    [ "${IXY_VM_ONLY:-igbvfio}" = igbvfio ] || return 0
    t=$SECONDS
    {
        echo "cat >/bin/vfio-bind.sh <<'IXY_VFIO_BIND_EOF'"
        cat "$REPO_DIR/scripts/vfio-bind.sh"
        echo "IXY_VFIO_BIND_EOF"
        echo "chmod +x /bin/vfio-bind.sh"
        echo "VFIO_NIC_ID='0x8086 0x10c9' VFIO_A=0000:01:00.0 VFIO_B=0000:02:00.0"
        echo "VFIO_C=0000:03:00.0 VFIO_D=0000:04:00.0 VFIO_SINKS='0000:00:09.0 0000:00:0a.0'"
        # Paced and sized as igb-forward (guest/igb.sh): QEMU's igb drops a backlog beyond
        # the free descriptors, and at 5 % with 20,000 frames a loaded host left 8,253
        # (earlier 10,366 and 10,431) captured of the 10,000 asked for.
        echo "VFIO_NONROOT=igb-vfio-nonroot VFIO_IDLE=igb-interrupts-idle VFIO_ERRORS="
        echo "VFIO_PACE=2 VFIO_FRAMES=40000"
        cat "$VM_DIR/guest/vfio.sh"
    } >"$WORK/igbvfio-guest.sh"
    make_initramfs "$WORK/igbvfio.cpio.gz" "$WORK/igbvfio-guest.sh" \
        irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci "${NET_MODS[@]}"
    ad_dumps "$WORK/igbvfio-"
    rc=0
    # intel-iommu before the NICs; interrupt remapping lets vfio-pci use MSI-X.
    # shellcheck disable=SC2046
    IXY_VM_APPEND="intel_iommu=on ${IXY_VM_APPEND:-}" \
        run_vm "$WORK/igbvfio.log" "$WORK/igbvfio.cpio.gz" -smp 2 \
        -machine q35,kernel-irqchip=split -device intel-iommu,intremap=on \
        $(hub_nics igb_nic 52:54:00:00:05) \
        $(legacy_nic ng 0x9 52:54:00:00:05:10 1) \
        $(legacy_nic nh 0xa 52:54:00:00:05:11 2) \
        "${AD_DUMPS[@]}" || rc=$?
    parse_boot igbvfio "$rc"
    log "igbvfio boot: $((SECONDS - t)) s (qemu rc=$rc)"
    # igb-interrupts-idle sends through the forwarder to D again later: --first-run.
    check_forward igb-vfio-nonroot "$WORK/igbvfio-" --first-run
    if [ "${RESULT[igb-vfio-nonroot]:-}" = PASS ]; then
        extract_file igbvfio vfiocap "$WORK/igbvfio-capture.pcap"
        host_check igb-vfio-nonroot python3 "$VM_DIR/check_pcap.py" forward \
            "$WORK/igbvfio-capture.pcap" --ref "$WORK/igbvfio-a-sent.pcap" --min 2000
    fi
}
