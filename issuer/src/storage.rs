//! The ledger's storage interface: each method is one transaction, all or nothing. Every
//! SQL backend implements it through [`crate::sql`] (SQLite, PostgreSQL), with the same
//! statements and so the same outcomes. The closures it is given may run more than once (a
//! backend runs a transaction again after losing a race), so they are `Fn`.
//!
//! The storage keeps money as a double-entry ledger: every movement is a set of entries on
//! accounts that sums to zero, written in the same transaction as the rows that cause it.
//!
//! | account | owner | balance |
//! |---|---|---|
//! | `funding` | instrument | minus everything funded into it |
//! | `available` | instrument | what can be pre-authorized |
//! | `reserved` | instrument | what its open vouchers hold |
//! | `owed` | instrument | minus what its holder owes for proven double spends |
//! | `merchant` | merchant id | what the merchant was credited |
//! | `suspense` | — | credits drawn on a voucher this ledger did not issue |
//!
//! | movement | entries |
//! |---|---|
//! | funding | funding −x, available +x |
//! | reservation (pre-authorization) | available −x, reserved +x |
//! | credit (the payments of one voucher a batch credits) | reserved −(amount − overspend), merchant +amount, owed −overspend |
//! | release at closing | reserved −x, available +x |

use crate::api;
use crate::error::Failure;
use crate::settle::StateReader;
use offpay_protocol::settlement::Ingested;
use offpay_protocol::{
    Amount, Currency, HolderKey, MerchantId, Nonce, Timestamp, VoucherId, VoucherSummary,
};

/// A pre-authorization the service has checked and signed, to be granted.
#[derive(Clone, Debug)]
pub struct PreAuth {
    /// The instrument to reserve from.
    pub instrument: String,
    /// The holder key of the request.
    pub holder_key: HolderKey,
    /// The request's client nonce.
    pub client_nonce: Nonce,
    /// SHA-256 of the request's bytes.
    pub request_hash: [u8; 32],
    /// The amount to reserve.
    pub amount: Amount,
    /// Its currency.
    pub currency: Currency,
    /// The time of the request.
    pub now: Timestamp,
    /// The voucher signed for it, stored unless this request was granted before.
    pub voucher: Vec<u8>,
}

/// An instrument row with its credential hash.
#[derive(Clone, Debug)]
pub struct InstrumentRow {
    /// The account as the API shows it.
    pub instrument: api::Instrument,
    /// SHA-256 of its credential.
    pub credential_hash: [u8; 32],
}

/// A pre-authorization granted before: its request's SHA-256 and the voucher's bytes.
pub type Granted = ([u8; 32], Vec<u8>);

/// Runs settlement against a transaction's rows.
pub type Settle = Box<dyn Fn(&mut dyn StateReader) -> Result<Ingested, Failure> + Send + Sync>;
/// Decides which of the given open vouchers close now (settlement's rule).
pub type Close = std::sync::Arc<dyn Fn(&[VoucherSummary]) -> Vec<VoucherSummary> + Send + Sync>;
/// Signs the revocation list with this serial over these ids.
pub type SignList =
    Box<dyn Fn(u64, &[VoucherId], &[MerchantId]) -> Result<Vec<u8>, Failure> + Send + Sync>;

/// What a sync stored.
#[derive(Clone, Debug)]
pub struct Synced {
    /// Settlement's outcome.
    pub ingested: Ingested,
    /// Records settlement had not seen.
    pub new_records: usize,
}

/// The ledger's storage. Every method is one transaction; on any error nothing changed.
pub trait Storage: Send + Sync {
    /// The schema version the store is at.
    fn schema_version(&self) -> Result<u32, Failure>;
    /// A cheap query that fails when the store is unreachable.
    fn check(&self) -> Result<(), Failure>;
    /// Creates an instrument account.
    fn create_instrument(
        &self,
        id: &str,
        credential_hash: [u8; 32],
        currency: Currency,
        label: Option<&str>,
        now: Timestamp,
    ) -> Result<api::Instrument, Failure>;
    /// An instrument and its credential hash.
    fn instrument(&self, id: &str) -> Result<Option<InstrumentRow>, Failure>;
    /// An instrument's credential hash and currency (what a pre-authorization checks).
    fn credential(&self, id: &str) -> Result<Option<([u8; 32], Currency)>, Failure>;
    /// Funds an instrument, once per `reference` (the same reference and amount again:
    /// nothing more; another amount: `reference-reused`).
    fn fund(
        &self,
        id: &str,
        amount: Amount,
        reference: &str,
        now: Timestamp,
    ) -> Result<api::Instrument, Failure>;
    /// The request hash and voucher of a pre-authorization granted for (holder key, nonce).
    fn granted(&self, holder: &HolderKey, nonce: &Nonce) -> Result<Option<Granted>, Failure>;
    /// Grants a pre-authorization: the voucher stored for the same (holder key, client nonce)
    /// if there is one (the same request: no second reservation; another request:
    /// `nonce-reused`), else reserves the amount (`insufficient-funds` if the instrument lacks
    /// it) and stores `p.voucher`, in one transaction.
    fn preauthorize(&self, p: PreAuth) -> Result<Vec<u8>, Failure>;
    /// Stores a certified merchant (`merchant-exists` if its id is taken).
    fn add_merchant(&self, certificate: &[u8], now: Timestamp) -> Result<(), Failure>;
    /// Settles one batch: runs `settle` over the rows it needs and writes its changes and the
    /// money they move, in one transaction.
    fn sync(&self, batch: Vec<u8>, now: Timestamp, settle: Settle) -> Result<Synced, Failure>;
    /// Closes the vouchers `close` picks among those whose window ended before `now - grace`,
    /// releasing what is left to their instruments.
    fn close_expired(
        &self,
        now: Timestamp,
        grace: u32,
        close: Close,
    ) -> Result<Vec<api::VoucherState>, Failure>;
    /// Adds revocations and stores the list `sign` makes of all of them.
    fn revoke(
        &self,
        voucher: Option<VoucherId>,
        merchant: Option<MerchantId>,
        now: Timestamp,
        sign: SignList,
    ) -> Result<Vec<u8>, Failure>;
    /// The newest revocation list and its serial.
    fn revocation_list(&self) -> Result<Option<(u64, Vec<u8>)>, Failure>;
    /// Merchant credits.
    fn credits(&self) -> Result<Vec<api::Credit>, Failure>;
    /// FraudProofs.
    fn proofs(&self) -> Result<Vec<api::Proof>, Failure>;
    /// Vouchers and their settled state.
    fn vouchers(&self) -> Result<Vec<api::VoucherState>, Failure>;
}
