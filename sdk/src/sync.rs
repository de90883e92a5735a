//! The sync loop both devices share: send what the issuer has not acknowledged, apply its
//! signed report, repeat while a round acknowledges something, then install the newest
//! revocation list.

use crate::Error;
use crate::error::{Doing, client};
use crate::files::{DeviceDir, Trust};
use offpay_issuer::client::Client;
use offpay_protocol::msg::sync::MAX_SYNC_RECORDS;
use offpay_protocol::msg::{FraudProof, Outcome, SyncBatch, SyncReport};
use offpay_protocol::{Timestamp, decode_signed, decode_unsigned};

/// The size bound of a sync batch.
pub(crate) const SYNC_BATCH_MAX: usize =
    <SyncBatch<'static> as offpay_protocol::codec::Message<'static>>::MAX_LEN;

/// The size bound of a sync report.
pub(crate) const SYNC_REPORT_MAX: usize =
    <SyncReport<'static> as offpay_protocol::codec::Message<'static>>::MAX_LEN;

/// The most rounds one sync makes (each carries up to 1,024 records).
const MAX_ROUNDS: usize = 1024;

/// A record the issuer refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedRecord {
    /// The stable SPEC §9 code.
    pub code: u16,
    /// Its name (`unknown` for a code this version does not define).
    pub name: String,
}

/// A double spend the issuer proved while settling what this device sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudProofInfo {
    /// The rule broken (`same-sequence`, `broken-link`, `cumulative-mismatch`).
    pub kind: String,
    /// The voucher spent twice (hex).
    pub voucher_id: String,
    /// The two payments' ids (hex).
    pub payments: [String; 2],
    /// The proof itself (SPEC §6.10), checkable by anyone who trusts the issuer.
    pub bytes: Vec<u8>,
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Records sent (payments and receipts; a record sent in two rounds counts twice).
    pub records_sent: u32,
    /// Records that credited their payment in this sync.
    pub credited: u32,
    /// Records the issuer holds, waiting for their other half (sync again later).
    pub pending: u32,
    /// Records the issuer already knew.
    pub duplicates: u32,
    /// Records that revealed a double spend (their proofs are in `fraud_proofs`).
    pub conflicts: u32,
    /// Records the issuer refused, with why.
    pub refused: Vec<RefusedRecord>,
    /// The double spends the issuer proved.
    pub fraud_proofs: Vec<FraudProofInfo>,
    /// Records newly acknowledged (they will not be sent again).
    pub acknowledged: u32,
    /// Whether a newer revocation list was installed.
    pub revocation_list_updated: bool,
    /// Tills' batches uploaded on their behalf in this sync (see
    /// [`crate::CustomerWallet::carry_batch`]). Their records are not counted above: they are
    /// the tills', whose reports say what became of them.
    pub relayed_batches: u32,
    /// Records of those batches that were sent.
    pub relayed_records: u32,
    /// Steps that did not complete (fetching the revocation list, uploading a carried batch),
    /// each with why; what did complete stands, and the next sync does the rest.
    pub incomplete: Vec<String>,
}

impl SyncSummary {
    /// Counts one signed report (already verified by the device that applied it).
    pub(crate) fn add_report(&mut self, report: &[u8]) -> Result<(), Error> {
        let r = decode_signed::<SyncReport<'_>>(report).doing("reading the issuer's report")?;
        for e in r.entries() {
            match e.outcome {
                Outcome::Credited => self.credited += 1,
                Outcome::Pending => self.pending += 1,
                Outcome::Duplicate => self.duplicates += 1,
                Outcome::Conflict => self.conflicts += 1,
                Outcome::Rejected(code) => self.refused.push(RefusedRecord {
                    code,
                    name: offpay_protocol::Error::from_code(code)
                        .map_or("unknown", |e| e.name())
                        .to_string(),
                }),
            }
        }
        for bytes in r.proofs() {
            let p = decode_unsigned::<FraudProof<'_>>(bytes).doing("reading a fraud proof")?;
            self.fraud_proofs.push(FraudProofInfo {
                kind: p.kind.name().to_string(),
                voucher_id: p.first.voucher.id.to_string(),
                payments: [p.first.id().to_string(), p.second.id().to_string()],
                bytes: bytes.to_vec(),
            });
        }
        Ok(())
    }
}

/// One device's side of a sync.
pub(crate) trait Syncable {
    /// Writes the unacknowledged records into `buf`.
    fn batch(&self, buf: &mut [u8]) -> Result<usize, Error>;
    /// Verifies and applies a report; returns how many records it newly acknowledged.
    fn apply(&self, report: &[u8], trust: &Trust, now: Timestamp) -> Result<usize, Error>;
}

/// Syncs `device` until a round acknowledges nothing new, then installs the newest revocation
/// list into `dir`.
pub(crate) fn sync(
    issuer: &Client,
    device: &dyn Syncable,
    dir: &DeviceDir,
    trust: &Trust,
    now: Timestamp,
) -> Result<SyncSummary, Error> {
    let mut summary = SyncSummary::default();
    let mut buf = vec![0u8; SYNC_BATCH_MAX];
    for _ in 0..MAX_ROUNDS {
        let n = device.batch(&mut buf)?;
        let batch = buf.get(..n).unwrap_or(&[]);
        let count = decode_unsigned::<SyncBatch<'_>>(batch)
            .doing("reading the sync batch")?
            .len();
        if count == 0 {
            break;
        }
        let report = issuer.sync(batch).map_err(|e| client("syncing", e))?;
        let marked = device.apply(&report, trust, now)?;
        summary.add_report(&report)?;
        summary.records_sent += u32::try_from(count).unwrap_or(u32::MAX);
        summary.acknowledged += u32::try_from(marked).unwrap_or(u32::MAX);
        if count < MAX_SYNC_RECORDS || marked == 0 {
            break;
        }
    }
    // The reports are applied: a failure from here on is reported, not returned, so that what
    // this sync did (fraud proofs included) reaches the caller.
    match issuer
        .revocations()
        .map_err(|e| client("fetching the revocation list", e))
        .and_then(|list| dir.install_revocations(&list, trust, now))
    {
        Ok(updated) => summary.revocation_list_updated = updated,
        Err(e) => summary.incomplete.push(e.to_string()),
    }
    Ok(summary)
}
