//! `offpay`: the whole offline payment from a terminal.
//!
//! `offpay demo` runs the story end to end, with an issuer service started in-process. The
//! role commands do it for real: the issuer is an `offpay-issuer` service reached over HTTP
//! (`--issuer URL`, its admin API with `--admin-url` and a token), the wallet and the merchant
//! keep their journals in a data directory (default `./offpay-data`, or `--data DIR`, one per
//! device), and every message handed between roles is a QR code in a PNG file, decoded from
//! its pixels by the next command.

mod data;
mod demo;
mod fail;
mod inspect;
mod online;
mod qrio;
mod roles;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "offpay", version, about = "Offline peer-to-peer payments")]
struct Cli {
    /// The device's data directory (one subdirectory per role: wallet/, merchant/).
    #[arg(
        long,
        global = true,
        env = "OFFPAY_DATA",
        default_value = "offpay-data"
    )]
    data: PathBuf,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The issuer service's public API (default: the URL saved when the device was created,
    /// else http://127.0.0.1:7878).
    #[arg(long, global = true, env = "OFFPAY_ISSUER")]
    issuer: Option<String>,
    /// The issuer service's admin API (for `offpay issuer ...`).
    #[arg(
        long,
        global = true,
        env = "OFFPAY_ADMIN_URL",
        default_value = "http://127.0.0.1:7879"
    )]
    admin_url: String,
    /// The admin API's token.
    #[arg(
        long,
        global = true,
        env = "OFFPAY_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// The file holding the admin API's token, read when --admin-token is not given.
    #[arg(long, global = true, default_value = "offpay-issuer/admin.token")]
    admin_token_file: PathBuf,
    /// The time to act at, in Unix seconds, instead of the system clock (for tests and replays).
    #[arg(long, global = true, env = "OFFPAY_NOW", hide = true)]
    now: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole offline payment story end to end and print the settlement.
    Demo {
        /// Work in this directory (default: a fresh temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Draw every QR code in the terminal too.
        #[arg(long)]
        show: bool,
    },
    /// The issuer's admin API: instruments, merchant certificates, revocations, the report.
    #[command(subcommand)]
    Issuer(IssuerCmd),
    /// The customer's wallet: vouchers, payments, receipts.
    #[command(subcommand)]
    Wallet(WalletCmd),
    /// The merchant's till: requests, accepting payments, receipts.
    #[command(subcommand)]
    Merchant(MerchantCmd),
    /// Decode and verify any offpay message: a QR image, a file, QR text or hex.
    Inspect {
        /// A QR image (PNG, JPEG, GIF), a file holding the message or its QR text, or hex.
        input: String,
    },
}

#[derive(Subcommand)]
enum IssuerCmd {
    /// Create an instrument account (card, bank account) that vouchers are drawn on; its
    /// credential is shown once.
    Instrument {
        /// Its currency (ISO 4217).
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// A label for the back office.
        #[arg(long)]
        label: Option<String>,
    },
    /// Add funds to an instrument.
    Fund {
        /// The instrument's id.
        #[arg(long)]
        instrument: String,
        /// Amount, e.g. 100.00.
        #[arg(long)]
        amount: String,
        /// A reference unique to this funding: running the command again with it funds
        /// nothing more (default: a new one each time).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Certify a merchant: create its key and certificate in its data directory.
    CertifyMerchant {
        /// Merchant id: 1 to 8 characters, e.g. CAFE-001.
        #[arg(long)]
        id: String,
        /// Name shown to customers (at most 32 bytes).
        #[arg(long)]
        name: String,
        /// The merchant's data directory (default: --data).
        #[arg(long)]
        merchant_data: Option<PathBuf>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Revoke a voucher or a merchant; devices get the new list when they sync.
    Revoke {
        /// Voucher id (32 hex digits).
        #[arg(long)]
        voucher: Option<String>,
        /// Merchant id.
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Close expired vouchers, then print the settlement: credits per merchant, vouchers,
    /// fraud proofs.
    Report,
}

#[derive(Subcommand)]
enum WalletCmd {
    /// Create the wallet's key, trusting the issuer at --issuer.
    Init {
        /// The issuer key to trust (hex); default: the key the issuer shows now.
        #[arg(long)]
        issuer_key: Option<String>,
    },
    /// Pre-authorize an amount (online): the issuer reserves it on the instrument and signs
    /// a voucher bound to this wallet.
    Preauth {
        /// Amount, e.g. 50.00.
        #[arg(long)]
        amount: String,
        /// ISO 4217 currency code.
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// The instrument's id, as the issuer handed it out.
        #[arg(long)]
        instrument: String,
        /// The instrument's credential.
        #[arg(long, env = "OFFPAY_CREDENTIAL", hide_env_values = true)]
        credential: String,
    },
    /// Pay a merchant's request (offline): scan its QR image, write the payment's.
    Pay {
        /// The payment request's QR image.
        #[arg(long)]
        scan: PathBuf,
        /// Where to write the payment's QR image (PNG).
        #[arg(long)]
        qr: PathBuf,
        /// Draw the QR code in the terminal too.
        #[arg(long)]
        show: bool,
    },
    /// Store the merchant's receipt (offline): scan its QR image.
    Receipt {
        /// The receipt's QR image.
        #[arg(long)]
        scan: PathBuf,
    },
    /// List the vouchers and the stored offline payments.
    Payments,
    /// Sync payments and receipts to the issuer (online).
    Sync,
}

#[derive(Subcommand)]
enum MerchantCmd {
    /// Ask for a payment (offline): write the request's QR image.
    Request {
        /// Amount, e.g. 4.20.
        #[arg(long)]
        amount: String,
        /// ISO 4217 currency code.
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// A reference shown to the customer (at most 32 bytes).
        #[arg(long)]
        reference: Option<String>,
        /// Where to write the request's QR image (PNG).
        #[arg(long)]
        qr: PathBuf,
        /// Draw the QR code in the terminal too.
        #[arg(long)]
        show: bool,
    },
    /// Accept a payment (offline): scan its QR image, write the receipt's.
    Accept {
        /// The payment's QR image.
        #[arg(long)]
        scan: PathBuf,
        /// Where to write the receipt's QR image (PNG).
        #[arg(long)]
        qr: PathBuf,
        /// Draw the QR code in the terminal too.
        #[arg(long)]
        show: bool,
    },
    /// List the accepted offline payments.
    Payments,
    /// Sync payments and receipts to the issuer (online).
    Sync,
}

fn run(cli: Cli) -> fail::Result<(roles::Output, Option<fail::Failure>)> {
    let data = cli.data.as_path();
    let now = || data::now(cli.now);
    let ok = |o: roles::Output| Ok((o, None));
    let a = online::IssuerArgs {
        url: cli.issuer.as_deref(),
        admin_url: &cli.admin_url,
        admin_token: cli.admin_token.as_deref(),
        admin_token_file: &cli.admin_token_file,
    };
    match cli.command {
        Command::Demo { .. } => unreachable_demo(),
        Command::Inspect { input } => inspect::inspect(data, &input, now()?),
        Command::Issuer(c) => match c {
            IssuerCmd::Instrument { currency, label } => {
                ok(online::create_instrument(&a, &currency, label.as_deref())?)
            }
            IssuerCmd::Fund {
                instrument,
                amount,
                reference,
            } => ok(online::fund(
                &a,
                &instrument,
                &amount,
                reference.as_deref(),
            )?),
            IssuerCmd::CertifyMerchant {
                id,
                name,
                merchant_data,
                days,
            } => ok(online::certify_merchant(
                &a,
                data,
                &id,
                &name,
                merchant_data.as_deref(),
                days,
            )?),
            IssuerCmd::Revoke { voucher, merchant } => {
                ok(online::revoke(&a, voucher.as_deref(), merchant.as_deref())?)
            }
            IssuerCmd::Report => ok(online::report(&a)?),
        },
        Command::Wallet(c) => match c {
            WalletCmd::Init { issuer_key } => {
                ok(online::wallet_init(&a, data, issuer_key.as_deref())?)
            }
            WalletCmd::Preauth {
                amount,
                currency,
                instrument,
                credential,
            } => ok(online::preauth(
                &a,
                data,
                &amount,
                &currency,
                &instrument,
                &credential,
                cli.now,
            )?),
            WalletCmd::Pay { scan, qr, show } => ok(roles::pay(data, &scan, &qr, show, cli.now)?),
            WalletCmd::Receipt { scan } => ok(roles::receipt(data, &scan)?),
            WalletCmd::Payments => ok(roles::wallet_payments(data, cli.now)?),
            WalletCmd::Sync => ok(online::wallet_sync(&a, data, cli.now)?),
        },
        Command::Merchant(c) => match c {
            MerchantCmd::Request {
                amount,
                currency,
                reference,
                qr,
                show,
            } => ok(roles::request(
                data,
                &amount,
                &currency,
                reference.as_deref(),
                &qr,
                show,
                cli.now,
            )?),
            MerchantCmd::Accept { scan, qr, show } => {
                ok(roles::accept(data, &scan, &qr, show, cli.now)?)
            }
            MerchantCmd::Payments => ok(roles::merchant_payments(data)?),
            MerchantCmd::Sync => ok(online::merchant_sync(&a, data, cli.now)?),
        },
    }
}

fn unreachable_demo() -> fail::Result<(roles::Output, Option<fail::Failure>)> {
    Err(fail::Failure::new("the demo runs on its own", ""))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Demo { dir, show } = cli.command {
        return match demo::demo(dir, show) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("offpay: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let json = cli.json;
    match run(cli) {
        Ok((out, failure)) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out.json).unwrap_or_default()
                );
            } else {
                println!("{}", out.text);
            }
            match failure {
                None => ExitCode::SUCCESS,
                Some(f) => {
                    eprintln!("offpay: {f}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(f) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": f.to_string(), "code": f.code()})
                );
            }
            eprintln!("offpay: {f}");
            ExitCode::FAILURE
        }
    }
}
