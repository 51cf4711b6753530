//! Testing an application without hardware, as a user's crate would: only the public API
//! (`ixy::model::testbed`), for every kind of modelled device.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ixy::IxyDevice;
use ixy::model::{TestDevice, testbed};

const KINDS: [TestDevice; 3] = [
    TestDevice::Virtio,
    TestDevice::VirtioModern,
    TestDevice::Ixgbe,
];

/// A 60-byte broadcast frame carrying `tag`.
fn frame(tag: u8) -> Vec<u8> {
    let mut f = vec![tag; 60];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// The application under test: forwards everything `rx` receives to `tx`, touching byte 14.
fn forward(
    rx: &mut dyn IxyDevice,
    tx: &mut dyn IxyDevice,
    buf: &mut VecDeque<ixy::Packet>,
) -> usize {
    let n = rx.rx_batch(0, buf, 32);
    for p in buf.iter_mut() {
        p[14] = p[14].wrapping_add(1);
    }
    tx.tx_batch(0, buf);
    buf.clear();
    n
}

/// Runs the application on testbed `kind` from `rx` to `tx` until it has received `n`
/// packets (failing after 10 s); returns how many it received.
fn forward_n(kind: TestDevice, rx: &mut dyn IxyDevice, tx: &mut dyn IxyDevice, n: usize) -> usize {
    let mut buf = VecDeque::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut forwarded = 0;
    while forwarded < n {
        assert!(
            Instant::now() < deadline,
            "{kind:?}: forwarded {forwarded} of {n}"
        );
        forwarded += forward(rx, tx, &mut buf);
    }
    forwarded
}

#[test]
fn an_application_forwards_between_two_modelled_devices() {
    for kind in KINDS {
        let mut bed = testbed(kind).unwrap();
        let [a, b] = &mut bed.devices;
        assert!(a.link_up() && b.link_up(), "{kind:?}");
        bed.traffic.set_capture(1, true);
        for tag in 0..10 {
            assert!(bed.traffic.inject(0, &frame(tag)), "{kind:?}");
        }
        assert_eq!(forward_n(kind, a.as_mut(), b.as_mut(), 10), 10);
        let sent = bed.traffic.take_transmitted(1);
        let expected: Vec<_> = (0..10)
            .map(|t| {
                let mut f = frame(t);
                f[14] = t.wrapping_add(1);
                f
            })
            .collect();
        assert_eq!(sent, expected, "{kind:?}");
        // Device 1's wire leads back to device 0.
        let mut back = VecDeque::new();
        assert_eq!(a.rx_batch(0, &mut back, 32), 10, "{kind:?}");
        assert_eq!(bed.traffic.wire_stats(1).tx_frames, 10);
        assert_eq!(a.stats().rx_packets, 20);
    }
}

#[test]
fn a_source_feeds_the_application_and_a_sink_takes_its_output() {
    for kind in KINDS {
        let mut bed = testbed(kind).unwrap();
        bed.traffic.attach_sink(1);
        bed.traffic.attach_source(0, frame(1), Some(1000));
        let [a, b] = &mut bed.devices;
        assert_eq!(forward_n(kind, a.as_mut(), b.as_mut(), 1000), 1000);
        assert_eq!(bed.traffic.wire_stats(1).tx_frames, 1000, "{kind:?}");
        let wire0 = bed.traffic.wire_stats(0);
        assert_eq!((wire0.rx_frames, wire0.tx_frames), (1000, 0), "{kind:?}");
        assert_eq!(
            bed.traffic.wire_stats(1).rx_frames,
            0,
            "the sink sends nothing back"
        );
    }
}
