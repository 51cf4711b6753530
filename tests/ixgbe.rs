//! The ixgbe driver against the behavioural 82599 model (feature `model`): init, packets
//! both ways, ring wrap-around, exhaustion and back-pressure, forwarding, statistics,
//! queues, filtering, link failure, and driver selection by device id.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::{device_id, frame, packets, seq_of};
use ixy::ixgbe::{IxgbeDevice, IxgbeOptions, MacType, regs};
use ixy::memory::HeapDma;
use ixy::model::{Model, Port, PortRegisters};
use ixy::pci::{DriverKind, IXGBE_DEVICE_IDS, driver_for};
use ixy::registers::RegisterSpace;
use ixy::{Error, IxyDevice, Mempool};

type Dev = IxgbeDevice<PortRegisters>;

const BROADCAST: [u8; 6] = [0xff; 6];

fn options() -> IxgbeOptions {
    IxgbeOptions::default().link_timeout(Duration::from_secs(2))
}

fn open(model: &Model, port: &Port, o: &IxgbeOptions) -> Dev {
    model.ixgbe(port, o).expect("ixgbe init against the model")
}

/// The port's registers, for checking what the driver programmed.
fn regs(port: &Port) -> PortRegisters {
    // SAFETY: the tests only read registers through it (reads do not move the device's
    // DMA), or write ones that cannot point the device at memory in use.
    unsafe { port.registers() }
}

/// RDLEN, RDT, RXDCTL of receive queue `q` and TDLEN, TDT, TXDCTL of transmit queue `q`
/// (82599 datasheet 8.2.3.8, 8.2.3.9: 0x40-byte blocks from 0x01000 and 0x06000).
const fn rx(q: usize) -> [usize; 3] {
    [0x01008 + 0x40 * q, 0x01018 + 0x40 * q, 0x01028 + 0x40 * q]
}
const fn tx(q: usize) -> [usize; 3] {
    [0x06008 + 0x40 * q, 0x06018 + 0x40 * q, 0x06028 + 0x40 * q]
}

/// The two devices of `devs`, ordered (from, to).
fn pair(devs: &mut [Dev; 2], from: usize) -> (&mut Dev, &mut Dev) {
    let [a, b] = devs;
    if from == 0 { (a, b) } else { (b, a) }
}

fn test_pool(model: &Model) -> Mempool {
    Mempool::new(&model.dma(), 4096, 2048).unwrap()
}

/// Two modelled ports joined by a wire, each opened with the default test options.
fn wired_pair(model: &Model) -> (Port, Port, Dev, Dev) {
    let (pa, pb) = (model.add_port(), model.add_port());
    model.connect(&pa, &pb);
    let (a, b) = (open(model, &pa, &options()), open(model, &pb, &options()));
    (pa, pb, a, b)
}

#[test]
fn init_follows_the_datasheet_and_brings_the_link_up() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    // A link timeout longer than the test's deadline: init must not wait it out.
    let o = options()
        .queues(2, 3)
        .link_timeout(Duration::from_secs(3600));
    let (dev, warned) = common::warnings(|| open(&model, &port, &o));
    assert_eq!(warned, Vec::<String>::new());
    assert_eq!(dev.driver_name(), "ixgbe");
    assert_eq!(dev.pci_addr(), "model:0");
    assert_eq!(dev.link_speed(), 10_000);
    assert!(dev.link_up());
    assert_eq!(dev.mac_addr(), model.default_mac(&port));
    assert_eq!((dev.num_rx_queues(), dev.num_tx_queues()), (2, 3));
    assert!(dev.promisc(), "promiscuous by default, like ixy");

    // What the init left in the registers.
    let r = |o| regs(&port).read32(o);
    assert_eq!(r(regs::RXCTRL) & regs::RXCTRL_RXEN, regs::RXCTRL_RXEN);
    assert_eq!(r(regs::DMATXCTL) & regs::DMATXCTL_TE, regs::DMATXCTL_TE);
    assert_eq!(
        r(regs::AUTOC) & regs::AUTOC_LMS_MASK,
        regs::AUTOC_LMS_10G_SERIAL
    );
    let hl = r(regs::HLREG0);
    assert_eq!(
        hl & (regs::HLREG0_RXCRCSTRP | regs::HLREG0_TXCRCEN | regs::HLREG0_TXPADEN),
        regs::HLREG0_RXCRCSTRP | regs::HLREG0_TXCRCEN | regs::HLREG0_TXPADEN
    );
    // 4.6.7 / 8.2.3.8.8: RSCFRSTSIZE cleared, RSCACKC and FCOE_WRFIX set.
    let rdrxctl = r(regs::RDRXCTL);
    assert_ne!(rdrxctl & regs::RDRXCTL_CRCSTRIP, 0);
    assert_eq!(rdrxctl & regs::RDRXCTL_RSCFRSTSIZE, 0);
    assert_eq!(
        rdrxctl & (regs::RDRXCTL_RSCACKC | regs::RDRXCTL_FCOE_WRFIX),
        regs::RDRXCTL_RSCACKC | regs::RDRXCTL_FCOE_WRFIX
    );
    // 4.6.11.3.4 / 4.6.3.2: all 512 KB to buffer 0, FCRTH(0) = RXPBSIZE(0) - 0x6000,
    // legacy receive flow control on.
    assert_eq!(r(regs::rxpbsize(0)), 512 << 10);
    assert_eq!(r(regs::fcrth(0)), (512 << 10) - 0x6000);
    for n in 1..8 {
        assert_eq!(
            (r(regs::rxpbsize(n)), r(regs::fcrth(n))),
            (0, 0),
            "buffer {n}"
        );
    }
    assert_ne!(r(regs::MFLCN) & regs::MFLCN_RFCE, 0);
    // The receive data path was released after RXEN (4.6.7).
    assert_eq!(r(regs::SECRXCTRL) & regs::SECRXCTRL_RX_DIS, 0);
    assert_ne!(r(regs::FCTRL) & regs::FCTRL_BAM, 0);
    assert_eq!(r(0x00880), 0, "all interrupts masked (EIMS)");
    // The MSI-X queue vector masks (EIMS_EX(0/1) at 0xAA0/0xAA4) were cleared too.
    assert_eq!((r(0xaa0), r(0xaa4)), (0, 0));
    for q in 0..2 {
        assert_ne!(r(rx(q)[2]) & regs::XDCTL_ENABLE, 0, "rx queue {q}");
        let srrctl = r(regs::srrctl(q));
        assert_eq!(
            srrctl & regs::SRRCTL_DESCTYPE_MASK,
            regs::SRRCTL_DESCTYPE_ADV_ONEBUF
        );
        assert_eq!(srrctl & regs::SRRCTL_BSIZEPACKET_MASK, 3, "3 KB buffers");
        assert_ne!(srrctl & regs::SRRCTL_DROP_EN, 0);
        assert_eq!(r(rx(q)[0]), 512 * 16);
        assert_eq!(r(rx(q)[1]), 511, "all but one descriptor handed over");
        assert_eq!(r(regs::dca_rxctrl(q)) & regs::DCA_RXCTRL_RESERVED_BIT12, 0);
    }
    for q in 0..3 {
        assert_ne!(r(tx(q)[2]) & regs::XDCTL_ENABLE, 0, "tx queue {q}");
        assert_eq!(r(tx(q)[0]), 512 * 16);
        assert_eq!(r(tx(q)[1]), 0);
    }
    assert_eq!(
        r(rx(2)[2]) & regs::XDCTL_ENABLE,
        0,
        "only the queues asked for"
    );
}

#[test]
fn bad_options_are_refused_before_touching_the_device() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    for (o, expected) in [
        (options().queues(0, 1), "0 rx queues requested"),
        (options().queues(1, 65), "65 tx queues requested"),
        (
            IxgbeOptions {
                rx_ring_size: 500,
                ..options()
            },
            "receive ring size 500",
        ),
        (
            IxgbeOptions {
                pool_entries: 100,
                ..options()
            },
            "pool of 100 buffers is smaller than the receive ring (512)",
        ),
    ] {
        let r = model.ixgbe(&port, &o);
        let err = r.err().expect("refused");
        assert!(matches!(err, ixy::Error::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    assert_eq!(model.dma().live_regions(), 0, "nothing leaked");
}

#[test]
fn single_packets_both_ways() {
    let _deadline = common::deadline();
    let model = Model::new();
    let (_, _, mut a, mut b) = wired_pair(&model);
    let pool = test_pool(&model);

    let f = frame(b.mac_addr(), 7, 60);
    let mut out = packets(&pool, std::slice::from_ref(&f));
    assert_eq!(a.tx_batch(0, &mut out), 1);
    assert!(out.is_empty());
    let mut got = VecDeque::new();
    assert_eq!(b.rx_batch(0, &mut got, 32), 1);
    assert_eq!(&got[0][..], &f[..]);
    assert_eq!(b.rx_batch(0, &mut got, 32), 0, "exactly one");

    // And back, reusing the received buffer.
    let mut back = VecDeque::new();
    back.push_back(got.pop_front().unwrap());
    back[0][..6].copy_from_slice(&a.mac_addr());
    assert_eq!(b.tx_batch(0, &mut back), 1);
    assert_eq!(a.rx_batch(0, &mut got, 32), 1);
    assert_eq!(&got[0][..6], &a.mac_addr());
    assert_eq!(&got[0][6..], &f[6..]);
}

#[test]
fn packets_from_memory_the_device_cannot_reach_are_dropped_and_counted() {
    let model = Model::new();
    let (pa, _, mut a, mut b) = wired_pair(&model);
    let own = test_pool(&model);
    // Ordinary memory, and another model's memory: not this device's DMA domain.
    let heap = Mempool::new(&HeapDma, 64, 2048).unwrap();
    let other = Mempool::new(&Model::new().dma(), 64, 2048).unwrap();
    let f = frame(BROADCAST, 1, 60);
    let mut out = packets(&heap, &[f.clone(), f.clone()]);
    out.extend(packets(&own, std::slice::from_ref(&f)));
    out.extend(packets(&other, std::slice::from_ref(&f)));
    out.extend(packets(&own, std::slice::from_ref(&f)));
    assert_eq!(a.tx_batch(0, &mut out), 5, "all taken from the buffer");
    assert_eq!(heap.free_count(), 64, "back in their pool");
    assert_eq!(other.free_count(), 64);
    assert_eq!(
        model.wire_stats(&pa).tx_frames,
        2,
        "only the reachable ones sent"
    );
    let stats = a.stats();
    assert_eq!((stats.tx_packets, stats.tx_dropped), (2, 3));
    let mut got = VecDeque::new();
    assert_eq!(b.rx_batch(0, &mut got, 32), 2);
    a.reset_stats();
    assert_eq!(a.stats().tx_dropped, 0);
}

#[test]
fn batches_both_ways_arrive_in_order_and_intact() {
    let _deadline = common::deadline();
    let model = Model::new();
    let (_, _, a, b) = wired_pair(&model);
    let pool = test_pool(&model);
    let sizes = [60usize, 64, 128, 511, 1000, 1514];
    let frames: Vec<Vec<u8>> = (0..32)
        .map(|i| frame(BROADCAST, i, sizes[i as usize % sizes.len()]))
        .collect();
    let mut devs = [a, b];
    for dir in 0..2 {
        let (from, to) = pair(&mut devs, dir);
        let mut out = packets(&pool, &frames);
        assert_eq!(from.tx_batch(0, &mut out), 32);
        let mut got = VecDeque::new();
        assert_eq!(to.rx_batch(0, &mut got, 20), 20, "batch limit honoured");
        assert_eq!(to.rx_batch(0, &mut got, 64), 12);
        for (p, f) in got.iter().zip(&frames) {
            assert_eq!(&p[..], &f[..]);
        }
    }
}

#[test]
fn rings_wrap_around_over_many_rounds() {
    let _deadline = common::deadline();
    let model = Model::new();
    let (_, pb, mut a, mut b) = wired_pair(&model);
    let pool = test_pool(&model);
    let mut seq = 0u32;
    let mut expected = 0u32;
    let mut got = VecDeque::new();
    // 200 rounds of 77 frames: each ring (512 descriptors) wraps 30 times.
    for _ in 0..200 {
        let frames: Vec<Vec<u8>> = (0..77)
            .map(|_| {
                seq += 1;
                frame(BROADCAST, seq, 60)
            })
            .collect();
        let mut out = packets(&pool, &frames);
        common::send_all(&mut a, 0, &mut out);
        common::drain(&mut b, 0, &mut got, 32);
        for p in got.drain(..) {
            expected += 1;
            assert_eq!(seq_of(&p), expected);
        }
    }
    assert_eq!(expected, 200 * 77);
    assert_eq!(model.wire_stats(&pb).rx_dropped, 0);
}

#[test]
fn rx_ring_exhaustion_counts_drops_then_recovers() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, &options());
    dev.reset_stats();
    let delivered = (0..600)
        .filter(|&i| model.inject(&port, &frame(BROADCAST, i, 60)))
        .count();
    assert_eq!(
        delivered, 511,
        "one descriptor always stays with the driver"
    );
    let stats = dev.stats();
    assert_eq!(stats.rx_dropped, 89);
    assert_eq!(stats.rx_packets, 511);
    assert_eq!(model.wire_stats(&port).rx_dropped, 89);

    let mut got = VecDeque::new();
    common::drain(&mut dev, 0, &mut got, 64);
    assert_eq!(got.len(), 511);
    assert!(got.iter().enumerate().all(|(i, p)| seq_of(p) == i as u32));
    got.clear();
    // Recovered: frames are delivered again, and the drop counter stands still.
    assert!(model.inject(&port, &frame(BROADCAST, 1000, 60)));
    assert_eq!(dev.rx_batch(0, &mut got, 64), 1);
    assert_eq!(seq_of(&got[0]), 1000);
    assert_eq!(dev.stats().rx_dropped, 89);
}

#[test]
fn rx_waits_while_its_pool_is_empty_and_resumes() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    // A pool just 4 buffers larger than the ring: once the application holds 4 received
    // packets, the driver has no fresh buffer to give the next descriptor.
    let o = IxgbeOptions {
        pool_entries: 516,
        ..options()
    };
    let mut dev = open(&model, &port, &o);
    for i in 0..10 {
        assert!(model.inject(&port, &frame(BROADCAST, i, 60)));
    }
    let mut got = VecDeque::new();
    assert_eq!(
        dev.rx_batch(0, &mut got, 32),
        4,
        "4 spare buffers to refill with"
    );
    assert_eq!(
        dev.rx_batch(0, &mut got, 32),
        0,
        "pool empty: frames wait on the ring"
    );
    assert_eq!(dev.rx_pool(0).unwrap().free_count(), 0);
    got.clear();
    assert_eq!(dev.rx_batch(0, &mut got, 32), 4);
    got.clear();
    assert_eq!(dev.rx_batch(0, &mut got, 32), 2);
    assert_eq!(seq_of(&got[1]), 9, "nothing lost, in order");
    assert_eq!(dev.stats().rx_dropped, 0);
}

#[test]
fn tx_ring_full_leaves_unsent_packets_with_the_caller() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    model.set_capture(&port, true);
    let mut dev = open(&model, &port, &options());
    let pool = test_pool(&model);
    let frames: Vec<Vec<u8>> = (0..1000).map(|i| frame(BROADCAST, i, 60)).collect();
    let mut out = packets(&pool, &frames);
    // 511 descriptors are free in a 512-entry ring.
    assert_eq!(dev.tx_batch(0, &mut out), 511);
    assert_eq!(out.len(), 489);
    assert_eq!(
        seq_of(&out[0]),
        511,
        "the unsent ones, in order, at the front"
    );
    // The next call cleans what the device completed and sends the rest.
    let mut total = 511;
    while !out.is_empty() {
        let n = dev.tx_batch(0, &mut out);
        assert!(n > 0, "progress once descriptors are cleaned");
        total += n;
    }
    assert_eq!(total, 1000);
    let sent = model.take_transmitted(&port);
    assert_eq!(sent.len(), 1000);
    assert!(sent.iter().enumerate().all(|(i, f)| seq_of(f) == i as u32));
    assert_eq!(&sent[5][..], &frames[5][..]);
    // Cleaning happens in batches of 32: at most a batch's worth stays in flight.
    assert!(dev.tx_in_flight(0) < 512);
}

#[test]
fn a_million_packets_forwarded_with_every_buffer_back_in_its_pool() {
    let _deadline = common::deadline();
    const TOTAL: u64 = 1_000_000;
    let model = Model::new();
    let (pa, pb) = (model.add_port(), model.add_port());
    let template = frame(BROADCAST, 0, 60);
    model.attach_source(&pa, template.clone(), Some(TOTAL / 2));
    model.attach_source(&pb, template, Some(TOTAL / 2));
    let a = open(&model, &pa, &options());
    let b = open(&model, &pb, &options());
    let pools = [a.rx_pool(0).unwrap().clone(), b.rx_pool(0).unwrap().clone()];
    let mut devs = [a, b];
    let mut buf = VecDeque::with_capacity(64);
    let mut forwarded = 0u64;
    let mut idle = 0;
    while forwarded < TOTAL && idle < 1000 {
        let mut moved = 0;
        for dir in 0..2 {
            let (rx, tx) = pair(&mut devs, dir);
            let n = rx.rx_batch(0, &mut buf, 32);
            for p in buf.iter_mut() {
                p[48] = p[48].wrapping_add(1);
            }
            let sent = tx.tx_batch(0, &mut buf);
            assert_eq!(sent, n, "the tx ring keeps up with the model");
            buf.clear();
            moved += n;
        }
        forwarded += moved as u64;
        idle = if moved == 0 { idle + 1 } else { 0 };
    }
    assert_eq!(forwarded, TOTAL);
    let (wa, wb) = (model.wire_stats(&pa), model.wire_stats(&pb));
    assert_eq!(wa.rx_frames + wb.rx_frames, TOTAL);
    assert_eq!(wa.tx_frames + wb.tx_frames, TOTAL);
    assert_eq!(wa.rx_dropped + wb.rx_dropped, 0);
    let (sa, sb) = (devs[0].stats(), devs[1].stats());
    assert_eq!(sa.rx_packets + sb.rx_packets, TOTAL);
    assert_eq!(sa.tx_packets + sb.tx_packets, TOTAL);
    for p in &pools {
        assert!(
            p.free_count() < p.capacity(),
            "rings hold buffers while open"
        );
    }
    drop(devs);
    for p in &pools {
        assert_eq!(
            p.free_count(),
            p.capacity(),
            "every buffer back in its pool"
        );
    }
    drop(pools);
    assert_eq!(model.dma().live_regions(), 0, "all DMA memory freed");
}

#[test]
fn stats_equal_what_crossed_the_wire() {
    let _deadline = common::deadline();
    let model = Model::new();
    let (pa, pb, mut a, mut b) = wired_pair(&model);
    a.reset_stats();
    b.reset_stats();
    let pool = test_pool(&model);
    let frames: Vec<Vec<u8>> = (0..300)
        .map(|i| frame(BROADCAST, i, 60 + i as usize))
        .collect();
    let mut out = packets(&pool, &frames);
    common::send_all(&mut a, 0, &mut out);
    let mut got = VecDeque::new();
    common::drain(&mut b, 0, &mut got, 64);
    assert_eq!(got.len(), 300);
    // 700 more than b's ring holds: drops.
    let extra: Vec<Vec<u8>> = (0..700).map(|i| frame(BROADCAST, i, 100)).collect();
    let mut out = packets(&pool, &extra);
    common::send_all(&mut a, 0, &mut out);
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum::<u64>() + 511 * 100;
    let (sa, sb) = (a.stats(), b.stats());
    let (wa, wb) = (model.wire_stats(&pa), model.wire_stats(&pb));
    assert_eq!(sa.tx_packets, wa.tx_frames);
    assert_eq!(sa.tx_packets, 1000);
    assert_eq!(sa.tx_bytes, wa.tx_bytes);
    // rx_packets: frames delivered (GPRC, a MAC counter, also counts the 189 frames the
    // DMA dropped for lack of descriptors; the driver takes QPRDC off). rx_bytes (GORC)
    // cannot leave their octets out.
    assert_eq!(sb.rx_packets, wb.rx_frames);
    assert_eq!(sb.rx_packets, 300 + 511);
    assert_eq!(sb.rx_bytes, wb.rx_bytes + 189 * 100);
    assert_eq!(sb.rx_bytes, bytes + 189 * 100);
    assert_eq!(sb.rx_dropped, wb.rx_dropped);
    assert_eq!(sb.rx_dropped, 700 - 511);
    assert_eq!(sa.rx_packets, 0);
    // One queue each way: the per-queue counters (QPRC/QBRC, QPTC/QBTC) hold the totals.
    let queue = |packets, bytes| vec![ixy::QueueStats { packets, bytes }];
    assert_eq!(sb.rx_queues, queue(300 + 511, bytes));
    assert_eq!(sa.tx_queues, queue(1000, wa.tx_bytes));
    assert_eq!(sa.rx_queues, queue(0, 0));
    // Counters are cumulative across reads (the registers clear on read)...
    assert_eq!(b.stats(), sb);
    // ...until reset.
    b.reset_stats();
    let zero = b.stats();
    assert_eq!(zero.rx_queues, queue(0, 0));
    assert_eq!(
        zero,
        ixy::DeviceStats {
            rx_queues: queue(0, 0),
            tx_queues: queue(0, 0),
            ..Default::default()
        }
    );
}

#[test]
fn several_queues_are_independent() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    model.set_capture(&port, true);
    let mut dev = open(&model, &port, &options().queues(4, 4));
    for q in 0..4u32 {
        for i in 0..=q {
            let f = common::udp_frame_to_queue(&model, &port, q as usize, q * 100 + i);
            assert!(model.inject(&port, &f));
        }
    }
    let mut got = VecDeque::new();
    for q in (0..4u16).rev() {
        assert_eq!(dev.rx_batch(q, &mut got, 32), q as usize + 1, "queue {q}");
        assert!(got.iter().all(|p| common::udp_seq(p) / 100 == q as u32));
        // Send them back out on the transmit queue of the same number.
        assert_eq!(dev.tx_batch(q, &mut got), q as usize + 1);
    }
    let sent = model.take_transmitted(&port);
    let seqs: Vec<u32> = sent.iter().map(|f| common::udp_seq(f)).collect();
    assert_eq!(seqs, vec![300, 301, 302, 303, 200, 201, 202, 100, 101, 0]);
    // Per-queue counters (QPRC/QBRC via RQSMR, QPTC/QBTC via TQSM): q + 1 frames each way.
    let stats = dev.stats();
    let per_queue: Vec<_> = (1..=4)
        .map(|n| ixy::QueueStats {
            packets: n,
            bytes: 60 * n,
        })
        .collect();
    assert_eq!(
        (stats.rx_queues, stats.tx_queues),
        (per_queue.clone(), per_queue)
    );
}

#[test]
fn promiscuous_mode_on_and_off() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, &options());
    let own = dev.mac_addr();
    let other = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    dev.set_promisc(false).unwrap();
    assert!(!dev.promisc());
    assert_eq!(
        regs(&port).read32(regs::FCTRL) & (regs::FCTRL_UPE | regs::FCTRL_MPE),
        0
    );
    assert!(!model.inject(&port, &frame(other, 1, 60)), "filtered");
    assert!(model.inject(&port, &frame(own, 2, 60)));
    assert!(
        model.inject(&port, &frame(BROADCAST, 3, 60)),
        "broadcast accepted (BAM)"
    );
    dev.set_promisc(true).unwrap();
    assert!(dev.promisc());
    assert!(model.inject(&port, &frame(other, 4, 60)));
    let mut got = VecDeque::new();
    dev.rx_batch(0, &mut got, 32);
    let seqs: Vec<u32> = got.iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    // A new station address moves the unicast filter with it.
    dev.set_promisc(false).unwrap();
    dev.set_mac_addr(other).unwrap();
    assert_eq!(dev.mac_addr(), other);
    assert!(model.inject(&port, &frame(other, 5, 60)));
    assert!(!model.inject(&port, &frame(own, 6, 60)));
    for refused in [[0x01, 0, 0, 0, 0, 1], [0; 6]] {
        let err = dev.set_mac_addr(refused).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    }
    assert_eq!(dev.mac_addr(), other, "multicast and zero refused");
}

#[test]
fn a_link_that_never_comes_up_ends_in_a_warning_or_error_not_a_hang() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    model.set_link_never_up(&port, true);
    let o = options().link_timeout(Duration::from_millis(200));
    let (dev, warned) = common::warnings(|| open(&model, &port, &o));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("WARN model:0: link did not come up within 200 ms"),
        "{warned:?}"
    );
    assert_eq!(dev.link_speed(), 0);
    assert!(!dev.link_up());
    drop(dev);

    let o = IxgbeOptions {
        require_link: true,
        ..o
    };
    let err = model.ixgbe(&port, &o).err().expect("link required");
    let msg = err.to_string();
    assert!(msg.contains("link did not come up within 200 ms"), "{msg}");
    assert!(msg.contains("model:0"), "{msg}");
    assert_eq!(
        model.dma().live_regions(),
        0,
        "failed init frees its memory"
    );
}

#[test]
fn closing_the_device_stops_dma_and_frees_memory() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let dma = model.dma();
    let dev = open(&model, &port, &options().queues(2, 2));
    assert!(dma.live_regions() >= 6, "2 pools, 2 rx rings, 2 tx rings");
    drop(dev);
    assert_eq!(regs(&port).read32(regs::RXCTRL) & regs::RXCTRL_RXEN, 0);
    for q in 0..2 {
        assert_eq!(regs(&port).read32(rx(q)[2]) & regs::XDCTL_ENABLE, 0);
        assert_eq!(regs(&port).read32(tx(q)[2]) & regs::XDCTL_ENABLE, 0);
    }
    assert_eq!(dma.live_regions(), 0);
    // Frames arriving now are dropped by the device, not written into freed memory.
    assert!(!model.inject(&port, &frame(BROADCAST, 1, 60)));
}

#[test]
fn device_ids_select_the_ixgbe_driver() {
    assert!(IXGBE_DEVICE_IDS.len() >= 30);
    for &(device, name) in IXGBE_DEVICE_IDS {
        assert_eq!(
            driver_for(&device_id(0x8086, device)),
            Some(DriverKind::Ixgbe),
            "{name}"
        );
        assert_eq!(
            MacType::from_device_id(device).is_some(),
            !name.starts_with("X550EM"),
            "{name} ({device:04x}): brought up unless X550EM"
        );
    }
    // One id of each family (Linux ixgbe_type.h `IXGBE_DEV_ID_*`).
    for (device, mac) in [
        (0x10fb, Some(MacType::M82599)),
        (0x154f, Some(MacType::M82599)),
        (0x1528, Some(MacType::X540)),
        (0x15d1, Some(MacType::X550)),
        (0x15ab, None),
        (0x15c8, None),
        (0x10b6, None), // 82598
    ] {
        assert_eq!(MacType::from_device_id(device), mac, "{device:04x}");
    }
    // What differs per MAC (Linux ixgbe_type.h, ixgbe_x540.c).
    assert_eq!(MacType::M82599.rx_pb_size_kb(), 512);
    assert_eq!(MacType::X540.rx_pb_size_kb(), 384);
    assert_eq!(MacType::X550.rx_pb_size_kb(), 384);
    assert!(MacType::M82599.is_82599());
    assert!(!MacType::X540.is_82599());
    assert_eq!(MacType::M82599.reset_settle(), Duration::from_millis(50));
    assert_eq!(MacType::X540.reset_settle(), Duration::from_millis(100));
    assert_eq!(MacType::X550.reset_settle(), Duration::from_millis(100));
    for device in [0x10fb, 0x1528, 0x1563, 0x15ab] {
        assert_eq!(
            driver_for(&device_id(0x8086, device)),
            Some(DriverKind::Ixgbe)
        );
    }
    // Intel NICs that are none of these: an 82598, an I210, an X710 (the 82599/X540 VFs
    // are ixgbevf's: tests/ixgbevf.rs).
    for device in [0x10b6, 0x1533, 0x1572] {
        let i = device_id(0x8086, device);
        assert_eq!(driver_for(&i), None, "{device:04x}");
        let msg = i.unsupported().to_string();
        assert!(msg.contains(&format!("8086:{device:04x}")), "{msg}");
        assert!(
            msg.contains("not supported") && msg.contains("82599"),
            "{msg}"
        );
    }
    // Another vendor's device with an ixgbe device id is not an ixgbe.
    assert_eq!(driver_for(&device_id(0x10ec, 0x10fb)), None);
}

/// A port of the model showing device id `device`, and options naming it.
fn port_with_id(model: &Model, device: u16) -> (Port, IxgbeOptions) {
    let mut o = options();
    o.device_id = device;
    (model.add_port_with_id(device), o)
}

/// Issue 15 item 2: only SFP+ ports get 10 Gb/s serial; every other 82599 keeps the link
/// mode its NVM loaded (the model's: KX4/KX/KR auto-negotiation) and restarts it.
#[test]
fn autoc_link_mode_per_device_id() {
    let _deadline = common::deadline();
    let model = Model::new();
    let sfp = [0x10fb, 0x1529, 0x1507, 0x154d, 0x154a, 0x1558, 0x1557];
    for &(device, name) in IXGBE_DEVICE_IDS.iter().filter(|d| d.1.starts_with("82599")) {
        let (port, o) = port_with_id(&model, device);
        let dev = open(&model, &port, &o);
        let lms = regs(&port).read32(regs::AUTOC) & regs::AUTOC_LMS_MASK;
        let want = if sfp.contains(&device) {
            regs::AUTOC_LMS_10G_SERIAL
        } else {
            0x4 << 13
        };
        assert_eq!(lms, want, "{name} ({device:04x})");
        assert!(
            !ixy::ixgbe::is_sfp(device) ^ sfp.contains(&device),
            "{name}"
        );
        assert_eq!(dev.link_speed(), 10_000, "{name}");
    }
}

/// Issue 15 item 3: the X550EM ids are refused, naming the device, before any register
/// is written.
#[test]
fn x550em_ids_are_refused_naming_the_device() {
    let model = Model::new();
    for &(device, name) in IXGBE_DEVICE_IDS
        .iter()
        .filter(|d| d.1.starts_with("X550EM"))
    {
        let (port, o) = port_with_id(&model, device);
        match model.ixgbe(&port, &o).err() {
            Some(ixy::Error::Unsupported {
                device: d, reason, ..
            }) => {
                assert_eq!(d, device);
                assert!(
                    reason.starts_with(&format!("{name} has no link setup")),
                    "{reason}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(model.resets(&port), vec![], "{name}: untouched");
    }
}

const RST: u32 = 1 << 26;
const LRST: u32 = 1 << 3;

/// Issue 15 item 4: the reset per MAC. The 82599 resets with CTRL.LRST while the link is
/// down (init) and CTRL.RST while it is up (close); the X540 and X550 with CTRL.RST
/// only, holding their PHY's SW/FW semaphore (the model flags a reset without it). The
/// X540/X550 leave AUTOC alone, get their link from the PHY and their 384 KB buffer.
#[test]
fn reset_sequence_per_mac() {
    let _deadline = common::deadline();
    let model = Model::new();
    let (port, o) = port_with_id(&model, 0x10fb);
    let dev = open(&model, &port, &o);
    assert_eq!(model.resets(&port), vec![(LRST, false)]);
    drop(dev);
    assert_eq!(model.resets(&port), vec![(LRST, false), (RST, false)]);
    for device in [0x1528, 0x1560, 0x1563, 0x15d1] {
        let (port, o) = port_with_id(&model, device);
        let autoc_before = regs(&port).read32(regs::AUTOC);
        let dev = open(&model, &port, &o);
        assert_eq!(model.resets(&port), vec![(RST, true)], "{device:04x}");
        assert_eq!(
            regs(&port).read32(regs::AUTOC),
            autoc_before,
            "AUTOC untouched"
        );
        assert_eq!(dev.link_speed(), 10_000);
        assert_eq!(regs(&port).read32(regs::rxpbsize(0)), 384 << 10);
        assert_eq!(regs(&port).read32(regs::fcrth(0)), (384 << 10) - 0x6000);
        // The semaphore was given back (else the close could not take it again).
        drop(dev);
        assert_eq!(model.resets(&port), vec![(RST, true); 2], "{device:04x}");
    }
}

/// Issue 15 item 6: an SFP+ fibre port's laser (ESDP.SDP3) is turned on at init and off
/// at close; the link comes up although the NVM disabled it (AUTOC2 bits cleared).
#[test]
fn sfp_laser_on_while_open_and_nvm_link_disable_cleared() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    model.set_nvm_link_disabled(&port, true);
    assert!(!model.laser_on(&port), "the model's laser starts off");
    let dev = open(&model, &port, &options());
    assert!(model.laser_on(&port));
    assert_eq!(
        regs(&port).read32(regs::AUTOC2) & regs::AUTOC2_LINK_DISABLE_MASK,
        0
    );
    assert_eq!(dev.link_speed(), 10_000);
    drop(dev);
    assert!(!model.laser_on(&port), "laser off after close");
}

/// CTRL_EXT.DRV_LOAD: set while the driver owns the port, cleared when it closes.
#[test]
fn drv_load_set_while_open_and_cleared_on_close() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    assert!(!model.driver_loaded(&port));
    let dev = open(&model, &port, &options());
    assert!(model.driver_loaded(&port));
    drop(dev);
    assert!(!model.driver_loaded(&port));
}

/// LINKS speeds: 10G/1G/100M, 2.5G/5G with NON_STD on the X550, 10M (00b).
#[test]
fn link_speed_decoding() {
    use ixy::ixgbe::links_speed;
    let up = regs::LINKS_UP;
    let non_std = regs::LINKS_SPEED_NON_STD;
    assert_eq!(links_speed(0x3 << 28, false), 0, "down");
    for (speed, mbit, alt) in [
        (3, 10_000, 2_500),
        (2, 1_000, 1_000),
        (1, 100, 5_000),
        (0, 10, 10),
    ] {
        let links = up | speed << 28;
        assert_eq!(links_speed(links, false), mbit);
        assert_eq!(
            links_speed(links | non_std, false),
            mbit,
            "82599: no NON_STD"
        );
        assert_eq!(links_speed(links | non_std, true), alt);
    }
}

#[test]
fn short_frames_leave_padded_to_60_bytes() {
    // HLREG0.TXPADEN (8.2.3.22.8): the MAC pads frames shorter than 60 bytes (64 with
    // CRC); the driver hands them over unpadded. Frames under 17 bytes (Linux's minimum
    // for olinfo.PAYLEN) are dropped and counted (issue 15 item 7).
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, &options());
    model.set_capture(&port, true);
    let pool = test_pool(&model);
    let frames: Vec<_> = [1, 16, 17, 42, 59, 60]
        .iter()
        .map(|&len| frame(BROADCAST, 0, len.max(18))[..len].to_vec())
        .collect();
    let mut batch = packets(&pool, &frames);
    assert_eq!(dev.tx_batch(0, &mut batch), 6);
    let sent = model.take_transmitted(&port);
    assert_eq!(sent.len(), 4);
    for (f, s) in frames[2..].iter().zip(&sent) {
        assert_eq!(s.len(), 60, "a {}-byte frame", f.len());
        assert_eq!(&s[..f.len()], &f[..]);
        assert!(s[f.len()..].iter().all(|&b| b == 0), "padding is zeros");
    }
    let w = model.wire_stats(&port);
    assert_eq!((w.tx_frames, w.tx_bytes), (4, 240));
    assert_eq!(dev.stats().tx_dropped, 2);
    assert_ne!(regs(&port).read32(regs::HLREG0) & regs::HLREG0_TXPADEN, 0);
}
