//! The writer thread and its group commit (see the module documentation of `sqlite`).

use super::{GROUP_MAX, db, migrate};
use crate::error::Failure;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, mpsc};

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
    pub(super) fn with<T: Send + 'static>(
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

    pub(super) fn read_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
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
