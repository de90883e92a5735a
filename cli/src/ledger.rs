//! The issuer's ledger in SQLite.
//!
//! Settlement's rules live in one place, `offpay_protocol::Settlement`; this module makes its
//! outcome durable and queryable. Every record settlement accepted (a payment or a receipt) is
//! stored with the sync batch it came in and that batch's time; opening the ledger replays them
//! in order through a fresh `Settlement`, which reaches the same state because settlement is a
//! deterministic function of the records, their order and their times. Beside the records, the
//! tables a back office queries (merchants, vouchers, payments, receipts, fraud proofs, credits,
//! revocations, sync batches) are written in the same transaction as the batch, so they never
//! disagree with it. Ingesting a batch is one transaction: a crash or an error leaves the ledger
//! as it was, and ingesting the same records again changes nothing (payment ids are unique).

use crate::data::{Trust, show_merchant};
use crate::fail::{Doing, Failure, Result};
use offpay_protocol::codec::{Message as _, decode_unsigned};
use offpay_protocol::crypto::sha256;
use offpay_protocol::msg::sync::ItemsWriter;
use offpay_protocol::msg::{
    FraudProof, MerchantCertificate, Outcome, Payment, Receipt, SyncBatch, Voucher,
};
use offpay_protocol::{
    Currency, DEFAULT_GRACE_SECS, Issuer, MerchantId, MessageType, Settlement, Timestamp,
    VoucherId, decode_signed,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// The schema, one migration per step; `PRAGMA user_version` says how many were applied.
/// Never edit a migration that shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger.
    "CREATE TABLE merchants (
        merchant_id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        certified_at INTEGER NOT NULL,
        certificate BLOB NOT NULL
    );
    CREATE TABLE vouchers (
        voucher_id TEXT PRIMARY KEY,
        holder_key TEXT NOT NULL,
        currency TEXT NOT NULL,
        limit_minor INTEGER NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        max_single_minor INTEGER NOT NULL,
        max_payments INTEGER NOT NULL,
        instrument TEXT,
        issued_at INTEGER,
        voucher BLOB NOT NULL,
        credited_minor INTEGER NOT NULL DEFAULT 0,
        overspend_minor INTEGER NOT NULL DEFAULT 0,
        fraud INTEGER NOT NULL DEFAULT 0,
        released_minor INTEGER
    );
    CREATE TABLE sync_batches (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id TEXT NOT NULL,
        source TEXT NOT NULL,
        ingested_at INTEGER NOT NULL,
        records INTEGER NOT NULL,
        new_records INTEGER NOT NULL,
        rejected INTEGER NOT NULL
    );
    CREATE TABLE records (
        record_id TEXT PRIMARY KEY,
        batch_seq INTEGER NOT NULL REFERENCES sync_batches(seq),
        kind TEXT NOT NULL CHECK (kind IN ('payment', 'receipt')),
        bytes BLOB NOT NULL
    );
    CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY,
        voucher_id TEXT NOT NULL REFERENCES vouchers(voucher_id),
        seq INTEGER NOT NULL,
        merchant_id TEXT NOT NULL,
        amount_minor INTEGER NOT NULL,
        currency TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        credited INTEGER NOT NULL DEFAULT 0,
        batch_seq INTEGER NOT NULL REFERENCES sync_batches(seq)
    );
    CREATE TABLE receipts (
        payment_id TEXT NOT NULL,
        merchant_id TEXT NOT NULL,
        accepted_at INTEGER NOT NULL,
        batch_seq INTEGER NOT NULL REFERENCES sync_batches(seq),
        PRIMARY KEY (payment_id, merchant_id)
    );
    CREATE TABLE fraud_proofs (
        proof_id TEXT PRIMARY KEY,
        voucher_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        first_payment TEXT NOT NULL,
        second_payment TEXT NOT NULL,
        found_at INTEGER NOT NULL,
        proof BLOB NOT NULL
    );
    CREATE TABLE credits (
        merchant_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        amount_minor INTEGER NOT NULL,
        PRIMARY KEY (merchant_id, currency)
    );",
    // 2: revocations, and the lookups the report makes.
    "CREATE TABLE revocations (
        kind TEXT NOT NULL CHECK (kind IN ('voucher', 'merchant')),
        id TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE TABLE revocation_lists (
        serial INTEGER PRIMARY KEY,
        issued_at INTEGER NOT NULL,
        list BLOB NOT NULL
    );
    CREATE INDEX payments_by_voucher ON payments(voucher_id);
    CREATE INDEX payments_by_merchant ON payments(merchant_id);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The issuer's ledger.
pub struct Ledger {
    conn: Connection,
    issuer: Issuer,
    settlement: Settlement<{ crate::data::TRUST_KEYS }>,
}

/// What one sync did.
pub struct Synced {
    /// The signed report for the device.
    pub report: Vec<u8>,
    /// Records in the batch.
    pub records: usize,
    /// Records settlement had not seen before.
    pub new: usize,
    /// Records already known.
    pub duplicates: usize,
    /// Records refused, with their SPEC codes.
    pub rejected: Vec<u16>,
    /// Payments credited by this batch.
    pub credited: usize,
    /// FraudProofs this batch revealed.
    pub proofs: usize,
}

fn sql(what: &str) -> impl FnOnce(rusqlite::Error) -> Failure + '_ {
    move |e| {
        Failure::new(
            format!("{what}: the issuer ledger failed: {e}"),
            "nothing was changed; check the ledger file and try again",
        )
    }
}

/// Applies the migrations `conn` lacks, each in its own transaction. Returns the version.
pub fn migrate(conn: &mut Connection) -> Result<usize> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql("reading the ledger schema"))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(Failure::new(
            format!(
                "the issuer ledger has schema version {version}, newer than this offpay knows ({})",
                MIGRATIONS.len()
            ),
            "upgrade offpay",
        ));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(sql("migrating the ledger"))?;
        tx.execute_batch(m).map_err(sql("migrating the ledger"))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(sql("migrating the ledger"))?;
        tx.commit().map_err(sql("migrating the ledger"))?;
    }
    Ok(SCHEMA_VERSION)
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sql("opening the ledger"))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
        .map_err(sql("opening the ledger"))?;
    Ok(conn)
}

/// An amount in minor units as SQLite stores it (a signed 64-bit integer). Every amount this
/// issuer signs is at most `i64::MAX` (the CLI refuses larger ones), so this refuses only
/// sums no real ledger reaches.
fn minor(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| {
        Failure::new(
            format!("an amount of {v} minor units is larger than the ledger stores"),
            "nothing was changed; this amount cannot be settled by this ledger",
        )
    })
}

fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn kind_name(k: offpay_protocol::msg::FraudKind) -> &'static str {
    use offpay_protocol::msg::FraudKind as K;
    match k {
        K::SameSequence => "same-sequence",
        K::BrokenLink => "broken-link",
        K::CumulativeMismatch => "cumulative-mismatch",
    }
}

impl Ledger {
    /// Creates a new ledger at `path`.
    pub fn create(path: &Path, issuer: Issuer, trust: Trust) -> Result<Self> {
        if path.exists() {
            return Err(Failure::new(
                format!("{} already exists", path.display()),
                "use the existing issuer",
            ));
        }
        let mut conn = connect(path)?;
        migrate(&mut conn)?;
        Ok(Ledger {
            conn,
            issuer,
            settlement: Settlement::new(trust, DEFAULT_GRACE_SECS),
        })
    }

    /// Opens the ledger at `path`, migrating it, and rebuilds settlement from its records.
    pub fn open(path: &Path, issuer: Issuer, trust: Trust) -> Result<Self> {
        if !path.exists() {
            return Err(Failure::new(
                format!("no issuer ledger at {}", path.display()),
                "run `offpay issuer init` first",
            ));
        }
        let mut conn = connect(path)?;
        migrate(&mut conn)?;
        let mut settlement = Settlement::new(trust, DEFAULT_GRACE_SECS);
        let replay = "replaying the ledger";
        {
            let mut st = conn
                .prepare("SELECT certificate FROM merchants ORDER BY rowid")
                .map_err(sql(replay))?;
            let certs = st
                .query_map([], |r| r.get::<_, Vec<u8>>(0))
                .map_err(sql(replay))?;
            for c in certs {
                settlement
                    .register_merchant(&c.map_err(sql(replay))?)
                    .doing(replay)?;
            }
            let mut st = conn
                .prepare(
                    "SELECT b.seq, b.ingested_at, r.bytes FROM records r
                     JOIN sync_batches b ON r.batch_seq = b.seq ORDER BY b.seq, r.rowid",
                )
                .map_err(sql(replay))?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .map_err(sql(replay))?;
            let mut group: Vec<Vec<u8>> = Vec::new();
            let mut current: Option<(i64, u32)> = None;
            for row in rows {
                let (seq, at, bytes) = row.map_err(sql(replay))?;
                if let Some((s, t)) = current
                    && s != seq
                {
                    replay_group(&mut settlement, &group, Timestamp(t))?;
                    group.clear();
                }
                current = Some((seq, at));
                group.push(bytes);
            }
            if let Some((_, t)) = current {
                replay_group(&mut settlement, &group, Timestamp(t))?;
            }
        }
        Ok(Ledger {
            conn,
            issuer,
            settlement,
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Settlement's state, as rebuilt from the ledger and updated by each ingest.
    pub fn settlement(&self) -> &Settlement<{ crate::data::TRUST_KEYS }> {
        &self.settlement
    }

    /// The connection, for queries.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Records a merchant certificate the issuer just signed.
    pub fn add_merchant(&mut self, certificate: &[u8], now: Timestamp) -> Result<()> {
        let what = "registering the merchant";
        let c = decode_signed::<MerchantCertificate<'_>>(certificate).doing(what)?;
        let id = show_merchant(&c.merchant_id);
        let known: Option<String> = self
            .conn
            .query_row(
                "SELECT display_name FROM merchants WHERE merchant_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(what))?;
        if let Some(name) = known {
            return Err(Failure::new(
                format!("merchant {id} is already certified (as \"{name}\")"),
                "choose another merchant id",
            ));
        }
        self.settlement.register_merchant(certificate).doing(what)?;
        self.conn
            .execute(
                "INSERT INTO merchants (merchant_id, display_name, public_key, not_before,
                 not_after, certified_at, certificate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    c.display_name,
                    h(&c.merchant_key.0),
                    c.not_before.0,
                    c.not_after.0,
                    now.0,
                    certificate
                ],
            )
            .map_err(sql(what))?;
        Ok(())
    }

    /// Records a voucher the issuer just signed.
    pub fn add_voucher(&mut self, voucher: &[u8], instrument: &str, now: Timestamp) -> Result<()> {
        insert_voucher(&self.conn, voucher, Some((instrument, now)))
    }

    /// Ingests one sync batch from `source` at `now`, in one transaction. On any failure the
    /// ledger, on disk and in memory, is as it was before.
    pub fn ingest(&mut self, batch: &[u8], source: &str, now: Timestamp) -> Result<Synced> {
        let saved = self.settlement.clone();
        let result = self.ingest_inner(batch, source, now);
        if result.is_err() {
            self.settlement = saved;
        }
        result
    }

    fn ingest_inner(&mut self, batch: &[u8], source: &str, now: Timestamp) -> Result<Synced> {
        let what = "settling the sync batch";
        let records: Vec<Vec<u8>> = decode_unsigned::<SyncBatch<'_>>(batch)
            .map_err(offpay_protocol::Error::from)
            .doing(what)?
            .records()
            .map(<[u8]>::to_vec)
            .collect();
        let ingested = self.settlement.ingest(batch, now).doing(what)?;
        let report = ingested.report(&self.issuer, now).doing(what)?;
        let mut synced = Synced {
            report,
            records: records.len(),
            new: 0,
            duplicates: 0,
            rejected: Vec::new(),
            credited: 0,
            proofs: ingested.proofs.len(),
        };
        let mut credited = std::collections::BTreeSet::new();
        for (bytes, e) in records.iter().zip(&ingested.entries) {
            match e.outcome {
                Outcome::Credited => {
                    synced.new += 1;
                    // A payment and its receipt both say "credited": count the payment once.
                    credited.insert(match decode_signed::<Receipt>(bytes) {
                        Ok(r) => r.payment_id.0,
                        Err(_) => e.record.0,
                    });
                }
                Outcome::Pending | Outcome::Conflict => synced.new += 1,
                Outcome::Duplicate => synced.duplicates += 1,
                Outcome::Rejected(code) => synced.rejected.push(code),
            }
        }
        synced.credited = credited.len();
        if synced.new == 0 {
            // Nothing settlement had not seen: nothing to store, the ledger stays as it is.
            return Ok(synced);
        }
        let tx = self.conn.transaction().map_err(sql(what))?;
        tx.execute(
            "INSERT INTO sync_batches (batch_id, source, ingested_at, records, new_records,
             rejected) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                h(&ingested.batch_id),
                source,
                now.0,
                synced.records,
                synced.new,
                synced.rejected.len()
            ],
        )
        .map_err(sql(what))?;
        let batch_seq = tx.last_insert_rowid();
        for (bytes, e) in records.iter().zip(&ingested.entries) {
            if !matches!(
                e.outcome,
                Outcome::Credited | Outcome::Pending | Outcome::Conflict
            ) {
                continue;
            }
            let rid = h(&e.record.0);
            match MessageType::of(bytes) {
                Ok(MessageType::Payment) => {
                    let p = decode_signed::<Payment<'_>>(bytes).doing(what)?;
                    insert_voucher(&tx, p.voucher.bytes(), None)?;
                    tx.execute(
                        "INSERT INTO payments (payment_id, voucher_id, seq, merchant_id,
                         amount_minor, currency, created_at, batch_seq)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            rid,
                            h(&p.voucher.id.0),
                            p.seq,
                            show_merchant(&p.merchant_id),
                            minor(p.amount.0)?,
                            p.voucher.currency.as_str(),
                            p.created_at.0,
                            batch_seq
                        ],
                    )
                    .map_err(sql(what))?;
                    tx.execute(
                        "INSERT INTO records (record_id, batch_seq, kind, bytes)
                         VALUES (?1, ?2, 'payment', ?3)",
                        params![rid, batch_seq, bytes],
                    )
                    .map_err(sql(what))?;
                }
                Ok(MessageType::Receipt) => {
                    let r = decode_signed::<Receipt>(bytes).doing(what)?;
                    tx.execute(
                        "INSERT INTO receipts (payment_id, merchant_id, accepted_at, batch_seq)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![
                            h(&r.payment_id.0),
                            show_merchant(&r.merchant_id),
                            r.accepted_at.0,
                            batch_seq
                        ],
                    )
                    .map_err(sql(what))?;
                    tx.execute(
                        "INSERT INTO records (record_id, batch_seq, kind, bytes)
                         VALUES (?1, ?2, 'receipt', ?3)",
                        params![rid, batch_seq, bytes],
                    )
                    .map_err(sql(what))?;
                }
                _ => {}
            }
        }
        for proof in &ingested.proofs {
            let p = decode_unsigned::<FraudProof<'_>>(proof)
                .map_err(offpay_protocol::Error::from)
                .doing(what)?;
            tx.execute(
                "INSERT OR IGNORE INTO fraud_proofs (proof_id, voucher_id, kind, first_payment,
                 second_payment, found_at, proof) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    h(&sha256(proof)),
                    h(&p.first.voucher.id.0),
                    kind_name(p.kind),
                    h(&p.first.id().0),
                    h(&p.second.id().0),
                    now.0,
                    proof
                ],
            )
            .map_err(sql(what))?;
        }
        write_derived(&tx, &self.settlement)?;
        tx.commit().map_err(sql(what))?;
        Ok(synced)
    }

    /// Closes every voucher whose settlement window (its `not_after` plus the grace period)
    /// ended before `now`, spent or not: what was not credited is released to the holder's
    /// instrument, and recorded once. After the window settlement credits nothing more on the
    /// voucher (SPEC §8.3), so the released amount is final. Returns how many were closed.
    pub fn close_expired(&mut self, now: Timestamp) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE vouchers SET released_minor = MAX(limit_minor - credited_minor, 0)
                 WHERE released_minor IS NULL AND not_after + ?1 < ?2",
                params![DEFAULT_GRACE_SECS, now.0],
            )
            .map_err(sql("closing vouchers"))
    }

    /// The name of a certified merchant, if it is one.
    pub fn merchant_name(&self, id: &MerchantId) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT display_name FROM merchants WHERE merchant_id = ?1",
                [show_merchant(id)],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading the ledger"))
    }

    /// Whether this issuer issued (or settled a payment on) a voucher.
    pub fn knows_voucher(&self, id: &VoucherId) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM vouchers WHERE voucher_id = ?1)",
                [h(&id.0)],
                |r| r.get(0),
            )
            .map_err(sql("reading the ledger"))
    }

    /// Revokes a voucher or a merchant and signs the next revocation list; returns it.
    pub fn revoke(
        &mut self,
        voucher: Option<VoucherId>,
        merchant: Option<MerchantId>,
        now: Timestamp,
    ) -> Result<Vec<u8>> {
        let what = "revoking";
        let tx = self.conn.transaction().map_err(sql(what))?;
        if let Some(v) = voucher {
            tx.execute(
                "INSERT OR IGNORE INTO revocations (kind, id, revoked_at) VALUES ('voucher', ?1, ?2)",
                params![h(&v.0), now.0],
            )
            .map_err(sql(what))?;
        }
        if let Some(m) = merchant {
            tx.execute(
                "INSERT OR IGNORE INTO revocations (kind, id, revoked_at) VALUES ('merchant', ?1, ?2)",
                params![h(&m.0), now.0],
            )
            .map_err(sql(what))?;
        }
        let ids = |kind: &str| -> Result<Vec<String>> {
            let mut st = tx
                .prepare("SELECT id FROM revocations WHERE kind = ?1")
                .map_err(sql(what))?;
            let rows = st
                .query_map([kind], |r| r.get::<_, String>(0))
                .map_err(sql(what))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql(what))
        };
        let vouchers: Vec<VoucherId> = ids("voucher")?
            .iter()
            .filter_map(|s| hex::decode(s).ok()?.try_into().ok().map(VoucherId))
            .collect();
        let merchants: Vec<MerchantId> = ids("merchant")?
            .iter()
            .filter_map(|s| hex::decode(s).ok()?.try_into().ok().map(MerchantId))
            .collect();
        let serial: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(serial), 0) + 1 FROM revocation_lists",
                [],
                |r| r.get(0),
            )
            .map_err(sql(what))?;
        let list = self
            .issuer
            .revocation_list(serial as u64, now, &vouchers, &merchants)
            .doing(what)?;
        tx.execute(
            "INSERT INTO revocation_lists (serial, issued_at, list) VALUES (?1, ?2, ?3)",
            params![serial, now.0, list],
        )
        .map_err(sql(what))?;
        tx.commit().map_err(sql(what))?;
        Ok(list)
    }

    /// The newest revocation list, if any was published.
    pub fn revocation_list(&self) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT list FROM revocation_lists ORDER BY serial DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading the revocation list"))
    }
}

/// Replays one stored batch's records; each must be accepted again, as it was the first time.
fn replay_group(
    settlement: &mut Settlement<{ crate::data::TRUST_KEYS }>,
    group: &[Vec<u8>],
    at: Timestamp,
) -> Result<()> {
    let what = "replaying the ledger";
    let len = 16 + group.iter().map(|r| r.len() + 4).sum::<usize>();
    let mut buf = vec![0u8; len];
    let mut w = ItemsWriter::sync_batch(&mut buf, group.len())
        .map_err(offpay_protocol::Error::from)
        .doing(what)?;
    for r in group {
        w.push(r)
            .map_err(offpay_protocol::Error::from)
            .doing(what)?;
    }
    let n = w
        .finish()
        .map_err(offpay_protocol::Error::from)
        .doing(what)?;
    let ingested = settlement.ingest(&buf[..n], at).doing(what)?;
    if ingested
        .entries
        .iter()
        .any(|e| matches!(e.outcome, Outcome::Rejected(_) | Outcome::Duplicate))
    {
        return Err(Failure::new(
            "the issuer ledger's records do not replay to the state they were stored with",
            "the ledger was edited by hand or is damaged; restore it from a backup",
        ));
    }
    Ok(())
}

fn insert_voucher(
    conn: &Connection,
    voucher: &[u8],
    issued: Option<(&str, Timestamp)>,
) -> Result<()> {
    let what = "recording the voucher";
    let v = decode_signed::<Voucher>(voucher).doing(what)?;
    conn.execute(
        "INSERT OR IGNORE INTO vouchers (voucher_id, holder_key, currency, limit_minor,
         not_before, not_after, max_single_minor, max_payments, instrument, issued_at, voucher)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            h(&v.id.0),
            h(&v.holder_key.0),
            v.currency.as_str(),
            minor(v.limit.0)?,
            v.not_before.0,
            v.not_after.0,
            minor(v.policy.max_single.0)?,
            v.policy.max_payments,
            issued.map(|(i, _)| i),
            issued.map(|(_, t)| t.0),
            voucher
        ],
    )
    .map_err(sql(what))?;
    Ok(())
}

/// Rewrites the tables derived from settlement's state: credited flags, voucher totals,
/// merchant credits.
fn write_derived(conn: &Connection, s: &Settlement<{ crate::data::TRUST_KEYS }>) -> Result<()> {
    let what = "updating the ledger";
    let uncredited: Vec<String> = {
        let mut st = conn
            .prepare("SELECT payment_id FROM payments WHERE credited = 0")
            .map_err(sql(what))?;
        st.query_map([], |r| r.get::<_, String>(0))
            .map_err(sql(what))?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql(what))?
    };
    for id in uncredited {
        let Some(pid) = hex::decode(&id)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        if s.is_credited(&offpay_protocol::PaymentId(pid)) {
            conn.execute(
                "UPDATE payments SET credited = 1 WHERE payment_id = ?1",
                [&id],
            )
            .map_err(sql(what))?;
        }
    }
    for v in s.vouchers() {
        conn.execute(
            "UPDATE vouchers SET credited_minor = ?2, overspend_minor = ?3, fraud = ?4
             WHERE voucher_id = ?1",
            params![
                h(&v.id.0),
                minor(v.credited.0)?,
                minor(v.overspend.0)?,
                v.fraud
            ],
        )
        .map_err(sql(what))?;
    }
    conn.execute("DELETE FROM credits", []).map_err(sql(what))?;
    for (m, c, a) in s.credits() {
        conn.execute(
            "INSERT INTO credits (merchant_id, currency, amount_minor) VALUES (?1, ?2, ?3)",
            params![show_merchant(&m), c.as_str(), minor(a.0)?],
        )
        .map_err(sql(what))?;
    }
    Ok(())
}

/// An amount stored in minor units with its currency code, formatted for people.
pub fn money(minor: i64, currency: &str) -> String {
    match (Currency::parse(currency), u64::try_from(minor)) {
        (Some(c), Ok(m)) => crate::amount::format(offpay_protocol::Amount(m), c),
        _ => format!("{minor} (minor units) {currency}"),
    }
}

/// The size bound of a sync batch, for buffers.
pub const SYNC_BATCH_MAX: usize = <SyncBatch<'static>>::MAX_LEN;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use offpay_protocol::{
        Acceptor, Amount, Context, MemStore, Nonce, Signer, SigningKey, VoucherTerms, Wallet,
    };
    use rand_core::OsRng;

    const T0: u32 = 1_795_478_400;

    struct World {
        dir: tempfile::TempDir,
        issuer_seed: [u8; 32],
        trust: Trust,
        cert: Vec<u8>,
        batches: Vec<Vec<u8>>,
    }

    fn issuer(seed: &[u8; 32]) -> Issuer {
        Issuer::new(SigningKey::from_seed(seed))
    }

    /// An issuer with one merchant and two payments from one wallet, as the wallet's and the
    /// merchant's sync batches.
    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let issuer_seed = [7u8; 32];
        let iss = issuer(&issuer_seed);
        let mut trust = Trust::new();
        trust
            .add(
                iss.public_key(),
                Timestamp(T0 - 86_400),
                Timestamp(T0 + 365 * 86_400),
            )
            .unwrap();
        let mkey = SigningKey::from_seed(&[9u8; 32]);
        let cert = iss
            .certify_merchant(
                crate::data::merchant_id("SHOP").unwrap(),
                mkey.public_key(),
                "Shop",
                Timestamp(T0),
                Timestamp(T0 + 365 * 86_400),
            )
            .unwrap()
            .to_vec();
        let mut shop: Acceptor<MemStore, SigningKey> =
            Acceptor::open(MemStore::new(), mkey, &cert).unwrap();
        let mut wallet: Wallet<MemStore, SigningKey> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[3u8; 32])).unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let pre = wallet
            .preauth_request(b"card", Amount(1000), eur, Nonce([1; 16]), Timestamp(T0))
            .unwrap();
        let terms = VoucherTerms {
            not_before: Timestamp(T0),
            not_after: Timestamp(T0 + 7 * 86_400),
            max_single: None,
            max_payments: 10,
        };
        let voucher = iss.issue_voucher(&pre, terms, &mut OsRng).unwrap();
        wallet
            .install_voucher(&voucher, &trust, Timestamp(T0))
            .unwrap();
        let ctx = Context {
            trust: &trust,
            revocations: None,
            now: Timestamp(T0 + 10),
        };
        for amount in [300, 200] {
            let req = shop
                .create_request(Amount(amount), eur, None, Timestamp(T0 + 10), &mut OsRng)
                .unwrap();
            let p = wallet.pay(&req, &trust, None, Timestamp(T0 + 10)).unwrap();
            let r = shop.accept(&p, &ctx).unwrap();
            wallet.receive_receipt(&r).unwrap();
        }
        let mut buf = vec![0u8; SYNC_BATCH_MAX];
        let n = wallet.sync_batch(&mut buf).unwrap();
        let w = buf[..n].to_vec();
        let n = shop.sync_batch(&mut buf).unwrap();
        let m = buf[..n].to_vec();
        World {
            dir,
            issuer_seed,
            trust,
            cert,
            batches: vec![w, m],
        }
    }

    fn dump(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for table in [
            "merchants",
            "vouchers",
            "sync_batches",
            "records",
            "payments",
            "receipts",
            "fraud_proofs",
            "credits",
            "revocations",
            "revocation_lists",
        ] {
            let mut st = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
                .unwrap();
            let cols = st.column_count();
            let rows = st
                .query_map([], |r| {
                    let mut line = table.to_string();
                    for i in 0..cols {
                        line.push_str(&format!(" {:?}", r.get_ref(i)?));
                    }
                    Ok(line)
                })
                .unwrap();
            out.extend(rows.map(|r| r.unwrap()));
        }
        out
    }

    #[test]
    fn ingest_is_idempotent_and_survives_a_reopen() {
        let w = world();
        let path = w.dir.path().join("ledger.sqlite");
        let mut l = Ledger::create(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        l.add_merchant(&w.cert, Timestamp(T0)).unwrap();
        let s = l
            .ingest(&w.batches[0], "wallet", Timestamp(T0 + 100))
            .unwrap();
        assert_eq!((s.records, s.new, s.credited), (4, 4, 2));
        let credited: i64 = l
            .conn()
            .query_row(
                "SELECT amount_minor FROM credits WHERE merchant_id = 'SHOP'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(credited, 500);
        let before = dump(l.conn());
        // The same records again, from the merchant: nothing changes.
        let s = l
            .ingest(&w.batches[1], "merchant", Timestamp(T0 + 200))
            .unwrap();
        assert_eq!((s.new, s.duplicates, s.credited), (0, 4, 0));
        let s = l
            .ingest(&w.batches[0], "wallet", Timestamp(T0 + 300))
            .unwrap();
        assert_eq!((s.new, s.duplicates), (0, 4));
        assert_eq!(dump(l.conn()), before);
        drop(l);
        // Reopened, settlement is rebuilt from the records: still no double credit.
        let mut l = Ledger::open(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        let s = l
            .ingest(&w.batches[1], "merchant", Timestamp(T0 + 400))
            .unwrap();
        assert_eq!((s.new, s.duplicates, s.credited), (0, 4, 0));
        assert_eq!(dump(l.conn()), before);
        let paid: i64 = l
            .conn()
            .query_row("SELECT credited_minor FROM vouchers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(paid, 500);
    }

    #[test]
    fn a_failed_ingest_changes_nothing() {
        let w = world();
        let path = w.dir.path().join("ledger.sqlite");
        let mut l = Ledger::create(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        l.add_merchant(&w.cert, Timestamp(T0)).unwrap();
        let before = dump(l.conn());
        // A batch that does not decode is refused whole.
        let mut bad = w.batches[0].clone();
        bad.truncate(bad.len() - 1);
        assert!(l.ingest(&bad, "wallet", Timestamp(T0 + 100)).is_err());
        // A trigger makes the transaction fail half-way, after rows were inserted.
        l.conn()
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON receipts BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let e = l
            .ingest(&w.batches[0], "wallet", Timestamp(T0 + 100))
            .err()
            .unwrap();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(dump(l.conn()), before);
        let batches: i64 = l
            .conn()
            .query_row("SELECT COUNT(*) FROM sync_batches", [], |r| r.get(0))
            .unwrap();
        assert_eq!(batches, 0);
        // The ledger in memory was rolled back too: the same object still credits once.
        l.conn().execute_batch("DROP TRIGGER boom;").unwrap();
        let s = l
            .ingest(&w.batches[0], "wallet", Timestamp(T0 + 100))
            .unwrap();
        assert_eq!((s.new, s.credited), (4, 2));
        let after = dump(l.conn());
        drop(l);
        // Reopened, the state replays to the same tables.
        let mut l = Ledger::open(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        assert_eq!(dump(l.conn()), after);
        let s = l
            .ingest(&w.batches[1], "merchant", Timestamp(T0 + 100))
            .unwrap();
        assert_eq!((s.new, s.credited), (0, 0));
    }

    #[test]
    fn a_failed_ingest_can_be_retried_after_a_reopen() {
        let w = world();
        let path = w.dir.path().join("ledger.sqlite");
        let mut l = Ledger::create(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        l.add_merchant(&w.cert, Timestamp(T0)).unwrap();
        l.conn()
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON receipts BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        assert!(
            l.ingest(&w.batches[0], "wallet", Timestamp(T0 + 100))
                .is_err()
        );
        drop(l);
        // Reopened and retried without the fault, the batch lands whole.
        let l0 = Connection::open(&path).unwrap();
        l0.execute_batch("DROP TRIGGER boom;").unwrap();
        drop(l0);
        let mut l = Ledger::open(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        let s = l
            .ingest(&w.batches[0], "wallet", Timestamp(T0 + 100))
            .unwrap();
        assert_eq!((s.new, s.credited), (4, 2));
    }

    #[test]
    fn migrations_upgrade_an_old_ledger_and_refuse_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO credits (merchant_id, currency, amount_minor) VALUES ('SHOP', 'EUR', 420)",
                [],
            )
            .unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, SCHEMA_VERSION);
        let kept: i64 = conn
            .query_row("SELECT amount_minor FROM credits", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 420);
        conn.execute(
            "INSERT INTO revocations (kind, id, revoked_at) VALUES ('voucher', 'x', 1)",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION as i64 + 1)
            .unwrap();
        let e = migrate(&mut conn).err().unwrap();
        assert!(
            e.to_string().contains("newer than this offpay knows"),
            "{e}"
        );
    }

    #[test]
    fn a_double_spend_is_stored_as_a_fraud_proof_and_the_overspend() {
        let w = world();
        let path = w.dir.path().join("ledger.sqlite");
        let iss = issuer(&w.issuer_seed);
        let mut l = Ledger::create(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        l.add_merchant(&w.cert, Timestamp(T0)).unwrap();
        l.ingest(&w.batches[1], "merchant", Timestamp(T0 + 100))
            .unwrap();
        // A clone of the wallet (same key, same voucher, before its payments) pays again.
        let mkey = SigningKey::from_seed(&[9u8; 32]);
        let mut till: Acceptor<MemStore, SigningKey> =
            Acceptor::open(MemStore::new(), mkey, &w.cert).unwrap();
        let mut clone: Wallet<MemStore, SigningKey> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[3u8; 32])).unwrap();
        let voucher = {
            let b = decode_unsigned::<SyncBatch<'_>>(&w.batches[1]).unwrap();
            let first = b.records().next().unwrap();
            decode_signed::<Payment<'_>>(first)
                .unwrap()
                .voucher
                .bytes()
                .to_vec()
        };
        clone
            .install_voucher(&voucher, &w.trust, Timestamp(T0))
            .unwrap();
        let eur = Currency::parse("EUR").unwrap();
        let ctx = Context {
            trust: &w.trust,
            revocations: None,
            now: Timestamp(T0 + 20),
        };
        let req = till
            .create_request(Amount(900), eur, None, Timestamp(T0 + 20), &mut OsRng)
            .unwrap();
        let p = clone.pay(&req, &w.trust, None, Timestamp(T0 + 20)).unwrap();
        till.accept(&p, &ctx).unwrap();
        let mut buf = vec![0u8; SYNC_BATCH_MAX];
        let n = till.sync_batch(&mut buf).unwrap();
        let s = l.ingest(&buf[..n], "till 2", Timestamp(T0 + 200)).unwrap();
        assert_eq!(s.proofs, 1);
        let (kind, fraud, over): (String, bool, i64) = l
            .conn()
            .query_row(
                "SELECT f.kind, v.fraud, v.overspend_minor FROM fraud_proofs f JOIN vouchers v USING (voucher_id)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((kind.as_str(), fraud, over), ("same-sequence", true, 400));
        // The proof stands on its own.
        let proof: Vec<u8> = l
            .conn()
            .query_row("SELECT proof FROM fraud_proofs", [], |r| r.get(0))
            .unwrap();
        decode_unsigned::<FraudProof<'_>>(&proof)
            .unwrap()
            .verify(&w.trust)
            .unwrap();
        drop(l);
        let _ = iss;
        let l = Ledger::open(&path, issuer(&w.issuer_seed), w.trust.clone()).unwrap();
        assert_eq!(l.settlement.proofs().len(), 1);
    }
}
