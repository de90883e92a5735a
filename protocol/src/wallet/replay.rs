//! Reading a wallet's journal records (SPEC §8.5): what each kind holds, and the replay that
//! rebuilds the installed vouchers and the retirement floor at open.

use super::Slot;
use crate::codec::decode_signed;
use crate::error::{Error, StoreError};
use crate::journal::{self, kind};
use crate::msg::{Payment, Voucher};
use crate::store::{Store, records};
use crate::types::{Amount, LinkId, PublicKey, Timestamp, VoucherId};

/// A retirement record's voucher id and `not_after`.
pub(super) fn retired_parts(body: &[u8]) -> Option<(VoucherId, Timestamp)> {
    let (id, rest) = body.split_first_chunk::<16>()?;
    let not_after = rest.first_chunk::<4>()?;
    (rest.len() == 4).then(|| (VoucherId(*id), Timestamp(u32::from_le_bytes(*not_after))))
}

pub(super) fn payment_parts(body: &[u8]) -> Option<(PublicKey, &[u8])> {
    let (key, payment) = body.split_first_chunk::<32>()?;
    Some((PublicKey(*key), payment))
}

/// The syncable messages of one wallet record.
pub(super) fn sync_items(record: &[u8]) -> [Option<&[u8]>; 2] {
    match journal::split(record) {
        Some((kind::PAYMENT, body)) => [payment_parts(body).map(|(_, p)| p), None],
        Some((kind::RECEIPT, body)) => [Some(body), None],
        _ => [None, None],
    }
}

/// Replays a wallet's journal: its installed vouchers and its retirement floor (SPEC §8.5).
pub(super) fn replay<S: Store, const V: usize>(
    store: &S,
) -> Result<(heapless::Vec<Slot, V>, Option<Timestamp>), Error> {
    let mut slots: heapless::Vec<Slot, V> = heapless::Vec::new();
    let mut floor: Option<Timestamp> = None;
    for (i, r) in records(store).enumerate() {
        match journal::split(r) {
            Some((kind::VOUCHER, body)) => {
                let v = decode_signed::<Voucher>(body).map_err(|_| StoreError::Corrupt)?;
                let slot = Slot {
                    record: i,
                    id: v.id,
                    seq: 0,
                    cumulative: Amount(0),
                    last: LinkId::default(),
                };
                slots.push(slot).map_err(|_| StoreError::Corrupt)?;
            }
            Some((kind::PAYMENT, body)) => {
                let (_, p) = payment_parts(body).ok_or(StoreError::Corrupt)?;
                let p = decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
                let slot = slots
                    .iter_mut()
                    .find(|s| s.id == p.voucher.id)
                    .ok_or(StoreError::Corrupt)?;
                if p.seq > slot.seq {
                    slot.seq = p.seq;
                    slot.cumulative = p.cumulative;
                    slot.last = p.id().link();
                }
            }
            Some((kind::RETIRED, body)) => {
                // After a compaction the tombstone stays and the voucher's record is gone.
                let (id, _) = retired_parts(body).ok_or(StoreError::Corrupt)?;
                slots.retain(|s| s.id != id);
            }
            Some((kind::RETIRED_THROUGH, body)) => {
                let t = floor_parts(body).ok_or(StoreError::Corrupt)?;
                floor = floor.max(Some(t));
            }
            Some((kind::RECEIPT | kind::ACK, _)) => {}
            _ => return Err(StoreError::Corrupt.into()),
        }
    }
    Ok((slots, floor))
}

/// A retirement floor's `not_after`.
pub(super) fn floor_parts(body: &[u8]) -> Option<Timestamp> {
    let t = body.first_chunk::<4>()?;
    (body.len() == 4).then(|| Timestamp(u32::from_le_bytes(*t)))
}
