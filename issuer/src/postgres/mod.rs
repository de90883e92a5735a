//! The ledger in PostgreSQL, shared by any number of service instances.
//!
//! Each operation is one READ COMMITTED transaction on a pooled connection (`r2d2`, the
//! synchronous `postgres` driver: the service runs ledger calls on blocking threads). The
//! statements are [`crate::sql`]'s, the same as SQLite's; what differs is concurrency: the
//! operation takes PostgreSQL advisory locks on what it touches before it reads
//! (`pg_advisory_xact_lock`, released at commit or rollback; see [`crate::sql`] for the
//! keys and the order), and a transaction that loses a race (deadlock, serialization failure,
//! a late lock that is busy) is rolled back and run again, at most [`RETRIES`] times with a
//! random backoff, before the caller gets `busy` (503). A transaction that fails changes
//! nothing; one that commits is durable before its answer is sent (PostgreSQL's
//! `synchronous_commit`, on by default: keep it on).
//!
//! Several instances over one database need nothing else: no leader, no shared memory.
//! They must share the issuer keys (the same `issuer.key` in each instance's data
//! directory), so that every voucher verifies whichever instance signed it.

use crate::error::Failure;
use crate::sql::{P, Row, SqlBackend, Tx, V};
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};
use rand_core::{OsRng, RngCore};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

mod schema;

pub use schema::{PARTITIONS, SCHEMA_VERSION};

/// How many times an operation that lost a race is run again before `busy`.
pub const RETRIES: u32 = 12;
/// Connections each instance keeps to PostgreSQL.
pub const POOL_SIZE: u32 = 16;

/// The PostgreSQL ledger.
pub struct PgStorage {
    pool: r2d2::Pool<Manager>,
}

/// A pooled connection with the statements it has prepared.
pub struct Conn {
    client: Option<Client>,
    statements: HashMap<String, Statement>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Closing blocks on the driver's runtime, which must not happen on a thread that
        // drives an async runtime (the pool may be dropped there): close elsewhere.
        if let Some(c) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new().spawn(move || drop(c));
            } else {
                drop(c);
            }
        }
    }
}

impl Conn {
    fn parts(&mut self) -> Result<(&mut Client, &mut HashMap<String, Statement>), Failure> {
        match &mut self.client {
            Some(c) => Ok((c, &mut self.statements)),
            None => Err(Failure::storage("a closed PostgreSQL connection")),
        }
    }
}

/// Makes connections for the pool.
pub struct Manager(postgres::Config);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: Some(self.0.connect(NoTls)?),
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, c: &mut Conn) -> Result<(), postgres::Error> {
        match &mut c.client {
            Some(c) => c.simple_query("").map(drop),
            None => Ok(()),
        }
    }

    fn has_broken(&self, c: &mut Conn) -> bool {
        c.client.as_ref().is_none_or(Client::is_closed)
    }
}

/// A PostgreSQL error as the ledger reports it: lost races are [`Failure::Contention`].
pub(crate) fn pg(e: postgres::Error) -> Failure {
    match e.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => Failure::Contention(e.to_string()),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => Failure::Contention(e.to_string()),
        // The shared lock table is full (too many advisory locks held at once across the
        // database): transient, it empties as transactions end.
        Some(c) if *c == SqlState::OUT_OF_MEMORY => Failure::Contention(e.to_string()),
        _ => Failure::storage(format!("PostgreSQL: {e}")),
    }
}

/// An error with its causes, `a: b: c` (the driver's connection errors say what failed only in
/// their source: the refused connection, the failed authentication).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// No pooled connection came free in time: every one is busy, or PostgreSQL cannot be
/// reached. The caller gets `busy` (503) and retries.
fn no_connection(e: r2d2::Error) -> Failure {
    Failure::api(
        crate::api::ApiError::Busy,
        format!("no connection to PostgreSQL came free: {e}"),
    )
}

/// Rewrites the shared dialect for PostgreSQL: `IN rarray(?N)` → `= ANY($N)`, `?N` → `$N`.
fn translate(sql: &str) -> String {
    let sql = sql.replace("IN rarray(", "= ANY(");
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl ToSql for P<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            P::I(v) => match *ty {
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            P::T(t) => t.to_sql(ty, out),
            P::B(b) => b.to_sql(ty, out),
            P::Bool(b) => b.to_sql(ty, out),
            P::Null => Ok(IsNull::Yes),
            P::List(l) => l.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn value(row: &postgres::Row, i: usize) -> Result<V, postgres::Error> {
    let ty = row.columns().get(i).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::INT8) => row.try_get::<_, Option<i64>>(i)?.map_or(V::Null, V::I),
        Some(Type::INT4) => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(V::Null, |v| V::I(v.into())),
        Some(Type::INT2) => row
            .try_get::<_, Option<i16>>(i)?
            .map_or(V::Null, |v| V::I(v.into())),
        Some(Type::BOOL) => row.try_get::<_, Option<bool>>(i)?.map_or(V::Null, V::Bool),
        Some(Type::BYTEA) => row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(V::Null, V::B),
        _ => row.try_get::<_, Option<String>>(i)?.map_or(V::Null, V::T),
    })
}

/// One transaction on a pooled connection, with the advisory locks it holds.
struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
    held: BTreeSet<i64>,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, Failure> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&translate(sql)).map_err(pg)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

fn refs<'p>(params: &'p [P<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Tx for PgTx<'_> {
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, Failure> {
        let st = self.statement(sql)?;
        let rows = self.tx.query(&st, &refs(params)).map_err(pg)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| value(r, i))
                    .collect::<Result<Vec<V>, _>>()
                    .map(Row)
                    .map_err(pg)
            })
            .collect()
    }

    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, Failure> {
        let st = self.statement(sql)?;
        self.tx.execute(&st, &refs(params)).map_err(pg)
    }

    fn concurrent(&self) -> bool {
        true
    }

    fn lock(&mut self, keys: &[i64]) -> Result<(), Failure> {
        let new: Vec<i64> = keys
            .iter()
            .copied()
            .filter(|k| !self.held.contains(k))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        // unnest yields the keys in array order, so they are taken in the caller's order.
        self.tx
            .execute(
                "SELECT pg_advisory_xact_lock(k) FROM unnest($1::BIGINT[]) AS k",
                &[&new],
            )
            .map_err(pg)?;
        self.held.extend(new);
        Ok(())
    }

    fn lock_late(&mut self, key: i64) -> Result<(), Failure> {
        if self.held.contains(&key) {
            return Ok(());
        }
        let got: bool = self
            .tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if !got {
            return Err(Failure::Contention(
                "a lock this operation needs is held by another".into(),
            ));
        }
        self.held.insert(key);
        Ok(())
    }
}

impl PgStorage {
    /// Connects to the database a `postgres://` URL names and applies the migrations it
    /// lacks (one instance at a time: the first to start migrates, the others wait).
    pub fn open(url: &str) -> Result<Self, Failure> {
        // The driver blocks on a runtime of its own, which cannot start on a thread that
        // drives the service's; opening runs on a thread of its own.
        std::thread::scope(|s| {
            s.spawn(|| Self::open_here(url))
                .join()
                .unwrap_or_else(|_| Err(Failure::storage("opening the ledger failed")))
        })
    }

    fn open_here(url: &str) -> Result<Self, Failure> {
        let config: postgres::Config = url.parse().map_err(|e| {
            Failure::storage(format!("the database URL is not a PostgreSQL URL: {e}"))
        })?;
        let mut config = config;
        // Every statement is prepared once per connection and run many times: plan it once
        // (custom plans re-plan each run over the partitions, a large share of the CPU).
        // An answer is sent only once its transaction is on disk, whatever the server's
        // default.
        let ours = "-c plan_cache_mode=force_generic_plan -c synchronous_commit=on";
        let options = match config.get_options() {
            Some(o) => format!("{o} {ours}"),
            None => ours.to_string(),
        };
        config.options(&options);
        let mut client = config.connect(NoTls).map_err(|e| {
            Failure::storage(format!("cannot connect to PostgreSQL: {}", chain(&e)))
        })?;
        schema::migrate(&mut client)?;
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(Manager(config))
            .map_err(|e| Failure::storage(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(PgStorage { pool })
    }

    fn attempt<T>(&self, f: &impl Fn(&mut dyn Tx) -> Result<T, Failure>) -> Result<T, Failure> {
        let mut conn = self.pool.get().map_err(no_connection)?;
        let (client, statements) = conn.parts()?;
        let tx = client.transaction().map_err(pg)?;
        run(tx, statements, f)
    }
}

/// Runs `f` in `tx`, then commits.
fn run<T>(
    tx: postgres::Transaction<'_>,
    statements: &mut HashMap<String, Statement>,
    f: impl FnOnce(&mut dyn Tx) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let mut t = PgTx {
        tx,
        statements,
        held: BTreeSet::new(),
    };
    let out = f(&mut t)?;
    t.tx.commit().map_err(pg)?;
    Ok(out)
}

impl SqlBackend for PgStorage {
    fn schema_version(&self) -> Result<u32, Failure> {
        self.read(|t| t.one("SELECT version FROM offpay_schema", &[])?.u32(0))
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&mut dyn Tx) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let mut tries = 0;
        loop {
            match self.attempt(&f) {
                Err(Failure::Contention(m)) if tries < RETRIES => {
                    tries += 1;
                    // Random backoff, growing: 1 ms up to 2^min(tries, 6) ms.
                    let ceiling = 1u64 << tries.min(6);
                    let wait = 1 + u64::from(OsRng.next_u32()) % ceiling;
                    std::thread::sleep(Duration::from_millis(wait));
                    let _ = m;
                }
                other => return other,
            }
        }
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T, Failure>) -> Result<T, Failure> {
        let mut conn = self.pool.get().map_err(no_connection)?;
        let (client, statements) = conn.parts()?;
        // One snapshot for every statement of the read.
        let tx = client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg)?;
        run(tx, statements, f)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::translate;

    #[test]
    fn the_dialect_is_rewritten_for_postgres() {
        assert_eq!(
            translate("SELECT a FROM t WHERE id IN rarray(?1) AND b = ?12 AND c = '?'"),
            "SELECT a FROM t WHERE id = ANY($1) AND b = $12 AND c = '?'"
        );
    }
}
