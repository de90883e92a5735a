//! SyncBatch (type 0x08, unsigned) and SyncReport (type 0x09, issuer-signed): the online
//! exchange in which a device uploads its stored records and learns what became of each.
//!
//! Both keep their lists as the received bytes and iterate them in place, so a wallet builds a
//! batch and applies a report with no allocator.

use crate::codec::{
    Message, MessageType, SignedMessage, Writer, take_bytes, take_fields, take_varint,
};
use crate::error::{DecodeError, EncodeError};
use crate::msg::{FraudProof, Payment};
use crate::types::{KeyId, RecordId, Timestamp};
use serde::{Deserialize, Serialize};

/// Most records one batch (and so one report) may carry.
pub const MAX_SYNC_RECORDS: usize = 1024;
/// Most fraud proofs one report may carry.
pub const MAX_REPORT_PROOFS: usize = 64;
/// Longest record in a batch: the longest payment.
pub const MAX_RECORD_LEN: usize = <Payment<'_> as Message<'_>>::MAX_LEN;

/// A batch of stored records (payments, receipts, merchant certificates), each a whole message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncBatch<'a> {
    count: usize,
    records: &'a [u8],
}

/// Iterates length-prefixed items whose framing was already checked at decode.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    left: usize,
    rest: &'a [u8],
    max: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let (item, rest) = take_bytes(self.rest, self.max).ok()?;
        self.left -= 1;
        self.rest = rest;
        Some(item)
    }
}

/// Reads `count ‖ count × bytes(max)`; returns the count, the region and the rest.
fn take_items(
    input: &[u8],
    max_count: usize,
    max_len: usize,
) -> Result<(usize, &[u8], &[u8]), DecodeError> {
    let (count, mut rest) = take_varint(input)?;
    let count = usize::try_from(count).map_err(|_| DecodeError::OutOfRange)?;
    if count > max_count {
        return Err(DecodeError::OutOfRange);
    }
    let start = rest;
    for _ in 0..count {
        let (item, r) = take_bytes(rest, max_len)?;
        if item.is_empty() {
            return Err(DecodeError::OutOfRange);
        }
        rest = r;
    }
    let region = start
        .get(..start.len() - rest.len())
        .ok_or(DecodeError::Truncated)?;
    Ok((count, region, rest))
}

impl<'a> SyncBatch<'a> {
    /// The records, in order.
    pub fn records(&self) -> Items<'a> {
        Items {
            left: self.count,
            rest: self.records,
            max: MAX_RECORD_LEN,
        }
    }
    /// How many records.
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl<'a> Message<'a> for SyncBatch<'a> {
    const TYPE: MessageType = MessageType::SyncBatch;
    // Header, the count (1,024 takes 2 varint bytes), each record's length (2) and bytes.
    const MAX_LEN: usize = 2 + 2 + MAX_SYNC_RECORDS * (2 + MAX_RECORD_LEN);
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (count, records, rest) = take_items(input, MAX_SYNC_RECORDS, MAX_RECORD_LEN)?;
        Ok((SyncBatch { count, records }, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.varint(self.count as u64)?;
        w.bytes(self.records)
    }
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

/// Writes a list of length-prefixed items into a caller's buffer, with no allocator: the count
/// is fixed up front, then each item is pushed.
pub struct ItemsWriter<'b> {
    w: Writer<'b>,
    left: usize,
    max: usize,
}

impl<'b> ItemsWriter<'b> {
    /// Starts a sync batch of `count` records in `buf`.
    pub fn sync_batch(buf: &'b mut [u8], count: usize) -> Result<Self, EncodeError> {
        if count > MAX_SYNC_RECORDS {
            return Err(EncodeError::OutOfRange);
        }
        let mut w = Writer::new(buf);
        w.bytes(&[crate::codec::VERSION, MessageType::SyncBatch as u8])?;
        w.varint(count as u64)?;
        Ok(ItemsWriter {
            w,
            left: count,
            max: MAX_RECORD_LEN,
        })
    }
    /// Appends one item.
    pub fn push(&mut self, item: &[u8]) -> Result<(), EncodeError> {
        if self.left == 0 || item.is_empty() || item.len() > self.max {
            return Err(EncodeError::OutOfRange);
        }
        self.w.varint(item.len() as u64)?;
        self.w.bytes(item)?;
        self.left -= 1;
        Ok(())
    }
    /// Finishes; fails unless exactly `count` items were pushed. Returns the length written.
    pub fn finish(self) -> Result<usize, EncodeError> {
        if self.left != 0 {
            return Err(EncodeError::OutOfRange);
        }
        Ok(self.w.len())
    }
}

crate::codes! {
    /// What settlement did with one record. The code is the value on the wire (the outcome
    /// byte of a report entry); the name is the one the ledger, the vectors and `inspect` use
    /// (`rejected` for every [`Outcome::Rejected`]: its SPEC error code says why).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Outcome: u8 {
        /// The payment was credited to its merchant by this batch.
        Credited = (0, "credited"),
        /// Already known (credited or recorded by an earlier batch); nothing changed.
        Duplicate = (1, "duplicate"),
        /// Recorded, waiting for the other half (a receipt, or the payment a receipt names).
        Pending = (2, "pending"),
        /// Refused, with the SPEC error code; nothing was recorded.
        Rejected(u16) = (3, "rejected"),
        /// Credited or recorded, and it revealed a double spend: the report carries the
        /// FraudProof.
        Conflict = (4, "conflict"),
    }
}

impl Outcome {
    /// Whether the issuer is done with the record, so that a device may prune it (SPEC §8.4).
    pub fn is_final(&self) -> bool {
        !matches!(self, Outcome::Pending)
    }
}

/// One line of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEntry {
    /// SHA-256 of the record as it was in the batch.
    pub record: RecordId,
    /// What became of it.
    pub outcome: Outcome,
}

/// The issuer's signed answer to one sync batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncReport<'a> {
    /// Which issuer key signed it.
    pub issuer_key_id: KeyId,
    /// SHA-256 of the batch this answers.
    pub batch_id: [u8; 32],
    /// The issuer's time.
    pub created_at: Timestamp,
    entry_count: usize,
    entries: &'a [u8],
    proof_count: usize,
    proofs: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct Head {
    issuer_key_id: KeyId,
    batch_id: [u8; 32],
    created_at: Timestamp,
}

/// Iterates report entries whose encoding was checked at decode.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    left: usize,
    rest: &'a [u8],
}

impl Iterator for Entries<'_> {
    type Item = ReportEntry;
    fn next(&mut self) -> Option<ReportEntry> {
        if self.left == 0 {
            return None;
        }
        let (e, rest) = take_fields::<ReportEntry>(self.rest).ok()?;
        self.left -= 1;
        self.rest = rest;
        Some(e)
    }
}

impl<'a> SyncReport<'a> {
    /// The entries, one per record of the batch, in batch order.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            left: self.entry_count,
            rest: self.entries,
        }
    }
    /// The fraud proofs found while ingesting the batch, as whole FraudProof messages.
    pub fn proofs(&self) -> Items<'a> {
        Items {
            left: self.proof_count,
            rest: self.proofs,
            max: <FraudProof<'_> as Message<'_>>::MAX_LEN,
        }
    }
    /// Encodes and signs a report (issuer side).
    #[cfg(feature = "alloc")]
    pub fn build<K: crate::crypto::Signer>(
        issuer: &crate::issuer::Issuer<K>,
        batch_id: [u8; 32],
        created_at: Timestamp,
        entries: &[ReportEntry],
        proofs: &[alloc::vec::Vec<u8>],
    ) -> Result<alloc::vec::Vec<u8>, EncodeError> {
        if entries.len() > MAX_SYNC_RECORDS || proofs.len() > MAX_REPORT_PROOFS {
            return Err(EncodeError::OutOfRange);
        }
        let mut ebuf = alloc::vec![0u8; entries.len() * 40 + 8];
        let mut ew = Writer::new(&mut ebuf);
        for e in entries {
            ew.fields(e)?;
        }
        let elen = ew.len();
        let mut pbuf = alloc::vec![0u8; proofs.iter().map(|p| p.len() + 3).sum::<usize>()];
        let mut pw = Writer::new(&mut pbuf);
        for p in proofs {
            pw.varint(p.len() as u64)?;
            pw.bytes(p)?;
        }
        let plen = pw.len();
        let report = SyncReport {
            issuer_key_id: issuer.key_id(),
            batch_id,
            created_at,
            entry_count: entries.len(),
            entries: ebuf.get(..elen).ok_or(EncodeError::BufferTooSmall)?,
            proof_count: proofs.len(),
            proofs: pbuf.get(..plen).ok_or(EncodeError::BufferTooSmall)?,
        };
        let mut out = alloc::vec![0u8; <SyncReport<'_> as Message<'_>>::MAX_LEN];
        let n = crate::codec::encode_signed(&report, issuer.signer(), &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}

impl<'a> Message<'a> for SyncReport<'a> {
    const TYPE: MessageType = MessageType::SyncReport;
    // Header, key id, batch id, time, the entry count (1,024: 2 varint bytes), entries of at
    // most 32 + 1 + 3 bytes, the proof count (64: 1 byte), proofs with their lengths, and the
    // signature: exactly what the §5.9 fields allow.
    const MAX_LEN: usize = 2
        + 8
        + 32
        + 4
        + 2
        + MAX_SYNC_RECORDS * 36
        + 1
        + MAX_REPORT_PROOFS * (2 + <FraudProof<'_> as Message<'_>>::MAX_LEN)
        + 64;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (head, rest) = take_fields::<Head>(input)?;
        let (count, mut rest) = take_varint(rest)?;
        let entry_count = usize::try_from(count).map_err(|_| DecodeError::OutOfRange)?;
        if entry_count > MAX_SYNC_RECORDS {
            return Err(DecodeError::OutOfRange);
        }
        let start = rest;
        for _ in 0..entry_count {
            let (_, r) = take_fields::<ReportEntry>(rest)?;
            rest = r;
        }
        let entries = start
            .get(..start.len() - rest.len())
            .ok_or(DecodeError::Truncated)?;
        let (proof_count, proofs, rest) = take_items(
            rest,
            MAX_REPORT_PROOFS,
            <FraudProof<'_> as Message<'_>>::MAX_LEN,
        )?;
        let v = SyncReport {
            issuer_key_id: head.issuer_key_id,
            batch_id: head.batch_id,
            created_at: head.created_at,
            entry_count,
            entries,
            proof_count,
            proofs,
        };
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(&Head {
            issuer_key_id: self.issuer_key_id,
            batch_id: self.batch_id,
            created_at: self.created_at,
        })?;
        w.varint(self.entry_count as u64)?;
        w.bytes(self.entries)?;
        w.varint(self.proof_count as u64)?;
        w.bytes(self.proofs)
    }
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl<'a> SignedMessage<'a> for SyncReport<'a> {
    const DOMAIN: &'static [u8] = b"offpay/1/sync-report\0";
}
