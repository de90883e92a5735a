//! A live issuer service on a loopback port with a clock the test moves, and the devices
//! that talk to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod pg;

use offpay_issuer::api;
use offpay_issuer::client::{Client, ClientError};
use offpay_issuer::server::{Config, InProcess};
use offpay_protocol::msg::SyncBatch;
use offpay_protocol::*;
use rand_core::OsRng;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// 2027-01-15 08:00:00 UTC.
pub const T0: u32 = 1_799_913_600;

pub type Trust = TrustStore<4>;
pub type Store = MemStore<131_072, 1024>;
pub type Till = Acceptor<Store, SigningKey>;
pub type Phone = Wallet<Store, SigningKey>;

/// The ledger a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one test body on both backends: `name::sqlite` and `name::postgres`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($(#[$m:meta])* fn $name:ident($b:ident: Backend) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[$m])*
            fn body($b: Backend) $body
            #[test]
            fn sqlite() {
                body(Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                body(Backend::Postgres)
            }
        }
    };
}

pub struct World {
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database's URL, on that backend.
    pub database: Option<String>,
    pub service: InProcess,
    pub clock: Arc<AtomicU32>,
    pub public: Client,
    pub admin: Client,
    pub trust: Trust,
}

/// The trust anchors a service publishes.
pub fn trust_of(public: &Client) -> Trust {
    let info = public.issuer_info().unwrap();
    let mut trust = Trust::new();
    for k in &info.keys {
        trust
            .add(
                api::parse_key(&k.public_key).unwrap(),
                Timestamp(k.not_before),
                Timestamp(k.not_after),
            )
            .unwrap();
    }
    trust
}

pub fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

impl World {
    pub fn new() -> Self {
        Self::with_policy(|_| {})
    }

    pub fn on(backend: Backend) -> Self {
        Self::on_with_policy(backend, |_| {})
    }

    pub fn with_policy(f: impl FnOnce(&mut Config)) -> Self {
        Self::on_with_policy(Backend::Sqlite, f)
    }

    pub fn on_with_policy(backend: Backend, f: impl FnOnce(&mut Config)) -> Self {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(pg::shared().database()),
        };
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicU32::new(T0));
        let mut config = Config::new(&dir.path().join("issuer"));
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.admin_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.database = database.clone();
        let c = clock.clone();
        config.clock = Arc::new(move || Timestamp(c.load(Ordering::SeqCst)));
        f(&mut config);
        let service = InProcess::start(config).unwrap();
        let public = Client::new(&service.url()).unwrap();
        let admin = Client::new(&service.admin_url())
            .unwrap()
            .with_admin_token(service.admin_token());
        let trust = trust_of(&public);
        World {
            dir,
            database,
            service,
            clock,
            public,
            admin,
            trust,
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp(self.clock.load(Ordering::SeqCst))
    }

    pub fn advance(&self, secs: u32) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("issuer").join("ledger.sqlite")
    }

    /// A funded instrument: (id, credential).
    pub fn instrument(&self, currency: &str, amount: u64) -> (String, String) {
        let c = self
            .admin
            .create_instrument(currency, Some("test"))
            .unwrap();
        if amount > 0 {
            self.admin
                .fund(&c.instrument.id, amount, "initial")
                .unwrap();
        }
        (c.instrument.id, c.credential)
    }

    /// A merchant certified by the service, with its till.
    pub fn merchant(&self, id: &[u8; 8], name: &str, seed: u8) -> Till {
        let cert = self.certify(id, name, seed);
        Acceptor::open(Store::new(), SigningKey::from_seed(&[seed; 32]), &cert).unwrap()
    }

    /// Certifies a merchant key made from `seed`; the certificate.
    pub fn certify(&self, id: &[u8; 8], name: &str, seed: u8) -> Vec<u8> {
        let key = SigningKey::from_seed(&[seed; 32]);
        self.admin
            .certify_merchant(&api::NewMerchant {
                merchant_id: hex::encode(id),
                merchant_key: hex::encode(key.public_key().0),
                display_name: name.to_string(),
                days: 365,
            })
            .unwrap()
    }

    pub fn phone(&self, seed: u8) -> Phone {
        Wallet::open(Store::new(), SigningKey::from_seed(&[seed; 32])).unwrap()
    }

    pub fn preauth_request(
        &self,
        phone: &mut Phone,
        instrument: &str,
        amount: u64,
        nonce: u8,
    ) -> Vec<u8> {
        phone
            .preauth_request(
                instrument.as_bytes(),
                Amount(amount),
                eur(),
                Nonce([nonce; 16]),
                self.now(),
            )
            .unwrap()
            .to_vec()
    }

    /// Pre-authorizes over HTTP and installs the voucher.
    pub fn preauthorize(
        &self,
        phone: &mut Phone,
        instrument: &str,
        credential: &str,
        amount: u64,
        nonce: u8,
    ) -> Result<Vec<u8>, ClientError> {
        let req = self.preauth_request(phone, instrument, amount, nonce);
        let voucher = self.public.preauthorize(&req, credential)?;
        phone
            .install_voucher(&voucher, &self.trust, self.now())
            .unwrap();
        Ok(voucher)
    }

    /// One offline payment; the receipt reaches the phone.
    pub fn pay(&self, phone: &mut Phone, till: &mut Till, amount: u64) -> Vec<u8> {
        let now = self.now();
        let req = till
            .create_request(Amount(amount), eur(), Some("test"), now, &mut OsRng)
            .unwrap();
        let payment = phone.pay(&req, &self.trust, None, now).unwrap();
        let ctx = Context {
            trust: &self.trust,
            revocations: None,
            now,
        };
        let receipt = till.accept(&payment, &ctx).unwrap();
        phone.receive_receipt(&receipt).unwrap();
        payment.to_vec()
    }

    /// Syncs a phone until nothing more is acknowledged; the reports.
    pub fn sync_phone(&self, phone: &mut Phone) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; <SyncBatch<'_> as codec::Message<'_>>::MAX_LEN];
        let n = phone.sync_batch(&mut buf).unwrap();
        let report = self.public.sync(&buf[..n]).unwrap();
        phone
            .apply_report(&report, &self.trust, self.now())
            .unwrap();
        vec![buf[..n].to_vec(), report]
    }

    pub fn sync_till(&self, till: &mut Till) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; <SyncBatch<'_> as codec::Message<'_>>::MAX_LEN];
        let n = till.sync_batch(&mut buf).unwrap();
        let report = self.public.sync(&buf[..n]).unwrap();
        till.apply_report(&report, &self.trust, self.now()).unwrap();
        vec![buf[..n].to_vec(), report]
    }

    /// One integer a query over the ledger gives (NULL as 0), on either backend.
    pub fn scalar(&self, sql: &str) -> i64 {
        match &self.database {
            Some(url) => pg_scalar(url, sql),
            None => {
                let c = rusqlite::Connection::open_with_flags(
                    self.db_path(),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .unwrap_or(0)
            }
        }
    }

    /// Every row of every table, in a canonical order: equal snapshots mean an unchanged
    /// ledger.
    pub fn snapshot(&self) -> Vec<String> {
        if let Some(url) = &self.database {
            return pg_snapshot(url);
        }
        let conn = rusqlite::Connection::open_with_flags(
            self.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = Vec::new();
        for t in tables {
            let mut st = conn
                .prepare(&format!("SELECT * FROM {t} ORDER BY rowid"))
                .unwrap();
            let cols = st.column_count();
            let rows = st
                .query_map([], |r| {
                    let mut line = t.clone();
                    for i in 0..cols {
                        let v: rusqlite::types::Value = r.get(i)?;
                        line.push_str(&format!(" {v:?}"));
                    }
                    Ok(line)
                })
                .unwrap();
            for row in rows {
                out.push(row.unwrap());
            }
        }
        out
    }
}

/// One integer a query over a PostgreSQL ledger gives (NULL as 0).
pub fn pg_scalar(url: &str, sql: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let r = c
        .query_one(&format!("SELECT CAST(({sql}) AS BIGINT)"), &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    r.get::<_, Option<i64>>(0).unwrap_or(0)
}

/// Every row of every table of a PostgreSQL ledger (partitions read through their parent).
pub fn pg_snapshot(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = c
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        for r in c
            .query(&format!("SELECT x::text FROM {t} x ORDER BY 1"), &[])
            .unwrap()
        {
            out.push(format!("{t} {}", r.get::<_, String>(0)));
        }
    }
    out
}

/// The funds invariant, from the ledger's own rows: every movement balances, every account's
/// balance is the sum of its entries, no account that must stay positive is negative, what
/// instruments hold reserved is what their open vouchers have left, what they owe is their
/// vouchers' overspend, and merchants hold exactly what vouchers credited.
pub fn check_funds(q: impl Fn(&str) -> i64) {
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM (SELECT movement FROM entries GROUP BY movement HAVING SUM(amount) != 0) x"
        ),
        0
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM accounts a WHERE balance != (SELECT COALESCE(SUM(amount), 0) FROM entries WHERE account = a.id)"
        ),
        0
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM accounts WHERE kind IN ('available', 'reserved', 'merchant') AND balance < 0"
        ),
        0
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM accounts WHERE kind IN ('funding', 'owed') AND balance > 0"),
        0
    );
    assert_eq!(q("SELECT SUM(balance) FROM accounts"), 0);
    let reserved = q("SELECT SUM(balance) FROM accounts WHERE kind = 'reserved'");
    let open = q(
        "SELECT SUM(limit_minor - CASE WHEN credited_minor < limit_minor THEN credited_minor ELSE limit_minor END) FROM vouchers WHERE instrument IS NOT NULL AND released_minor IS NULL",
    );
    assert_eq!(reserved, open);
    let owed = -q("SELECT SUM(balance) FROM accounts WHERE kind = 'owed'");
    assert_eq!(
        owed,
        q(
            "SELECT SUM(CASE WHEN credited_minor > limit_minor THEN credited_minor - limit_minor ELSE 0 END) FROM vouchers"
        )
    );
    let merchants = q("SELECT SUM(balance) FROM accounts WHERE kind = 'merchant'");
    assert_eq!(merchants, q("SELECT SUM(credited_minor) FROM vouchers"));
    assert_eq!(
        merchants,
        q("SELECT SUM(amount_minor) FROM payments WHERE credited = TRUE")
    );
}

/// The stable code of a refused call.
pub fn code(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, u16) {
    match r {
        Err(ClientError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
