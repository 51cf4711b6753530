//! The whole virtio-net driver against the virtio device model: no hardware, the same
//! transport, ring and packet code that runs on a virtio-net PCI function. Every loop is
//! bounded by a count and a deadline and fails with a message.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ixy::model::virtio::feature;
use ixy::model::{VirtioFault, VirtioModel, VirtioNet, VirtioOptions};
use ixy::virtio::VirtioDevice;
use ixy::virtio::transport::VirtioBar;
use ixy::{DeviceConfig, Error, IxyDevice, Mempool, Packet};

#[path = "support/deadline.rs"]
mod deadline;

const OTHER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];

fn cfg() -> DeviceConfig {
    DeviceConfig::new("model")
}

/// A 60-byte frame to `dst` whose bytes 14.. carry `tag`.
fn frame(dst: [u8; 6], tag: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = (tag as usize * 7 + i) as u8;
    }
    f[14..18].copy_from_slice(&tag.to_le_bytes());
    f
}

/// Two connected functions of `opts` with drivers open on both.
fn pair(opts: &VirtioOptions) -> (VirtioModel, [VirtioNet; 2], [VirtioDevice; 2]) {
    let model = VirtioModel::new();
    let nets = [model.add_device(opts), model.add_device(opts)];
    model.connect(&nets[0], &nets[1]);
    let devs = [
        model.virtio(&nets[0], &cfg()).unwrap(),
        model.virtio(&nets[1], &cfg()).unwrap(),
    ];
    (model, nets, devs)
}

fn both() -> [VirtioOptions; 2] {
    [VirtioOptions::legacy(), VirtioOptions::modern()]
}

/// Packets holding `frames`, from `pool`.
fn packets(pool: &Mempool, frames: &[Vec<u8>]) -> VecDeque<Packet> {
    frames
        .iter()
        .map(|f| {
            let mut p = pool.alloc(f.len()).expect("test pool large enough");
            p.copy_from_slice(f);
            p
        })
        .collect()
}

/// Receives on queue 0 of `dev` until `n` packets arrived (or fails after a deadline).
fn receive(dev: &mut VirtioDevice, n: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = VecDeque::new();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} packets arrived",
            got.len()
        );
        let k = dev.rx_batch(0, &mut buf, 32);
        assert_eq!(k, buf.len(), "rx_batch returns what it put into the buffer");
        got.extend(buf.drain(..).map(|p| p.to_vec()));
    }
    got
}

#[test]
fn init_walks_the_status_sequence_and_negotiates_only_what_the_driver_uses() {
    for opts in both() {
        let model = VirtioModel::new();
        let net = model.add_device(&opts);
        let dev = model.virtio(&net, &cfg()).unwrap();
        let expected: &[u8] = if opts.modern {
            &[0, 1, 3, 11, 15]
        } else {
            &[0, 1, 3, 7]
        };
        assert_eq!(model.status_log(&net), expected);
        let version = if opts.modern {
            feature::VERSION_1
        } else {
            feature::ANY_LAYOUT
        };
        let used = feature::MAC
            | feature::STATUS
            | feature::CTRL_VQ
            | feature::CTRL_RX
            | feature::CTRL_MAC_ADDR
            | version;
        assert_eq!((model.driver_features(&net), dev.features()), (used, used));
        assert_eq!(dev.is_modern(), opts.modern);
        assert_eq!(dev.mac_addr(), opts.mac);
        assert_eq!(dev.link_speed(), 1000);
        assert!(dev.promisc());
        assert_eq!(model.filter(&net), (opts.mac, true, false));
    }
}

/// Opens a driver on a fresh function of `opts` and returns the error; checks that the
/// device was told (FAILED) and reset, and that the function can be opened again.
fn open_error(opts: &VirtioOptions, config: &DeviceConfig) -> Error {
    let model = VirtioModel::new();
    let net = model.add_device(opts);
    let err = model.virtio(&net, config).err().expect("open must fail");
    let log = model.status_log(&net);
    assert_eq!(log.last(), Some(&0), "reset after the failure: {log:?}");
    if log.len() > 2 {
        assert_ne!(
            log[log.len() - 2] & 0x80,
            0,
            "FAILED before the reset: {log:?}"
        );
    }
    assert_eq!(model.dma().live_regions(), 0, "all memory freed");
    // The function is free again: a second attempt fails the same way.
    let again = model.virtio(&net, config).err().expect("fails again");
    assert_eq!(again.to_string(), err.to_string());
    err
}

#[test]
fn every_negotiation_failure_is_reported_and_leaves_the_device_reset() {
    let detail = |e: Error| match e {
        Error::Device { detail, .. } | Error::InvalidConfig { detail } => detail,
        e => panic!("unexpected error {e}"),
    };
    let mut modern_v0 = VirtioOptions::modern();
    modern_v0.features &= !feature::VERSION_1;
    assert!(detail(open_error(&modern_v0, &cfg())).contains("VIRTIO_F_VERSION_1"));
    let mut legacy_no_any = VirtioOptions::legacy();
    legacy_no_any.features &= !feature::ANY_LAYOUT;
    assert!(detail(open_error(&legacy_no_any, &cfg())).contains("VIRTIO_F_ANY_LAYOUT"));
    let mut refusing = VirtioOptions::modern();
    refusing.refuse_features = true;
    assert!(detail(open_error(&refusing, &cfg())).contains("FEATURES_OK not set"));
    let mut no_queues = VirtioOptions::legacy();
    no_queues.queue_size = 0;
    assert!(detail(open_error(&no_queues, &cfg())).contains("virtqueue 0 does not exist"));
    let mut odd_size = VirtioOptions::legacy();
    odd_size.queue_size = 100;
    assert!(detail(open_error(&odd_size, &cfg())).contains("unusable size 100"));
    let two_pairs = cfg().queues(2, 2);
    assert!(detail(open_error(&VirtioOptions::modern(), &two_pairs)).contains("offers 1"));
    let unequal = cfg().queues(2, 1);
    assert!(detail(open_error(&VirtioOptions::modern(), &unequal)).contains("equal rx and tx"));
}

#[test]
fn only_one_driver_per_device_at_a_time() {
    let model = VirtioModel::new();
    let net = model.add_device(&VirtioOptions::modern());
    let first = model.virtio(&net, &cfg()).unwrap();
    let err = model.virtio(&net, &cfg()).err().unwrap();
    assert!(err.to_string().contains("already drives"), "{err}");
    drop(first);
    assert_eq!(model.status(&net), 0, "reset on drop");
    assert_eq!(model.dma().live_regions(), 0);
    model.virtio(&net, &cfg()).unwrap();
}

#[test]
fn packets_cross_between_two_devices_with_their_payloads() {
    for opts in both() {
        let (model, nets, [mut a, mut b]) = pair(&opts);
        let pool = Mempool::new(&model.dma(), 256, 2048).unwrap();
        let frames: Vec<_> = (0..100).map(|i| frame(opts.mac, i)).collect();
        model.set_capture(&nets[0], true);
        for chunk in frames.chunks(25) {
            let mut q = packets(&pool, chunk);
            assert_eq!(a.tx_batch(0, &mut q), 25);
            assert!(q.is_empty());
        }
        // On the wire exactly the frames (the net header of the negotiated length gone),
        // and at the other driver exactly them again.
        assert_eq!(model.take_transmitted(&nets[0]), frames);
        assert_eq!(receive(&mut b, 100), frames, "modern {}", opts.modern);
        assert_eq!(model.wire_stats(&nets[0]).tx_frames, 100);
        assert_eq!(model.wire_stats(&nets[1]).rx_frames, 100);
        // And back.
        let mut q = packets(&pool, &frames[..3]);
        assert_eq!(b.tx_batch(0, &mut q), 3);
        assert_eq!(receive(&mut a, 3), &frames[..3]);
    }
}

#[test]
fn rx_batch_returns_exactly_what_it_received() {
    for opts in both() {
        let model = VirtioModel::new();
        let net = model.add_device(&opts);
        let mut dev = model.virtio(&net, &cfg()).unwrap();
        let mut buf = VecDeque::new();
        assert_eq!(dev.rx_batch(0, &mut buf, 32), 0);
        for i in 0..5 {
            assert!(model.inject(&net, &frame(opts.mac, i)));
        }
        assert_eq!(dev.rx_batch(0, &mut buf, 32), 5);
        assert_eq!(buf.len(), 5);
        assert_eq!(buf[4].to_vec(), frame(opts.mac, 4));
        buf.clear();
        for i in 0..40 {
            assert!(model.inject(&net, &frame(opts.mac, i)));
        }
        assert_eq!(dev.rx_batch(0, &mut buf, 32), 32);
        assert_eq!(dev.rx_batch(0, &mut buf, 32), 8);
        let got: Vec<_> = buf.iter().map(|p| p.to_vec()).collect();
        let sent: Vec<_> = (0..40).map(|i| frame(opts.mac, i)).collect();
        assert_eq!(got, sent, "appended behind what the buffer held, in order");
        assert_eq!(dev.rx_batch(0, &mut buf, 32), 0);
        let s = dev.stats();
        assert_eq!((s.rx_packets, s.rx_bytes), (45, 45 * 60));
    }
}

#[test]
fn a_batch_across_the_end_of_the_ring_keeps_order_and_appends() {
    for mut opts in both() {
        opts.queue_size = 16;
        let model = VirtioModel::new();
        let net = model.add_device(&opts);
        let mut dev = model.virtio(&net, &cfg()).unwrap();
        let mut buf = VecDeque::new();
        for round in 0..3 {
            // 11 frames per round: rounds 2 and 3 cross slot 15 to slot 0.
            let sent: Vec<_> = (0..11).map(|i| frame(opts.mac, round * 11 + i)).collect();
            for f in &sent {
                assert!(model.inject(&net, f));
            }
            buf.push_back(
                Mempool::new(&model.dma(), 1, 2048)
                    .unwrap()
                    .alloc(1)
                    .unwrap(),
            );
            assert_eq!(dev.rx_batch(0, &mut buf, 32), 11, "round {round}");
            let got: Vec<_> = buf.drain(..).skip(1).map(|p| p.to_vec()).collect();
            assert_eq!(got, sent, "round {round}");
        }
        assert_eq!(dev.device_errors(), 0);
    }
}

#[test]
fn indices_wrap_around_over_many_rounds() {
    for mut opts in both() {
        opts.queue_size = 16;
        let (model, _, [mut a, mut b]) = pair(&opts);
        let pool = Mempool::new(&model.dma(), 64, 2048).unwrap();
        // 70,000 packets in rounds of 7 over 16-entry queues: every free-running 16-bit
        // index wraps, every ring slot is reused thousands of times.
        for round in 0..10_000u32 {
            let frames: Vec<_> = (0..7).map(|i| frame(opts.mac, round * 7 + i)).collect();
            let mut q = packets(&pool, &frames);
            assert_eq!(a.tx_batch(0, &mut q), 7, "round {round}");
            assert_eq!(receive(&mut b, 7), frames, "round {round}");
        }
        assert_eq!(b.stats().rx_packets, 70_000);
        assert_eq!(a.device_errors() + b.device_errors(), 0);
    }
}

#[test]
fn a_million_packets_forwarded_with_every_buffer_returned() {
    for opts in both() {
        let model = VirtioModel::new();
        let (src, dst) = (model.add_device(&opts), model.add_device(&opts));
        let mut rx = model.virtio(&src, &cfg()).unwrap();
        let mut tx = model.virtio(&dst, &cfg()).unwrap();
        const N: u64 = 1_000_000;
        model.attach_source(&src, frame(OTHER_MAC, 1), Some(N));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut buf = VecDeque::with_capacity(64);
        let mut forwarded = 0;
        while forwarded < N {
            assert!(
                Instant::now() < deadline,
                "forwarded only {forwarded} of {N}"
            );
            rx.rx_batch(0, &mut buf, 64);
            for p in buf.iter_mut() {
                p[20] = p[20].wrapping_add(1);
            }
            forwarded += tx.tx_batch(0, &mut buf) as u64;
            assert!(
                buf.is_empty(),
                "tx queue full: the device completes synchronously"
            );
        }
        tx.tx_batch(0, &mut buf); // reclaims the last batch
        assert_eq!(model.wire_stats(&dst).tx_frames, N);
        assert_eq!((rx.stats().rx_packets, tx.stats().tx_packets), (N, N));
        assert_eq!(model.wire_stats(&src).rx_dropped, 0);
        drop((rx, tx, buf));
        // Every buffer went back to its pool: each pool (and ring) was freed.
        assert_eq!(model.dma().live_regions(), 0);
    }
}

#[test]
fn promiscuous_mode_and_the_mac_go_through_the_control_queue() {
    for opts in both() {
        let model = VirtioModel::new();
        let net = model.add_device(&opts);
        let mut dev = model.virtio(&net, &cfg()).unwrap();
        let ctrl = 2;
        let before = model.notifications(&net, ctrl);
        dev.set_promisc(false).unwrap();
        assert_eq!(model.notifications(&net, ctrl), before + 1);
        assert_eq!(model.filter(&net), (opts.mac, false, false));
        assert!(!dev.promisc());
        assert!(!model.inject(&net, &frame(OTHER_MAC, 1)), "filtered");
        assert!(model.inject(&net, &frame(opts.mac, 2)));
        assert!(model.inject(&net, &frame([0xff; 6], 3)), "broadcast");
        let mac = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
        dev.set_mac_addr(mac).unwrap();
        assert_eq!((model.filter(&net).0, dev.mac_addr()), (mac, mac));
        assert!(model.inject(&net, &frame(mac, 4)));
        assert!(
            !model.inject(&net, &frame(opts.mac, 5)),
            "the old MAC is filtered"
        );
        dev.set_promisc(true).unwrap();
        assert!(model.inject(&net, &frame(OTHER_MAC, 6)));
        assert_eq!(receive(&mut dev, 4).len(), 4);
        assert_eq!(model.wire_stats(&net).rx_dropped, 2);
    }
}

#[test]
fn a_legacy_device_without_ctrl_mac_addr_takes_the_mac_in_its_config() {
    let mut opts = VirtioOptions::legacy();
    opts.features &= !feature::CTRL_MAC_ADDR;
    let model = VirtioModel::new();
    let net = model.add_device(&opts);
    let mut dev = model.virtio(&net, &cfg()).unwrap();
    dev.set_mac_addr(OTHER_MAC).unwrap();
    assert_eq!(model.filter(&net).0, OTHER_MAC);
    // Modern drivers must not write the config: refused by the driver.
    let mut opts = VirtioOptions::modern();
    opts.features &= !feature::CTRL_MAC_ADDR;
    let net = model.add_device(&opts);
    let mut dev = model.virtio(&net, &cfg()).unwrap();
    let err = dev.set_mac_addr(OTHER_MAC).unwrap_err();
    assert!(err.to_string().contains("CTRL_MAC_ADDR"), "{err}");
}

#[test]
fn a_control_command_never_answered_is_a_clear_error_within_a_bound() {
    let model = VirtioModel::new();
    let net = model.add_device(&VirtioOptions::modern());
    let mut dev = model.virtio(&net, &cfg()).unwrap();
    model.set_ctrl_unanswered(&net, true);
    let start = Instant::now();
    let err = dev.set_promisc(false).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, Error::Device { .. }), "{err}");
    assert!(
        err.to_string().contains("no answer to a control command"),
        "{err}"
    );
    assert!(dev.promisc(), "unchanged");
    // The buffer may still be the device's: the queue is never used again.
    model.set_ctrl_unanswered(&net, false);
    let err = dev.set_mac_addr(OTHER_MAC).unwrap_err();
    assert!(
        err.to_string().contains("control queue is unusable"),
        "{err}"
    );
    assert!(model.filter(&net).1, "still promiscuous");
}

#[test]
fn stats_count_packets_and_bytes_and_reset() {
    let (model, _, [mut a, mut b]) = pair(&VirtioOptions::modern());
    let pool = Mempool::new(&model.dma(), 64, 2048).unwrap();
    let mut q = packets(&pool, &[frame(OTHER_MAC, 1), vec![0xff; 100]]);
    assert_eq!(a.tx_batch(0, &mut q), 2);
    receive(&mut b, 2);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.tx_packets, sa.tx_bytes, sa.rx_packets), (2, 160, 0));
    assert_eq!((sb.rx_packets, sb.rx_bytes, sb.tx_packets), (2, 160, 0));
    b.reset_stats();
    assert_eq!(b.stats(), ixy::DeviceStats::default());
}

#[test]
fn doorbells_are_one_per_batch_and_skipped_when_the_device_says_so() {
    let opts = VirtioOptions::modern();
    let (model, nets, [mut a, mut b]) = pair(&opts);
    let pool = Mempool::new(&model.dma(), 128, 2048).unwrap();
    let frames: Vec<_> = (0..32).map(|i| frame(opts.mac, i)).collect();
    let before = model.notifications(&nets[0], 1);
    a.tx_batch(0, &mut packets(&pool, &frames));
    assert_eq!(
        model.notifications(&nets[0], 1),
        before + 1,
        "one doorbell for 32"
    );
    let rx_before = model.notifications(&nets[1], 0);
    receive(&mut b, 32);
    assert_eq!(
        model.notifications(&nets[1], 0),
        rx_before + 1,
        "one refill doorbell"
    );
    // The device polls the tx queue: no doorbell, the frames wait for the poll.
    model.set_no_notify(&nets[0], 1, true);
    a.tx_batch(0, &mut packets(&pool, &frames[..5]));
    assert_eq!(model.notifications(&nets[0], 1), before + 1);
    assert_eq!(model.wire_stats(&nets[0]).tx_frames, 32);
    model.poll(&nets[0]);
    assert_eq!(model.wire_stats(&nets[0]).tx_frames, 37);
    // Polling driver: the device never had to interrupt.
    assert_eq!(model.interrupts(&nets[1], 0), 0);
}

#[test]
fn a_packet_without_headroom_for_the_header_is_dropped_and_counted() {
    // A transmit that keeps the packet it cannot send, instead of dropping it, spins.
    let _deadline = deadline::deadline();
    let (model, _, [mut a, mut b]) = pair(&VirtioOptions::legacy());
    let pool = Mempool::new(&model.dma(), 8, 2048).unwrap();
    let mut q = packets(&pool, &[frame(OTHER_MAC, 1), frame(OTHER_MAC, 2)]);
    let headroom = q[0].headroom();
    q[0].prepend(headroom - 4).unwrap();
    assert_eq!(a.tx_batch(0, &mut q), 2, "both taken");
    let s = a.stats();
    assert_eq!((s.tx_packets, s.tx_dropped, s.tx_bytes), (1, 1, 60));
    assert_eq!(receive(&mut b, 1), [frame(OTHER_MAC, 2)]);
    assert_eq!(
        pool.free_count(),
        7,
        "the dropped packet is back in its pool"
    );
}

#[test]
fn packets_from_memory_the_device_cannot_reach_are_dropped_and_counted() {
    // A transmit that keeps the packet it cannot send, instead of dropping it, spins.
    let _deadline = deadline::deadline();
    for opts in both() {
        let (model, _, [mut a, mut b]) = pair(&opts);
        // Ordinary heap memory, and another device model's memory: other DMA domains.
        let heap = Mempool::new(&ixy::memory::HeapDma, 8, 2048).unwrap();
        let other = Mempool::new(&ixy::model::Model::new().dma(), 8, 2048).unwrap();
        let own = Mempool::new(&model.dma(), 8, 2048).unwrap();
        let mut q = packets(&heap, &[frame(OTHER_MAC, 1)]);
        q.extend(packets(&own, &[frame(OTHER_MAC, 2)]));
        q.extend(packets(&other, &[frame(OTHER_MAC, 3)]));
        q.extend(packets(&own, &[frame(OTHER_MAC, 4)]));
        assert_eq!(a.tx_batch(0, &mut q), 4, "all taken");
        let s = a.stats();
        assert_eq!((s.tx_packets, s.tx_dropped, s.tx_bytes), (2, 2, 120));
        assert_eq!(
            receive(&mut b, 2),
            [frame(OTHER_MAC, 2), frame(OTHER_MAC, 4)]
        );
        assert_eq!(
            (heap.free_count(), other.free_count()),
            (8, 8),
            "never sent"
        );
    }
}

#[test]
fn link_state_comes_from_the_device_config() {
    let model = VirtioModel::new();
    let net = model.add_device(&VirtioOptions::legacy());
    let dev = model.virtio(&net, &cfg()).unwrap();
    assert!(dev.link_up());
    model.set_link_up(&net, false);
    assert_eq!(dev.link_speed(), 0);
}

#[test]
fn two_queue_pairs_are_negotiated_through_the_control_queue() {
    let mut opts = VirtioOptions::modern();
    opts.features |= feature::MQ;
    opts.max_pairs = 2;
    let model = VirtioModel::new();
    let (a, b) = (model.add_device(&opts), model.add_device(&opts));
    model.connect(&a, &b);
    let mut da = model.virtio(&a, &cfg().queues(2, 2)).unwrap();
    let mut db = model.virtio(&b, &cfg().queues(2, 2)).unwrap();
    assert_eq!((da.num_rx_queues(), da.num_tx_queues()), (2, 2));
    // Control queue 2N = 4; transmit queue 1 is virtqueue 3.
    assert_eq!(
        model.notifications(&a, 4),
        2,
        "MQ_VQ_PAIRS_SET and RX_PROMISC"
    );
    let pool = Mempool::new(&model.dma(), 8, 2048).unwrap();
    assert_eq!(
        da.tx_batch(1, &mut packets(&pool, &[frame(opts.mac, 9)])),
        1
    );
    assert_eq!(model.notifications(&a, 3), 1);
    assert_eq!(receive(&mut db, 1), [frame(opts.mac, 9)]);
}

// ---- A hostile device: no panic, no access outside the driver's buffers, counted. ----

/// Runs `fault` on the receive queue of a legacy and a modern device: five frames, each
/// polled for right away, the fault on the first; returns (packets received, device
/// errors, the model) per device, after the driver was dropped.
fn hostile_rx(fault: VirtioFault) -> Vec<(usize, u64, VirtioModel)> {
    both()
        .into_iter()
        .map(|opts| {
            let model = VirtioModel::new();
            let net = model.add_device(&opts);
            let mut dev = model.virtio(&net, &cfg()).unwrap();
            model.inject_fault(&net, 0, fault);
            let mut buf = VecDeque::new();
            let mut received = 0;
            for i in 0..5 {
                model.inject(&net, &frame(opts.mac, i));
                received += dev.rx_batch(0, &mut buf, 32);
            }
            assert_eq!(received, buf.len());
            for p in &buf {
                assert_eq!(p.len(), 60, "only intact packets are delivered");
            }
            let errors = dev.device_errors();
            drop((dev, buf));
            (received, errors, model)
        })
        .collect()
}

#[test]
fn a_used_id_never_handed_out_is_counted_and_skipped() {
    for (received, errors, model) in hostile_rx(VirtioFault::UnknownId) {
        assert_eq!((received, errors), (4, 1));
        assert_eq!(model.dma().live_regions(), 0, "drop still frees everything");
    }
    // On a transmit queue too, looked at once 32 sent packets are used (the driver takes
    // sent packets back in batches).
    let (model, nets, [mut a, _b]) = pair(&VirtioOptions::modern());
    let pool = Mempool::new(&model.dma(), 64, 2048).unwrap();
    model.inject_fault(&nets[0], 1, VirtioFault::UnknownId);
    a.tx_batch(0, &mut packets(&pool, &vec![frame(OTHER_MAC, 1); 31]));
    a.tx_batch(0, &mut VecDeque::new());
    assert_eq!(a.device_errors(), 0, "31 used: not looked at yet");
    a.tx_batch(0, &mut packets(&pool, &[frame(OTHER_MAC, 2)]));
    a.tx_batch(0, &mut VecDeque::new());
    assert_eq!(a.device_errors(), 1);
}

#[test]
fn a_length_larger_than_the_buffer_is_counted_and_the_packet_dropped() {
    for (received, errors, _) in hostile_rx(VirtioFault::TooLong) {
        assert_eq!((received, errors), (4, 1));
    }
}

#[test]
fn a_used_index_jumping_more_than_the_queue_size_is_counted() {
    for (received, errors, model) in hostile_rx(VirtioFault::IndexJump) {
        // Nothing on a ring whose index cannot be trusted is taken; each poll counts.
        assert_eq!((received, errors), (0, 5));
        assert_eq!(model.dma().live_regions(), 0);
    }
}

#[test]
fn a_used_ring_going_backwards_is_counted() {
    for (received, errors, _) in hostile_rx(VirtioFault::IndexBackwards) {
        // The index fell 3 behind the driver (1 -> 65534): the two polls that see it
        // behind count an error each and take nothing; the third frame brings it back to
        // the driver's index, and frames 4 and 5 are received normally.
        assert_eq!((received, errors), (2, 2));
    }
}

// ---- The model's rules catch a driver that breaks the spec. ----

/// # Safety
/// No driver runs on `net`; queue addresses written are none.
unsafe fn raw(net: &VirtioNet, bar: u8) -> ixy::model::virtio::VirtioRegisters {
    // SAFETY: forwarded to the caller.
    unsafe { net.registers(bar) }
}

#[test]
#[should_panic(expected = "virtio model: rule violated: device status written out of the order")]
fn driver_ok_before_features_ok_is_caught() {
    let model = VirtioModel::new();
    let net = model.add_device(&VirtioOptions::modern());
    // SAFETY: no driver, no queue addresses.
    let bar = unsafe { raw(&net, 4) };
    for s in [1, 3, 7] {
        bar.write(0x14, 1, s).unwrap();
    }
}

#[test]
#[should_panic(expected = "virtio model: rule violated: queue notified before DRIVER_OK")]
fn a_doorbell_before_driver_ok_is_caught() {
    let model = VirtioModel::new();
    let net = model.add_device(&VirtioOptions::legacy());
    // SAFETY: no driver, no queue addresses.
    let bar = unsafe { raw(&net, 0) };
    bar.write(0x12, 1, 1).unwrap();
    bar.write(0x10, 2, 0).unwrap();
}

#[test]
#[should_panic(
    expected = "virtio model: rule violated: driver accepted a feature the device did not offer"
)]
fn accepting_an_unoffered_feature_is_caught() {
    let model = VirtioModel::new();
    let net = model.add_device(&VirtioOptions::legacy());
    // SAFETY: no driver, no queue addresses.
    let bar = unsafe { raw(&net, 0) };
    bar.write(0x12, 1, 3).unwrap();
    bar.write(0x04, 4, 1 << 22).unwrap(); // MQ, not offered
}

#[test]
#[should_panic(expected = "virtio model: rule violated: DMA outside the live regions")]
fn a_queue_outside_dma_memory_is_caught() {
    let model = VirtioModel::new();
    let net = model.add_device(&VirtioOptions::legacy());
    // SAFETY: no driver; the queue address is checked and refused before any access.
    let bar = unsafe { raw(&net, 0) };
    bar.write(0x12, 1, 3).unwrap();
    bar.write(0x08, 4, 0x1234).unwrap();
}
