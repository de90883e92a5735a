//! The customer side of a session.

use super::*;

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
                let request = match bound_request(body, &self.transcript) {
                    Ok(r) => r,
                    Err(e) => return self.fail(e),
                };
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
    let mut sig = [0u8; BINDING_LEN];
    sig.copy_from_slice(binding);
    offpay_protocol::crypto::verify(
        &req.certificate.merchant_key,
        offpay_protocol::SESSION_BINDING_DOMAIN,
        transcript,
        &sig,
    )
    .map_err(|_| BleError::Unbound)?;
    Ok(request)
}
