//! The customer and merchant session state machines (SPEC §14.5): chunks and `now` in,
//! chunks out, no IO. They drive offpay-protocol's `Wallet` and `Acceptor`.
//!
//! The exchange, after the customer writes State = start:
//!
//! 1. customer → merchant: hello `0x01 ‖ 0x21 ‖ service UUID ‖ customer X25519 key` (plain);
//! 2. merchant → customer: sealed `0x03 ‖ PaymentRequest ‖ binding`, the binding being the
//!    merchant's signature over this session's transcript (SPEC §14.5);
//! 3. customer → merchant: sealed `0x01 ‖ Payment`, or `0x02 ‖ code` when the wallet refuses
//!    or the customer declines;
//! 4. merchant → customer: sealed `0x01 ‖ Receipt`, or `0x02 ‖ code` when the acceptor refuses.
//!
//! After the handshake a payment takes one and a half round trips. Any error ends the session:
//! the state machine refuses all further input with [`BleError::Closed`]. A dropped link is
//! resumed by a new session over the same engagement; the merchant sends the same request
//! again, and `Wallet::pay` and `Acceptor::accept` return what they stored the first time.

use crate::chunk::{LAST, MORE, Reassembler};
use crate::engagement::{self, Engagement, MerchantEngagement};
use crate::seal::{self, Direction, TAG_LEN};
use crate::{BleError, MAX_FRAME, chunk_len};
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, PaymentId, Signer, Store, TrustStore, Wallet};
use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey, StaticSecret};

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

    fn load(&mut self, len: usize) {
        self.len = len;
        self.pos = 0;
        self.pending = true;
    }

    /// Seals `kind ‖ body` under `dir` into the outbox.
    fn seal(&mut self, dir: &mut Direction, kind: u8, body: &[u8]) -> Result<(), BleError> {
        let n = 1 + body.len();
        if n + TAG_LEN > MAX_FRAME {
            return Err(BleError::TooLarge);
        }
        self.buf[0] = kind;
        self.buf[1..n].copy_from_slice(body);
        let len = dir.seal(&mut self.buf, n)?;
        self.load(len);
        Ok(())
    }

    fn next_chunk(&mut self, mtu: u16, out: &mut [u8]) -> Option<usize> {
        if !self.pending {
            return None;
        }
        let data = chunk_len(mtu)
            .ok()?
            .checked_sub(1)?
            .min(out.len().checked_sub(1)?);
        let n = (self.len - self.pos).min(data);
        out[1..=n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        out[0] = if self.pos == self.len { LAST } else { MORE };
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

/// How a customer session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerOutcome {
    /// Paid; the merchant's receipt verified and is stored with the payment.
    Paid(PaymentId),
    /// The wallet refused the request (SPEC code), or the customer declined ([`DECLINED`]);
    /// nothing was paid.
    Refused(u16),
    /// The merchant refused the payment (SPEC code). The payment stays stored in the wallet:
    /// it was signed, and only the issuer's sync report may prune it.
    MerchantRefused(u16),
    /// The merchant's receipt failed verification (SPEC code).
    BadReceipt(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CustomerState {
    New,
    AwaitRequest,
    Approve,
    AwaitReceipt,
    Done(CustomerOutcome),
    Failed(BleError),
}

/// The customer's side: a GATT client that writes Client2Server and reads Server2Client
/// notifications.
pub struct CustomerSession {
    state: CustomerState,
    /// An error after the exchange finished (a chunk after the last): the outcome stands.
    late_error: Option<BleError>,
    engagement: Engagement,
    hello: [u8; HELLO_LEN],
    transcript: [u8; 32],
    c2s: Direction,
    s2c: Direction,
    inbox: Reassembler<MAX_FRAME>,
    outbox: Outbox,
    request: heapless::Vec<u8, MAX_FRAME>,
    mtu: u16,
}

impl core::fmt::Debug for CustomerSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CustomerSession")
            .field("state", &self.state)
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl CustomerSession {
    /// A session with the merchant of `engagement` and a fresh X25519 key. Fails when the
    /// merchant's key is of low order.
    pub fn new(engagement: &Engagement, rng: &mut impl CryptoRngCore) -> Result<Self, BleError> {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut key[..]);
        Self::with_key(engagement, &key)
    }

    /// A session with a given X25519 secret key: for conformance vectors. A real session uses
    /// [`new`](Self::new), a fresh key each time.
    pub fn with_key(engagement: &Engagement, key: &[u8; 32]) -> Result<Self, BleError> {
        let secret = StaticSecret::from(*key);
        let public = PublicKey::from(&secret);
        let mut hello = [0u8; HELLO_LEN];
        hello[0] = engagement::VERSION;
        hello[1] = HELLO_TYPE;
        hello[2..18].copy_from_slice(&engagement.service_uuid);
        hello[18..].copy_from_slice(public.as_bytes());
        let shared = secret.diffie_hellman(&PublicKey::from(engagement.merchant_key));
        if !shared.was_contributory() {
            return Err(BleError::Handshake);
        }
        let t = seal::transcript(&engagement.to_bytes(), &hello);
        let (c2s, s2c) = seal::derive(shared.as_bytes(), &t);
        Ok(CustomerSession {
            state: CustomerState::New,
            late_error: None,
            engagement: *engagement,
            hello,
            transcript: t,
            c2s,
            s2c,
            inbox: Reassembler::new(),
            outbox: Outbox::new(),
            request: heapless::Vec::new(),
            mtu: crate::MIN_MTU,
        })
    }

    /// The engagement this session was made for (its service UUID is what to scan for).
    pub fn engagement(&self) -> &Engagement {
        &self.engagement
    }

    /// Sets the negotiated ATT MTU (23 to 517).
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        chunk_len(mtu)?;
        self.mtu = mtu;
        Ok(())
    }

    /// Starts the session (after writing State = start): queues the hello.
    pub fn start(&mut self) -> Result<(), BleError> {
        if self.state != CustomerState::New {
            return self.fail(BleError::Unexpected);
        }
        self.outbox.buf[..HELLO_LEN].copy_from_slice(&self.hello);
        self.outbox.load(HELLO_LEN);
        self.state = CustomerState::AwaitRequest;
        Ok(())
    }

    /// The next chunk to write to Client2Server, if any.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        self.outbox.next_chunk(self.mtu, out)
    }

    /// The request waiting for the customer's approval: show its amount and merchant, then
    /// call [`approve`](Self::approve) or [`decline`](Self::decline).
    pub fn pending_request(&self) -> Option<&[u8]> {
        (self.state == CustomerState::Approve).then_some(&self.request[..])
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<CustomerOutcome> {
        match self.state {
            CustomerState::Done(o) => Some(o),
            _ => None,
        }
    }

    /// The error that ended the session, if one did. An error after the exchange finished
    /// (a chunk after the last) leaves [`outcome`](Self::outcome) as it was.
    pub fn error(&self) -> Option<BleError> {
        match self.state {
            CustomerState::Failed(e) => Some(e),
            _ => self.late_error,
        }
    }

    /// Whether the session is over and everything was sent: time to write State = end and
    /// disconnect.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            CustomerState::Done(_) | CustomerState::Failed(_)
        ) && !self.outbox.pending
    }

    fn fail<T>(&mut self, e: BleError) -> Result<T, BleError> {
        if matches!(self.state, CustomerState::Done(_)) {
            self.late_error = Some(e);
        } else {
            self.state = CustomerState::Failed(e);
        }
        self.outbox.pending = false;
        Err(e)
    }

    /// Handles one Server2Client notification. The wallet stores the merchant's receipt.
    pub fn receive<S: Store, K: Signer, const V: usize>(
        &mut self,
        chunk: &[u8],
        wallet: &mut Wallet<S, K, V>,
    ) -> Result<(), BleError> {
        match self.state {
            CustomerState::Failed(_) => return Err(BleError::Closed),
            CustomerState::Done(_) if self.late_error.is_some() => return Err(BleError::Closed),
            CustomerState::Done(_) => return self.fail(BleError::ChunkAfterLast),
            CustomerState::New | CustomerState::Approve => {
                return self.fail(BleError::Unexpected);
            }
            CustomerState::AwaitRequest | CustomerState::AwaitReceipt => {}
        }
        if self.outbox.pending {
            return self.fail(BleError::Unexpected);
        }
        // A chunk is at most MTU − 3 bytes, flag included (§14.3).
        if chunk.len() > chunk_len(self.mtu).unwrap_or(0) {
            return self.fail(BleError::BadChunk);
        }
        let mut frame = [0u8; MAX_FRAME];
        let len = match self.inbox.push(chunk) {
            Ok(None) => return Ok(()),
            Ok(Some(f)) => {
                frame[..f.len()].copy_from_slice(f);
                f.len()
            }
            Err(e) => return self.fail(e),
        };
        let plain_len = match self.s2c.open(&mut frame[..len]) {
            Ok(n) => n,
            Err(e) => return self.fail(e),
        };
        let (k, body) = match kind(&frame[..plain_len]) {
            Ok(x) => x,
            Err(e) => return self.fail(e),
        };
        match (self.state, k) {
            (CustomerState::AwaitRequest, KIND_BOUND_REQUEST) => {
                // The request must be bound to this session by its merchant's key (§14.5): a
                // relay cannot show another merchant's request in its own session.
                let Some(split) = body.len().checked_sub(BINDING_LEN) else {
                    return self.fail(BleError::Unbound);
                };
                let (request, binding) = body.split_at(split);
                let Ok(req) = offpay_protocol::decode_signed::<
                    offpay_protocol::msg::PaymentRequest<'_>,
                >(request) else {
                    return self.fail(BleError::Unexpected);
                };
                let mut sig = [0u8; BINDING_LEN];
                sig.copy_from_slice(binding);
                if offpay_protocol::crypto::verify(
                    &req.certificate.merchant_key,
                    offpay_protocol::SESSION_BINDING_DOMAIN,
                    &self.transcript,
                    &sig,
                )
                .is_err()
                {
                    return self.fail(BleError::Unbound);
                }
                self.request.clear();
                if self.request.extend_from_slice(request).is_err() {
                    return self.fail(BleError::TooLarge);
                }
                self.state = CustomerState::Approve;
                Ok(())
            }
            (CustomerState::AwaitReceipt, KIND_MESSAGE) => {
                self.state = CustomerState::Done(match wallet.receive_receipt(body) {
                    Ok(id) => CustomerOutcome::Paid(id),
                    Err(e) => CustomerOutcome::BadReceipt(e.code()),
                });
                Ok(())
            }
            (_, KIND_REFUSAL) => match refusal_code(body) {
                Ok(code) => {
                    self.state = CustomerState::Done(CustomerOutcome::MerchantRefused(code));
                    Ok(())
                }
                Err(e) => self.fail(e),
            },
            _ => self.fail(BleError::Unexpected),
        }
    }

    /// Pays the pending request with the wallet (SPEC §8.1) and queues the payment, or, when
    /// the wallet refuses, queues the refusal. Returns the outcome so far: `None` while the
    /// receipt is awaited.
    pub fn approve<S: Store, K: Signer, const V: usize, const N: usize>(
        &mut self,
        wallet: &mut Wallet<S, K, V>,
        trust: &TrustStore<N>,
        revocations: Option<&RevocationList<'_>>,
        now: offpay_protocol::Timestamp,
    ) -> Result<Option<CustomerOutcome>, BleError> {
        if self.state != CustomerState::Approve {
            return Err(BleError::Unexpected);
        }
        match wallet.pay(&self.request, trust, revocations, now) {
            Ok(payment) => {
                self.outbox.seal(&mut self.c2s, KIND_MESSAGE, &payment)?;
                self.state = CustomerState::AwaitReceipt;
                Ok(None)
            }
            Err(e) => self.refuse(e.code()).map(Some),
        }
    }

    /// Declines the pending request: the merchant is told ([`DECLINED`]) and nothing is paid.
    pub fn decline(&mut self) -> Result<CustomerOutcome, BleError> {
        if self.state != CustomerState::Approve {
            return Err(BleError::Unexpected);
        }
        self.refuse(DECLINED)
    }

    fn refuse(&mut self, code: u16) -> Result<CustomerOutcome, BleError> {
        self.outbox
            .seal(&mut self.c2s, KIND_REFUSAL, &code.to_be_bytes())?;
        let outcome = CustomerOutcome::Refused(code);
        self.state = CustomerState::Done(outcome);
        Ok(outcome)
    }
}

/// How a merchant session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MerchantOutcome {
    /// The payment was accepted; its receipt was queued and both are stored.
    Accepted(PaymentId),
    /// The acceptor refused the payment (SPEC code); nothing was stored.
    Refused(u16),
    /// The customer's wallet refused the request or the customer declined (SPEC code).
    CustomerRefused(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MerchantState {
    AwaitHello,
    AwaitPayment,
    Done(MerchantOutcome),
    Failed(BleError),
}

/// The merchant's side: a GATT server that receives Client2Server writes and notifies
/// Server2Client.
pub struct MerchantSession {
    state: MerchantState,
    /// An error after the exchange finished (a chunk after the last): the outcome stands.
    late_error: Option<BleError>,
    engagement: Engagement,
    secret: StaticSecret,
    keys: Option<(Direction, Direction)>,
    request: heapless::Vec<u8, MAX_FRAME>,
    inbox: Reassembler<MAX_FRAME>,
    outbox: Outbox,
    mtu: u16,
}

impl core::fmt::Debug for MerchantSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MerchantSession")
            .field("state", &self.state)
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl MerchantSession {
    /// A session for one connection: it will send `request` (from
    /// `Acceptor::create_request`, the same bytes again when a customer reconnects). The
    /// session keeps its own copy of the engagement key, zeroized when it is dropped.
    pub fn new(engagement: &MerchantEngagement, request: &[u8]) -> Result<Self, BleError> {
        Ok(MerchantSession {
            state: MerchantState::AwaitHello,
            late_error: None,
            engagement: *engagement.engagement(),
            secret: engagement.secret.clone(),
            keys: None,
            request: heapless::Vec::from_slice(request).map_err(|_| BleError::TooLarge)?,
            inbox: Reassembler::new(),
            outbox: Outbox::new(),
            mtu: crate::MIN_MTU,
        })
    }

    /// Sets the negotiated ATT MTU (23 to 517).
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        chunk_len(mtu)?;
        self.mtu = mtu;
        Ok(())
    }

    /// The next chunk to notify on Server2Client, if any.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        self.outbox.next_chunk(self.mtu, out)
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<MerchantOutcome> {
        match self.state {
            MerchantState::Done(o) => Some(o),
            _ => None,
        }
    }

    /// The error that ended the session, if one did. An error after the exchange finished
    /// (a chunk after the last) leaves [`outcome`](Self::outcome) as it was: an accepted
    /// payment stays accepted.
    pub fn error(&self) -> Option<BleError> {
        match self.state {
            MerchantState::Failed(e) => Some(e),
            _ => self.late_error,
        }
    }

    /// Whether the session is over and everything was sent.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            MerchantState::Done(_) | MerchantState::Failed(_)
        ) && !self.outbox.pending
    }

    fn fail<T>(&mut self, e: BleError) -> Result<T, BleError> {
        if matches!(self.state, MerchantState::Done(_)) {
            self.late_error = Some(e);
        } else {
            self.state = MerchantState::Failed(e);
        }
        self.outbox.pending = false;
        Err(e)
    }

    /// Handles one Client2Server write. A payment is decided by the acceptor (SPEC §8.2),
    /// which stores it with its receipt when it accepts.
    pub fn receive<S: Store, K: Signer, const R: usize, const M: usize, const N: usize>(
        &mut self,
        chunk: &[u8],
        acceptor: &mut Acceptor<S, K, R, M>,
        ctx: &Context<'_, N>,
    ) -> Result<(), BleError> {
        match self.state {
            MerchantState::Failed(_) => return Err(BleError::Closed),
            MerchantState::Done(_) if self.late_error.is_some() => return Err(BleError::Closed),
            MerchantState::Done(_) => return self.fail(BleError::ChunkAfterLast),
            MerchantState::AwaitHello | MerchantState::AwaitPayment => {}
        }
        if self.outbox.pending {
            return self.fail(BleError::Unexpected);
        }
        // A chunk is at most MTU − 3 bytes, flag included (§14.3).
        if chunk.len() > chunk_len(self.mtu).unwrap_or(0) {
            return self.fail(BleError::BadChunk);
        }
        let mut frame = [0u8; MAX_FRAME];
        let len = match self.inbox.push(chunk) {
            Ok(None) => return Ok(()),
            Ok(Some(f)) => {
                frame[..f.len()].copy_from_slice(f);
                f.len()
            }
            Err(e) => return self.fail(e),
        };
        let r = match self.state {
            MerchantState::AwaitHello => self.on_hello(&frame[..len], acceptor),
            _ => self.on_payment(&mut frame[..len], acceptor, ctx),
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn on_hello<S: Store, K: Signer, const R: usize, const M: usize>(
        &mut self,
        hello: &[u8],
        acceptor: &Acceptor<S, K, R, M>,
    ) -> Result<(), BleError> {
        let e = self.engagement;
        if hello.len() != HELLO_LEN || hello[0] != engagement::VERSION || hello[1] != HELLO_TYPE {
            return Err(BleError::Handshake);
        }
        if hello[2..18] != e.service_uuid {
            return Err(BleError::WrongSession);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&hello[18..]);
        let shared = self.secret.diffie_hellman(&PublicKey::from(key));
        if !shared.was_contributory() {
            return Err(BleError::Handshake);
        }
        let t = seal::transcript(&e.to_bytes(), hello);
        let (c2s, mut s2c) = seal::derive(shared.as_bytes(), &t);
        let binding = acceptor
            .sign_session_binding(&t)
            .map_err(|_| BleError::Unbound)?;
        let mut body = [0u8; MAX_FRAME];
        let n = self.request.len();
        let bound = body.get_mut(..n + BINDING_LEN).ok_or(BleError::TooLarge)?;
        bound[..n].copy_from_slice(&self.request);
        bound[n..].copy_from_slice(&binding);
        self.outbox.seal(&mut s2c, KIND_BOUND_REQUEST, bound)?;
        self.keys = Some((c2s, s2c));
        self.state = MerchantState::AwaitPayment;
        Ok(())
    }

    fn on_payment<S: Store, K: Signer, const R: usize, const M: usize, const N: usize>(
        &mut self,
        frame: &mut [u8],
        acceptor: &mut Acceptor<S, K, R, M>,
        ctx: &Context<'_, N>,
    ) -> Result<(), BleError> {
        let (c2s, s2c) = self.keys.as_mut().ok_or(BleError::Unexpected)?;
        let n = c2s.open(frame)?;
        let (k, body) = kind(&frame[..n])?;
        if k == KIND_REFUSAL {
            let code = refusal_code(body)?;
            self.state = MerchantState::Done(MerchantOutcome::CustomerRefused(code));
            return Ok(());
        }
        let outcome = match acceptor.accept(body, ctx) {
            Ok(receipt) => {
                self.outbox.seal(s2c, KIND_MESSAGE, &receipt)?;
                let id = offpay_protocol::decode_signed::<offpay_protocol::msg::Payment<'_>>(body)
                    .map(|p| p.id())
                    .map_err(|_| BleError::Unexpected)?;
                MerchantOutcome::Accepted(id)
            }
            Err(e) => {
                self.outbox
                    .seal(s2c, KIND_REFUSAL, &e.code().to_be_bytes())?;
                MerchantOutcome::Refused(e.code())
            }
        };
        self.state = MerchantState::Done(outcome);
        Ok(())
    }
}
