//! The customer side of a session.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CustomerState {
    New,
    AwaitRequest,
    Approve,
    AwaitReceipt,
    Over,
}

/// The customer's side: a GATT client that writes Client2Server and reads Server2Client
/// notifications. Its keys are derived when it is made: the engagement carries the
/// merchant's key.
pub struct CustomerSession {
    state: CustomerState,
    core: Core,
    engagement: Engagement,
    hello: [u8; HELLO_LEN],
    transcript: [u8; 32],
    c2s: Direction,
    s2c: Direction,
    request: heapless::Vec<u8, MAX_FRAME>,
}

impl core::fmt::Debug for CustomerSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CustomerSession")
            .field("state", &self.state)
            .field("mtu", &self.core.mtu)
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
        let (head, rest) = hello.split_at_mut(2);
        head.copy_from_slice(&[engagement::VERSION, HELLO_TYPE]);
        let (uuid, key) = rest.split_at_mut(16);
        uuid.copy_from_slice(&engagement.service_uuid);
        key.copy_from_slice(public.as_bytes());
        let shared = secret.diffie_hellman(&PublicKey::from(engagement.merchant_key));
        if !shared.was_contributory() {
            return Err(BleError::Handshake);
        }
        let t = seal::transcript(&engagement.to_bytes(), &hello);
        let (c2s, s2c) = seal::derive(shared.as_bytes(), &t);
        Ok(CustomerSession {
            state: CustomerState::New,
            core: Core::new(),
            engagement: *engagement,
            hello,
            transcript: t,
            c2s,
            s2c,
            request: heapless::Vec::new(),
        })
    }

    /// The engagement this session was made for (its service UUID is what to scan for).
    pub fn engagement(&self) -> &Engagement {
        &self.engagement
    }

    /// Replaces the SPEC §14.7 timeouts (before [`start`](Self::start)).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.core.timeouts = timeouts;
    }

    /// Sets the negotiated ATT MTU (23 to 517).
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), BleError> {
        self.core.set_mtu(mtu)
    }

    /// Starts the session at `now` (after writing State = start): queues the hello.
    pub fn start(&mut self, now: Instant) -> Result<(), BleError> {
        if self.state != CustomerState::New {
            return Err(BleError::Unexpected);
        }
        self.core.start(now)?;
        self.core.outbox.load(&self.hello);
        self.state = CustomerState::AwaitRequest;
        Ok(())
    }

    /// The next chunk to write to Client2Server, if any.
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

    /// Ends the session with [`Event::TimedOut`] when a limit passed at `now`. A payment
    /// already sent stays stored in the wallet (SPEC §8.1).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.core.expired(now) {
            self.core.outbox.pending = false;
            self.core.finish(Event::TimedOut);
            self.state = CustomerState::Over;
        }
    }

    /// Whether the session is over and everything was sent: time to write State = end and
    /// disconnect.
    pub fn is_finished(&self) -> bool {
        self.core.is_finished()
    }

    /// The request waiting for the customer's approval (after [`Event::RequestShown`]): show
    /// its amount and merchant, then call [`approve`](Self::approve) or
    /// [`decline`](Self::decline).
    pub fn request(&self) -> Option<&[u8]> {
        (self.state == CustomerState::Approve).then_some(&self.request[..])
    }

    /// Handles one Server2Client notification at `now`. The wallet stores the merchant's
    /// receipt. An error ends the session (see [`poll_event`](Self::poll_event)) and is
    /// returned too.
    pub fn handle_input<S: Store, K: Signer, const V: usize>(
        &mut self,
        chunk: &[u8],
        now: Instant,
        wallet: &mut Wallet<S, K, V>,
    ) -> Result<(), BleError> {
        if matches!(self.state, CustomerState::New | CustomerState::Approve) {
            self.state = CustomerState::Over;
            return Err(self.core.fail(BleError::Unexpected));
        }
        let mut frame = [0u8; MAX_FRAME];
        let r = match self.core.take_frame(chunk, now, &mut frame) {
            Ok(Some(len)) => self.on_frame(frame.get_mut(..len).unwrap_or_default(), now, wallet),
            Ok(None) => return Ok(()),
            Err(e) => Err(e),
        };
        r.inspect_err(|&e| {
            self.core.fail(e);
            if self.core.is_over() {
                self.state = CustomerState::Over;
            }
        })
    }

    fn on_frame<S: Store, K: Signer, const V: usize>(
        &mut self,
        frame: &mut [u8],
        now: Instant,
        wallet: &mut Wallet<S, K, V>,
    ) -> Result<(), BleError> {
        let n = self.s2c.open(frame)?;
        let (k, body) = kind(frame.get(..n).ok_or(BleError::Decrypt)?)?;
        match (self.state, k) {
            (CustomerState::AwaitRequest, KIND_BOUND_REQUEST) => {
                let request = bound_request(body, &self.transcript)?;
                self.request.clear();
                self.request
                    .extend_from_slice(request)
                    .map_err(|_| BleError::TooLarge)?;
                self.state = CustomerState::Approve;
                self.core.wait(now, self.core.timeouts.approval);
                self.core.show();
                Ok(())
            }
            (CustomerState::AwaitReceipt, KIND_MESSAGE) => {
                self.core.finish(match wallet.receive_receipt(body) {
                    Ok(id) => Event::Paid(id),
                    Err(e) => Event::Refused {
                        by: Party::Customer,
                        code: e.code(),
                    },
                });
                self.state = CustomerState::Over;
                Ok(())
            }
            (_, KIND_REFUSAL) => {
                let code = refusal_code(body)?;
                self.core.finish(Event::Refused {
                    by: Party::Merchant,
                    code,
                });
                self.state = CustomerState::Over;
                Ok(())
            }
            _ => Err(BleError::Unexpected),
        }
    }

    /// Pays the pending request with the wallet at protocol time `time` (SPEC §8.1) and
    /// queues the payment; when the wallet refuses, queues the refusal and ends the session.
    /// `now` is the session clock: the receipt is due within the idle limit.
    pub fn approve<S: Store, K: Signer, const V: usize, const N: usize>(
        &mut self,
        wallet: &mut Wallet<S, K, V>,
        trust: &TrustStore<N>,
        revocations: Option<&RevocationList<'_>>,
        time: offpay_protocol::Timestamp,
        now: Instant,
    ) -> Result<(), BleError> {
        if self.state != CustomerState::Approve {
            return Err(BleError::Unexpected);
        }
        match wallet.pay(&self.request, trust, revocations, time) {
            Ok(payment) => {
                self.core
                    .outbox
                    .seal(&mut self.c2s, KIND_MESSAGE, &payment)?;
                self.state = CustomerState::AwaitReceipt;
                self.core.wait(now, self.core.timeouts.idle);
                Ok(())
            }
            Err(e) => self.refuse(e.code()),
        }
    }

    /// Declines the pending request: the merchant is told ([`DECLINED`]) and nothing is paid.
    pub fn decline(&mut self) -> Result<(), BleError> {
        if self.state != CustomerState::Approve {
            return Err(BleError::Unexpected);
        }
        self.refuse(DECLINED)
    }

    fn refuse(&mut self, code: u16) -> Result<(), BleError> {
        self.core
            .outbox
            .seal(&mut self.c2s, KIND_REFUSAL, &code.to_be_bytes())?;
        self.core.finish(Event::Refused {
            by: Party::Customer,
            code,
        });
        self.state = CustomerState::Over;
        Ok(())
    }
}

/// The request of a bound-request frame, once its binding verifies (SPEC §14.5): the
/// merchant's signature over this session's transcript, under the certificate's merchant
/// key, so that a relay cannot show another merchant's request in its own session.
fn bound_request<'a>(body: &'a [u8], transcript: &[u8; 32]) -> Result<&'a [u8], BleError> {
    let split = body
        .len()
        .checked_sub(BINDING_LEN)
        .ok_or(BleError::Unbound)?;
    let (request, binding) = body.split_at(split);
    let req = offpay_protocol::decode_signed::<offpay_protocol::msg::PaymentRequest<'_>>(request)
        .map_err(|_| BleError::Unexpected)?;
    let sig: [u8; BINDING_LEN] = binding.try_into().map_err(|_| BleError::Unbound)?;
    offpay_protocol::crypto::verify(
        &req.certificate.merchant_key,
        offpay_protocol::SESSION_BINDING_DOMAIN,
        transcript,
        &sig,
    )
    .map_err(|_| BleError::Unbound)?;
    Ok(request)
}
