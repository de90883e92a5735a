//! The ledger's schema: numbered migrations applied on open; a newer schema is refused.

use super::db;
use crate::error::Failure;
use rusqlite::Connection;

/// The schema, one migration per step; `PRAGMA user_version` says how many were applied.
/// Never edit a migration that shipped: add one.
pub(super) const MIGRATIONS: &[&str] = &[
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

/// Applies the migrations `conn` lacks, each in its own transaction; refuses a newer schema.
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, Failure> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::sqlite::SqliteStorage;

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
