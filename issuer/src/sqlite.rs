//! The ledger in SQLite: one file, WAL, every write transaction `BEGIN IMMEDIATE` (one writer
//! at a time), `synchronous = FULL`.

use crate::api;
use crate::error::Failure;
use crate::settle::{StateReader, StoredPayment, StoredVoucher};
use crate::storage::{
    Close, InstrumentRow, PreAuth, Settle, SignList, SignVoucher, Storage, Synced,
};
use offpay_protocol::msg::{FraudKind, MerchantCertificate, Outcome, Voucher};
use offpay_protocol::{
    Amount, Change, Currency, MerchantId, PaymentId, PublicKey, RecordId, Timestamp, VoucherId,
    VoucherSummary, crypto::sha256, decode_signed,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::path::Path;
use std::sync::Mutex;

/// The schema, one migration per step; `PRAGMA user_version` says how many were applied.
/// Never edit a migration that shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger.
    "CREATE TABLE instruments (
        id TEXT PRIMARY KEY,
        credential_hash BLOB NOT NULL,
        currency TEXT NOT NULL,
        label TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('funding', 'available', 'reserved', 'owed', 'merchant', 'suspense')),
        owner TEXT NOT NULL,
        currency TEXT NOT NULL,
        balance INTEGER NOT NULL DEFAULT 0,
        UNIQUE (kind, owner, currency)
    );
    CREATE TABLE movements (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('funding', 'reservation', 'credit', 'release')),
        reference BLOB NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE entries (
        movement INTEGER NOT NULL REFERENCES movements(id),
        account INTEGER NOT NULL REFERENCES accounts(id),
        amount INTEGER NOT NULL
    );
    CREATE INDEX entries_by_account ON entries(account);
    CREATE TABLE merchants (
        merchant_id BLOB PRIMARY KEY,
        public_key BLOB NOT NULL,
        display_name TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        certified_at INTEGER NOT NULL,
        certificate BLOB NOT NULL
    );
    CREATE TABLE vouchers (
        voucher_id BLOB PRIMARY KEY,
        instrument TEXT REFERENCES instruments(id),
        currency TEXT NOT NULL,
        limit_minor INTEGER NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        credited_minor INTEGER NOT NULL DEFAULT 0,
        fraud INTEGER NOT NULL DEFAULT 0,
        released_minor INTEGER,
        issued_at INTEGER,
        voucher BLOB
    );
    CREATE INDEX vouchers_open ON vouchers(not_after) WHERE released_minor IS NULL;
    CREATE TABLE preauthorizations (
        holder_key BLOB NOT NULL,
        client_nonce BLOB NOT NULL,
        request_hash BLOB NOT NULL,
        voucher_id BLOB NOT NULL REFERENCES vouchers(voucher_id),
        PRIMARY KEY (holder_key, client_nonce)
    );
    CREATE TABLE sync_batches (
        id INTEGER PRIMARY KEY,
        batch_id BLOB NOT NULL,
        ingested_at INTEGER NOT NULL,
        records INTEGER NOT NULL,
        new_records INTEGER NOT NULL
    );
    CREATE TABLE payments (
        payment_id BLOB PRIMARY KEY,
        voucher_id BLOB NOT NULL,
        seq INTEGER NOT NULL,
        merchant_id BLOB NOT NULL,
        amount_minor INTEGER NOT NULL,
        credited INTEGER NOT NULL DEFAULT 0,
        batch INTEGER NOT NULL REFERENCES sync_batches(id),
        bytes BLOB NOT NULL
    );
    CREATE INDEX payments_by_position ON payments(voucher_id, seq);
    CREATE TABLE receipts (
        record_id BLOB PRIMARY KEY,
        payment_id BLOB NOT NULL,
        merchant_id BLOB NOT NULL,
        accepted_at INTEGER NOT NULL,
        batch INTEGER NOT NULL REFERENCES sync_batches(id),
        bytes BLOB NOT NULL,
        UNIQUE (payment_id, merchant_id)
    );
    CREATE TABLE fraud_proofs (
        first_payment BLOB NOT NULL,
        second_payment BLOB NOT NULL,
        voucher_id BLOB NOT NULL,
        kind TEXT NOT NULL,
        found_at INTEGER NOT NULL,
        proof BLOB NOT NULL,
        PRIMARY KEY (first_payment, second_payment)
    );
    CREATE INDEX fraud_proofs_by_second ON fraud_proofs(second_payment);
    CREATE TABLE revocations (
        kind TEXT NOT NULL CHECK (kind IN ('voucher', 'merchant')),
        id BLOB NOT NULL,
        revoked_at INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE TABLE revocation_lists (
        serial INTEGER PRIMARY KEY,
        issued_at INTEGER NOT NULL,
        list BLOB NOT NULL
    );",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

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

/// Applies the migrations `conn` lacks, each in its own transaction; refuses a newer schema.
fn migrate(conn: &mut Connection) -> Result<u32, Failure> {
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db)?;
    if version > SCHEMA_VERSION {
        return Err(Failure::storage(format!(
            "the ledger has schema version {version}, newer than this offpay-issuer knows \
             ({SCHEMA_VERSION}); upgrade offpay-issuer"
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(m).map_err(db)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(db)?;
        tx.commit().map_err(db)?;
    }
    Ok(SCHEMA_VERSION)
}

/// The SQLite ledger.
pub struct SqliteStorage {
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating and migrating) the ledger at `path`. Opening reads nothing but the
    /// schema version: no history is replayed.
    pub fn open(path: &Path) -> Result<Self, Failure> {
        let mut conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 10000;",
        )
        .map_err(db)?;
        migrate(&mut conn)?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Failure::storage("a previous ledger call panicked"))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Failure>) -> Result<T, Failure> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Failure::storage("a previous ledger call panicked"))?;
        f(&conn)
    }
}

/// The id of an account, created at zero when first used.
fn account(tx: &Connection, kind: &str, owner: &str, cur: &str) -> Result<i64, Failure> {
    tx.execute(
        "INSERT OR IGNORE INTO accounts (kind, owner, currency) VALUES (?1, ?2, ?3)",
        params![kind, owner, cur],
    )
    .map_err(db)?;
    tx.query_row(
        "SELECT id FROM accounts WHERE kind = ?1 AND owner = ?2 AND currency = ?3",
        params![kind, owner, cur],
        |r| r.get(0),
    )
    .map_err(db)
}

/// Writes one movement: entries that sum to zero.
fn movement(
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
    tx.execute(
        "INSERT INTO movements (kind, reference, at) VALUES (?1, ?2, ?3)",
        params![kind, reference, at.0],
    )
    .map_err(db)?;
    let m = tx.last_insert_rowid();
    for (akind, owner, amount) in entries {
        if *amount == 0 {
            continue;
        }
        let a = account(tx, akind, owner, cur)?;
        tx.execute(
            "INSERT INTO entries (movement, account, amount) VALUES (?1, ?2, ?3)",
            params![m, a, amount],
        )
        .map_err(db)?;
        tx.execute(
            "UPDATE accounts SET balance = balance + ?2 WHERE id = ?1",
            params![a, amount],
        )
        .map_err(db)?;
    }
    Ok(())
}

fn balance(tx: &Connection, kind: &str, owner: &str, cur: &str) -> Result<i64, Failure> {
    Ok(tx
        .query_row(
            "SELECT balance FROM accounts WHERE kind = ?1 AND owner = ?2 AND currency = ?3",
            params![kind, owner, cur],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?
        .unwrap_or(0))
}

fn instrument_row(tx: &Connection, id: &str) -> Result<Option<InstrumentRow>, Failure> {
    let row: Option<(Vec<u8>, String, Option<String>)> = tx
        .query_row(
            "SELECT credential_hash, currency, label FROM instruments WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
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

fn kind_name(k: FraudKind) -> &'static str {
    match k {
        FraudKind::SameSequence => "same-sequence",
        FraudKind::BrokenLink => "broken-link",
        FraudKind::CumulativeMismatch => "cumulative-mismatch",
    }
}

fn voucher_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<api::VoucherState> {
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

const VOUCHER_STATE: &str = "SELECT voucher_id, instrument, currency, limit_minor, \
    credited_minor, fraud, released_minor, not_after FROM vouchers";

/// Settlement's reads inside a SQLite transaction.
struct Reader<'a>(&'a Connection);

impl StateReader for Reader<'_> {
    fn voucher(&mut self, id: &VoucherId) -> Result<Option<StoredVoucher>, Failure> {
        let row = self
            .0
            .prepare_cached(
                "SELECT currency, limit_minor, not_before, not_after, credited_minor, fraud,
                 released_minor, voucher FROM vouchers WHERE voucher_id = ?1",
            )
            .map_err(db)?
            .query_row([&id.0[..]], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<Vec<u8>>>(7)?,
                ))
            })
            .optional()
            .map_err(db)?;
        let Some((cur, limit, nb, na, credited, fraud, released, bytes)) = row else {
            return Ok(None);
        };
        let limit = unsigned(limit);
        let credited = unsigned(credited);
        Ok(Some((
            VoucherSummary {
                id: *id,
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
        )))
    }

    fn payment(&mut self, id: &PaymentId) -> Result<Option<StoredPayment>, Failure> {
        self.0
            .prepare_cached("SELECT bytes, credited FROM payments WHERE payment_id = ?1")
            .map_err(db)?
            .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(db)
    }

    fn payments_at(
        &mut self,
        voucher: &VoucherId,
        seq: u32,
    ) -> Result<Vec<StoredPayment>, Failure> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT bytes, credited FROM payments WHERE voucher_id = ?1 AND seq = ?2
                 ORDER BY rowid",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![&voucher.0[..], seq], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    fn receipts_of(
        &mut self,
        payment: &PaymentId,
    ) -> Result<Vec<(RecordId, MerchantId, Timestamp)>, Failure> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT record_id, merchant_id, accepted_at FROM receipts WHERE payment_id = ?1",
            )
            .map_err(db)?;
        let rows = st
            .query_map([&payment.0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (rid, mid, at) = row.map_err(db)?;
            out.push((RecordId(arr(rid)?), MerchantId(arr(mid)?), Timestamp(at)));
        }
        Ok(out)
    }

    fn has_record(&mut self, record: &RecordId) -> Result<bool, Failure> {
        self.0
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM receipts WHERE record_id = ?1)")
            .map_err(db)?
            .query_row([&record.0[..]], |r| r.get(0))
            .map_err(db)
    }

    fn merchant_key(&mut self, id: &MerchantId) -> Result<Option<PublicKey>, Failure> {
        let key: Option<Vec<u8>> = self
            .0
            .prepare_cached("SELECT public_key FROM merchants WHERE merchant_id = ?1")
            .map_err(db)?
            .query_row([&id.0[..]], |r| r.get(0))
            .optional()
            .map_err(db)?;
        key.map(|k| arr(k).map(PublicKey)).transpose()
    }

    fn proven_with(&mut self, payment: &PaymentId) -> Result<Vec<(PaymentId, PaymentId)>, Failure> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT first_payment, second_payment FROM fraud_proofs
                 WHERE first_payment = ?1 OR second_payment = ?1",
            )
            .map_err(db)?;
        let rows = st
            .query_map([&payment.0[..]], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (a, b) = row.map_err(db)?;
            out.push((PaymentId(arr(a)?), PaymentId(arr(b)?)));
        }
        Ok(out)
    }
}

/// Writes one change of settlement, with the money it moves.
fn apply(tx: &Connection, c: &Change, batch: i64, now: Timestamp) -> Result<(), Failure> {
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
                 batch, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db)?
            .execute(params![
                &id.0[..],
                &voucher.0[..],
                seq,
                &merchant.0[..],
                minor(amount.0)?,
                batch,
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
            let instrument: Option<String> = tx
                .query_row(
                    "SELECT instrument FROM vouchers WHERE voucher_id = ?1",
                    [&voucher.0[..]],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?
                .flatten();
            let amount = minor(amount.0)?;
            let over = minor(overspend.0)?;
            let m = hex::encode(merchant.0);
            let cur = currency.as_str();
            let entries: Vec<(&str, &str, i64)> = match &instrument {
                Some(i) => vec![
                    ("reserved", i.as_str(), -(amount - over)),
                    ("owed", i.as_str(), -over),
                    ("merchant", m.as_str(), amount),
                ],
                None => vec![("suspense", "", -amount), ("merchant", m.as_str(), amount)],
            };
            movement(tx, "credit", &payment.0, now, cur, &entries)?;
        }
        Change::Proof {
            voucher,
            kind,
            first,
            second,
            bytes,
        } => {
            tx.execute(
                "INSERT OR IGNORE INTO fraud_proofs (first_payment, second_payment, voucher_id,
                 kind, found_at, proof) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    &first.0[..],
                    &second.0[..],
                    &voucher.0[..],
                    kind_name(*kind),
                    now.0,
                    bytes
                ],
            )
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
        self.with(|tx| {
            tx.execute(
                "INSERT INTO instruments (id, credential_hash, currency, label, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, &credential_hash[..], currency.as_str(), label, now.0],
            )
            .map_err(db)?;
            instrument_row(tx, id)?
                .map(|r| r.instrument)
                .ok_or_else(|| Failure::storage("the instrument just created is missing"))
        })
    }

    fn instrument(&self, id: &str) -> Result<Option<InstrumentRow>, Failure> {
        self.read(|c| instrument_row(c, id))
    }

    fn fund(&self, id: &str, amount: Amount, now: Timestamp) -> Result<api::Instrument, Failure> {
        self.with(|tx| {
            let row = instrument_row(tx, id)?
                .ok_or_else(|| Failure::api(api::ApiError::NotFound, "no such instrument"))?;
            let x = minor(amount.0)?;
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
                id.as_bytes(),
                now,
                &cur,
                &[("funding", id, -x), ("available", id, x)],
            )?;
            instrument_row(tx, id)?
                .map(|r| r.instrument)
                .ok_or_else(|| Failure::storage("the instrument vanished"))
        })
    }

    fn preauthorize(&self, p: &PreAuth<'_>, sign: SignVoucher<'_>) -> Result<Vec<u8>, Failure> {
        self.with(|tx| {
            let known: Option<(Vec<u8>, Option<Vec<u8>>)> = tx
                .query_row(
                    "SELECT p.request_hash, v.voucher FROM preauthorizations p
                     JOIN vouchers v ON v.voucher_id = p.voucher_id
                     WHERE p.holder_key = ?1 AND p.client_nonce = ?2",
                    params![&p.holder_key.0[..], &p.client_nonce.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
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
            if balance(tx, "available", p.instrument, cur)? < x {
                return Err(offpay_protocol::Rejection::InsufficientFunds.into());
            }
            let voucher = sign()?;
            let v = decode_signed::<Voucher>(&voucher)?;
            tx.execute(
                "INSERT INTO vouchers (voucher_id, instrument, currency, limit_minor, not_before,
                 not_after, issued_at, voucher) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    &v.id.0[..],
                    p.instrument,
                    cur,
                    minor(v.limit.0)?,
                    v.not_before.0,
                    v.not_after.0,
                    p.now.0,
                    &voucher
                ],
            )
            .map_err(db)?;
            tx.execute(
                "INSERT INTO preauthorizations (holder_key, client_nonce, request_hash, voucher_id)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    &p.holder_key.0[..],
                    &p.client_nonce.0[..],
                    &p.request_hash[..],
                    &v.id.0[..]
                ],
            )
            .map_err(db)?;
            movement(
                tx,
                "reservation",
                &v.id.0,
                p.now,
                cur,
                &[
                    ("available", p.instrument, -x),
                    ("reserved", p.instrument, x),
                ],
            )?;
            Ok(voucher)
        })
    }

    fn add_merchant(&self, certificate: &[u8], now: Timestamp) -> Result<(), Failure> {
        let c = decode_signed::<MerchantCertificate<'_>>(certificate)?;
        self.with(|tx| {
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
                        certificate
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

    fn sync(&self, batch: &[u8], now: Timestamp, settle: Settle<'_>) -> Result<Synced, Failure> {
        self.with(|tx| {
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
                    &sha256(batch)[..],
                    now.0,
                    ingested.entries.len(),
                    new_records
                ],
            )
            .map_err(db)?;
            let id = tx.last_insert_rowid();
            for c in &ingested.changes {
                apply(tx, c, id, now)?;
            }
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
        close: Close<'_>,
    ) -> Result<Vec<api::VoucherState>, Failure> {
        self.with(|tx| {
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
            let mut open = Vec::new();
            for id in ids {
                let vid = VoucherId(arr(id)?);
                if let Some((v, _)) = Reader(tx).voucher(&vid)? {
                    open.push(v);
                }
            }
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
        sign: SignList<'_>,
    ) -> Result<Vec<u8>, Failure> {
        self.with(|tx| {
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
