//! Typed errors, one enum per layer, each variant mapped to a stable SPEC code.
//!
//! Every error is `Copy` and allocation-free so firmware can match on it. The numeric
//! [`code`](Error::code) and the short [`name`](Error::name) are part of the protocol: they
//! appear in SPEC.md §9, in the conformance vectors and inside sync reports, and never change
//! meaning once published.

use core::fmt;

crate::codes! {
    /// Why bytes could not be decoded into a message (SPEC §9, codes 100–199).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum DecodeError: u16 {
        /// The input ended before the message did.
        Truncated = (100, "truncated"),
        /// Bytes remain after a complete message.
        TrailingBytes = (101, "trailing-bytes"),
        /// The version byte is not one this implementation speaks.
        UnknownVersion = (102, "unknown-version"),
        /// The type byte names no message, or a different message than expected here.
        WrongType = (103, "wrong-type"),
        /// A value was encoded in more bytes than needed (e.g. an overlong varint).
        NonCanonical = (104, "non-canonical"),
        /// A field holds a value outside its allowed range (zero amount, bad currency, bad UTF-8,
        /// unsorted list, window with `not_after <= not_before`, …).
        OutOfRange = (105, "out-of-range"),
        /// The input is longer than the hard maximum for its message type.
        OverSize = (106, "over-size"),
    }
}

crate::codes! {
    /// Why a well-formed message failed cryptographic verification (SPEC §9, codes 200–299).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum VerifyError: u16 {
        /// The signature does not verify under the expected key (includes every case that
        /// `verify_strict` refuses: non-canonical scalar, small-order R; for a P-256 holder
        /// key, r or s zero or ≥ n and a high S).
        BadSignature = (200, "bad-signature"),
        /// The message names an issuer key id that is not in the trust store.
        UnknownIssuerKey = (201, "unknown-issuer-key"),
        /// The issuer key exists but its validity window does not cover the time of use.
        IssuerKeyNotValid = (202, "issuer-key-not-valid"),
        /// A public key in the message is of small order (a "weak" key), names no point, or is
        /// not canonically encoded (`y ≥ p`); a P-256 holder key whose tag is not `02`/`03`,
        /// whose x is ≥ p or is no point's.
        WeakKey = (203, "weak-key"),
    }
}

crate::codes! {
    /// Why a verified message was refused by the wallet, acceptor or settlement rules
    /// (SPEC §9, codes 300–399).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum Rejection: u16 {
        /// A voucher or certificate is past its `not_after` (plus the clock-skew tolerance).
        Expired = (300, "expired"),
        /// A voucher or certificate is before its `not_before` (minus the clock-skew tolerance).
        NotYetValid = (301, "not-yet-valid"),
        /// The currency differs from the one requested or held.
        WrongCurrency = (302, "wrong-currency"),
        /// The cumulative amount would exceed the voucher limit.
        OverLimit = (303, "over-limit"),
        /// The payment breaks the voucher's acceptance policy (largest single payment, most payments).
        OverPolicy = (304, "over-policy"),
        /// This voucher sequence number was already seen with different content.
        SequenceReused = (305, "sequence-reused"),
        /// The payment names another merchant.
        WrongMerchant = (306, "wrong-merchant"),
        /// The payment answers no open request of this merchant.
        WrongNonce = (307, "wrong-nonce"),
        /// The payment amount differs from the requested amount.
        WrongAmount = (308, "wrong-amount"),
        /// The voucher or the merchant is on the revocation list.
        Revoked = (309, "revoked"),
        /// The payment contradicts an earlier payment of the same voucher (sequence, link or
        /// cumulative amount).
        ChainInconsistent = (310, "chain-inconsistent"),
        /// No installed voucher can pay this request.
        InsufficientFunds = (311, "insufficient-funds"),
        /// A receipt or report refers to a payment that is not known here.
        UnknownPayment = (312, "unknown-payment"),
        /// A record names a merchant the settlement has no certificate for.
        UnknownMerchant = (313, "unknown-merchant"),
        /// The voucher's settlement closed (its `not_after` plus grace has passed).
        SettlementClosed = (314, "settlement-closed"),
        /// A fixed-capacity table (vouchers, open requests) is full.
        CapacityExceeded = (315, "capacity-exceeded"),
        /// The voucher is bound to a different holder key than this wallet's.
        WrongHolder = (316, "wrong-holder"),
        /// A revocation list older than (or equal to) the installed one.
        StaleRevocationList = (317, "stale-revocation-list"),
        /// The voucher was retired from this wallet (spent out or closed, and settled): it is
        /// never installed again, since it would restart at sequence 1 (SPEC §8.1.1).
        Retired = (318, "voucher-retired"),
    }
}

crate::codes! {
    /// Why a store could not complete an operation (SPEC §9, codes 400–499).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum StoreError: u16 {
        /// The operating system reported an I/O failure; nothing was committed.
        Io = (400, "io"),
        /// Stored data fails its checksum or framing somewhere other than a torn tail.
        Corrupt = (401, "corrupt"),
        /// The store has no room for the record.
        Full = (402, "full"),
        /// The record is larger than the store's per-record maximum.
        RecordTooLarge = (403, "record-too-large"),
    }
}

crate::codes! {
    /// Why a message could not be encoded or signed (SPEC §9, codes 500–599).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum EncodeError: u16 {
        /// The output buffer is too small, or the message would exceed its maximum size.
        BufferTooSmall = (500, "buffer-too-small"),
        /// A field value is outside its allowed range (the encoder refuses what a decoder would).
        OutOfRange = (501, "encode-out-of-range"),
        /// The signer (for example a secure element) failed.
        Signer = (502, "signer-failed"),
    }
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
    Error::Rejected(Rejection::Retired),
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
