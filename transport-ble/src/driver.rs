//! The one loop that runs a session over a link, for every adapter: trouble-host (both
//! roles), btleplug (customer) and the in-memory [`link`](crate::link). An adapter implements
//! [`Link`] (send a chunk, receive one before a deadline, end); the session's role is an
//! [`Endpoint`]: [`Customer`] or [`Merchant`], a session with what it decides with.
//!
//! The loop: send what the session queued; take its events (a shown request is put to the
//! customer's `approve`); on the final event send what is left, end the link (State = end,
//! SPEC §14.6) and return the event; otherwise wait for the next chunk until the session's
//! next deadline, and hand it the chunk or the timeout.

use crate::BleError;
use crate::session::{CustomerSession, Event, Instant, MerchantSession};
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, Signer, Store, Timestamp, TrustStore, Wallet};

/// The largest chunk on any link (ATT MTU 517 − 3).
const MAX_CHUNK: usize = 514;

/// What an adapter does for the driver. Its error says why the link failed (the peer left,
/// the radio failed); the driver returns it unless the session had already ended.
#[allow(async_fn_in_trait)]
pub trait Link {
    /// Why the link failed.
    type Error;

    /// The driver's monotonic clock.
    fn now(&self) -> Instant;

    /// The negotiated ATT MTU.
    fn mtu(&self) -> u16;

    /// Sends one chunk to the peer (a Client2Server write or a Server2Client notification).
    async fn send(&mut self, chunk: &[u8]) -> Result<(), Self::Error>;

    /// Waits for the peer's next chunk, copied into `buf`: `Some(length)`, or `None` when
    /// `deadline` came first (`None` deadline: wait without a limit). The peer writing
    /// State = end, or leaving, is an error.
    async fn recv(
        &mut self,
        deadline: Option<Instant>,
        buf: &mut [u8],
    ) -> Result<Option<usize>, Self::Error>;

    /// The session ended and everything was sent: State = end, then the role's leave-taking
    /// (SPEC §14.6: the customer disconnects; the merchant waits a bounded time for that).
    async fn end(&mut self) -> Result<(), Self::Error>;
}

/// A session with what its role decides with, as the driver runs it.
pub trait Endpoint {
    /// State = start at `now`, over a link of `mtu`.
    fn start(&mut self, now: Instant, mtu: u16) -> Result<(), BleError>;
    /// The ATT MTU changed (the customer may exchange it after connecting).
    fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError>;
    /// A chunk from the peer.
    fn handle_input(&mut self, chunk: &[u8], now: Instant);
    /// The next chunk to send.
    fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize>;
    /// When the session next needs [`handle_timeout`](Self::handle_timeout).
    fn poll_timeout(&self) -> Option<Instant>;
    /// The clock reached a deadline.
    fn handle_timeout(&mut self, now: Instant);
    /// The next event.
    fn poll_event(&mut self) -> Option<Event>;
    /// After [`Event::RequestShown`]: the customer decides; the merchant waits.
    fn request_shown(&mut self, now: Instant);
}

/// The customer's role: its session, the wallet that pays, and the person who approves.
pub struct Customer<'a, S: Store, K: Signer, const V: usize, const N: usize, F> {
    /// The session.
    pub session: &'a mut CustomerSession,
    /// The wallet that pays and stores the receipt.
    pub wallet: &'a mut Wallet<S, K, V>,
    /// The issuers and merchants the wallet trusts.
    pub trust: &'a TrustStore<N>,
    /// The newest revocation list, if any.
    pub revocations: Option<&'a RevocationList<'a>>,
    /// Protocol time (SPEC §4), for the wallet's checks.
    pub time: Timestamp,
    /// Sees the request bytes; `true` pays, `false` declines.
    pub approve: F,
}

impl<S: Store, K: Signer, const V: usize, const N: usize, F: FnMut(&[u8]) -> bool> Endpoint
    for Customer<'_, S, K, V, N, F>
{
    fn start(&mut self, now: Instant, mtu: u16) -> Result<(), BleError> {
        self.session.set_mtu(mtu)?;
        self.session.start(now)
    }
    fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        self.session.set_mtu(mtu)
    }
    fn handle_input(&mut self, chunk: &[u8], now: Instant) {
        // An error ends the session and comes back as its final event.
        let _ = self.session.handle_input(chunk, now, self.wallet);
    }
    fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        self.session.poll_transmit(out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }
    fn request_shown(&mut self, now: Instant) {
        let Some(request) = self.session.request() else {
            return;
        };
        // Approve and decline fail only in another state, which `request()` ruled out.
        if (self.approve)(request) {
            let _ = self
                .session
                .approve(self.wallet, self.trust, self.revocations, self.time, now);
        } else {
            let _ = self.session.decline();
        }
    }
}

/// The merchant's role: its session and the acceptor that decides.
pub struct Merchant<'a, S: Store, K: Signer, const R: usize, const M: usize, const N: usize> {
    /// The session.
    pub session: &'a mut MerchantSession,
    /// The acceptor that decides on the payment and stores it with its receipt.
    pub acceptor: &'a mut Acceptor<S, K, R, M>,
    /// What the acceptor checks against (trust, revocations, protocol time).
    pub ctx: &'a Context<'a, N>,
}

impl<S: Store, K: Signer, const R: usize, const M: usize, const N: usize> Endpoint
    for Merchant<'_, S, K, R, M, N>
{
    fn start(&mut self, now: Instant, mtu: u16) -> Result<(), BleError> {
        self.session.set_mtu(mtu)?;
        self.session.start(now)
    }
    fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        self.session.set_mtu(mtu)
    }
    fn handle_input(&mut self, chunk: &[u8], now: Instant) {
        // An error ends the session and comes back as its final event.
        let _ = self
            .session
            .handle_input(chunk, now, self.acceptor, self.ctx);
    }
    fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        self.session.poll_transmit(out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.session.poll_event()
    }
    fn request_shown(&mut self, _now: Instant) {}
}

/// Runs `endpoint` over `link` from State = start to its final event, which it returns. A
/// link that fails before the session ended returns the link's error; the session can then
/// be resumed by a new one (SPEC §14.5).
pub async fn drive<E: Endpoint, L: Link>(
    endpoint: &mut E,
    link: &mut L,
) -> Result<Event, L::Error> {
    if let Err(e) = endpoint.start(link.now(), link.mtu()) {
        return Ok(Event::Failed(e));
    }
    let mut buf = [0u8; MAX_CHUNK];
    loop {
        while let Some(n) = endpoint.poll_transmit(&mut buf) {
            if let Err(e) = link.send(buf.get(..n).unwrap_or_default()).await {
                return settled(endpoint, e);
            }
        }
        match endpoint.poll_event() {
            Some(Event::RequestShown) => {
                endpoint.request_shown(link.now());
                continue;
            }
            Some(event) => {
                // The final frame (a receipt, a refusal) was sent above; State = end follows.
                let _ = link.end().await;
                return Ok(event);
            }
            None => {}
        }
        match link.recv(endpoint.poll_timeout(), &mut buf).await {
            Ok(Some(n)) => {
                // A link's MTU is valid (23 to 517); the last valid one stays otherwise.
                let _ = endpoint.set_mtu(link.mtu());
                endpoint.handle_input(buf.get(..n).unwrap_or_default(), link.now());
            }
            Ok(None) => endpoint.handle_timeout(link.now()),
            Err(e) => return settled(endpoint, e),
        }
    }
}

/// After a link error: the session's final event if it had one (an accepted payment stays
/// accepted when the receipt's notification failed), else the error.
fn settled<E: Endpoint, X>(endpoint: &mut E, e: X) -> Result<Event, X> {
    while let Some(event) = endpoint.poll_event() {
        if event.is_final() {
            return Ok(event);
        }
    }
    Err(e)
}
