//! A small blocking client for the issuer's API (feature `client`): what the CLI, the app SDK
//! and tests use. No async runtime, no server code: `ureq` over rustls.
//!
//! ```no_run
//! use offpay_issuer::client::Client;
//! let issuer = Client::new("http://127.0.0.1:7878")?;
//! let info = issuer.issuer_info()?;
//! println!("{} key(s); vouchers last {} s", info.keys.len(), info.policy.voucher_secs);
//! # Ok::<(), offpay_issuer::client::ClientError>(())
//! ```

use crate::api::{self, ErrorBody, path};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// The most bytes a response may have (a SyncReport is at most 74,929; a revocation list
/// 34,909; the admin listings grow with the ledger).
pub const MAX_RESPONSE: u64 = 8 * 1024 * 1024;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The service could not be reached (no network, refused, timed out): retry later.
    Offline(String),
    /// The service refused the request with a stable code (a SPEC §9 code or an API code
    /// of §15.4); nothing was changed, except perhaps for `internal` (810), which may come
    /// from a commit whose outcome the service could not learn.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The stable code.
        code: u16,
        /// The stable name.
        name: String,
        /// What the service said.
        message: String,
    },
    /// The service failed (HTTP 5xx without a refusal body) or answered something that is
    /// not this API.
    Server(String),
    /// The URL given is not a usable base URL.
    BadUrl(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Offline(e) => write!(f, "the issuer cannot be reached: {e}"),
            Self::Refused {
                code,
                name,
                message,
                ..
            } => write!(
                f,
                "the issuer refused: {message} ({name}, offpay error {code})"
            ),
            Self::Server(e) => write!(f, "the issuer failed: {e}"),
            Self::BadUrl(u) => write!(f, "'{u}' is not an issuer URL (http://HOST:PORT)"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The stable code when the service refused.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A client for one issuer service.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    admin_token: Option<String>,
}

impl Client {
    /// A client for the service at `base` (e.g. `http://127.0.0.1:7878`), with a 30-second
    /// limit on every call.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Self::with_timeout(base, Duration::from_secs(30))
    }

    /// As [`Client::new`], with another limit per call.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self, ClientError> {
        Self::build(base, timeout, None)
    }

    /// A client that trusts only the CA certificates in `pem` for `https://` (a deployment
    /// with its own CA, or a test's self-signed certificate) instead of the public roots.
    pub fn with_tls_roots(base: &str, pem: &[u8]) -> Result<Self, ClientError> {
        Self::with_options(base, Duration::from_secs(30), Some(pem))
    }

    /// A client with a limit per call and, when `pem` is given, only its CA certificates as
    /// roots for `https://`.
    pub fn with_options(
        base: &str,
        timeout: Duration,
        pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let Some(pem) = pem else {
            return Self::build(base, timeout, None);
        };
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(ClientError::BadUrl(
                "no certificate in the PEM given".into(),
            ));
        }
        Self::build(
            base,
            timeout,
            Some(ureq::tls::RootCerts::new_with_certs(&certs)),
        )
    }

    fn build(
        base: &str,
        timeout: Duration,
        roots: Option<ureq::tls::RootCerts>,
    ) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(ClientError::BadUrl(base));
        }
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0);
        if let Some(r) = roots {
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(r).build());
        }
        let agent: ureq::Agent = config.build().into();
        Ok(Client {
            base,
            agent,
            admin_token: None,
        })
    }

    /// The same client, authenticated for the admin API with `token`.
    pub fn with_admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.trim().to_string());
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    fn finish(
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut resp = resp.map_err(|e| match e {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed => ClientError::Offline(e.to_string()),
            other => ClientError::Server(other.to_string()),
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| ClientError::Offline(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => Err(ClientError::Refused {
                status,
                code: e.code,
                name: e.error,
                message: e.message,
            }),
            Err(_) => Err(ClientError::Server(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(body.get(..200).unwrap_or(&body))
            ))),
        }
    }

    fn get(&self, p: &str, admin: bool) -> Result<Vec<u8>, ClientError> {
        let mut req = self.agent.get(self.url(p));
        if admin && let Some(t) = &self.admin_token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        Self::finish(req.call())
    }

    fn post(
        &self,
        p: &str,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, &str)],
        admin: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let mut req = self
            .agent
            .post(self.url(p))
            .header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if admin && let Some(t) = &self.admin_token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        Self::finish(req.send(body))
    }

    fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body)
            .map_err(|e| ClientError::Server(format!("an answer that is not the API's: {e}")))
    }

    fn post_json<B: Serialize>(&self, p: &str, body: &B) -> Result<Vec<u8>, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Server(e.to_string()))?;
        self.post(p, api::JSON, &bytes, &[], true)
    }

    /// `GET /v1/issuer`.
    pub fn issuer_info(&self) -> Result<api::IssuerInfo, ClientError> {
        Self::json(&self.get(path::ISSUER, false)?)
    }

    /// `POST /v1/preauthorizations`: the PreAuthRequest's bytes and the instrument's
    /// credential → the Voucher's bytes. Sending the same request again returns the same
    /// voucher and reserves nothing more.
    pub fn preauthorize(&self, request: &[u8], credential: &str) -> Result<Vec<u8>, ClientError> {
        self.post(
            path::PREAUTHORIZATIONS,
            api::OCTET_STREAM,
            request,
            &[(api::CREDENTIAL_HEADER, credential)],
            false,
        )
    }

    /// `POST /v1/sync`: a SyncBatch's bytes → the SyncReport's bytes.
    pub fn sync(&self, batch: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.post(path::SYNC, api::OCTET_STREAM, batch, &[], false)
    }

    /// `GET /v1/revocations`: the newest RevocationList's bytes.
    pub fn revocations(&self) -> Result<Vec<u8>, ClientError> {
        self.get(path::REVOCATIONS, false)
    }

    /// `GET /healthz`.
    pub fn health(&self) -> Result<(), ClientError> {
        self.get(path::HEALTH, false).map(|_| ())
    }

    /// Admin: creates an instrument account; the credential is in the answer, once.
    pub fn create_instrument(
        &self,
        currency: &str,
        label: Option<&str>,
    ) -> Result<api::CreatedInstrument, ClientError> {
        Self::json(&self.post_json(
            path::ADMIN_INSTRUMENTS,
            &api::NewInstrument {
                currency: currency.to_string(),
                label: label.map(str::to_string),
            },
        )?)
    }

    /// Admin: adds funds to an instrument. `reference` is unique per instrument: a retry with
    /// the same reference funds nothing more.
    pub fn fund(
        &self,
        instrument: &str,
        amount_minor: u64,
        reference: &str,
    ) -> Result<api::Instrument, ClientError> {
        Self::json(&self.post_json(
            &format!("{}/{instrument}/funding", path::ADMIN_INSTRUMENTS),
            &api::Funding {
                amount_minor,
                reference: reference.to_string(),
            },
        )?)
    }

    /// Admin: an instrument's balances.
    pub fn instrument(&self, instrument: &str) -> Result<api::Instrument, ClientError> {
        Self::json(&self.get(&format!("{}/{instrument}", path::ADMIN_INSTRUMENTS), true)?)
    }

    /// Admin: certifies a merchant key → the MerchantCertificate's bytes.
    pub fn certify_merchant(&self, m: &api::NewMerchant) -> Result<Vec<u8>, ClientError> {
        self.post_json(path::ADMIN_MERCHANTS, m)
    }

    /// Admin: revokes → the new RevocationList's bytes.
    pub fn revoke(&self, r: &api::Revoke) -> Result<Vec<u8>, ClientError> {
        self.post_json(path::ADMIN_REVOCATIONS, r)
    }

    /// Admin: closes every voucher whose settlement window ended.
    pub fn close_expired(&self) -> Result<api::Closed, ClientError> {
        Self::json(&self.post(path::ADMIN_CLOSE, api::JSON, b"{}", &[], true)?)
    }

    /// Admin: merchant credits.
    pub fn credits(&self) -> Result<Vec<api::Credit>, ClientError> {
        Self::json(&self.get(path::ADMIN_CREDITS, true)?)
    }

    /// Admin: FraudProofs.
    pub fn fraud(&self) -> Result<Vec<api::Proof>, ClientError> {
        Self::json(&self.get(path::ADMIN_FRAUD, true)?)
    }

    /// Admin: every voucher's settled state.
    pub fn vouchers(&self) -> Result<Vec<api::VoucherState>, ClientError> {
        Self::json(&self.get(path::ADMIN_VOUCHERS, true)?)
    }
}
