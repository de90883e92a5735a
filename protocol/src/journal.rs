//! What the wallet and the acceptor share about their journals: record kinds, acknowledgements,
//! building a sync batch and applying a sync report (SPEC §8.4).

use crate::codec::decode_signed;
use crate::crypto::sha256;
use crate::error::Error;
use crate::msg::SyncReport;
use crate::msg::sync::{ItemsWriter, MAX_SYNC_RECORDS};
use crate::store::{Store, records};
use crate::trust::TrustStore;
use crate::types::{RecordId, Timestamp};

/// The first byte of every journal record.
pub(crate) mod kind {
    /// Wallet: an installed voucher (the voucher message).
    pub const VOUCHER: u8 = 0x01;
    /// Wallet: a payment made (`merchant key (32) ‖ payment message`).
    pub const PAYMENT: u8 = 0x02;
    /// Wallet: a receipt received (the receipt message).
    pub const RECEIPT: u8 = 0x03;
    /// Both: the issuer acknowledged a record (`record id (32)`).
    pub const ACK: u8 = 0x04;
    /// Acceptor: an open request (`nonce (16) ‖ amount (u64 LE) ‖ currency (3)`).
    pub const OPEN_REQUEST: u8 = 0x05;
    /// Acceptor: an accepted payment (`payment length (u16 LE) ‖ payment ‖ receipt`).
    pub const ACCEPTED: u8 = 0x06;
    /// Wallet: a voucher retired (`voucher id (16) ‖ not_after (u32 LE)`): its slot is free,
    /// and it is never installed again (SPEC §8.1.1).
    pub const RETIRED: u8 = 0x07;
    /// Wallet: every voucher ending at or before this time (`not_after`, u32 LE) that is not
    /// installed is retired: what a compaction leaves of the tombstones it drops (SPEC §8.5).
    pub const RETIRED_THROUGH: u8 = 0x08;
}

/// Splits a record into its kind and body.
pub(crate) fn split(record: &[u8]) -> Option<(u8, &[u8])> {
    record.split_first().map(|(k, b)| (*k, b))
}

/// Whether the journal holds an acknowledgement for `id`.
pub(crate) fn is_acked<S: Store + ?Sized>(store: &S, id: &RecordId) -> bool {
    records(store).any(|r| matches!(split(r), Some((kind::ACK, body)) if body == id.0.as_slice()))
}

/// Writes a sync batch of every unacknowledged item into `buf`; returns its length. `items`
/// names the syncable messages inside one record. At most [`MAX_SYNC_RECORDS`] items go in one
/// batch; the rest wait for the next.
pub(crate) fn sync_batch<S, F>(store: &S, buf: &mut [u8], items: F) -> Result<usize, Error>
where
    S: Store + ?Sized,
    F: Fn(&[u8]) -> [Option<&[u8]>; 2],
{
    let pending = || {
        records(store)
            .flat_map(|r| items(r).into_iter().flatten())
            .filter(|m| !is_acked(store, &RecordId(sha256(m))))
            .take(MAX_SYNC_RECORDS)
    };
    let mut w = ItemsWriter::sync_batch(buf, pending().count())?;
    for m in pending() {
        w.push(m)?;
    }
    Ok(w.finish()?)
}

/// Verifies a sync report and acknowledges every record it finalizes that this journal holds
/// and had not acknowledged; returns how many. Nothing else is ever acknowledged.
pub(crate) fn apply_report<S, F, const N: usize>(
    store: &mut S,
    report: &[u8],
    trust: &TrustStore<N>,
    now: Timestamp,
    items: F,
) -> Result<usize, Error>
where
    S: Store + ?Sized,
    F: Fn(&[u8]) -> [Option<&[u8]>; 2],
{
    let report = decode_signed::<SyncReport<'_>>(report)?;
    trust.verify(&report, &report.issuer_key_id, now)?;
    let mut acked = 0;
    let mut i = 0;
    while i < store.len() {
        let mut ids: [Option<RecordId>; 2] = [None, None];
        if let Some(r) = store.get(i) {
            for (slot, m) in ids.iter_mut().zip(items(r)) {
                *slot = m.map(|m| RecordId(sha256(m)));
            }
        }
        for id in ids.into_iter().flatten() {
            let finalized = report
                .entries()
                .any(|e| e.record == id && e.outcome.is_final());
            if finalized && !is_acked(store, &id) {
                let mut rec = [0u8; 33];
                rec[0] = kind::ACK;
                rec[1..].copy_from_slice(&id.0);
                store.append(&rec)?;
                acked += 1;
            }
        }
        i += 1;
    }
    Ok(acked)
}
