//! The HTTP service: the public API and the admin API on their own listeners (axum on tokio),
//! with body bounds, a concurrency limit, a timeout per request and Prometheus metrics.

use crate::api::{self, ApiError, path};
use crate::error::Failure;
use crate::ledger::Ledger;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use offpay_protocol::codec::Message as _;
use offpay_protocol::msg::{PreAuthRequest, SyncBatch};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// The OpenAPI document of this API (kept in the repository as `issuer/openapi.json`).
pub const OPENAPI: &str = include_str!("../openapi.json");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    path: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: u16,
    name: String,
}

/// The service's metrics.
struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    refusals: Family<CodeLabels, Counter>,
    batches: Counter,
    records: Counter,
    new_records: Counter,
    preauthorizations: Counter,
    ingest_seconds: Histogram,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("offpay_issuer");
        let requests = Family::<RequestLabels, Counter>::default();
        let refusals = Family::<CodeLabels, Counter>::default();
        let batches = Counter::default();
        let records = Counter::default();
        let new_records = Counter::default();
        let preauthorizations = Counter::default();
        let ingest_seconds = Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]);
        registry.register(
            "requests",
            "HTTP requests by path and status",
            requests.clone(),
        );
        registry.register("refusals", "Refusals by stable code", refusals.clone());
        registry.register("sync_batches", "Sync batches settled", batches.clone());
        registry.register(
            "sync_records",
            "Records received in sync batches",
            records.clone(),
        );
        registry.register(
            "sync_new_records",
            "Records new to the ledger",
            new_records.clone(),
        );
        registry.register(
            "preauthorizations",
            "Vouchers returned",
            preauthorizations.clone(),
        );
        registry.register(
            "ingest_seconds",
            "Time to settle one sync batch, in seconds",
            ingest_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            refusals,
            batches,
            records,
            new_records,
            preauthorizations,
            ingest_seconds,
        }
    }
}

/// Limits on the service's work.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests handled at once per listener; more are refused with `busy` (503).
    pub concurrency: usize,
    /// The longest a request may take; then `busy` (503).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 64,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Shared state of both listeners.
#[derive(Clone)]
pub struct AppState {
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    admin_token: Arc<String>,
}

impl AppState {
    /// State over a ledger, with the admin token the admin API requires.
    pub fn new(ledger: Arc<Ledger>, admin_token: String) -> Self {
        AppState {
            ledger,
            metrics: Arc::new(Metrics::new()),
            admin_token: Arc::new(admin_token),
        }
    }
}

struct Refusal(Failure);

impl From<Failure> for Refusal {
    fn from(f: Failure) -> Self {
        Refusal(f)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.0.body();
        let mut resp = (status, axum::Json(&body)).into_response();
        resp.extensions_mut().insert(CodeLabels {
            code: body.code,
            name: body.error,
        });
        resp
    }
}

fn refuse(e: ApiError, message: impl Into<String>) -> Refusal {
    Refusal(Failure::api(e, message))
}

/// Runs blocking ledger work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Refusal(Failure::storage("a ledger task failed")))?
        .map_err(Refusal)
}

fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, api::OCTET_STREAM)], bytes).into_response()
}

/// The body, if its media type is `media` and it fits the route's limit.
fn body_of(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    media: &str,
) -> Result<Bytes, Refusal> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if ct.as_deref() != Some(media) {
        return Err(refuse(
            ApiError::WrongContentType,
            format!("the body must be {media}"),
        ));
    }
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refuse(
                ApiError::BodyTooLarge,
                "the body is larger than this endpoint reads",
            )
        } else {
            refuse(
                ApiError::BadJson,
                format!("the body could not be read: {e}"),
            )
        }
    })
}

fn json_of<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Refusal> {
    let b = body_of(headers, body, api::JSON)?;
    serde_json::from_slice(&b).map_err(|e| refuse(ApiError::BadJson, format!("bad JSON: {e}")))
}

async fn issuer_info(State(s): State<AppState>) -> Result<Response, Refusal> {
    let l = s.ledger.clone();
    Ok(axum::Json(blocking(move || l.info()).await?).into_response())
}

async fn preauthorize(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let body = body_of(&headers, body, api::OCTET_STREAM)?;
    let credential = headers
        .get(api::CREDENTIAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let l = s.ledger.clone();
    let voucher = blocking(move || l.preauthorize(&body, &credential)).await?;
    s.metrics.preauthorizations.inc();
    Ok(octets(voucher))
}

async fn sync(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let body = body_of(&headers, body, api::OCTET_STREAM)?;
    let l = s.ledger.clone();
    let started = Instant::now();
    let r = blocking(move || l.sync(&body)).await?;
    s.metrics
        .ingest_seconds
        .observe(started.elapsed().as_secs_f64());
    s.metrics.batches.inc();
    s.metrics.records.inc_by(r.records as u64);
    s.metrics.new_records.inc_by(r.new_records as u64);
    Ok(octets(r.report))
}

async fn revocations(State(s): State<AppState>) -> Result<Response, Refusal> {
    let l = s.ledger.clone();
    match blocking(move || l.storage().revocation_list()).await? {
        Some((_, list)) => Ok(octets(list)),
        None => Err(refuse(
            ApiError::NotFound,
            "no revocation list was published",
        )),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, api::JSON)], OPENAPI).into_response()
}

async fn health(State(s): State<AppState>) -> Result<Response, Refusal> {
    let l = s.ledger.clone();
    blocking(move || l.storage().check()).await?;
    Ok(axum::Json(serde_json::json!({"status": "ok"})).into_response())
}

async fn metrics(State(s): State<AppState>) -> Result<Response, Refusal> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &s.metrics.registry)
        .map_err(|e| Refusal(Failure::storage(e)))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

async fn create_instrument(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let n: api::NewInstrument = json_of(&headers, body)?;
    let l = s.ledger.clone();
    let created = blocking(move || l.create_instrument(&n)).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

async fn get_instrument(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, Refusal> {
    let l = s.ledger.clone();
    Ok(axum::Json(blocking(move || l.instrument(&id)).await?).into_response())
}

async fn fund(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let f: api::Funding = json_of(&headers, body)?;
    let l = s.ledger.clone();
    Ok(axum::Json(blocking(move || l.fund(&id, &f)).await?).into_response())
}

async fn certify(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let m: api::NewMerchant = json_of(&headers, body)?;
    let l = s.ledger.clone();
    let cert = blocking(move || l.certify(&m)).await?;
    Ok((StatusCode::CREATED, octets(cert)).into_response())
}

async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let r: api::Revoke = json_of(&headers, body)?;
    let voucher = match &r.voucher {
        Some(v) => Some(
            api::parse_voucher(v)
                .ok_or_else(|| refuse(ApiError::BadJson, "voucher: 32 hex digits"))?,
        ),
        None => None,
    };
    let merchant = match &r.merchant {
        Some(m) => Some(
            api::parse_merchant(m)
                .ok_or_else(|| refuse(ApiError::BadJson, "merchant: 16 hex digits"))?,
        ),
        None => None,
    };
    if voucher.is_none() && merchant.is_none() {
        return Err(refuse(
            ApiError::BadJson,
            "name a voucher or a merchant to revoke",
        ));
    }
    let l = s.ledger.clone();
    Ok(octets(blocking(move || l.revoke(voucher, merchant)).await?))
}

async fn close(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let _: serde_json::Map<String, serde_json::Value> = json_of(&headers, body)?;
    let l = s.ledger.clone();
    Ok(axum::Json(blocking(move || l.close_expired()).await?).into_response())
}

async fn credits(State(s): State<AppState>) -> Result<Response, Refusal> {
    let l = s.ledger.clone();
    Ok(axum::Json(blocking(move || l.storage().credits()).await?).into_response())
}

async fn fraud(State(s): State<AppState>) -> Result<Response, Refusal> {
    let l = s.ledger.clone();
    Ok(axum::Json(blocking(move || l.storage().proofs()).await?).into_response())
}

async fn vouchers(State(s): State<AppState>) -> Result<Response, Refusal> {
    let l = s.ledger.clone();
    Ok(axum::Json(blocking(move || l.storage().vouchers()).await?).into_response())
}

/// One route: its path, its method (for the OpenAPI check) and its handler.
pub type Route = (&'static str, &'static str, MethodRouter<AppState>);

fn bounded(r: MethodRouter<AppState>, limit: usize) -> MethodRouter<AppState> {
    r.layer(DefaultBodyLimit::max(limit))
}

/// The public API's routes.
pub fn public_routes() -> Vec<Route> {
    vec![
        (path::ISSUER, "get", get(issuer_info)),
        (
            path::PREAUTHORIZATIONS,
            "post",
            bounded(post(preauthorize), PreAuthRequest::MAX_LEN),
        ),
        (path::SYNC, "post", bounded(post(sync), SyncBatch::MAX_LEN)),
        (path::REVOCATIONS, "get", get(revocations)),
        (path::OPENAPI, "get", get(openapi)),
        (path::HEALTH, "get", get(health)),
    ]
}

/// The admin API's routes.
pub fn admin_routes() -> Vec<Route> {
    let json = |r: MethodRouter<AppState>| bounded(r, api::MAX_JSON_BODY);
    vec![
        (
            path::ADMIN_INSTRUMENTS,
            "post",
            json(post(create_instrument)),
        ),
        ("/admin/v1/instruments/{id}", "get", get(get_instrument)),
        (
            "/admin/v1/instruments/{id}/funding",
            "post",
            json(post(fund)),
        ),
        (path::ADMIN_MERCHANTS, "post", json(post(certify))),
        (path::ADMIN_REVOCATIONS, "post", json(post(revoke))),
        (path::ADMIN_CLOSE, "post", json(post(close))),
        (path::ADMIN_CREDITS, "get", get(credits)),
        (path::ADMIN_FRAUD, "get", get(fraud)),
        (path::ADMIN_VOUCHERS, "get", get(vouchers)),
        (path::HEALTH, "get", get(health)),
        (path::METRICS, "get", get(metrics)),
    ]
}

async fn require_admin(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = given.len() == s.admin_token.len()
        && bool::from(given.as_bytes().ct_eq(s.admin_token.as_bytes()));
    let open = req.uri().path() == path::HEALTH;
    if ok || open {
        next.run(req).await
    } else {
        refuse(
            ApiError::Unauthorized,
            "the admin token is missing or wrong",
        )
        .into_response()
    }
}

/// Bounds concurrency and time per request, and counts requests and refusals.
async fn guard(
    State((s, sem, limits)): State<(AppState, Arc<Semaphore>, Limits)>,
    req: Request,
    next: Next,
) -> Response {
    // Known paths only, so that a client cannot grow the label set.
    let known = [
        path::ISSUER,
        path::PREAUTHORIZATIONS,
        path::SYNC,
        path::REVOCATIONS,
        path::OPENAPI,
        path::HEALTH,
        path::METRICS,
        path::ADMIN_INSTRUMENTS,
        path::ADMIN_MERCHANTS,
        path::ADMIN_REVOCATIONS,
        path::ADMIN_CLOSE,
        path::ADMIN_CREDITS,
        path::ADMIN_FRAUD,
        path::ADMIN_VOUCHERS,
    ];
    let matched = known
        .iter()
        .find(|k| **k == req.uri().path())
        .map_or("other", |k| *k)
        .to_string();
    let resp = match sem.try_acquire() {
        Err(_) => {
            refuse(ApiError::Busy, "the service is at its limit; retry shortly").into_response()
        }
        Ok(_permit) => match tokio::time::timeout(limits.timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => refuse(ApiError::Busy, "the request took too long; retry").into_response(),
        },
    };
    s.metrics
        .requests
        .get_or_create(&RequestLabels {
            path: matched,
            status: resp.status().as_u16(),
        })
        .inc();
    if let Some(c) = resp.extensions().get::<CodeLabels>() {
        s.metrics.refusals.get_or_create(c).inc();
    }
    resp
}

async fn not_found() -> Refusal {
    refuse(ApiError::NotFound, "no such endpoint")
}

async fn not_allowed() -> Refusal {
    refuse(
        ApiError::MethodNotAllowed,
        "this method is not allowed here",
    )
}

fn router(routes: Vec<Route>, state: AppState, limits: Limits, admin: bool) -> Router {
    let mut r = Router::new();
    for (p, _, m) in routes {
        r = r.route(p, m);
    }
    let mut r = r
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed);
    if admin {
        r = r.layer(middleware::from_fn_with_state(state.clone(), require_admin));
    }
    let sem = Arc::new(Semaphore::new(limits.concurrency));
    r.layer(middleware::from_fn_with_state(
        (state.clone(), sem, limits),
        guard,
    ))
    .with_state(state)
}

/// The public API.
pub fn public_router(state: AppState, limits: Limits) -> Router {
    router(public_routes(), state, limits, false)
}

/// The admin API.
pub fn admin_router(state: AppState, limits: Limits) -> Router {
    router(admin_routes(), state, limits, true)
}
