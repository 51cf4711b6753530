# Guest script of the demo boot: forwarder B C and generator A run side by
# side for IXY_DEMO_SECONDS (default 10) seconds; their per-second stats go to
# the console.
A=0000:00:04.0
B=0000:00:05.0
C=0000:00:06.0
for n in $A $B $C 0000:00:08.0; do echo none >/sys/bus/pci/devices/$n/driver_override; done
kernel_sinks 0000:00:07.0 0000:00:09.0 0000:00:0a.0 >/dev/null
SECS=10
[ -f /demo-seconds ] && SECS="$(cat /demo-seconds)"
hugepages_on 256
if ! have_examples; then
    echo "@@DEMO example binaries missing"
else
    echo "@@DEMO forwarder $B $C; generator $A; for $SECS s"
    forwarder "$B" "$C" 2>&1 | sed 's/^/@@DEMO forwarder: /' &
    sleep 2
    generator "$A" 2>&1 | sed 's/^/@@DEMO generator: /' &
    sleep "$SECS"
    # Stop the programs themselves, not the sed filters.
    for p in $(pidof generator forwarder); do kill "$p"; done
    sleep 1
    for p in $(pidof generator forwarder); do kill -9 "$p"; done
    wait
    echo "@@DEMO stopped"
fi
