//! The customer and merchant session state machines (SPEC §14.5), sans-IO in the shape of
//! quinn-proto's `Connection`: chunks and the time in ([`handle_input`], [`handle_timeout`]),
//! chunks, a deadline and events out ([`poll_transmit`], [`poll_timeout`], [`poll_event`]).
//! They drive offpay-protocol's `Wallet` and `Acceptor`; [`crate::driver`] is the one loop
//! that runs either role over a link.
//!
//! The exchange, after the customer writes State = start:
//!
//! 1. customer → merchant: hello `0x01 ‖ 0x21 ‖ service UUID ‖ customer X25519 key` (plain);
//! 2. merchant → customer: sealed `0x03 ‖ PaymentRequest ‖ binding`, the binding being the
//!    merchant's signature over this session's transcript (SPEC §14.5);
//! 3. customer → merchant: sealed `0x01 ‖ Payment`, or `0x02 ‖ code` when the wallet refuses
//!    or the customer declines;
//! 4. merchant → customer: sealed `0x01 ‖ Receipt`, or `0x02 ‖ code` when the acceptor refuses
//!    or the session fails after the handshake (a frame that does not open, a timeout).
//!
//! After the handshake a payment takes one and a half round trips. Every session ends with
//! exactly one final [`Event`]; after it the state machine refuses further input (the first
//! chunk after a completed exchange with [`BleError::ChunkAfterLast`], then
//! [`BleError::Closed`]). A dropped link is resumed by a new session over the same engagement;
//! the merchant sends the same request again, and `Wallet::pay` and `Acceptor::accept` return
//! what they stored the first time.
//!
//! [`handle_input`]: MerchantSession::handle_input
//! [`handle_timeout`]: MerchantSession::handle_timeout
//! [`poll_transmit`]: MerchantSession::poll_transmit
//! [`poll_timeout`]: MerchantSession::poll_timeout
//! [`poll_event`]: MerchantSession::poll_event

use crate::chunk::{LAST, MORE};
use crate::engagement::{self, Engagement, MerchantEngagement};
use crate::seal::{self, Direction, TAG_LEN};
use crate::{BleError, MAX_FRAME, chunk_len};
use core::time::Duration;
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, PaymentId, Signer, Store, TrustStore, Wallet};
use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey, StaticSecret};

mod customer;
mod merchant;
mod shared;

pub use customer::CustomerRole;
pub use merchant::MerchantRole;

/// The customer's side of a session.
pub type CustomerSession = Session<CustomerRole>;
/// The merchant's side of a session.
pub type MerchantSession = Session<MerchantRole>;
use shared::Core;

/// A point on the driver's monotonic clock: the time since an origin of the driver's choosing
/// (its start, the device's boot). Sessions compare instants only with each other.
pub type Instant = Duration;

/// The session timeouts (SPEC §14.7). Each one ends the session with [`Event::TimedOut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The longest silence within a step: before the hello's first chunk (from
    /// [`start`](Session::start): the connection, for the merchant), between the chunks of a
    /// frame, and for the answer to a frame a machine sent
    /// (the request for the customer, the receipt after a payment).
    pub idle: Duration,
    /// The longest wait for the customer's answer to the request once it was sent: a person
    /// reads it and approves. A payment's chunks then follow under `idle`. The customer's own
    /// wait for the person is `approval − idle`, so that it gives up first.
    pub approval: Duration,
    /// The longest session, from [`start`](Session::start) to the final event.
    pub session: Duration,
}

impl Timeouts {
    /// The values of SPEC §14.7: 10 s idle, 60 s for approval, 120 s in all.
    pub const SPEC: Timeouts = Timeouts {
        idle: Duration::from_secs(10),
        approval: Duration::from_secs(60),
        session: Duration::from_secs(120),
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::SPEC
    }
}

/// A session of either role: one shared core (chunks, outbox, MTU, clock, events) under the
/// role's own states ([`CustomerRole`] or [`MerchantRole`]). Use the aliases [`CustomerSession`] and
/// [`MerchantSession`].
pub struct Session<R: Role> {
    core: Core,
    role: R,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::CustomerRole {}
    impl Sealed for super::MerchantRole {}
}

/// A session's role: [`CustomerRole`] or [`MerchantRole`]. Sealed: the two are all there is.
pub trait Role: Sized + sealed::Sealed {
    /// Arms the clock at State = start and queues what the role sends first.
    #[doc(hidden)]
    fn start(session: &mut Session<Self>, now: Instant) -> Result<(), BleError>;
    /// A limit passed: ends the session as the role does.
    #[doc(hidden)]
    fn timed_out(session: &mut Session<Self>);
    /// The role's state, for `Debug`.
    #[doc(hidden)]
    fn state_name(&self) -> &'static str;
}

impl<R: Role> core::fmt::Debug for Session<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.role.state_name())
            .field("mtu", &self.core.mtu)
            .finish_non_exhaustive()
    }
}

impl<R: Role> Session<R> {
    /// Replaces the SPEC §14.7 timeouts (before [`start`](Self::start)).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.core.timeouts = timeouts;
    }

    /// Sets the negotiated ATT MTU (23 to 517): chunks are cut for it, and the peer's may be
    /// as long.
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        self.core.set_mtu(mtu)
    }

    /// Lets the peer's chunks be as long as ATT MTU `mtu` allows, while this side keeps
    /// cutting for the MTU of [`set_mtu`](Self::set_mtu): for a stack that does not say which
    /// MTU it negotiated (btleplug on some platforms).
    pub fn set_receive_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        self.core.set_receive_mtu(mtu)
    }

    /// State = start at `now`: the customer queues its hello; the merchant's hello is due
    /// within the idle limit.
    pub fn start(&mut self, now: Instant) -> Result<(), BleError> {
        R::start(self, now)
    }

    /// The next chunk to send (a Client2Server write, a Server2Client notification), if any.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        self.core.outbox.next_chunk(self.core.mtu, out)
    }

    /// The next event; the final one ends the session.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.poll_event()
    }

    /// The instant at which [`handle_timeout`](Self::handle_timeout) is due, while the session
    /// runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// Ends the session with [`Event::TimedOut`] when a limit passed at `now`. A merchant
    /// past the handshake tells the customer in a sealed refusal (`ble-timed-out`); nothing
    /// is stored beyond what the protocol had committed (a wallet keeps a payment it sent).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.core.expired(now) {
            R::timed_out(self);
        }
    }

    /// Input or a decision at `now`, after a limit passed: the session times out instead
    /// (SPEC §14.7), and the caller refuses what came.
    fn too_late(&mut self, now: Instant) -> Result<(), BleError> {
        if self.core.expired(now) {
            R::timed_out(self);
            return Err(BleError::TimedOut);
        }
        Ok(())
    }

    /// Whether the session is over and everything was sent: time for State = end.
    pub fn is_finished(&self) -> bool {
        self.core.is_finished()
    }
}

/// Who refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The customer: its wallet refused the request or the receipt, or the person declined
    /// ([`DECLINED`]).
    Customer,
    /// The merchant: its acceptor refused the payment, or its session failed after the
    /// handshake and said why in a sealed refusal (a `ble-*` code).
    Merchant,
}

/// What happened in a session, from [`poll_event`](MerchantSession::poll_event). Every session
/// ends with exactly one final event (all but [`RequestShown`](Event::RequestShown)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Customer: the merchant's request arrived, bound to this session; show it
    /// ([`CustomerSession::request`]), then approve or decline. Merchant: the request was
    /// sent; the customer is deciding.
    RequestShown,
    /// Customer: paid; the merchant's receipt verified and is stored with the payment.
    Paid(PaymentId),
    /// Merchant: the payment was accepted; it is stored with its receipt, which was queued.
    Accepted(PaymentId),
    /// A side refused with a SPEC code. When the customer refuses a receipt, or the merchant
    /// refuses a payment, the payment stays stored in the wallet: it was signed, and only the
    /// issuer's sync report may prune it.
    Refused {
        /// The side that refused.
        by: Party,
        /// Its SPEC code.
        code: u16,
    },
    /// The session failed (a malformed, forged or unexpected frame; a dropped link).
    Failed(BleError),
    /// A timeout of [`Timeouts`] passed.
    TimedOut,
}

impl Event {
    /// Whether this event ends the session.
    pub const fn is_final(&self) -> bool {
        !matches!(self, Event::RequestShown)
    }
}

/// Type byte of the customer's hello (after the version byte 0x01).
pub const HELLO_TYPE: u8 = 0x21;
/// Length of the hello.
pub const HELLO_LEN: usize = 2 + 16 + 32;
/// Sealed-frame kind: an offpay message follows.
pub const KIND_MESSAGE: u8 = 0x01;
/// Sealed-frame kind: a refusal follows (u16 big-endian SPEC code).
pub const KIND_REFUSAL: u8 = 0x02;
/// Sealed-frame kind: a PaymentRequest follows, then the merchant's 64-byte signature over
/// the session transcript (domain [`offpay_protocol::SESSION_BINDING_DOMAIN`]).
pub const KIND_BOUND_REQUEST: u8 = 0x03;
/// Length of a session binding (an Ed25519 signature).
pub const BINDING_LEN: usize = 64;
/// The refusal code a customer sends when it declines the request.
pub const DECLINED: u16 = BleError::Declined.code();

/// The frame waiting to be sent, and how much of it has been handed out as chunks.
struct Outbox {
    buf: [u8; MAX_FRAME],
    len: usize,
    pos: usize,
    pending: bool,
}

impl Outbox {
    const fn new() -> Self {
        Outbox {
            buf: [0; MAX_FRAME],
            len: 0,
            pos: 0,
            pending: false,
        }
    }

    /// Queues `frame` as it is (the plain hello).
    fn load(&mut self, frame: &[u8]) {
        let n = frame.len().min(MAX_FRAME);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(..n), frame.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.queue(n);
    }

    fn queue(&mut self, len: usize) {
        self.len = len;
        self.pos = 0;
        self.pending = true;
    }

    /// Seals `kind ‖ body` under `dir` into the outbox.
    fn seal(&mut self, dir: &mut Direction, kind: u8, body: &[u8]) -> Result<(), BleError> {
        let n = 1 + body.len();
        let plain = self
            .buf
            .get_mut(..n)
            .filter(|_| n + TAG_LEN <= MAX_FRAME)
            .ok_or(BleError::TooLarge)?;
        let (k, rest) = plain.split_at_mut(1);
        k.copy_from_slice(&[kind]);
        rest.copy_from_slice(body);
        let len = dir.seal(&mut self.buf, n)?;
        self.queue(len);
        Ok(())
    }

    /// The next chunk (flag byte, then at most MTU − 4 bytes of the frame) into `out`.
    fn next_chunk(&mut self, mtu: u16, out: &mut [u8]) -> Option<usize> {
        if !self.pending {
            return None;
        }
        let (flag, data) = out.split_first_mut()?;
        let room = chunk_len(mtu).ok()?.checked_sub(1)?.min(data.len());
        let rest = self.buf.get(self.pos..self.len)?;
        let n = rest.len().min(room);
        data.get_mut(..n)?.copy_from_slice(rest.get(..n)?);
        self.pos += n;
        *flag = if self.pos == self.len { LAST } else { MORE };
        self.pending = self.pos < self.len;
        Some(n + 1)
    }
}

/// Splits an opened frame into kind and body.
fn kind(plain: &[u8]) -> Result<(u8, &[u8]), BleError> {
    match plain.split_first() {
        Some((&k, body)) if k == KIND_MESSAGE || k == KIND_REFUSAL || k == KIND_BOUND_REQUEST => {
            Ok((k, body))
        }
        _ => Err(BleError::Unexpected),
    }
}

fn refusal_code(body: &[u8]) -> Result<u16, BleError> {
    match body {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(BleError::Unexpected),
    }
}
