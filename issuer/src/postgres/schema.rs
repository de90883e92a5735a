//! The ledger's schema in PostgreSQL: the same tables and columns as SQLite's (so the same
//! statements run on both), typed for PostgreSQL, with the per-voucher tables
//! hash-partitioned by voucher id. `offpay_schema` says how many migrations were applied.
//!
//! Partitioning: `vouchers`, `payments` and `fraud_proofs` are partitioned by
//! `HASH (voucher_id)` into [`PARTITIONS`] tables, and each one's primary key starts with
//! `voucher_id`, so a sharded PostgreSQL (Citus, say, distributing these tables by
//! `voucher_id`) needs no change of schema. Columns named `rowid` keep insertion order, as
//! SQLite's implicit `rowid` does.

use super::pg;
use crate::error::Failure;
use postgres::Client;

/// How many hash partitions each per-voucher table has.
pub const PARTITIONS: u32 = 8;

/// The migrations, in order. Never edit one that shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger (SQLite's schema 2, with partitions).
    "CREATE TABLE instruments (
        id TEXT PRIMARY KEY,
        credential_hash BYTEA NOT NULL,
        currency TEXT NOT NULL,
        label TEXT,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE accounts (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('funding', 'available', 'reserved', 'owed', 'merchant', 'suspense')),
        owner TEXT NOT NULL,
        currency TEXT NOT NULL,
        balance BIGINT NOT NULL DEFAULT 0,
        UNIQUE (kind, owner, currency)
    );
    CREATE TABLE movements (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('funding', 'reservation', 'credit', 'release')),
        reference BYTEA NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE TABLE entries (
        movement BIGINT NOT NULL REFERENCES movements(id),
        account BIGINT NOT NULL REFERENCES accounts(id),
        amount BIGINT NOT NULL
    );
    CREATE INDEX entries_by_account ON entries(account);
    CREATE INDEX entries_by_movement ON entries(movement);
    CREATE INDEX movements_by_reference ON movements(kind, reference);
    CREATE TABLE merchants (
        merchant_id BYTEA PRIMARY KEY,
        public_key BYTEA NOT NULL,
        display_name TEXT NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        certified_at BIGINT NOT NULL,
        certificate BYTEA NOT NULL
    );
    CREATE TABLE vouchers (
        rowid BIGSERIAL,
        voucher_id BYTEA NOT NULL,
        instrument TEXT,
        currency TEXT NOT NULL,
        limit_minor BIGINT NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        credited_minor BIGINT NOT NULL DEFAULT 0,
        fraud BOOLEAN NOT NULL DEFAULT FALSE,
        released_minor BIGINT,
        issued_at BIGINT,
        voucher BYTEA,
        PRIMARY KEY (voucher_id)
    ) PARTITION BY HASH (voucher_id);
    CREATE INDEX vouchers_open ON vouchers(not_after) WHERE released_minor IS NULL;
    CREATE TABLE preauthorizations (
        holder_key BYTEA NOT NULL,
        client_nonce BYTEA NOT NULL,
        request_hash BYTEA NOT NULL,
        voucher_id BYTEA NOT NULL,
        PRIMARY KEY (holder_key, client_nonce)
    );
    CREATE TABLE sync_batches (
        id BIGSERIAL PRIMARY KEY,
        batch_id BYTEA NOT NULL,
        ingested_at BIGINT NOT NULL,
        records BIGINT NOT NULL,
        new_records BIGINT NOT NULL
    );
    CREATE TABLE payments (
        rowid BIGSERIAL,
        payment_id BYTEA NOT NULL,
        voucher_id BYTEA NOT NULL,
        seq BIGINT NOT NULL,
        merchant_id BYTEA NOT NULL,
        amount_minor BIGINT NOT NULL,
        credited BOOLEAN NOT NULL DEFAULT FALSE,
        batch BIGINT NOT NULL,
        position BYTEA NOT NULL,
        bytes BYTEA NOT NULL,
        PRIMARY KEY (voucher_id, payment_id)
    ) PARTITION BY HASH (voucher_id);
    CREATE INDEX payments_by_id ON payments(payment_id);
    CREATE INDEX payments_by_position ON payments(position);
    CREATE TABLE receipts (
        record_id BYTEA PRIMARY KEY,
        payment_id BYTEA NOT NULL,
        merchant_id BYTEA NOT NULL,
        accepted_at BIGINT NOT NULL,
        batch BIGINT NOT NULL,
        bytes BYTEA NOT NULL
    );
    CREATE INDEX receipts_by_payment ON receipts(payment_id);
    CREATE TABLE fraud_proofs (
        rowid BIGSERIAL,
        first_payment BYTEA NOT NULL,
        second_payment BYTEA NOT NULL,
        voucher_id BYTEA NOT NULL,
        kind TEXT NOT NULL,
        found_at BIGINT NOT NULL,
        proof BYTEA NOT NULL,
        PRIMARY KEY (voucher_id, first_payment, second_payment)
    ) PARTITION BY HASH (voucher_id);
    CREATE INDEX fraud_proofs_by_first ON fraud_proofs(first_payment);
    CREATE INDEX fraud_proofs_by_second ON fraud_proofs(second_payment);
    CREATE TABLE revocations (
        kind TEXT NOT NULL CHECK (kind IN ('voucher', 'merchant')),
        id BYTEA NOT NULL,
        revoked_at BIGINT NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE TABLE revocation_lists (
        serial BIGINT PRIMARY KEY,
        issued_at BIGINT NOT NULL,
        list BYTEA NOT NULL
    );
    DO $$ BEGIN
        FOR t IN 0..7 LOOP
            EXECUTE format('CREATE TABLE vouchers_p%s PARTITION OF vouchers FOR VALUES WITH (MODULUS 8, REMAINDER %s)', t, t);
            EXECUTE format('CREATE TABLE payments_p%s PARTITION OF payments FOR VALUES WITH (MODULUS 8, REMAINDER %s)', t, t);
            EXECUTE format('CREATE TABLE fraud_proofs_p%s PARTITION OF fraud_proofs FOR VALUES WITH (MODULUS 8, REMAINDER %s)', t, t);
        END LOOP;
    END $$;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The advisory lock that lets one instance migrate while the others wait.
const MIGRATION_LOCK: i64 = 0x6f66_6670_6179_0001;

/// Applies the migrations the database lacks, all in one transaction; refuses a newer schema.
pub(super) fn migrate(client: &mut Client) -> Result<u32, Failure> {
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS offpay_schema (version INTEGER NOT NULL)")
        .map_err(pg)?;
    let version: u32 = match tx
        .query_opt("SELECT version FROM offpay_schema", &[])
        .map_err(pg)?
    {
        Some(r) => {
            let v: i32 = r.try_get(0).map_err(pg)?;
            u32::try_from(v)
                .map_err(|_| Failure::storage("offpay_schema holds a negative version"))?
        }
        None => {
            tx.execute("INSERT INTO offpay_schema (version) VALUES (0)", &[])
                .map_err(pg)?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(Failure::storage(format!(
            "the ledger has schema version {version}, newer than this offpay-issuer knows \
             ({SCHEMA_VERSION}); upgrade offpay-issuer"
        )));
    }
    for m in MIGRATIONS.iter().skip(version as usize) {
        tx.batch_execute(m).map_err(pg)?;
    }
    let to = i32::try_from(SCHEMA_VERSION).unwrap_or(i32::MAX);
    tx.execute("UPDATE offpay_schema SET version = $1", &[&to])
        .map_err(pg)?;
    tx.commit().map_err(pg)?;
    Ok(SCHEMA_VERSION)
}
