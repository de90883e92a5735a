//! The double-entry accounts: postings, movements, balances, and the rows the admin API reads.

use super::{P, Row, Tx};
use crate::api;
use crate::error::Failure;
use crate::storage::InstrumentRow;
use offpay_protocol::Timestamp;
use std::collections::BTreeMap;

/// An amount as the ledger stores it (a signed 64-bit integer).
pub(super) fn minor(a: u64) -> Result<i64, Failure> {
    i64::try_from(a).map_err(|_| {
        Failure::api(
            api::ApiError::AmountTooLarge,
            format!("{a} minor units is more than the ledger holds"),
        )
    })
}

pub(super) fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Adds `amount` to an account (created at zero when first used), atomically; its id.
pub(super) fn post(
    t: &mut dyn Tx,
    kind: &str,
    owner: &str,
    cur: &str,
    amount: i64,
) -> Result<i64, Failure> {
    t.one(
        "INSERT INTO accounts (kind, owner, currency, balance) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, owner, currency) DO UPDATE SET balance = accounts.balance + excluded.balance
         RETURNING id",
        &[P::T(kind), P::T(owner), P::T(cur), P::I(amount)],
    )?
    .int(0)
}

/// One movement: entries (account kind, owner, amount) in one currency that sum to zero.
pub(super) struct Move {
    pub kind: &'static str,
    pub reference: Vec<u8>,
    pub at: Timestamp,
    pub currency: String,
    pub entries: Vec<(&'static str, String, i64)>,
}

/// Writes one movement.
pub(super) fn movement(
    t: &mut dyn Tx,
    kind: &'static str,
    reference: &[u8],
    at: Timestamp,
    cur: &str,
    entries: &[(&'static str, &str, i64)],
) -> Result<(), Failure> {
    movements(
        t,
        vec![Move {
            kind,
            reference: reference.to_vec(),
            at,
            currency: cur.to_string(),
            entries: entries
                .iter()
                .map(|(k, o, a)| (*k, (*o).to_string(), *a))
                .collect(),
        }],
    )
}

/// Writes the movements of one operation. Account rows are updated once each, in one order
/// whatever the operation, (kind, owner, currency) ascending: concurrent transactions that
/// update the same accounts (each row stays locked until its transaction ends) then never
/// wait for each other in a cycle.
pub(super) fn movements(t: &mut dyn Tx, moves: Vec<Move>) -> Result<(), Failure> {
    let mut deltas: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
    for m in &moves {
        let sum: i128 = m.entries.iter().map(|e| i128::from(e.2)).sum();
        if sum != 0 {
            return Err(Failure::storage("a movement that does not balance"));
        }
        for (kind, owner, amount) in &m.entries {
            if *amount == 0 {
                continue;
            }
            let d = deltas
                .entry((kind, owner.as_str(), m.currency.as_str()))
                .or_insert(0);
            *d = d
                .checked_add(*amount)
                .ok_or_else(|| Failure::storage("a balance past 2^63"))?;
        }
    }
    let mut ids: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
    for (k, d) in deltas {
        ids.insert(k, post(t, k.0, k.1, k.2, d)?);
    }
    for m in &moves {
        let id = t
            .one(
                "INSERT INTO movements (kind, reference, at) VALUES (?1, ?2, ?3) RETURNING id",
                &[P::T(m.kind), P::B(&m.reference), P::I(m.at.0.into())],
            )?
            .int(0)?;
        for (kind, owner, amount) in &m.entries {
            if *amount == 0 {
                continue;
            }
            let account = ids
                .get(&(*kind, owner.as_str(), m.currency.as_str()))
                .copied()
                .ok_or_else(|| Failure::storage("an entry without its account"))?;
            t.exec(
                "INSERT INTO entries (movement, account, amount) VALUES (?1, ?2, ?3)",
                &[P::I(id), P::I(account), P::I(*amount)],
            )?;
        }
    }
    Ok(())
}

pub(super) fn balance(t: &mut dyn Tx, kind: &str, owner: &str, cur: &str) -> Result<i64, Failure> {
    match t.row(
        "SELECT balance FROM accounts WHERE kind = ?1 AND owner = ?2 AND currency = ?3",
        &[P::T(kind), P::T(owner), P::T(cur)],
    )? {
        Some(r) => r.int(0),
        None => Ok(0),
    }
}

pub(super) fn instrument_row(t: &mut dyn Tx, id: &str) -> Result<Option<InstrumentRow>, Failure> {
    let Some(r) = t.row(
        "SELECT credential_hash, currency, label FROM instruments WHERE id = ?1",
        &[P::T(id)],
    )?
    else {
        return Ok(None);
    };
    let (hash, cur, label) = (r.id::<32>(0)?, r.text(1)?, r.opt_text(2)?);
    let funded = -balance(t, "funding", id, &cur)?;
    let available = balance(t, "available", id, &cur)?;
    let reserved = balance(t, "reserved", id, &cur)?;
    let owed = -balance(t, "owed", id, &cur)?;
    Ok(Some(InstrumentRow {
        instrument: api::Instrument {
            id: id.to_string(),
            currency: cur,
            label,
            funded_minor: unsigned(funded),
            available_minor: unsigned(available),
            reserved_minor: unsigned(reserved),
            owed_minor: unsigned(owed),
            spent_minor: unsigned(funded - available - reserved),
        },
        credential_hash: hash,
    }))
}

pub(super) fn voucher_state(r: &Row) -> Result<api::VoucherState, Failure> {
    let limit = r.int(3)?;
    let credited = r.int(4)?;
    Ok(api::VoucherState {
        voucher_id: hex::encode(r.bytes(0)?),
        instrument: r.opt_text(1)?,
        currency: r.text(2)?,
        limit_minor: unsigned(limit),
        credited_minor: unsigned(credited),
        overspend_minor: unsigned(credited - limit),
        fraud: r.bool(5)?,
        released_minor: r.opt_int(6)?.map(unsigned),
        not_after: r.u32(7)?,
    })
}

pub(super) const VOUCHER_STATE: &str = "SELECT voucher_id, instrument, currency, limit_minor, \
    credited_minor, fraud, released_minor, not_after FROM vouchers";
