//! The double-entry accounts: postings, movements, balances, and the rows the admin API reads.

use super::*;

/// Adds `amount` to an account (created at zero when first used); its id.
pub(super) fn post(
    tx: &Connection,
    kind: &str,
    owner: &str,
    cur: &str,
    amount: i64,
) -> Result<i64, Failure> {
    tx.prepare_cached(
        "INSERT INTO accounts (kind, owner, currency, balance) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, owner, currency) DO UPDATE SET balance = balance + excluded.balance
         RETURNING id",
    )
    .map_err(db)?
    .query_row(params![kind, owner, cur, amount], |r| r.get(0))
    .map_err(db)
}

/// Writes one movement: entries that sum to zero.
pub(super) fn movement(
    tx: &Connection,
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
    tx.prepare_cached("INSERT INTO movements (kind, reference, at) VALUES (?1, ?2, ?3)")
        .map_err(db)?
        .execute(params![kind, reference, at.0])
        .map_err(db)?;
    let m = tx.last_insert_rowid();
    for (akind, owner, amount) in entries {
        if *amount == 0 {
            continue;
        }
        let a = post(tx, akind, owner, cur, *amount)?;
        tx.prepare_cached("INSERT INTO entries (movement, account, amount) VALUES (?1, ?2, ?3)")
            .map_err(db)?
            .execute(params![m, a, amount])
            .map_err(db)?;
    }
    Ok(())
}

pub(super) fn balance(tx: &Connection, kind: &str, owner: &str, cur: &str) -> Result<i64, Failure> {
    Ok(tx
        .prepare_cached(
            "SELECT balance FROM accounts WHERE kind = ?1 AND owner = ?2 AND currency = ?3",
        )
        .map_err(db)?
        .query_row(params![kind, owner, cur], |r| r.get(0))
        .optional()
        .map_err(db)?
        .unwrap_or(0))
}

pub(super) fn instrument_row(tx: &Connection, id: &str) -> Result<Option<InstrumentRow>, Failure> {
    let row: Option<(Vec<u8>, String, Option<String>)> = tx
        .prepare_cached("SELECT credential_hash, currency, label FROM instruments WHERE id = ?1")
        .map_err(db)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(db)?;
    let Some((hash, cur, label)) = row else {
        return Ok(None);
    };
    let funded = -balance(tx, "funding", id, &cur)?;
    let available = balance(tx, "available", id, &cur)?;
    let reserved = balance(tx, "reserved", id, &cur)?;
    let owed = -balance(tx, "owed", id, &cur)?;
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
        credential_hash: arr(hash)?,
    }))
}

pub(super) fn kind_name(k: FraudKind) -> &'static str {
    match k {
        FraudKind::SameSequence => "same-sequence",
        FraudKind::BrokenLink => "broken-link",
        FraudKind::CumulativeMismatch => "cumulative-mismatch",
    }
}

pub(super) fn voucher_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<api::VoucherState> {
    let limit: i64 = r.get(3)?;
    let credited: i64 = r.get(4)?;
    Ok(api::VoucherState {
        voucher_id: hex::encode(r.get::<_, Vec<u8>>(0)?),
        instrument: r.get(1)?,
        currency: r.get(2)?,
        limit_minor: unsigned(limit),
        credited_minor: unsigned(credited),
        overspend_minor: unsigned(credited - limit),
        fraud: r.get(5)?,
        released_minor: r.get::<_, Option<i64>>(6)?.map(unsigned),
        not_after: r.get(7)?,
    })
}

pub(super) const VOUCHER_STATE: &str = "SELECT voucher_id, instrument, currency, limit_minor, \
    credited_minor, fraud, released_minor, not_after FROM vouchers";
