//! The HTTP API's types, shared by the client and the server (SPEC §15).
//!
//! Protocol messages travel as their exact bytes (`application/octet-stream`); control data as
//! JSON with these types. Ids are lower-case hex of their bytes; amounts are minor units.

use offpay_protocol::{MerchantId, PublicKey, VoucherId};
use serde::{Deserialize, Serialize};

/// The media type of a protocol message in a request or response body.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// The media type of control data.
pub const JSON: &str = "application/json";
/// The largest JSON body the service reads (admin and control requests).
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// Paths of the public API.
pub mod path {
    /// `GET`: the issuer's keys and policy ([`IssuerInfo`](super::IssuerInfo)).
    pub const ISSUER: &str = "/v1/issuer";
    /// `POST`: a PreAuthRequest → a Voucher.
    pub const PREAUTHORIZATIONS: &str = "/v1/preauthorizations";
    /// `POST`: a SyncBatch → a SyncReport.
    pub const SYNC: &str = "/v1/sync";
    /// `GET`: the newest RevocationList.
    pub const REVOCATIONS: &str = "/v1/revocations";
    /// `GET`: this API's OpenAPI document.
    pub const OPENAPI: &str = "/v1/openapi.json";
    /// `GET`: liveness and the ledger's reachability.
    pub const HEALTH: &str = "/healthz";
    /// `GET` (admin listener): Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// Admin `POST`: create an instrument account.
    pub const ADMIN_INSTRUMENTS: &str = "/admin/v1/instruments";
    /// Admin `POST`: certify a merchant key.
    pub const ADMIN_MERCHANTS: &str = "/admin/v1/merchants";
    /// Admin `POST`: revoke a voucher or a merchant.
    pub const ADMIN_REVOCATIONS: &str = "/admin/v1/revocations";
    /// Admin `POST`: close every voucher whose settlement window ended.
    pub const ADMIN_CLOSE: &str = "/admin/v1/close";
    /// Admin `GET`: merchant credits.
    pub const ADMIN_CREDITS: &str = "/admin/v1/credits";
    /// Admin `GET`: FraudProofs.
    pub const ADMIN_FRAUD: &str = "/admin/v1/fraud";
    /// Admin `GET`: vouchers and their settled state.
    pub const ADMIN_VOUCHERS: &str = "/admin/v1/vouchers";
}

/// The header carrying an instrument's credential with a pre-authorization.
pub const CREDENTIAL_HEADER: &str = "offpay-instrument-credential";

macro_rules! api_errors {
    ($( $(#[doc = $doc:literal])* $variant:ident = ($code:literal, $name:literal, $status:literal), )*) => {
        /// Why the service refused a request, beside the protocol's own codes (SPEC §15.4,
        /// codes 800–899). Each has a stable code, name and HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ApiError {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl offpay_protocol::codes::Codes for ApiError {
            type Code = u16;
            const TABLE: &'static [offpay_protocol::codes::Row<u16>] = &[
                $( offpay_protocol::codes::Row {
                    variant: stringify!($variant),
                    code: $code,
                    name: $name,
                    doc: concat!($($doc, "\n"),*),
                }, )*
            ];
        }

        impl ApiError {
            /// Every API error, in code order.
            pub const ALL: &'static [ApiError] = &[$(ApiError::$variant,)*];
            /// The stable code.
            pub const fn code(self) -> u16 {
                match self { $(ApiError::$variant => $code,)* }
            }
            /// The stable name.
            pub const fn name(self) -> &'static str {
                match self { $(ApiError::$variant => $name,)* }
            }
            /// The HTTP status it is sent with.
            pub const fn status(self) -> u16 {
                match self { $(ApiError::$variant => $status,)* }
            }
            /// The error with this code.
            pub fn from_code(code: u16) -> Option<ApiError> {
                Self::ALL.iter().copied().find(|e| e.code() == code)
            }
        }
    };
}

api_errors! {
    /// The admin token is missing or wrong.
    Unauthorized = (800, "unauthorized", 401),
    /// The instrument does not exist or the credential is not its own (one answer for both,
    /// so that instrument ids cannot be probed).
    BadCredential = (801, "bad-credential", 401),
    /// The request body is larger than the endpoint reads.
    BodyTooLarge = (802, "body-too-large", 413),
    /// The request's `Content-Type` is not the endpoint's media type.
    WrongContentType = (803, "wrong-content-type", 415),
    /// No such endpoint or object.
    NotFound = (804, "not-found", 404),
    /// The JSON body does not parse, or a field is missing, malformed or out of range.
    BadJson = (805, "bad-json", 400),
    /// A pre-authorization reuses a (holder key, client nonce) of a different request.
    NonceReused = (806, "nonce-reused", 409),
    /// A merchant id that is already certified.
    MerchantExists = (807, "merchant-exists", 409),
    /// The method is not allowed on this path.
    MethodNotAllowed = (808, "method-not-allowed", 405),
    /// The service is at its concurrency limit or the request took too long; retry later.
    Busy = (809, "busy", 503),
    /// The ledger failed. Usually nothing was changed; when the failure came as the ledger
    /// committed (its database connection lost), the request may have taken effect. Retry it:
    /// pre-authorization, sync and funding with its reference are idempotent; look for an
    /// instrument before creating it again.
    Internal = (810, "internal", 500),
    /// An amount larger than the ledger holds (2^63 − 1 minor units).
    AmountTooLarge = (811, "amount-too-large", 422),
    /// The request body could not be read (a broken or aborted upload).
    BadBody = (812, "bad-body", 400),
    /// A funding reference already used for another amount on this instrument.
    ReferenceReused = (813, "reference-reused", 409),
}

/// The body of every refusal: `{"error": name, "code": n, "message": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable name (a SPEC §9 name or an [`ApiError`] name).
    pub error: String,
    /// The stable code.
    pub code: u16,
    /// What happened, for people.
    pub message: String,
}

/// One issuer key devices may trust, with its window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerKey {
    /// The Ed25519 public key, hex.
    pub public_key: String,
    /// Its key id (first 8 bytes of SHA-256 of the key), hex.
    pub key_id: String,
    /// First second devices trust it.
    pub not_before: u32,
    /// Last second devices trust it.
    pub not_after: u32,
}

/// The terms the issuer grants with every voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// How long a voucher is valid, in seconds from its issue.
    pub voucher_secs: u32,
    /// The most payments one voucher may make.
    pub max_payments: u32,
    /// The largest single payment, if smaller than the voucher's amount.
    pub max_single_minor: Option<u64>,
    /// The largest amount one voucher may hold.
    pub max_amount_minor: Option<u64>,
    /// Seconds after a voucher's `not_after` during which its payments still settle.
    pub grace_secs: u32,
}

/// `GET /v1/issuer`: what a device needs to build its trust store after pinning the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerInfo {
    /// The issuer's keys, newest first.
    pub keys: Vec<IssuerKey>,
    /// Where the newest RevocationList is (a path on this service).
    pub revocations: String,
    /// The newest revocation list's serial number.
    pub revocation_serial: u64,
    /// The voucher terms.
    pub policy: Policy,
}

/// Admin: a new instrument account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInstrument {
    /// Its currency (ISO 4217): every voucher drawn on it is in this currency.
    pub currency: String,
    /// A label for the back office (at most 64 bytes).
    #[serde(default)]
    pub label: Option<String>,
}

/// An instrument account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    /// Its id: what a PreAuthRequest's `instrument_id` holds (ASCII).
    pub id: String,
    /// Its currency.
    pub currency: String,
    /// Its label.
    pub label: Option<String>,
    /// Everything funded into it.
    pub funded_minor: u64,
    /// What can be pre-authorized now.
    pub available_minor: u64,
    /// What outstanding vouchers hold.
    pub reserved_minor: u64,
    /// What its holder owes for proven double spends.
    pub owed_minor: u64,
    /// What merchants were credited from its vouchers.
    pub spent_minor: u64,
}

/// Admin: the answer to creating an instrument. The credential is shown this once; the
/// service keeps only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedInstrument {
    /// The account.
    pub instrument: Instrument,
    /// The secret that pre-authorizes on it (hex).
    pub credential: String,
}

/// Admin: money added to an instrument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    /// The amount, in the instrument's minor units (at least 1).
    pub amount_minor: u64,
    /// The back office's reference for this funding (1–64 bytes), unique per instrument:
    /// sending a funding again with the same reference (a retry after a timeout) funds
    /// nothing more and answers the instrument as it is.
    pub reference: String,
}

/// Admin: a merchant key to certify. The answer is the MerchantCertificate's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMerchant {
    /// The merchant id, 8 bytes as hex.
    pub merchant_id: String,
    /// The merchant's Ed25519 public key, hex.
    pub merchant_key: String,
    /// The name customers see (1–32 bytes of UTF-8, no control characters).
    pub display_name: String,
    /// Days the certificate is valid (1–3650).
    pub days: u32,
}

/// Admin: what to revoke. The answer is the new RevocationList's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    /// A voucher id (hex).
    #[serde(default)]
    pub voucher: Option<String>,
    /// A merchant id (hex).
    #[serde(default)]
    pub merchant: Option<String>,
}

/// A voucher's settled state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherState {
    /// The voucher id (hex).
    pub voucher_id: String,
    /// The instrument it was drawn on.
    pub instrument: Option<String>,
    /// Its currency.
    pub currency: String,
    /// Its limit.
    pub limit_minor: u64,
    /// Credited to merchants from it.
    pub credited_minor: u64,
    /// Credited beyond its limit (after a double spend).
    pub overspend_minor: u64,
    /// Whether a FraudProof was found.
    pub fraud: bool,
    /// What was released back to the instrument when it closed.
    pub released_minor: Option<u64>,
    /// Last second of validity.
    pub not_after: u32,
}

/// Admin: vouchers closed by one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// Each voucher closed, with what was released.
    pub closed: Vec<VoucherState>,
}

/// Admin: what a merchant was credited in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The merchant id (hex).
    pub merchant_id: String,
    /// The currency.
    pub currency: String,
    /// The total credited.
    pub amount_minor: u64,
    /// How many payments.
    pub payments: u64,
}

/// Admin: a FraudProof the ledger holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The voucher whose holder double-spent.
    pub voucher_id: String,
    /// The rule broken (`same-sequence`, `broken-link`, `cumulative-mismatch`).
    pub kind: String,
    /// The first payment's id.
    pub first_payment: String,
    /// The second payment's id.
    pub second_payment: String,
    /// The FraudProof message, hex.
    pub proof: String,
}

/// Hex of a merchant id, as the API writes it.
pub fn merchant_hex(id: &MerchantId) -> String {
    hex::encode(id.0)
}

/// A merchant id from the API's hex.
pub fn parse_merchant(hex_id: &str) -> Option<MerchantId> {
    hex::decode(hex_id).ok()?.try_into().ok().map(MerchantId)
}

/// A voucher id from the API's hex.
pub fn parse_voucher(hex_id: &str) -> Option<VoucherId> {
    hex::decode(hex_id).ok()?.try_into().ok().map(VoucherId)
}

/// A public key from the API's hex.
pub fn parse_key(hex_key: &str) -> Option<PublicKey> {
    hex::decode(hex_key).ok()?.try_into().ok().map(PublicKey)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct_and_in_range() {
        let mut codes: Vec<u16> = ApiError::ALL.iter().map(|e| e.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), ApiError::ALL.len());
        assert!(codes.iter().all(|c| (800..900).contains(c)));
        for e in ApiError::ALL {
            assert_eq!(ApiError::from_code(e.code()), Some(*e));
            assert!((400..600).contains(&e.status()));
        }
    }
}
