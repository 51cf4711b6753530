//! Receive side scaling on ixgbe against the 82599 model: the model's Toeplitz hash
//! against the published known answers, the driver's RSS setup (MRQC, RSSRK, RETA)
//! spreading flows over its queues, and the per-queue and error statistics.

mod common;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ixy::ixgbe::{IxgbeDevice, IxgbeOptions};
use ixy::model::{Model, Port, PortRegisters, toeplitz_hash};
use ixy::{IxyDevice, Packet};

type Dev = IxgbeDevice<PortRegisters>;

/// The default key of the RSS verification suite: Microsoft, "Verifying the RSS Hash
/// Calculation" (learn.microsoft.com, windows-hardware/drivers/network), reproduced in
/// the 82599 datasheet 7.1.2.8.3 and in DPDK `app/test/test_thash.c`.
const KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// One row of the table: destination address and port, source address and port, the hash
/// of the addresses ("IPv4"/"IPv6"), the hash with the ports ("... with TCP").
type Row<A> = (A, u16, A, u16, u32, u32);

/// The IPv4 rows.
const IPV4: [Row<[u8; 4]>; 5] = [
    (
        [161, 142, 100, 80],
        1766,
        [66, 9, 149, 187],
        2794,
        0x323e8fc2,
        0x51ccc178,
    ),
    (
        [65, 69, 140, 83],
        4739,
        [199, 92, 111, 2],
        14230,
        0xd718262a,
        0xc626b0ea,
    ),
    (
        [12, 22, 207, 184],
        38024,
        [24, 19, 198, 95],
        12898,
        0xd2d0a5de,
        0x5c2b394a,
    ),
    (
        [209, 142, 163, 6],
        2217,
        [38, 27, 205, 30],
        48228,
        0x82989176,
        0xafc7327f,
    ),
    (
        [202, 188, 127, 2],
        1303,
        [153, 39, 163, 191],
        44251,
        0x5d1809c5,
        0x10e828a2,
    ),
];

/// The IPv6 rows: 3ffe:2501:200:3::1 <- 3ffe:2501:200:1fff::7,
/// ff02::1 <- 3ffe:501:8::260:97ff:fe40:efab,
/// fe80::200:f8ff:fe21:67cf <- 3ffe:1900:4545:3:200:f8ff:fe21:67cf.
const IPV6: [Row<[u8; 16]>; 3] = [
    (
        [
            0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x01,
        ],
        1766,
        [
            0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x07,
        ],
        2794,
        0x2cc18cd5,
        0x40207d3d,
    ),
    (
        [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
        4739,
        [
            0x3f, 0xfe, 0x05, 0x01, 0x00, 0x08, 0, 0, 0x02, 0x60, 0x97, 0xff, 0xfe, 0x40, 0xef,
            0xab,
        ],
        14230,
        0x0f0c461c,
        0xdde51bbf,
    ),
    (
        [
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0xf8, 0xff, 0xfe, 0x21, 0x67, 0xcf,
        ],
        38024,
        [
            0x3f, 0xfe, 0x19, 0x00, 0x45, 0x45, 0x00, 0x03, 0x02, 0x00, 0xf8, 0xff, 0xfe, 0x21,
            0x67, 0xcf,
        ],
        44251,
        0x4b61e985,
        0x02d1feef,
    ),
];

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// A broadcast IPv4 frame of `len` bytes carrying `proto` (ports first, as TCP and UDP
/// have them) from `src`:`sport` to `dst`:`dport`.
fn ipv4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, proto: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

/// The same for IPv6 (no extension headers).
fn ipv6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16, proto: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 20];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14] = 0x60;
    f[18..20].copy_from_slice(&20u16.to_be_bytes());
    f[20] = proto;
    f[21] = 64;
    f[22..38].copy_from_slice(&src);
    f[38..54].copy_from_slice(&dst);
    f[54..56].copy_from_slice(&sport.to_be_bytes());
    f[56..58].copy_from_slice(&dport.to_be_bytes());
    f
}

fn open(model: &Model, port: &Port, rx_queues: u16) -> Dev {
    let options = IxgbeOptions::default()
        .queues(rx_queues, 1)
        .link_timeout(Duration::from_secs(2));
    model
        .ixgbe(port, &options)
        .expect("ixgbe init against the model")
}

#[test]
fn toeplitz_hash_gives_the_verification_suites_answers() {
    for (dst, dport, src, sport, l3, l4) in IPV4 {
        let input = [&src[..], &dst, &sport.to_be_bytes(), &dport.to_be_bytes()].concat();
        assert_eq!(toeplitz_hash(&KEY, &input[..8]), l3, "{src:?} -> {dst:?}");
        assert_eq!(
            toeplitz_hash(&KEY, &input),
            l4,
            "{src:?}:{sport} -> {dst:?}:{dport}"
        );
    }
    for (dst, dport, src, sport, l3, l4) in IPV6 {
        let input = [&src[..], &dst, &sport.to_be_bytes(), &dport.to_be_bytes()].concat();
        assert_eq!(
            toeplitz_hash(&KEY, &input[..32]),
            l3,
            "{src:x?} -> {dst:x?}"
        );
        assert_eq!(
            toeplitz_hash(&KEY, &input),
            l4,
            "{src:x?} -> {dst:x?} with ports"
        );
    }
}

#[test]
fn the_port_hashes_frames_as_the_suite_says_once_the_driver_set_up_rss() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let (src, sport, dst, dport) = ([66, 9, 149, 187], 2794, [161, 142, 100, 80], 1766);
    let tcp = ipv4(src, sport, dst, dport, TCP, 60);
    assert_eq!(model.rss_hash(&port, &tcp), None, "RSS off after reset");
    let _dev = open(&model, &port, 4);
    for (dst, dport, src, sport, l3, l4) in IPV4 {
        // TCP and UDP hash addresses and ports; other protocols the addresses.
        for (proto, want) in [(TCP, l4), (UDP, l4), (ICMP, l3)] {
            let f = ipv4(src, sport, dst, dport, proto, 60);
            assert_eq!(
                model.rss_hash(&port, &f),
                Some(want),
                "{src:?} proto {proto}"
            );
            // The redirection table: entry hash[6:0], filled with queue i mod 4.
            assert_eq!(model.rx_queue_of(&port, &f), (want & 0x7f) as usize % 4);
        }
        // A fragment (MF set) carries no ports: addresses only.
        let mut fragment = ipv4(src, sport, dst, dport, TCP, 60);
        fragment[20] = 0x20;
        assert_eq!(model.rss_hash(&port, &fragment), Some(l3));
    }
    for (dst, dport, src, sport, l3, l4) in IPV6 {
        for (proto, want) in [(TCP, l4), (UDP, l4), (ICMP, l3)] {
            let f = ipv6(src, sport, dst, dport, proto);
            assert_eq!(
                model.rss_hash(&port, &f),
                Some(want),
                "{src:x?} proto {proto}"
            );
        }
    }
    // Not IP: no hash, queue 0.
    let mut other = tcp.clone();
    other[12..14].copy_from_slice(&[0x88, 0xb5]);
    assert_eq!(model.rss_hash(&port, &other), None);
    assert_eq!(model.rx_queue_of(&port, &other), 0);
}

/// Sends `frames` into `port` and takes everything off the driver's queues: the frames
/// each queue received (by their UDP source port and sequence number).
fn receive_all(model: &Model, port: &Port, dev: &mut Dev, frames: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    let mut per_queue = vec![Vec::new(); dev.num_rx_queues() as usize];
    let mut buf = VecDeque::new();
    for chunk in frames.chunks(64) {
        for f in chunk {
            assert!(model.inject(port, f), "delivered");
        }
        for (q, got) in per_queue.iter_mut().enumerate() {
            dev.rx_batch(q as u16, &mut buf, 256);
            got.extend(buf.drain(..).map(|p: Packet| p.to_vec()));
        }
    }
    per_queue
}

#[test]
fn rss_spreads_flows_over_the_queues_and_keeps_each_flow_on_one() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, 4);
    // 64 flows (UDP and TCP, varying source ports and addresses), 8 frames each,
    // interleaved.
    let flow = |i: u16, seq: u16| {
        let proto = if i.is_multiple_of(2) { UDP } else { TCP };
        let mut f = ipv4(
            [10, 0, (i / 16) as u8, 1],
            1000 + i,
            [10, 1, 0, 2],
            80,
            proto,
            64,
        );
        f[50..52].copy_from_slice(&seq.to_be_bytes());
        f
    };
    let frames: Vec<_> = (0..8)
        .flat_map(|s| (0..64).map(move |i| flow(i, s)))
        .collect();
    let per_queue = receive_all(&model, &port, &mut dev, &frames);
    let mut queue_of_flow = HashMap::new();
    for (q, got) in per_queue.iter().enumerate() {
        assert!(got.len() >= 32, "queue {q} got {} of 512 frames", got.len());
        for f in got {
            let flow = (f[26..30].to_vec(), u16::from_be_bytes([f[34], f[35]]));
            let first = *queue_of_flow.entry(flow.clone()).or_insert(q);
            assert_eq!(first, q, "flow {flow:?} on queues {first} and {q}");
        }
    }
    assert_eq!(queue_of_flow.len(), 64, "every flow arrived");
    let counts: Vec<usize> = per_queue.iter().map(Vec::len).collect();
    assert_eq!(
        counts.iter().sum::<usize>(),
        512,
        "all frames accounted for"
    );
    // Per-queue statistics (QPRC/QBRC through RQSMR) agree, and so do the named ones.
    let stats = dev.stats();
    for (q, s) in stats.rx_queues.iter().enumerate() {
        assert_eq!(s.packets, counts[q] as u64, "queue {q}");
        assert_eq!(s.bytes, 64 * counts[q] as u64, "queue {q}");
    }
    assert_eq!(stats.rx_packets, 512);
    let xstats: HashMap<String, u64> = dev.xstats().into_iter().collect();
    assert_eq!(xstats["rx_good_packets"], 512);
    assert_eq!(xstats["rx_q3_packets"], counts[3] as u64);
    assert_eq!(xstats["rx_q3_bytes"], 64 * counts[3] as u64);
    assert_eq!(xstats["tx_q0_packets"], 0);
    assert!(!xstats.contains_key("rx_q4_packets"));
}

#[test]
fn one_rx_queue_leaves_rss_off_and_seventeen_are_refused() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let _dev = open(&model, &port, 1);
    let f = ipv4([10, 0, 0, 1], 1000, [10, 0, 0, 2], 80, UDP, 60);
    assert_eq!(model.rss_hash(&port, &f), None, "MRQC stays 0");
    drop(_dev);
    let options = IxgbeOptions::default().queues(17, 1);
    let err = model.ixgbe(&port, &options).err().expect("17 rx queues");
    assert!(matches!(err, ixy::Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("at most 16"), "{err}");
}

#[test]
fn drops_errors_and_empty_pools_are_counted() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut options = IxgbeOptions::default().link_timeout(Duration::from_secs(2));
    options.rx_ring_size = 64;
    options.pool_entries = 65; // one buffer besides the ring's
    let mut dev = model.ixgbe(&port, &options).unwrap();
    let small = ipv4([10, 0, 0, 1], 1000, [10, 0, 0, 2], 80, UDP, 60);
    // Oversize (1519 bytes + CRC > 1518): ROC, an rx error.
    assert!(!model.inject(&port, &vec![0xff; 1519]));
    // 63 descriptors on the ring: 63 frames fit, 2 more are missed (QPRDC, DROP_EN).
    for _ in 0..65 {
        model.inject(&port, &small);
    }
    // Keep every packet: the pool (64 buffers, 63 on the ring) runs dry.
    let mut held = VecDeque::new();
    while dev.rx_batch(0, &mut held, 32) > 0 {}
    assert_eq!(held.len(), 1, "one spare buffer: one frame taken");
    // Frames wait on the ring; a poll that finds one but no free buffer is counted.
    assert_eq!(dev.rx_batch(0, &mut held, 32), 0);
    let s = dev.stats();
    assert_eq!((s.rx_errors, s.rx_dropped, s.rx_packets), (1, 2, 63));
    assert_eq!(
        s.rx_nombuf, 2,
        "the poll that ended the loop, and the one after"
    );
    let xstats: HashMap<String, u64> = dev.xstats().into_iter().collect();
    assert_eq!(xstats["rx_errors"], 1);
    assert_eq!(xstats["rx_missed_errors"], 2);
    assert_eq!(xstats["rx_mbuf_allocation_errors"], 2);
    // Buffers back: the frames come off the ring, one per free buffer.
    let mut rest = 0;
    for _ in 0..100 {
        held.clear();
        rest += dev.rx_batch(0, &mut held, 32);
    }
    assert_eq!(rest, 62);
}

#[test]
fn transmit_queues_beyond_16_share_the_last_per_queue_counter() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let options = IxgbeOptions::default()
        .queues(1, 18)
        .link_timeout(Duration::from_secs(2));
    let mut dev = model.ixgbe(&port, &options).unwrap();
    let pool = ixy::Mempool::new(&model.dma(), 64, 2048).unwrap();
    let frame = ipv4([10, 0, 0, 1], 1000, [10, 0, 0, 2], 80, UDP, 60);
    for q in [0, 15, 16, 17] {
        let mut out: VecDeque<Packet> = VecDeque::new();
        let mut p = pool.alloc(frame.len()).unwrap();
        p.copy_from_slice(&frame);
        out.push_back(p);
        assert_eq!(dev.tx_batch(q, &mut out), 1, "queue {q}");
    }
    let s = dev.stats();
    assert_eq!(s.tx_queues.len(), 16, "the 82599 has 16 per-queue counters");
    let packets: Vec<u64> = s.tx_queues.iter().map(|q| q.packets).collect();
    let mut want = vec![0; 16];
    (want[0], want[15]) = (1, 3);
    assert_eq!(packets, want, "queues 15, 16 and 17 count in counter 15");
    assert_eq!(s.tx_packets, 4);
}
