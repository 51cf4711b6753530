//! The ixgbevf driver against the 82599 model's virtual functions and its model of the Linux
//! PF driver: init and reset handshake, API negotiation (fallback and NACK), queues, rx/tx
//! through the VF, a PF reset in the middle of traffic, a PF that never answers,
//! promiscuous mode and MAC changes where the PF allows them, rolling counters that wrap,
//! and driver selection by device id.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::{device_id, frame, packets, seq_of};
use ixy::ixgbe::IxgbeOptions;
use ixy::ixgbevf::{ApiVersion, IxgbevfDevice, IxgbevfOptions};
use ixy::memory::HeapDma;
use ixy::model::{Model, Port, VfPort, VfRegisters};
use ixy::pci::{DriverKind, IXGBEVF_DEVICE_IDS, driver_for};
use ixy::registers::RegisterSpace;
use ixy::{Error, IxyDevice, Mempool};

type Vf = IxgbevfDevice<VfRegisters>;

// Mailbox message ids (Linux ixgbe_mbx.h).
const RESET: u32 = 0x01;
const SET_MAC_ADDR: u32 = 0x02;
const SET_LPE: u32 = 0x05;
const API_NEGOTIATE: u32 = 0x08;
const GET_QUEUES: u32 = 0x09;
const UPDATE_XCAST_MODE: u32 = 0x0c;

fn options() -> IxgbevfOptions {
    IxgbevfOptions::default()
        .link_timeout(Duration::from_secs(2))
        .mailbox_timeout(Duration::from_millis(200))
}

fn try_open(model: &Model, vf: &VfPort, o: IxgbevfOptions) -> Result<Vf, Error> {
    model.ixgbevf(vf, o)
}

/// The VF's registers, for checking what the driver programmed.
fn regs(vf: &VfPort) -> VfRegisters {
    // SAFETY: the tests only read registers through it (reads do not move the device's
    // DMA), or write ones that cannot point the device at memory in use.
    unsafe { vf.registers() }
}

fn open(model: &Model, vf: &VfPort, o: IxgbevfOptions) -> Vf {
    try_open(model, vf, o).expect("ixgbevf init against the model")
}

/// A model with one port and one VF on it.
fn setup() -> (Model, Port, VfPort) {
    let model = Model::new();
    let pf = model.add_port();
    let vf = model.add_vf(&pf);
    (model, pf, vf)
}

fn ids(model: &Model, vf: &VfPort) -> Vec<u32> {
    model.pf_messages(vf).iter().map(|w| w & 0xffff).collect()
}

/// The mailbox messages of a VF initialisation with API 1.4, in order.
const INIT_MESSAGES: [u32; 6] = [
    RESET,
    API_NEGOTIATE,
    GET_QUEUES,
    SET_LPE,
    UPDATE_XCAST_MODE,
    SET_MAC_ADDR,
];

#[test]
fn init_runs_the_reset_handshake_and_takes_the_assigned_mac() {
    let _deadline = common::deadline();
    let (model, _pf, vf) = setup();
    // A link timeout longer than the test's deadline: init must not wait it out.
    let dev = open(
        &model,
        &vf,
        options().link_timeout(Duration::from_secs(3600)),
    );
    assert_eq!(dev.driver_name(), "ixgbevf");
    assert_eq!(dev.pci_addr(), "model:vf0");
    // The PF's assignment, delivered in the RESET reply in Linux byte order.
    assert_eq!(dev.mac_addr(), model.vf_mac(&vf));
    assert_eq!(dev.permanent_mac(), [0x02, 0x10, 0xed, 0, 0, 0]);
    assert_eq!(dev.api_version(), ApiVersion::V1_4);
    assert_eq!(ids(&model, &vf), INIT_MESSAGES);
    // API 1.4 (wire number 5) agreed, multicast mode.
    assert_eq!(model.vf_negotiated(&vf), (5, 1));
    assert!(model.vf_clear_to_send(&vf));
    assert_eq!(dev.link_speed(), 10_000);
    assert!(!dev.promisc());
    assert_eq!((dev.num_rx_queues(), dev.num_tx_queues()), (1, 1));
    // The queue is enabled, its tail handed all descriptors but one to the device.
    assert_eq!(
        regs(&vf).read32(0x01028) & (1 << 25),
        1 << 25,
        "VFRXDCTL.ENABLE"
    );
    assert_eq!(regs(&vf).read32(0x01018), 511, "VFRDT");
    assert_eq!(
        regs(&vf).read32(0x02028) & (1 << 25),
        1 << 25,
        "VFTXDCTL.ENABLE"
    );
}

#[test]
fn a_vf_and_its_port_take_one_driver_at_a_time() {
    let (model, pf, vf) = setup();
    let dev = open(&model, &vf, options());
    let err = try_open(&model, &vf, options()).err().expect("VF busy");
    assert!(matches!(err, Error::Device { .. }), "{err}");
    // The PF model drives a port with VFs: no ixgbe driver beside it.
    let pf_options = IxgbeOptions::default().link_timeout(Duration::from_secs(2));
    let err = model.ixgbe(&pf, &pf_options).err().expect("port busy");
    assert!(matches!(err, Error::Device { .. }), "{err}");
    drop(dev);
    let dev = open(&model, &vf, options());
    assert_eq!(dev.mac_addr(), model.vf_mac(&vf));

    // A VF added under a running ixgbe driver takes no driver while that one runs.
    let other = model.add_port();
    let pf_dev = model.ixgbe(&other, &pf_options).unwrap();
    let late = model.add_vf(&other);
    let err = try_open(&model, &late, options()).err().expect("port busy");
    assert!(matches!(err, Error::Device { .. }), "{err}");
    drop(pf_dev);
}

#[test]
fn packets_the_vf_cannot_reach_are_dropped_and_counted() {
    let (model, pf, vf) = setup();
    let mut dev = open(&model, &vf, options());
    let heap = Mempool::new(&HeapDma, 8, 2048).unwrap();
    let own = Mempool::new(&model.dma(), 8, 2048).unwrap();
    let f = frame([0xff; 6], 1, 60);
    let mut out = packets(&heap, std::slice::from_ref(&f));
    out.extend(packets(&own, std::slice::from_ref(&f)));
    assert_eq!(dev.tx_batch(0, &mut out), 2, "both taken from the buffer");
    assert_eq!(heap.free_count(), 8, "back in its pool");
    assert_eq!(
        model.wire_stats(&pf).tx_frames,
        1,
        "only the reachable one sent"
    );
    assert_eq!(dev.stats().tx_dropped, 1);
}

#[test]
fn api_negotiation_falls_back_to_what_the_pf_speaks() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    model.set_pf_api_versions(&pf, &[0, 2]); // 1.0 and 1.1
    let mut dev = open(&model, &vf, options());
    assert_eq!(dev.api_version(), ApiVersion::V1_1);
    let m = ids(&model, &vf);
    assert_eq!(m.iter().filter(|&&i| i == API_NEGOTIATE).count(), 4);
    assert!(!m.contains(&UPDATE_XCAST_MODE), "no xcast before API 1.2");
    let err = dev.set_promisc(true).unwrap_err().to_string();
    assert!(err.contains("API 1.3") && err.contains("1.1"), "{err}");

    // API 1.0 only: no GET_QUEUES, one queue each.
    let (model, pf, vf) = setup();
    model.set_pf_api_versions(&pf, &[0]);
    let dev = open(&model, &vf, options());
    assert_eq!(dev.api_version(), ApiVersion::V1_0);
    assert!(!ids(&model, &vf).contains(&GET_QUEUES));
    let (model, pf, vf) = setup();
    model.set_pf_api_versions(&pf, &[0]);
    let err = try_open(&model, &vf, options().queues(1, 2))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("gives this VF 1 rx and 1 tx"), "{err}");
}

#[test]
fn api_nack_for_every_version_is_a_clear_error() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    model.set_pf_api_versions(&pf, &[1]); // only Solaris' 2.0
    let err = try_open(&model, &vf, options()).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, Error::Device { .. }), "{msg}");
    assert!(
        msg.contains("refused every mailbox API version") && msg.contains("1.4"),
        "{msg}"
    );
    assert_eq!(
        ids(&model, &vf)
            .iter()
            .filter(|&&i| i == API_NEGOTIATE)
            .count(),
        5
    );
}

#[test]
fn a_mailbox_that_never_answers_fails_within_the_timeout() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    model.set_pf_silent(&pf, true);
    let start = Instant::now();
    let err = try_open(
        &model,
        &vf,
        options().mailbox_timeout(Duration::from_millis(100)),
    )
    .err()
    .unwrap();
    let took = start.elapsed();
    let msg = err.to_string();
    assert!(
        took >= Duration::from_millis(100),
        "gave up early: {took:?}"
    );
    assert!(
        msg.contains("did not answer the mailbox within 100 ms") && msg.contains("0x1"),
        "{msg}"
    );
    // Nothing reached the PF, and the VF's queues were never enabled.
    assert!(model.pf_messages(&vf).is_empty());
    assert_eq!(regs(&vf).read32(0x01028) & (1 << 25), 0);
}

#[test]
fn queue_counts_come_from_the_pf() {
    let _deadline = common::deadline();
    let (model, _pf, vf) = setup();
    let mut dev = open(&model, &vf, options().queues(1, 2));
    assert_eq!((dev.num_rx_queues(), dev.num_tx_queues()), (1, 2));
    let mac = dev.mac_addr();
    assert!(model.inject_to_vf(&vf, &frame(mac, 7, 60)));
    let mut q = VecDeque::new();
    assert_eq!(dev.rx_batch(0, &mut q, 8), 1);
    assert_eq!(seq_of(&q[0]), 7);
    // VF 0's queue 1 is the port's queue 1; a second VF's queues follow.
    assert_eq!(model.vf_port_queue(&vf, 1), 1);

    let (model, _pf, vf) = setup();
    let err = try_open(&model, &vf, options().queues(1, 3))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("gives this VF 2 rx and 2 tx"), "{err}");
    // Without RSS every frame of the VF reaches its queue 0: a second rx queue is refused.
    let (model, _pf, vf) = setup();
    let err = try_open(&model, &vf, options().queues(2, 1)).err().unwrap();
    assert!(matches!(err, ixy::Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("one queue"), "{err}");
}

/// Issue 15: GET_QUEUES words 3 and 4. With traffic classes the PF gives one transmit
/// queue, its default one, and the VF transmits there (logged at info); a VF asking for two tx
/// queues is refused.
#[test]
fn with_traffic_classes_the_vf_transmits_on_the_default_queue() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    model.set_vf_traffic_classes(&vf, 2, 1);
    let err = try_open(&model, &vf, options().queues(1, 2)).err().unwrap();
    assert!(
        err.to_string().contains("gives this VF 2 rx and 1 tx"),
        "{err}"
    );
    let mut dev = open(&model, &vf, options());
    let pool = Mempool::new(&model.dma(), 64, 2048).unwrap();
    let mut out = packets(&pool, &[frame([0xff; 6], 1, 60)]);
    assert_eq!(dev.tx_batch(0, &mut out), 1);
    // VFTXDCTL(1) enabled, VFTXDCTL(0) not; the frame left the port.
    let txdctl = |q: usize| regs(&vf).read32(0x02028 + 0x40 * q) & 1 << 25;
    assert_eq!((txdctl(0), txdctl(1)), (0, 1 << 25));
    assert_eq!(model.wire_stats(&pf).tx_frames, 1);
}

#[test]
fn rx_and_tx_through_the_vf() {
    let _deadline = common::deadline();
    let model = Model::new();
    let a = model.add_port();
    let b = model.add_port();
    model.connect(&a, &b);
    let vf = model.add_vf(&a);
    let mut dev = open(&model, &vf, options());
    let mut peer = model
        .ixgbe(
            &b,
            &IxgbeOptions::default().link_timeout(Duration::from_secs(2)),
        )
        .unwrap();
    let pool = Mempool::new(&model.dma(), 2048, 2048).unwrap();
    let vf_mac = dev.mac_addr();
    let peer_mac = peer.mac_addr();
    let mut q = VecDeque::with_capacity(64);
    let mut total = 0u32;
    for round in 0..40u32 {
        // VF -> peer.
        let frames: Vec<_> = (0..32)
            .map(|i| frame(peer_mac, round * 32 + i, 60 + i as usize))
            .collect();
        let mut out = packets(&pool, &frames);
        assert_eq!(dev.tx_batch(0, &mut out), 32);
        common::receive(&mut peer, 0, &mut q, 32);
        for (i, p) in q.drain(..).enumerate() {
            assert_eq!(seq_of(&p), round * 32 + i as u32);
            assert_eq!(p.len(), 60 + i);
        }
        // Peer -> VF (the port's RAR entry of the VF accepts its MAC).
        let frames: Vec<_> = (0..32)
            .map(|i| frame(vf_mac, 10_000 + round * 32 + i, 100))
            .collect();
        let mut out = packets(&pool, &frames);
        assert_eq!(peer.tx_batch(0, &mut out), 32);
        common::receive(&mut dev, 0, &mut q, 32);
        for (i, p) in q.drain(..).enumerate() {
            assert_eq!(seq_of(&p), 10_000 + round * 32 + i as u32);
            assert_eq!(&p[..6], &vf_mac);
        }
        total += 32;
    }
    // Frames to another MAC do not reach the VF (no promiscuous mode).
    assert!(!model.inject(&a, &frame([0x02, 9, 9, 9, 9, 9], 0, 60)));
    let s = dev.stats();
    assert_eq!(s.tx_packets, u64::from(total));
    assert_eq!(s.rx_packets, u64::from(total));
    assert_eq!(s.rx_bytes, u64::from(total) * 100);
    let w = model.wire_stats(&a);
    assert_eq!((s.tx_packets, s.tx_bytes), (w.tx_frames, w.tx_bytes));
    drop(dev);
    drop(peer);
    assert_eq!(pool.free_count(), 2048, "every buffer back in its pool");
}

#[test]
fn pf_reset_during_traffic_then_recovery() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    let mut dev = open(&model, &vf, options());
    let mac = dev.mac_addr();
    model.attach_source(&pf, frame(mac, 1, 64), None);
    model.set_capture(&pf, true);
    // Packets the application holds across the reset.
    let own = Mempool::new(&model.dma(), 64, 2048).unwrap();
    let mut held = packets(&own, &[frame([0xff; 6], 42, 80), frame([0xff; 6], 43, 90)]);

    let mut buf = VecDeque::with_capacity(64);
    let mut forwarded = 0usize;
    for _ in 0..20 {
        let n = dev.rx_batch(0, &mut buf, 32);
        assert!(n > 0);
        forwarded += dev.tx_batch(0, &mut buf);
        buf.clear();
    }
    assert_eq!(model.take_transmitted(&pf).len(), forwarded);

    model.pf_reset(&pf);
    assert_eq!(
        dev.link_speed(),
        0,
        "link reported down while the PF resets"
    );
    assert!(!model.vf_clear_to_send(&vf));
    // Traffic stops; the driver notices on idle polls and initialises again.
    let mut after = 0usize;
    for polls in 0.. {
        assert!(
            polls < common::MAX_ROUNDS,
            "no recovery after {polls} polls"
        );
        if after >= 1000 {
            break;
        }
        let n = dev.rx_batch(0, &mut buf, 32);
        if dev.pf_resets() == 1 {
            after += n;
        }
        dev.tx_batch(0, &mut buf);
        buf.clear();
    }
    assert_eq!(dev.pf_resets(), 1);
    assert!(model.vf_clear_to_send(&vf));
    assert_eq!(dev.link_speed(), 10_000);
    assert_eq!(dev.mac_addr(), mac);
    // The held packets are untouched, and can still be sent.
    assert_eq!(held.len(), 2);
    assert_eq!((seq_of(&held[0]), held[1].len()), (42, 90));
    model.take_transmitted(&pf);
    assert_eq!(dev.tx_batch(0, &mut held), 2);
    let sent = model.take_transmitted(&pf);
    assert_eq!(sent.len(), 2);
    assert_eq!(seq_of(&sent[1]), 43);
    // The handshake ran twice, in full.
    let m = ids(&model, &vf);
    assert_eq!(m.iter().filter(|&&i| i == RESET).count(), 2);
    assert_eq!(m.last(), Some(&SET_MAC_ADDR));
    model.detach_sources(&pf);
    let pool = dev.rx_pool(0).unwrap().clone();
    drop(dev);
    assert_eq!(
        pool.free_count(),
        pool.capacity(),
        "rx buffers all returned"
    );
    assert_eq!(own.free_count(), 64);
}

#[test]
fn explicit_check_reports_a_pf_reset_once() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    let mut dev = open(&model, &vf, options());
    assert!(!dev.check_pf_reset().unwrap());
    model.pf_reset(&pf);
    assert!(dev.check_pf_reset().unwrap());
    assert!(!dev.check_pf_reset().unwrap());
    assert_eq!(dev.pf_resets(), 1);
    // A PF that stays silent after its reset: the re-initialisation fails clearly, and is
    // retried once the PF answers.
    model.pf_reset(&pf);
    model.set_pf_silent(&pf, true);
    let err = dev.check_pf_reset().unwrap_err().to_string();
    assert!(err.contains("did not answer"), "{err}");
    assert_eq!(dev.link_speed(), 0);
    model.set_pf_silent(&pf, false);
    assert!(dev.check_pf_reset().unwrap());
    assert_eq!(dev.pf_resets(), 2);
}

#[test]
fn a_pf_silent_after_its_reset_does_not_hang_the_packet_path() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    let mut dev = open(&model, &vf, options());
    model.pf_reset(&pf);
    model.set_pf_silent(&pf, true);
    let mut buf = VecDeque::new();
    let start = Instant::now();
    for _ in 0..1000 {
        assert_eq!(dev.rx_batch(0, &mut buf, 32), 0);
    }
    // One attempt (one 200 ms mailbox timeout), then at most one retry per second: a
    // driver retrying on every poll would spend 1000 timeouts (200 s) here. The retry
    // pacing is wall-clock by design, so the bound is loose enough for any machine.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(dev.pf_resets(), 0);
    assert_eq!(dev.link_speed(), 0);
    model.set_pf_silent(&pf, false);
    let mac = dev.mac_addr();
    for polls in 0.. {
        assert!(polls < 10_000, "no recovery after {polls} polls 1 ms apart");
        if dev.pf_resets() != 0 {
            break;
        }
        dev.rx_batch(0, &mut buf, 32);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(model.inject(&pf, &frame(mac, 9, 60)));
    assert_eq!(dev.rx_batch(0, &mut buf, 32), 1);
}

#[test]
fn rolling_counters_wrap_and_stats_stay_exact() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    let mut dev = open(&model, &vf, options());
    model.preset_vf_counters(
        &vf,
        [0xffff_fff0, 0xffff_fff8, 0xf_ffff_ff00, 0xf_ffff_fff0],
    );
    dev.reset_stats();
    let mac = dev.mac_addr();
    let pool = Mempool::new(&model.dma(), 512, 2048).unwrap();
    let mut q = VecDeque::new();
    for i in 0..100 {
        assert!(model.inject(&pf, &frame(mac, i, 60)));
        assert_eq!(dev.rx_batch(0, &mut q, 8), 1);
        q.clear();
    }
    let frames: Vec<_> = (0..100).map(|i| frame([0xff; 6], i, 70)).collect();
    let mut out = packets(&pool, &frames);
    assert_eq!(dev.tx_batch(0, &mut out), 100);
    // The registers wrapped...
    assert!(regs(&vf).read32(0x0101c) < 100, "VFGPRC wrapped");
    assert!(regs(&vf).read32(0x0201c) < 100, "VFGPTC wrapped");
    assert_eq!(regs(&vf).read32(0x01024), 0, "VFGORC wrapped at 36 bits");
    // ... and are not cleared by reading them.
    assert_eq!(regs(&vf).read32(0x0101c), regs(&vf).read32(0x0101c));
    let s = dev.stats();
    assert_eq!((s.rx_packets, s.rx_bytes), (100, 6000));
    assert_eq!((s.tx_packets, s.tx_bytes), (100, 7000));
    assert_eq!(s.rx_dropped, 0);
    // The VF has no per-queue counters: none are reported.
    assert!(s.rx_queues.is_empty() && s.tx_queues.is_empty());
    dev.reset_stats();
    assert_eq!(dev.stats(), Default::default());
}

#[test]
fn promiscuous_mode_only_where_the_pf_allows_it() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    let mut dev = open(&model, &vf, options());
    // An untrusted VF is granted multicast only (by any PF).
    let err = dev.set_promisc(true).unwrap_err().to_string();
    assert!(
        err.contains("granted multicast mode") && err.contains("trust"),
        "{err}"
    );
    assert!(!dev.promisc());
    // A trusted VF on an 82599 PF: refused.
    model.set_vf_trusted(&vf, true);
    let err = dev.set_promisc(true).unwrap_err().to_string();
    assert!(err.contains("refused promiscuous mode"), "{err}");
    // On an X540/X550 PF (promiscuous itself): granted; frames to any MAC arrive.
    model.set_pf_allows_vf_promisc(&pf, true);
    dev.set_promisc(true).unwrap();
    assert!(dev.promisc());
    assert_eq!(model.vf_negotiated(&vf).1, 3);
    assert!(model.inject(&pf, &frame([0x02, 7, 7, 7, 7, 7], 5, 60)));
    dev.set_promisc(false).unwrap();
    assert!(!model.inject(&pf, &frame([0x02, 7, 7, 7, 7, 7], 6, 60)));
    // Asked for at start by an untrusted VF: init fails with the reason.
    let (model, _pf, vf) = setup();
    let err = try_open(&model, &vf, options().promisc(true))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("granted multicast mode"), "{err}");
}

#[test]
fn mac_changes_need_a_trusted_vf() {
    let _deadline = common::deadline();
    let (model, pf, vf) = setup();
    let mut dev = open(&model, &vf, options());
    let new = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let err = dev.set_mac_addr(new).unwrap_err().to_string();
    assert!(
        err.contains("refused MAC address 02:aa:bb:cc:dd:ee"),
        "{err}"
    );
    let err = dev.set_mac_addr([0x01, 0, 0, 0, 0, 1]).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { .. }),
        "multicast: {err}"
    );
    assert!(err.to_string().contains("01:00:00:00:00:01"), "{err}");
    model.set_vf_trusted(&vf, true);
    dev.set_mac_addr(new).unwrap();
    assert_eq!(dev.mac_addr(), new);
    assert!(model.inject(&pf, &frame(new, 1, 60)));
    assert!(!model.inject(&pf, &frame(dev.permanent_mac(), 2, 60)));
    let mut q = VecDeque::new();
    assert_eq!(dev.rx_batch(0, &mut q, 4), 1);
}

#[test]
#[should_panic(expected = "rule violated: mailbox buffer written without owning it")]
fn the_model_catches_a_mailbox_write_without_the_lock() {
    let _deadline = common::deadline();
    let (_model, _pf, vf) = setup();
    regs(&vf).write32(0x00200, 0x01);
}

#[test]
#[should_panic(expected = "rule violated: VF queue beyond its pool enabled")]
fn the_model_catches_a_queue_outside_the_pool() {
    let _deadline = common::deadline();
    let (_model, _pf, vf) = setup();
    // VFRXDCTL(2): the PF gives each VF two queues.
    regs(&vf).write32(0x01000 + 2 * 0x40 + 0x28, 1 << 25);
}

#[test]
#[should_panic(expected = "rule violated: register access outside BAR0")]
fn the_model_catches_an_access_outside_the_vf_bar() {
    let _deadline = common::deadline();
    let (_model, _pf, vf) = setup();
    regs(&vf).read32(0x4000);
}

#[test]
fn device_ids_select_the_ixgbevf_driver() {
    let listed: Vec<u16> = IXGBEVF_DEVICE_IDS.iter().map(|&(d, _)| d).collect();
    assert_eq!(listed, [0x10ed, 0x1515, 0x1565, 0x15a8, 0x15c5]);
    for &(device, name) in IXGBEVF_DEVICE_IDS {
        assert_eq!(
            driver_for(&device_id(0x8086, device)),
            Some(DriverKind::Ixgbevf),
            "{name}"
        );
    }
    // The Hyper-V VFs use another mailbox, and another vendor's 0x10ed is not a VF.
    assert_eq!(driver_for(&device_id(0x8086, 0x152e)), None);
    assert_eq!(driver_for(&device_id(0x10ec, 0x10ed)), None);
}

/// A VF the host gave no MAC: the PF answers RESET with NACK (Linux `ixgbe_vf_reset_msg`)
/// and, like Linux's ixgbevf, the driver goes on with a random locally administered
/// address, which it registers with SET_MAC_ADDR.
#[test]
fn a_nacked_reset_without_a_mac_gets_a_random_local_address() {
    let _deadline = common::deadline();
    let (model, _pf, vf) = setup();
    model.set_vf_mac_unassigned(&vf);
    let mut dev = open(&model, &vf, options());
    let mac = dev.mac_addr();
    assert_eq!(
        mac[0] & 0x03,
        0x02,
        "unicast, locally administered: {mac:02x?}"
    );
    assert_ne!(mac, [0x02, 0, 0, 0, 0, 0]);
    assert_eq!(dev.permanent_mac(), mac);
    assert_eq!(ids(&model, &vf), INIT_MESSAGES);
    // (The RESET reply carried no address: an ACK with a zero MAC would have been an
    // error, so the driver took the NACK path.)
    // The PF took the address: frames to it arrive.
    assert_eq!(model.vf_mac(&vf), mac);
    assert!(model.inject_to_vf(&vf, &frame(mac, 9, 60)));
    let mut q = VecDeque::new();
    assert_eq!(dev.rx_batch(0, &mut q, 8), 1);
    assert_eq!(seq_of(&q[0]), 9);
}

#[test]
fn the_pf_answers_again_only_after_the_vf_acknowledged_its_last_message() {
    // VFMAILBOX (8.3.5) and VFMBMEM, reply bits of word 0 (Linux mbx.h).
    const VFMAILBOX: usize = 0x2fc;
    const VFMBMEM: usize = 0x200;
    const REQ: u32 = 1 << 0;
    const ACK: u32 = 1 << 1;
    const VFU: u32 = 1 << 2;
    const PFSTS: u32 = 1 << 4;
    const PFACK: u32 = 1 << 5;
    const MSG_ACK: u32 = 0x8000_0000;
    const MSG_CTS: u32 = 0x2000_0000;
    let _deadline = common::deadline();
    let (_model, _pf, vf) = setup();
    let vf = regs(&vf); // the mailbox only: no ring register is written
    let post = |words: &[u32]| {
        vf.write32(VFMAILBOX, VFU);
        for (i, &w) in words.iter().enumerate() {
            vf.write32(VFMBMEM + 4 * i, w);
        }
        vf.write32(VFMAILBOX, REQ);
    };
    post(&[RESET]);
    assert_eq!(vf.read32(VFMAILBOX) & (PFSTS | PFACK), PFSTS | PFACK);
    assert_eq!(vf.read32(VFMBMEM), RESET | MSG_ACK);
    // The reply is not acknowledged: the PF takes the next request but holds its answer
    // back, as Linux's PF waits for the ACK of every message it posts (ixgbe_mbx.c).
    post(&[API_NEGOTIATE, 5]);
    assert_eq!(vf.read32(VFMAILBOX) & (PFSTS | PFACK), PFACK);
    assert_eq!(vf.read32(VFMBMEM), API_NEGOTIATE, "the request, unanswered");
    // The ACK releases it.
    vf.write32(VFMAILBOX, ACK);
    assert_eq!(vf.read32(VFMAILBOX) & (PFSTS | PFACK), PFSTS);
    assert_eq!(vf.read32(VFMBMEM), API_NEGOTIATE | MSG_ACK | MSG_CTS);
}
