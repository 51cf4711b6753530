//! Testing an application without hardware: two modelled devices wired to each other,
//! driven by the real drivers, plus a handle on their wires ([`testbed`]).

use super::{Model, Port, VirtioModel, VirtioNet, VirtioOptions, WireStats};
use crate::ixgbe::IxgbeOptions;
use crate::{DeviceConfig, IxyDevice, Result};

/// Which devices a [`testbed`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDevice {
    /// Two legacy virtio-net functions (`1af4:1000`), driven by [`crate::virtio`].
    Virtio,
    /// Two virtio 1.0 functions (`1af4:1041`).
    VirtioModern,
    /// Two Intel 82599 ports, driven by [`crate::ixgbe`].
    Ixgbe,
}

/// Two connected modelled devices with drivers open on them (one rx and one tx queue each,
/// promiscuous): what device 0 transmits arrives at device 1, and the other way round.
pub struct Testbed {
    /// The devices, as an application sees a NIC.
    pub devices: [Box<dyn IxyDevice>; 2],
    /// Traffic into and out of the devices' wires.
    pub traffic: Traffic,
}

impl std::fmt::Debug for Testbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testbed")
            .field("traffic", &self.traffic)
            .finish()
    }
}

/// Sources and sinks on a [`Testbed`]'s wires; `device` is 0 or 1.
///
/// It reaches the devices only as their wires do: it cannot touch their registers or the
/// drivers' memory.
#[derive(Debug)]
pub struct Traffic {
    wires: Wires,
}

#[derive(Debug)]
enum Wires {
    Virtio(VirtioModel, [VirtioNet; 2]),
    Ixgbe(Model, [Port; 2]),
}

/// Opens a [`Testbed`] of `kind`.
///
/// ```
/// use std::collections::VecDeque;
/// use ixy::model::{TestDevice, testbed};
///
/// let mut bed = testbed(TestDevice::Virtio).unwrap();
/// // A frame from outside arrives at device 0 ...
/// let frame = [vec![0xff; 6], vec![0x02, 0, 0, 0, 0, 1], vec![0x08, 0x00], vec![7; 46]].concat();
/// assert!(bed.traffic.inject(0, &frame));
/// let mut buf = VecDeque::new();
/// assert_eq!(bed.devices[0].rx_batch(0, &mut buf, 32), 1);
/// // ... the application forwards it to device 1, whose wire leads back to device 0.
/// bed.traffic.set_capture(1, true);
/// assert_eq!(bed.devices[1].tx_batch(0, &mut buf), 1);
/// assert_eq!(bed.traffic.take_transmitted(1), vec![frame.clone()]);
/// assert_eq!(bed.devices[0].rx_batch(0, &mut buf, 32), 1);
/// assert_eq!(buf[0][..], frame[..]);
/// ```
pub fn testbed(kind: TestDevice) -> Result<Testbed> {
    let open_virtio = |opts: VirtioOptions| -> Result<Testbed> {
        let model = VirtioModel::new();
        let nets = [model.add_device(&opts), model.add_device(&opts)];
        model.connect(&nets[0], &nets[1]);
        let cfg = DeviceConfig::new("model");
        let devices: [Box<dyn IxyDevice>; 2] = [
            Box::new(model.virtio(&nets[0], &cfg)?),
            Box::new(model.virtio(&nets[1], &cfg)?),
        ];
        let traffic = Traffic {
            wires: Wires::Virtio(model, nets),
        };
        Ok(Testbed { devices, traffic })
    };
    match kind {
        TestDevice::Virtio => open_virtio(VirtioOptions::legacy()),
        TestDevice::VirtioModern => open_virtio(VirtioOptions::modern()),
        TestDevice::Ixgbe => {
            let model = Model::new();
            let ports = [model.add_port(), model.add_port()];
            model.connect(&ports[0], &ports[1]);
            let options = IxgbeOptions::default();
            let devices: [Box<dyn IxyDevice>; 2] = [
                Box::new(model.ixgbe(&ports[0], &options)?),
                Box::new(model.ixgbe(&ports[1], &options)?),
            ];
            let traffic = Traffic {
                wires: Wires::Ixgbe(model, ports),
            };
            Ok(Testbed { devices, traffic })
        }
    }
}

impl Traffic {
    /// One frame (without CRC) arrives on `device`'s wire now, from outside: true if it
    /// was delivered into a receive buffer, false if the device dropped it (filtered by
    /// MAC, no free buffer).
    pub fn inject(&self, device: usize, frame: &[u8]) -> bool {
        match &self.wires {
            Wires::Virtio(m, n) => m.inject(&n[device], frame),
            Wires::Ixgbe(m, p) => m.inject(&p[device], frame),
        }
    }

    /// A source feeding `device`'s receive queue 0 with copies of `template` whenever it
    /// has buffers, `count` frames in all (`None`: without end).
    pub fn attach_source(&self, device: usize, template: Vec<u8>, count: Option<u64>) {
        match &self.wires {
            Wires::Virtio(m, n) => m.attach_source(&n[device], template, count),
            Wires::Ixgbe(m, p) => m.attach_source(&p[device], template, count),
        }
    }

    /// Starts (`on`) or stops recording what `device` transmits (it still reaches the
    /// other device).
    pub fn set_capture(&self, device: usize, on: bool) {
        match &self.wires {
            Wires::Virtio(m, n) => m.set_capture(&n[device], on),
            Wires::Ixgbe(m, p) => m.set_capture(&p[device], on),
        }
    }

    /// The frames `device` transmitted since the last call while capturing.
    pub fn take_transmitted(&self, device: usize) -> Vec<Vec<u8>> {
        match &self.wires {
            Wires::Virtio(m, n) => m.take_transmitted(&n[device]),
            Wires::Ixgbe(m, p) => m.take_transmitted(&p[device]),
        }
    }

    /// Cuts the wire: what `device` (and its peer) transmit from now on is counted and
    /// dropped.
    pub fn attach_sink(&self, device: usize) {
        match &self.wires {
            Wires::Virtio(m, n) => m.attach_sink(&n[device]),
            Wires::Ixgbe(m, p) => m.attach_sink(&p[device]),
        }
    }

    /// What crossed `device`'s wire so far.
    pub fn wire_stats(&self, device: usize) -> WireStats {
        match &self.wires {
            Wires::Virtio(m, n) => m.wire_stats(&n[device]),
            Wires::Ixgbe(m, p) => m.wire_stats(&p[device]),
        }
    }
}
