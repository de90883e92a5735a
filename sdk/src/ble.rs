//! Paying over Bluetooth LE (SPEC §14): the till shows an engagement QR code and serves one
//! encrypted GATT session per customer; the wallet scans the code, connects and pays. These
//! types are the sessions' state, without I/O: the app moves their chunks over its platform's
//! BLE stack (the till as a GATT server, the phone as a client) and calls them as chunks
//! arrive. The `offpay-ble` crate has ready adapters for trouble-host and btleplug.

use crate::error::Doing;
use crate::{CustomerWallet, Error, MerchantTill, Money};
use offpay_ble::{
    BleError, CustomerOutcome, CustomerSession, Engagement, MerchantEngagement, MerchantOutcome,
    MerchantSession,
};
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{Context, decode_signed};
use rand_core::OsRng;

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
}

fn refused(code: u16) -> BleOutcome {
    BleOutcome::Refused {
        code,
        name: code_name(code),
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
        Ok(())
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
        till.with_acceptor(|a| self.session.receive(chunk, a, &ctx))
            .map_err(|e| ble("receiving over BLE", e))
    }

    /// How the session ended, once it has (a failure included).
    pub fn outcome(&self) -> Option<BleOutcome> {
        if let Some(o) = self.session.outcome() {
            return Some(match o {
                MerchantOutcome::Accepted(id) => BleOutcome::Completed {
                    payment_id: id.to_string(),
                },
                MerchantOutcome::Refused(code) => refused(code),
                MerchantOutcome::CustomerRefused(code) => BleOutcome::RefusedByPeer {
                    code,
                    name: code_name(code),
                },
            });
        }
        self.session.error().map(|e| BleOutcome::Failed {
            code: e.code(),
            name: e.name().into(),
        })
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
        Ok(WalletBleSession { session })
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

    /// Starts the exchange (after State = start was written): queues the hello.
    pub fn start(&mut self) -> Result<(), Error> {
        self.session
            .start()
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
        wallet
            .with_wallet(|w| self.session.receive(chunk, w))
            .map_err(|e| ble("receiving over BLE", e))
    }

    /// The request waiting for approval: show [`CustomerWallet::review`] of it, then
    /// [`WalletBleSession::approve`] or [`WalletBleSession::decline`].
    pub fn pending_request(&self) -> Option<Vec<u8>> {
        self.session.pending_request().map(<[u8]>::to_vec)
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
        wallet
            .with_wallet(|w| self.session.approve(w, &trust, list.as_deref(), now))
            .map_err(|e| ble("paying over BLE", e))?;
        Ok(self.outcome())
    }

    /// Declines the pending request: the till is told and nothing is paid.
    pub fn decline(&mut self) -> Result<BleOutcome, Error> {
        self.session
            .decline()
            .map_err(|e| ble("declining over BLE", e))?;
        Ok(refused(BleError::Declined.code()))
    }

    /// How the session ended, once it has (a failure included).
    pub fn outcome(&self) -> Option<BleOutcome> {
        if let Some(o) = self.session.outcome() {
            return Some(match o {
                CustomerOutcome::Paid(id) => BleOutcome::Completed {
                    payment_id: id.to_string(),
                },
                CustomerOutcome::Refused(code) => refused(code),
                CustomerOutcome::MerchantRefused(code) => BleOutcome::RefusedByPeer {
                    code,
                    name: code_name(code),
                },
                CustomerOutcome::BadReceipt(code) => BleOutcome::BadReceipt {
                    code,
                    name: code_name(code),
                },
            });
        }
        self.session.error().map(|e| BleOutcome::Failed {
            code: e.code(),
            name: e.name().into(),
        })
    }

    /// Whether the session is over and everything was sent: write State = end, disconnect.
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }
}
