//! The double-entry accounts: postings, movements, balances, and the rows the admin API reads.

use super::{P, Row, Tx};
use crate::api;
use crate::error::Failure;
use crate::storage::InstrumentRow;
use offpay_protocol::Timestamp;
use offpay_protocol::msg::FraudKind;

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

/// Writes one movement: entries that sum to zero.
pub(super) fn movement(
    t: &mut dyn Tx,
    kind: &str,
    reference: &[u8],
    at: Timestamp,
    cur: &str,
    entries: &[(&str, &str, i64)],
) -> Result<(), Failure> {
    let sum: i128 = entries.iter().map(|e| i128::from(e.2)).sum();
    if sum != 0 {
        return Err(Failure::storage("a movement that does not balance"));
    }
    let m = t
        .one(
            "INSERT INTO movements (kind, reference, at) VALUES (?1, ?2, ?3) RETURNING id",
            &[P::T(kind), P::B(reference), P::I(at.0.into())],
        )?
        .int(0)?;
    for (akind, owner, amount) in entries {
        if *amount == 0 {
            continue;
        }
        let a = post(t, akind, owner, cur, *amount)?;
        t.exec(
            "INSERT INTO entries (movement, account, amount) VALUES (?1, ?2, ?3)",
            &[P::I(m), P::I(a), P::I(*amount)],
        )?;
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

pub(super) fn kind_name(k: FraudKind) -> &'static str {
    match k {
        FraudKind::SameSequence => "same-sequence",
        FraudKind::BrokenLink => "broken-link",
        FraudKind::CumulativeMismatch => "cumulative-mismatch",
    }
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
