//! Receive queue selection of a modelled 82599 port: RSS (datasheet §7.1.2.8), with the
//! registers of §8.2.3.7: MRQC (multiple receive queues command), RSSRK (the 40-byte
//! key) and RETA (the 128-entry redirection table).
//!
//! With MRQC.MRQE = 0000b (the reset value) every frame goes to queue 0. With MRQE = 0001b
//! (RSS, no DCB, no virtualisation) the port computes the Toeplitz hash of the fields the
//! MRQC field enables select, and the frame goes to the queue in RETA entry `hash[6:0]`
//! (4-bit entries on the 82599: at most 16 RSS queues). A frame of no enabled type (not
//! IPv4/IPv6, a VLAN tag, a disabled type) has no hash and goes to RSS output index 0,
//! queue 0. Parsed here: IPv4 (with options; fragments hash their addresses only) and IPv6
//! whose next header is TCP or UDP (extension headers, and so the "IPv6 Ex" fields, are
//! not modelled: such frames hash their addresses). Other MRQE modes (DCB, VMDq) are not
//! modelled: a frame arriving with one of them set fails the test.

use super::regs::*;

/// MRQC.MRQE (bits 3:0).
const MRQE_MASK: u32 = 0xF;
/// MRQE = 0001b: RSS only.
const MRQE_RSS: u32 = 0x1;
/// MRQC field enables (§8.2.3.7.12; Linux `IXGBE_MRQC_RSS_FIELD_*`).
const FIELD_IPV4_TCP: u32 = 1 << 16;
const FIELD_IPV4: u32 = 1 << 17;
const FIELD_IPV6: u32 = 1 << 20;
const FIELD_IPV6_TCP: u32 = 1 << 21;
const FIELD_IPV4_UDP: u32 = 1 << 22;
const FIELD_IPV6_UDP: u32 = 1 << 23;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xDD];
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const ETH_HLEN: usize = 14;

/// The Toeplitz hash of `input` under `key` (§7.1.2.8.1; the Microsoft RSS
/// specification): for each input bit that is set, the 32 key bits starting at that bit
/// position are XORed into the result. `input` may be at most `key.len() - 4` bytes.
pub fn toeplitz_hash(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    // The 32-bit window of the key at the current bit, and the key bits still to come.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = window << 1 | u32::from(next >> (7 - bit) & 1);
        }
    }
    hash
}

/// The RSS hash input of `frame` for the field enables in `mrqc` (§7.1.2.8.1: source
/// address, destination address, then source and destination port for TCP/UDP), as
/// (bytes, length); `None` if the frame is of no enabled type.
fn hash_input(frame: &[u8], mrqc: u32) -> Option<([u8; 36], usize)> {
    let mut input = [0u8; 36];
    let (addrs, proto, l4, l4_fields, l3_field) = match frame.get(12..14)? {
        t if t == ETHERTYPE_IPV4 => {
            let ip = frame.get(ETH_HLEN..)?;
            let ihl = usize::from(ip.first()? & 0xF) * 4;
            if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
                return None;
            }
            // A fragment (MF set or a fragment offset) carries no ports to hash.
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3FFF != 0;
            let proto = if fragment { 0 } else { ip[9] };
            (
                &ip[12..20],
                proto,
                &ip[ihl..],
                [FIELD_IPV4_TCP, FIELD_IPV4_UDP],
                FIELD_IPV4,
            )
        }
        t if t == ETHERTYPE_IPV6 => {
            let ip = frame.get(ETH_HLEN..ETH_HLEN + 40)?;
            if ip[0] >> 4 != 6 {
                return None;
            }
            let l4 = &frame[ETH_HLEN + 40..];
            (
                &ip[8..40],
                ip[6],
                l4,
                [FIELD_IPV6_TCP, FIELD_IPV6_UDP],
                FIELD_IPV6,
            )
        }
        _ => return None,
    };
    input[..addrs.len()].copy_from_slice(addrs);
    let l4_enabled = match proto {
        PROTO_TCP => mrqc & l4_fields[0] != 0,
        PROTO_UDP => mrqc & l4_fields[1] != 0,
        _ => false,
    };
    if l4_enabled && let Some(ports) = l4.get(..4) {
        input[addrs.len()..addrs.len() + 4].copy_from_slice(ports);
        return Some((input, addrs.len() + 4));
    }
    (mrqc & l3_field != 0).then_some((input, addrs.len()))
}

/// The port's RSS key from RSSRK(0..9): byte `4n + i` of the key in bits `8i + 7:8i` of
/// RSSRK(n) (§8.2.3.7.14).
fn key(regs: &[u32]) -> [u8; 40] {
    let mut key = [0u8; 40];
    for (n, chunk) in key.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&regs[RSSRK / 4 + n].to_le_bytes());
    }
    key
}

/// The RSS hash of `frame` under the port registers `regs` (BAR0 as words), if RSS is on
/// (MRQE = RSS) and the frame is of an enabled type.
pub(crate) fn hash(regs: &[u32], frame: &[u8]) -> Option<u32> {
    let mrqc = regs[MRQC / 4];
    if mrqc & MRQE_MASK != MRQE_RSS {
        return None;
    }
    let (input, len) = hash_input(frame, mrqc)?;
    Some(toeplitz_hash(&key(regs), &input[..len]))
}

/// The receive queue of `frame` (§7.1.2: queue 0 without RSS; RETA entry `hash[6:0]`
/// with RSS); `Err(mrqe)` for an MRQE mode the model does not implement.
pub(crate) fn queue(regs: &[u32], frame: &[u8]) -> Result<usize, u32> {
    let mrqe = regs[MRQC / 4] & MRQE_MASK;
    match mrqe {
        0 => Ok(0),
        MRQE_RSS => Ok(hash(regs, frame).map_or(0, |h| {
            let entry = (h & 0x7F) as usize;
            let reta = regs[RETA / 4 + entry / 4];
            (reta >> (8 * (entry % 4)) & RETA_ENTRY_MASK) as usize
        })),
        other => Err(other),
    }
}
