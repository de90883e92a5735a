//! Paying over Bluetooth LE (SPEC §14): the till shows an engagement QR code and serves one
//! encrypted GATT session per customer; the wallet scans the code, connects and pays. These
//! types are the sessions' state, without I/O: the app moves their chunks over its platform's
//! BLE stack (the till as a GATT server, the phone as a client) and calls them as chunks
//! arrive. The `offpay-ble` crate has ready adapters for trouble-host and btleplug.
//!
//! Every step has a time limit (SPEC §14.7): after each call, ask the session
//! [`TillBleSession::next_timeout`] and call [`TillBleSession::handle_timeout`] when it has
//! passed with no chunk (the same for [`WalletBleSession`]). A session that timed out ends
//! with [`BleOutcome::TimedOut`]; the till then serves the next customer.

use crate::error::Doing;
use crate::{CustomerWallet, Error, MerchantTill, Money};
pub use offpay_ble::Timeouts;
use offpay_ble::session::{Role, Session};
use offpay_ble::{
    BleError, CustomerSession, Engagement, Event, MerchantEngagement, MerchantSession, Party,
};
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Context, decode_signed};
use rand_core::OsRng;
use std::time::{Duration, Instant};

/// The largest chunk a session writes (at the largest ATT MTU, 517).
const MAX_CHUNK: usize = 514;

fn ble(what: &str, e: BleError) -> Error {
    Error::Refused {
        code: e.code(),
        name: e.name().into(),
        message: format!("{what}: {}", e.name().replace('-', " ")),
    }
}

/// The stable name of a SPEC code (protocol or BLE), `unknown` for another.
pub fn code_name(code: u16) -> String {
    offpay_protocol::Error::from_code(code)
        .map(|e| e.name())
        .or_else(|| {
            BleError::ALL
                .iter()
                .find(|e| e.code() == code)
                .map(|e| e.name())
        })
        .unwrap_or("unknown")
        .to_string()
}

/// How a BLE session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BleOutcome {
    /// Paid (customer) or accepted (till): the payment's id (hex). The wallet holds the
    /// verified receipt; the till holds the payment and its receipt.
    Completed {
        /// The payment's id (hex).
        payment_id: String,
    },
    /// This side refused: the wallet refused the request or the person declined (customer), or
    /// the till refused the payment (till). Nothing was paid or stored.
    Refused {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The other side refused (SPEC code). A customer's payment refused by the till stays
    /// stored in the wallet: it was signed, and only the issuer may prune it.
    RefusedByPeer {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The till's receipt did not verify (SPEC code); the payment stays stored.
    BadReceipt {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The session failed (SPEC §14 code: decryption, handshake, framing); nothing beyond what
    /// the protocol had already committed was stored.
    Failed {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// A time limit of SPEC §14.7 passed; nothing beyond what the protocol had already
    /// committed was stored (a wallet keeps a payment it sent).
    TimedOut,
}

fn refused(code: u16) -> BleOutcome {
    BleOutcome::Refused {
        code,
        name: code_name(code),
    }
}

/// The session's clock, its events so far, and what they mean for this side.
#[derive(Debug)]
struct Clock {
    origin: Instant,
    end: Option<Event>,
    /// Whether this side sent a payment (a wallet's later refusal is of the receipt).
    paid: bool,
}

impl Clock {
    fn new() -> Self {
        Clock {
            origin: Instant::now(),
            end: None,
            paid: false,
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Takes the session's events; keeps the final one.
    fn take(&mut self, mut poll: impl FnMut() -> Option<Event>) {
        while let Some(e) = poll() {
            if e.is_final() {
                self.end = Some(e);
            }
        }
    }

    /// Lets `session` see the time: a limit that passed ends it; its events are taken.
    fn tick<R: Role>(&mut self, session: &mut Session<R>) {
        session.handle_timeout(self.now());
        self.take(|| session.poll_event());
    }

    /// Time left until the session needs `handle_timeout`.
    fn left(&self, deadline: Option<Duration>) -> Option<Duration> {
        deadline.map(|d| d.saturating_sub(self.now()))
    }

    fn outcome(&self, me: Party) -> Option<BleOutcome> {
        Some(match self.end? {
            Event::Paid(id) | Event::Accepted(id) => BleOutcome::Completed {
                payment_id: id.to_string(),
            },
            // A wallet that refuses after it paid refuses the receipt.
            Event::Refused { by, code } if by == me && self.paid => BleOutcome::BadReceipt {
                code,
                name: code_name(code),
            },
            Event::Refused { by, code } if by == me => refused(code),
            Event::Refused { code, .. } => BleOutcome::RefusedByPeer {
                code,
                name: code_name(code),
            },
            Event::Failed(e) => BleOutcome::Failed {
                code: e.code(),
                name: e.name().into(),
            },
            Event::TimedOut => BleOutcome::TimedOut,
            Event::RequestShown => return None,
        })
    }
}

/// A till's side of one BLE session, serving one payment request.
#[derive(Debug)]
pub struct TillBleSession {
    engagement: MerchantEngagement,
    session: MerchantSession,
    request: Vec<u8>,
    /// The till's trust anchors and revocation list, read once for the session rather than
    /// at every chunk.
    trust: crate::Trust,
    revocations: Option<Vec<u8>>,
    clock: Clock,
}

impl MerchantTill {
    /// Makes a payment request for `amount` and a BLE session that serves it: show
    /// [`TillBleSession::engagement`] as a QR code, advertise its service UUID, pass every
    /// Client2Server write to [`TillBleSession::receive`] and notify every chunk of
    /// [`TillBleSession::poll_transmit`].
    pub fn ble_session(
        &self,
        amount: Money,
        reference: Option<&str>,
    ) -> Result<TillBleSession, Error> {
        let request = self.create_request(amount, reference)?;
        let engagement = MerchantEngagement::generate(&mut OsRng);
        let session = MerchantSession::new(&engagement, &request)
            .map_err(|e| ble("starting the BLE session", e))?;
        Ok(TillBleSession {
            engagement,
            session,
            request,
            trust: self.trust(),
            revocations: self.revocations()?,
            clock: Clock::new(),
        })
    }
}

impl TillBleSession {
    /// The engagement bytes for the customer to scan (SPEC §14.1), as a QR code's message.
    pub fn engagement(&self) -> Vec<u8> {
        self.engagement.engagement().to_bytes().to_vec()
    }

    /// The engagement drawn as a QR code (PNG).
    pub fn engagement_qr(&self) -> Result<Vec<u8>, Error> {
        crate::qr::png(&self.engagement())
    }

    /// The GATT service UUID to advertise (16 bytes, as in the engagement).
    pub fn service_uuid(&self) -> [u8; 16] {
        self.engagement.engagement().service_uuid
    }

    /// The payment request this session serves.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// A new session for the same request and engagement, for a customer who reconnects.
    pub fn reconnect(&mut self) -> Result<(), Error> {
        self.session = MerchantSession::new(&self.engagement, &self.request)
            .map_err(|e| ble("starting the BLE session", e))?;
        self.clock = Clock::new();
        Ok(())
    }

    /// Replaces the SPEC §14.7 time limits (before [`start`](Self::start)).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.session.set_timeouts(timeouts);
    }

    /// A customer connected: the session's clock starts (the hello is due within the idle
    /// limit). [`receive`](Self::receive) starts it too, if this was not called.
    pub fn start(&mut self) -> Result<(), Error> {
        self.session
            .start(self.clock.now())
            .map_err(|e| ble("starting the BLE session", e))
    }

    /// Sets the negotiated ATT MTU (23 to 517).
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), Error> {
        self.session
            .set_mtu(mtu)
            .map_err(|e| ble("setting the MTU", e))
    }

    /// The next chunk to notify on Server2Client, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; MAX_CHUNK];
        self.session
            .poll_transmit(&mut buf)
            .and_then(|n| buf.get(..n).map(<[u8]>::to_vec))
    }

    /// Handles one Client2Server write; a complete payment is decided by `till` (SPEC §8.2),
    /// which stores it with its receipt when it accepts.
    pub fn receive(&mut self, till: &MerchantTill, chunk: &[u8]) -> Result<(), Error> {
        let now = till.config_now()?;
        let list = self
            .revocations
            .as_deref()
            .map(decode_signed::<RevocationList<'_>>)
            .transpose()
            .doing("reading the revocation list")?;
        let ctx = Context {
            trust: &self.trust,
            revocations: list.as_deref(),
            now,
        };
        if self.session.poll_timeout().is_none() && self.clock.end.is_none() {
            // Not started by the app: the clock runs from the first chunk.
            let _ = self.session.start(self.clock.now());
        }
        let at = self.clock.now();
        let r = till.with_acceptor(|a| self.session.handle_input(chunk, at, a, &ctx));
        self.clock.take(|| self.session.poll_event());
        r.map_err(|e| ble("receiving over BLE", e))
    }

    /// How long until [`handle_timeout`](Self::handle_timeout) is due, while the session runs.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.clock.left(self.session.poll_timeout())
    }

    /// Ends the session as [`BleOutcome::TimedOut`] when its time limit passed (the customer
    /// is told in a sealed refusal, to notify like any other chunk). Returns the outcome once
    /// the session has one.
    pub fn handle_timeout(&mut self) -> Option<BleOutcome> {
        self.clock.tick(&mut self.session);
        self.outcome()
    }

    /// How the session ended, once it has (a failure included).
    pub fn outcome(&self) -> Option<BleOutcome> {
        self.clock.outcome(Party::Merchant)
    }

    /// Whether the session is over and everything was sent: write State = end, disconnect.
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }
}

/// A wallet's side of one BLE session with a till.
#[derive(Debug)]
pub struct WalletBleSession {
    session: CustomerSession,
    clock: Clock,
}

impl CustomerWallet {
    /// A BLE session with the till whose engagement QR code was scanned: connect to a device
    /// advertising [`WalletBleSession::service_uuid`], subscribe to Server2Client, write State
    /// = start, then call [`WalletBleSession::start`] and write every chunk of
    /// [`WalletBleSession::poll_transmit`] to Client2Server.
    pub fn ble_session(&self, engagement: &[u8]) -> Result<WalletBleSession, Error> {
        let e = Engagement::from_bytes(engagement).map_err(|e| ble("reading the engagement", e))?;
        let session =
            CustomerSession::new(&e, &mut OsRng).map_err(|e| ble("reading the engagement", e))?;
        Ok(WalletBleSession {
            session,
            clock: Clock::new(),
        })
    }
}

impl WalletBleSession {
    /// The till's GATT service UUID to connect to.
    pub fn service_uuid(&self) -> [u8; 16] {
        self.session.engagement().service_uuid
    }

    /// Sets the negotiated ATT MTU (23 to 517).
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), Error> {
        self.session
            .set_mtu(mtu)
            .map_err(|e| ble("setting the MTU", e))
    }

    /// Replaces the SPEC §14.7 time limits (before [`start`](Self::start)).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.session.set_timeouts(timeouts);
    }

    /// Starts the exchange (after State = start was written): queues the hello.
    pub fn start(&mut self) -> Result<(), Error> {
        self.session
            .start(self.clock.now())
            .map_err(|e| ble("starting the BLE session", e))
    }

    /// The next chunk to write to Client2Server, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; MAX_CHUNK];
        self.session
            .poll_transmit(&mut buf)
            .and_then(|n| buf.get(..n).map(<[u8]>::to_vec))
    }

    /// Handles one Server2Client notification; the receipt, when it comes, is verified and
    /// stored in `wallet`.
    pub fn receive(&mut self, wallet: &CustomerWallet, chunk: &[u8]) -> Result<(), Error> {
        let at = self.clock.now();
        let r = wallet.with_wallet(|w| self.session.handle_input(chunk, at, w));
        self.clock.take(|| self.session.poll_event());
        r.map_err(|e| ble("receiving over BLE", e))
    }

    /// How long until [`handle_timeout`](Self::handle_timeout) is due, while the session runs.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.clock.left(self.session.poll_timeout())
    }

    /// Ends the session as [`BleOutcome::TimedOut`] when its time limit passed. Returns the
    /// outcome once the session has one.
    pub fn handle_timeout(&mut self) -> Option<BleOutcome> {
        self.clock.tick(&mut self.session);
        self.outcome()
    }

    /// The request waiting for approval: show [`CustomerWallet::review`] of it, then
    /// [`WalletBleSession::approve`] or [`WalletBleSession::decline`].
    pub fn pending_request(&self) -> Option<Vec<u8>> {
        self.session.request().map(<[u8]>::to_vec)
    }

    /// Pays the pending request with `wallet` (the payment is stored before it is sent), or
    /// sends the wallet's refusal. Returns the outcome when the session ended here.
    pub fn approve(&mut self, wallet: &CustomerWallet) -> Result<Option<BleOutcome>, Error> {
        let now = wallet.config_now()?;
        let list = wallet.revocation_list()?;
        let list = list
            .as_deref()
            .map(decode_signed::<RevocationList<'_>>)
            .transpose()
            .doing("reading the revocation list")?;
        let trust = wallet.trust();
        let at = self.clock.now();
        wallet
            .with_wallet(|w| self.session.approve(w, &trust, list.as_deref(), now, at))
            .map_err(|e| ble("paying over BLE", e))?;
        self.clock.take(|| self.session.poll_event());
        // A payment queued means the wallet paid; its refusal now would be of the receipt.
        self.clock.paid = self.clock.end.is_none();
        Ok(self.outcome())
    }

    /// Declines the pending request: the till is told and nothing is paid.
    pub fn decline(&mut self) -> Result<BleOutcome, Error> {
        self.session
            .decline()
            .map_err(|e| ble("declining over BLE", e))?;
        self.clock.take(|| self.session.poll_event());
        Ok(refused(BleError::Declined.code()))
    }

    /// How the session ended, once it has (a failure included).
    pub fn outcome(&self) -> Option<BleOutcome> {
        self.clock.outcome(Party::Customer)
    }

    /// Whether the session is over and everything was sent: write State = end, disconnect.
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }
}
