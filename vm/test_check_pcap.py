#!/usr/bin/env python3
"""Self-test of check_pcap.py on synthetic captures (no VM needed)."""

import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "check_pcap.py")


def ip_checksum(h):
    s = sum((h[i] << 8) | h[i + 1] for i in range(0, len(h), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(seq, dst=b"\x10" * 6, touched=0, sport=42):
    p = bytearray(60)
    p[0:6] = dst
    p[6:12] = bytes.fromhex("52540000000a")
    p[12:14] = b"\x08\x00"
    p[14] = 0x45
    p[16:18] = (46).to_bytes(2, "big")
    p[22] = 64
    p[23] = 17
    p[26:30] = bytes([10, 0, 0, 1])
    p[30:34] = bytes([10, 0, 0, 2])
    p[24:26] = ip_checksum(p[14:34]).to_bytes(2, "big")
    p[34:36] = sport.to_bytes(2, "big")
    p[36:38] = (1337).to_bytes(2, "big")
    p[42:45] = b"ixy"
    for i in range(45, 56):
        p[i] = i - 45
    p[48] = (p[48] + touched) & 0xFF
    p[56:60] = seq.to_bytes(4, "big")
    return bytes(p)


def write_pcap(path, frames, big_endian=False):
    e = ">" if big_endian else "<"
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for fr in frames:
            f.write(struct.pack(e + "IIII", 0, 0, len(fr), len(fr)) + fr)


class CheckPcapTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.sent = os.path.join(self.dir.name, "sent.pcap")
        write_pcap(self.sent, [frame(s) for s in range(100, 20100)])

    def tearDown(self):
        self.dir.cleanup()

    def run_checker(self, *args):
        r = subprocess.run([sys.executable, CHECKER, *args], capture_output=True, text=True)
        return r.returncode, r.stdout.strip()

    def forward(self, frames, big_endian=False, minimum="10000"):
        path = os.path.join(self.dir.name, "out.pcap")
        write_pcap(path, frames, big_endian)
        return self.run_checker("forward", path, "--ref", self.sent, "--min", minimum)

    def test_forwarded_frames_with_gaps_pass(self):
        rc, out = self.forward([frame(s, touched=1) for s in range(100, 20100) if s % 3])
        self.assertEqual(rc, 0, out)
        # 6666 multiples of 3 in 100..20099 dropped: 13334 kept, each matched to its sent frame.
        self.assertEqual(
            out, "ok: 13334 frames, seq 100..20099 (6666 missing), 13334 matched against sent frames"
        )

    def test_big_endian_capture_passes(self):
        rc, out = self.forward([frame(s, touched=1) for s in range(100, 20100)], big_endian=True)
        self.assertEqual(rc, 0, out)
        self.assertEqual(
            out, "ok: 20000 frames, seq 100..20099 (0 missing), 20000 matched against sent frames"
        )

    def test_too_few_frames_fail(self):
        rc, out = self.forward([frame(s, touched=1) for s in range(100, 9000)])
        self.assertEqual(rc, 1)
        self.assertIn("expected at least 10000", out)

    def test_reordered_frames_fail(self):
        frames = [frame(s, touched=1) for s in range(100, 20100)]
        frames[10], frames[11] = frames[11], frames[10]
        rc, out = self.forward(frames)
        self.assertEqual(rc, 1)
        self.assertIn("not above previous", out)

    def test_duplicated_frame_fails(self):
        frames = [frame(s, touched=1) for s in range(100, 20100)]
        frames.insert(50, frames[49])
        rc, out = self.forward(frames)
        self.assertEqual(rc, 1)
        self.assertIn("not above previous", out)

    def test_untouched_byte_fails(self):
        rc, out = self.forward([frame(s) for s in range(100, 20100)])
        self.assertEqual(rc, 1)
        self.assertIn("byte 48 incremented", out)

    def test_corrupted_payload_fails(self):
        frames = [frame(s, touched=1) for s in range(100, 20100)]
        bad = bytearray(frames[500])
        bad[50] ^= 1
        frames[500] = bytes(bad)
        rc, out = self.forward(frames)
        self.assertEqual(rc, 1)
        self.assertIn("frame 500", out)

    def test_bad_ip_checksum_fails(self):
        frames = [frame(s, touched=1) for s in range(100, 20100)]
        bad = bytearray(frames[0])
        bad[24] ^= 0xFF
        frames[0] = bytes(bad)
        rc, out = self.forward(frames)
        self.assertEqual(rc, 1)
        self.assertIn("checksum", out)

    def test_short_frame_fails(self):
        frames = [frame(s, touched=1) for s in range(100, 20100)]
        frames[7] = frames[7][:59]
        rc, out = self.forward(frames)
        self.assertEqual(rc, 1)
        self.assertIn("length 59", out)

    def test_unsent_sequence_number_fails(self):
        frames = [frame(s, touched=1) for s in range(100, 20100)]
        frames.append(frame(30000, touched=1))
        rc, out = self.forward(frames)
        self.assertEqual(rc, 1)
        self.assertIn("never sent", out)

    def test_first_run_ends_at_a_restart(self):
        path = os.path.join(self.dir.name, "two.pcap")
        frames = [frame(s, touched=1) for s in range(100, 20100)]
        frames += [frame(s, touched=1) for s in range(100, 3100)]
        write_pcap(path, frames)
        self.assertEqual(self.run_checker("forward", path, "--ref", self.sent)[0], 1)
        rc, out = self.run_checker("forward", path, "--ref", self.sent, "--first-run")
        self.assertEqual(rc, 0, out)
        self.assertIn("20000 frames", out)

    def test_dst(self):
        path = os.path.join(self.dir.name, "dst.pcap")
        own = bytes.fromhex("52540000000b")
        write_pcap(path, [frame(s, dst=own) for s in range(100)])
        self.assertEqual(
            self.run_checker("dst", path, "--mac", "52:54:00:00:00:0b", "--min", "100"),
            (0, "ok: 100 frames, all to 52:54:00:00:00:0b"),
        )
        self.assertEqual(
            self.run_checker("dst", path, "--mac", "10:10:10:10:10:10"),
            (1, "frame 0: destination 52:54:00:00:00:0b, expected 10:10:10:10:10:10"),
        )
        self.assertEqual(
            self.run_checker("dst", path, "--mac", "52:54:00:00:00:0b", "--min", "101"),
            (1, "100 frames captured, expected at least 101"),
        )

    def flows(self, sent, out, *extra):
        ref, path = os.path.join(self.dir.name, "fsent.pcap"), os.path.join(self.dir.name, "fout.pcap")
        write_pcap(ref, sent)
        write_pcap(path, out)
        return self.run_checker("flows", path, "--ref", ref, "--min", "100", *extra)

    def flow_run(self, n=400, flows=4, dst=b"\x10" * 6, touched=0):
        """A generator run: flow seq % flows (source port 1000 + it), one sequence."""
        return [frame(s, dst=dst, touched=touched, sport=1000 + s % flows) for s in range(n)]

    def test_flows_interleaved_across_flows_pass_with_counts(self):
        sent = self.flow_run()
        # Two queues: flows 0 and 2 forwarded by one thread, 1 and 3 by the other, the
        # second thread's frames all after the first's; seq 8 lost.
        fwd = self.flow_run(touched=1)
        out = [f for f in fwd if f[35] % 2 == 0 and f != fwd[8]] + [f for f in fwd if f[35] % 2]
        rc, msg = self.flows(sent, out)
        self.assertEqual(rc, 0, msg)
        self.assertEqual(
            msg,
            "ok: 399 frames in 4 flows, each sent once and in order within its flow "
            "(1 sent frames not forwarded): 10.0.0.1:1000>10.0.0.2:1337 99, "
            "10.0.0.1:1001>10.0.0.2:1337 100, 10.0.0.1:1002>10.0.0.2:1337 100, "
            "10.0.0.1:1003>10.0.0.2:1337 100",
        )

    def test_flows_out_of_order_within_a_flow_fails(self):
        out = self.flow_run(touched=1)
        out[4], out[8] = out[8], out[4]  # both of flow 1000
        rc, msg = self.flows(self.flow_run(), out)
        self.assertEqual(rc, 1)
        self.assertEqual(msg, "frame 8: flow 10.0.0.1:1000>10.0.0.2:1337 sequence number 4 after 8 (frame 4)")
        # A swap across flows is fine.
        out = self.flow_run(touched=1)
        out[4], out[5] = out[5], out[4]
        self.assertEqual(self.flows(self.flow_run(), out)[0], 0)

    def test_flows_duplicate_unsent_or_untouched_frame_fails(self):
        out = self.flow_run(touched=1)
        rc, msg = self.flows(self.flow_run(), out + [out[7]])
        self.assertEqual(rc, 1)
        self.assertEqual(msg, "frame 400: flow 10.0.0.1:1003>10.0.0.2:1337 sequence number 7 forwarded twice")
        rc, msg = self.flows(self.flow_run(), out + [frame(7, touched=1, sport=1000)])
        self.assertEqual(rc, 1)
        self.assertEqual(msg, "frame 400: flow 10.0.0.1:1000>10.0.0.2:1337 sequence number 7 was never sent")
        rc, msg = self.flows(self.flow_run(), self.flow_run())
        self.assertEqual(rc, 1)
        self.assertIn("frame 0: expected sent frame with byte 48 incremented", msg)

    def test_flows_minimums(self):
        rc, msg = self.flows(self.flow_run(), self.flow_run(touched=1)[:99])
        self.assertEqual((rc, msg), (1, "99 frames captured, expected at least 100"))
        rc, msg = self.flows(self.flow_run(flows=1), self.flow_run(flows=1, touched=1))
        self.assertEqual((rc, msg), (1, "1 flows forwarded, expected at least 2"))

    def test_flows_dst_keeps_only_the_run_under_test(self):
        # An earlier single-flow run to another MAC, with the same sequence numbers, in
        # both captures: without --dst its frames count, and flow 42 looks duplicated.
        own = bytes.fromhex("525400000499")
        other = [frame(s, touched=1) for s in range(400)]
        sent = [frame(s) for s in range(400)] + self.flow_run(dst=own)
        out = other + self.flow_run(dst=own, touched=1) + other[:1]
        self.assertEqual(self.flows(sent, out)[0], 1)
        rc, msg = self.flows(sent, out, "--dst", "52:54:00:00:04:99")
        self.assertEqual(rc, 0, msg)
        self.assertIn("ok: 400 frames in 4 flows", msg)

    def test_empty_and_truncated_files_fail(self):
        path = os.path.join(self.dir.name, "empty.pcap")
        write_pcap(path, [])
        self.assertEqual(self.run_checker("forward", path, "--min", "1")[0], 1)
        with open(path, "ab") as f:
            f.write(struct.pack("<IIII", 0, 0, 60, 60) + b"\0" * 10)
        rc, out = self.run_checker("count", path)
        self.assertEqual(rc, 1)
        self.assertIn("truncated", out)


if __name__ == "__main__":
    unittest.main()
