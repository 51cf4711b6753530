//! ixgbe receive interrupts against the 82599 model (feature `model`): the registers the
//! driver programs (82599 datasheet 4.6.3.1, 7.3, 8.2.3.5) for one and four queues, the
//! per-queue vector masked while polling and unmasked only while the queue sleeps, and
//! nothing programmed with interrupts off.
//!
//! The model has no MSI-X: `IxgbeDevice::with_registers` programs the registers only, and
//! these tests stand in for the device's message by signalling a queue's eventfd.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ixy::interrupts::IDLE_POLLS_BEFORE_SLEEP;
use ixy::ixgbe::{IxgbeDevice, IxgbeOptions, MAX_INTERRUPT_QUEUES, RX_EITR, regs};
use ixy::model::{Model, Port, PortRegisters};
use ixy::pci::IrqMode;
use ixy::registers::RegisterSpace;
use ixy::{IxyDevice, Packet};

type Dev = IxgbeDevice<PortRegisters>;

const GPIE_MSIX: u32 = regs::GPIE_MULTIPLE_MSIX | regs::GPIE_EIAME | regs::GPIE_PBA_SUPPORT;

// The extended interrupt registers read back here (datasheet 8.2.3.5).
const EIAC: usize = 0x00810;
const EIMS: usize = 0x00880;
const GPIE: usize = 0x00898;
/// EIAM_EX(0): the auto mask of MSI-X vectors 0-31.
const EIAM_EX0: usize = 0x00ad0;
/// EITR(n), n < 24.
fn eitr(n: usize) -> usize {
    0x00820 + 4 * n
}

fn options(rx_queues: u16, timeout_ms: i16) -> IxgbeOptions {
    IxgbeOptions::default()
        .link_timeout(Duration::from_secs(2))
        .queues(rx_queues, 1)
        .interrupt_timeout_ms(timeout_ms)
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

/// A broadcast frame of 60 bytes carrying `seq`.
fn frame(seq: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14] = seq;
    f
}

/// One `rx_batch` on `queue`: (frames received, whether the call slept, whether an
/// interrupt ended that sleep), from the queue's own sleep counts rather than the clock.
fn poll(dev: &mut Dev, queue: u16, buf: &mut VecDeque<Packet>) -> (usize, bool, bool) {
    let irq = |dev: &Dev| {
        let i = dev.queue_interrupt(queue).expect("queue with an interrupt");
        (i.sleeps(), i.wakeups())
    };
    let before = irq(dev);
    let n = dev.rx_batch(queue, buf, 32);
    let after = irq(dev);
    assert!(after.0 - before.0 <= 1, "one rx_batch sleeps at most once");
    (n, after.0 > before.0, after.1 > before.1)
}

/// The rx entry of `queue` in its IVAR register.
fn ivar_rx_entry(port: &Port, queue: usize) -> u32 {
    (regs(port).read32(regs::ivar(queue / 2)) >> regs::ivar_rx_shift(queue)) & 0xff
}

#[test]
fn one_queue_gets_vector_0_in_msix_mode() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let dev = open(&model, &port, &options(1, 10));
    assert_eq!(dev.irq_mode(), Some(IrqMode::MsiX));
    let irq = dev.queue_interrupt(0).expect("queue 0 has an interrupt");
    assert_eq!(irq.timeout(), Some(Duration::from_millis(10)));
    assert!(!irq.armed(), "not armed before the queue sleeps");
    assert!(irq.eventfd() >= 0);
    assert!(dev.queue_interrupt(1).is_none(), "only one rx queue");

    assert_eq!(regs(&port).read32(GPIE), GPIE_MSIX);
    // IVAR(0): rx queue 0 -> vector 0, valid; no tx entry, nothing for queue 1.
    assert_eq!(regs(&port).read32(regs::ivar(0)), regs::IVAR_VALID);
    assert_eq!(regs(&port).read32(regs::ivar(1)), 0);
    assert_eq!(
        RX_EITR, 0x8000_0028,
        "10 µs, the original ixy's rate; CNT_WDIS"
    );
    assert_eq!(regs(&port).read32(eitr(0)), RX_EITR);
    assert_eq!(regs(&port).read32(eitr(1)), 0);
    assert_eq!(regs(&port).read32(EIAC), 0b1);
    assert_eq!(regs(&port).read32(EIAM_EX0), 0b1);
    assert_eq!(
        regs(&port).read32(0x00890),
        0,
        "0x890 is the 82598's EIAM, not written"
    );
    // Masked until the queue goes to sleep.
    assert_eq!(regs(&port).read32(EIMS), 0);
}

#[test]
fn four_queues_get_one_vector_each() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let dev = open(&model, &port, &options(4, 10));
    assert_eq!(dev.num_rx_queues(), 4);
    let fds: Vec<_> = (0..4)
        .map(|q| {
            let irq = dev.queue_interrupt(q).expect("one interrupt per rx queue");
            assert_eq!(irq.timeout(), Some(Duration::from_millis(10)), "queue {q}");
            assert!(!irq.armed(), "queue {q}");
            irq.eventfd()
        })
        .collect();
    let mut distinct = fds.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "one eventfd per queue: {fds:?}");
    assert!(dev.queue_interrupt(4).is_none());
    assert_eq!(regs(&port).read32(GPIE), GPIE_MSIX);
    let v = regs::IVAR_VALID;
    // Rx entries at bits 7:0 and 23:16; tx entries (15:8, 31:24) stay invalid.
    assert_eq!(regs(&port).read32(regs::ivar(0)), v | (v | 1) << 16);
    assert_eq!(regs(&port).read32(regs::ivar(1)), (v | 2) | (v | 3) << 16);
    assert_eq!(regs(&port).read32(regs::ivar(2)), 0);
    for q in 0..4 {
        assert_eq!(ivar_rx_entry(&port, q), v | q as u32, "queue {q}");
        assert_eq!(regs(&port).read32(eitr(q)), RX_EITR, "EITR({q})");
    }
    assert_eq!(regs(&port).read32(eitr(4)), 0);
    assert_eq!(regs(&port).read32(EIAC), 0b1111);
    assert_eq!(regs(&port).read32(EIAM_EX0), 0b1111);
    assert_eq!(regs(&port).read32(EIMS), 0);
}

#[test]
fn msi_mode_routes_the_queue_without_msix_bits() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut o = options(1, 10);
    o.irq_mode = IrqMode::Msi;
    let dev = open(&model, &port, &o);
    assert_eq!(dev.irq_mode(), Some(IrqMode::Msi));
    let irq = dev.queue_interrupt(0).expect("queue 0 has an interrupt");
    assert_eq!(irq.timeout(), Some(Duration::from_millis(10)));
    assert!(!irq.armed());
    assert!(dev.queue_interrupt(1).is_none());
    assert_eq!(
        regs(&port).read32(GPIE),
        0,
        "no MSI-X mode, PBA or auto-mask"
    );
    assert_eq!(regs(&port).read32(EIAC), 0, "auto-clear is MSI-X only");
    assert_eq!(regs(&port).read32(EIAM_EX0), 0);
    assert_eq!(regs(&port).read32(regs::ivar(0)), regs::IVAR_VALID);
    assert_eq!(regs(&port).read32(eitr(0)), RX_EITR);
    assert_eq!(regs(&port).read32(EIMS), 0);
}

#[test]
fn with_interrupts_off_nothing_is_programmed_and_nothing_sleeps() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, &options(4, 0));
    assert_eq!(dev.irq_mode(), None);
    for q in 0..4 {
        assert!(dev.queue_interrupt(q).is_none(), "queue {q} polls");
    }
    for r in [GPIE, EIAC, EIAM_EX0, EIMS] {
        assert_eq!(regs(&port).read32(r), 0, "register {r:#x}");
    }
    for n in 0..32 {
        assert_eq!(regs(&port).read32(regs::ivar(n)), 0, "IVAR({n})");
    }
    for n in 0..8 {
        assert_eq!(regs(&port).read32(eitr(n)), 0, "EITR({n})");
    }
    // Far more empty polls than the sleep threshold: none unmasks anything, and with no
    // queue interrupt there is nothing to sleep on.
    let mut buf = VecDeque::new();
    for _ in 0..4 * IDLE_POLLS_BEFORE_SLEEP {
        assert_eq!(dev.rx_batch(1, &mut buf, 32), 0);
    }
    assert_eq!(regs(&port).read32(EIMS), 0);
}

#[test]
fn an_idle_queue_unmasks_its_vector_only_while_it_sleeps() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, &options(4, 20));
    let mut buf = VecDeque::new();
    // Below the threshold: plain polls, vector 2 stays masked.
    for _ in 1..IDLE_POLLS_BEFORE_SLEEP {
        assert_eq!(poll(&mut dev, 2, &mut buf), (0, false, false));
        assert_eq!(regs(&port).read32(EIMS), 0);
    }
    // The threshold: queue 2 unmasks vector 2 (only it) and sleeps until the timeout.
    let start = Instant::now();
    assert_eq!(poll(&mut dev, 2, &mut buf), (0, true, false), "timed out");
    assert!(
        start.elapsed() >= Duration::from_millis(15),
        "slept the timeout"
    );
    assert_eq!(regs(&port).read32(EIMS), 1 << 2);
    assert!(dev.queue_interrupt(2).unwrap().armed());
    // Still idle: it sleeps again and stays unmasked.
    assert_eq!(poll(&mut dev, 2, &mut buf), (0, true, false));
    assert_eq!(regs(&port).read32(EIMS), 1 << 2);

    // Traffic: the frames are taken, the vector masked again (EIMC), no more sleeping.
    for seq in 0..3 {
        assert!(model.inject(&port, &common::udp_frame_to_queue(&model, &port, 2, seq)));
    }
    assert_eq!(poll(&mut dev, 2, &mut buf), (3, false, false));
    assert_eq!(regs(&port).read32(EIMS), 0);
    assert!(!dev.queue_interrupt(2).unwrap().armed());
    assert_eq!(
        buf.iter().map(|p| common::udp_seq(p)).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "frames in order"
    );
    assert_eq!(poll(&mut dev, 2, &mut buf), (0, false, false), "busy again");
}

#[test]
fn the_vector_firing_wakes_the_sleeper_long_before_the_timeout() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let mut dev = open(&model, &port, &options(2, 10_000));
    let mut buf = VecDeque::new();
    for _ in 1..IDLE_POLLS_BEFORE_SLEEP {
        assert_eq!(dev.rx_batch(1, &mut buf, 32), 0);
    }
    // A frame arrives and the device raises vector 1 (the model has no MSI-X: the test
    // signals the queue's eventfd as VFIO's interrupt handler would).
    assert!(model.inject(&port, &common::udp_frame_to_queue(&model, &port, 1, 7)));
    dev.queue_interrupt(1).unwrap().signal(1).unwrap();
    let (n, slept, _) = poll(&mut dev, 1, &mut buf);
    assert_eq!(
        n, 1,
        "the frame that arrived before the sleep is not missed"
    );
    assert!(!slept, "a frame on the ring: no sleep");
    assert_eq!(regs(&port).read32(EIMS), 0, "traffic: masked again");

    // Idle again, no frame, but the vector fires: the wait ends early, nothing received,
    // the queue stays armed (unmasked).
    for _ in 1..IDLE_POLLS_BEFORE_SLEEP {
        assert_eq!(dev.rx_batch(1, &mut buf, 32), 0);
    }
    dev.queue_interrupt(1).unwrap().signal(1).unwrap();
    assert_eq!(
        poll(&mut dev, 1, &mut buf),
        (0, true, true),
        "slept, woken by the vector"
    );
    assert_eq!(regs(&port).read32(EIMS), 1 << 1);
}

#[test]
fn busy_queues_never_sleep_and_forward_everything() {
    let _deadline = common::deadline();
    let model = Model::new();
    let a = model.add_port();
    let mut dev = open(&model, &a, &options(1, 10_000));
    model.attach_source(&a, frame(1), Some(5000));
    let mut buf = VecDeque::new();
    let mut got = 0;
    while got < 5000 {
        let n = dev.rx_batch(0, &mut buf, 32);
        assert!(
            n > 0,
            "a source with frames left never leaves the ring empty"
        );
        got += n;
        buf.clear();
        assert_eq!(regs(&a).read32(EIMS), 0);
    }
    assert_eq!(got, 5000);
    assert_eq!(dev.queue_interrupt(0).unwrap().sleeps(), 0, "never slept");
}

#[test]
fn too_many_queues_for_the_vectors_are_refused() {
    let _deadline = common::deadline();
    let model = Model::new();
    let port = model.add_port();
    let err = model
        .ixgbe(&port, &options(MAX_INTERRUPT_QUEUES + 1, 10))
        .err()
        .expect("17 queues with interrupts");
    assert_eq!(MAX_INTERRUPT_QUEUES, 16);
    // RSS spreads over 16 queues at most, with or without interrupts: refused either way.
    assert!(matches!(err, ixy::Error::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("17 rx queues"), "{err}");
    let err = model
        .ixgbe(&port, &options(17, 0))
        .err()
        .expect("17 queues");
    assert!(err.to_string().contains("at most 16"), "{err}");
}

/// EIMS and the MSI-X vector masks EIMS_EX(0/1), read as the device holds them.
fn masks(port: &Port) -> [u32; 3] {
    const EIMS_EX: usize = 0x00aa0;
    let r = regs(port);
    [r.read32(EIMS), r.read32(EIMS_EX), r.read32(EIMS_EX + 4)]
}

#[test]
fn the_interrupt_mask_is_exactly_the_sleeping_queues_vector() {
    let _deadline = common::deadline();
    for mode in [IrqMode::MsiX, IrqMode::Msi] {
        let model = Model::new();
        let port = model.add_port();
        let mut o = options(4, 20);
        o.irq_mode = mode;
        let mut dev = open(&model, &port, &o);
        // Everything masked after init, other causes (bits 31:16) included.
        assert_eq!(masks(&port), [0, 0, 0], "{mode:?}");
        let mut buf = VecDeque::new();
        for q in [3u16, 0] {
            for _ in 0..IDLE_POLLS_BEFORE_SLEEP {
                assert_eq!(dev.rx_batch(q, &mut buf, 32), 0);
            }
            // Sleeping: exactly this queue's vector is unmasked, nothing else.
            assert_eq!(
                masks(&port),
                [1 << q, 1 << q, 0],
                "{mode:?} queue {q} sleeps"
            );
            let f = common::udp_frame_to_queue(&model, &port, q as usize, 1);
            assert!(model.inject(&port, &f));
            assert_eq!(dev.rx_batch(q, &mut buf, 32), 1);
            // Traffic: masked again.
            assert_eq!(masks(&port), [0, 0, 0], "{mode:?} queue {q} busy");
        }
    }
}
