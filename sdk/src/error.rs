//! The SDK's one error type. Every variant says whether anything changed: a refusal changes
//! no stored state; an online call that failed can be retried as it is.

use offpay_issuer::client::ClientError;
use std::fmt;

/// Why a call failed. Codes are the stable ones of SPEC §9 (protocol) and §15.4 (issuer API).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The issuer could not be reached (no network, refused, timed out). Nothing was changed
    /// here; the call can be repeated as it is once the device is online.
    Offline {
        /// What went wrong.
        message: String,
    },
    /// The issuer refused the call with a stable code (SPEC §9 or §15.4). Nothing was changed
    /// here.
    IssuerRefused {
        /// The stable code.
        code: u16,
        /// The stable name (`insufficient-funds`, `unauthorized`, ...).
        name: String,
        /// What the issuer said.
        message: String,
    },
    /// The issuer failed or answered something that is not its API. Nothing was changed here;
    /// retry later.
    IssuerFailed {
        /// What went wrong.
        message: String,
    },
    /// The protocol refused bytes or an action (SPEC §9: malformed, bad signature, expired,
    /// over the limit, ...). Nothing was stored.
    Refused {
        /// The stable SPEC §9 code.
        code: u16,
        /// Its stable name.
        name: String,
        /// What was being done, and why it was refused.
        message: String,
    },
    /// The device's storage failed (SPEC §9 codes 400–499: `io`, `corrupt`, ...).
    Storage {
        /// The stable SPEC §9 code.
        code: u16,
        /// Its stable name.
        name: String,
        /// What was being done, and what to do.
        message: String,
    },
    /// An argument is not usable (an amount, a currency code, a text too long). Nothing was
    /// changed.
    Invalid {
        /// What is wrong and how to write it.
        message: String,
    },
    /// The device directory cannot be used as asked: missing, already there, or in use by
    /// another process.
    Device {
        /// What is wrong and what to do.
        message: String,
    },
    /// The app's signer ([`crate::HolderSigner`]) failed or gave a key or signature that does
    /// not match. Nothing was stored.
    Signer {
        /// What went wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
        }
    }

    pub(crate) fn device(message: impl Into<String>) -> Self {
        Error::Device {
            message: message.into(),
        }
    }

    pub(crate) fn io(doing: &str, e: &std::io::Error) -> Self {
        Error::Storage {
            code: offpay_protocol::StoreError::Io.code(),
            name: offpay_protocol::StoreError::Io.name().into(),
            message: format!("{doing}: {e}"),
        }
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Error::Storage {
            code: offpay_protocol::StoreError::Corrupt.code(),
            name: offpay_protocol::StoreError::Corrupt.name().into(),
            message: message.into(),
        }
    }

    /// The stable code (SPEC §9 or §15.4), when there is one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::IssuerRefused { code, .. }
            | Error::Refused { code, .. }
            | Error::Storage { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The stable name of [`Error::code`], when there is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Error::IssuerRefused { name, .. }
            | Error::Refused { name, .. }
            | Error::Storage { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The message alone.
    pub fn message(&self) -> &str {
        match self {
            Error::Offline { message }
            | Error::IssuerRefused { message, .. }
            | Error::IssuerFailed { message }
            | Error::Refused { message, .. }
            | Error::Storage { message, .. }
            | Error::Invalid { message }
            | Error::Device { message }
            | Error::Signer { message } => message,
        }
    }

    /// Whether the same call may succeed later unchanged (the issuer was unreachable or failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Offline { .. } | Error::IssuerFailed { .. })
            || matches!(self, Error::IssuerRefused { code, .. } if *code == 809 || *code == 810)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.code()) {
            (Some(name), Some(code)) => {
                write!(f, "{} ({name}, offpay error {code})", self.message())
            }
            _ => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for Error {}

/// Attaches what was being done to a lower-level error.
pub(crate) trait Doing<T> {
    fn doing(self, what: &str) -> Result<T, Error>;
}

impl<T, E: Into<offpay_protocol::Error>> Doing<T> for Result<T, E> {
    fn doing(self, what: &str) -> Result<T, Error> {
        self.map_err(|e| protocol(what, e.into()))
    }
}

/// A protocol error while doing `what`.
pub(crate) fn protocol(what: &str, e: offpay_protocol::Error) -> Error {
    use offpay_protocol::{EncodeError, Error as P, StoreError};
    let (code, name) = (e.code(), e.name().to_string());
    match e {
        P::Store(s) => Error::Storage {
            code,
            name,
            message: format!(
                "{what}: {}",
                match s {
                    StoreError::Corrupt => "the journal is damaged; restore it from a backup",
                    StoreError::Io => "the device's storage failed; check free space",
                    StoreError::Full | StoreError::RecordTooLarge =>
                        "the journal is full; sync to free it",
                    _ => "the journal failed",
                }
            ),
        },
        P::Encode(EncodeError::Signer) => Error::Signer {
            message: format!("{what}: the holder key's signer failed"),
        },
        _ => Error::Refused {
            code,
            name: name.clone(),
            message: format!("{what}: {}", describe(&name)),
        },
    }
}

fn describe(name: &str) -> String {
    name.replace('-', " ")
}

/// An issuer call's failure.
pub(crate) fn client(what: &str, e: ClientError) -> Error {
    match e {
        ClientError::Offline(m) => Error::Offline {
            message: format!("{what}: the issuer cannot be reached ({m}); try again when online"),
        },
        ClientError::Refused {
            code,
            name,
            message,
            ..
        } => Error::IssuerRefused {
            code,
            name,
            message: format!("{what}: the issuer refused: {message}"),
        },
        ClientError::Server(m) => Error::IssuerFailed {
            message: format!("{what}: the issuer failed: {m}"),
        },
        ClientError::BadUrl(u) => {
            Error::invalid(format!("'{u}' is not an issuer URL (http://HOST:PORT)"))
        }
        other => Error::IssuerFailed {
            message: format!("{what}: {other}"),
        },
    }
}
