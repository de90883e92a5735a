//! Settlement's state in the ledger: the set-wise reads a batch needs, and writing back its
//! changes with their money movements.

use super::accounts::{Move, minor, movements, unsigned};
use super::{Key, P, Tx, key};
use crate::error::Failure;
use crate::settle::{StateReader, StoredPayment, StoredVoucher};
use offpay_protocol::{
    Amount, Change, Currency, MerchantId, PaymentId, PublicKey, RecordId, Timestamp, VoucherId,
    VoucherSummary, crypto::sha256,
};
use std::collections::BTreeMap;

/// Settlement's reads inside a transaction, each one query over a list of ids. Under
/// concurrent transactions, a voucher is only read with its lock held.
pub(super) struct Reader<'a>(pub(super) &'a mut dyn Tx);

/// A payment's position: its voucher id and its sequence number (big-endian).
pub(super) fn position(voucher: &VoucherId, seq: u32) -> [u8; 20] {
    let mut p = [0u8; 20];
    p[..16].copy_from_slice(&voucher.0);
    p[16..].copy_from_slice(&seq.to_be_bytes());
    p
}

fn currency(text: &str) -> Result<Currency, Failure> {
    Currency::parse(text).ok_or_else(|| Failure::storage("a stored currency is not ISO 4217"))
}

fn list<const N: usize>(ids: &[[u8; N]]) -> P<'_> {
    P::List(ids.iter().map(|i| &i[..]).collect())
}

impl Reader<'_> {
    fn rows(&mut self, sql: &str, ids: P<'_>) -> Result<Vec<super::Row>, Failure> {
        match &ids {
            P::List(l) if l.is_empty() => Ok(Vec::new()),
            _ => self.0.query(sql, &[ids]),
        }
    }
}

impl StateReader for Reader<'_> {
    fn vouchers(&mut self, ids: &[VoucherId]) -> Result<Vec<StoredVoucher>, Failure> {
        if self.0.concurrent() {
            for v in ids {
                self.0.lock_late(key(Key::Voucher(v)))?;
            }
        }
        let raw: Vec<[u8; 16]> = ids.iter().map(|v| v.0).collect();
        let rows = self.rows(
            "SELECT voucher_id, currency, limit_minor, not_before, not_after, credited_minor,
             fraud, released_minor, voucher FROM vouchers WHERE voucher_id IN rarray(?1)",
            list(&raw),
        )?;
        let mut out = Vec::new();
        for r in rows {
            let (limit, credited) = (unsigned(r.int(2)?), unsigned(r.int(5)?));
            out.push((
                VoucherSummary {
                    id: VoucherId(r.id(0)?),
                    currency: currency(&r.text(1)?)?,
                    limit: Amount(limit),
                    not_before: Timestamp(r.u32(3)?),
                    not_after: Timestamp(r.u32(4)?),
                    credited: Amount(credited),
                    overspend: Amount(credited.saturating_sub(limit)),
                    fraud: r.bool(6)?,
                    released: r.opt_int(7)?.map(|x| Amount(unsigned(x))),
                },
                r.opt_bytes(8)?.map(|b| sha256(&b)),
            ));
        }
        Ok(out)
    }

    fn payments(&mut self, ids: &[PaymentId]) -> Result<Vec<StoredPayment>, Failure> {
        let raw: Vec<[u8; 32]> = ids.iter().map(|p| p.0).collect();
        self.rows(
            "SELECT bytes, credited FROM payments WHERE payment_id IN rarray(?1)",
            list(&raw),
        )?
        .iter()
        .map(|r| Ok((r.bytes(0)?, r.bool(1)?)))
        .collect()
    }

    fn payments_at(&mut self, at: &[(VoucherId, u32)]) -> Result<Vec<StoredPayment>, Failure> {
        let raw: Vec<[u8; 20]> = at.iter().map(|(v, s)| position(v, *s)).collect();
        self.rows(
            "SELECT bytes, credited FROM payments WHERE position IN rarray(?1) ORDER BY rowid",
            list(&raw),
        )?
        .iter()
        .map(|r| Ok((r.bytes(0)?, r.bool(1)?)))
        .collect()
    }

    fn receipts_of(
        &mut self,
        ids: &[PaymentId],
    ) -> Result<Vec<(RecordId, PaymentId, MerchantId, Timestamp)>, Failure> {
        let raw: Vec<[u8; 32]> = ids.iter().map(|p| p.0).collect();
        self.rows(
            "SELECT record_id, payment_id, merchant_id, accepted_at FROM receipts
             WHERE payment_id IN rarray(?1)",
            list(&raw),
        )?
        .iter()
        .map(|r| {
            Ok((
                RecordId(r.id(0)?),
                PaymentId(r.id(1)?),
                MerchantId(r.id(2)?),
                Timestamp(r.u32(3)?),
            ))
        })
        .collect()
    }

    fn records(&mut self, ids: &[RecordId]) -> Result<Vec<RecordId>, Failure> {
        let raw: Vec<[u8; 32]> = ids.iter().map(|r| r.0).collect();
        self.rows(
            "SELECT record_id FROM receipts WHERE record_id IN rarray(?1)",
            list(&raw),
        )?
        .iter()
        .map(|r| Ok(RecordId(r.id(0)?)))
        .collect()
    }

    fn merchant_keys(
        &mut self,
        ids: &[MerchantId],
    ) -> Result<Vec<(MerchantId, PublicKey)>, Failure> {
        let raw: Vec<[u8; 8]> = ids.iter().map(|m| m.0).collect();
        self.rows(
            "SELECT merchant_id, public_key FROM merchants WHERE merchant_id IN rarray(?1)",
            list(&raw),
        )?
        .iter()
        .map(|r| Ok((MerchantId(r.id(0)?), PublicKey(r.id(1)?))))
        .collect()
    }

    fn proven_with(&mut self, ids: &[PaymentId]) -> Result<Vec<(PaymentId, PaymentId)>, Failure> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raw: Vec<[u8; 32]> = ids.iter().map(|p| p.0).collect();
        self.0
            .query(
                "SELECT first_payment, second_payment FROM fraud_proofs
                 WHERE first_payment IN rarray(?1) OR second_payment IN rarray(?2)",
                &[list(&raw), list(&raw)],
            )?
            .iter()
            .map(|r| Ok((PaymentId(r.id(0)?), PaymentId(r.id(1)?))))
            .collect()
    }
}

/// What a batch credited from one voucher: per merchant, and beyond the limit.
#[derive(Default)]
pub(super) struct Credits {
    currency: Option<Currency>,
    merchants: BTreeMap<MerchantId, i64>,
    overspend: i64,
}

/// Rows are written this many to a statement at most, and what is left in the smaller of
/// these sizes: on PostgreSQL every statement is a network round trip, so one per row would
/// dominate a batch's cost, while a few fixed sizes keep the statement texts (each prepared
/// once per connection) few.
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// `{head} VALUES (...), ...`: `params` holds rows of `width` parameters each.
fn insert_rows(t: &mut dyn Tx, head: &str, width: usize, params: &[P<'_>]) -> Result<(), Failure> {
    use std::fmt::Write as _;
    let mut rest = params;
    while !rest.is_empty() {
        let left = rest.len() / width;
        let n = CHUNKS.into_iter().find(|&c| c <= left).unwrap_or(1);
        let mut sql = format!("{head} VALUES ");
        for r in 0..n {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..width {
                let sep = if c == 0 { "" } else { ", " };
                let _ = write!(sql, "{sep}?{}", r * width + c + 1);
            }
            sql.push(')');
        }
        let (now, later) = rest.split_at((n * width).min(rest.len()));
        t.exec(&sql, now)?;
        rest = later;
    }
    Ok(())
}

/// A payment row to write.
struct PaymentRow<'c> {
    id: &'c [u8],
    voucher: &'c [u8],
    seq: u32,
    merchant: &'c [u8],
    amount: i64,
    position: [u8; 20],
    bytes: &'c [u8],
}

/// The payment and receipt rows of a batch's changes and the payments it credits, gathered
/// to be written a chunk at a time ([`Writes::flush`]), after one another in this order.
#[derive(Default)]
pub(super) struct Writes<'c> {
    payments: Vec<PaymentRow<'c>>,
    receipts: Vec<[P<'c>; 5]>,
    credited: Vec<&'c [u8]>,
}

impl Writes<'_> {
    /// Writes what was gathered: payments first, so that a payment credited in the batch
    /// that stores it is there to be marked.
    pub(super) fn flush(self, t: &mut dyn Tx, batch: i64) -> Result<(), Failure> {
        let mut params = Vec::with_capacity(8 * self.payments.len());
        for p in &self.payments {
            params.extend([
                P::B(p.id),
                P::B(p.voucher),
                P::I(p.seq.into()),
                P::B(p.merchant),
                P::I(p.amount),
                P::I(batch),
                P::B(&p.position),
                P::B(p.bytes),
            ]);
        }
        insert_rows(
            t,
            "INSERT INTO payments (payment_id, voucher_id, seq, merchant_id, amount_minor, batch, \
             position, bytes)",
            8,
            &params,
        )?;
        let mut params = Vec::with_capacity(6 * self.receipts.len());
        for [record, payment, merchant, accepted_at, bytes] in self.receipts {
            params.extend([record, payment, merchant, accepted_at, P::I(batch), bytes]);
        }
        insert_rows(
            t,
            "INSERT INTO receipts (record_id, payment_id, merchant_id, accepted_at, batch, bytes)",
            6,
            &params,
        )?;
        if !self.credited.is_empty() {
            t.exec(
                "UPDATE payments SET credited = ?1 WHERE payment_id IN rarray(?2)",
                &[P::Bool(true), P::List(self.credited)],
            )?;
        }
        Ok(())
    }
}

/// Writes one change of settlement, or gathers it in `w` to be written with others; credits
/// are gathered per voucher in `credits`.
pub(super) fn apply<'c>(
    t: &mut dyn Tx,
    c: &'c Change,
    now: Timestamp,
    w: &mut Writes<'c>,
    credits: &mut BTreeMap<VoucherId, Credits>,
) -> Result<(), Failure> {
    match c {
        Change::Payment {
            id,
            voucher,
            seq,
            amount,
            merchant,
            bytes,
        } => w.payments.push(PaymentRow {
            id: &id.0,
            voucher: &voucher.0,
            seq: *seq,
            merchant: &merchant.0,
            amount: minor(amount.0)?,
            position: position(voucher, *seq),
            bytes,
        }),
        Change::Receipt {
            record,
            payment,
            merchant,
            accepted_at,
            bytes,
        } => w.receipts.push([
            P::B(&record.0),
            P::B(&payment.0),
            P::B(&merchant.0),
            P::I(accepted_at.0.into()),
            P::B(bytes),
        ]),
        Change::Credited {
            payment,
            voucher,
            merchant,
            currency,
            amount,
            overspend,
        } => {
            w.credited.push(&payment.0);
            let c = credits.entry(*voucher).or_default();
            c.currency = Some(*currency);
            let m = c.merchants.entry(*merchant).or_insert(0);
            *m = m
                .checked_add(minor(amount.0)?)
                .ok_or_else(|| Failure::storage("credits past 2^63"))?;
            c.overspend = c
                .overspend
                .checked_add(minor(overspend.0)?)
                .ok_or_else(|| Failure::storage("overspend past 2^63"))?;
        }
        Change::Proof {
            voucher,
            kind,
            first,
            second,
            bytes,
        } => {
            t.exec(
                "INSERT INTO fraud_proofs (first_payment, second_payment, voucher_id,
                 kind, found_at, proof) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                &[
                    P::B(&first.0),
                    P::B(&second.0),
                    P::B(&voucher.0),
                    P::T(kind.name()),
                    P::I(now.0.into()),
                    P::B(bytes),
                ],
            )?;
        }
        Change::Voucher(v) => {
            let n = t.exec(
                "UPDATE vouchers SET credited_minor = ?2, fraud = ?3 WHERE voucher_id = ?1",
                &[P::B(&v.id.0), P::I(minor(v.credited.0)?), P::Bool(v.fraud)],
            )?;
            if n == 0 {
                t.exec(
                    "INSERT INTO vouchers (voucher_id, currency, limit_minor, not_before,
                     not_after, credited_minor, fraud) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &[
                        P::B(&v.id.0),
                        P::T(v.currency.as_str()),
                        P::I(minor(v.limit.0)?),
                        P::I(v.not_before.0.into()),
                        P::I(v.not_after.0.into()),
                        P::I(minor(v.credited.0)?),
                        P::Bool(v.fraud),
                    ],
                )?;
            }
        }
    }
    Ok(())
}

/// One credit movement per voucher a batch credited: the instrument's reservation (and, past
/// the limit, what its holder owes) to the merchants.
pub(super) fn post_credits(
    t: &mut dyn Tx,
    credits: BTreeMap<VoucherId, Credits>,
    now: Timestamp,
) -> Result<(), Failure> {
    let ids: Vec<[u8; 16]> = credits.keys().map(|v| v.0).collect();
    let mut instruments: BTreeMap<VoucherId, String> = BTreeMap::new();
    if !ids.is_empty() {
        for r in t.query(
            "SELECT voucher_id, instrument FROM vouchers WHERE voucher_id IN rarray(?1)",
            &[list(&ids)],
        )? {
            if let Some(i) = r.opt_text(1)? {
                instruments.insert(VoucherId(r.id(0)?), i);
            }
        }
    }
    let mut moves = Vec::new();
    for (voucher, c) in credits {
        let Some(cur) = c.currency else { continue };
        let total: i64 = c.merchants.values().sum();
        let mut entries: Vec<(&'static str, String, i64)> = match instruments.get(&voucher) {
            Some(i) => vec![
                ("reserved", i.clone(), -(total - c.overspend)),
                ("owed", i.clone(), -c.overspend),
            ],
            None => vec![("suspense", String::new(), -total)],
        };
        for (m, a) in &c.merchants {
            entries.push(("merchant", hex::encode(m.0), *a));
        }
        moves.push(Move {
            kind: "credit",
            reference: voucher.0.to_vec(),
            at: now,
            currency: cur.as_str().to_string(),
            entries,
        });
    }
    movements(t, moves)?;
    Ok(())
}
