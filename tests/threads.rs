//! Queues on threads against the 82599 model: an ixgbe device split into per-queue
//! handles, each on its own thread, packets crossing threads, and every pool complete
//! (its memory freed) at the end.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Barrier, mpsc};
use std::time::Duration;

use ixy::ixgbe::{IxgbeDevice, IxgbeOptions};
use ixy::model::{Completion, Model, Port, PortRegisters, TestDevice, testbed};
use ixy::queues::{RxQueue, TxQueue};
use ixy::{Error, IxyDevice, Packet};

type Dev = IxgbeDevice<PortRegisters>;

fn open(model: &Model, port: &Port, queues: u16) -> Dev {
    let mut options = IxgbeOptions::default()
        .queues(queues, queues)
        .link_timeout(Duration::from_secs(2));
    // A small pool, so that each receive queue takes back its returned buffers often.
    options.pool_entries = 1024;
    model
        .ixgbe(port, &options)
        .expect("ixgbe init against the model")
}

/// Source ports of `n` flows that `port` steers to receive queue `queue`.
fn flows_to(model: &Model, port: &Port, queue: usize, n: usize) -> Vec<u16> {
    (1024..u16::MAX)
        .filter(|&sport| {
            model.rx_queue_of(port, &common::udp_frame([0xff; 6], sport, 0, 60)) == queue
        })
        .take(n)
        .collect()
}

const ROUNDS: u32 = 40;
/// Frames per receive queue and round (fewer than a ring holds).
const PER_ROUND: u32 = 100;

/// One worker: receives `PER_ROUND` frames per round on `rx` and hands them to the other
/// worker, and transmits on `tx` what the other one received.
fn worker(
    mut rx: RxQueue,
    mut tx: TxQueue,
    to_other: mpsc::Sender<VecDeque<Packet>>,
    from_other: mpsc::Receiver<VecDeque<Packet>>,
    rounds: (&Barrier, &Barrier),
) {
    for _ in 0..ROUNDS {
        rounds.0.wait();
        let (mut got, mut sent) = (0, 0);
        while got < PER_ROUND as usize || sent < PER_ROUND as usize {
            let mut buf = VecDeque::new();
            got += rx.rx_batch(&mut buf, 32);
            if !buf.is_empty() {
                to_other.send(buf).unwrap();
            }
            while let Ok(mut batch) = from_other.try_recv() {
                while !batch.is_empty() {
                    sent += tx.tx_batch(&mut batch);
                }
            }
            std::thread::yield_now();
        }
        assert_eq!((got, sent), (PER_ROUND as usize, PER_ROUND as usize));
        rounds.1.wait();
    }
}

#[test]
fn split_queues_forward_on_their_threads_packets_cross_threads_and_every_buffer_comes_home() {
    let _deadline = common::deadline();
    let model = Model::new();
    let (a, b) = (model.add_port(), model.add_port());
    model.set_capture(&b, true);
    let (mut dev_a, mut dev_b) = (open(&model, &a, 2), open(&model, &b, 2));
    let flows = [flows_to(&model, &a, 0, 4), flows_to(&model, &a, 1, 4)];
    let (qa, qb) = (dev_a.split().unwrap(), dev_b.split().unwrap());
    assert_eq!((qa.rx.len(), qb.tx.len()), (2, 2));
    assert_eq!((dev_a.num_rx_queues(), dev_a.num_tx_queues()), (0, 0));
    let (start, end) = (Barrier::new(3), Barrier::new(3));
    let (to_1, from_0) = mpsc::channel();
    let (to_0, from_1) = mpsc::channel();
    std::thread::scope(|s| {
        let mut tx_b = qb.tx.into_iter();
        let mut channels = [(to_1, from_1), (to_0, from_0)].into_iter();
        for rx in qa.rx {
            let (to_other, from_other) = channels.next().unwrap();
            // Thread 0 sends what thread 1 received on tx queue 0 of b, and the reverse.
            let tx = tx_b.next().unwrap();
            let rounds = (&start, &end);
            s.spawn(move || worker(rx, tx, to_other, from_other, rounds));
        }
        for round in 0..ROUNDS {
            for (q, sports) in flows.iter().enumerate() {
                for i in 0..PER_ROUND {
                    let sport = sports[i as usize % sports.len()];
                    let seq = ((q as u32) << 24) | (round * PER_ROUND + i);
                    assert!(model.inject(&a, &common::udp_frame([0xff; 6], sport, seq, 60)));
                }
            }
            start.wait();
            end.wait();
        }
    });
    // Every frame forwarded once, each flow in order.
    let out = model.take_transmitted(&b);
    assert_eq!(out.len(), 2 * (ROUNDS * PER_ROUND) as usize);
    let mut last_of_flow: HashMap<u16, u32> = HashMap::new();
    for f in &out {
        let (sport, seq) = (u16::from_be_bytes([f[34], f[35]]), common::udp_seq(f));
        if let Some(last) = last_of_flow.insert(sport, seq) {
            assert!(seq > last, "flow {sport}: {seq} after {last}");
        }
    }
    assert_eq!(last_of_flow.len(), 8, "every flow arrived");
    // The control handles still count (the model's wire agrees).
    assert_eq!(dev_a.stats().rx_packets, 2 * (ROUNDS * PER_ROUND) as u64);
    assert_eq!(dev_b.stats().tx_packets, 2 * (ROUNDS * PER_ROUND) as u64);
    // Every buffer came back to its pool: with the devices gone, each pool was complete
    // and freed its memory, and so did every ring.
    drop((dev_a, dev_b, qa.tx, qb.rx));
    assert_eq!(model.dma().live_regions(), 0);
}

#[test]
fn split_queues_and_packets_are_send() {
    fn send<T: Send>() {}
    send::<RxQueue>();
    send::<TxQueue>();
    send::<Packet>();
}

#[test]
fn a_device_whose_pool_has_other_handles_is_not_split_and_keeps_working() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, 2);
    let clone = dev.rx_pool(1).unwrap().clone();
    let err = dev.split().err().unwrap();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("receive queue 1 has other handles"),
        "{err}"
    );
    assert_eq!(dev.num_rx_queues(), 2, "nothing moved");
    drop(clone);
    let queues = dev.split().unwrap();
    let ids = |rx: &[RxQueue], tx: &[TxQueue]| {
        let rx: Vec<u16> = rx.iter().map(RxQueue::id).collect();
        (rx, tx.iter().map(TxQueue::id).collect::<Vec<u16>>())
    };
    assert_eq!(ids(&queues.rx, &queues.tx), (vec![0, 1], vec![0, 1]));
}

#[test]
fn drivers_that_cannot_split_say_so() {
    let _deadline = common::deadline();
    let mut bed = testbed(TestDevice::Virtio).unwrap();
    let err = bed.devices[0].split().err().unwrap();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("driver virtio does not support splitting into queues"),
        "{err}"
    );
    assert_eq!(bed.devices[0].num_rx_queues(), 1);
}

#[test]
fn queues_outliving_their_device_move_nothing_and_free_their_memory_when_dropped() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    model.connect(&port, &port);
    let mut dev = open(&model, &port, 1);
    let mut queues = dev.split().unwrap();
    let (rx, tx) = (&mut queues.rx[0], &mut queues.tx[0]);
    let mut buf = VecDeque::new();
    assert!(model.inject(&port, &common::udp_frame([0xff; 6], 1024, 7, 60)));
    assert_eq!(rx.rx_batch(&mut buf, 32), 1);
    assert_eq!(
        tx.tx_batch(&mut buf),
        1,
        "sent, and looped back into the rx ring"
    );
    let ((), logged) = common::warnings(|| drop(dev));
    assert_eq!(logged, Vec::<String>::new());
    // The device was reset: the queues are stopped; the frame completed before is there.
    assert!(!model.inject(&port, &common::udp_frame([0xff; 6], 1024, 8, 60)));
    assert_eq!(rx.rx_batch(&mut buf, 32), 1);
    assert_eq!(common::udp_seq(&buf[0]), 7);
    assert_eq!(rx.rx_batch(&mut buf, 32), 0);
    let ((), logged) = common::warnings(|| drop(queues));
    assert_eq!(logged, Vec::<String>::new());
    assert_eq!(model.dma().live_regions(), 1, "the packet keeps its pool");
    drop(buf);
    assert_eq!(model.dma().live_regions(), 0);
}

#[test]
fn a_queue_the_device_does_not_stop_is_leaked_with_an_error_not_freed() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, 1);
    let queues = dev.split().unwrap();
    model.hold_back(&port, Completion::RxQueueDisable, true);
    model.hold_back(&port, Completion::TxQueueDisable, true);
    let live = model.dma().live_regions();
    let ((), logged) = common::warnings(|| drop(queues));
    assert_eq!(logged.len(), 2, "{logged:?}");
    for (line, kind) in logged.iter().zip(["receive", "transmit"]) {
        assert!(
            line.starts_with("ERROR ")
                && line.contains(&format!("{kind} queue 0 to disable"))
                && line.ends_with("; leaking its ring and buffers"),
            "{line}"
        );
    }
    // The device may still write the rings and buffers: none of their memory was freed.
    assert_eq!(model.dma().live_regions(), live);
}
