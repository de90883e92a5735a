//! The issuer's operations over its storage: what each endpoint does, with no HTTP in it.

use crate::api::{self, ApiError, IssuerInfo, Policy};
use crate::error::Failure;
use crate::settle::{self, Trust};
use crate::storage::{PreAuth, Storage};
use offpay_protocol::{
    Amount, Currency, Issuer, KeyId, MerchantId, PublicKey, Timestamp, VerifiedPreAuth, VoucherId,
    VoucherTerms, crypto::sha256,
};
use rand_core::{OsRng, RngCore};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The service's clock: Unix seconds.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(u32::try_from(secs).unwrap_or(u32::MAX))
    })
}

/// The issuer's signing key: a software key from `issuer.key`, or a key in an HSM (feature
/// `pkcs11`).
pub type IssuerKey = Box<dyn offpay_protocol::Signer + Send + Sync>;

/// The issuer: its key, its policy and its ledger.
pub struct Ledger {
    issuer: Arc<Issuer<IssuerKey>>,
    key_window: (Timestamp, Timestamp),
    trust: Trust,
    policy: Policy,
    storage: Arc<dyn Storage>,
    clock: Clock,
}

/// What one sync did, for metrics.
pub struct SyncResult {
    /// The signed report.
    pub report: Vec<u8>,
    /// Records in the batch.
    pub records: usize,
    /// Records new to the ledger.
    pub new_records: usize,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Ledger {
    /// A ledger signing with `issuer`, whose key devices trust over `key_window`.
    pub fn new(
        issuer: Issuer<IssuerKey>,
        key_window: (Timestamp, Timestamp),
        policy: Policy,
        storage: Arc<dyn Storage>,
        clock: Clock,
    ) -> Result<Self, Failure> {
        let bad = |m: &str| Failure::api(ApiError::BadJson, format!("policy: {m}"));
        if policy.voucher_secs == 0 || policy.max_payments == 0 {
            return Err(bad("a voucher needs at least one second and one payment"));
        }
        if policy.max_single_minor == Some(0) || policy.max_amount_minor == Some(0) {
            return Err(bad("the largest single payment and amount are at least 1"));
        }
        let mut trust = Trust::new();
        trust.add(issuer.public_key(), key_window.0, key_window.1)?;
        Ok(Ledger {
            issuer: Arc::new(issuer),
            key_window,
            trust,
            policy,
            storage,
            clock,
        })
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The storage.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The trust store settlement uses.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The issuer's public key.
    pub fn public_key(&self) -> PublicKey {
        self.issuer.public_key()
    }

    /// Publishes the first (empty) revocation list if none exists, so that
    /// `GET /v1/revocations` always has one.
    pub fn ensure_revocation_list(&self) -> Result<(), Failure> {
        if self.storage.revocation_list()?.is_none() {
            self.revoke(None, None)?;
        }
        Ok(())
    }

    /// `GET /v1/issuer`.
    pub fn info(&self) -> Result<IssuerInfo, Failure> {
        let key = self.issuer.public_key();
        Ok(IssuerInfo {
            keys: vec![api::IssuerKey {
                public_key: hex::encode(key.0),
                key_id: hex::encode(KeyId::of(&key).0),
                not_before: self.key_window.0.0,
                not_after: self.key_window.1.0,
            }],
            revocations: api::path::REVOCATIONS.to_string(),
            revocation_serial: self.storage.revocation_list()?.map_or(0, |(s, _)| s),
            policy: self.policy,
        })
    }

    /// `POST /v1/preauthorizations`.
    pub fn preauthorize(&self, request: &[u8], credential: &str) -> Result<Vec<u8>, Failure> {
        let req = VerifiedPreAuth::check(request)?;
        let bad = || {
            Failure::api(
                ApiError::BadCredential,
                "the instrument does not exist or the credential is not its own",
            )
        };
        let given = sha256(credential.trim().as_bytes());
        let instrument = std::str::from_utf8(req.instrument_id).map_err(|_| bad())?;
        let (hash, currency) = self.storage.credential(instrument)?.ok_or_else(bad)?;
        if !bool::from(given.ct_eq(&hash)) {
            return Err(bad());
        }
        let refusal = if currency != req.currency {
            Some(offpay_protocol::Rejection::WrongCurrency)
        } else if self
            .policy
            .max_amount_minor
            .is_some_and(|max| req.amount.0 > max)
        {
            Some(offpay_protocol::Rejection::OverPolicy)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // A request granted before gets its voucher back, whatever the policy is now. (A
            // request the policy allows learns the same inside the write: one read less.)
            return match self.storage.granted(&req.holder_key, &req.client_nonce)? {
                Some((request_hash, voucher)) if request_hash == sha256(request) => Ok(voucher),
                Some(_) => Err(Failure::api(
                    ApiError::NonceReused,
                    "this holder key already used this client nonce for another request",
                )),
                None => Err(refusal.into()),
            };
        }
        let now = self.now();
        let terms = VoucherTerms {
            not_before: now,
            not_after: now.saturating_add(self.policy.voucher_secs),
            max_single: self
                .policy
                .max_single_minor
                .filter(|m| *m < req.amount.0)
                .map(Amount),
            max_payments: self.policy.max_payments,
        };
        // Signed before the transaction (no ledger state goes into a voucher); a retried
        // request gets the voucher stored the first time instead.
        let voucher = self
            .issuer
            .issue_voucher_for(&req, terms, &mut OsRng)?
            .to_vec();
        self.storage.preauthorize(PreAuth {
            instrument: instrument.to_string(),
            holder_key: req.holder_key,
            client_nonce: req.client_nonce,
            request_hash: sha256(request),
            amount: req.amount,
            currency: req.currency,
            now,
            voucher,
        })
    }

    /// `POST /v1/sync`.
    pub fn sync(&self, batch: &[u8]) -> Result<SyncResult, Failure> {
        let now = self.now();
        let grace = self.policy.grace_secs;
        let (trust, owned) = (self.trust.clone(), batch.to_vec());
        let synced = self.storage.sync(
            batch.to_vec(),
            now,
            Box::new(move |reader| settle::ingest(reader, &trust, grace, &owned, now)),
        )?;
        let report = synced.ingested.report(&self.issuer, now)?;
        Ok(SyncResult {
            report,
            records: synced.ingested.entries.len(),
            new_records: synced.new_records,
        })
    }

    /// Admin: a new instrument account and its credential (shown once).
    pub fn create_instrument(
        &self,
        n: &api::NewInstrument,
    ) -> Result<api::CreatedInstrument, Failure> {
        let cur = Currency::parse(&n.currency).ok_or_else(|| {
            Failure::api(
                ApiError::BadJson,
                "currency must be three capital letters (ISO 4217)",
            )
        })?;
        if let Some(l) = &n.label
            && (l.len() > 64 || l.chars().any(char::is_control))
        {
            return Err(Failure::api(
                ApiError::BadJson,
                "label: at most 64 bytes, no control characters",
            ));
        }
        let id = format!("ins-{}", random_hex(12));
        let credential = random_hex(32);
        let instrument = self.storage.create_instrument(
            &id,
            sha256(credential.as_bytes()),
            cur,
            n.label.as_deref(),
            self.now(),
        )?;
        Ok(api::CreatedInstrument {
            instrument,
            credential,
        })
    }

    /// Admin: funds an instrument.
    pub fn fund(&self, id: &str, f: &api::Funding) -> Result<api::Instrument, Failure> {
        if f.amount_minor == 0 {
            return Err(Failure::api(
                ApiError::BadJson,
                "amount_minor must be at least 1",
            ));
        }
        if f.reference.is_empty() || f.reference.len() > 64 {
            return Err(Failure::api(ApiError::BadJson, "reference: 1 to 64 bytes"));
        }
        self.storage
            .fund(id, Amount(f.amount_minor), &f.reference, self.now())
    }

    /// Admin: an instrument's balances.
    pub fn instrument(&self, id: &str) -> Result<api::Instrument, Failure> {
        self.storage
            .instrument(id)?
            .map(|r| r.instrument)
            .ok_or_else(|| Failure::api(ApiError::NotFound, "no such instrument"))
    }

    /// Admin: certifies a merchant key.
    pub fn certify(&self, m: &api::NewMerchant) -> Result<Vec<u8>, Failure> {
        let bad = |what: &str| Failure::api(ApiError::BadJson, what.to_string());
        let id =
            api::parse_merchant(&m.merchant_id).ok_or_else(|| bad("merchant_id: 16 hex digits"))?;
        let key =
            api::parse_key(&m.merchant_key).ok_or_else(|| bad("merchant_key: 64 hex digits"))?;
        if !(1..=3650).contains(&m.days) {
            return Err(bad("days: 1 to 3650"));
        }
        let now = self.now();
        if now >= self.key_window.1 {
            return Err(offpay_protocol::VerifyError::IssuerKeyNotValid.into());
        }
        let not_after = now
            .saturating_add(m.days.saturating_mul(86_400))
            .min(self.key_window.1);
        let cert = self
            .issuer
            .certify_merchant(id, key, &m.display_name, now, not_after)
            .map_err(|e| match e {
                offpay_protocol::Error::Encode(_) => {
                    bad("display_name: 1 to 32 bytes of UTF-8, no control characters")
                }
                other => Failure::Protocol(other),
            })?
            .to_vec();
        self.storage.add_merchant(&cert, now)?;
        Ok(cert)
    }

    /// Admin: revokes a voucher and/or a merchant and publishes the new list.
    pub fn revoke(
        &self,
        voucher: Option<VoucherId>,
        merchant: Option<MerchantId>,
    ) -> Result<Vec<u8>, Failure> {
        let now = self.now();
        let issuer = self.issuer.clone();
        self.storage.revoke(
            voucher,
            merchant,
            now,
            Box::new(move |serial, v, m| Ok(issuer.revocation_list(serial, now, v, m)?)),
        )
    }

    /// Admin: closes every voucher whose settlement window has ended.
    pub fn close_expired(&self) -> Result<api::Closed, Failure> {
        let now = self.now();
        let grace = self.policy.grace_secs;
        let trust = self.trust.clone();
        let closed = self.storage.close_expired(
            now,
            grace,
            std::sync::Arc::new(move |open| settle::close(&trust, grace, open, now)),
        )?;
        Ok(api::Closed { closed })
    }
}
