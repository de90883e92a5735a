//! Compacting an acceptor's journal (SPEC §8.5): closed requests are dead, and so are
//! accepted payments the issuer acknowledged once they are older than the voucher memory.

use super::{Acceptor, accepted_parts, open_request, replay};
#[cfg(feature = "alloc")]
use crate::codec::decode_signed;
use crate::crypto::{Signer, sha256};
use crate::error::{Error, StoreError};
use crate::journal::{self, kind};
#[cfg(feature = "alloc")]
use crate::msg::Payment;
use crate::store::Store;
use crate::types::RecordId;
use crate::wallet::Compaction;

fn mark(marks: &mut [bool], i: usize) {
    if let Some(m) = marks.get_mut(i) {
        *m = true;
    }
}

impl<S: Store, K: Signer, const R: usize, const M: usize> Acceptor<S, K, R, M> {
    /// Plans a compaction without changing anything: sets `marks[i]` to whether record `i`
    /// is kept, and returns what would be kept and dropped. `marks` needs one entry per
    /// record ([`Store::len`]); a shorter one is refused with [`StoreError::Full`].
    ///
    /// Kept: the open requests (at most `R`); every accepted payment the issuer has not
    /// acknowledged, with its receipt (both are still to be synced); the last `M` accepted
    /// payments whatever their state, from which the voucher memory (SPEC §8.2.1) and a
    /// retry's stored receipt come; and the acknowledgements of what is kept. A payment
    /// dropped can no longer be accepted: its request was closed when it was accepted.
    pub fn plan_compaction(&self, marks: &mut [bool]) -> Result<Compaction, Error> {
        let n = self.store.len();
        let marks = marks.get_mut(..n).ok_or(StoreError::Full)?;
        marks.fill(false);
        let accepted = crate::store::records(&self.store)
            .filter(|r| matches!(journal::split(r), Some((kind::ACCEPTED, _))))
            .count();
        let mut nth = 0usize;
        for i in 0..n {
            let r = self.store.get(i).ok_or(StoreError::Corrupt)?;
            let keep = match journal::split(r) {
                Some((kind::OPEN_REQUEST, body)) => {
                    let o = open_request(body).ok_or(StoreError::Corrupt)?;
                    self.open.iter().any(|x| x.nonce == o.nonce)
                }
                Some((kind::ACCEPTED, body)) => {
                    nth += 1;
                    let (p, rc) = accepted_parts(body).ok_or(StoreError::Corrupt)?;
                    let (pid, rid) = (RecordId(sha256(p)), RecordId(sha256(rc)));
                    let keep = accepted - nth < M
                        || !journal::is_acked(&self.store, &pid)
                        || !journal::is_acked(&self.store, &rid);
                    if keep {
                        for j in i + 1..n {
                            if let Some((kind::ACK, id)) =
                                self.store.get(j).and_then(journal::split)
                                && (id == pid.0.as_slice() || id == rid.0.as_slice())
                            {
                                mark(marks, j);
                            }
                        }
                    }
                    keep
                }
                Some((kind::ACK, _)) => marks.get(i).copied().unwrap_or(false),
                _ => return Err(StoreError::Corrupt.into()),
            };
            if keep {
                mark(marks, i);
            }
        }
        let mut plan = Compaction::default();
        for i in 0..n {
            let len = self.store.get(i).map_or(0, <[u8]>::len);
            plan.count(marks.get(i).copied().unwrap_or(false), len);
        }
        Ok(plan)
    }

    /// Compacts the journal (SPEC §8.5): rewrites it with the records
    /// [`plan_compaction`](Self::plan_compaction) keeps, through [`Store::compact`], so a
    /// crash leaves either the old journal or the new one. Payments dropped are no longer
    /// listed: the issuer acknowledged each of them. `marks` is scratch space, one entry per
    /// record. A journal with nothing dead is left as it is.
    pub fn compact(&mut self, marks: &mut [bool]) -> Result<Compaction, Error> {
        let plan = self.plan_compaction(marks)?;
        if plan.dropped > 0 {
            self.rewrite(marks)?;
        }
        Ok(plan)
    }

    /// Compacts when [`Compaction::worth_it`] says so; returns what was done, if anything.
    /// Applying a sync report that acknowledged something calls it.
    #[cfg(feature = "alloc")]
    pub fn compact_if_worth(&mut self) -> Result<Option<Compaction>, Error> {
        self.compact_if_worth_archiving(&mut |_| Ok(()))
    }

    /// [`compact_if_worth`](Self::compact_if_worth), first handing `archive` every accepted
    /// payment the compaction drops (each acknowledged by the issuer), oldest first. If
    /// `archive` fails, nothing is compacted. A crash between the two leaves the payments
    /// archived and still held: an archive skips a payment it has (by id).
    #[cfg(feature = "alloc")]
    pub fn compact_if_worth_archiving(
        &mut self,
        archive: &mut dyn FnMut(&super::AcceptedPayment<'_>) -> Result<(), Error>,
    ) -> Result<Option<Compaction>, Error> {
        let mut marks = alloc::vec![false; self.store.len()];
        let plan = self.plan_compaction(&mut marks)?;
        if !plan.worth_it() {
            return Ok(None);
        }
        for (i, r) in crate::store::records(&self.store).enumerate() {
            if marks.get(i).copied().unwrap_or(true) {
                continue;
            }
            if let Some((kind::ACCEPTED, body)) = journal::split(r) {
                let (p, receipt) = accepted_parts(body).ok_or(StoreError::Corrupt)?;
                let payment = decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
                archive(&super::AcceptedPayment {
                    payment,
                    receipt,
                    synced: true,
                })?;
            }
        }
        self.rewrite(&marks)?;
        Ok(Some(plan))
    }

    fn rewrite(&mut self, marks: &[bool]) -> Result<(), Error> {
        let written = self
            .store
            .compact(&|i| marks.get(i).copied().unwrap_or(false), &[]);
        // The state is derived again from what the store holds now, as an open would.
        replay(&self.store, &mut self.open, &mut self.memory)?;
        Ok(written?)
    }
}
