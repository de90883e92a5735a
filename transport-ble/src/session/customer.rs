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

/// The customer's role: a GATT client that writes Client2Server and reads Server2Client
/// notifications. Its keys are derived when the session is made: the engagement carries the
/// merchant's key.
pub struct CustomerRole {
    state: CustomerState,
    engagement: Engagement,
    hello: [u8; HELLO_LEN],
    transcript: [u8; 32],
    c2s: Direction,
    s2c: Direction,
    request: heapless::Vec<u8, MAX_FRAME>,
    /// The id of the payment sent in this session: the only one its receipt may name.
    sent: Option<PaymentId>,
}

impl Role for CustomerRole {
    fn start(session: &mut Session<Self>, now: Instant) -> Result<(), BleError> {
        if session.role.state != CustomerState::New {
            return Err(BleError::Unexpected);
        }
        session.core.start(now)?;
        session.core.outbox.load(&session.role.hello);
        session.role.state = CustomerState::AwaitRequest;
        Ok(())
    }

    fn timed_out(session: &mut Session<Self>) {
        session.core.outbox.pending = false;
        session.core.finish(Event::TimedOut);
        session.role.state = CustomerState::Over;
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            CustomerState::New => "new",
            CustomerState::AwaitRequest => "await-request",
            CustomerState::Approve => "approve",
            CustomerState::AwaitReceipt => "await-receipt",
            CustomerState::Over => "over",
        }
    }
}

impl Session<CustomerRole> {
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
        Ok(Session {
            core: Core::new(),
            role: CustomerRole {
                state: CustomerState::New,
                engagement: *engagement,
                hello,
                transcript: t,
                c2s,
                s2c,
                request: heapless::Vec::new(),
                sent: None,
            },
        })
    }

    /// The engagement this session was made for (its service UUID is what to scan for).
    pub fn engagement(&self) -> &Engagement {
        &self.role.engagement
    }

    /// The request waiting for the customer's approval (after [`Event::RequestShown`]): show
    /// its amount and merchant, then call [`approve`](Self::approve) or
    /// [`decline`](Self::decline).
    pub fn request(&self) -> Option<&[u8]> {
        (self.role.state == CustomerState::Approve).then_some(&self.role.request[..])
    }

    /// Handles one Server2Client notification at `now`. The wallet stores the merchant's
    /// receipt. An error ends the session (see [`poll_event`](Self::poll_event)) and is
    /// returned too.
    pub fn handle_input<S: Store, K: offpay_protocol::crypto::HolderSigner, const V: usize>(
        &mut self,
        chunk: &[u8],
        now: Instant,
        wallet: &mut Wallet<S, K, V>,
    ) -> Result<(), BleError> {
        self.too_late(now)?;
        if self.role.state == CustomerState::New {
            self.role.state = CustomerState::Over;
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
                self.role.state = CustomerState::Over;
            }
        })
    }

    fn on_frame<S: Store, K: offpay_protocol::crypto::HolderSigner, const V: usize>(
        &mut self,
        frame: &mut [u8],
        now: Instant,
        wallet: &mut Wallet<S, K, V>,
    ) -> Result<(), BleError> {
        let n = self.role.s2c.open(frame)?;
        let (k, body) = kind(frame.get(..n).ok_or(BleError::Decrypt)?)?;
        match (self.role.state, k) {
            (CustomerState::AwaitRequest, KIND_BOUND_REQUEST) => {
                let request = bound_request(body, &self.role.transcript)?;
                self.role.request.clear();
                self.role
                    .request
                    .extend_from_slice(request)
                    .map_err(|_| BleError::TooLarge)?;
                self.role.state = CustomerState::Approve;
                // The person's limit ends an idle limit before the merchant's (SPEC §14.7).
                let t = self.core.timeouts;
                self.core.wait(now, t.approval.saturating_sub(t.idle));
                self.core.show();
                Ok(())
            }
            (CustomerState::AwaitReceipt, KIND_MESSAGE) => {
                // A receipt for another payment (an earlier one to this merchant) does not end
                // this one: refused, and not stored.
                let names = offpay_protocol::decode_signed::<offpay_protocol::msg::Receipt>(body)
                    .map(|r| Some(r.payment_id) == self.role.sent);
                if names == Ok(false) {
                    self.core.finish(Event::Refused {
                        by: Party::Customer,
                        code: offpay_protocol::error::Rejection::UnknownPayment.code(),
                    });
                    self.role.state = CustomerState::Over;
                    return Ok(());
                }
                self.core.finish(match wallet.receive_receipt(body) {
                    Ok(id) => Event::Paid(id),
                    Err(e) => Event::Refused {
                        by: Party::Customer,
                        code: e.code(),
                    },
                });
                self.role.state = CustomerState::Over;
                Ok(())
            }
            (_, KIND_REFUSAL) => {
                let code = refusal_code(body)?;
                self.core.finish(Event::Refused {
                    by: Party::Merchant,
                    code,
                });
                self.role.state = CustomerState::Over;
                Ok(())
            }
            _ => Err(BleError::Unexpected),
        }
    }

    /// Pays the pending request with the wallet at protocol time `time` (SPEC §8.1) and
    /// queues the payment; when the wallet refuses, queues the refusal and ends the session.
    /// `now` is the session clock: the receipt is due within the idle limit.
    pub fn approve<
        S: Store,
        K: offpay_protocol::crypto::HolderSigner,
        const V: usize,
        const N: usize,
    >(
        &mut self,
        wallet: &mut Wallet<S, K, V>,
        trust: &TrustStore<N>,
        revocations: Option<&RevocationList<'_>>,
        time: offpay_protocol::Timestamp,
        now: Instant,
    ) -> Result<(), BleError> {
        if self.role.state != CustomerState::Approve {
            return Err(BleError::Unexpected);
        }
        self.too_late(now)?;
        match wallet.pay(&self.role.request, trust, revocations, time) {
            Ok(payment) => {
                self.role.sent = Some(PaymentId(offpay_protocol::crypto::sha256(&payment)));
                self.core
                    .outbox
                    .seal(&mut self.role.c2s, KIND_MESSAGE, &payment)?;
                self.role.state = CustomerState::AwaitReceipt;
                self.core.wait(now, self.core.timeouts.idle);
                Ok(())
            }
            Err(e) => self.refuse(e.code()),
        }
    }

    /// Declines the pending request: the merchant is told ([`DECLINED`]) and nothing is paid.
    pub fn decline(&mut self) -> Result<(), BleError> {
        if self.role.state != CustomerState::Approve {
            return Err(BleError::Unexpected);
        }
        self.refuse(DECLINED)
    }

    fn refuse(&mut self, code: u16) -> Result<(), BleError> {
        self.core
            .outbox
            .seal(&mut self.role.c2s, KIND_REFUSAL, &code.to_be_bytes())?;
        self.core.finish(Event::Refused {
            by: Party::Customer,
            code,
        });
        self.role.state = CustomerState::Over;
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
