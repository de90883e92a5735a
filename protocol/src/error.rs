//! Typed errors, one enum per layer, each variant mapped to a stable SPEC code.
//!
//! Every error is `Copy` and allocation-free so firmware can match on it. The numeric
//! [`code`](Error::code) and the short [`name`](Error::name) are part of the protocol: they
//! appear in SPEC.md §9, in the conformance vectors and inside sync reports, and never change
//! meaning once published.

use core::fmt;

/// Why bytes could not be decoded into a message (SPEC §9, codes 100–199).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the message did.
    Truncated,
    /// Bytes remain after a complete message.
    TrailingBytes,
    /// The version byte is not one this implementation speaks.
    UnknownVersion,
    /// The type byte names no message, or a different message than expected here.
    WrongType,
    /// A value was encoded in more bytes than needed (e.g. an overlong varint).
    NonCanonical,
    /// A field holds a value outside its allowed range (zero amount, bad currency, bad UTF-8,
    /// unsorted list, window with `not_after <= not_before`, …).
    OutOfRange,
    /// The input is longer than the hard maximum for its message type.
    OverSize,
}

/// Why a well-formed message failed cryptographic verification (SPEC §9, codes 200–299).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature does not verify under the expected key (includes every case that
    /// `verify_strict` refuses: non-canonical scalar, small-order R).
    BadSignature,
    /// The message names an issuer key id that is not in the trust store.
    UnknownIssuerKey,
    /// The issuer key exists but its validity window does not cover the time of use.
    IssuerKeyNotValid,
    /// A public key in the message is of small order (a "weak" key), names no point, or is
    /// not canonically encoded (`y ≥ p`).
    WeakKey,
}

/// Why a verified message was refused by the wallet, acceptor or settlement rules
/// (SPEC §9, codes 300–399).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// A voucher or certificate is past its `not_after` (plus the clock-skew tolerance).
    Expired,
    /// A voucher or certificate is before its `not_before` (minus the clock-skew tolerance).
    NotYetValid,
    /// The currency differs from the one requested or held.
    WrongCurrency,
    /// The cumulative amount would exceed the voucher limit.
    OverLimit,
    /// The payment breaks the voucher's acceptance policy (largest single payment, most payments).
    OverPolicy,
    /// This voucher sequence number was already seen with different content.
    SequenceReused,
    /// The payment names another merchant.
    WrongMerchant,
    /// The payment answers no open request of this merchant.
    WrongNonce,
    /// The payment amount differs from the requested amount.
    WrongAmount,
    /// The voucher or the merchant is on the revocation list.
    Revoked,
    /// The payment contradicts an earlier payment of the same voucher (sequence, link or
    /// cumulative amount).
    ChainInconsistent,
    /// No installed voucher can pay this request.
    InsufficientFunds,
    /// A receipt or report refers to a payment that is not known here.
    UnknownPayment,
    /// A record names a merchant the settlement has no certificate for.
    UnknownMerchant,
    /// The voucher's settlement closed (its `not_after` plus grace has passed).
    SettlementClosed,
    /// A fixed-capacity table (vouchers, open requests) is full.
    CapacityExceeded,
    /// The voucher is bound to a different holder key than this wallet's.
    WrongHolder,
    /// A revocation list older than (or equal to) the installed one.
    StaleRevocationList,
}

/// Why a store could not complete an operation (SPEC §9, codes 400–499).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system reported an I/O failure; nothing was committed.
    Io,
    /// Stored data fails its checksum or framing somewhere other than a torn tail.
    Corrupt,
    /// The store has no room for the record.
    Full,
    /// The record is larger than the store's per-record maximum.
    RecordTooLarge,
}

/// Why a message could not be encoded or signed (SPEC §9, codes 500–599).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small, or the message would exceed its maximum size.
    BufferTooSmall,
    /// A field value is outside its allowed range (the encoder refuses what a decoder would).
    OutOfRange,
    /// The signer (for example a secure element) failed.
    Signer,
}

/// Any offpay error: the layer and its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Malformed bytes.
    Decode(DecodeError),
    /// Failed signature or key checks.
    Verify(VerifyError),
    /// Refused by protocol rules.
    Rejected(Rejection),
    /// Local storage failed.
    Store(StoreError),
    /// Could not build a message.
    Encode(EncodeError),
}

impl DecodeError {
    /// The stable SPEC code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Truncated => 100,
            Self::TrailingBytes => 101,
            Self::UnknownVersion => 102,
            Self::WrongType => 103,
            Self::NonCanonical => 104,
            Self::OutOfRange => 105,
            Self::OverSize => 106,
        }
    }
    /// The stable SPEC name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::TrailingBytes => "trailing-bytes",
            Self::UnknownVersion => "unknown-version",
            Self::WrongType => "wrong-type",
            Self::NonCanonical => "non-canonical",
            Self::OutOfRange => "out-of-range",
            Self::OverSize => "over-size",
        }
    }
}

impl VerifyError {
    /// The stable SPEC code.
    pub const fn code(self) -> u16 {
        match self {
            Self::BadSignature => 200,
            Self::UnknownIssuerKey => 201,
            Self::IssuerKeyNotValid => 202,
            Self::WeakKey => 203,
        }
    }
    /// The stable SPEC name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::BadSignature => "bad-signature",
            Self::UnknownIssuerKey => "unknown-issuer-key",
            Self::IssuerKeyNotValid => "issuer-key-not-valid",
            Self::WeakKey => "weak-key",
        }
    }
}

impl Rejection {
    /// The stable SPEC code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Expired => 300,
            Self::NotYetValid => 301,
            Self::WrongCurrency => 302,
            Self::OverLimit => 303,
            Self::OverPolicy => 304,
            Self::SequenceReused => 305,
            Self::WrongMerchant => 306,
            Self::WrongNonce => 307,
            Self::WrongAmount => 308,
            Self::Revoked => 309,
            Self::ChainInconsistent => 310,
            Self::InsufficientFunds => 311,
            Self::UnknownPayment => 312,
            Self::UnknownMerchant => 313,
            Self::SettlementClosed => 314,
            Self::CapacityExceeded => 315,
            Self::WrongHolder => 316,
            Self::StaleRevocationList => 317,
        }
    }
    /// The stable SPEC name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::WrongCurrency => "wrong-currency",
            Self::OverLimit => "over-limit",
            Self::OverPolicy => "over-policy",
            Self::SequenceReused => "sequence-reused",
            Self::WrongMerchant => "wrong-merchant",
            Self::WrongNonce => "wrong-nonce",
            Self::WrongAmount => "wrong-amount",
            Self::Revoked => "revoked",
            Self::ChainInconsistent => "chain-inconsistent",
            Self::InsufficientFunds => "insufficient-funds",
            Self::UnknownPayment => "unknown-payment",
            Self::UnknownMerchant => "unknown-merchant",
            Self::SettlementClosed => "settlement-closed",
            Self::CapacityExceeded => "capacity-exceeded",
            Self::WrongHolder => "wrong-holder",
            Self::StaleRevocationList => "stale-revocation-list",
        }
    }
}

impl StoreError {
    /// The stable SPEC code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Io => 400,
            Self::Corrupt => 401,
            Self::Full => 402,
            Self::RecordTooLarge => 403,
        }
    }
    /// The stable SPEC name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::Corrupt => "corrupt",
            Self::Full => "full",
            Self::RecordTooLarge => "record-too-large",
        }
    }
}

impl EncodeError {
    /// The stable SPEC code.
    pub const fn code(self) -> u16 {
        match self {
            Self::BufferTooSmall => 500,
            Self::OutOfRange => 501,
            Self::Signer => 502,
        }
    }
    /// The stable SPEC name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::BufferTooSmall => "buffer-too-small",
            Self::OutOfRange => "encode-out-of-range",
            Self::Signer => "signer-failed",
        }
    }
}

impl Error {
    /// The stable SPEC code of the underlying reason.
    pub const fn code(self) -> u16 {
        match self {
            Self::Decode(e) => e.code(),
            Self::Verify(e) => e.code(),
            Self::Rejected(e) => e.code(),
            Self::Store(e) => e.code(),
            Self::Encode(e) => e.code(),
        }
    }
    /// The stable SPEC name of the underlying reason.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Decode(e) => e.name(),
            Self::Verify(e) => e.name(),
            Self::Rejected(e) => e.name(),
            Self::Store(e) => e.name(),
            Self::Encode(e) => e.name(),
        }
    }
    /// Looks a code up; `None` for a code this version does not define.
    pub fn from_code(code: u16) -> Option<Self> {
        ALL.iter().copied().find(|e| e.code() == code)
    }
}

/// Every error this version defines, in code order (used by [`Error::from_code`] and the SPEC
/// table generator).
pub const ALL: &[Error] = &[
    Error::Decode(DecodeError::Truncated),
    Error::Decode(DecodeError::TrailingBytes),
    Error::Decode(DecodeError::UnknownVersion),
    Error::Decode(DecodeError::WrongType),
    Error::Decode(DecodeError::NonCanonical),
    Error::Decode(DecodeError::OutOfRange),
    Error::Decode(DecodeError::OverSize),
    Error::Verify(VerifyError::BadSignature),
    Error::Verify(VerifyError::UnknownIssuerKey),
    Error::Verify(VerifyError::IssuerKeyNotValid),
    Error::Verify(VerifyError::WeakKey),
    Error::Rejected(Rejection::Expired),
    Error::Rejected(Rejection::NotYetValid),
    Error::Rejected(Rejection::WrongCurrency),
    Error::Rejected(Rejection::OverLimit),
    Error::Rejected(Rejection::OverPolicy),
    Error::Rejected(Rejection::SequenceReused),
    Error::Rejected(Rejection::WrongMerchant),
    Error::Rejected(Rejection::WrongNonce),
    Error::Rejected(Rejection::WrongAmount),
    Error::Rejected(Rejection::Revoked),
    Error::Rejected(Rejection::ChainInconsistent),
    Error::Rejected(Rejection::InsufficientFunds),
    Error::Rejected(Rejection::UnknownPayment),
    Error::Rejected(Rejection::UnknownMerchant),
    Error::Rejected(Rejection::SettlementClosed),
    Error::Rejected(Rejection::CapacityExceeded),
    Error::Rejected(Rejection::WrongHolder),
    Error::Rejected(Rejection::StaleRevocationList),
    Error::Store(StoreError::Io),
    Error::Store(StoreError::Corrupt),
    Error::Store(StoreError::Full),
    Error::Store(StoreError::RecordTooLarge),
    Error::Encode(EncodeError::BufferTooSmall),
    Error::Encode(EncodeError::OutOfRange),
    Error::Encode(EncodeError::Signer),
];

macro_rules! impl_from_and_display {
    ($($ty:ident => $variant:ident),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Self { Error::$variant(e) }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} (offpay error {})", self.name(), self.code())
            }
        }
        impl core::error::Error for $ty {}
    )*};
}
impl_from_and_display!(DecodeError => Decode, VerifyError => Verify, Rejection => Rejected,
    StoreError => Store, EncodeError => Encode);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (offpay error {})", self.name(), self.code())
    }
}
impl core::error::Error for Error {}
