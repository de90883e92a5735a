//! `offpay-issuer`: the issuer service.

use clap::{Parser, Subcommand};
use offpay_issuer::ledger::Clock;
use offpay_issuer::server::{Config, DEFAULT_POLICY};
use offpay_issuer::service::Limits;
use offpay_protocol::Timestamp;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "offpay-issuer", version, about = "The offpay issuer service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the public API and the admin API (creating the key, the admin token and the
    /// ledger in --data on first start).
    Serve {
        /// The data directory: issuer.key, admin.token, ledger.sqlite.
        #[arg(long, env = "OFFPAY_ISSUER_DATA", default_value = "offpay-issuer")]
        data: PathBuf,
        /// The public API's address.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: SocketAddr,
        /// The admin API's address.
        #[arg(long, default_value = "127.0.0.1:7879")]
        admin_listen: SocketAddr,
        /// The ledger: sqlite:PATH or postgres://USER@HOST:PORT/DB (default:
        /// DATA/ledger.sqlite). Instances sharing one PostgreSQL share DATA/issuer.key.
        #[arg(long, env = "OFFPAY_ISSUER_DATABASE")]
        database: Option<String>,
        /// TLS certificate chain (PEM); with --tls-key, both APIs speak HTTPS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Days a voucher is valid.
        #[arg(long, default_value_t = 7)]
        voucher_days: u32,
        /// Most payments per voucher.
        #[arg(long, default_value_t = DEFAULT_POLICY.max_payments)]
        max_payments: u32,
        /// Largest single payment, in minor units (default: the voucher's amount).
        #[arg(long)]
        max_single: Option<u64>,
        /// Largest amount one voucher may hold, in minor units.
        #[arg(long)]
        max_amount: Option<u64>,
        /// Requests handled at once per listener.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds a request may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Read the time (Unix seconds) from this file at every request instead of the
        /// system clock. For tests only: whoever writes the file moves the issuer's time.
        #[arg(long, hide = true)]
        clock_for_testing_only: Option<PathBuf>,
        /// Sign with an Ed25519 key in a PKCS#11 token loaded from this module (e.g.
        /// /usr/lib/softhsm/libsofthsm2.so) instead of DATA/issuer.key; the PIN comes from
        /// the environment variable OFFPAY_PKCS11_PIN, never from the command line.
        #[cfg(feature = "pkcs11")]
        #[arg(long, requires = "pkcs11_token")]
        pkcs11_module: Option<PathBuf>,
        /// The PKCS#11 token's label.
        #[cfg(feature = "pkcs11")]
        #[arg(long, requires = "pkcs11_module")]
        pkcs11_token: Option<String>,
        /// The label of the issuer's key in the token (made there on first start).
        #[cfg(feature = "pkcs11")]
        #[arg(long, default_value = "offpay-issuer")]
        pkcs11_key: String,
    },
}

fn file_clock(path: PathBuf) -> Clock {
    Arc::new(move || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map_or(Timestamp(0), Timestamp)
    })
}

fn main() -> ExitCode {
    let Command::Serve {
        data,
        listen,
        admin_listen,
        database,
        tls_cert,
        tls_key,
        voucher_days,
        max_payments,
        max_single,
        max_amount,
        concurrency,
        timeout,
        clock_for_testing_only,
        #[cfg(feature = "pkcs11")]
        pkcs11_module,
        #[cfg(feature = "pkcs11")]
        pkcs11_token,
        #[cfg(feature = "pkcs11")]
        pkcs11_key,
    } = Cli::parse().command;
    if voucher_days == 0 || max_payments == 0 || concurrency == 0 {
        eprintln!(
            "offpay-issuer: --voucher-days, --max-payments and --concurrency must be at least 1"
        );
        return ExitCode::FAILURE;
    }
    let mut config = Config::new(&data);
    config.listen = listen;
    config.admin_listen = admin_listen;
    config.database = database;
    config.tls = tls_cert.zip(tls_key);
    config.policy.voucher_secs = voucher_days.saturating_mul(86_400);
    config.policy.max_payments = max_payments;
    config.policy.max_single_minor = max_single;
    config.policy.max_amount_minor = max_amount;
    config.limits = Limits {
        concurrency,
        timeout: Duration::from_secs(timeout.max(1)),
    };
    #[cfg(feature = "pkcs11")]
    if let (Some(module), Some(token)) = (pkcs11_module, pkcs11_token) {
        let Ok(pin) = std::env::var("OFFPAY_PKCS11_PIN") else {
            eprintln!("offpay-issuer: --pkcs11-module needs the token's PIN in OFFPAY_PKCS11_PIN");
            return ExitCode::FAILURE;
        };
        config.key = offpay_issuer::server::KeySource::Pkcs11 {
            module,
            token,
            key: pkcs11_key,
            pin,
        };
    }
    if let Some(p) = clock_for_testing_only {
        config.clock = file_clock(p);
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("offpay-issuer: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match offpay_issuer::server::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("offpay-issuer: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "offpay-issuer: public API on {scheme}://{}, admin API on {scheme}://{} (token in {})",
            running.public,
            running.admin,
            data.join("admin.token").display()
        );
        let _ = tokio::signal::ctrl_c().await;
        running.shutdown();
        ExitCode::SUCCESS
    })
}
