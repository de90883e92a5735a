//! The merchant side of a session.

use super::*;

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
