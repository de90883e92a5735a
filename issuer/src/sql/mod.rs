//! The ledger over SQL, whatever the database: every [`Storage`] operation written once
//! against [`Tx`], a transaction of SQLite ([`crate::sqlite`]) or PostgreSQL
//! ([`crate::postgres`]). A backend supplies transactions ([`SqlBackend`]); the statements,
//! the double-entry postings and settlement's reads and writes are the same for both, so the
//! two give the same outcomes by construction.
//!
//! Statements are written in one dialect: `?N` placeholders, `IN rarray(?N)` for "is one of
//! this list", `ON CONFLICT DO NOTHING`, `RETURNING`, and a `rowid` column for insertion
//! order. PostgreSQL's driver rewrites the first two (`$N`, `= ANY($N)`); its schema names
//! its insertion-order column `rowid`.
//!
//! ## Concurrency
//!
//! One SQLite file has one writer, so its transactions run one after another. Several
//! service instances over one PostgreSQL run theirs at once, in READ COMMITTED, and
//! [`Tx::lock`] serializes the ones that touch the same things: each operation first takes
//! transaction-scoped locks on the keys it will read and write ([`key`]), all at once in
//! ascending order, then reads. Keys are per voucher, per payment id (a receipt names only
//! its payment), per instrument, per (holder key, client nonce), and one for the revocation
//! list. Money moves by atomic increments of account rows. A lock that turns out to be
//! needed later (a payment recorded between the first look and the locks) is only tried;
//! if it is busy, the transaction is rolled back and run again, as it is after a deadlock.
//! SPEC §8.3's order-independence rule then makes the serial order irrelevant: any number
//! of instances settle exactly as one.

use crate::api;
use crate::error::Failure;
use crate::storage::{Close, Granted, InstrumentRow, PreAuth, Settle, SignList, Storage, Synced};
use offpay_protocol::{Currency, HolderKey, MerchantId, Nonce, Timestamp, VoucherId};

mod accounts;
mod ops;
mod state;

/// A value bound to a statement's placeholder.
#[derive(Clone, Debug)]
pub enum P<'a> {
    /// A 64-bit integer.
    I(i64),
    /// Text.
    T(&'a str),
    /// Bytes.
    B(&'a [u8]),
    /// A boolean (SQLite stores 0 or 1).
    Bool(bool),
    /// NULL.
    Null,
    /// A list of byte strings, for `IN rarray(?N)`.
    List(Vec<&'a [u8]>),
}

/// A value read from a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum V {
    /// NULL.
    Null,
    /// An integer.
    I(i64),
    /// Text.
    T(String),
    /// Bytes.
    B(Vec<u8>),
    /// A boolean.
    Bool(bool),
}

/// A row: its values in column order.
#[derive(Clone, Debug)]
pub struct Row(pub Vec<V>);

fn wrong(i: usize, want: &str) -> Failure {
    Failure::storage(format!("column {i} is not {want}"))
}

impl Row {
    fn get(&self, i: usize) -> Result<&V, Failure> {
        self.0
            .get(i)
            .ok_or_else(|| Failure::storage(format!("a row has no column {i}")))
    }

    /// An integer column.
    pub fn int(&self, i: usize) -> Result<i64, Failure> {
        match self.get(i)? {
            V::I(v) => Ok(*v),
            V::Bool(b) => Ok(i64::from(*b)),
            _ => Err(wrong(i, "an integer")),
        }
    }

    /// A nullable integer column.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, Failure> {
        match self.get(i)? {
            V::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    /// A `u32` column (timestamps, sequence numbers).
    pub fn u32(&self, i: usize) -> Result<u32, Failure> {
        u32::try_from(self.int(i)?).map_err(|_| wrong(i, "a 32-bit unsigned integer"))
    }

    /// A boolean column (SQLite's 0 and 1 included).
    pub fn bool(&self, i: usize) -> Result<bool, Failure> {
        Ok(self.int(i)? != 0)
    }

    /// A text column.
    pub fn text(&self, i: usize) -> Result<String, Failure> {
        match self.get(i)? {
            V::T(t) => Ok(t.clone()),
            _ => Err(wrong(i, "text")),
        }
    }

    /// A nullable text column.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, Failure> {
        match self.get(i)? {
            V::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }

    /// A bytes column.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, Failure> {
        match self.get(i)? {
            V::B(b) => Ok(b.clone()),
            _ => Err(wrong(i, "bytes")),
        }
    }

    /// A nullable bytes column.
    pub fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, Failure> {
        match self.get(i)? {
            V::Null => Ok(None),
            _ => self.bytes(i).map(Some),
        }
    }

    /// A fixed-length id column.
    pub fn id<const N: usize>(&self, i: usize) -> Result<[u8; N], Failure> {
        self.bytes(i)?
            .try_into()
            .map_err(|_| Failure::storage("a stored id has the wrong length"))
    }
}

/// One transaction of a backend.
pub trait Tx {
    /// Runs a statement; its rows.
    fn query(&mut self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>, Failure>;
    /// Runs a statement; how many rows it changed.
    fn exec(&mut self, sql: &str, params: &[P<'_>]) -> Result<u64, Failure>;
    /// Whether other transactions may run at the same time (then [`Tx::lock`] matters).
    fn concurrent(&self) -> bool;
    /// Takes the locks on `keys` (in ascending order) until the transaction ends.
    fn lock(&mut self, keys: &[i64]) -> Result<(), Failure>;
    /// Makes sure the lock on `key` is held, taking it only if it is free now; if it is
    /// busy, fails with [`Failure::Contention`] (the operation is then run again).
    fn lock_late(&mut self, key: i64) -> Result<(), Failure>;
}

impl dyn Tx + '_ {
    /// The first row, if any.
    pub fn row(&mut self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>, Failure> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row, which must exist.
    pub fn one(&mut self, sql: &str, params: &[P<'_>]) -> Result<Row, Failure> {
        self.row(sql, params)?
            .ok_or_else(|| Failure::storage("a query that returns a row returned none"))
    }
}

/// What a lock key is about.
#[derive(Clone, Copy)]
pub enum Key<'a> {
    /// A voucher (its settled state, its payments, its proofs).
    Voucher(&'a VoucherId),
    /// A payment id (a payment and the receipts that name it).
    Payment(&'a [u8; 32]),
    /// An instrument (its balances, its funding).
    Instrument(&'a str),
    /// A pre-authorization (holder key, client nonce).
    PreAuth(&'a HolderKey, &'a Nonce),
    /// The revocation list.
    Revocations,
}

/// The 64-bit lock key of `k`: the first 8 bytes of SHA-256 over a tag and the id. Two
/// things that share a key only wait for each other.
pub fn key(k: Key<'_>) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match k {
        Key::Voucher(v) => {
            h.update(b"v");
            h.update(v.0);
        }
        Key::Payment(p) => {
            h.update(b"p");
            h.update(p);
        }
        Key::Instrument(i) => {
            h.update(b"i");
            h.update(i.as_bytes());
        }
        Key::PreAuth(k, n) => {
            h.update(b"a");
            h.update(k.as_bytes());
            h.update(n.0);
        }
        Key::Revocations => h.update(b"r"),
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    for (out, byte) in b.iter_mut().zip(d.iter()) {
        *out = *byte;
    }
    i64::from_be_bytes(b)
}

/// A database that runs the ledger's transactions.
pub trait SqlBackend: Send + Sync {
    /// The schema version the database is at.
    fn schema_version(&self) -> Result<u32, Failure>;
    /// Runs `f` in one write transaction, committed before this returns (or not at all). `f`
    /// may run more than once: after a deadlock or a busy lock, the backend rolls back and
    /// runs it again.
    fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&mut dyn Tx) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure>;
    /// Runs `f` over what is committed.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T, Failure>) -> Result<T, Failure>;
}

impl<B: SqlBackend> Storage for B {
    fn schema_version(&self) -> Result<u32, Failure> {
        SqlBackend::schema_version(self)
    }

    fn check(&self) -> Result<(), Failure> {
        self.read(|t| t.one("SELECT 1", &[]).map(drop))
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
        self.write(move |t| {
            ops::create_instrument(t, &id, credential_hash, currency, label.as_deref(), now)
        })
    }

    fn instrument(&self, id: &str) -> Result<Option<InstrumentRow>, Failure> {
        self.read(|t| accounts::instrument_row(t, id))
    }

    fn credential(&self, id: &str) -> Result<Option<([u8; 32], Currency)>, Failure> {
        self.read(|t| ops::credential(t, id))
    }

    fn fund(
        &self,
        id: &str,
        amount: offpay_protocol::Amount,
        reference: &str,
        now: Timestamp,
    ) -> Result<api::Instrument, Failure> {
        let (id, reference) = (id.to_string(), reference.to_string());
        self.write(move |t| ops::fund(t, &id, amount, &reference, now))
    }

    fn granted(&self, holder: &HolderKey, nonce: &Nonce) -> Result<Option<Granted>, Failure> {
        self.read(|t| ops::granted(t, holder, nonce))
    }

    fn preauthorize(&self, p: PreAuth) -> Result<Vec<u8>, Failure> {
        self.write(move |t| ops::preauthorize(t, &p))
    }

    fn add_merchant(&self, certificate: &[u8], now: Timestamp) -> Result<(), Failure> {
        let certificate = certificate.to_vec();
        self.write(move |t| ops::add_merchant(t, &certificate, now))
    }

    fn sync(&self, batch: Vec<u8>, now: Timestamp, settle: Settle) -> Result<Synced, Failure> {
        self.write(move |t| ops::sync(t, &batch, now, &settle))
    }

    fn close_expired(
        &self,
        now: Timestamp,
        grace: u32,
        close: Close,
    ) -> Result<Vec<api::VoucherState>, Failure> {
        // A chunk of vouchers per transaction, in voucher id order: each transaction holds
        // the locks of its own vouchers only, however many have expired.
        let mut out = Vec::new();
        let mut after: Option<VoucherId> = None;
        loop {
            let close = close.clone();
            let (part, last) =
                self.write(move |t| ops::close_expired(t, now, grace, &close, after))?;
            out.extend(part);
            match last {
                Some(last) => after = Some(last),
                None => return Ok(out),
            }
        }
    }

    fn revoke(
        &self,
        voucher: Option<VoucherId>,
        merchant: Option<MerchantId>,
        now: Timestamp,
        sign: SignList,
    ) -> Result<Vec<u8>, Failure> {
        self.write(move |t| ops::revoke(t, voucher, merchant, now, &sign))
    }

    fn revocation_list(&self) -> Result<Option<(u64, Vec<u8>)>, Failure> {
        self.read(ops::revocation_list)
    }

    fn credits(&self) -> Result<Vec<api::Credit>, Failure> {
        self.read(ops::credits)
    }

    fn proofs(&self) -> Result<Vec<api::Proof>, Failure> {
        self.read(ops::proofs)
    }

    fn vouchers(&self) -> Result<Vec<api::VoucherState>, Failure> {
        self.read(ops::vouchers)
    }
}
