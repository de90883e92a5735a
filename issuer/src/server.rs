//! Starting the service: its data directory (key, admin token, ledger), its two listeners,
//! TLS, and an in-process form for the demo and tests.

use crate::api::Policy;
use crate::error::Failure;
use crate::ledger::{Clock, IssuerKey, Ledger, system_clock};
use crate::postgres::PgStorage;
use crate::service::{AppState, Limits, admin_router, public_router};
use crate::sqlite::SqliteStorage;
use crate::storage::Storage;
use offpay_protocol::{DEFAULT_GRACE_SECS, Issuer, SigningKey, Timestamp};
use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long a new issuer key is trusted: 10 years.
pub const KEY_LIFETIME_SECS: u32 = 10 * 365 * 86_400;

/// The default voucher terms.
pub const DEFAULT_POLICY: Policy = Policy {
    voucher_secs: 7 * 86_400,
    max_payments: 32,
    max_single_minor: None,
    max_amount_minor: None,
    grace_secs: DEFAULT_GRACE_SECS,
};

/// Everything `serve` needs.
#[derive(Clone)]
pub struct Config {
    /// The data directory: `issuer.key`, `admin.token`, `ledger.sqlite`.
    pub data: PathBuf,
    /// The public API's address.
    pub listen: SocketAddr,
    /// The admin API's address.
    pub admin_listen: SocketAddr,
    /// The ledger: `sqlite:PATH` or `postgres://...`, or `None` for `DATA/ledger.sqlite`.
    pub database: Option<String>,
    /// Voucher terms.
    pub policy: Policy,
    /// TLS certificate and key (PEM) for both listeners.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Limits per listener.
    pub limits: Limits,
    /// The clock.
    pub clock: Clock,
    /// Where the issuer's signing key is: `DATA/issuer.key` (the default) or a PKCS#11 token.
    pub key: KeySource,
}

/// Where the issuer's signing key is.
#[derive(Clone, Default)]
pub enum KeySource {
    /// A software key in `DATA/issuer.key`, made on first start.
    #[default]
    File,
    /// An Ed25519 key in a PKCS#11 token (an HSM), which never leaves it; made in the token on
    /// first start when no key has the label. Its window of trust is kept in
    /// `DATA/issuer.window`.
    #[cfg(feature = "pkcs11")]
    Pkcs11 {
        /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
        module: PathBuf,
        /// The token's label.
        token: String,
        /// The key's label in the token.
        key: String,
        /// The token user's PIN.
        pin: String,
    },
}

impl Config {
    /// The defaults: `./offpay-issuer`, `127.0.0.1:7878` and `127.0.0.1:7879`, SQLite.
    pub fn new(data: &Path) -> Self {
        Config {
            data: data.to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7879)),
            database: None,
            policy: DEFAULT_POLICY,
            tls: None,
            limits: Limits::default(),
            clock: system_clock(),
            key: KeySource::File,
        }
    }
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File => f.write_str("KeySource::File"),
            // The PIN is never printed.
            #[cfg(feature = "pkcs11")]
            KeySource::Pkcs11 {
                module, token, key, ..
            } => f
                .debug_struct("KeySource::Pkcs11")
                .field("module", module)
                .field("token", token)
                .field("key", key)
                .finish_non_exhaustive(),
        }
    }
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Failure {
    let m = format!("{what} {}", path.display());
    move |e| Failure::storage(format!("{m}: {e}"))
}

/// Writes a new secret file with mode 0600, never over an existing one.
fn create_secret(path: &Path, text: &str) -> Result<(), Failure> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(io("creating", path))?;
    f.write_all(text.as_bytes()).map_err(io("writing", path))?;
    f.sync_all().map_err(io("syncing", path))?;
    Ok(())
}

fn read_small(path: &Path) -> Result<String, Failure> {
    let meta = std::fs::metadata(path).map_err(io("reading", path))?;
    if meta.len() > 4096 {
        return Err(Failure::storage(format!("{} is too large", path.display())));
    }
    std::fs::read_to_string(path).map_err(io("reading", path))
}

/// A window of trust `<not before> <not after>` from the rest of a key file's words.
fn window<'a>(
    mut parts: impl Iterator<Item = &'a str>,
    bad: impl Fn() -> Failure,
) -> Result<(Timestamp, Timestamp), Failure> {
    let nb: u32 = parts.next().and_then(|t| t.parse().ok()).ok_or_else(&bad)?;
    let na: u32 = parts.next().and_then(|t| t.parse().ok()).ok_or_else(&bad)?;
    Ok((Timestamp(nb), Timestamp(na)))
}

/// The admin token from `data`, made there on first start.
fn admin_token(data: &Path) -> Result<String, Failure> {
    let token_path = data.join("admin.token");
    if !token_path.exists() {
        let mut t = [0u8; 32];
        OsRng.fill_bytes(&mut t);
        create_secret(&token_path, &format!("{}\n", hex::encode(t)))?;
    }
    let token = read_small(&token_path)?.trim().to_string();
    if token.len() < 32 {
        return Err(Failure::storage(format!(
            "{} holds a token shorter than 32 characters",
            token_path.display()
        )));
    }
    Ok(token)
}

/// The issuer, the window its key is trusted over, and the admin token.
pub type OpenedKey = (Issuer<IssuerKey>, (Timestamp, Timestamp), String);

/// The issuer's key (from `source`) and admin token, from `data`, created on first start.
pub fn open_key(data: &Path, source: &KeySource, now: Timestamp) -> Result<OpenedKey, Failure> {
    match source {
        KeySource::File => {
            let (key, window, token) = file_key(data, now)?;
            let key: IssuerKey = Box::new(key);
            Ok((Issuer::new(key), window, token))
        }
        #[cfg(feature = "pkcs11")]
        KeySource::Pkcs11 {
            module,
            token,
            key,
            pin,
        } => {
            std::fs::create_dir_all(data).map_err(io("creating", data))?;
            // Devices trust the key this data directory already signs with: switching to
            // another would strand every voucher and payment made under it.
            if data.join("issuer.key").exists() {
                return Err(Failure::storage(format!(
                    "{} signs with the software key in issuer.key; a PKCS#11 key would be a \
                     new issuer key, which devices do not trust: start it without \
                     --pkcs11-module, or give the HSM key its own data directory",
                    data.display()
                )));
            }
            let hsm = |e: offpay_pkcs11::Pkcs11Error| {
                Failure::storage(format!("the issuer key in PKCS#11 token {token:?}: {e}"))
            };
            let t = offpay_pkcs11::Token::open(module, token, pin).map_err(hsm)?;
            // `issuer.window` names the key (its public half) and the window devices trust it
            // over; every instance shares it, as they share `issuer.key` otherwise.
            let window_path = data.join("issuer.window");
            let bad = || {
                Failure::storage(format!(
                    "{} is not an issuer key window file",
                    window_path.display()
                ))
            };
            let (signer, w) = if window_path.exists() {
                let text = read_small(&window_path)?;
                let mut parts = text.split_whitespace();
                let named = parts.next().ok_or_else(bad)?.to_string();
                let w = window(parts, bad)?;
                let signer = t.ed25519(key).map_err(hsm)?;
                if hex::encode(offpay_protocol::Signer::public_key(&signer).0) != named {
                    return Err(Failure::storage(format!(
                        "the key labelled {key:?} in token {token:?} is not the issuer key \
                         {named} that {} names",
                        window_path.display()
                    )));
                }
                (signer, w)
            } else {
                // A first start: the key is made in the token, never outside it. A key already
                // there under this label belongs to another data directory's issuer.
                let signer = match t.ed25519(key) {
                    Err(offpay_pkcs11::Pkcs11Error::NoKey(_)) => {
                        t.generate_ed25519(key).map_err(hsm)?
                    }
                    Ok(_) => {
                        return Err(Failure::storage(format!(
                            "token {token:?} already holds a key labelled {key:?} but {} is \
                             missing: copy it from the data directory of the instance that \
                             made the key, or choose another --pkcs11-key",
                            window_path.display()
                        )));
                    }
                    Err(e) => return Err(hsm(e)),
                };
                let w = (now, now.saturating_add(KEY_LIFETIME_SECS));
                create_secret(
                    &window_path,
                    &format!(
                        "{} {} {}\n",
                        hex::encode(offpay_protocol::Signer::public_key(&signer).0),
                        w.0.0,
                        w.1.0
                    ),
                )?;
                (signer, w)
            };
            let key: IssuerKey = Box::new(signer);
            Ok((Issuer::new(key), w, admin_token(data)?))
        }
    }
}

/// The issuer's software key and admin token from `data`, created there on first start.
/// `issuer.key` holds `<seed hex> <not before> <not after>`.
pub fn open_data(
    data: &Path,
    now: Timestamp,
) -> Result<(Issuer, (Timestamp, Timestamp), String), Failure> {
    let (key, window, token) = file_key(data, now)?;
    Ok((Issuer::new(key), window, token))
}

type FileKey = (SigningKey, (Timestamp, Timestamp), String);

fn file_key(data: &Path, now: Timestamp) -> Result<FileKey, Failure> {
    std::fs::create_dir_all(data).map_err(io("creating", data))?;
    let key_path = data.join("issuer.key");
    if !key_path.exists() {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let until = now.saturating_add(KEY_LIFETIME_SECS);
        create_secret(
            &key_path,
            &format!("{} {} {}\n", hex::encode(seed), now.0, until.0),
        )?;
    }
    let token = admin_token(data)?;
    let text = read_small(&key_path)?;
    let bad = || Failure::storage(format!("{} is not an issuer key file", key_path.display()));
    let mut parts = text.split_whitespace();
    let seed: [u8; 32] = parts
        .next()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    let w = window(parts, bad)?;
    Ok((SigningKey::from_seed(&seed), w, token))
}

/// Opens the storage a `--database` URL names (`sqlite:PATH`, or `postgres://...` /
/// `postgresql://...`), or `DATA/ledger.sqlite`.
pub fn open_storage(database: Option<&str>, data: &Path) -> Result<Arc<dyn Storage>, Failure> {
    match database {
        None => Ok(Arc::new(SqliteStorage::open(&data.join("ledger.sqlite"))?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PgStorage::open(url)?))
        }
        Some(url) => match url.strip_prefix("sqlite:") {
            Some(p) => Ok(Arc::new(SqliteStorage::open(Path::new(
                p.trim_start_matches("//"),
            ))?)),
            None => Err(Failure::storage(format!(
                "'{url}' is not a database this build supports (sqlite:PATH, postgres://...)"
            ))),
        },
    }
}

/// The ledger and the admin token for a configuration.
pub fn open_ledger(config: &Config) -> Result<(Arc<Ledger>, String), Failure> {
    let now = (config.clock)();
    let (issuer, window, token) = open_key(&config.data, &config.key, now)?;
    let storage = open_storage(config.database.as_deref(), &config.data)?;
    let ledger = Ledger::new(issuer, window, config.policy, storage, config.clock.clone())?;
    ledger.ensure_revocation_list()?;
    Ok((Arc::new(ledger), token))
}

/// A running service.
pub struct Running {
    /// The public API's address.
    pub public: SocketAddr,
    /// The admin API's address.
    pub admin: SocketAddr,
    /// The admin token.
    pub admin_token: String,
    handle: axum_server::Handle,
    admin_handle: axum_server::Handle,
}

impl Running {
    /// Stops both listeners (requests in flight finish).
    pub fn shutdown(&self) {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        self.admin_handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    }
}

/// Binds both listeners and serves until [`Running::shutdown`] (or the runtime ends).
pub async fn start(config: Config) -> Result<Running, Failure> {
    // Opening blocks (files, a database's driver with its own runtime): not on this thread.
    let (ledger, token) = std::thread::scope(|s| {
        s.spawn(|| open_ledger(&config))
            .join()
            .unwrap_or_else(|_| Err(Failure::storage("opening the ledger failed")))
    })?;
    let state = AppState::new(ledger, token.clone());
    let public = public_router(state.clone(), config.limits);
    let admin = admin_router(state, config.limits);
    let listen = |addr: SocketAddr| -> Result<std::net::TcpListener, Failure> {
        let l = std::net::TcpListener::bind(addr)
            .map_err(|e| Failure::storage(format!("cannot listen on {addr}: {e}")))?;
        l.set_nonblocking(true).map_err(Failure::storage)?;
        Ok(l)
    };
    let (pl, al) = (listen(config.listen)?, listen(config.admin_listen)?);
    let (pa, aa) = (
        pl.local_addr().map_err(Failure::storage)?,
        al.local_addr().map_err(Failure::storage)?,
    );
    let handle = axum_server::Handle::new();
    let admin_handle = axum_server::Handle::new();
    match &config.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    Failure::storage(format!("reading the TLS certificate and key: {e}"))
                })?;
            let p = axum_server::from_tcp_rustls(pl, tls.clone()).handle(handle.clone());
            let a = axum_server::from_tcp_rustls(al, tls).handle(admin_handle.clone());
            tokio::spawn(p.serve(public.into_make_service()));
            tokio::spawn(a.serve(admin.into_make_service()));
        }
        None => {
            let p = axum_server::from_tcp(pl).handle(handle.clone());
            let a = axum_server::from_tcp(al).handle(admin_handle.clone());
            tokio::spawn(p.serve(public.into_make_service()));
            tokio::spawn(a.serve(admin.into_make_service()));
        }
    }
    Ok(Running {
        public: pa,
        admin: aa,
        admin_token: token,
        handle,
        admin_handle,
    })
}

/// A service running on its own thread and runtime: for the demo, tests and benchmarks.
/// Dropping it stops the service.
pub struct InProcess {
    running: Running,
    data: PathBuf,
    scheme: &'static str,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcess {
    /// Starts `config` on a new multi-threaded runtime.
    pub fn start(config: Config) -> Result<Self, Failure> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Failure::storage)?;
        let data = config.data.clone();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let running = runtime.block_on(start(config))?;
        Ok(InProcess {
            running,
            data,
            scheme,
            runtime: Some(runtime),
        })
    }

    /// The public API's base URL.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.running.public)
    }

    /// The admin API's base URL.
    pub fn admin_url(&self) -> String {
        format!("{}://{}", self.scheme, self.running.admin)
    }

    /// The admin token.
    pub fn admin_token(&self) -> &str {
        &self.running.admin_token
    }

    /// The service's data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.running.shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}
