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
use crate::session::{
    CustomerRole, CustomerSession, Event, Instant, MerchantRole, MerchantSession, Role, Session,
};
use offpay_protocol::acceptor::Context;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Acceptor, Signer, Store, Timestamp, TrustStore, Wallet};

/// Why a session over an adapter did not complete; `H` is the host stack's own failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdapterError<H> {
    /// The session failed (typed, with its SPEC code).
    Ble(BleError),
    /// The BLE host stack, controller or platform failed.
    Host(H),
    /// No merchant advertising the session's UUID was found in time.
    NotFound,
    /// The peer's GATT service lacks an offpay characteristic.
    MissingCharacteristic,
    /// The link dropped, or the peer wrote State = end, before the session finished; a new
    /// session resumes the exchange.
    Disconnected,
}

impl<H: core::fmt::Debug> core::fmt::Display for AdapterError<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ble(e) => write!(f, "BLE session failed: {e}"),
            Self::Host(e) => write!(f, "BLE host: {e:?}"),
            Self::NotFound => f.write_str("no merchant advertising this session was found"),
            Self::MissingCharacteristic => f.write_str("the offpay service is incomplete"),
            Self::Disconnected => f.write_str("the link dropped before the payment finished"),
        }
    }
}

impl<H: core::fmt::Debug> core::error::Error for AdapterError<H> {}

impl<H> From<BleError> for AdapterError<H> {
    fn from(e: BleError) -> Self {
        Self::Ble(e)
    }
}

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

    /// The negotiated ATT MTU: this side cuts its chunks for it.
    fn mtu(&self) -> u16;

    /// The largest ATT MTU the peer's chunks may come at: the MTU, unless the stack does not
    /// say what it negotiated.
    fn receive_mtu(&self) -> u16 {
        self.mtu()
    }

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

    /// The session ended with `event` and everything was sent: State = end, then the role's
    /// leave-taking (SPEC §14.6: the customer disconnects; the merchant waits a bounded time
    /// for that).
    async fn end(&mut self, event: &Event) -> Result<(), Self::Error>;
}

/// A session with what its role decides with, as the driver runs it: everything the roles
/// share goes through [`session`](Self::session); only what the role decides with differs.
pub trait Endpoint {
    /// The session's role.
    type Role: Role;
    /// The session.
    fn session(&mut self) -> &mut Session<Self::Role>;
    /// A chunk from the peer, at `now`. An error ends the session and comes back as its final
    /// event.
    fn handle_input(&mut self, chunk: &[u8], now: Instant);
    /// After [`Event::RequestShown`]: the customer decides; the merchant waits.
    fn request_shown(&mut self, now: Instant);
}

/// The customer's role: its session, the wallet that pays, and the person who approves.
pub struct Customer<
    'a,
    S: Store,
    K: offpay_protocol::crypto::HolderSigner,
    const V: usize,
    const N: usize,
    F,
> {
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

impl<
    S: Store,
    K: offpay_protocol::crypto::HolderSigner,
    const V: usize,
    const N: usize,
    F: FnMut(&[u8]) -> bool,
> Endpoint for Customer<'_, S, K, V, N, F>
{
    type Role = CustomerRole;

    fn session(&mut self) -> &mut CustomerSession {
        self.session
    }

    fn handle_input(&mut self, chunk: &[u8], now: Instant) {
        let _ = self.session.handle_input(chunk, now, self.wallet);
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
    type Role = MerchantRole;

    fn session(&mut self) -> &mut MerchantSession {
        self.session
    }

    fn handle_input(&mut self, chunk: &[u8], now: Instant) {
        let _ = self
            .session
            .handle_input(chunk, now, self.acceptor, self.ctx);
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
    let (now, mtu, rx) = (link.now(), link.mtu(), link.receive_mtu());
    let session = endpoint.session();
    if let Err(e) = session
        .set_mtu(mtu)
        .and_then(|()| session.set_receive_mtu(rx))
        .and_then(|()| session.start(now))
    {
        let event = Event::Failed(e);
        let _ = link.end(&event).await;
        return Ok(event);
    }
    let mut buf = [0u8; MAX_CHUNK];
    loop {
        while let Some(n) = endpoint.session().poll_transmit(&mut buf) {
            if let Err(e) = link.send(buf.get(..n).unwrap_or_default()).await {
                return settled(endpoint, e);
            }
        }
        match endpoint.session().poll_event() {
            Some(Event::RequestShown) => {
                endpoint.request_shown(link.now());
                continue;
            }
            Some(event) => {
                // The final frame (a receipt, a refusal) was sent above; State = end follows.
                let _ = link.end(&event).await;
                return Ok(event);
            }
            None => {}
        }
        match link.recv(endpoint.session().poll_timeout(), &mut buf).await {
            Ok(Some(n)) => {
                // A link's MTU is valid (23 to 517); the last valid one stays otherwise.
                let session = endpoint.session();
                let _ = session
                    .set_mtu(link.mtu())
                    .and_then(|()| session.set_receive_mtu(link.receive_mtu()));
                endpoint.handle_input(buf.get(..n).unwrap_or_default(), link.now());
            }
            Ok(None) => {
                let now = link.now();
                endpoint.session().handle_timeout(now);
            }
            Err(e) => return settled(endpoint, e),
        }
    }
}

/// Copies what fits of a received chunk into `buf` and returns its length: what a
/// [`Link::recv`] does with the chunk its stack handed it.
pub fn copy_chunk(data: &[u8], buf: &mut [u8]) -> usize {
    let len = data.len().min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..len), data.get(..len)) {
        dst.copy_from_slice(src);
    }
    len
}

/// After a link error: the session's final event if it had one (an accepted payment stays
/// accepted when the receipt's notification failed), else the error.
fn settled<E: Endpoint, X>(endpoint: &mut E, e: X) -> Result<Event, X> {
    while let Some(event) = endpoint.session().poll_event() {
        if event.is_final() {
            return Ok(event);
        }
    }
    Err(e)
}
