//! Compacting a wallet's journal (SPEC §8.5): the records of retired vouchers are dead, and
//! a compaction rewrites the journal with only what replaying needs: the installed vouchers
//! with their payments, receipts and acknowledgements, the tombstones that still matter, and
//! one floor for those whose vouchers have ended.

use super::{Wallet, floor_parts, payment_parts, replay, retired_parts};
use crate::codec::decode_signed;
use crate::crypto::{HolderSigner, sha256};
use crate::error::{Error, StoreError};
use crate::journal::{self, kind};
use crate::msg::{Payment, Receipt, Voucher};
use crate::store::Store;
use crate::types::{CLOCK_SKEW_SECS, REQUEST_FRESH_SECS, Timestamp, VoucherId};

/// What a compaction keeps and drops, in records and in record bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Records kept, the floor record included.
    pub kept: usize,
    /// Records dropped.
    pub dropped: usize,
    /// Bytes of the records kept.
    pub kept_bytes: usize,
    /// Bytes of the records dropped.
    pub dropped_bytes: usize,
}

/// The least a compaction must drop to be worth a rewrite, in record bytes.
pub const COMPACT_MIN_BYTES: usize = 1024;

impl Compaction {
    /// Whether rewriting is worth it: the dead bytes are at least half the live ones, and at
    /// least [`COMPACT_MIN_BYTES`]. A journal compacted by this rule stays under 1.5 × its live
    /// records plus 1 KiB.
    pub fn worth_it(&self) -> bool {
        self.dropped_bytes >= COMPACT_MIN_BYTES && self.dropped_bytes * 2 >= self.kept_bytes
    }
    pub(crate) fn count(&mut self, keep: bool, len: usize) {
        if keep {
            self.kept += 1;
            self.kept_bytes += len;
        } else {
            self.dropped += 1;
            self.dropped_bytes += len;
        }
    }
}

fn mark(marks: &mut [bool], i: usize) {
    if let Some(m) = marks.get_mut(i) {
        *m = true;
    }
}

impl<S: Store, K: HolderSigner, const V: usize> Wallet<S, K, V> {
    /// Plans a compaction at `now` without changing anything: sets `marks[i]` to whether
    /// record `i` is kept, and returns what would be kept and dropped, and the floor
    /// (SPEC §8.1.1) the new journal would hold. `marks` needs one entry per record
    /// ([`Store::len`]); a shorter one is refused with [`StoreError::Full`].
    ///
    /// Kept: the vouchers installed, their payments, the receipts of those payments and
    /// the acknowledgements of both; the tombstones of vouchers not yet past `not_after`
    /// plus the skew; and, whole, a retired voucher whose last payment is recent enough that
    /// its request may be shown again (`created_at` + [`REQUEST_FRESH_SECS`] + twice the
    /// skew), so that the retry returns the stored payment. A tombstone past its window is
    /// folded into the floor: every voucher ending at or before the floor is refused as
    /// retired, so dropping a tombstone does not rely on the clock never going back.
    pub fn plan_compaction(
        &self,
        now: Timestamp,
        marks: &mut [bool],
    ) -> Result<(Compaction, Option<Timestamp>), Error> {
        let n = self.store.len();
        let marks = marks.get_mut(..n).ok_or(StoreError::Full)?;
        marks.fill(false);
        let ended = |not_after: Timestamp| now > not_after.saturating_add(CLOCK_SKEW_SECS);
        // A retired voucher whose last payment's request may still be shown again (a request
        // is fresh for REQUEST_FRESH_SECS, with the skew on both clocks) is kept whole, so that
        // paying that request again returns the stored payment (§8.1 step 2). Should more
        // than 16 be so recent, every retired voucher is kept this time (and the floor waits).
        let mut recent: heapless::Vec<VoucherId, 16> = heapless::Vec::new();
        let mut all_recent = false;
        let window = REQUEST_FRESH_SECS + 2 * CLOCK_SKEW_SECS;
        for r in crate::store::records(&self.store) {
            if let Some((kind::PAYMENT, body)) = journal::split(r) {
                let (_, p) = payment_parts(body).ok_or(StoreError::Corrupt)?;
                let p = decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
                let id = p.voucher.id;
                let installed = self.slots.iter().any(|s| s.id == id);
                if !installed && now <= p.created_at.saturating_add(window) && !recent.contains(&id)
                {
                    all_recent |= recent.push(id).is_err();
                }
            }
        }
        let held = |id: &VoucherId| {
            self.slots.iter().any(|s| s.id == *id) || all_recent || recent.contains(id)
        };
        let mut floor = self.floor;
        for r in crate::store::records(&self.store) {
            if let Some((kind::RETIRED, body)) = journal::split(r) {
                let (id, not_after) = retired_parts(body).ok_or(StoreError::Corrupt)?;
                if ended(not_after) && !held(&id) {
                    floor = floor.max(Some(not_after));
                }
            }
        }
        let mut plan = Compaction::default();
        let mut floor_kept = false;
        for i in 0..n {
            let r = self.store.get(i).ok_or(StoreError::Corrupt)?;
            let keep = match journal::split(r) {
                Some((kind::VOUCHER, body)) => {
                    let installed = self.slots.iter().any(|s| s.record == i);
                    installed || {
                        let v = decode_signed::<Voucher>(body).map_err(|_| StoreError::Corrupt)?;
                        // Not installed: retired, and kept while recent (with its tombstone).
                        !self.slots.iter().any(|s| s.id == v.id) && held(&v.id)
                    }
                }
                Some((kind::PAYMENT, body)) => {
                    let (_, p) = payment_parts(body).ok_or(StoreError::Corrupt)?;
                    let p = decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
                    held(&p.voucher.id)
                }
                Some((kind::RETIRED, body)) => {
                    let (id, not_after) = retired_parts(body).ok_or(StoreError::Corrupt)?;
                    !ended(not_after) || held(&id)
                }
                Some((kind::RETIRED_THROUGH, body)) => {
                    let keep = !floor_kept && floor.is_some() && floor_parts(body) == floor;
                    floor_kept |= keep;
                    keep
                }
                // Decided below, from the payment they belong to.
                Some((kind::RECEIPT | kind::ACK, _)) => false,
                _ => return Err(StoreError::Corrupt.into()),
            };
            if keep {
                mark(marks, i);
            }
        }
        for i in 0..n {
            let kept_payment = marks.get(i).copied().unwrap_or(false)
                && matches!(
                    self.store.get(i).and_then(journal::split),
                    Some((kind::PAYMENT, _))
                );
            if kept_payment {
                self.mark_belonging(i, marks)?;
            }
        }
        for i in 0..n {
            let len = self.store.get(i).map_or(0, <[u8]>::len);
            plan.count(marks.get(i).copied().unwrap_or(false), len);
        }
        if floor.is_some() && !floor_kept {
            plan.count(true, 1 + 4);
        }
        Ok((plan, floor))
    }

    /// Marks what belongs to the kept payment record `i`: its receipts, and the
    /// acknowledgements of the payment and of those receipts.
    fn mark_belonging(&self, i: usize, marks: &mut [bool]) -> Result<(), Error> {
        let r = self.store.get(i).ok_or(StoreError::Corrupt)?;
        let (_, body) = journal::split(r).ok_or(StoreError::Corrupt)?;
        let (_, p) = payment_parts(body).ok_or(StoreError::Corrupt)?;
        let pid = sha256(p);
        for j in i + 1..self.store.len() {
            match self.store.get(j).and_then(journal::split) {
                Some((kind::ACK, id)) if id == pid.as_slice() => mark(marks, j),
                Some((kind::RECEIPT, rc)) => {
                    let x = decode_signed::<Receipt>(rc).map_err(|_| StoreError::Corrupt)?;
                    if x.payment_id.0 != pid {
                        continue;
                    }
                    mark(marks, j);
                    let rid = sha256(rc);
                    for k in j + 1..self.store.len() {
                        if let Some((kind::ACK, id)) = self.store.get(k).and_then(journal::split)
                            && id == rid.as_slice()
                        {
                            mark(marks, k);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Compacts the journal at `now` (SPEC §8.5): rewrites it with the records
    /// [`plan_compaction`](Self::plan_compaction) keeps, through [`Store::compact`], so a
    /// crash leaves either the old journal or the new one. Payments of retired vouchers are
    /// no longer listed afterwards: the issuer acknowledged every one of them. `marks` is
    /// scratch space, one entry per record. Returns what was kept and dropped; a journal with
    /// nothing dead is left as it is.
    pub fn compact(&mut self, now: Timestamp, marks: &mut [bool]) -> Result<Compaction, Error> {
        let (plan, floor) = self.plan_compaction(now, marks)?;
        if plan.dropped > 0 {
            self.rewrite(marks, floor)?;
        }
        Ok(plan)
    }

    /// Compacts when [`Compaction::worth_it`] says so; returns what was done, if anything.
    /// Installing a voucher calls it after retiring one, unless
    /// [`set_auto_compact`](Self::set_auto_compact) turned that off.
    #[cfg(feature = "alloc")]
    pub fn compact_if_worth(&mut self, now: Timestamp) -> Result<Option<Compaction>, Error> {
        self.compact_if_worth_archiving(now, &mut |_| Ok(()))
    }

    /// [`compact_if_worth`](Self::compact_if_worth), first handing `archive` every payment the
    /// compaction drops (those of retired vouchers, each acknowledged by the issuer), oldest
    /// first. If `archive` fails, nothing is compacted. A crash between the two leaves the
    /// payments archived and still held: an archive skips a payment it has (by id).
    #[cfg(feature = "alloc")]
    pub fn compact_if_worth_archiving(
        &mut self,
        now: Timestamp,
        archive: &mut dyn FnMut(&super::StoredPayment<'_>) -> Result<(), Error>,
    ) -> Result<Option<Compaction>, Error> {
        let mut marks = alloc::vec![false; self.store.len()];
        let (plan, floor) = self.plan_compaction(now, &mut marks)?;
        if !plan.worth_it() {
            return Ok(None);
        }
        for (i, r) in crate::store::records(&self.store).enumerate() {
            if !marks.get(i).copied().unwrap_or(true)
                && let Some(p) = self.stored_payment(r)
            {
                archive(&p)?;
            }
        }
        self.rewrite(&marks, floor)?;
        Ok(Some(plan))
    }

    fn rewrite(&mut self, marks: &[bool], floor: Option<Timestamp>) -> Result<(), Error> {
        let floor_kept = (0..self.store.len()).any(|i| {
            marks.get(i).copied().unwrap_or(false)
                && matches!(
                    self.store.get(i).and_then(journal::split),
                    Some((kind::RETIRED_THROUGH, _))
                )
        });
        let mut rec = [kind::RETIRED_THROUGH, 0, 0, 0, 0];
        let mut extra: &[&[u8]] = &[];
        let one: [&[u8]; 1];
        if let (Some(f), false) = (floor, floor_kept) {
            if let Some(t) = rec.get_mut(1..) {
                t.copy_from_slice(&f.0.to_le_bytes());
            }
            one = [&rec];
            extra = &one;
        }
        let written = self
            .store
            .compact(&|i| marks.get(i).copied().unwrap_or(false), extra);
        // Record indices moved (or, after an error past the rename, may have): the state is
        // derived again from what the store holds now.
        let (slots, floor) = replay(&self.store)?;
        self.slots = slots;
        self.floor = floor;
        Ok(written?)
    }
}
