//! Failures as the user reads them: one line saying what went wrong and what to do, with the
//! stable SPEC code when the protocol refused something.

use offpay_protocol::{DecodeError, Error, Rejection, StoreError, VerifyError};
use std::fmt;

/// One failure of a command.
#[derive(Debug)]
pub struct Failure {
    what: String,
    todo: String,
    code: Option<u16>,
}

/// A command's result.
pub type Result<T> = std::result::Result<T, Failure>;

impl Failure {
    /// A failure with its remedy.
    pub fn new(what: impl Into<String>, todo: impl Into<String>) -> Self {
        Failure {
            what: what.into(),
            todo: todo.into(),
            code: None,
        }
    }

    /// The SPEC code behind it, if the protocol refused something.
    pub fn code(&self) -> Option<u16> {
        self.code
    }

    /// The same failure with another remedy.
    pub fn todo(mut self, todo: impl Into<String>) -> Self {
        self.todo = todo.into();
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.todo.is_empty() {
            write!(f, "{}", self.what)
        } else {
            write!(f, "{}; {}", self.what, self.todo)
        }
    }
}

impl std::error::Error for Failure {}

/// Attaches what was being done to a lower-level error.
pub trait Doing<T> {
    /// `what` failed because of the error; the remedy comes from the error.
    fn doing(self, what: &str) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, Error> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| protocol(what, e))
    }
}

impl<T> Doing<T> for std::result::Result<T, DecodeError> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| protocol(what, e.into()))
    }
}

impl<T> Doing<T> for std::result::Result<T, VerifyError> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| protocol(what, e.into()))
    }
}

impl<T> Doing<T> for std::result::Result<T, offpay_qr::QrError> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| {
            use offpay_qr::QrError as Q;
            let todo = match e {
                Q::NoQrCode | Q::Image => {
                    "check that the file is a sharp, well-lit picture of one offpay QR code"
                }
                Q::WrongPrefix | Q::NotBase45 => {
                    "this QR code is not an offpay message; scan the code shown by the other device"
                }
                Q::TooLarge => "the code is larger than any offpay message; it is not one",
                _ => "scan the code again",
            };
            Failure {
                what: format!("{what}: {e}"),
                todo: todo.into(),
                code: Some(e.code()),
            }
        })
    }
}

impl<T> Doing<T> for std::result::Result<T, std::io::Error> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| Failure::new(format!("{what}: {e}"), "check the path and permissions"))
    }
}

impl<T> Doing<T> for std::result::Result<T, offpay_issuer::client::ClientError> {
    fn doing(self, what: &str) -> Result<T> {
        use offpay_issuer::client::ClientError as C;
        self.map_err(|e| {
            let code = e.code();
            let todo = match &e {
                C::Offline(_) => "check the issuer's URL (--issuer) and that the service runs; nothing was changed",
                C::Refused { code, .. } => match offpay_issuer::api::ApiError::from_code(*code) {
                    Some(offpay_issuer::api::ApiError::Unauthorized) => {
                        "give the issuer's admin token (--admin-token or --admin-token-file)"
                    }
                    Some(offpay_issuer::api::ApiError::BadCredential) => {
                        "give the instrument id and credential the issuer handed out (--instrument, --credential)"
                    }
                    Some(offpay_issuer::api::ApiError::Busy) => "the issuer is busy; try again shortly",
                    _ => "nothing was changed",
                },
                C::Server(_) => "the issuer failed; nothing was changed, try again later",
                C::BadUrl(_) => "give the issuer's URL, e.g. --issuer http://127.0.0.1:7878",
                _ => "nothing was changed",
            };
            Failure {
                what: format!("{what}: {e}"),
                todo: todo.into(),
                code,
            }
        })
    }
}

impl<T> Doing<T> for std::result::Result<T, offpay_sdk::Error> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| sdk(what, e))
    }
}

/// An SDK error met while doing `what`: a protocol refusal gets the remedy of [`protocol`], an
/// issuer's the one of its API code; the others say what to do themselves.
pub fn sdk(what: &str, e: offpay_sdk::Error) -> Failure {
    use offpay_sdk::Error as E;
    match &e {
        E::Refused { code, .. } | E::Storage { code, .. } => match Error::from_code(*code) {
            Some(p) => protocol(what, p),
            None => Failure {
                what: format!("{what}: {e}"),
                todo: String::new(),
                code: Some(*code),
            },
        },
        E::IssuerRefused { code, .. } => Failure {
            what: e.to_string(),
            todo: match offpay_issuer::api::ApiError::from_code(*code) {
                Some(offpay_issuer::api::ApiError::BadCredential) => {
                    "give the instrument id and credential the issuer handed out (--instrument, --credential)"
                }
                Some(offpay_issuer::api::ApiError::Busy) => "the issuer is busy; try again shortly",
                _ => "nothing was changed",
            }
            .into(),
            code: Some(*code),
        },
        E::Offline { .. } => Failure::new(
            e.to_string(),
            "check the issuer's URL (--issuer) and that the service runs; nothing was changed",
        ),
        E::IssuerFailed { .. } => Failure::new(
            e.to_string(),
            "the issuer failed; nothing was changed, try again later",
        ),
        _ => Failure::new(format!("{what}: {e}"), ""),
    }
}

/// A protocol error met while doing `what`, with the remedy a user can act on.
pub fn protocol(what: &str, e: Error) -> Failure {
    let todo = match e {
        Error::Rejected(r) => match r {
            Rejection::Expired => {
                "the voucher or certificate is outside its validity; get a new voucher with `offpay wallet preauth` (or a new certificate from the issuer)"
            }
            Rejection::NotYetValid => "check the device clock: it is not valid yet",
            Rejection::WrongCurrency => {
                "the wallet holds no voucher in this currency; pre-authorize one with `offpay wallet preauth --currency ...`"
            }
            Rejection::InsufficientFunds | Rejection::OverLimit => {
                "the voucher is exhausted for this amount; pay less or pre-authorize more with `offpay wallet preauth`"
            }
            Rejection::OverPolicy => {
                "the voucher's policy (largest single payment or number of payments) does not allow this; pre-authorize a new voucher"
            }
            Rejection::WrongMerchant => "this payment was made for another merchant",
            Rejection::WrongNonce => {
                "this payment answers a request this till did not make (or already used); make a new request with `offpay merchant request`"
            }
            Rejection::WrongAmount => "the payment is not for the requested amount",
            Rejection::Revoked => "the issuer revoked it; do not accept or pay it",
            Rejection::SequenceReused | Rejection::ChainInconsistent => {
                "this wallet already spent this money: it may be a cloned device; refuse it"
            }
            Rejection::CapacityExceeded => {
                "no room: sync first with `offpay ... sync` (a wallet's spent-out or closed voucher frees its slot once its payments are synced)"
            }
            Rejection::Retired => {
                "this voucher was used up and retired from this wallet; pre-authorize a new one"
            }
            Rejection::WrongHolder => "the voucher was issued to another wallet",
            Rejection::StaleRevocationList => "a newer revocation list is already installed",
            Rejection::UnknownPayment | Rejection::UnknownMerchant => {
                "the issuer does not know it; certify the merchant with `offpay issuer certify-merchant`"
            }
            Rejection::SettlementClosed => "settlement for this voucher has closed",
            _ => "see SPEC.md's error table for this code",
        },
        Error::Verify(v) => match v {
            VerifyError::BadSignature => {
                "the signature does not verify: the bytes were altered or forged; do not trust them"
            }
            VerifyError::UnknownIssuerKey | VerifyError::IssuerKeyNotValid => {
                "it was signed by an issuer this device does not trust (now)"
            }
            VerifyError::WeakKey => "it carries an unusable public key; it was forged",
            _ => "do not trust it",
        },
        Error::Decode(d) => match d {
            DecodeError::WrongType => "this is another kind of offpay message than expected",
            _ => "the bytes are not a well-formed offpay message of this kind",
        },
        Error::Store(s) => match s {
            StoreError::Io => "the store could not be written; check disk space and permissions",
            StoreError::Corrupt => "the store is damaged; restore it from a backup",
            StoreError::Full | StoreError::RecordTooLarge => "the store is full; sync first",
            _ => "check the store",
        },
        _ => "this is a bug in offpay; please report it",
    };
    Failure {
        what: format!("{what}: {}", e),
        todo: todo.into(),
        code: Some(e.code()),
    }
}
