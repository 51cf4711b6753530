//! Tests of the 82599 model itself: positive tests (reset defaults, link-up, hand-driven rx
//! and tx descriptor round trips in literal bytes, statistics, filtering, wires, sources)
//! and one test per rule showing the model fail with `82599 model: rule violated: <rule>`.
//!
//! The "driver" here is raw register writes with offsets from the Intel 82599 datasheet
//! (§8.2.3), so the tests do not depend on the ixgbe driver.

use ixy::memory::{DmaAllocator, DmaMemory, HeapDma};
use ixy::model::{Completion, Model, PortRegisters as Port, WireStats};
use ixy::registers::RegisterSpace;

// Offsets and bits, §8.2.3.
const CTRL: usize = 0x00000;
// RSS, §8.2.3.7.12-14.
const MRQC: usize = 0x05818;
const MRQC_RSS: u32 = 0x1;
const MRQC_IPV4: u32 = 1 << 17;
const RETA: usize = 0x05C00;
const CTRL_RST: u32 = 1 << 26;
const CTRL_LRST: u32 = 1 << 3;
const ESDP: usize = 0x00020;
const CTRL_MASTER_DISABLE: u32 = 1 << 2;
const STATUS: usize = 0x00008;
const STATUS_GIO_MASTER_ENABLE: u32 = 1 << 19;
const SECRXCTRL: usize = 0x08D00;
const SECRXCTRL_RX_DIS: u32 = 1 << 1;
const SECRXSTAT: usize = 0x08D04;
const SECRXSTAT_SECRX_RDY: u32 = 1 << 0;
const RDRXCTL_RSCFRSTSIZE: u32 = 0x1F << 17;
const RDRXCTL_RSCACKC: u32 = 1 << 25;
const RDRXCTL_FCOE_WRFIX: u32 = 1 << 26;
const FCRTH0: usize = 0x03260;
const EIMC_EX0: usize = 0x00AB0;
const EIMS_EX0: usize = 0x00AA0;
const EEC: usize = 0x10010;
const EEC_ARD: u32 = 1 << 9;
const EICR: usize = 0x00800;
const EICS: usize = 0x00808;
const EIAC: usize = 0x00810;
const EITR0: usize = 0x00820;
const EIMS: usize = 0x00880;
const EIMC: usize = 0x00888;
const GPIE: usize = 0x00898;
const IVAR0: usize = 0x00900;
const RDRXCTL: usize = 0x02F00;
const RDRXCTL_CRCSTRIP: u32 = 1 << 1;
const RDRXCTL_DMAIDONE: u32 = 1 << 3;
const RXCTRL: usize = 0x03000;
const RXPBSIZE0: usize = 0x03C00;
const RQSMR0: usize = 0x02300;
const FCTRL: usize = 0x05080;
const FCTRL_MPE: u32 = 1 << 8;
const FCTRL_UPE: u32 = 1 << 9;
const FCTRL_BAM: u32 = 1 << 10;
const HLREG0: usize = 0x04240;
const GCR_EXT: usize = 0x11050;
const GCR_EXT_BUFFERS_CLEAR: u32 = 1 << 30;
const HLREG0_RXCRCSTRP: u32 = 1 << 1;
const AUTOC: usize = 0x042A0;
const AUTOC_LMS_10G_SERIAL: u32 = 0x3 << 13;
const AUTOC_RESTART_AN: u32 = 1 << 12;
const LINKS: usize = 0x042A4;
const LINKS_UP: u32 = 1 << 30;
const LINKS_SPEED_MASK: u32 = 0x3 << 28;
const LINKS_SPEED_10G: u32 = 0x3 << 28;
const LINKS_SPEED_1G: u32 = 0x2 << 28;
const DMATXCTL: usize = 0x04A80;
const RAL0: usize = 0x0A200;
const RAH0: usize = 0x0A204;
const MPC0: usize = 0x03FA0;
const GPRC: usize = 0x04074;
const GPTC: usize = 0x04080;
const GORCL: usize = 0x04088;
const GORCH: usize = 0x0408C;
const GOTCL: usize = 0x04090;
const GOTCH: usize = 0x04094;
const ENABLE: u32 = 1 << 25;
const SRRCTL_ADV_ONEBUF_2K: u32 = (1 << 25) | 2;
const SRRCTL_DROP_EN: u32 = 1 << 28;

fn rdbal(q: usize) -> usize {
    if q < 64 {
        0x01000 + 0x40 * q
    } else {
        0x0D000 + 0x40 * (q - 64)
    }
}
fn rdbah(q: usize) -> usize {
    rdbal(q) + 0x04
}
fn rdlen(q: usize) -> usize {
    rdbal(q) + 0x08
}
fn rdh(q: usize) -> usize {
    rdbal(q) + 0x10
}
fn srrctl(q: usize) -> usize {
    rdbal(q) + 0x14
}
fn rdt(q: usize) -> usize {
    rdbal(q) + 0x18
}
fn rxdctl(q: usize) -> usize {
    rdbal(q) + 0x28
}
fn qprdc(q: usize) -> usize {
    0x01430 + 0x40 * q
}
fn qprc(q: usize) -> usize {
    0x01030 + 0x40 * q
}
fn tdbal(q: usize) -> usize {
    0x06000 + 0x40 * q
}
fn tdbah(q: usize) -> usize {
    tdbal(q) + 0x04
}
fn tdlen(q: usize) -> usize {
    tdbal(q) + 0x08
}
fn tdh(q: usize) -> usize {
    tdbal(q) + 0x10
}
fn tdt(q: usize) -> usize {
    tdbal(q) + 0x18
}
fn txdctl(q: usize) -> usize {
    tdbal(q) + 0x28
}

/// Copies `len` bytes at `off` out of a DMA region.
fn peek(m: &DmaMemory, off: usize, len: usize) -> Vec<u8> {
    assert!(off + len <= m.size());
    // SAFETY: in bounds of the live region; the model only touches it during register
    // accesses, and no reference into it is kept.
    unsafe { std::slice::from_raw_parts(m.virt().add(off), len) }.to_vec()
}

/// Copies `bytes` into a DMA region at `off`.
fn poke(m: &DmaMemory, off: usize, bytes: &[u8]) {
    assert!(off + bytes.len() <= m.size());
    // SAFETY: in bounds of the live region, which nothing else references right now.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), m.virt().add(off), bytes.len()) }
}

/// A new port of `model` with raw register access: these tests are its driver.
fn raw_port(model: &Model) -> Port {
    // SAFETY: the tests point rings only at memory they allocated from the model and
    // reach through `peek`/`poke` copies, keeping no reference into it.
    let port = unsafe { model.add_port().registers() };
    // The SFP+ laser on (ESDP.SDP3 clear), as a driver turns it on.
    port.write32(ESDP, 0);
    port
}

fn bus(m: &DmaMemory) -> u64 {
    m.bus_addr(0)
}

/// The master disable algorithm (§5.2.5.3.2): request, then poll STATUS.
fn master_disable(port: &Port) {
    port.write32(CTRL, port.read32(CTRL) | CTRL_MASTER_DISABLE);
    assert_eq!(port.read32(STATUS) & STATUS_GIO_MASTER_ENABLE, 0);
}

/// Master disable, then `bits` written to CTRL, then the ~1 ms of §8.2.3.1.1.
fn start_reset(port: &Port, bits: u32) {
    master_disable(port);
    port.write32(CTRL, bits);
    std::thread::sleep(std::time::Duration::from_millis(1));
}

fn reset(port: &Port) {
    port.write32(EIMC, 0xFFFF_FFFF);
    start_reset(port, CTRL_RST | CTRL_LRST);
    let mut reads = 0;
    while port.read32(CTRL) & CTRL_RST != 0 {
        reads += 1;
        assert!(reads < 1000, "CTRL.RST never self-cleared");
    }
}

/// Maps rx queue `v` to MSI-X vector `v` for v = 0..63 (IVAR, §7.3): every vector has a
/// cause, so its mask and cause bits may be written.
fn route_vectors(port: &Port) {
    for n in 0..32u32 {
        let entry = |v: u32| 0x80 | v;
        port.write32(
            IVAR0 + 4 * n as usize,
            entry(2 * n) | entry(2 * n + 1) << 16,
        );
    }
}

fn bring_link_up(port: &Port) {
    port.write32(
        AUTOC,
        port.read32(AUTOC) | AUTOC_LMS_10G_SERIAL | AUTOC_RESTART_AN,
    );
    for _ in 0..10 {
        if port.read32(LINKS) & LINKS_UP != 0 {
            return;
        }
    }
    panic!("link did not come up");
}

/// An rx queue set up by hand: `n` descriptors, one 2 KB buffer each (after 128 bytes of
/// headroom in a 4 KB slot, so buffers never overlap).
struct RxQ {
    ring: DmaMemory,
    bufs: DmaMemory,
    n: usize,
}

impl RxQ {
    fn buf_addr(&self, i: usize) -> u64 {
        bus(&self.bufs) + (i * 4096 + 128) as u64
    }
    fn desc(&self, i: usize) -> Vec<u8> {
        peek(&self.ring, 16 * i, 16)
    }
    /// Read format (§7.1.6.1): packet buffer address, header buffer address (0, DD clear).
    fn give(&self, i: usize) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&self.buf_addr(i).to_le_bytes());
        poke(&self.ring, 16 * i, &d);
    }
    fn data(&self, i: usize, len: usize) -> Vec<u8> {
        peek(&self.bufs, i * 4096 + 128, len)
    }
}

/// Configures rx queue `q` in datasheet order (§4.6.7) without setting RXCTRL.RXEN.
fn setup_rx_queue(model: &Model, port: &Port, q: usize, n: usize) -> RxQ {
    let dma = model.dma();
    let rx = RxQ {
        ring: dma.allocate(16 * n).unwrap(),
        bufs: dma.allocate(4096 * n).unwrap(),
        n,
    };
    port.write32(srrctl(q), SRRCTL_ADV_ONEBUF_2K);
    port.write32(rdbal(q), bus(&rx.ring) as u32);
    port.write32(rdbah(q), (bus(&rx.ring) >> 32) as u32);
    port.write32(rdlen(q), (16 * n) as u32);
    port.write32(rdh(q), 0);
    port.write32(rdt(q), 0);
    for i in 0..n {
        rx.give(i);
    }
    port.write32(rxdctl(q), port.read32(rxdctl(q)) | ENABLE);
    assert_ne!(port.read32(rxdctl(q)) & ENABLE, 0);
    port.write32(rdt(q), (n - 1) as u32);
    rx
}

/// RXCTRL.RXEN with the receive data path halted (§4.6.7).
fn rx_on(port: &Port) {
    port.write32(SECRXCTRL, port.read32(SECRXCTRL) | SECRXCTRL_RX_DIS);
    assert_eq!(
        port.read32(SECRXSTAT) & SECRXSTAT_SECRX_RDY,
        SECRXSTAT_SECRX_RDY
    );
    port.write32(RXCTRL, 1);
    port.write32(SECRXCTRL, port.read32(SECRXCTRL) & !SECRXCTRL_RX_DIS);
}

/// The general receive settings the model checks at RXEN, except CRC stripping: all
/// packet buffer to buffer 0 with its FCRTH (§4.6.3.2, §4.6.11.3.4), RDRXCTL's RSC bits
/// (§8.2.3.8.8).
fn rx_settings(port: &Port) {
    for n in 1..8 {
        port.write32(RXPBSIZE0 + 4 * n, 0);
    }
    port.write32(FCRTH0, port.read32(RXPBSIZE0) - 0x6000);
    port.write32(
        RDRXCTL,
        (port.read32(RDRXCTL) & !RDRXCTL_RSCFRSTSIZE) | RDRXCTL_RSCACKC | RDRXCTL_FCOE_WRFIX,
    );
}

fn enable_rx(port: &Port) {
    rx_settings(port);
    port.write32(HLREG0, port.read32(HLREG0) | HLREG0_RXCRCSTRP);
    port.write32(RDRXCTL, port.read32(RDRXCTL) | RDRXCTL_CRCSTRIP);
    port.write32(FCTRL, port.read32(FCTRL) | FCTRL_BAM);
    rx_on(port);
}

struct TxQ {
    ring: DmaMemory,
    bufs: DmaMemory,
}

impl TxQ {
    fn desc(&self, i: usize) -> Vec<u8> {
        peek(&self.ring, 16 * i, 16)
    }
    /// Changes descriptor `i` in place.
    fn edit(&self, i: usize, f: impl FnOnce(&mut [u8])) {
        let mut d = self.desc(i);
        f(&mut d);
        poke(&self.ring, 16 * i, &d);
    }
    fn buf_addr(&self, i: usize) -> u64 {
        bus(&self.bufs) + (i * 2048) as u64
    }
    fn write_buf(&self, i: usize, data: &[u8]) {
        poke(&self.bufs, i * 2048, data);
    }
    /// An advanced data descriptor (§7.2.3.2.4): EOP, IFCS, RS, DEXT, DTYP=data.
    fn put(&self, i: usize, len: usize) {
        let cmd_type_len: u32 = len as u32 | 0x3 << 20 | 0x2B << 24;
        let olinfo: u32 = (len as u32) << 14;
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&self.buf_addr(i).to_le_bytes());
        d[8..12].copy_from_slice(&cmd_type_len.to_le_bytes());
        d[12..].copy_from_slice(&olinfo.to_le_bytes());
        poke(&self.ring, 16 * i, &d);
    }
}

/// Configures and enables tx queue `q` (§4.6.8).
fn setup_tx_queue(model: &Model, port: &Port, q: usize, n: usize) -> TxQ {
    let dma = model.dma();
    let tx = TxQ {
        ring: dma.allocate(16 * n).unwrap(),
        bufs: dma.allocate(2048 * n).unwrap(),
    };
    port.write32(tdbal(q), bus(&tx.ring) as u32);
    port.write32(tdbah(q), (bus(&tx.ring) >> 32) as u32);
    port.write32(tdlen(q), (16 * n) as u32);
    port.write32(tdh(q), 0);
    port.write32(tdt(q), 0);
    port.write32(DMATXCTL, 1);
    port.write32(txdctl(q), ENABLE);
    assert_ne!(port.read32(txdctl(q)) & ENABLE, 0);
    tx
}

/// A port after reset, link up, one rx queue of 8 and one tx queue of 8, rx enabled.
fn ready_port(model: &Model) -> (Port, RxQ, TxQ) {
    let port = raw_port(model);
    reset(&port);
    bring_link_up(&port);
    let rx = setup_rx_queue(model, &port, 0, 8);
    let tx = setup_tx_queue(model, &port, 0, 8);
    enable_rx(&port);
    (port, rx, tx)
}

fn frame_to(dst: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

/// Steers every IPv4 frame to rx queue `q` (MRQC: RSS hashing IPv4 addresses; every
/// RETA entry `q`; §7.1.2.8).
fn steer_ipv4_to(port: &Port, q: u32) {
    port.write32(MRQC, MRQC_RSS | MRQC_IPV4);
    for n in 0..32 {
        port.write32(RETA + 4 * n, q * 0x0101_0101);
    }
}

/// [`frame_to`] with an IPv4 header start (version 4, 20 bytes), so RSS hashes it.
fn ipv4_to(dst: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = frame_to(dst, len);
    f[14] = 0x45;
    f
}

// ---------------------------------------------------------------- positive tests

#[test]
fn reset_restores_defaults_and_self_clears() {
    let model = Model::new();
    let port = raw_port(&model);
    port.write32(FCTRL, FCTRL_UPE);
    route_vectors(&port);
    port.write32(EIMS, 0xFF);
    port.write32(srrctl(3), 0x0200_0004);
    // The reset is held until the test has looked at it: it would also end after 10 ms of
    // wall time, which a descheduled test thread can miss.
    model.hold_back(&port, Completion::Reset, true);
    start_reset(&port, CTRL_RST);
    // During reset (after the first ms): RST still reads 1, EEPROM auto-read and DMA
    // init not done yet.
    assert_eq!(port.read32(EEC) & EEC_ARD, 0);
    assert_eq!(port.read32(RDRXCTL) & RDRXCTL_DMAIDONE, 0);
    assert_eq!(port.read32(CTRL) & CTRL_RST, CTRL_RST);
    model.hold_back(&port, Completion::Reset, false);
    // Released: the second read of CTRL finds RST self-cleared.
    assert_eq!(port.read32(CTRL) & (CTRL_RST | CTRL_LRST), 0);
    assert_eq!(port.read32(EEC) & EEC_ARD, EEC_ARD);
    assert_eq!(port.read32(RDRXCTL) & RDRXCTL_DMAIDONE, RDRXCTL_DMAIDONE);
    assert_eq!(port.read32(FCTRL), 0);
    assert_eq!(port.read32(EIMS), 0);
    assert_eq!(port.read32(srrctl(3)), 0x0000_0402);
    for n in 0..8 {
        assert_eq!(port.read32(RXPBSIZE0 + 4 * n), 0x0008_0000, "RXPBSIZE({n})");
    }
    assert_eq!(port.read32(HLREG0), 0x0800_040B);
    assert_eq!(port.read32(RDRXCTL) & RDRXCTL_RSCFRSTSIZE, 0x8 << 17);
    // Mastering is enabled again after the reset.
    assert_ne!(port.read32(STATUS) & STATUS_GIO_MASTER_ENABLE, 0);
    assert_eq!(port.read32(LINKS) & LINKS_UP, 0);
    // MAC "from the EEPROM" in RAL(0)/RAH(0), address valid.
    let mac = model.default_mac(&port);
    assert_eq!(mac, [0x02, 0x82, 0x59, 0x90, 0x00, 0x00]);
    assert_eq!(port.read32(RAL0), 0x9059_8202);
    assert_eq!(port.read32(RAH0), 0x8000_0000);
    let other = raw_port(&model);
    assert_eq!(other.read32(RAH0), 0x8000_0100);
    // STATUS.LAN_ID distinguishes the ports.
    assert_eq!(port.read32(STATUS) >> 2 & 3, 0);
    assert_eq!(other.read32(STATUS) >> 2 & 3, 1);
}

#[test]
fn reset_also_completes_after_ten_milliseconds() {
    let model = Model::new();
    let port = raw_port(&model);
    start_reset(&port, CTRL_RST);
    std::thread::sleep(std::time::Duration::from_millis(9));
    port.write32(EIMC, 0xFFFF_FFFF);
    assert_eq!(port.read32(CTRL) & CTRL_RST, 0);
    // The reset is complete: EEPROM auto-read and DMA init done, mastering back on.
    assert_eq!(port.read32(EEC) & EEC_ARD, EEC_ARD);
    assert_eq!(port.read32(RDRXCTL) & RDRXCTL_DMAIDONE, RDRXCTL_DMAIDONE);
    assert_eq!(
        port.read32(STATUS) & STATUS_GIO_MASTER_ENABLE,
        STATUS_GIO_MASTER_ENABLE
    );
}

#[test]
fn link_comes_up_at_10g_after_an_restart() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    assert_eq!(port.read32(LINKS), 0);
    port.write32(
        AUTOC,
        port.read32(AUTOC) | AUTOC_LMS_10G_SERIAL | AUTOC_RESTART_AN,
    );
    // Restart_AN self-clears; LMS reads back.
    assert_eq!(
        port.read32(AUTOC) & (AUTOC_RESTART_AN | 0x7 << 13),
        AUTOC_LMS_10G_SERIAL
    );
    // Negotiation takes a couple of polls.
    assert_eq!(port.read32(LINKS) & LINKS_UP, 0);
    assert_eq!(port.read32(LINKS) & LINKS_UP, 0);
    let links = port.read32(LINKS);
    assert_eq!(links & LINKS_UP, LINKS_UP);
    assert_eq!(links & LINKS_SPEED_MASK, LINKS_SPEED_10G);
    assert_ne!(port.read32(STATUS) & (1 << 7), 0);
    // A link reset (on the 82599 also a software reset: master disable first) takes the
    // link down until the next restart.
    start_reset(&port, CTRL_LRST);
    while port.read32(CTRL) & (CTRL_RST | CTRL_LRST) != 0 {}
    assert_eq!(port.read32(LINKS) & LINKS_UP, 0);
}

#[test]
fn link_without_10g_serial_comes_up_at_1g() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(AUTOC, port.read32(AUTOC) | AUTOC_RESTART_AN);
    let mut links = 0;
    for _ in 0..5 {
        links = port.read32(LINKS);
    }
    assert_eq!(
        links & (LINKS_UP | LINKS_SPEED_MASK),
        LINKS_UP | LINKS_SPEED_1G
    );
}

#[test]
fn link_that_never_comes_up() {
    let model = Model::new();
    let port = raw_port(&model);
    model.set_link_never_up(&port, true);
    reset(&port);
    port.write32(AUTOC, AUTOC_LMS_10G_SERIAL | AUTOC_RESTART_AN);
    for _ in 0..100 {
        assert_eq!(port.read32(LINKS) & LINKS_UP, 0);
    }
    model.set_link_never_up(&port, false);
    bring_link_up(&port);
}

#[test]
fn interrupt_registers_read_back() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    route_vectors(&port);
    port.write32(EIMS, 0x0000_0003);
    port.write32(EIMS, 0x0000_0010);
    assert_eq!(port.read32(EIMS), 0x13);
    port.write32(EIMC, 0x0000_0001);
    assert_eq!(port.read32(EIMS), 0x12);
    port.write32(EIAC, 0xF);
    port.write32(GPIE, 0x4000_0031);
    port.write32(IVAR0 + 4 * 5, 0x8382_8180);
    port.write32(EITR0 + 4 * 2, 0x0000_0C80);
    assert_eq!(port.read32(EIAC), 0xF);
    assert_eq!(port.read32(GPIE), 0x4000_0031);
    assert_eq!(port.read32(IVAR0 + 4 * 5), 0x8382_8180);
    assert_eq!(port.read32(EITR0 + 4 * 2), 0x0000_0C80);
    // EICS sets cause bits in EICR, which clears on read.
    port.write32(EICS, 0x5);
    assert_eq!(port.read32(EICR), 0x5);
    assert_eq!(port.read32(EICR), 0);
}

#[test]
fn queue_registers_of_queues_above_63_are_at_0xd000() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(0x0D000 + 0x40 * 6, 0x1234_5680); // RDBAL(70)
    assert_eq!(port.read32(rdbal(70)), 0x1234_5680);
    assert_eq!(port.read32(rdbal(6)), 0);
    // SRRCTL(0..15) has an alias at 0x02100.
    port.write32(0x02100 + 4 * 3, 0x0200_0001);
    assert_eq!(port.read32(srrctl(3)), 0x0200_0001);
}

#[test]
fn rx_round_trip_in_literal_bytes() {
    let model = Model::new();
    let (port, rx, _tx) = ready_port(&model);
    let mac = model.default_mac(&port);
    let frame = frame_to(mac, 60);
    assert!(model.inject(&port, &frame));
    // Write-back format (§7.1.6.2): first quadword RSS/packet type (0 here); second:
    // status DD|EOP, errors 0, PKT_LEN 60, VLAN 0.
    assert_eq!(
        rx.desc(0),
        &[0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 60, 0, 0, 0][..]
    );
    assert_eq!(rx.data(0, 60), &frame[..]);
    assert_eq!(port.read32(rdh(0)), 1);
    // Untouched next descriptor.
    assert_eq!(&rx.desc(1)[..8], &rx.buf_addr(1).to_le_bytes()[..]);
    // Clear-on-read statistics; octets include the CRC.
    assert_eq!(port.read32(GPRC), 1);
    assert_eq!(port.read32(GPRC), 0);
    assert_eq!(port.read32(GORCL), 64);
    assert_eq!(port.read32(GORCH), 0);
    assert_eq!(port.read32(GORCL), 0);
    let w = model.wire_stats(&port);
    assert_eq!((w.rx_frames, w.rx_bytes, w.rx_dropped), (1, 60, 0));
}

#[test]
fn rx_without_crc_strip_delivers_the_fcs() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    bring_link_up(&port);
    let rx = setup_rx_queue(&model, &port, 0, 8);
    port.write32(HLREG0, port.read32(HLREG0) & !HLREG0_RXCRCSTRP);
    port.write32(RDRXCTL, port.read32(RDRXCTL) & !RDRXCTL_CRCSTRIP);
    port.write32(FCTRL, FCTRL_BAM);
    rx_settings(&port);
    rx_on(&port);
    let frame = frame_to([0xff; 6], 60);
    assert!(model.inject(&port, &frame));
    assert_eq!(&rx.desc(0)[8..16], &[0x03, 0, 0, 0, 64, 0, 0, 0]);
    // The CRC of 60 bytes of this frame, little-endian as on the wire.
    let fcs = &rx.data(0, 64)[60..];
    let mut c = !0u32;
    for &b in &frame {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = (c >> 1) ^ (0xEDB8_8320 & (c & 1).wrapping_neg());
        }
    }
    assert_eq!(fcs, (!c).to_le_bytes());
}

#[test]
fn rx_frame_larger_than_the_buffer_spans_descriptors() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    bring_link_up(&port);
    let rx = setup_rx_queue(&model, &port, 0, 8);
    port.write32(rxdctl(0), 0);
    // The queue stops after a few polls (§4.6.7.1.2).
    assert!((0..10).any(|_| port.read32(rxdctl(0)) & ENABLE == 0));
    port.write32(srrctl(0), (1 << 25) | 1); // 1 KB buffers
    port.write32(rxdctl(0), ENABLE);
    assert_ne!(port.read32(rxdctl(0)) & ENABLE, 0);
    enable_rx(&port);
    let frame = frame_to([0xff; 6], 1500);
    assert!(model.inject(&port, &frame));
    assert_eq!(&rx.desc(0)[8..16], &[0x01, 0, 0, 0, 0x00, 0x04, 0, 0]); // DD, 1024
    assert_eq!(&rx.desc(1)[8..16], &[0x03, 0, 0, 0, 0xDC, 0x01, 0, 0]); // DD|EOP, 476
    assert_eq!(rx.data(0, 1024), &frame[..1024]);
    assert_eq!(rx.data(1, 476), &frame[1024..]);
    assert_eq!(port.read32(rdh(0)), 2);
}

#[test]
fn empty_rx_ring_drops_into_mpc_then_recovers() {
    let model = Model::new();
    let (port, rx, _tx) = ready_port(&model);
    let frame = frame_to([0xff; 6], 64);
    // 8 descriptors, tail at 7: 7 are the device's.
    for _ in 0..7 {
        assert!(model.inject(&port, &frame));
    }
    assert!(!model.inject(&port, &frame));
    assert!(!model.inject(&port, &frame));
    assert_eq!(port.read32(MPC0), 2);
    assert_eq!(port.read32(MPC0), 0);
    assert_eq!(port.read32(GPRC), 7);
    // Give 3 back: head is at 7, so descriptors 7, 0, 1 -> tail 2.
    for i in [7, 0, 1] {
        rx.give(i);
    }
    port.write32(rdt(0), 2);
    for _ in 0..3 {
        assert!(model.inject(&port, &frame));
    }
    assert!(!model.inject(&port, &frame));
    assert_eq!(
        model.wire_stats(&port),
        WireStats {
            tx_frames: 0,
            tx_bytes: 0,
            rx_frames: 10,
            rx_bytes: 640,
            rx_dropped: 3
        }
    );
    assert_eq!(rx.n, 8);
    // The three given back were written back in ring order: DD|EOP, PKT_LEN 64.
    for i in [7, 0, 1] {
        assert_eq!(
            &rx.desc(i)[8..16],
            &[0x03, 0, 0, 0, 64, 0, 0, 0],
            "descriptor {i}"
        );
    }
    assert_eq!(port.read32(rdh(0)), 2);
    assert_eq!(port.read32(MPC0), 1);
}

#[test]
fn drop_enabled_queue_counts_in_qprdc() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    bring_link_up(&port);
    port.write32(srrctl(1), SRRCTL_ADV_ONEBUF_2K | SRRCTL_DROP_EN);
    let dma = model.dma();
    let ring = dma.allocate(128).unwrap();
    port.write32(rdbal(1), bus(&ring) as u32);
    port.write32(rdbah(1), (bus(&ring) >> 32) as u32);
    port.write32(rdlen(1), 128);
    port.write32(rxdctl(1), ENABLE);
    assert_ne!(port.read32(rxdctl(1)) & ENABLE, 0);
    enable_rx(&port);
    steer_ipv4_to(&port, 1);
    assert!(!model.inject(&port, &ipv4_to([0xff; 6], 60)));
    // After reset RQSMR maps every queue to statistics counter 0.
    assert_eq!(port.read32(qprdc(0)), 1);
    assert_eq!(port.read32(qprdc(0)), 0);
    // Map queue 1 to counter 1 (RQSMR(0) bits 11:8).
    port.write32(RQSMR0, 1 << 8);
    assert!(!model.inject(&port, &ipv4_to([0xff; 6], 60)));
    assert_eq!(port.read32(qprdc(1)), 1);
    assert_eq!(port.read32(qprdc(0)), 0);
    assert_eq!(port.read32(MPC0), 0);
}

#[test]
fn without_mrqc_every_frame_goes_to_queue_0() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    bring_link_up(&port);
    let _queues: Vec<RxQ> = (0..2)
        .map(|q| setup_rx_queue(&model, &port, q, 16))
        .collect();
    enable_rx(&port);
    // MRQC = 0 (reset value): one queue, whatever the redirection table says (§7.1.2).
    for n in 0..32 {
        port.write32(RETA + 4 * n, 0x0101_0101);
    }
    assert!(model.inject(&port, &ipv4_to([0xff; 6], 60)));
    assert_eq!((port.read32(rdh(0)), port.read32(rdh(1))), (1, 0));
    // RSS on: the same frame now goes where RETA points.
    port.write32(MRQC, MRQC_RSS | MRQC_IPV4);
    assert!(model.inject(&port, &ipv4_to([0xff; 6], 60)));
    assert_eq!((port.read32(rdh(0)), port.read32(rdh(1))), (1, 1));
    // A frame of no enabled type (not IPv4) has no hash: RSS output index 0, queue 0.
    let mut other = ipv4_to([0xff; 6], 60);
    other[12..14].copy_from_slice(&[0x88, 0xb5]);
    assert!(model.inject(&port, &other));
    assert_eq!((port.read32(rdh(0)), port.read32(rdh(1))), (2, 1));
}

#[test]
fn several_queues_receive_and_count_per_queue() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    bring_link_up(&port);
    let queues: Vec<RxQ> = (0..8)
        .map(|q| setup_rx_queue(&model, &port, q, 16))
        .collect();
    enable_rx(&port);
    port.write32(RQSMR0, 0x0302_0100); // queues 0..3 -> counters 0..3
    for q in 0..8 {
        steer_ipv4_to(&port, q as u32);
        for _ in 0..=q {
            assert!(model.inject(&port, &ipv4_to([0xff; 6], 60 + q)));
        }
    }
    for (q, rx) in queues.iter().enumerate() {
        assert_eq!(port.read32(rdh(q)), q as u32 + 1);
        assert_eq!(rx.desc(q)[12], 60 + q as u8);
    }
    assert_eq!(port.read32(qprc(1)), 2);
    assert_eq!(port.read32(qprc(2)), 3);
    assert_eq!(port.read32(qprc(3)), 4);
    // Queues 4..7 are unmapped and count in counter 0 with queue 0.
    assert_eq!(port.read32(qprc(0)), 1 + 5 + 6 + 7 + 8);
    assert_eq!(port.read32(GPRC), 36);
}

#[test]
fn unicast_filter_promiscuous_broadcast_and_multicast() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    let mine = model.default_mac(&port);
    let other = [0x02, 0, 0, 0, 0, 0x42];
    let mcast = [0x01, 0x00, 0x5e, 0, 0, 1];
    assert!(model.inject(&port, &frame_to(mine, 60)));
    assert!(!model.inject(&port, &frame_to(other, 60)));
    assert!(!model.inject(&port, &frame_to(mcast, 60)));
    assert!(model.inject(&port, &frame_to([0xff; 6], 60)));
    // Filters change only with receive off (§8.2.3.7.1).
    port.write32(RXCTRL, 0);
    port.write32(FCTRL, FCTRL_BAM | FCTRL_UPE | FCTRL_MPE);
    rx_on(&port);
    assert!(model.inject(&port, &frame_to(other, 60)));
    assert!(model.inject(&port, &frame_to(mcast, 60)));
    port.write32(RXCTRL, 0);
    port.write32(FCTRL, 0);
    rx_on(&port);
    assert!(!model.inject(&port, &frame_to([0xff; 6], 60)));
    // A second receive address.
    port.write32(RAL0 + 8, 0x0000_0002);
    port.write32(RAH0 + 8, 0x8000_4200);
    assert!(model.inject(&port, &frame_to(other, 60)));
    // Filtered frames are not missed packets.
    assert_eq!(port.read32(MPC0), 0);
    assert_eq!(port.read32(GPRC), 5);
}

#[test]
fn no_reception_while_rx_is_disabled() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(RXCTRL, 0);
    assert!(!model.inject(&port, &frame_to([0xff; 6], 60)));
    assert_eq!(port.read32(GPRC), 0);
    assert_eq!(port.read32(rdh(0)), 0);
    assert_eq!(model.wire_stats(&port).rx_frames, 0);
}

#[test]
fn tx_round_trip_in_literal_bytes() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    model.set_capture(&port, true);
    let frame = frame_to([0xff; 6], 60);
    tx.write_buf(0, &frame);
    tx.put(0, 60);
    // cmd_type_len 0x2B30003C: DCMD EOP|IFCS|RS|DEXT, DTYP data, DTALEN 60;
    // olinfo_status PAYLEN 60 << 14.
    assert_eq!(
        &tx.desc(0)[8..],
        &[0x3C, 0x00, 0x30, 0x2B, 0x00, 0x00, 0x0F, 0x00]
    );
    port.write32(tdt(0), 1);
    assert_eq!(port.read32(tdh(0)), 1);
    // Write-back: DD in STA (bit 32 of the second quadword).
    assert_eq!(
        &tx.desc(0)[8..],
        &[0x3C, 0x00, 0x30, 0x2B, 0x01, 0x00, 0x00, 0x00]
    );
    assert_eq!(model.take_transmitted(&port), vec![frame]);
    assert_eq!(port.read32(GPTC), 1);
    assert_eq!(port.read32(GPTC), 0);
    assert_eq!(port.read32(GOTCL), 64);
    assert_eq!(port.read32(GOTCH), 0);
    let w = model.wire_stats(&port);
    assert_eq!((w.tx_frames, w.tx_bytes), (1, 60));
}

#[test]
fn tx_without_rs_gets_no_write_back_and_short_frames_are_padded() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    model.set_capture(&port, true);
    tx.write_buf(0, &frame_to([0xff; 6], 42));
    tx.put(0, 42);
    tx.edit(0, |d| d[11] &= !0x08); // clear RS
    let before = tx.desc(0).to_vec();
    port.write32(tdt(0), 1);
    assert_eq!(tx.desc(0), &before[..]);
    assert_eq!(port.read32(tdh(0)), 1);
    let sent = model.take_transmitted(&port);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 60);
    assert_eq!(&sent[0][..42], &frame_to([0xff; 6], 42)[..]);
    assert_eq!(&sent[0][42..], &[0u8; 18]);
    assert_eq!(model.wire_stats(&port).tx_bytes, 60);
}

#[test]
fn tx_frame_over_two_descriptors_waits_for_its_eop() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    model.set_capture(&port, true);
    let frame = frame_to([0xff; 6], 100);
    tx.write_buf(0, &frame[..40]);
    tx.write_buf(1, &frame[40..]);
    tx.put(0, 40);
    tx.edit(0, |d| d[11] &= !0x01); // no EOP
    tx.edit(0, |d| {
        d[12..].copy_from_slice(&(100u32 << 14).to_le_bytes())
    }); // PAYLEN of the frame
    tx.put(1, 60);
    tx.edit(1, |d| d[12..].copy_from_slice(&[0; 4]));
    port.write32(tdt(0), 1);
    assert_eq!(port.read32(tdh(0)), 0, "frame without EOP must wait");
    port.write32(tdt(0), 2);
    assert_eq!(port.read32(tdh(0)), 2);
    assert_eq!(model.take_transmitted(&port), vec![frame]);
}

#[test]
fn wire_connects_two_ports() {
    let model = Model::new();
    let (a, _arx, atx) = ready_port(&model);
    let (b, brx, _btx) = ready_port(&model);
    model.connect(&a, &b);
    let frame = frame_to(model.default_mac(&b), 60);
    for i in 0..3 {
        atx.write_buf(i, &frame);
        atx.put(i, 60);
    }
    a.write32(tdt(0), 3);
    for i in 0..3 {
        assert_eq!(brx.data(i, 60), &frame[..], "frame {i}");
        assert_eq!(
            &brx.desc(i)[8..16],
            &[0x03, 0, 0, 0, 60, 0, 0, 0],
            "descriptor {i}"
        );
    }
    assert_eq!(b.read32(rdh(0)), 3);
    assert_eq!(model.wire_stats(&a).tx_frames, 3);
    assert_eq!(model.wire_stats(&b).rx_frames, 3);
    assert_eq!(b.read32(GPRC), 3);
    assert_eq!(a.read32(GPTC), 3);
    // A sink takes a's frames from now on.
    model.attach_sink(&a);
    atx.put(3, 60);
    a.write32(tdt(0), 4);
    assert_eq!(a.read32(tdh(0)), 4);
    assert_eq!(model.wire_stats(&b).rx_frames, 3);
    assert_eq!(b.read32(rdh(0)), 3);
    assert_eq!(model.wire_stats(&a).tx_frames, 4);
}

#[test]
fn source_fills_every_descriptor_the_device_owns() {
    let model = Model::new();
    let (port, rx, _tx) = ready_port(&model);
    let template = frame_to([0xff; 6], 60);
    model.attach_source(&port, template.clone(), Some(10));
    assert_eq!(port.read32(rdh(0)), 7);
    for i in 0..7 {
        assert_eq!(rx.data(i, 60), &template[..]);
        assert_eq!(rx.desc(i)[8], 0x03);
    }
    // Hand back 5 descriptors (7, 0..4): 3 frames are left in the source.
    for i in [7, 0, 1, 2, 3] {
        rx.give(i);
    }
    port.write32(rdt(0), 4);
    assert_eq!(port.read32(rdh(0)), 2);
    assert_eq!(model.wire_stats(&port).rx_frames, 10);
    assert_eq!(port.read32(GPRC), 10);
    assert_eq!(port.read32(MPC0), 0);
}

#[test]
fn freed_memory_is_forgotten_by_the_model() {
    let model = Model::new();
    let dma = model.dma();
    let a = dma.allocate(4096).unwrap();
    let b = dma.allocate(8192).unwrap();
    assert_eq!(dma.live_regions(), 2);
    drop(a);
    assert_eq!(dma.live_regions(), 1);
    drop(b);
    assert_eq!(dma.live_regions(), 0);
}

// ---------------------------------------------------------------- rules

#[test]
#[should_panic(expected = "82599 model: rule violated: register access outside BAR0")]
fn rule_register_offset_outside_bar0() {
    raw_port(&Model::new()).read32(0x20000);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: register access outside BAR0 or not 4-byte aligned"
)]
fn rule_unaligned_register_offset() {
    raw_port(&Model::new()).write32(0x2, 0);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: register written while the device is in reset"
)]
fn rule_write_while_in_reset() {
    let port = raw_port(&Model::new());
    master_disable(&port);
    port.write32(CTRL, CTRL_RST);
    port.write32(EIMC, 0xFFFF_FFFF);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: register read within 1 ms of setting CTRL.RST"
)]
#[cfg_attr(
    miri,
    ignore = "Miri's clock advances with the code it interprets: the model's locking between \
              the write and the read already takes more than the millisecond"
)]
fn rule_read_within_a_millisecond_of_reset() {
    let port = raw_port(&Model::new());
    master_disable(&port);
    port.write32(CTRL, CTRL_RST);
    // Polling CTRL at once is what the datasheet forbids (§8.2.3.1.1).
    port.read32(CTRL);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: software reset without the master disable algorithm"
)]
fn rule_reset_without_master_disable() {
    raw_port(&Model::new()).write32(CTRL, CTRL_RST | CTRL_LRST);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: software reset without the master disable algorithm"
)]
fn rule_reset_without_polling_status_after_master_disable() {
    let port = raw_port(&Model::new());
    port.write32(CTRL, CTRL_MASTER_DISABLE);
    port.write32(CTRL, CTRL_RST);
}

/// A port whose master disable timed out (STATUS.GIO_MASTER_ENABLE held, polled 10 times).
fn master_disable_timed_out(model: &Model) -> (ixy::model::Port, Port) {
    let handle = model.add_port();
    model.hold_back(&handle, Completion::MasterDisable, true);
    // SAFETY: no ring is programmed here: the device moves no memory.
    let port = unsafe { handle.registers() };
    port.write32(CTRL, CTRL_MASTER_DISABLE);
    for _ in 0..10 {
        assert_ne!(port.read32(STATUS) & STATUS_GIO_MASTER_ENABLE, 0);
    }
    (handle, port)
}

/// After a master disable timeout, as Linux: the PCIe buffers flushed (HLREG0.LPBK,
/// GCR_EXT.Buffers_Clear_Func), then two resets, the second without a master disable.
#[test]
fn master_disable_timeout_flush_then_two_resets() {
    let model = Model::new();
    let (handle, port) = master_disable_timed_out(&model);
    port.write32(HLREG0, 1 << 15);
    port.write32(GCR_EXT, GCR_EXT_BUFFERS_CLEAR);
    port.write32(GCR_EXT, 0);
    port.write32(HLREG0, 0);
    for _ in 0..2 {
        port.write32(CTRL, CTRL_RST);
        std::thread::sleep(std::time::Duration::from_millis(1));
        while port.read32(CTRL) & CTRL_RST != 0 {}
    }
    assert_eq!(model.resets(&handle).len(), 2);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: reset after a master disable timeout without the PCIe \
                buffers flushed (GCR_EXT)"
)]
fn rule_reset_after_master_disable_timeout_without_flush() {
    let model = Model::new();
    let (_handle, port) = master_disable_timed_out(&model);
    port.write32(GCR_EXT, GCR_EXT_BUFFERS_CLEAR); // without HLREG0.LPBK: no flush
    port.write32(CTRL, CTRL_RST);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: ring longer than 128 KiB (8K descriptors)")]
fn rule_ring_longer_than_8k_descriptors() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(rdlen(0), 128 * 1024); // 8K descriptors: the limit, fine
    assert_eq!(port.read32(rdlen(0)), 128 * 1024);
    port.write32(tdlen(0), 128 * 1024 + 128);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: RXCTRL.RXEN set without the receive data path halted"
)]
fn rule_rxen_without_secrx_halt() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    port.write32(RXCTRL, 1);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: RXCTRL.RXEN set without the receive data path halted"
)]
fn rule_rxen_with_rx_dis_but_without_polling_secrx_rdy() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    port.write32(SECRXCTRL, SECRXCTRL_RX_DIS);
    port.write32(RXCTRL, 1);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: rx enabled with RDRXCTL.RSCFRSTSIZE")]
fn rule_rxen_with_default_rscfrstsize() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    rx_settings(&port);
    port.write32(RDRXCTL, port.read32(RDRXCTL) | 0x8 << 17);
    rx_on(&port);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: rx enabled with RDRXCTL.RSCFRSTSIZE")]
fn rule_rxen_without_fcoe_wrfix() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    rx_settings(&port);
    port.write32(RDRXCTL, port.read32(RDRXCTL) & !RDRXCTL_FCOE_WRFIX);
    rx_on(&port);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: rx enabled with FCRTH.RTH unset")]
fn rule_rxen_without_fcrth() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    rx_settings(&port);
    port.write32(FCRTH0, 0);
    rx_on(&port);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: FCTRL changed while RXCTRL.RXEN is set")]
fn rule_fctrl_changed_while_receiving() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(FCTRL, port.read32(FCTRL) | FCTRL_UPE);
}

#[test]
fn no_reception_while_the_receive_data_path_is_halted() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(SECRXCTRL, SECRXCTRL_RX_DIS);
    assert!(!model.inject(&port, &frame_to([0xff; 6], 60)));
    assert_eq!(port.read32(rdh(0)), 0);
    port.write32(SECRXCTRL, 0);
    assert!(model.inject(&port, &frame_to([0xff; 6], 60)));
    assert_eq!(port.read32(rdh(0)), 1);
    assert_eq!(port.read32(GPRC), 1);
    // Unchanged FCTRL writes are not filter changes.
    port.write32(FCTRL, port.read32(FCTRL));
}

#[test]
fn eimc_ex_masks_the_msix_queue_vectors() {
    let port = raw_port(&Model::new());
    route_vectors(&port);
    port.write32(EIMS_EX0, 0xF0F0);
    port.write32(EIMS_EX0 + 4, 0x1);
    port.write32(EIMC_EX0, 0x00F0);
    port.write32(EIMC_EX0 + 4, u32::MAX);
    assert_eq!(port.read32(EIMS_EX0), 0xF000);
    assert_eq!(port.read32(EIMS_EX0 + 4), 0);
    assert_eq!(port.read32(EIMC_EX0), 0);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: ring base not 128-byte aligned")]
fn rule_rx_ring_base_unaligned() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(rdbal(0), 0x1000_0040);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: ring base not 128-byte aligned")]
fn rule_tx_ring_base_unaligned() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(tdbal(2), 0x1000_0008);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: ring length not a multiple of 128")]
fn rule_rdlen_not_multiple_of_128() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(rdlen(0), 16 * 10);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: ring length not a multiple of 128")]
fn rule_tdlen_not_multiple_of_128() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(tdlen(0), 100);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: queue enabled before its ring is set")]
fn rule_rx_queue_enabled_before_ring() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(srrctl(0), SRRCTL_ADV_ONEBUF_2K);
    port.write32(rxdctl(0), ENABLE);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: queue enabled before its ring is set")]
fn rule_tx_queue_enabled_before_ring() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(DMATXCTL, 1);
    port.write32(tdlen(0), 1024);
    port.write32(txdctl(0), ENABLE);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: ring registers changed while the queue is enabled"
)]
fn rule_ring_changed_while_enabled() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    port.write32(rdlen(0), 256);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: rx queue enabled without SRRCTL advanced one-buffer descriptors"
)]
fn rule_rx_queue_with_legacy_descriptors() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let ring = model.dma().allocate(128).unwrap();
    port.write32(rdbal(0), bus(&ring) as u32);
    port.write32(rdbah(0), (bus(&ring) >> 32) as u32);
    port.write32(rdlen(0), 128);
    port.write32(rxdctl(0), ENABLE); // SRRCTL still at its default: legacy
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tx queue enabled before DMATXCTL.TE")]
fn rule_tx_queue_enabled_before_te() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let ring = model.dma().allocate(128).unwrap();
    port.write32(tdbal(0), bus(&ring) as u32);
    port.write32(tdbah(0), (bus(&ring) >> 32) as u32);
    port.write32(tdlen(0), 128);
    port.write32(txdctl(0), ENABLE);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tail beyond the ring")]
fn rule_rx_tail_beyond_ring() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    port.write32(rdt(0), 8);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tail beyond the ring")]
fn rule_tx_tail_beyond_ring() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(tdt(0), 9);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: tail written before the queue enable bit was read back"
)]
fn rule_tail_before_enable_read_back() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let ring = model.dma().allocate(128).unwrap();
    port.write32(srrctl(0), SRRCTL_ADV_ONEBUF_2K);
    port.write32(rdbal(0), bus(&ring) as u32);
    port.write32(rdbah(0), (bus(&ring) >> 32) as u32);
    port.write32(rdlen(0), 128);
    port.write32(rxdctl(0), ENABLE);
    port.write32(rdt(0), 7);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: tail moved backwards over descriptors the device owns"
)]
fn rule_tail_moved_backwards() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8); // head 0, tail 7
    port.write32(rdt(0), 3);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: head written while the queue is enabled")]
fn rule_head_written_while_enabled() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(tdh(0), 0);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: rx enabled before the rx queue is ready")]
fn rule_rxen_before_queue_enabled() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    port.write32(RXCTRL, 1);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: HLREG0.RXCRCSTRP and RDRXCTL.CRCSTRIP differ"
)]
fn rule_crc_strip_settings_differ() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    // HLREG0.RXCRCSTRP is set after reset, RDRXCTL.CRCSTRIP is not.
    rx_settings(&port);
    rx_on(&port);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: DMA address outside memory the driver allocated"
)]
fn rule_ring_outside_model_memory() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let ring = HeapDma.allocate(128).unwrap(); // not from model.dma()
    port.write32(srrctl(0), SRRCTL_ADV_ONEBUF_2K);
    port.write32(rdbal(0), bus(&ring) as u32);
    port.write32(rdbah(0), (bus(&ring) >> 32) as u32);
    port.write32(rdlen(0), 128);
    port.write32(rxdctl(0), ENABLE);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: DMA address outside memory the driver allocated"
)]
fn rule_rx_buffer_freed() {
    let model = Model::new();
    let (port, rx, _tx) = ready_port(&model);
    let RxQ { ring, bufs, .. } = rx;
    drop(bufs);
    model.inject(&port, &frame_to([0xff; 6], 60));
    drop(ring);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: DMA address outside memory the driver allocated"
)]
fn rule_tx_buffer_beyond_allocation() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.put(0, 60);
    let beyond = bus(&tx.bufs) + tx.bufs.size() as u64 - 30;
    tx.edit(0, |d| d[..8].copy_from_slice(&beyond.to_le_bytes()));
    port.write32(tdt(0), 1);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: rx descriptor given to the device with DD set"
)]
fn rule_rx_descriptor_not_refilled() {
    let model = Model::new();
    let (port, rx, _tx) = ready_port(&model);
    let f = frame_to([0xff; 6], 60);
    for _ in 0..7 {
        model.inject(&port, &f);
    }
    // Hand descriptor 7 back without rewriting descriptor 0 (still in write-back format).
    rx.give(7);
    port.write32(rdt(0), 1);
    model.inject(&port, &f);
    model.inject(&port, &f);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tx descriptor without DEXT")]
fn rule_tx_legacy_descriptor() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.put(0, 60);
    tx.edit(0, |d| d[11] &= !0x20);
    port.write32(tdt(0), 1);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tx descriptor with a wrong DTYP")]
fn rule_tx_wrong_dtyp() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.put(0, 60);
    tx.edit(0, |d| d[10] = 0x50); // DTYP 0101b
    port.write32(tdt(0), 1);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tx descriptor with reserved bits set")]
fn rule_tx_reserved_bits() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.put(0, 60);
    tx.edit(0, |d| d[11] |= 0x10); // DCMD bit 4 (bit 28)
    port.write32(tdt(0), 1);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tx descriptor with zero length")]
fn rule_tx_zero_length() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.put(0, 0);
    port.write32(tdt(0), 1);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: tx PAYLEN does not match the frame length")]
fn rule_tx_paylen_mismatch() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.put(0, 60);
    tx.edit(0, |d| d[12..].copy_from_slice(&(64u32 << 14).to_le_bytes()));
    port.write32(tdt(0), 1);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: tx frame longer than the maximum frame size"
)]
fn rule_tx_frame_too_long() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.put(0, 1600);
    port.write32(tdt(0), 1);
}

#[test]
fn rule_messages_name_the_port_and_the_detail() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        port.write32(rdlen(5), 200);
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(msg.contains("not a multiple of 128"), "{msg}");
    assert!(msg.contains("port 0: RDLEN(5) = 200"), "{msg}");
    // The model stays usable after a caught violation.
    port.write32(rdlen(5), 256);
    assert_eq!(port.read32(rdlen(5)), 256);
}

#[test]
fn source_starts_when_the_link_comes_up() {
    let model = Model::new();
    let port = raw_port(&model);
    reset(&port);
    let _rx = setup_rx_queue(&model, &port, 0, 8);
    enable_rx(&port);
    model.attach_source(&port, frame_to([0xff; 6], 60), None);
    assert_eq!(port.read32(rdh(0)), 0, "no link, no traffic");
    bring_link_up(&port);
    assert_eq!(port.read32(rdh(0)), 7);
    assert_eq!(model.wire_stats(&port).rx_frames, 7);
    assert_eq!(port.read32(GPRC), 7);
}

#[test]
fn sink_counts_padded_frames_without_capture() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    tx.write_buf(0, &frame_to([0xff; 6], 42));
    tx.put(0, 42);
    port.write32(tdt(0), 1);
    let w = model.wire_stats(&port);
    assert_eq!((w.tx_frames, w.tx_bytes), (1, 60));
    assert_eq!(port.read32(GOTCL), 64);
    assert_eq!(port.read32(GPTC), 1);
    assert_eq!(port.read32(tdh(0)), 1);
    assert!(model.take_transmitted(&port).is_empty());
}

// ------------------------------------------- write rules: values, reserved bits, waits

const RTTDCS: usize = 0x04900;
const TXPBSIZE0: usize = 0x0CC00;
const HLREG0_TXPADEN: u32 = 1 << 10;
const MAXFRS: usize = 0x04268;

/// The message of the panic `f` raises (a rule violation), or `None`.
fn violation(f: impl FnOnce()) -> Option<String> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    r.err()
        .map(|e| e.downcast_ref::<String>().cloned().unwrap_or_default())
}

#[test]
fn rule_reserved_bits_in_every_checked_register() {
    // (register, offset, a value with one reserved bit set, datasheet section)
    let cases: [(&str, usize, u32, &str); 21] = [
        ("GPIE", GPIE, 0xC000_0030 | 1 << 16, "8.2.3.5"),
        ("CTRL", CTRL, 1 << 0, "8.2.3.1.1"),
        ("EICR", EICR, 1 << 23, "8.2.3.5"),
        ("EICS", EICS, 1 << 29, "8.2.3.5"),
        ("EIMS", EIMS, 1 << 23, "8.2.3.5"),
        ("IVAR", IVAR0 + 4 * 3, 0x80 | 1 << 6, "8.2.3.5"),
        ("EITR", EITR0 + 4 * 5, 1 << 12, "8.2.3.5"),
        ("RXCTRL", RXCTRL, 1 << 2, "8.2.3.8"),
        ("FCTRL", FCTRL, 1 << 11, "8.2.3.7.1"),
        ("RAH", RAH0 + 8 * 2, 1 << 16, "8.2.3.7.9"),
        ("RQSMR", RQSMR0, 1 << 4, "8.2.3.8"),
        ("RXPBSIZE", RXPBSIZE0 + 4, 1 << 9, "8.2.3.8.9"),
        ("TXPBSIZE", TXPBSIZE0 + 4, 1 << 20, "8.2.3.9.13"),
        ("FCRTH", FCRTH0 + 4, 1 << 31 | 1 << 0, "8.2.3.3"),
        ("DMATXCTL", DMATXCTL, 1 << 4, "8.2.3.9"),
        ("MAXFRS", MAXFRS, 1518 << 16 | 1, "8.2.3.22.13"),
        (
            "SRRCTL",
            srrctl(3),
            SRRCTL_ADV_ONEBUF_2K | 1 << 5,
            "8.2.3.8.7",
        ),
        ("TXDCTL", txdctl(3), 1 << 7, "8.2.3.9"),
        ("MRQC", MRQC, MRQC_RSS | 1 << 4, "8.2.3.7.12"),
        ("RETA", RETA + 4 * 31, 0x0300_0010, "8.2.3.7.13"),
        ("TQSM", 0x08600 + 4 * 2, 1 << 12, "8.2.3.9"),
    ];
    for (name, offset, value, section) in cases {
        let port = raw_port(&Model::new());
        reset(&port);
        port.write32(RTTDCS, 1 << 6); // TXPBSIZE may change
        let msg = violation(|| port.write32(offset, value))
            .unwrap_or_else(|| panic!("{name} = {value:#x} was accepted"));
        let want = format!(
            "82599 model: rule violated: register written with reserved bits set (port 0: \
             {name} = {value:#010x} sets reserved bits"
        );
        assert!(msg.starts_with(&want), "{msg}");
        assert!(msg.ends_with(&format!("(§{section}))")), "{msg}");
    }
    // RDLEN/TDLEN bits 31:20.
    let port = raw_port(&Model::new());
    let msg = violation(|| port.write32(tdlen(1), 1 << 20)).unwrap();
    assert!(
        msg.contains("TDLEN = 0x00100000 sets reserved bits 0x00100000"),
        "{msg}"
    );
}

#[test]
fn defined_bits_of_the_checked_registers_are_accepted() {
    let port = raw_port(&Model::new());
    reset(&port);
    route_vectors(&port);
    port.write32(FCTRL, 1 << 1 | FCTRL_MPE | FCTRL_UPE | FCTRL_BAM);
    port.write32(RXCTRL, 0x2);
    port.write32(GPIE, 0xC000_FFFF);
    port.write32(EITR0, 0x8000_0FF8 | 0x1F << 16);
    port.write32(IVAR0 + 4 * 40, 0xBFBF_BFBF);
    port.write32(RQSMR0, 0x0F0F_0F0F);
    port.write32(FCRTH0, 0x8007_FFE0);
    port.write32(DMATXCTL, 0x8100_0009);
    port.write32(MAXFRS, 9018 << 16);
    port.write32(srrctl(1), 0x1FC0_3F1F);
    port.write32(txdctl(1), 0x067F_7F7F & !ENABLE);
    port.write32(EIMS, !(1 << 23 | 1 << 29));
    // EIMC is not checked: all ones masks everything (4.6.3.1; Linux IXGBE_IRQ_CLEAR_MASK).
    port.write32(EIMC, u32::MAX);
    assert_eq!(port.read32(EIMS), 0);
    assert_eq!(port.read32(srrctl(1)), 0x1FC0_3F1F);
    assert_eq!(port.read32(txdctl(1)), 0x047F_7F7F);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: interrupt cause or mask bit written for a vector \
                no cause is mapped to (IVAR) (port 0: EIMS = 0x00000004: no valid IVAR entry \
                maps a cause to vector(s) 0x4"
)]
fn rule_eims_unmasks_a_vector_no_cause_is_mapped_to() {
    let port = raw_port(&Model::new());
    port.write32(IVAR0, 0x0081_0080); // rx queues 0, 1 -> vectors 0, 1
    port.write32(EIMS, 0x3 | 1 << 20); // their vectors and LSC: fine
    port.write32(EIMS, 0x4);
}

#[test]
#[should_panic(
    expected = "EIMS_EX(1) = 0x00000002: no valid IVAR entry maps a cause to vector(s) \
                           0x200000000"
)]
fn rule_eims_ex_unmasks_a_vector_no_cause_is_mapped_to() {
    let port = raw_port(&Model::new());
    port.write32(IVAR0, 0x0000_00A0); // rx queue 0 -> vector 32
    port.write32(EIMS_EX0 + 4, 0x1);
    port.write32(EIMS_EX0 + 4, 0x2);
}

#[test]
#[should_panic(expected = "EICR = 0x00000002: no valid IVAR entry maps a cause to vector(s) 0x2")]
fn rule_eicr_clears_a_vector_no_cause_is_mapped_to() {
    let port = raw_port(&Model::new());
    port.write32(IVAR0, 0x0000_0080);
    port.write32(EICR, 0x1);
    port.write32(EICR, 0x2);
}

#[test]
fn eicr_write_clears_only_the_ones_and_eims_shares_vectors_0_to_15_with_eims_ex0() {
    let port = raw_port(&Model::new());
    route_vectors(&port);
    port.write32(EICS, 0x0000_0013);
    port.write32(EICR, 0x0000_0011);
    assert_eq!(port.read32(EICR), 0x2, "write 1b to clear");
    port.write32(EIMS, 0x0010_0005);
    assert_eq!(port.read32(EIMS_EX0), 0x5);
    port.write32(EIMS_EX0, 0x0003_0000);
    assert_eq!(
        port.read32(EIMS),
        0x0010_0005,
        "vectors 16+ are not EIMS bits"
    );
    assert_eq!(port.read32(EIMS_EX0), 0x0003_0005);
    port.write32(EIMC_EX0, 0x1);
    assert_eq!(port.read32(EIMS), 0x0010_0004);
    port.write32(EIMC, 0x4);
    assert_eq!(port.read32(EIMS_EX0), 0x0003_0000);
}

#[test]
fn a_cleared_queue_reads_enabled_for_two_polls_then_disabled() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(RXCTRL, 0);
    port.write32(txdctl(0), 0);
    let reads: Vec<u32> = (0..4).map(|_| port.read32(txdctl(0)) & ENABLE).collect();
    assert_eq!(reads, [ENABLE, ENABLE, 0, 0]);
    // Stopped: its registers may change, and a reset may come (rx queue 0 still runs).
    port.write32(tdlen(0), 256);
    let msg = violation(|| reset(&port)).unwrap();
    assert!(
        msg.contains("CTRL.RST while RXDCTL(0).ENABLE still reads 1"),
        "{msg}"
    );
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: software reset while a queue is enabled or not yet \
                read back disabled (port 0: CTRL.RST while TXDCTL(0).ENABLE still reads 1"
)]
fn rule_reset_before_the_queue_read_back_disabled() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(RXCTRL, 0);
    port.write32(rxdctl(0), 0);
    assert!((0..10).any(|_| port.read32(rxdctl(0)) & ENABLE == 0));
    port.write32(txdctl(0), 0);
    port.read32(txdctl(0)); // one poll is not enough
    reset(&port);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: ring registers changed while the queue is \
                           enabled (port 0: SRRCTL(0) written while queue 0 is enabled"
)]
fn rule_srrctl_changed_before_the_queue_read_back_disabled() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(RXCTRL, 0);
    port.write32(rxdctl(0), 0);
    port.write32(srrctl(0), SRRCTL_ADV_ONEBUF_2K);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: ring registers changed while the queue is \
                           enabled (port 0: TDBAH(0) written while queue 0 is enabled"
)]
fn rule_tx_ring_base_changed_while_enabled() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(tdbah(0), 0);
}

#[test]
#[should_panic(expected = "82599 model: rule violated: RXPBSIZE changed while RXCTRL.RXEN is set")]
fn rule_rx_packet_buffer_resized_while_receiving() {
    let model = Model::new();
    let (port, _rx, _tx) = ready_port(&model);
    port.write32(RXPBSIZE0, port.read32(RXPBSIZE0)); // unchanged: fine
    port.write32(RXPBSIZE0, 256 << 10);
}

#[test]
#[should_panic(
    expected = "82599 model: rule violated: TXPBSIZE changed without the tx descriptor \
                           arbiter disabled (RTTDCS.ARBDIS)"
)]
fn rule_tx_packet_buffer_resized_with_the_arbiter_on() {
    let port = raw_port(&Model::new());
    port.write32(RTTDCS, 1 << 6);
    port.write32(TXPBSIZE0, 80 << 10);
    port.write32(RTTDCS, 0);
    port.write32(TXPBSIZE0, 160 << 10);
}

#[test]
fn without_txpaden_short_frames_leave_short() {
    let model = Model::new();
    let (port, _rx, tx) = ready_port(&model);
    port.write32(HLREG0, port.read32(HLREG0) & !HLREG0_TXPADEN);
    model.set_capture(&port, true);
    tx.write_buf(0, &frame_to([0xff; 6], 42));
    tx.put(0, 42);
    port.write32(tdt(0), 1);
    let sent = model.take_transmitted(&port);
    assert_eq!(sent, [frame_to([0xff; 6], 42)]);
    assert_eq!(model.wire_stats(&port).tx_bytes, 42);
}

#[test]
fn held_back_completions_as_the_registers_show_them() {
    use ixy::model::Completion;
    let model = Model::new();
    let port = raw_port(&model);
    model.hold_back(&port, Completion::EepromAutoRead, true);
    model.hold_back(&port, Completion::DmaInit, true);
    assert_eq!(port.read32(EEC) & EEC_ARD, 0);
    assert_eq!(port.read32(RDRXCTL) & RDRXCTL_DMAIDONE, 0);
    model.hold_back(&port, Completion::EepromAutoRead, false);
    model.hold_back(&port, Completion::DmaInit, false);
    assert_eq!(port.read32(EEC) & EEC_ARD, EEC_ARD);
    assert_eq!(port.read32(RDRXCTL) & RDRXCTL_DMAIDONE, RDRXCTL_DMAIDONE);

    // A reset that never ends: CTRL.RST keeps reading 1, writes are ignored.
    model.hold_back(&port, Completion::Reset, true);
    start_reset(&port, CTRL_RST);
    std::thread::sleep(std::time::Duration::from_millis(15));
    for _ in 0..100 {
        assert_eq!(port.read32(CTRL) & CTRL_RST, CTRL_RST);
    }
    port.write32(FCTRL, FCTRL_BAM);
    assert_eq!(port.read32(FCTRL), 0);
    model.hold_back(&port, Completion::Reset, false);
    assert_eq!(port.read32(CTRL) & CTRL_RST, 0);

    // Queue enable held: ENABLE never reads 1; disable held: it never reads 0, and a reset
    // after enough polls is allowed (the driver waited).
    model.hold_back(&port, Completion::TxQueueEnable, true);
    let _tx = {
        let ring = model.dma().allocate(128).unwrap();
        port.write32(tdbal(1), bus(&ring) as u32);
        port.write32(tdbah(1), (bus(&ring) >> 32) as u32);
        port.write32(tdlen(1), 128);
        port.write32(DMATXCTL, 1);
        port.write32(txdctl(1), ENABLE);
        assert!((0..100).all(|_| port.read32(txdctl(1)) & ENABLE == 0));
        ring
    };
    model.hold_back(&port, Completion::TxQueueEnable, false);
    model.hold_back(&port, Completion::TxQueueDisable, true);
    port.write32(txdctl(1), ENABLE);
    assert_ne!(port.read32(txdctl(1)) & ENABLE, 0);
    port.write32(txdctl(1), 0);
    assert!((0..100).all(|_| port.read32(txdctl(1)) & ENABLE != 0));
    reset(&port);
    assert_eq!(port.read32(txdctl(1)), 0);
}

#[test]
fn rule_eimc_masks_a_vector_no_cause_is_mapped_to_unless_it_masks_all() {
    let port = raw_port(&Model::new());
    port.write32(IVAR0, 0x0000_0081); // rx queue 0 -> vector 1
    // Masking everything (4.6.3.1) is always right.
    port.write32(EIMC, u32::MAX);
    port.write32(EIMC_EX0, u32::MAX);
    port.write32(EIMC_EX0 + 4, u32::MAX);
    port.write32(EIMC, 0x2 | 1 << 20);
    let msg = violation(|| port.write32(EIMC, 0x1)).unwrap();
    assert!(msg.contains("EIMC = 0x00000001: no valid IVAR entry maps a cause to vector(s) 0x1"));
    let msg = violation(|| port.write32(EIMC_EX0 + 4, 0x4)).unwrap();
    assert!(msg.contains(
        "EIMC_EX(1) = 0x00000004: no valid IVAR entry maps a cause to vector(s) 0x400000000"
    ));
}
