//! The merchant side of a session.

use super::*;

/// The keys of both directions: they exist only once the customer's hello was taken.
struct Keys {
    c2s: Direction,
    s2c: Direction,
}

enum MerchantState {
    AwaitHello,
    AwaitPayment(Keys),
    /// The session ended (the final event is in the core).
    Over,
}

/// The merchant's role: a GATT server that receives Client2Server writes and notifies
/// Server2Client.
pub struct MerchantRole {
    state: MerchantState,
    engagement: Engagement,
    secret: StaticSecret,
    request: heapless::Vec<u8, MAX_FRAME>,
}

impl Role for MerchantRole {
    fn start(session: &mut Session<Self>, now: Instant) -> Result<(), BleError> {
        session.core.start(now)
    }

    fn timed_out(session: &mut Session<Self>) {
        session.end_failed(Event::TimedOut, BleError::TimedOut);
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            MerchantState::AwaitHello => "await-hello",
            MerchantState::AwaitPayment(_) => "await-payment",
            MerchantState::Over => "over",
        }
    }
}

impl Session<MerchantRole> {
    /// A session for one connection: it will send `request` (from
    /// `Acceptor::create_request`, the same bytes again when a customer reconnects). The
    /// session keeps its own copy of the engagement key, zeroized when it is dropped. Its
    /// clock starts at [`start`](Self::start).
    pub fn new(engagement: &MerchantEngagement, request: &[u8]) -> Result<Self, BleError> {
        Ok(Session {
            core: Core::new(),
            role: MerchantRole {
                state: MerchantState::AwaitHello,
                engagement: *engagement.engagement(),
                secret: engagement.secret.clone(),
                request: heapless::Vec::from_slice(request).map_err(|_| BleError::TooLarge)?,
            },
        })
    }

    /// Handles one Client2Server write at `now`. A payment is decided by the acceptor (SPEC
    /// §8.2), which stores it with its receipt when it accepts. An error ends the session
    /// (see [`poll_event`](Self::poll_event)) and is returned too.
    pub fn handle_input<S: Store, K: Signer, const R: usize, const M: usize, const N: usize>(
        &mut self,
        chunk: &[u8],
        now: Instant,
        acceptor: &mut Acceptor<S, K, R, M>,
        ctx: &Context<'_, N>,
    ) -> Result<(), BleError> {
        self.too_late(now)?;
        let mut frame = [0u8; MAX_FRAME];
        let len = match self.core.take_frame(chunk, now, &mut frame) {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.after_error(e);
                return Err(e);
            }
        };
        let frame = frame.get_mut(..len).ok_or(BleError::TooLarge)?;
        let r = match core::mem::replace(&mut self.role.state, MerchantState::Over) {
            MerchantState::AwaitHello => self.on_hello(frame, now, acceptor),
            MerchantState::AwaitPayment(mut keys) => {
                let r = self.on_payment(frame, &mut keys, acceptor, ctx);
                if r.is_err() {
                    self.role.state = MerchantState::AwaitPayment(keys);
                }
                r
            }
            MerchantState::Over => Err(BleError::Closed),
        };
        r.inspect_err(|&e| self.end_failed(Event::Failed(e), e))
    }

    /// After the prologue ended the session: the customer hears why when keys exist.
    fn after_error(&mut self, e: BleError) {
        if self.core.is_over() && !matches!(self.role.state, MerchantState::Over) {
            self.end_failed(Event::Failed(e), e);
        }
    }

    /// Ends the session with `event`; with keys, the customer gets a sealed refusal `e`.
    fn end_failed(&mut self, event: Event, e: BleError) {
        if let MerchantState::AwaitPayment(mut keys) =
            core::mem::replace(&mut self.role.state, MerchantState::Over)
        {
            self.core.outbox.pending = false;
            let _ = self
                .core
                .outbox
                .seal(&mut keys.s2c, KIND_REFUSAL, &e.code().to_be_bytes());
        } else {
            self.core.outbox.pending = false;
        }
        self.core.finish(event);
    }

    fn on_hello<S: Store, K: Signer, const R: usize, const M: usize>(
        &mut self,
        hello: &[u8],
        now: Instant,
        acceptor: &Acceptor<S, K, R, M>,
    ) -> Result<(), BleError> {
        let e = self.role.engagement;
        let [version, ty, rest @ ..] = hello else {
            return Err(BleError::Handshake);
        };
        if hello.len() != HELLO_LEN || *version != engagement::VERSION || *ty != HELLO_TYPE {
            return Err(BleError::Handshake);
        }
        let (uuid, key) = rest.split_at_checked(16).ok_or(BleError::Handshake)?;
        if uuid != e.service_uuid {
            return Err(BleError::WrongSession);
        }
        let key: [u8; 32] = key.try_into().map_err(|_| BleError::Handshake)?;
        let shared = self.role.secret.diffie_hellman(&PublicKey::from(key));
        if !shared.was_contributory() {
            return Err(BleError::Handshake);
        }
        let t = seal::transcript(&e.to_bytes(), hello);
        let (c2s, mut s2c) = seal::derive(shared.as_bytes(), &t);
        let binding = acceptor
            .sign_session_binding(&t)
            .map_err(|_| BleError::Unbound)?;
        let mut body = [0u8; MAX_FRAME];
        let n = self.role.request.len();
        let bound = body.get_mut(..n + BINDING_LEN).ok_or(BleError::TooLarge)?;
        let (req, sig) = bound.split_at_mut(n);
        req.copy_from_slice(&self.role.request);
        sig.copy_from_slice(&binding);
        self.core.outbox.seal(&mut s2c, KIND_BOUND_REQUEST, bound)?;
        self.role.state = MerchantState::AwaitPayment(Keys { c2s, s2c });
        // A person reads the request now.
        self.core.wait(now, self.core.timeouts.approval);
        self.core.show();
        Ok(())
    }

    fn on_payment<S: Store, K: Signer, const R: usize, const M: usize, const N: usize>(
        &mut self,
        frame: &mut [u8],
        keys: &mut Keys,
        acceptor: &mut Acceptor<S, K, R, M>,
        ctx: &Context<'_, N>,
    ) -> Result<(), BleError> {
        let n = keys.c2s.open(frame)?;
        let (k, body) = kind(frame.get(..n).ok_or(BleError::Decrypt)?)?;
        if k == KIND_REFUSAL {
            let code = refusal_code(body)?;
            self.core.finish(Event::Refused {
                by: Party::Customer,
                code,
            });
            return Ok(());
        }
        if k != KIND_MESSAGE {
            return Err(BleError::Unexpected);
        }
        let event = match acceptor.accept(body, ctx) {
            Ok(receipt) => {
                let id = offpay_protocol::decode_signed::<offpay_protocol::msg::Payment<'_>>(body)
                    .map(|p| p.id())
                    .map_err(|_| BleError::Unexpected)?;
                self.core
                    .outbox
                    .seal(&mut keys.s2c, KIND_MESSAGE, &receipt)?;
                Event::Accepted(id)
            }
            Err(e) => {
                self.core
                    .outbox
                    .seal(&mut keys.s2c, KIND_REFUSAL, &e.code().to_be_bytes())?;
                Event::Refused {
                    by: Party::Merchant,
                    code: e.code(),
                }
            }
        };
        self.core.finish(event);
        Ok(())
    }
}
