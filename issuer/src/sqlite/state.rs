//! Settlement's state in the ledger: the set-wise reads a batch needs, and writing back its
//! changes with their money movements.

use super::*;

/// Settlement's reads inside a SQLite transaction, each a query over an `rarray` of ids.
pub(super) struct Reader<'a>(pub(super) &'a Connection);

fn ids<const N: usize>(v: impl Iterator<Item = [u8; N]>) -> Rc<Vec<Value>> {
    Rc::new(v.map(|b| Value::Blob(b.to_vec())).collect())
}

/// A payment's position: its voucher id and its sequence number (big-endian).
fn position(voucher: &VoucherId, seq: u32) -> [u8; 20] {
    let mut p = [0u8; 20];
    p[..16].copy_from_slice(&voucher.0);
    p[16..].copy_from_slice(&seq.to_be_bytes());
    p
}

impl Reader<'_> {
    fn rows<T>(
        &self,
        sql: &str,
        list: Rc<Vec<Value>>,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, Failure> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let mut st = self.0.prepare_cached(sql).map_err(db)?;
        let rows = st.query_map([list], f).map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }
}

impl StateReader for Reader<'_> {
    fn vouchers(&mut self, list: &[VoucherId]) -> Result<Vec<StoredVoucher>, Failure> {
        let rows = self.rows(
            "SELECT voucher_id, currency, limit_minor, not_before, not_after, credited_minor,
             fraud, released_minor, voucher FROM vouchers WHERE voucher_id IN rarray(?1)",
            ids(list.iter().map(|v| v.0)),
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<Vec<u8>>>(8)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for (id, cur, limit, nb, na, credited, fraud, released, bytes) in rows {
            let (limit, credited) = (unsigned(limit), unsigned(credited));
            out.push((
                VoucherSummary {
                    id: VoucherId(arr(id)?),
                    currency: currency(&cur)?,
                    limit: Amount(limit),
                    not_before: Timestamp(nb),
                    not_after: Timestamp(na),
                    credited: Amount(credited),
                    overspend: Amount(credited.saturating_sub(limit)),
                    fraud,
                    released: released.map(|r| Amount(unsigned(r))),
                },
                bytes.map(|b| sha256(&b)),
            ));
        }
        Ok(out)
    }

    fn payments(&mut self, list: &[PaymentId]) -> Result<Vec<StoredPayment>, Failure> {
        self.rows(
            "SELECT bytes, credited FROM payments WHERE payment_id IN rarray(?1)",
            ids(list.iter().map(|p| p.0)),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn payments_at(&mut self, list: &[(VoucherId, u32)]) -> Result<Vec<StoredPayment>, Failure> {
        self.rows(
            "SELECT bytes, credited FROM payments WHERE position IN rarray(?1) ORDER BY rowid",
            ids(list.iter().map(|(v, s)| position(v, *s))),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn receipts_of(
        &mut self,
        list: &[PaymentId],
    ) -> Result<Vec<(RecordId, PaymentId, MerchantId, Timestamp)>, Failure> {
        let rows = self.rows(
            "SELECT record_id, payment_id, merchant_id, accepted_at FROM receipts
             WHERE payment_id IN rarray(?1)",
            ids(list.iter().map(|p| p.0)),
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for (rid, pid, mid, at) in rows {
            out.push((
                RecordId(arr(rid)?),
                PaymentId(arr(pid)?),
                MerchantId(arr(mid)?),
                Timestamp(at),
            ));
        }
        Ok(out)
    }

    fn records(&mut self, list: &[RecordId]) -> Result<Vec<RecordId>, Failure> {
        self.rows(
            "SELECT record_id FROM receipts WHERE record_id IN rarray(?1)",
            ids(list.iter().map(|r| r.0)),
            |r| r.get::<_, Vec<u8>>(0),
        )?
        .into_iter()
        .map(|r| arr(r).map(RecordId))
        .collect()
    }

    fn merchant_keys(
        &mut self,
        list: &[MerchantId],
    ) -> Result<Vec<(MerchantId, PublicKey)>, Failure> {
        self.rows(
            "SELECT merchant_id, public_key FROM merchants WHERE merchant_id IN rarray(?1)",
            ids(list.iter().map(|m| m.0)),
            |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?
        .into_iter()
        .map(|(m, k)| Ok((MerchantId(arr(m)?), PublicKey(arr(k)?))))
        .collect()
    }

    fn proven_with(&mut self, list: &[PaymentId]) -> Result<Vec<(PaymentId, PaymentId)>, Failure> {
        let list = ids(list.iter().map(|p| p.0));
        self.rows(
            "SELECT first_payment, second_payment FROM fraud_proofs
             WHERE first_payment IN rarray(?1) OR second_payment IN rarray(?1)",
            list,
            |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?
        .into_iter()
        .map(|(a, b)| Ok((PaymentId(arr(a)?), PaymentId(arr(b)?))))
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

/// Writes one change of settlement; credits are gathered per voucher in `credits`.
pub(super) fn apply(
    tx: &Connection,
    c: &Change,
    batch: i64,
    now: Timestamp,
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
        } => {
            tx.prepare_cached(
                "INSERT INTO payments (payment_id, voucher_id, seq, merchant_id, amount_minor,
                 batch, position, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(db)?
            .execute(params![
                &id.0[..],
                &voucher.0[..],
                seq,
                &merchant.0[..],
                minor(amount.0)?,
                batch,
                &position(voucher, *seq)[..],
                bytes
            ])
            .map_err(db)?;
        }
        Change::Receipt {
            record,
            payment,
            merchant,
            accepted_at,
            bytes,
        } => {
            tx.prepare_cached(
                "INSERT INTO receipts (record_id, payment_id, merchant_id, accepted_at, batch,
                 bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db)?
            .execute(params![
                &record.0[..],
                &payment.0[..],
                &merchant.0[..],
                accepted_at.0,
                batch,
                bytes
            ])
            .map_err(db)?;
        }
        Change::Credited {
            payment,
            voucher,
            merchant,
            currency,
            amount,
            overspend,
        } => {
            tx.prepare_cached("UPDATE payments SET credited = 1 WHERE payment_id = ?1")
                .map_err(db)?
                .execute([&payment.0[..]])
                .map_err(db)?;
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
            tx.prepare_cached(
                "INSERT OR IGNORE INTO fraud_proofs (first_payment, second_payment, voucher_id,
                 kind, found_at, proof) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db)?
            .execute(params![
                &first.0[..],
                &second.0[..],
                &voucher.0[..],
                kind_name(*kind),
                now.0,
                bytes
            ])
            .map_err(db)?;
        }
        Change::Voucher(v) => {
            let n = tx
                .prepare_cached(
                    "UPDATE vouchers SET credited_minor = ?2, fraud = ?3 WHERE voucher_id = ?1",
                )
                .map_err(db)?
                .execute(params![&v.id.0[..], minor(v.credited.0)?, v.fraud])
                .map_err(db)?;
            if n == 0 {
                tx.execute(
                    "INSERT INTO vouchers (voucher_id, currency, limit_minor, not_before,
                     not_after, credited_minor, fraud) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        &v.id.0[..],
                        v.currency.as_str(),
                        minor(v.limit.0)?,
                        v.not_before.0,
                        v.not_after.0,
                        minor(v.credited.0)?,
                        v.fraud
                    ],
                )
                .map_err(db)?;
            }
        }
    }
    Ok(())
}

/// One credit movement per voucher a batch credited: the instrument's reservation (and, past
/// the limit, what its holder owes) to the merchants.
pub(super) fn post_credits(
    tx: &Connection,
    credits: BTreeMap<VoucherId, Credits>,
    now: Timestamp,
) -> Result<(), Failure> {
    for (voucher, c) in credits {
        let Some(cur) = c.currency else { continue };
        let instrument: Option<String> = tx
            .prepare_cached("SELECT instrument FROM vouchers WHERE voucher_id = ?1")
            .map_err(db)?
            .query_row([&voucher.0[..]], |r| r.get(0))
            .optional()
            .map_err(db)?
            .flatten();
        let total: i64 = c.merchants.values().sum();
        let names: Vec<(String, i64)> = c
            .merchants
            .iter()
            .map(|(m, a)| (hex::encode(m.0), *a))
            .collect();
        let mut entries: Vec<(&str, &str, i64)> = match &instrument {
            Some(i) => vec![
                ("reserved", i.as_str(), -(total - c.overspend)),
                ("owed", i.as_str(), -c.overspend),
            ],
            None => vec![("suspense", "", -total)],
        };
        for (m, a) in &names {
            entries.push(("merchant", m.as_str(), *a));
        }
        movement(tx, "credit", &voucher.0, now, cur.as_str(), &entries)?;
    }
    Ok(())
}
