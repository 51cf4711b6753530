//! The PF/VF mailbox of the Intel 10 GbE controllers, virtual function side.
//!
//! Intel 82599 10 GbE Controller Datasheet 7.10.2 (SR-IOV support, which describes the
//! PF/VF mailbox; 7.10.3 is the L2 switch) and 8.3.5 (VFMAILBOX, VFMBMEM). Message ids, the reply bits and the API version numbers are those of Linux
//! (`drivers/net/ethernet/intel/ixgbevf/mbx.h`, mirrored by `ixgbe/ixgbe_mbx.h` on the PF
//! side), since the PF at the other end is, in practice, Linux's ixgbe.
//!
//! A message is up to 16 32-bit words in VFMBMEM. Word 0 carries the message id (bits 15:0),
//! extra information (bits 23:16) and, in the PF's reply, ACK or NACK and CTS ("clear to
//! send": the PF accepts requests from this VF). Sending: take the buffer (VFU), write the
//! words, set REQ, then wait until the PF acknowledges (PFACK). Receiving: wait until the
//! PF has written a message (PFSTS), take the buffer, read it, and write ACK, which also
//! gives the buffer back.
//!
//! PFSTS, PFACK and RSTD clear when VFMAILBOX is read. The mailbox keeps the ones it saw in a
//! software copy, so a read done while waiting for one event cannot lose another (the Linux
//! VF driver does the same).

use std::cell::Cell;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::registers::{Deadline, RegisterSpace};

/// VF Mailbox control register (8.3.5).
pub(crate) const VFMAILBOX: usize = 0x002fc;
/// VFMAILBOX.REQ: the VF posted a message for the PF.
pub(crate) const VFMAILBOX_REQ: u32 = 1 << 0;
/// VFMAILBOX.ACK: the VF read the PF's message.
pub(crate) const VFMAILBOX_ACK: u32 = 1 << 1;
/// VFMAILBOX.VFU: the VF owns the message buffer.
pub(crate) const VFMAILBOX_VFU: u32 = 1 << 2;
/// VFMAILBOX.PFSTS: the PF wrote a message (read to clear).
pub(crate) const VFMAILBOX_PFSTS: u32 = 1 << 4;
/// VFMAILBOX.PFACK: the PF took the VF's message (read to clear).
pub(crate) const VFMAILBOX_PFACK: u32 = 1 << 5;
/// VFMAILBOX.RSTI: a PF reset is in progress; the VF must not use the device.
pub(crate) const VFMAILBOX_RSTI: u32 = 1 << 6;
/// VFMAILBOX.RSTD: the PF finished a reset; the VF must initialise again (read to clear).
pub(crate) const VFMAILBOX_RSTD: u32 = 1 << 7;
/// The bits that clear when VFMAILBOX is read.
const VFMAILBOX_R2C: u32 = VFMAILBOX_PFSTS | VFMAILBOX_PFACK | VFMAILBOX_RSTD;

/// VF Mailbox memory: word `n` of the message buffer (8.3.5).
pub(crate) const fn vfmbmem(n: usize) -> usize {
    0x00200 + 4 * n
}
/// Words in the message buffer.
pub(crate) const MBX_WORDS: usize = 16;

/// Message ids and reply bits (Linux `mbx.h`).
pub(crate) mod msg {
    /// VF reset; the reply carries the permanent MAC and the multicast filter type.
    pub(crate) const RESET: u32 = 0x01;
    /// Set the VF's unicast MAC address.
    pub(crate) const SET_MAC_ADDR: u32 = 0x02;
    /// Set the largest frame the VF receives (VMOLR.LPE).
    pub(crate) const SET_LPE: u32 = 0x05;
    /// Negotiate the mailbox API version.
    pub(crate) const API_NEGOTIATE: u32 = 0x08;
    /// Ask for the VF's queue counts (API 1.1 and later).
    pub(crate) const GET_QUEUES: u32 = 0x09;
    /// Set multicast / promiscuous reception (API 1.2 and later).
    pub(crate) const UPDATE_XCAST_MODE: u32 = 0x0c;
    /// Reply: the PF did what was asked.
    pub(crate) const ACK: u32 = 0x8000_0000;
    /// Reply: the PF refused.
    pub(crate) const NACK: u32 = 0x4000_0000;
    /// Reply: the VF is clear to send requests.
    pub(crate) const CTS: u32 = 0x2000_0000;
    /// The message id in word 0.
    pub(crate) const ID_MASK: u32 = 0xffff;
    /// Words of the RESET reply: id, MAC (words 1-2), multicast filter type.
    pub(crate) const RESET_REPLY_WORDS: usize = 4;
    /// GET_QUEUES reply: word with the transmit queue count.
    pub(crate) const TX_QUEUES: usize = 1;
    /// GET_QUEUES reply: word with the receive queue count.
    pub(crate) const RX_QUEUES: usize = 2;
    /// GET_QUEUES reply: word with the traffic class count (Linux `IXGBE_VF_TRANS_VLAN`).
    pub(crate) const TRAFFIC_CLASSES: usize = 3;
    /// GET_QUEUES reply: word with the default queue.
    pub(crate) const DEF_QUEUE: usize = 4;
}

/// UPDATE_XCAST_MODE modes (Linux `enum ixgbevf_xcast_modes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XcastMode {
    /// Own MAC and the multicast addresses the VF registered, plus broadcast.
    Multi = 1,
    /// Every frame (not on 82599 PFs; X540/X550 PFs allow it for trusted VFs).
    Promisc = 3,
}

impl XcastMode {
    /// The mode with number `n` in a reply, as text.
    pub(crate) fn describe(n: u32) -> &'static str {
        let names = ["none", "multicast", "all-multicast", "promiscuous"];
        names.get(n as usize).unwrap_or(&"unknown")
    }
}

/// Mailbox API versions, as numbered on the wire (Linux `enum ixgbe_pfvf_api_rev`; 1 is
/// Solaris' 2.0, which this driver does not speak).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ApiVersion {
    /// API 1.0: reset, MAC, multicast, VLAN, LPE.
    #[default]
    V1_0 = 0,
    /// API 1.1: adds GET_QUEUES.
    V1_1 = 2,
    /// API 1.2: adds UPDATE_XCAST_MODE (multicast modes).
    V1_2 = 3,
    /// API 1.3: adds promiscuous mode.
    V1_3 = 4,
    /// API 1.4: adds IPsec offload messages.
    V1_4 = 5,
}

impl ApiVersion {
    /// The versions this driver tries, newest first (like the Linux VF).
    pub(crate) const NEWEST_FIRST: [ApiVersion; 5] = [
        ApiVersion::V1_4,
        ApiVersion::V1_3,
        ApiVersion::V1_2,
        ApiVersion::V1_1,
        ApiVersion::V1_0,
    ];

    /// "1.x".
    pub fn name(self) -> &'static str {
        ["1.0", "2.0", "1.1", "1.2", "1.3", "1.4"][self as usize]
    }
}

/// A message from the PF.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply {
    /// The words as read from VFMBMEM.
    pub(crate) words: [u32; MBX_WORDS],
}

impl Reply {
    /// True if the PF acknowledged the request (ACK set, NACK clear).
    pub(crate) fn acked(&self) -> bool {
        self.words[0] & (msg::ACK | msg::NACK) == msg::ACK
    }

    /// True if the PF refused because the VF is not clear to send (it has not completed a
    /// RESET handshake since the PF last reset it).
    pub(crate) fn not_clear_to_send(&self) -> bool {
        !self.acked() && self.words[0] & msg::CTS == 0
    }

    /// A MAC address in words 1 and 2, bytes in memory order (as Linux copies it).
    pub(crate) fn mac(&self) -> [u8; 6] {
        let a = self.words[1].to_le_bytes();
        let b = self.words[2].to_le_bytes();
        [a[0], a[1], a[2], a[3], b[0], b[1]]
    }
}

/// Packs a MAC address into words 1 and 2 of a message (inverse of [`Reply::mac`]).
pub(crate) fn mac_words(mac: [u8; 6]) -> [u32; 2] {
    [
        u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        u32::from_le_bytes([mac[4], mac[5], 0, 0]),
    ]
}

/// Where a VF's mailbox registers are in its BAR0: the control register (VFMAILBOX on the
/// 82599, V2PMAILBOX on the 82576, same bits) and word 0 of the message buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MailboxAt {
    /// VFMAILBOX / V2PMAILBOX.
    pub(crate) ctl: usize,
    /// VFMBMEM / VMBMEM word 0.
    pub(crate) mem: usize,
}

/// The 82599/X540/X550 VF's mailbox (82599 datasheet 8.3.5).
pub(crate) const AT_IXGBEVF: MailboxAt = MailboxAt {
    ctl: VFMAILBOX,
    mem: vfmbmem(0),
};

/// The VF end of the mailbox.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// Device name for error messages.
    name: String,
    /// Register offsets.
    at: MailboxAt,
    /// Longest wait for each step (buffer lock, PF ack, PF reply, end of a PF reset).
    timeout: Duration,
    /// Read-to-clear bits seen and not yet consumed.
    seen: Cell<u32>,
}

impl Mailbox {
    /// A mailbox of the device `name` at `at` whose waits end after `timeout`.
    pub(crate) fn new(name: &str, timeout: Duration, at: MailboxAt) -> Self {
        Mailbox {
            name: name.to_string(),
            at,
            timeout,
            seen: Cell::new(0),
        }
    }

    /// Reads VFMAILBOX, adding the read-to-clear bits to those seen before.
    fn status<R: RegisterSpace>(&self, regs: &R) -> u32 {
        let value = regs.read32(self.at.ctl);
        let seen = self.seen.get() | (value & VFMAILBOX_R2C);
        self.seen.set(seen);
        value | seen
    }

    /// True if `bits` are set now or were seen; consumes them.
    fn take<R: RegisterSpace>(&self, regs: &R, bits: u32) -> bool {
        let set = self.status(regs) & bits != 0;
        self.seen.set(self.seen.get() & !bits);
        set
    }

    /// True if the PF reset (is resetting, or finished a reset the VF has not handled).
    /// Does not consume the indication.
    pub(crate) fn reset_indicated<R: RegisterSpace>(&self, regs: &R) -> bool {
        self.status(regs) & (VFMAILBOX_RSTI | VFMAILBOX_RSTD) != 0
    }

    /// Waits until no PF reset is in progress (RSTI clear) and consumes a reset-done
    /// indication: the state in which a VF may start its own reset handshake.
    pub(crate) fn wait_reset_done<R: RegisterSpace>(&self, regs: &R) -> Result<()> {
        self.poll(
            || Ok(!self.take(regs, VFMAILBOX_RSTI | VFMAILBOX_RSTD)),
            |ms| {
                format!(
                    "the PF did not finish its reset within {ms} ms (VFMAILBOX.RSTI still \
                     set); is the PF driver loaded and its interface up?"
                )
            },
        )
    }

    /// Polls until `bit` is seen, failing after the timeout or when a PF reset starts.
    fn wait_for<R: RegisterSpace>(&self, regs: &R, bit: u32, what: &str) -> Result<()> {
        let seen = || {
            if self.take(regs, bit) {
                return Ok(true);
            }
            if self.status(regs) & VFMAILBOX_RSTI != 0 {
                let detail = format!("the PF started a reset while the VF waited for {what}");
                return Err(Error::device(&self.name, detail));
            }
            Ok(false)
        };
        self.poll(seen, |ms| {
            format!(
                "the PF did not answer the mailbox within {ms} ms (waiting for {what}); is the \
                 PF driver loaded and its interface up?"
            )
        })
    }

    /// Takes the message buffer (VFU), waiting until the hardware grants it.
    fn lock<R: RegisterSpace>(&self, regs: &R) -> Result<()> {
        let granted = || {
            regs.write32(self.at.ctl, VFMAILBOX_VFU);
            Ok(self.status(regs) & VFMAILBOX_VFU != 0)
        };
        self.poll(granted, |ms| {
            format!(
                "could not take the mailbox buffer within {ms} ms (VFMAILBOX.VFU never read \
                 back as set; the register reads {:#010x})",
                regs.read32(self.at.ctl)
            )
        })
    }

    /// Calls `done` every 50 µs until it returns true or an error; after the mailbox
    /// timeout, fails with the message `timed_out` gives for the timeout in ms.
    fn poll(
        &self,
        mut done: impl FnMut() -> Result<bool>,
        timed_out: impl FnOnce(u128) -> String,
    ) -> Result<()> {
        let mut deadline = Deadline::new(self.timeout);
        while !done()? {
            if deadline.passed() {
                return Err(Error::device(
                    &self.name,
                    timed_out(self.timeout.as_millis()),
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(())
    }

    /// Posts `message` and waits until the PF acknowledges it.
    pub(crate) fn send<R: RegisterSpace>(&self, regs: &R, message: &[u32]) -> Result<()> {
        self.lock(regs)?;
        // Old acknowledgements and unread PF messages are stale once a new request goes out.
        self.seen
            .set(self.seen.get() & !(VFMAILBOX_PFACK | VFMAILBOX_PFSTS));
        for (i, &word) in message.iter().enumerate() {
            regs.write32(self.at.mem + 4 * i, word);
        }
        // REQ without VFU: post the message and give the buffer to the PF.
        regs.write32(self.at.ctl, VFMAILBOX_REQ);
        self.wait_for(
            regs,
            VFMAILBOX_PFACK,
            &format!("its acknowledgement of message {:#x}", message[0]),
        )
    }

    /// Waits for a message from the PF and reads it.
    pub(crate) fn receive<R: RegisterSpace>(&self, regs: &R, what: &str) -> Result<Reply> {
        self.wait_for(regs, VFMAILBOX_PFSTS, what)?;
        self.lock(regs)?;
        let mut words = [0u32; MBX_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = regs.read32(self.at.mem + 4 * i);
        }
        // ACK without VFU: message read, buffer released.
        regs.write32(self.at.ctl, VFMAILBOX_ACK);
        Ok(Reply { words })
    }

    /// Sends `message` and returns the PF's reply to it.
    pub(crate) fn request<R: RegisterSpace>(&self, regs: &R, message: &[u32]) -> Result<Reply> {
        self.send(regs, message)?;
        let id = message[0] & msg::ID_MASK;
        let reply = self.receive(regs, &format!("its reply to message {id:#x}"))?;
        if reply.words[0] & msg::ID_MASK != id {
            return Err(Error::device(
                &self.name,
                format!(
                    "the PF answered message {id:#x} with {:#010x}, a reply to something else",
                    reply.words[0]
                ),
            ));
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::time::Instant;

    /// Plays the PF end of the mailbox, with the datasheet's numbers (8.3.5: VFMAILBOX at
    /// 0x2fc, REQ bit 0, ACK bit 1, VFU bit 2, PFSTS bit 4, PFACK bit 5, RSTI bit 6, RSTD
    /// bit 7; VFMBMEM at 0x200), not the constants under test. Anything else panics.
    #[derive(Default)]
    struct FakePf {
        /// VFMAILBOX as the VF reads it next.
        mailbox: Cell<u32>,
        mem: RefCell<[u32; 16]>,
        /// Bits that appear in VFMAILBOX after `delay` more reads of it.
        pending: Cell<u32>,
        delay: Cell<u32>,
        /// Reads of VFMAILBOX before each PF answer shows.
        answer_after: u32,
        /// The PF never acknowledges a request.
        silent: bool,
        /// The hardware never grants the buffer.
        locked: bool,
        /// Reads of VFMAILBOX that still show a PF reset in progress (RSTI); RSTD shows
        /// with the last.
        resetting: Cell<u32>,
        /// Word 0 of the PF's reply to the next request (the VF's words echoed after it).
        reply: Cell<Option<u32>>,
        /// What the VF posted: the words of each request.
        posted: RefCell<Vec<[u32; 16]>>,
        /// Values the VF wrote to VFMAILBOX.
        controls: RefCell<Vec<u32>>,
    }

    impl FakePf {
        fn answering(word0: u32) -> FakePf {
            let pf = FakePf::default();
            pf.reply.set(Some(word0));
            pf
        }

        fn owns_buffer(&self) -> bool {
            self.mailbox.get() & 0x4 != 0
        }

        /// The PF's answer shows after `answer_after` reads.
        fn answer(&self, bits: u32) {
            self.pending.set(self.pending.get() | bits);
            self.delay.set(self.answer_after);
        }
    }

    impl RegisterSpace for FakePf {
        fn read32(&self, offset: usize) -> u32 {
            match offset {
                0x2fc => {
                    match self.resetting.get() {
                        0 => {}
                        1 => self.mailbox.set(self.mailbox.get() & !0x40 | 0x80),
                        _ => self.mailbox.set(self.mailbox.get() | 0x40),
                    }
                    self.resetting.set(self.resetting.get().saturating_sub(1));
                    if self.pending.get() != 0 {
                        if self.delay.get() == 0 {
                            self.mailbox.set(self.mailbox.get() | self.pending.take());
                        } else {
                            self.delay.set(self.delay.get() - 1);
                        }
                    }
                    let value = self.mailbox.get();
                    // PFSTS, PFACK and RSTD clear on read.
                    self.mailbox.set(value & !0xb0);
                    value
                }
                0x200..0x240 if offset.is_multiple_of(4) => {
                    assert!(self.owns_buffer(), "VFMBMEM read without VFU");
                    self.mem.borrow()[(offset - 0x200) / 4]
                }
                _ => panic!("read of {offset:#x}"),
            }
        }

        fn write32(&self, offset: usize, value: u32) {
            match offset {
                0x2fc => {
                    self.controls.borrow_mut().push(value);
                    match value {
                        0x4 if !self.locked => self.mailbox.set(self.mailbox.get() | 0x4),
                        0x4 => {}
                        0x1 | 0x2 => {
                            assert!(self.owns_buffer(), "REQ or ACK without VFU");
                            self.mailbox.set(self.mailbox.get() & !0x4);
                        }
                        _ => panic!("VFMAILBOX written with {value:#x}"),
                    }
                    if value == 0x1 {
                        let words = *self.mem.borrow();
                        self.posted.borrow_mut().push(words);
                        if !self.silent {
                            self.answer(0x20);
                        }
                        if let Some(word0) = self.reply.take() {
                            let mut mem = self.mem.borrow_mut();
                            mem.copy_within(0..15, 1);
                            mem[0] = word0;
                            self.answer(0x10);
                        }
                    }
                }
                0x200..0x240 if offset.is_multiple_of(4) => {
                    assert!(self.owns_buffer(), "VFMBMEM written without VFU");
                    self.mem.borrow_mut()[(offset - 0x200) / 4] = value;
                }
                _ => panic!("write of {value:#x} to {offset:#x}"),
            }
        }
    }

    fn mbx() -> Mailbox {
        Mailbox::new("vf0", Duration::from_millis(20), AT_IXGBEVF)
    }

    fn detail(e: Error) -> String {
        match e {
            Error::Device { address, detail } => {
                assert_eq!(address, "vf0");
                detail
            }
            e => panic!("not a device error: {e}"),
        }
    }

    #[test]
    fn a_request_takes_the_buffer_posts_and_reads_the_reply() {
        let _deadline = crate::testing::deadline();
        for answer_after in [0, 3] {
            let pf = FakePf {
                answer_after,
                ..FakePf::answering(msg::GET_QUEUES | msg::ACK | msg::CTS)
            };
            let reply = mbx().request(&pf, &[msg::GET_QUEUES, 7, 8]).unwrap();
            assert_eq!(pf.posted.borrow().len(), 1);
            assert_eq!(pf.posted.borrow()[0][..3], [msg::GET_QUEUES, 7, 8]);
            assert_eq!(
                reply.words[..4],
                [msg::GET_QUEUES | msg::ACK | msg::CTS, msg::GET_QUEUES, 7, 8]
            );
            assert!(reply.acked());
            // Take the buffer, post (REQ), take it again, read, acknowledge (ACK).
            assert_eq!(*pf.controls.borrow(), [0x4, 0x1, 0x4, 0x2]);
            assert!(!pf.owns_buffer(), "the buffer is given back");
        }
    }

    #[test]
    fn a_message_of_sixteen_words_is_posted_whole() {
        let _deadline = crate::testing::deadline();
        let pf = FakePf::default();
        let sixteen: Vec<u32> = (1..=16).collect();
        mbx().send(&pf, &sixteen).unwrap();
        assert_eq!(pf.posted.borrow()[0].to_vec(), sixteen);
    }

    #[test]
    fn a_silent_pf_is_an_error_after_the_timeout() {
        let _deadline = crate::testing::deadline();
        let pf = FakePf {
            silent: true,
            ..FakePf::default()
        };
        let start = Instant::now();
        let err = detail(mbx().send(&pf, &[msg::SET_LPE, 1518]).unwrap_err());
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(
            err.contains("did not answer the mailbox within 20 ms")
                && err.contains("acknowledgement of message 0x5"),
            "{err}"
        );
        // Acknowledged, but no reply follows.
        let pf = FakePf::default();
        let err = detail(mbx().request(&pf, &[msg::SET_LPE, 1518]).unwrap_err());
        assert!(err.contains("its reply to message 0x5"), "{err}");
    }

    #[test]
    fn a_buffer_never_granted_is_an_error_after_the_timeout() {
        let _deadline = crate::testing::deadline();
        let pf = FakePf {
            locked: true,
            ..FakePf::default()
        };
        let start = Instant::now();
        let err = detail(mbx().send(&pf, &[msg::RESET]).unwrap_err());
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(
            err.contains("could not take the mailbox buffer within 20 ms"),
            "{err}"
        );
        assert!(pf.posted.borrow().is_empty());
    }

    #[test]
    fn a_reply_to_another_message_is_an_error() {
        let _deadline = crate::testing::deadline();
        let pf = FakePf::answering(msg::RESET | msg::ACK);
        let err = detail(mbx().request(&pf, &[msg::API_NEGOTIATE, 5]).unwrap_err());
        assert!(
            err.contains("answered message 0x8 with 0x80000001"),
            "{err}"
        );
    }

    #[test]
    fn a_pf_reset_during_a_wait_ends_it() {
        let _deadline = crate::testing::deadline();
        let pf = FakePf {
            silent: true,
            ..FakePf::default()
        };
        pf.mailbox.set(0x40); // RSTI
        let err = detail(mbx().send(&pf, &[msg::RESET]).unwrap_err());
        assert!(
            err.contains("the PF started a reset while the VF waited for its acknowledgement"),
            "{err}"
        );
    }

    #[test]
    fn stale_acknowledgements_do_not_answer_a_new_request() {
        let _deadline = crate::testing::deadline();
        let pf = FakePf {
            silent: true,
            ..FakePf::default()
        };
        let mbx = mbx();
        // A PFACK and a PFSTS nobody waited for, seen (and cleared) by a status read.
        pf.mailbox.set(0x30);
        assert!(!mbx.reset_indicated(&pf));
        let err = detail(mbx.send(&pf, &[msg::RESET]).unwrap_err());
        assert!(err.contains("did not answer"), "{err}");
    }

    #[test]
    fn a_message_and_its_acknowledgement_read_together_are_both_kept() {
        let _deadline = crate::testing::deadline();
        // The PF acknowledges and replies at once: waiting for PFACK reads (and clears)
        // PFSTS too; the reply must still be found.
        let pf = FakePf::answering(msg::SET_MAC_ADDR | msg::NACK);
        let reply = mbx().request(&pf, &[msg::SET_MAC_ADDR]).unwrap();
        assert!(!reply.acked() && reply.not_clear_to_send());
    }

    #[test]
    fn reset_indications_are_kept_until_consumed() {
        let _deadline = crate::testing::deadline();
        let mbx = mbx();
        let pf = FakePf::default();
        assert!(!mbx.reset_indicated(&pf));
        pf.mailbox.set(0x80); // RSTD, cleared by the first read
        assert!(mbx.reset_indicated(&pf));
        assert!(mbx.reset_indicated(&pf), "kept after the register cleared");
        pf.mailbox.set(0x80); // another reset done before the VF handled the first
        assert!(mbx.reset_indicated(&pf));
        assert!(mbx.reset_indicated(&pf), "still kept");
        mbx.wait_reset_done(&pf).unwrap();
        assert!(!mbx.reset_indicated(&pf), "consumed");
        pf.mailbox.set(0x40); // RSTI: a reset in progress
        assert!(mbx.reset_indicated(&pf));
    }

    #[test]
    fn wait_reset_done_waits_for_rsti_to_clear_then_times_out() {
        let _deadline = crate::testing::deadline();
        let mbx = mbx();
        let pf = FakePf::default();
        pf.resetting.set(3);
        mbx.wait_reset_done(&pf).unwrap();
        assert_eq!(pf.resetting.get(), 0, "waited until the reset was done");
        assert!(!mbx.reset_indicated(&pf), "RSTD consumed");
        // RSTI that never clears.
        pf.mailbox.set(0x40);
        let start = Instant::now();
        let err = detail(mbx.wait_reset_done(&pf).unwrap_err());
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(
            err.contains("did not finish its reset within 20 ms"),
            "{err}"
        );
    }

    #[test]
    fn xcast_modes_and_api_versions_have_names() {
        let _deadline = crate::testing::deadline();
        let names: Vec<_> = (0..5).map(XcastMode::describe).collect();
        assert_eq!(
            names,
            [
                "none",
                "multicast",
                "all-multicast",
                "promiscuous",
                "unknown"
            ]
        );
        let versions: Vec<_> = ApiVersion::NEWEST_FIRST.iter().map(|v| v.name()).collect();
        assert_eq!(versions, ["1.4", "1.3", "1.2", "1.1", "1.0"]);
        assert_eq!((XcastMode::Multi as u32, XcastMode::Promisc as u32), (1, 3));
    }

    #[test]
    fn mac_words_round_trip_in_linux_byte_order() {
        let _deadline = crate::testing::deadline();
        let mac = [0x02, 0x1b, 0x21, 0x3c, 0x4d, 0x5e];
        let w = mac_words(mac);
        assert_eq!(w, [0x3c21_1b02, 0x0000_5e4d]);
        let mut words = [0; MBX_WORDS];
        words[1] = w[0];
        words[2] = w[1];
        assert_eq!(Reply { words }.mac(), mac);
    }

    #[test]
    fn reply_bits() {
        let _deadline = crate::testing::deadline();
        let mut words = [0; MBX_WORDS];
        words[0] = msg::RESET | msg::ACK | msg::CTS;
        assert!(Reply { words }.acked());
        words[0] = msg::GET_QUEUES | msg::NACK;
        let r = Reply { words };
        assert!(!r.acked() && r.not_clear_to_send());
        // (ACK, NACK, CTS) -> (acked, not clear to send)
        for (bits, expected) in [
            (msg::ACK, (true, false)),
            (msg::ACK | msg::CTS, (true, false)),
            (msg::NACK | msg::CTS, (false, false)),
            (msg::ACK | msg::NACK | msg::CTS, (false, false)),
            (msg::ACK | msg::NACK, (false, true)),
        ] {
            let r = Reply {
                words: [msg::RESET | bits; MBX_WORDS],
            };
            assert_eq!((r.acked(), r.not_clear_to_send()), expected, "{bits:#x}");
        }
        assert!(ApiVersion::V1_4 > ApiVersion::V1_0);
        assert_eq!(ApiVersion::V1_1 as u32, 2);
    }
}
