//! The ledger's operations, each the body of one transaction.

use super::accounts::{
    Move, VOUCHER_STATE, balance, instrument_row, minor, movement, movements, unsigned,
    voucher_state,
};
use super::state::{Credits, Reader, Writes, apply, post_credits};
use super::{Key, P, Tx, key};
use crate::api;
use crate::error::Failure;
use crate::settle::{StateReader, TRUST_KEYS};
use crate::storage::{Close, Granted, PreAuth, Settle, SignList, Synced};
use offpay_protocol::msg::{MerchantCertificate, Outcome, Voucher};
use offpay_protocol::{
    Amount, Currency, HolderKey, MerchantId, Nonce, Settlement, Timestamp, VoucherId,
    VoucherSummary, crypto::sha256, decode_signed,
};
use std::collections::BTreeMap;

fn ts(t: Timestamp) -> P<'static> {
    P::I(t.0.into())
}

/// Takes the locks of `keys` when other transactions may run at the same time.
fn lock(t: &mut dyn Tx, mut keys: Vec<i64>) -> Result<(), Failure> {
    if !t.concurrent() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    t.lock(&keys)
}

pub(super) fn create_instrument(
    t: &mut dyn Tx,
    id: &str,
    credential_hash: [u8; 32],
    currency: Currency,
    label: Option<&str>,
    now: Timestamp,
) -> Result<api::Instrument, Failure> {
    t.exec(
        "INSERT INTO instruments (id, credential_hash, currency, label, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            P::T(id),
            P::B(&credential_hash),
            P::T(currency.as_str()),
            label.map_or(P::Null, P::T),
            ts(now),
        ],
    )?;
    instrument_row(t, id)?
        .map(|r| r.instrument)
        .ok_or_else(|| Failure::storage("the instrument just created is missing"))
}

pub(super) fn credential(
    t: &mut dyn Tx,
    id: &str,
) -> Result<Option<([u8; 32], Currency)>, Failure> {
    let Some(r) = t.row(
        "SELECT credential_hash, currency FROM instruments WHERE id = ?1",
        &[P::T(id)],
    )?
    else {
        return Ok(None);
    };
    let cur = Currency::parse(&r.text(1)?)
        .ok_or_else(|| Failure::storage("a stored currency is not ISO 4217"))?;
    Ok(Some((r.id(0)?, cur)))
}

pub(super) fn fund(
    t: &mut dyn Tx,
    id: &str,
    amount: Amount,
    reference: &str,
    now: Timestamp,
) -> Result<api::Instrument, Failure> {
    lock(t, vec![key(Key::Instrument(id))])?;
    let mut reference_key = id.as_bytes().to_vec();
    reference_key.push(0);
    reference_key.extend_from_slice(reference.as_bytes());
    let row = instrument_row(t, id)?
        .ok_or_else(|| Failure::api(api::ApiError::NotFound, "no such instrument"))?;
    let x = minor(amount.0)?;
    let earlier = t.row(
        "SELECT e.amount FROM movements m JOIN entries e ON e.movement = m.id
         JOIN accounts a ON a.id = e.account
         WHERE m.kind = 'funding' AND m.reference = ?1 AND a.kind = 'available'",
        &[P::B(&reference_key)],
    )?;
    match earlier.map(|r| r.int(0)).transpose()? {
        Some(a) if a == x => return Ok(row.instrument),
        Some(_) => {
            return Err(Failure::api(
                api::ApiError::ReferenceReused,
                "this reference already funded the instrument with another amount",
            ));
        }
        None => {}
    }
    let funded = i64::try_from(row.instrument.funded_minor).unwrap_or(i64::MAX);
    if funded.checked_add(x).is_none() {
        return Err(Failure::api(
            api::ApiError::AmountTooLarge,
            "the instrument's funding would pass what the ledger holds",
        ));
    }
    let cur = row.instrument.currency.clone();
    movement(
        t,
        "funding",
        &reference_key,
        now,
        &cur,
        &[("funding", id, -x), ("available", id, x)],
    )?;
    instrument_row(t, id)?
        .map(|r| r.instrument)
        .ok_or_else(|| Failure::storage("the instrument vanished"))
}

/// A stored pre-authorization: its request hash and its voucher's bytes.
type Known = (Vec<u8>, Option<Vec<u8>>);

/// The (request hash, voucher) stored for (holder key, nonce); the voucher is NULL for a
/// voucher this ledger only learnt of at settlement, which is never a grant.
fn known(t: &mut dyn Tx, holder: &HolderKey, nonce: &Nonce) -> Result<Option<Known>, Failure> {
    t.row(
        "SELECT p.request_hash, v.voucher FROM preauthorizations p
         JOIN vouchers v ON v.voucher_id = p.voucher_id
         WHERE p.holder_key = ?1 AND p.client_nonce = ?2",
        &[P::B(holder.as_bytes()), P::B(&nonce.0)],
    )?
    .map(|r| Ok((r.bytes(0)?, r.opt_bytes(1)?)))
    .transpose()
}

pub(super) fn granted(
    t: &mut dyn Tx,
    holder: &HolderKey,
    nonce: &Nonce,
) -> Result<Option<Granted>, Failure> {
    match known(t, holder, nonce)? {
        Some((h, Some(v))) => Ok(Some((
            h.try_into()
                .map_err(|_| Failure::storage("a stored hash has the wrong length"))?,
            v,
        ))),
        _ => Ok(None),
    }
}

pub(super) fn preauthorize(t: &mut dyn Tx, p: &PreAuth) -> Result<Vec<u8>, Failure> {
    lock(
        t,
        vec![
            key(Key::PreAuth(&p.holder_key, &p.client_nonce)),
            key(Key::Instrument(&p.instrument)),
        ],
    )?;
    if let Some((hash, voucher)) = known(t, &p.holder_key, &p.client_nonce)? {
        return match (hash == p.request_hash, voucher) {
            (true, Some(v)) => Ok(v),
            _ => Err(Failure::api(
                api::ApiError::NonceReused,
                "this holder key already used this client nonce for another request",
            )),
        };
    }
    let x = minor(p.amount.0)?;
    let cur = p.currency.as_str();
    if balance(t, "available", &p.instrument, cur)? < x {
        return Err(offpay_protocol::Rejection::InsufficientFunds.into());
    }
    let v = decode_signed::<Voucher>(&p.voucher)?;
    t.exec(
        "INSERT INTO vouchers (voucher_id, instrument, currency, limit_minor, not_before,
         not_after, issued_at, voucher) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            P::B(&v.id.0),
            P::T(&p.instrument),
            P::T(cur),
            P::I(minor(v.limit.0)?),
            ts(v.not_before),
            ts(v.not_after),
            ts(p.now),
            P::B(&p.voucher),
        ],
    )?;
    t.exec(
        "INSERT INTO preauthorizations (holder_key, client_nonce, request_hash, voucher_id)
         VALUES (?1, ?2, ?3, ?4)",
        &[
            P::B(p.holder_key.as_bytes()),
            P::B(&p.client_nonce.0),
            P::B(&p.request_hash),
            P::B(&v.id.0),
        ],
    )?;
    movement(
        t,
        "reservation",
        &v.id.0,
        p.now,
        cur,
        &[
            ("available", &p.instrument, -x),
            ("reserved", &p.instrument, x),
        ],
    )?;
    Ok(p.voucher.clone())
}

pub(super) fn add_merchant(
    t: &mut dyn Tx,
    certificate: &[u8],
    now: Timestamp,
) -> Result<(), Failure> {
    let c = decode_signed::<MerchantCertificate<'_>>(certificate)?;
    let n = t.exec(
        "INSERT INTO merchants (merchant_id, public_key, display_name, not_before, not_after,
         certified_at, certificate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        &[
            P::B(&c.merchant_id.0),
            P::B(&c.merchant_key.0),
            P::T(c.display_name),
            ts(c.not_before),
            ts(c.not_after),
            ts(now),
            P::B(certificate),
        ],
    )?;
    if n == 0 {
        return Err(Failure::api(
            api::ApiError::MerchantExists,
            "a merchant with this id is already certified",
        ));
    }
    Ok(())
}

/// Locks what a batch reads and writes: its vouchers, every payment id it names, and the
/// vouchers of the named payments already recorded (a receipt names only its payment).
fn lock_batch(t: &mut dyn Tx, batch: &[u8]) -> Result<(), Failure> {
    if !t.concurrent() {
        return Ok(());
    }
    let needs = Settlement::<TRUST_KEYS>::needs(batch)?;
    let mut keys: Vec<i64> = needs
        .vouchers
        .iter()
        .map(|v| key(Key::Voucher(v)))
        .collect();
    keys.extend(needs.payments.iter().map(|p| key(Key::Payment(&p.0))));
    if !needs.payments.is_empty() {
        let ids = P::List(needs.payments.iter().map(|p| &p.0[..]).collect());
        for r in t.query(
            "SELECT DISTINCT voucher_id FROM payments WHERE payment_id IN rarray(?1)",
            &[ids],
        )? {
            keys.push(key(Key::Voucher(&VoucherId(r.id(0)?))));
        }
    }
    lock(t, keys)
}

pub(super) fn sync(
    t: &mut dyn Tx,
    batch: &[u8],
    now: Timestamp,
    settle: &Settle,
) -> Result<Synced, Failure> {
    lock_batch(t, batch)?;
    let ingested = settle(&mut Reader(t))?;
    let new_records = ingested
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.outcome,
                Outcome::Credited | Outcome::Pending | Outcome::Conflict
            )
        })
        .count();
    if ingested.changes.is_empty() {
        return Ok(Synced {
            ingested,
            new_records,
        });
    }
    let id = t
        .one(
            "INSERT INTO sync_batches (batch_id, ingested_at, records, new_records)
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
            &[
                P::B(&sha256(batch)),
                ts(now),
                P::I(i64::try_from(ingested.entries.len()).unwrap_or(i64::MAX)),
                P::I(i64::try_from(new_records).unwrap_or(i64::MAX)),
            ],
        )?
        .int(0)?;
    let mut credits: BTreeMap<VoucherId, Credits> = BTreeMap::new();
    let mut writes = Writes::default();
    for c in &ingested.changes {
        apply(t, c, now, &mut writes, &mut credits)?;
    }
    writes.flush(t, id)?;
    post_credits(t, credits, now)?;
    Ok(Synced {
        ingested,
        new_records,
    })
}

/// Expired vouchers closed in one transaction at most.
pub(super) const CLOSE_CHUNK: usize = 256;

/// Closes the next [`CLOSE_CHUNK`] expired vouchers after `after` (in voucher id order); the
/// closed vouchers' states, and the last id looked at when there may be more.
pub(super) fn close_expired(
    t: &mut dyn Tx,
    now: Timestamp,
    grace: u32,
    close: &Close,
    after: Option<VoucherId>,
) -> Result<(Vec<api::VoucherState>, Option<VoucherId>), Failure> {
    // The empty string sorts before every id.
    let after: Vec<u8> = after.map_or_else(Vec::new, |v| v.0.to_vec());
    let list = t
        .query(
            "SELECT voucher_id FROM vouchers WHERE released_minor IS NULL AND not_after + ?1 < ?2
             AND voucher_id > ?3 ORDER BY voucher_id LIMIT ?4",
            &[
                P::I(grace.into()),
                ts(now),
                P::B(&after),
                P::I(CLOSE_CHUNK as i64),
            ],
        )?
        .iter()
        .map(|r| Ok(VoucherId(r.id(0)?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    lock(t, list.iter().map(|v| key(Key::Voucher(v))).collect())?;
    // Read again under the locks: another instance may have closed some meanwhile.
    let open: Vec<VoucherSummary> = Reader(t)
        .vouchers(&list)?
        .into_iter()
        .map(|(v, _)| v)
        .filter(|v| v.released.is_none())
        .collect();
    let mut out = Vec::new();
    let mut releases = Vec::new();
    for v in close(&open) {
        let Some(released) = v.released else {
            continue;
        };
        t.exec(
            "UPDATE vouchers SET released_minor = ?2 WHERE voucher_id = ?1",
            &[P::B(&v.id.0), P::I(minor(released.0)?)],
        )?;
        let instrument = t
            .one(
                "SELECT instrument FROM vouchers WHERE voucher_id = ?1",
                &[P::B(&v.id.0)],
            )?
            .opt_text(0)?;
        if let Some(i) = instrument {
            let x = minor(released.0)?;
            releases.push(Move {
                kind: "release",
                reference: v.id.0.to_vec(),
                at: now,
                currency: v.currency.as_str().to_string(),
                entries: vec![("reserved", i.clone(), -x), ("available", i, x)],
            });
        }
        let row = t.one(
            &format!("{VOUCHER_STATE} WHERE voucher_id = ?1"),
            &[P::B(&v.id.0)],
        )?;
        out.push(voucher_state(&row)?);
    }
    movements(t, releases)?;
    let last = if list.len() == CLOSE_CHUNK {
        list.last().copied()
    } else {
        None
    };
    Ok((out, last))
}

fn exists(t: &mut dyn Tx, sql: &str, id: &[u8]) -> Result<bool, Failure> {
    Ok(t.row(sql, &[P::B(id)])?.is_some())
}

fn revoked_ids<const N: usize>(t: &mut dyn Tx, kind: &str) -> Result<Vec<[u8; N]>, Failure> {
    t.query(
        "SELECT id FROM revocations WHERE kind = ?1 ORDER BY id",
        &[P::T(kind)],
    )?
    .iter()
    .map(|r| r.id(0))
    .collect()
}

pub(super) fn revoke(
    t: &mut dyn Tx,
    voucher: Option<VoucherId>,
    merchant: Option<MerchantId>,
    now: Timestamp,
    sign: &SignList,
) -> Result<Vec<u8>, Failure> {
    lock(t, vec![key(Key::Revocations)])?;
    if let Some(v) = voucher {
        if !exists(t, "SELECT 1 FROM vouchers WHERE voucher_id = ?1", &v.0)? {
            return Err(Failure::api(api::ApiError::NotFound, "no such voucher"));
        }
        t.exec(
            "INSERT INTO revocations (kind, id, revoked_at) VALUES ('voucher', ?1, ?2)
             ON CONFLICT DO NOTHING",
            &[P::B(&v.0), ts(now)],
        )?;
    }
    if let Some(m) = merchant {
        if !exists(t, "SELECT 1 FROM merchants WHERE merchant_id = ?1", &m.0)? {
            return Err(Failure::api(api::ApiError::NotFound, "no such merchant"));
        }
        t.exec(
            "INSERT INTO revocations (kind, id, revoked_at) VALUES ('merchant', ?1, ?2)
             ON CONFLICT DO NOTHING",
            &[P::B(&m.0), ts(now)],
        )?;
    }
    let vouchers: Vec<VoucherId> = revoked_ids(t, "voucher")?
        .into_iter()
        .map(VoucherId)
        .collect();
    let merchants: Vec<MerchantId> = revoked_ids(t, "merchant")?
        .into_iter()
        .map(MerchantId)
        .collect();
    let serial = t
        .one(
            "SELECT COALESCE(MAX(serial), 0) + 1 FROM revocation_lists",
            &[],
        )?
        .int(0)?;
    let list = sign(unsigned(serial), &vouchers, &merchants)?;
    t.exec(
        "INSERT INTO revocation_lists (serial, issued_at, list) VALUES (?1, ?2, ?3)",
        &[P::I(serial), ts(now), P::B(&list)],
    )?;
    Ok(list)
}

pub(super) fn revocation_list(t: &mut dyn Tx) -> Result<Option<(u64, Vec<u8>)>, Failure> {
    t.row(
        "SELECT serial, list FROM revocation_lists ORDER BY serial DESC LIMIT 1",
        &[],
    )?
    .map(|r| Ok((unsigned(r.int(0)?), r.bytes(1)?)))
    .transpose()
}

pub(super) fn credits(t: &mut dyn Tx) -> Result<Vec<api::Credit>, Failure> {
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in t.query(
        "SELECT p.merchant_id, v.currency, COUNT(*) FROM payments p
         JOIN vouchers v ON v.voucher_id = p.voucher_id
         WHERE p.credited = ?1 GROUP BY p.merchant_id, v.currency",
        &[P::Bool(true)],
    )? {
        counts.insert((hex::encode(r.bytes(0)?), r.text(1)?), r.int(2)?);
    }
    t.query(
        "SELECT owner, currency, balance FROM accounts WHERE kind = 'merchant'
         ORDER BY owner, currency",
        &[],
    )?
    .iter()
    .map(|r| {
        let (owner, currency) = (r.text(0)?, r.text(1)?);
        let payments = counts
            .get(&(owner.clone(), currency.clone()))
            .copied()
            .unwrap_or(0);
        Ok(api::Credit {
            merchant_id: owner,
            currency,
            amount_minor: unsigned(r.int(2)?),
            payments: unsigned(payments),
        })
    })
    .collect()
}

pub(super) fn proofs(t: &mut dyn Tx) -> Result<Vec<api::Proof>, Failure> {
    t.query(
        "SELECT voucher_id, kind, first_payment, second_payment, proof
         FROM fraud_proofs ORDER BY rowid",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(api::Proof {
            voucher_id: hex::encode(r.bytes(0)?),
            kind: r.text(1)?,
            first_payment: hex::encode(r.bytes(2)?),
            second_payment: hex::encode(r.bytes(3)?),
            proof: hex::encode(r.bytes(4)?),
        })
    })
    .collect()
}

pub(super) fn vouchers(t: &mut dyn Tx) -> Result<Vec<api::VoucherState>, Failure> {
    t.query(&format!("{VOUCHER_STATE} ORDER BY rowid"), &[])?
        .iter()
        .map(voucher_state)
        .collect()
}
