//! # offpay-protocol
//!
//! Offline peer-to-peer payments: a customer and a merchant complete a payment while neither
//! device has connectivity, and everything settles exactly once when either is online again.
//! SPEC.md in the repository is the normative protocol; this crate is its reference
//! implementation.
//!
//! - **Issuer** ([`Issuer`]): signs vouchers (pre-authorizations bound to a device key),
//!   merchant certificates, revocation lists and sync reports.
//! - **Wallet** ([`Wallet`], customer): installs vouchers, pays requests, keeps its payments.
//! - **Acceptor** ([`Acceptor`], merchant): makes requests, accepts payments offline with one
//!   pure decision ([`acceptor::decide`]), signs receipts.
//! - **Settlement** ([`Settlement`], feature `alloc`): credits each payment once, proves
//!   double spending with a [`FraudProof`](msg::FraudProof), releases what is left.
//! - **Stores** ([`Store`]): [`MemStore`] (no allocator) and [`FileStore`] (feature `std`, an
//!   fsynced, checksummed journal that survives torn writes).
//!
//! ```
//! use offpay_protocol::*;
//! use rand_core::OsRng;
//!
//! let t = |s: u32| Timestamp(1_800_000_000 + s);
//! // Online: the issuer certifies a merchant and pre-authorizes 50.00 EUR for a device key.
//! let issuer = Issuer::new(SigningKey::generate(&mut OsRng));
//! let mut trust = TrustStore::<4>::new();
//! trust.add(issuer.public_key(), t(0), t(86_400 * 365))?;
//! let eur = Currency::parse("EUR").unwrap();
//!
//! let merchant_key = SigningKey::generate(&mut OsRng);
//! let cert = issuer.certify_merchant(MerchantId(*b"shop-001"), merchant_key.public_key(),
//!     "Corner Shop", t(0), t(86_400 * 365))?;
//! let mut shop: Acceptor<MemStore, _> = Acceptor::open(MemStore::new(), merchant_key, &cert)?;
//!
//! let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), SigningKey::generate(&mut OsRng))?;
//! let preauth = wallet.preauth_request(b"card-1234", Amount(5000), eur, Nonce([7; 16]), t(10))?;
//! let voucher = issuer.issue_voucher(&preauth, VoucherTerms { not_before: t(0), not_after: t(86_400),
//!     max_single: None, max_payments: 20 }, &mut OsRng)?;
//! wallet.install_voucher(&voucher, &trust, t(20))?;
//!
//! // Offline: request → payment → receipt.
//! let request = shop.create_request(Amount(420), eur, Some("coffee"), t(100), &mut OsRng)?;
//! let payment = wallet.pay(&request, &trust, None, t(101))?;
//! let receipt = shop.accept(&payment, &Context { trust: &trust, revocations: None, now: t(102) })?;
//! wallet.receive_receipt(&receipt)?;
//! assert_eq!(wallet.remaining(eur, t(103)), Amount(4580));
//!
//! // Online again: the merchant syncs, the issuer credits the payment once.
//! let mut ledger = Settlement::new(trust.clone(), DEFAULT_GRACE_SECS);
//! ledger.register_merchant(&cert)?;
//! let mut batch = vec![0u8; 4096];
//! let n = shop.sync_batch(&mut batch)?;
//! let ingested = ledger.ingest(&batch[..n], t(5000))?;
//! shop.apply_report(&ingested.report(&issuer, t(5000))?, &trust, t(5001))?;
//! assert_eq!(ledger.credit_of(&MerchantId(*b"shop-001"), eur), Amount(420));
//! # Ok::<(), offpay_protocol::Error>(())
//! ```
//!
//! ## A till that sees many vouchers
//!
//! Every accept verifies the voucher's issuer signature. [`FixedKeyTables`] precompute
//! multiples of the issuer's key (36 KiB of RAM, built once): its signatures then verify about
//! 1.7 times faster on a Cortex-M4 (1.5 times on x86-64) with exactly the same results (SPEC
//! §7.1, BENCHMARKS.md). `new` is `const`, so firmware keeps the tables in a `static` and
//! builds them in place.
//!
//! ```
//! # use offpay_protocol::*;
//! # let issuer_key = SigningKey::from_seed(&[1; 32]).public_key();
//! let mut trust = TrustStore::<4>::new();
//! trust.add(issuer_key, Timestamp(0), Timestamp(u32::MAX))?;
//! // On firmware: `static mut TABLES: FixedKeyTables = FixedKeyTables::new();`
//! let tables: &'static mut FixedKeyTables = Box::leak(Box::new(FixedKeyTables::new()));
//! tables.build(&issuer_key)?;
//! trust.attach_tables(tables)?;
//! # Ok::<(), offpay_protocol::Error>(())
//! ```
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `alloc` | yes (via `std`) | [`Settlement`], batch verification, revocation-list and report builders |
//! | `std` | yes | [`FileStore`], the crash-safe journal |
//!
//! With `default-features = false` the crate is `#![no_std]` with no allocator: the wallet,
//! the acceptor, every decoder and [`MemStore`] work on firmware.

#![no_std]
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod acceptor;
pub mod codec;
pub mod codes;
pub mod crypto;
pub mod error;
pub mod issuer;
mod journal;
pub mod msg;
#[cfg(feature = "alloc")]
pub mod settlement;
pub mod store;
pub mod trust;
pub mod types;
pub mod wallet;

pub use acceptor::{Acceptor, Context, SESSION_BINDING_DOMAIN};
pub use codec::{MessageBuf, MessageType, Signed, decode_signed, decode_unsigned};
pub use crypto::{FixedKeyTables, Signer, SigningKey};
pub use error::{DecodeError, EncodeError, Error, Rejection, StoreError, VerifyError};
pub use issuer::{Issuer, VerifiedPreAuth, VoucherTerms};
pub use msg::PreAuthRequest;
#[cfg(feature = "alloc")]
pub use settlement::{Change, DEFAULT_GRACE_SECS, Needs, Settlement, VoucherSummary};
#[cfg(feature = "std")]
pub use store::FileStore;
pub use store::{MemStore, Store};
pub use trust::TrustStore;
pub use types::*;
pub use wallet::Wallet;
