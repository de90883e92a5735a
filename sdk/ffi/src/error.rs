//! Errors across the boundary: the SDK's, and the app signer's.

use offpay_sdk as sdk;

/// Why a call failed (see `offpay_sdk::Error`).
#[derive(Debug, uniffi::Error)]
pub enum OffpayError {
    /// The issuer could not be reached; nothing changed; retry when online.
    Offline {
        /// What went wrong.
        reason: String,
    },
    /// The issuer refused with a stable code; nothing changed here.
    IssuerRefused {
        /// The stable code (SPEC §9 or §15.4).
        code: u16,
        /// Its name.
        name: String,
        /// What the issuer said.
        reason: String,
    },
    /// The issuer failed; retry later.
    IssuerFailed {
        /// What went wrong.
        reason: String,
    },
    /// The protocol refused (SPEC §9); nothing was stored.
    Refused {
        /// The stable SPEC code.
        code: u16,
        /// Its name.
        name: String,
        /// What was being done and why it was refused.
        reason: String,
    },
    /// The device's storage failed.
    Storage {
        /// The stable SPEC code.
        code: u16,
        /// Its name.
        name: String,
        /// What was being done and what to do.
        reason: String,
    },
    /// An argument is not usable.
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The device directory cannot be used as asked.
    Device {
        /// What is wrong.
        reason: String,
    },
    /// The app's holder signer failed or does not match.
    Signer {
        /// What went wrong.
        reason: String,
    },
}

impl std::fmt::Display for OffpayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IssuerRefused { code, name, reason }
            | Self::Refused { code, name, reason }
            | Self::Storage { code, name, reason } => {
                write!(f, "{reason} ({name}, offpay error {code})")
            }
            Self::Offline { reason }
            | Self::IssuerFailed { reason }
            | Self::Invalid { reason }
            | Self::Device { reason }
            | Self::Signer { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for OffpayError {}

impl From<sdk::Error> for OffpayError {
    fn from(e: sdk::Error) -> Self {
        use sdk::Error as E;
        match e {
            E::Offline { message } => Self::Offline { reason: message },
            E::IssuerRefused {
                code,
                name,
                message,
            } => Self::IssuerRefused {
                code,
                name,
                reason: message,
            },
            E::IssuerFailed { message } => Self::IssuerFailed { reason: message },
            E::Refused {
                code,
                name,
                message,
            } => Self::Refused {
                code,
                name,
                reason: message,
            },
            E::Storage {
                code,
                name,
                message,
            } => Self::Storage {
                code,
                name,
                reason: message,
            },
            E::Invalid { message } => Self::Invalid { reason: message },
            E::Device { message } => Self::Device { reason: message },
            E::Signer { message } => Self::Signer { reason: message },
            other => Self::Device {
                reason: other.to_string(),
            },
        }
    }
}

/// Why the app's signer could not sign.
#[derive(Debug, uniffi::Error)]
pub enum SignerError {
    /// The key is unavailable or the user declined.
    Failed {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for SignerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for SignerError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for SignerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SignerError::Failed { reason: e.reason }
    }
}
