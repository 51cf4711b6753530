//! Code for the Intel drivers: ixgbe and igb (physical functions), ixgbevf and igbvf
//! (virtual functions).
//!
//! * [`ring`] — the advanced receive and transmit descriptor rings (82599 datasheet 7.1.6
//!   and 7.2.3.2.4), used by every Intel driver. PFs and VFs use the same descriptor
//!   formats; only the register offsets of a queue differ, and the rings take those as
//!   parameters.
//! * [`queue`] — pointing a queue at a ring and enabling it, given the queue's register
//!   offsets; used by all four drivers.
//! * [`shell`] — the device every driver is, [`IntelDevice`](shell::IntelDevice): the
//!   shell (registers, rings, interrupts, counters, PCI device) with the driver's own
//!   state; its open sequence and the `IxyDevice` implementation; each driver adds its
//!   init, link, MAC, promiscuous mode, counters and close.
//! * [`vf`] — what the VF drivers share besides: the assigned MAC, rolling counters and
//!   recovery from PF resets.
//! * [`regs`] — the registers with the same offset and meaning on the 82599 and 82576.
//! * [`mailbox`] — the PF/VF mailbox, VF side (82599 datasheet 7.10.2, SR-IOV support;
//!   the 82576's has the same protocol at other offsets), used by ixgbevf and igbvf.
//! * [`irq`] — the MSI-X receive-interrupt path of ixgbe and igb.

pub(crate) mod irq;
pub(crate) mod mailbox;
pub(crate) mod queue;
pub mod regs;
pub(crate) mod ring;
pub(crate) mod shell;
pub(crate) mod vf;

use crate::registers::RegisterSpace;

/// The RSS key: the 40-byte default key of the Microsoft RSS specification (6d 5a 56 da
/// 25 5b ...), which the 82599 datasheet's verification suite (7.1.2.8.3) and DPDK's ixgbe
/// also use, as RSSRK(0..9) values (first key byte in the low byte, 8.2.3.7.14; the
/// 82576's RSSRK has the same layout). Used by ixgbe and igb.
#[rustfmt::skip]
pub(crate) const RSS_KEY: [u32; 10] = [
    0xda56_5a6d, 0xc20e_5b25, 0x3d25_6741, 0xb08f_a343, 0xcb2b_cad0, 0xb430_7bae, 0xa32d_cb77,
    0x0cf2_3080, 0x3bb7_426a, 0xfa01_acbe,
];

// RSS registers, the same on the 82599 (datasheet 7.1.2.8, registers 8.2.3.7.12-14) and
// the 82576 (7.1.2, registers 8.10; Linux `e1000_regs.h`, QEMU `hw/net/igb_regs.h`); only
// MRQC.MRQE differs, which each driver's register file names.
/// Multiple Receive Queues Command.
pub(crate) const MRQC: usize = 0x05818;
/// MRQC hash field enables: IPv4 with TCP (bit 16), IPv4 (17), IPv6 (20), IPv6 with TCP
/// (21), IPv4 with UDP (22), IPv6 with UDP (23) (Linux `IXGBE_MRQC_RSS_FIELD_*`,
/// `E1000_MRQC_RSS_FIELD_*`).
pub(crate) const MRQC_RSS_FIELDS: u32 = 1 << 16 | 1 << 17 | 1 << 20 | 1 << 21 | 1 << 22 | 1 << 23;
/// Redirection Table registers: 32, four 8-bit entries each (128 entries, indexed by the
/// hash's low 7 bits), the queue index in an entry's low bits (82599: bits 3:0; 82576
/// without VFs: Linux `igb_write_rss_indir_tbl` shift 0, QEMU `E1000_RSS_QUEUE` bits 3:0).
pub(crate) const RETA_REGS: usize = 32;
/// Redirection Table register `n`.
pub(crate) const fn reta(n: usize) -> usize {
    0x05c00 + 4 * n
}
/// RSS Random Key register `n` (0-9): key bytes 4n to 4n + 3, first byte lowest.
pub(crate) const fn rssrk(n: usize) -> usize {
    0x05c80 + 4 * n
}

/// Turns RSS on over `queues` receive queues (at least 2): the key ([`RSS_KEY`]), the
/// redirection table (entry i to queue i mod `queues`), then MRQC with `mrqe` (the
/// device's "RSS only" mode) and the IPv4/IPv6 TCP/UDP hash fields.
pub(crate) fn program_rss(r: &impl RegisterSpace, queues: usize, mrqe: u32) {
    for (n, &key) in RSS_KEY.iter().enumerate() {
        r.write32(rssrk(n), key);
    }
    for n in 0..RETA_REGS {
        r.write32(reta(n), byte_fields(n, |i| i % queues));
    }
    r.write32(MRQC, mrqe | MRQC_RSS_FIELDS);
}

/// Register `n` of a table of four 8-bit fields per register (RETA, RQSMR, TQSM): field
/// `i` (bits 8i + 7:8i) holds `entry(4n + i)`.
pub(crate) fn byte_fields(n: usize, entry: impl Fn(usize) -> usize) -> u32 {
    (0..4).fold(0, |r, i| r | (entry(4 * n + i) as u32) << (8 * i))
}

/// What a rolling hardware counter `bits` wide counted from reading `last` to `now`
/// (modulo 2^`bits`); `now` becomes the last reading.
pub(crate) fn advance(last: &mut u64, now: u64, bits: u32) -> u64 {
    let delta = now.wrapping_sub(*last) & ((1u64 << bits) - 1);
    *last = now;
    delta
}

/// A random unicast, locally administered MAC address (bit 0 of the first byte clear,
/// bit 1 set), from std's hasher keys, random per process and different for every
/// `RandomState` (no extra dependency; this needs uniqueness, not secrecy).
pub(crate) fn random_local_mac() -> [u8; 6] {
    use std::hash::{BuildHasher, Hasher};
    let h = std::collections::hash_map::RandomState::new().build_hasher();
    let b = h.finish().to_le_bytes();
    [(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// The station address in receive address registers RAL/RAH (82599 datasheet 8.2.3.7.8-9,
/// 82576 datasheet 8.9: the first four bytes in RAL, the last two in RAH's low half).
pub(crate) fn read_mac<R: RegisterSpace>(regs: &R, ral: usize, rah: usize) -> [u8; 6] {
    let [a, b, c, d] = regs.read32(ral).to_le_bytes();
    let [e, f, ..] = regs.read32(rah).to_le_bytes();
    [a, b, c, d, e, f]
}

/// Writes `mac` into RAL/RAH, marked valid (RAH.AV, bit 31 on both devices).
pub(crate) fn write_mac<R: RegisterSpace>(regs: &R, ral: usize, rah: usize, mac: [u8; 6]) {
    regs.write32(ral, u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]));
    regs.write32(rah, u32::from_le_bytes([mac[4], mac[5], 0, 0]) | 1 << 31);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_counters_wrap_at_their_width() {
        let mut last = 0xffff_fff0;
        assert_eq!(advance(&mut last, 0x10, 32), 0x20);
        assert_eq!(last, 0x10);
        let mut last = 0xf_ffff_ff00;
        assert_eq!(advance(&mut last, 0x100, 36), 0x200);
    }
}
