//! The ledger in SQLite: one file in WAL mode with `synchronous = FULL`.
//!
//! Writes go through one writer thread that commits in groups: it takes every operation
//! waiting (up to [`GROUP_MAX`]), runs each inside its own savepoint of one `BEGIN IMMEDIATE`
//! transaction, commits once, and only then answers each caller. An operation that fails is
//! rolled back to its savepoint and changes nothing; if the commit fails, every operation of
//! the group fails and nothing of it is stored. One `fsync` then serves many concurrent
//! requests, and no answer is given before what it reports is durable. Reads use their own
//! connection and see what was committed.

use crate::api;
use crate::error::Failure;
use crate::settle::{StateReader, StoredPayment, StoredVoucher};
use crate::storage::{Close, Granted, InstrumentRow, PreAuth, Settle, SignList, Storage, Synced};
use offpay_protocol::msg::{FraudKind, MerchantCertificate, Outcome, Voucher};
use offpay_protocol::{
    Amount, Change, Currency, MerchantId, Nonce, PaymentId, PublicKey, RecordId, Timestamp,
    VoucherId, VoucherSummary, crypto::sha256, decode_signed,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Mutex, mpsc};

/// The most operations one group commit takes.
pub const GROUP_MAX: usize = 256;

mod accounts;
mod schema;
mod state;
mod writer;

use accounts::*;
pub use schema::SCHEMA_VERSION;
use schema::migrate;
use state::*;
pub use writer::SqliteStorage;

fn db(e: rusqlite::Error) -> Failure {
    Failure::storage(e)
}

/// An amount as SQLite stores it (a signed 64-bit integer).
pub(crate) fn minor(a: u64) -> Result<i64, Failure> {
    i64::try_from(a).map_err(|_| {
        Failure::api(
            api::ApiError::AmountTooLarge,
            format!("{a} minor units is more than the ledger holds"),
        )
    })
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn arr<const N: usize>(v: Vec<u8>) -> Result<[u8; N], Failure> {
    v.try_into()
        .map_err(|_| Failure::storage("a stored id has the wrong length"))
}

fn currency(text: &str) -> Result<Currency, Failure> {
    Currency::parse(text).ok_or_else(|| Failure::storage("a stored currency is not ISO 4217"))
}

impl Storage for SqliteStorage {
    fn schema_version(&self) -> Result<u32, Failure> {
        self.read(|c| {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(db)
        })
    }

    fn check(&self) -> Result<(), Failure> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
    }

    fn create_instrument(
        &self,
        id: &str,
        credential_hash: [u8; 32],
        currency: Currency,
        label: Option<&str>,
        now: Timestamp,
    ) -> Result<api::Instrument, Failure> {
        let (id, label) = (id.to_string(), label.map(str::to_string));
        self.with(move |tx| {
            tx.execute(
                "INSERT INTO instruments (id, credential_hash, currency, label, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, &credential_hash[..], currency.as_str(), label, now.0],
            )
            .map_err(db)?;
            instrument_row(tx, &id)?
                .map(|r| r.instrument)
                .ok_or_else(|| Failure::storage("the instrument just created is missing"))
        })
    }

    fn instrument(&self, id: &str) -> Result<Option<InstrumentRow>, Failure> {
        self.read(|c| instrument_row(c, id))
    }

    fn credential(&self, id: &str) -> Result<Option<([u8; 32], Currency)>, Failure> {
        self.read(|c| {
            let row: Option<(Vec<u8>, String)> = c
                .prepare_cached("SELECT credential_hash, currency FROM instruments WHERE id = ?1")
                .map_err(db)?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db)?;
            row.map(|(h, cur)| Ok((arr(h)?, currency(&cur)?)))
                .transpose()
        })
    }

    fn fund(
        &self,
        id: &str,
        amount: Amount,
        reference: &str,
        now: Timestamp,
    ) -> Result<api::Instrument, Failure> {
        let id = id.to_string();
        let mut key = id.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(reference.as_bytes());
        self.with(move |tx| {
            let id = id.as_str();
            let row = instrument_row(tx, id)?
                .ok_or_else(|| Failure::api(api::ApiError::NotFound, "no such instrument"))?;
            let x = minor(amount.0)?;
            let earlier: Option<i64> = tx
                .prepare_cached(
                    "SELECT e.amount FROM movements m JOIN entries e ON e.movement = m.id
                     JOIN accounts a ON a.id = e.account
                     WHERE m.kind = 'funding' AND m.reference = ?1 AND a.kind = 'available'",
                )
                .map_err(db)?
                .query_row([&key], |r| r.get(0))
                .optional()
                .map_err(db)?;
            match earlier {
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
                tx,
                "funding",
                &key,
                now,
                &cur,
                &[("funding", id, -x), ("available", id, x)],
            )?;
            instrument_row(tx, id)?
                .map(|r| r.instrument)
                .ok_or_else(|| Failure::storage("the instrument vanished"))
        })
    }

    fn granted(&self, holder: &PublicKey, nonce: &Nonce) -> Result<Option<Granted>, Failure> {
        self.read(|c| {
            let row: Option<(Vec<u8>, Option<Vec<u8>>)> = c
                .prepare_cached(
                    "SELECT p.request_hash, v.voucher FROM preauthorizations p
                     JOIN vouchers v ON v.voucher_id = p.voucher_id
                     WHERE p.holder_key = ?1 AND p.client_nonce = ?2",
                )
                .map_err(db)?
                .query_row(params![&holder.0[..], &nonce.0[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db)?;
            match row {
                Some((h, Some(v))) => Ok(Some((arr(h)?, v))),
                _ => Ok(None),
            }
        })
    }

    fn preauthorize(&self, p: PreAuth) -> Result<Vec<u8>, Failure> {
        self.with(move |tx| {
            let known: Option<(Vec<u8>, Option<Vec<u8>>)> = tx
                .prepare_cached(
                    "SELECT p.request_hash, v.voucher FROM preauthorizations p
                     JOIN vouchers v ON v.voucher_id = p.voucher_id
                     WHERE p.holder_key = ?1 AND p.client_nonce = ?2",
                )
                .map_err(db)?
                .query_row(params![&p.holder_key.0[..], &p.client_nonce.0[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db)?;
            if let Some((hash, voucher)) = known {
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
            if balance(tx, "available", &p.instrument, cur)? < x {
                return Err(offpay_protocol::Rejection::InsufficientFunds.into());
            }
            let voucher = p.voucher;
            let v = decode_signed::<Voucher>(&voucher)?;
            tx.prepare_cached(
                "INSERT INTO vouchers (voucher_id, instrument, currency, limit_minor, not_before,
                 not_after, issued_at, voucher) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(db)?
            .execute(params![
                &v.id.0[..],
                &p.instrument,
                cur,
                minor(v.limit.0)?,
                v.not_before.0,
                v.not_after.0,
                p.now.0,
                &voucher
            ])
            .map_err(db)?;
            tx.prepare_cached(
                "INSERT INTO preauthorizations (holder_key, client_nonce, request_hash, voucher_id)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db)?
            .execute(params![
                &p.holder_key.0[..],
                &p.client_nonce.0[..],
                &p.request_hash[..],
                &v.id.0[..]
            ])
            .map_err(db)?;
            movement(
                tx,
                "reservation",
                &v.id.0,
                p.now,
                cur,
                &[
                    ("available", &p.instrument, -x),
                    ("reserved", &p.instrument, x),
                ],
            )?;
            Ok(voucher)
        })
    }

    fn add_merchant(&self, certificate: &[u8], now: Timestamp) -> Result<(), Failure> {
        let certificate = certificate.to_vec();
        self.with(move |tx| {
            let c = decode_signed::<MerchantCertificate<'_>>(&certificate)?;
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO merchants (merchant_id, public_key, display_name,
                     not_before, not_after, certified_at, certificate)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        &c.merchant_id.0[..],
                        &c.merchant_key.0[..],
                        c.display_name,
                        c.not_before.0,
                        c.not_after.0,
                        now.0,
                        &certificate
                    ],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(Failure::api(
                    api::ApiError::MerchantExists,
                    "a merchant with this id is already certified",
                ));
            }
            Ok(())
        })
    }

    fn sync(&self, batch: Vec<u8>, now: Timestamp, settle: Settle) -> Result<Synced, Failure> {
        self.with(move |tx| {
            let ingested = settle(&mut Reader(tx))?;
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
            tx.execute(
                "INSERT INTO sync_batches (batch_id, ingested_at, records, new_records)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    &sha256(&batch)[..],
                    now.0,
                    ingested.entries.len(),
                    new_records
                ],
            )
            .map_err(db)?;
            let id = tx.last_insert_rowid();
            let mut credits = BTreeMap::new();
            for c in &ingested.changes {
                apply(tx, c, id, now, &mut credits)?;
            }
            post_credits(tx, credits, now)?;
            Ok(Synced {
                ingested,
                new_records,
            })
        })
    }

    fn close_expired(
        &self,
        now: Timestamp,
        grace: u32,
        close: Close,
    ) -> Result<Vec<api::VoucherState>, Failure> {
        self.with(move |tx| {
            let ids: Vec<Vec<u8>> = {
                let mut st = tx
                    .prepare(
                        "SELECT voucher_id FROM vouchers
                         WHERE released_minor IS NULL AND not_after + ?1 < ?2",
                    )
                    .map_err(db)?;
                st.query_map(params![grace, now.0], |r| r.get(0))
                    .map_err(db)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(db)?
            };
            let list = ids
                .into_iter()
                .map(|i| arr(i).map(VoucherId))
                .collect::<Result<Vec<_>, _>>()?;
            let open: Vec<VoucherSummary> = Reader(tx)
                .vouchers(&list)?
                .into_iter()
                .map(|(v, _)| v)
                .collect();
            let mut out = Vec::new();
            for v in close(&open) {
                let Some(released) = v.released else {
                    continue;
                };
                tx.execute(
                    "UPDATE vouchers SET released_minor = ?2 WHERE voucher_id = ?1",
                    params![&v.id.0[..], minor(released.0)?],
                )
                .map_err(db)?;
                let instrument: Option<String> = tx
                    .query_row(
                        "SELECT instrument FROM vouchers WHERE voucher_id = ?1",
                        [&v.id.0[..]],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if let Some(i) = instrument {
                    let x = minor(released.0)?;
                    movement(
                        tx,
                        "release",
                        &v.id.0,
                        now,
                        v.currency.as_str(),
                        &[("reserved", i.as_str(), -x), ("available", i.as_str(), x)],
                    )?;
                }
                out.push(
                    tx.query_row(
                        &format!("{VOUCHER_STATE} WHERE voucher_id = ?1"),
                        [&v.id.0[..]],
                        voucher_state,
                    )
                    .map_err(db)?,
                );
            }
            Ok(out)
        })
    }

    fn revoke(
        &self,
        voucher: Option<VoucherId>,
        merchant: Option<MerchantId>,
        now: Timestamp,
        sign: SignList,
    ) -> Result<Vec<u8>, Failure> {
        self.with(move |tx| {
            if let Some(v) = voucher {
                let known: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM vouchers WHERE voucher_id = ?1)",
                        [&v.0[..]],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if !known {
                    return Err(Failure::api(api::ApiError::NotFound, "no such voucher"));
                }
                tx.execute(
                    "INSERT OR IGNORE INTO revocations (kind, id, revoked_at) VALUES ('voucher', ?1, ?2)",
                    params![&v.0[..], now.0],
                )
                .map_err(db)?;
            }
            if let Some(m) = merchant {
                let known: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM merchants WHERE merchant_id = ?1)",
                        [&m.0[..]],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if !known {
                    return Err(Failure::api(api::ApiError::NotFound, "no such merchant"));
                }
                tx.execute(
                    "INSERT OR IGNORE INTO revocations (kind, id, revoked_at) VALUES ('merchant', ?1, ?2)",
                    params![&m.0[..], now.0],
                )
                .map_err(db)?;
            }
            let ids = |kind: &str| -> Result<Vec<Vec<u8>>, Failure> {
                let mut st = tx
                    .prepare("SELECT id FROM revocations WHERE kind = ?1 ORDER BY id")
                    .map_err(db)?;
                st.query_map([kind], |r| r.get(0))
                    .map_err(db)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(db)
            };
            let vouchers = ids("voucher")?
                .into_iter()
                .map(|v| arr(v).map(VoucherId))
                .collect::<Result<Vec<_>, _>>()?;
            let merchants = ids("merchant")?
                .into_iter()
                .map(|m| arr(m).map(MerchantId))
                .collect::<Result<Vec<_>, _>>()?;
            let serial: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(serial), 0) + 1 FROM revocation_lists",
                    [],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let list = sign(unsigned(serial), &vouchers, &merchants)?;
            tx.execute(
                "INSERT INTO revocation_lists (serial, issued_at, list) VALUES (?1, ?2, ?3)",
                params![serial, now.0, &list],
            )
            .map_err(db)?;
            Ok(list)
        })
    }

    fn revocation_list(&self) -> Result<Option<(u64, Vec<u8>)>, Failure> {
        self.read(|c| {
            c.query_row(
                "SELECT serial, list FROM revocation_lists ORDER BY serial DESC LIMIT 1",
                [],
                |r| Ok((unsigned(r.get(0)?), r.get(1)?)),
            )
            .optional()
            .map_err(db)
        })
    }

    fn credits(&self) -> Result<Vec<api::Credit>, Failure> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT a.owner, a.currency, a.balance,
                     (SELECT COUNT(*) FROM payments p JOIN vouchers v ON v.voucher_id = p.voucher_id
                      WHERE p.credited = 1 AND lower(hex(p.merchant_id)) = a.owner
                      AND v.currency = a.currency)
                     FROM accounts a WHERE a.kind = 'merchant' ORDER BY a.owner, a.currency",
                )
                .map_err(db)?;
            st.query_map([], |r| {
                Ok(api::Credit {
                    merchant_id: r.get(0)?,
                    currency: r.get(1)?,
                    amount_minor: unsigned(r.get(2)?),
                    payments: unsigned(r.get(3)?),
                })
            })
            .map_err(db)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db)
        })
    }

    fn proofs(&self) -> Result<Vec<api::Proof>, Failure> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT voucher_id, kind, first_payment, second_payment, proof
                     FROM fraud_proofs ORDER BY rowid",
                )
                .map_err(db)?;
            st.query_map([], |r| {
                Ok(api::Proof {
                    voucher_id: hex::encode(r.get::<_, Vec<u8>>(0)?),
                    kind: r.get(1)?,
                    first_payment: hex::encode(r.get::<_, Vec<u8>>(2)?),
                    second_payment: hex::encode(r.get::<_, Vec<u8>>(3)?),
                    proof: hex::encode(r.get::<_, Vec<u8>>(4)?),
                })
            })
            .map_err(db)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db)
        })
    }

    fn vouchers(&self) -> Result<Vec<api::VoucherState>, Failure> {
        self.read(|c| {
            let mut st = c
                .prepare(&format!("{VOUCHER_STATE} ORDER BY rowid"))
                .map_err(db)?;
            st.query_map([], voucher_state)
                .map_err(db)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db)
        })
    }
}
