#!/usr/bin/env python3
"""Plots the output of the forwarding benchmark as performance.png.

Usage (from the repository root):

    cargo bench --bench forwarding | tee forwarding.txt
    python3 tools/plot-performance.py forwarding.txt performance.png

or in one go: `cargo bench --bench forwarding | python3 tools/plot-performance.py`.
Needs matplotlib (`pip install matplotlib`).

The benchmark prints one line per driver and batch size, e.g.
`batch 32: 98.7 instructions/packet, 41.2 Mpps` (ixgbe) and
`virtio batch 32: ...` / `virtio-modern batch 32: ...`; lines starting with `#` are
comments. Instructions are counted by callgrind in driver and application code only, against
the 82599 and virtio device models; Mpps is this machine's wall clock against the model. The
figure's caption says so: it measures driver cost against a device model, not a card.
"""

import re
import sys

LINE = re.compile(
    r"^(?:(virtio|virtio-modern) )?batch (\d+): (n/a|[\d.]+) instructions/packet, ([\d.]+) Mpps\s*$"
)

# Hardware counter figures of the original drivers (ixy paper / ixy.rs), for reference.
REFERENCE = {"C ixy": {8: 139, 32: 127}, "ixy.rs": {8: 232, 32: 209}}


def parse(text):
    """Rows (batch, instructions or None, Mpps) per driver name, in input order."""
    drivers = {}
    for line in text.splitlines():
        m = LINE.match(line.strip())
        if m:
            ipp = None if m.group(3) == "n/a" else float(m.group(3))
            name = m.group(1) or "ixgbe"
            drivers.setdefault(name, []).append((int(m.group(2)), ipp, float(m.group(4))))
    if not drivers:
        sys.exit("no 'batch N: ... instructions/packet, ... Mpps' lines in the input")
    return drivers


def main():
    src = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
    out = sys.argv[2] if len(sys.argv) > 2 else "performance.png"
    text = open(src).read() if src else sys.stdin.read()
    drivers = parse(text)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({b for rows in drivers.values() for b, _, _ in rows})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))

    for name, rows in drivers.items():
        pts = [(b, i) for b, i, _ in rows if i is not None]
        ax1.plot([b for b, _ in pts], [i for _, i in pts], "o-", label=f"{name} (callgrind)")
    for name, ref in REFERENCE.items():
        ax1.plot(list(ref), list(ref.values()), "x", markersize=9, label=f"{name} (hardware counters)")
    ax1.axhline(95, color="grey", linestyle="--", linewidth=1, label="ixgbe bar: 95 at batch 32")
    ax1.axhline(110, color="grey", linestyle=":", linewidth=1, label="virtio bar: 110 at batch 32")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(batches, [str(b) for b in batches])
    ax1.set_xlabel("batch size")
    ax1.set_ylabel("instructions per forwarded packet")
    ax1.set_ylim(bottom=0)
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title("driver + application instructions")

    for name, rows in drivers.items():
        ax2.plot([b for b, _, _ in rows], [m for _, _, m in rows], "s-", label=name)
    ax2.legend(fontsize=8)
    ax2.set_xscale("log", base=2)
    ax2.set_xticks(batches, [str(b) for b in batches])
    ax2.set_xlabel("batch size")
    ax2.set_ylabel("Mpps (wall clock, model included)")
    ax2.set_ylim(bottom=0)
    ax2.grid(True, alpha=0.3)
    ax2.set_title("forwarding rate against the model")

    fig.suptitle("forwarding, 64-byte packets, both directions: ixgbe and virtio-net")
    fig.text(
        0.5,
        0.01,
        "driver cost against a device model, not a card",
        ha="center",
        fontsize=11,
        style="italic",
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
