#!/usr/bin/env python3
"""Checks pcap files captured by the ixy VM bench.

Subcommands:
  forward OUT.pcap [--ref SENT.pcap] [--min N] [--first-run]
      OUT holds what reached the capture port behind the forwarder. Every
      frame must be a 60-byte Ethernet/IPv4/UDP frame with a valid IPv4 header
      checksum; the 32-bit big-endian sequence number in bytes 56..60 must be
      strictly increasing; all other bytes except byte 48 (which the forwarder
      increments) must equal the first frame's. With --ref (what the generator
      sent, captured before the forwarder), each frame must equal the sent frame
      of the same sequence number with byte 48 incremented by one. With
      --first-run, the capture ends before the first later frame whose sequence
      number is not above the first frame's (a later generator run).
  flows OUT.pcap --ref SENT.pcap [--dst MAC] [--min N] [--min-flows F]
      OUT holds what a forwarder with several queues (and threads) sent; frames
      of different flows may interleave in any order. A flow is the IPv4
      source/destination addresses and UDP source/destination ports (bytes
      26..38). With --dst, both captures are first cut to frames for MAC (the
      run under test). Every frame of OUT must be valid (as for `forward`) and
      equal the sent frame of the same flow and sequence number with byte 48
      incremented; no frame may be forwarded twice; within a flow sequence
      numbers must strictly increase; at least N frames (default 10000) in at
      least F flows (default 2). Prints the per-flow counts.
  dst FILE.pcap --mac MAC [--min N]
      every frame's destination MAC is MAC, and there are at least N frames.
  count FILE.pcap
      prints the number of frames.

Exit status 0 when the check passes; otherwise a one-line reason on stdout
and exit status 1.
"""

import argparse
import struct
import sys

FRAME_LEN = 60
SEQ_OFF = 56
TOUCHED = 48


class CheckError(Exception):
    pass


def read_pcap(path):
    """Returns the list of captured frames (bytes) of a libpcap file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckError(f"cannot read {path}: {e}")
    if len(data) < 24:
        raise CheckError(f"{path}: {len(data)} bytes, no pcap header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise CheckError(f"{path}: bad pcap magic {magic.hex()}")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise CheckError(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    frames = []
    off = 24
    while off + 16 <= len(data):
        _sec, _frac, incl, orig = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        if off + incl > len(data):
            raise CheckError(f"{path}: truncated record {len(frames)}")
        frame = data[off : off + incl]
        if incl != orig:
            raise CheckError(f"{path}: record {len(frames)} cut to {incl} of {orig} bytes")
        frames.append(frame)
        off += incl
    if off != len(data):
        raise CheckError(f"{path}: {len(data) - off} trailing bytes")
    return frames


def ipv4_checksum_ok(hdr):
    total = 0
    for i in range(0, len(hdr), 2):
        total += (hdr[i] << 8) | hdr[i + 1]
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def check_frame(i, fr):
    if len(fr) != FRAME_LEN:
        raise CheckError(f"frame {i}: length {len(fr)}, expected {FRAME_LEN}")
    if fr[12:14] != b"\x08\x00":
        raise CheckError(f"frame {i}: ethertype {fr[12:14].hex()}, expected 0800")
    if fr[14] >> 4 != 4:
        raise CheckError(f"frame {i}: IP version {fr[14] >> 4}")
    ihl = (fr[14] & 0xF) * 4
    if ihl < 20 or 14 + ihl > len(fr):
        raise CheckError(f"frame {i}: bad IHL {ihl}")
    if not ipv4_checksum_ok(fr[14 : 14 + ihl]):
        raise CheckError(f"frame {i}: bad IPv4 header checksum")
    if fr[23] != 17:
        raise CheckError(f"frame {i}: IP protocol {fr[23]}, expected 17 (UDP)")


def seq_of(fr):
    return struct.unpack(">I", fr[SEQ_OFF : SEQ_OFF + 4])[0]


def masked(fr):
    """The frame without its sequence number and the byte the forwarder touches."""
    return fr[:TOUCHED] + fr[TOUCHED + 1 : SEQ_OFF]


def check_forwarded(i, fr, ref):
    """Frame i must be the sent frame ref with byte TOUCHED incremented by the forwarder."""
    want = bytearray(ref)
    want[TOUCHED] = (want[TOUCHED] + 1) & 0xFF
    if bytes(want) != fr:
        raise CheckError(
            f"frame {i}: expected sent frame with byte {TOUCHED} incremented: "
            f"got {fr.hex()}, want {bytes(want).hex()}"
        )


def cmd_forward(args):
    frames = read_pcap(args.file)
    if args.first_run and frames and len(frames[0]) >= FRAME_LEN:
        start = seq_of(frames[0])
        for i in range(1, len(frames)):
            if len(frames[i]) >= FRAME_LEN and seq_of(frames[i]) <= start:
                frames = frames[:i]
                break
    if len(frames) < args.min:
        raise CheckError(f"{len(frames)} frames captured, expected at least {args.min}")
    first = frames[0]
    prev = None
    for i, fr in enumerate(frames):
        check_frame(i, fr)
        if masked(fr) != masked(first):
            raise CheckError(
                f"frame {i}: content differs from frame 0 outside seq/byte {TOUCHED}: "
                f"{fr.hex()} vs {first.hex()}"
            )
        s = seq_of(fr)
        if prev is not None and s <= prev:
            raise CheckError(f"frame {i}: sequence number {s} not above previous {prev}")
        prev = s
    matched = 0
    if args.ref:
        sent = {}
        for fr in read_pcap(args.ref):
            if len(fr) == FRAME_LEN:
                sent.setdefault(seq_of(fr), fr)
        for i, fr in enumerate(frames):
            ref = sent.get(seq_of(fr))
            if ref is None:
                raise CheckError(f"frame {i}: sequence number {seq_of(fr)} was never sent")
            check_forwarded(i, fr, ref)
            matched += 1
    gaps = seq_of(frames[-1]) - seq_of(frames[0]) + 1 - len(frames)
    print(
        f"ok: {len(frames)} frames, seq {seq_of(frames[0])}..{seq_of(frames[-1])} "
        f"({gaps} missing), {matched} matched against sent frames"
    )


def flow_of(fr):
    """The frame's flow: IPv4 source/destination and UDP source/destination port."""
    return fr[26:38]


def flow_name(flow):
    src, dst = ".".join(map(str, flow[0:4])), ".".join(map(str, flow[4:8]))
    sport, dport = struct.unpack(">HH", flow[8:12])
    return f"{src}:{sport}>{dst}:{dport}"


def cmd_flows(args):
    mac = parse_mac(args.dst) if args.dst else None
    frames = [fr for fr in read_pcap(args.file) if mac is None or fr[:6] == mac]
    sent = {}
    for fr in read_pcap(args.ref):
        if len(fr) == FRAME_LEN and (mac is None or fr[:6] == mac):
            sent.setdefault((flow_of(fr), seq_of(fr)), fr)
    if len(frames) < args.min:
        raise CheckError(f"{len(frames)} frames captured, expected at least {args.min}")
    last = {}  # flow -> (sequence number, frame index) of its latest frame
    done = set()  # (flow, sequence number) of the frames checked so far
    for i, fr in enumerate(frames):
        check_frame(i, fr)
        flow, s = flow_of(fr), seq_of(fr)
        if (flow, s) in done:
            raise CheckError(f"frame {i}: flow {flow_name(flow)} sequence number {s} forwarded twice")
        ref = sent.pop((flow, s), None)
        if ref is None:
            raise CheckError(f"frame {i}: flow {flow_name(flow)} sequence number {s} was never sent")
        done.add((flow, s))
        check_forwarded(i, fr, ref)
        if flow in last and s <= last[flow][0]:
            raise CheckError(
                f"frame {i}: flow {flow_name(flow)} sequence number {s} after {last[flow][0]} "
                f"(frame {last[flow][1]})"
            )
        last[flow] = (s, i)
    counts = {}
    for fr in frames:
        counts[flow_of(fr)] = counts.get(flow_of(fr), 0) + 1
    if len(counts) < args.min_flows:
        raise CheckError(f"{len(counts)} flows forwarded, expected at least {args.min_flows}")
    per_flow = ", ".join(f"{flow_name(f)} {n}" for f, n in sorted(counts.items()))
    print(
        f"ok: {len(frames)} frames in {len(counts)} flows, each sent once and in order "
        f"within its flow ({len(sent)} sent frames not forwarded): {per_flow}"
    )


def parse_mac(s):
    parts = s.split(":")
    if len(parts) != 6:
        raise CheckError(f"bad MAC {s}")
    return bytes(int(p, 16) for p in parts)


def cmd_dst(args):
    frames = read_pcap(args.file)
    mac = parse_mac(args.mac)
    if len(frames) < args.min:
        raise CheckError(f"{len(frames)} frames captured, expected at least {args.min}")
    for i, fr in enumerate(frames):
        if fr[:6] != mac:
            raise CheckError(f"frame {i}: destination {fr[:6].hex(':')}, expected {args.mac}")
    print(f"ok: {len(frames)} frames, all to {args.mac}")


def cmd_count(args):
    print(len(read_pcap(args.file)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("forward")
    f.add_argument("file")
    f.add_argument("--ref")
    f.add_argument("--min", type=int, default=10000)
    f.add_argument("--first-run", action="store_true")
    f.set_defaults(func=cmd_forward)
    fl = sub.add_parser("flows")
    fl.add_argument("file")
    fl.add_argument("--ref", required=True)
    fl.add_argument("--dst")
    fl.add_argument("--min", type=int, default=10000)
    fl.add_argument("--min-flows", type=int, default=2)
    fl.set_defaults(func=cmd_flows)
    d = sub.add_parser("dst")
    d.add_argument("file")
    d.add_argument("--mac", required=True)
    d.add_argument("--min", type=int, default=1)
    d.set_defaults(func=cmd_dst)
    c = sub.add_parser("count")
    c.add_argument("file")
    c.set_defaults(func=cmd_count)
    args = p.parse_args()
    try:
        args.func(args)
    except CheckError as e:
        print(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
