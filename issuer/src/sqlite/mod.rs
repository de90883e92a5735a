//! The ledger in SQLite: one file in WAL mode with `synchronous = FULL`.
//!
//! Writes go through one writer thread that commits in groups: it takes every operation
//! waiting (up to [`GROUP_MAX`]), runs each inside its own savepoint of one `BEGIN IMMEDIATE`
//! transaction, commits once, and only then answers each caller. An operation that fails is
//! rolled back to its savepoint and changes nothing; if the commit fails, every operation of
//! the group fails and nothing of it is stored. One `fsync` then serves many concurrent
//! requests, and no answer is given before what it reports is durable. Reads use their own
//! connection and see what was committed. With one writer, transactions never run at the
//! same time, so [`Tx::lock`] has nothing to do.

use crate::error::Failure;
use crate::sql::{P, Row, SqlBackend, Tx, V};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use std::rc::Rc;

/// The most operations one group commit takes.
pub const GROUP_MAX: usize = 256;

mod schema;
mod writer;

pub use schema::SCHEMA_VERSION;
use schema::migrate;
pub use writer::SqliteStorage;

fn db(e: rusqlite::Error) -> Failure {
    Failure::storage(e)
}

impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            P::I(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            P::T(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            P::B(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            P::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            P::Null => ToSqlOutput::Owned(Value::Null),
            P::List(l) => {
                ToSqlOutput::Array(Rc::new(l.iter().map(|b| Value::Blob(b.to_vec())).collect()))
            }
        })
    }
}

fn value(v: ValueRef<'_>) -> V {
    match v {
        ValueRef::Null => V::Null,
        ValueRef::Integer(i) => V::I(i),
        // The ledger stores no floating-point values; one read as text would fail its
        // column's accessor rather than pass for a number.
        ValueRef::Real(r) => V::T(r.to_string()),
        ValueRef::Text(t) => V::T(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => V::B(b.to_vec()),
    }
}

/// A transaction (or the reader's view) on one SQLite connection.
pub(crate) struct Lite<'a>(pub(crate) &'a Connection);

impl Tx for Lite<'_> {
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, Failure> {
        let mut st = self.0.prepare_cached(sql).map_err(db)?;
        let n = st.column_count();
        let rows = st
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                (0..n)
                    .map(|i| r.get_ref(i).map(value))
                    .collect::<rusqlite::Result<Vec<V>>>()
                    .map(Row)
            })
            .map_err(db)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db)
    }

    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, Failure> {
        let n = self
            .0
            .prepare_cached(sql)
            .map_err(db)?
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(db)?;
        Ok(n as u64)
    }

    fn concurrent(&self) -> bool {
        false
    }

    fn lock(&mut self, _keys: &[i64]) -> Result<(), Failure> {
        Ok(())
    }

    fn lock_late(&mut self, _key: i64) -> Result<(), Failure> {
        Ok(())
    }
}

impl SqlBackend for SqliteStorage {
    fn schema_version(&self) -> Result<u32, Failure> {
        self.read_conn(|c| {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(db)
        })
    }

    fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&mut dyn Tx) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        self.with(move |c| f(&mut Lite(c)))
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T, Failure>) -> Result<T, Failure> {
        self.read_conn(|c| {
            // One snapshot for every statement of the read (a read transaction, in WAL mode
            // never blocked by the writer), as on PostgreSQL.
            c.execute_batch("BEGIN DEFERRED").map_err(db)?;
            let out = f(&mut Lite(c));
            let ended = c.execute_batch("COMMIT").map_err(db);
            let out = out?;
            ended?;
            Ok(out)
        })
    }
}
