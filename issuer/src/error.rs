//! Why the service refused or failed, and how each reason goes over HTTP.

use crate::api::{ApiError, ErrorBody};
use offpay_protocol::Error as ProtocolError;
use std::fmt;

/// Why an operation of the service did not happen. Whatever the reason, the ledger is as it
/// was before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The protocol refused the bytes (a SPEC §9 code).
    Protocol(ProtocolError),
    /// The API refused the request (a §15.4 code), with what to tell the caller.
    Api(ApiError, String),
    /// The ledger's storage failed.
    Storage(String),
    /// The operation lost a race with a concurrent one (a deadlock, a busy lock) and was
    /// rolled back; running it again is safe. Backends retry it themselves a bounded number
    /// of times before they give up with this.
    Contention(String),
}

impl Failure {
    /// An API refusal.
    pub fn api(e: ApiError, message: impl Into<String>) -> Self {
        Failure::Api(e, message.into())
    }

    /// A storage failure.
    pub fn storage(e: impl fmt::Display) -> Self {
        Failure::Storage(e.to_string())
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Failure::Protocol(ProtocolError::Decode(_)) => 400,
            Failure::Protocol(_) => 422,
            Failure::Api(e, _) => e.status(),
            Failure::Storage(_) => ApiError::Internal.status(),
            Failure::Contention(_) => ApiError::Busy.status(),
        }
    }

    /// The JSON body it is answered with.
    pub fn body(&self) -> ErrorBody {
        match self {
            Failure::Protocol(e) => ErrorBody {
                error: e.name().to_string(),
                code: e.code(),
                message: format!("the protocol refused the message: {e}"),
            },
            Failure::Api(e, m) => ErrorBody {
                error: e.name().to_string(),
                code: e.code(),
                message: m.clone(),
            },
            Failure::Storage(_) => ErrorBody {
                error: ApiError::Internal.name().to_string(),
                code: ApiError::Internal.code(),
                message: "the ledger failed; usually nothing was changed, but a failure as it \
                          committed may have taken effect: retry (pre-authorization, sync and \
                          funding with its reference are idempotent)"
                    .to_string(),
            },
            Failure::Contention(_) => ErrorBody {
                error: ApiError::Busy.name().to_string(),
                code: ApiError::Busy.code(),
                message: "the ledger is busy with concurrent requests; nothing was changed, \
                          try again"
                    .to_string(),
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Protocol(e) => write!(f, "{e}"),
            Failure::Api(e, m) => write!(f, "{m} ({})", e.name()),
            Failure::Storage(e) => write!(f, "the ledger failed: {e}"),
            Failure::Contention(e) => write!(f, "the ledger is busy: {e}"),
        }
    }
}

impl std::error::Error for Failure {}

macro_rules! from_protocol {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Failure {
            fn from(e: $ty) -> Self {
                Failure::Protocol(e.into())
            }
        }
    )*};
}

from_protocol!(
    ProtocolError,
    offpay_protocol::DecodeError,
    offpay_protocol::VerifyError,
    offpay_protocol::Rejection,
    offpay_protocol::StoreError,
    offpay_protocol::EncodeError
);
