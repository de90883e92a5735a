//! # offpay-issuer
//!
//! The issuer service of offpay: devices pre-authorize vouchers and sync their payments over
//! HTTP, and the service settles them in its ledger (SQLite by default) with the rules of
//! `offpay-protocol`. SPEC.md §15 specifies the API; `issuer/README.md` covers deployment.
//!
//! - [`api`]: the API's JSON types, paths and error codes (always built).
//! - [`client`] (feature `client`): a small blocking client for apps, tills and the CLI.
//! - The service (feature `server`): [`ledger::Ledger`] (the operations), [`storage::Storage`]
//!   (one transaction per operation, written once in [`sql`] for [`sqlite::SqliteStorage`]
//!   and [`postgres::PgStorage`]), [`settle`] (settlement
//!   with its state in the database: only the rows a batch touches are read, and opening
//!   the ledger replays nothing), [`service`] (axum routers) and [`server`] (data
//!   directory, listeners, TLS, an in-process form).
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `client` | yes (via `server`) | [`client::Client`]: `ureq` over rustls, no async runtime |
//! | `server` | yes | the service, its SQLite and PostgreSQL ledgers and the `offpay-issuer` binary |
//!
//! An app that only talks to an issuer depends on this crate with
//! `default-features = false, features = ["client"]`: no axum, tokio or database driver.

#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod ledger;
#[cfg(feature = "server")]
pub mod postgres;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod settle;
#[cfg(feature = "server")]
pub mod sql;
#[cfg(feature = "server")]
pub mod sqlite;
#[cfg(feature = "server")]
pub mod storage;
