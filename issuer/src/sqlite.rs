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
    CREATE INDEX movements_by_reference ON movements(kind, reference);
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
        position BLOB NOT NULL,
        bytes BLOB NOT NULL
    );
    CREATE INDEX payments_by_position ON payments(position);
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
    // 2: a payment may have several receipts (SPEC §8.3: a receipt is known by its bytes, and
    // any one that qualifies credits its payment, whatever order they arrive in).
    "CREATE TABLE receipts_2 (
        record_id BLOB PRIMARY KEY,
        payment_id BLOB NOT NULL,
        merchant_id BLOB NOT NULL,
        accepted_at INTEGER NOT NULL,
        batch INTEGER NOT NULL REFERENCES sync_batches(id),
        bytes BLOB NOT NULL
    );
    INSERT INTO receipts_2 SELECT record_id, payment_id, merchant_id, accepted_at, batch, bytes
        FROM receipts;
    DROP TABLE receipts;
    ALTER TABLE receipts_2 RENAME TO receipts;
    CREATE INDEX receipts_by_payment ON receipts(payment_id);",
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

/// What the writer tells an operation once its group's commit is done.
type Done = Box<dyn FnOnce(Result<(), Failure>) + Send>;
/// An operation for the writer: runs inside the group's transaction, returns how to answer.
type Job = Box<dyn FnOnce(&Connection) -> Done + Send>;

/// The SQLite ledger.
pub struct SqliteStorage {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    reader: Mutex<Connection>,
}

fn connect(path: &Path) -> Result<Connection, Failure> {
    let conn = Connection::open(path).map_err(db)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )
    .map_err(db)?;
    conn.set_prepared_statement_cache_capacity(64);
    rusqlite::vtab::array::load_module(&conn).map_err(db)?;
    Ok(conn)
}

/// The writer: group commits until every sender is gone.
fn write_loop(conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        if conn.execute_batch("BEGIN IMMEDIATE").is_err() {
            // Dropped unrun: each caller is told the ledger failed, and nothing changed.
            drop(group);
            continue;
        }
        let done: Vec<Done> = group.into_iter().map(|job| job(&conn)).collect();
        let committed = conn.execute_batch("COMMIT").map_err(db);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for d in done {
            d(committed.clone());
        }
    }
}

impl SqliteStorage {
    /// Opens (creating and migrating) the ledger at `path`. Opening reads nothing but the
    /// schema version: no history is replayed.
    pub fn open(path: &Path) -> Result<Self, Failure> {
        let mut conn = connect(path)?;
        migrate(&mut conn)?;
        let reader = connect(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = std::thread::Builder::new()
            .name("offpay-ledger-writer".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(Failure::storage)?;
        Ok(SqliteStorage {
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(reader),
        })
    }

    /// Runs `f` as one operation of the writer's next group: its changes are committed (or
    /// not at all) before the answer is returned.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let (answer, wait) = mpsc::sync_channel::<Result<T, Failure>>(1);
        let job: Job = Box::new(move |conn: &Connection| -> Done {
            let run = |sql: &str| -> Result<(), Failure> {
                conn.prepare_cached(sql)
                    .map_err(db)?
                    .execute([])
                    .map_err(db)?;
                Ok(())
            };
            let result = match run("SAVEPOINT operation") {
                Err(e) => Err(e),
                Ok(()) => {
                    let r = f(conn);
                    let end = if r.is_ok() {
                        run("RELEASE operation")
                    } else {
                        run("ROLLBACK TO operation").and_then(|()| run("RELEASE operation"))
                    };
                    end.and(r)
                }
            };
            Box::new(move |committed: Result<(), Failure>| {
                let _ = answer.send(committed.and(result));
            })
        });
        let sent = self
            .jobs
            .lock()
            .map_err(|_| Failure::storage("the ledger's writer lock is poisoned"))?
            .as_ref()
            .map(|s| s.send(job).is_ok());
        if sent != Some(true) {
            return Err(Failure::storage("the ledger's writer has stopped"));
        }
        wait.recv()
            .map_err(|_| Failure::storage("the ledger's writer has stopped"))?
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Failure>) -> Result<T, Failure> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| Failure::storage("a previous ledger call panicked"))?;
        f(&conn)
    }
}

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        if let Ok(mut j) = self.jobs.lock() {
            j.take();
        }
        if let Ok(mut w) = self.writer.lock()
            && let Some(w) = w.take()
        {
            let _ = w.join();
        }
    }
}

/// Adds `amount` to an account (created at zero when first used); its id.
fn post(tx: &Connection, kind: &str, owner: &str, cur: &str, amount: i64) -> Result<i64, Failure> {
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

fn balance(tx: &Connection, kind: &str, owner: &str, cur: &str) -> Result<i64, Failure> {
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

fn instrument_row(tx: &Connection, id: &str) -> Result<Option<InstrumentRow>, Failure> {
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

/// Settlement's reads inside a SQLite transaction, each a query over an `rarray` of ids.
struct Reader<'a>(&'a Connection);

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
struct Credits {
    currency: Option<Currency>,
    merchants: BTreeMap<MerchantId, i64>,
    overspend: i64,
}

/// Writes one change of settlement; credits are gathered per voucher in `credits`.
fn apply(
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
fn post_credits(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A ledger written by schema 1 opens under this build: migrated, its rows kept; a ledger
    /// from a newer build is refused and left as it was.
    #[test]
    fn migrations_keep_rows_and_newer_schemas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute_batch(
                "INSERT INTO sync_batches VALUES (1, x'00', 0, 1, 1);
                 INSERT INTO receipts VALUES (x'01', x'02', x'03', 7, 1, x'04');",
            )
            .unwrap();
        }
        drop(SqliteStorage::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // The receipt survived, and a second receipt for the same payment and merchant now
        // fits (schema 2).
        c.execute_batch("INSERT INTO receipts VALUES (x'05', x'02', x'03', 8, 1, x'06');")
            .unwrap();
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM receipts WHERE payment_id = x'02'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        let e = SqliteStorage::open(&path).err().unwrap();
        assert!(e.to_string().contains("newer"), "{e}");
        let c = Connection::open(&path).unwrap();
        let v: u32 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 1);
    }
}
