//! The customer's wallet: pre-authorize online, pay offline, sync later.

use crate::device::{self, Config, RefreshSummary, merchant_text};
use crate::error::{Doing, client};
use crate::files::{DeviceDir, Trust};
use crate::signer::HolderKey;
use crate::sync::{self, SyncSummary, Syncable};
use crate::{Error, Money, OfflinePayment};
use offpay_issuer::client::Client;
use offpay_protocol::PreAuthRequest;
use offpay_protocol::crypto::HolderSigner as _;
use offpay_protocol::msg::{Payment, PaymentRequest, Receipt, RevocationList, Voucher};
use offpay_protocol::{FileStore, Nonce, SigningKey, Timestamp, Wallet, decode_signed};
use rand_core::{OsRng, RngCore};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

type Inner = Wallet<FileStore, HolderKey>;

/// The pre-authorization request sent and not yet answered (SPEC §15: the issuer answers the
/// same request with the same voucher).
const PENDING_PREAUTH: &str = "preauth.pending";

fn same_preauth(request: &[u8], instrument: &str, amount: Money) -> bool {
    decode_signed::<PreAuthRequest<'_>>(request).is_ok_and(|r| {
        r.instrument_id == instrument.as_bytes()
            && r.amount == amount.amount()
            && r.currency == amount.currency()
    })
}

/// A customer's wallet: its directory (holder key, journal, trust anchors, revocation list)
/// and its issuer. Safe to share between threads (calls are serialized); the directory is
/// locked against other processes while the wallet is open.
pub struct CustomerWallet {
    state: Mutex<State>,
    issuer: Client,
    dir: DeviceDir,
    config: Config,
    /// Why the app's signer last failed (none for a software key).
    signer_failure: Option<std::sync::Arc<Mutex<Option<String>>>>,
}

struct State {
    wallet: Inner,
    trust: Trust,
}

/// What a pre-authorization granted: a voucher, installed in the wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The voucher's id (hex).
    pub voucher_id: String,
    /// The amount reserved and spendable offline.
    pub amount: Money,
    /// The voucher's first second of validity (Unix seconds).
    pub not_before: u32,
    /// Its last second of validity.
    pub not_after: u32,
    /// The largest single payment.
    pub max_single: Money,
    /// The most payments it may make.
    pub max_payments: u32,
}

/// What to show the person before they approve a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentReview {
    /// The merchant's name as the issuer certified it.
    pub merchant_name: String,
    /// The merchant's id.
    pub merchant_id: String,
    /// The amount asked for.
    pub amount: Money,
    /// The merchant's reference, if any.
    pub reference: Option<String>,
    /// The merchant's time when it made the request (0 for a till without a clock).
    pub created_at: u32,
    /// Whether this wallet already paid this request (paying again sends the same payment).
    pub already_paid: bool,
    /// What the wallet can spend in this currency now.
    pub available: Money,
}

/// A payment made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentMade {
    /// The payment's id (hex).
    pub payment_id: String,
    /// The bytes to hand to the merchant (as a QR code or over BLE).
    pub bytes: Vec<u8>,
    /// The amount paid.
    pub amount: Money,
    /// The merchant's name.
    pub merchant_name: String,
    /// Whether this is a payment made earlier for the same request (nothing new was spent).
    pub already_paid: bool,
    /// What is left to spend in this currency.
    pub remaining: Money,
}

/// One voucher in the wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balance {
    /// The voucher id (hex).
    pub voucher_id: String,
    /// Its limit.
    pub limit: Money,
    /// What is left.
    pub remaining: Money,
    /// Payments made from it.
    pub payments: u32,
    /// Its last second of validity.
    pub not_after: u32,
    /// Whether its window has closed.
    pub expired: bool,
}

impl CustomerWallet {
    /// Creates a wallet in the new directory `dir` (online: the issuer's key is pinned now) and
    /// opens it. The directory is made complete or not at all.
    pub fn create(dir: &Path, config: Config) -> Result<Self, Error> {
        let issuer = config.client_to_create()?;
        let staged = DeviceDir::stage(dir, "wallet", "holder.key")?;
        device::write_anchor(&staged, &issuer, config.issuer_key.as_deref())?;
        FileStore::open(staged.dir().file("wallet.journal")).doing("creating the wallet")?;
        match &config.signer {
            Some(s) => {
                let key = HolderKey::app(s.clone())?;
                crate::files::write_atomic(
                    &staged.dir().file("holder.pub"),
                    hex::encode(key.holder_key().as_bytes()).as_bytes(),
                )?;
            }
            None => staged
                .dir()
                .write_key("holder.key", &SigningKey::generate(&mut OsRng))?,
        }
        let dir = staged.commit()?;
        Self::open_dir(dir, config)
    }

    /// Opens the wallet in `dir`. A wallet created with an app signer is opened with the same
    /// signer (its public key is checked).
    pub fn open(dir: &Path, config: Config) -> Result<Self, Error> {
        let d = DeviceDir::open(dir, "wallet", "holder.key", "holder.pub")?;
        Self::open_dir(d, config)
    }

    fn open_dir(dir: DeviceDir, config: Config) -> Result<Self, Error> {
        let key = match (&config.signer, dir.exists("holder.key")) {
            (None, true) => HolderKey::Software(Box::new(dir.key("holder.key")?)),
            (Some(_), true) => {
                return Err(Error::device(
                    "this wallet keeps its own holder key; open it without a signer",
                ));
            }
            (None, false) => {
                return Err(Error::device(
                    "this wallet's holder key is kept by the app; open it with its signer",
                ));
            }
            (Some(s), false) => {
                let key = HolderKey::app(s.clone())?;
                if dir.holder_public_key("holder.pub")? != key.holder_key() {
                    return Err(Error::Signer {
                        message: "the signer's key is not this wallet's holder key".into(),
                    });
                }
                key
            }
        };
        let trust = dir.trust()?;
        let signer_failure = key.failure();
        let store = FileStore::open(dir.file("wallet.journal")).doing("opening the wallet")?;
        let mut wallet = Wallet::open(store, key).doing("opening the wallet")?;
        // Compactions go through the history (`compact`), so that no payment is lost to a
        // listing.
        wallet.set_auto_compact(false);
        let issuer = config.client_for(&dir)?;
        Ok(CustomerWallet {
            state: Mutex::new(State { wallet, trust }),
            issuer,
            dir,
            config,
            signer_failure,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the wallet half-changed: every change
        // is one journal append, so the state behind a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn device_dir(&self) -> &DeviceDir {
        &self.dir
    }

    /// A signer failure with the app signer's own words.
    pub(crate) fn signer_said(&self, e: Error) -> Error {
        let said = self
            .signer_failure
            .as_ref()
            .and_then(|f| f.lock().ok().and_then(|mut f| f.take()));
        match (e, said) {
            (Error::Signer { message }, Some(why)) => Error::Signer {
                message: format!("{message}: {why}"),
            },
            (e, _) => e,
        }
    }

    pub(crate) fn config_now(&self) -> Result<Timestamp, Error> {
        self.config.now()
    }

    pub(crate) fn trust(&self) -> Trust {
        self.state().trust.clone()
    }

    pub(crate) fn revocation_list(&self) -> Result<Option<Vec<u8>>, Error> {
        self.dir.revocations()
    }

    pub(crate) fn with_wallet<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.state().wallet)
    }

    /// The wallet's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The issuer's URL this wallet talks to.
    pub fn issuer_url(&self) -> &str {
        self.issuer.base()
    }

    /// The holder key's public half (what vouchers are bound to): 32 bytes for Ed25519, 33
    /// (SEC1 compressed) for P-256.
    pub fn holder_key(&self) -> Vec<u8> {
        self.state().wallet.holder_key().as_bytes().to_vec()
    }

    /// **Online.** Asks the issuer to reserve `amount` on `instrument` (authorized by the
    /// instrument's `credential`) and installs the voucher it signs. At most 8 vouchers are
    /// held at once; a voucher that is spent out or past its window, and whose payments the
    /// issuer has acknowledged (a sync), is retired to make room (SPEC §8.1.1).
    pub fn pre_authorize_instrument(
        &self,
        instrument: &str,
        credential: &str,
        amount: Money,
    ) -> Result<Authorization, Error> {
        let retired = offpay_protocol::Rejection::Retired.code();
        match self.pre_authorize_once(instrument, credential, amount) {
            // A request sent again was answered with its voucher, installed after an earlier
            // answer was lost and retired since: that request is done with. Once more, afresh.
            Err(e) if e.code() == Some(retired) => {
                let _ = std::fs::remove_file(self.dir.file(PENDING_PREAUTH));
                self.pre_authorize_once(instrument, credential, amount)
            }
            r => r,
        }
    }

    fn pre_authorize_once(
        &self,
        instrument: &str,
        credential: &str,
        amount: Money,
    ) -> Result<Authorization, Error> {
        if instrument.is_empty() || instrument.len() > offpay_protocol::msg::MAX_TEXT_LEN {
            return Err(Error::invalid(
                "the instrument id must be 1 to 32 bytes; give the id the issuer handed out",
            ));
        }
        let now = self.config.now()?;
        // The issuer is asked for its keys without holding the wallet: payments go on meanwhile.
        device::check_trusted(&self.issuer, &self.trust(), now)?;
        let pending = self.dir.file(PENDING_PREAUTH);
        let request = {
            let mut s = self.state();
            if s.wallet.balances().count() >= 8 {
                s.wallet
                    .retire(now)
                    .doing("retiring spent and settled vouchers")?;
            }
            // What retiring made dead, now or earlier (a retired voucher's records stay while
            // a request it paid may be shown again), goes to the history when worth it. That is
            // housekeeping: should it fail, the journal stays as it is and the next call tries
            // again (a failing disk shows on the next append).
            let _ = self.compact(&mut s.wallet, now);
            if s.wallet.balances().count() >= 8 {
                let r = offpay_protocol::Rejection::CapacityExceeded;
                return Err(Error::Refused {
                    code: r.code(),
                    name: r.name().into(),
                    message:
                        "all 8 voucher slots hold vouchers still in use: a slot frees once its \
                              voucher is spent out or past its window and its payments are \
                              synced"
                            .into(),
                });
            }
            // A request sent before whose answer never came is sent again, the same bytes: the
            // issuer answers a repeated request with the voucher it granted, so a retry after
            // a timeout reserves nothing twice.
            match self.pending_preauth()? {
                Some(r) if same_preauth(&r, instrument, amount) => r,
                _ => {
                    let mut nonce = [0u8; 16];
                    OsRng.fill_bytes(&mut nonce);
                    let r = s
                        .wallet
                        .preauth_request(
                            instrument.as_bytes(),
                            amount.amount(),
                            amount.currency(),
                            Nonce(nonce),
                            now,
                        )
                        .doing("asking for the pre-authorization")
                        .map_err(|e| self.signer_said(e))?
                        .to_vec();
                    crate::files::write_atomic(&pending, &r)?;
                    r
                }
            }
        };
        let voucher = match self.issuer.preauthorize(&request, credential) {
            Ok(v) => v,
            Err(e) => {
                let e = client("pre-authorizing", e);
                if matches!(e, Error::IssuerRefused { .. }) && !e.is_transient() {
                    // Refused for good: nothing was reserved; the next call starts afresh.
                    let _ = std::fs::remove_file(&pending);
                }
                return Err(e);
            }
        };
        let mut s = self.state();
        let State { wallet, trust } = &mut *s;
        // Refused here (a clock behind the voucher's start, say), the request stays pending:
        // the same call later gets the same voucher again.
        let id = wallet
            .install_voucher(&voucher, trust, now)
            .doing("installing the voucher")?;
        let _ = std::fs::remove_file(&pending);
        let v = decode_signed::<Voucher>(&voucher).doing("reading the voucher")?;
        Ok(Authorization {
            voucher_id: id.to_string(),
            amount: Money::of(v.limit, v.currency),
            not_before: v.not_before.0,
            not_after: v.not_after.0,
            max_single: Money::of(v.policy.max_single, v.currency),
            max_payments: v.policy.max_payments,
        })
    }

    fn revocations(&self) -> Result<Option<Vec<u8>>, Error> {
        self.dir.revocations()
    }

    /// The pre-authorization request sent but not answered, if any.
    fn pending_preauth(&self) -> Result<Option<Vec<u8>>, Error> {
        let path = self.dir.file(PENDING_PREAUTH);
        if !path.exists() {
            return Ok(None);
        }
        crate::files::read_capped(
            &path,
            <PreAuthRequest<'static> as offpay_protocol::codec::Message<'static>>::MAX_LEN,
            "reading the pending pre-authorization",
        )
        .map(Some)
    }

    /// Checks a merchant's payment request (certificate, signature, validity, revocation) and
    /// says what to show the person before they approve. Changes nothing.
    pub fn review(&self, request: &[u8]) -> Result<PaymentReview, Error> {
        let now = self.config.now()?;
        let list = self.revocations()?;
        let s = self.state();
        let r =
            decode_signed::<PaymentRequest<'_>>(request).doing("reading the payment request")?;
        let cert = &r.certificate;
        s.trust
            .verify(cert, &cert.issuer_key_id, cert.not_before)
            .doing("checking the merchant's certificate")?;
        r.verify(&cert.merchant_key)
            .doing("checking the payment request")?;
        let already_paid = s.wallet.payments().any(|p| {
            p.payment.request_nonce == r.nonce
                && p.payment.merchant_id == cert.merchant_id
                && p.payment.amount == r.amount
                && p.payment.voucher.currency == r.currency
        });
        if !already_paid {
            cert.check_time(now)
                .doing("checking the merchant's certificate")?;
            if let Some(l) = &list {
                let l =
                    decode_signed::<RevocationList<'_>>(l).doing("reading the revocation list")?;
                if l.is_merchant_revoked(&cert.merchant_id) {
                    return Err(crate::error::protocol(
                        "checking the merchant",
                        offpay_protocol::Rejection::Revoked.into(),
                    ));
                }
            }
        }
        Ok(PaymentReview {
            merchant_name: cert.display_name.to_string(),
            merchant_id: merchant_text(&cert.merchant_id),
            amount: Money::of(r.amount, r.currency),
            reference: r.reference.map(str::to_string),
            created_at: r.created_at.0,
            already_paid,
            available: Money::of(s.wallet.remaining(r.currency, now), r.currency),
        })
    }

    /// Pays a merchant's request: checks it, draws on a voucher, stores the payment durably and
    /// returns its bytes. Paying the same request again returns the same payment.
    pub fn pay(&self, request: &[u8]) -> Result<PaymentMade, Error> {
        let now = self.config.now()?;
        let list = self.revocations()?;
        let list = list
            .as_deref()
            .map(decode_signed::<RevocationList<'_>>)
            .transpose()
            .doing("reading the revocation list")?;
        let mut s = self.state();
        let State { wallet, trust } = &mut *s;
        let r =
            decode_signed::<PaymentRequest<'_>>(request).doing("reading the payment request")?;
        let already_paid = wallet.payments().any(|p| {
            p.payment.request_nonce == r.nonce
                && p.payment.merchant_id == r.certificate.merchant_id
                && p.payment.amount == r.amount
                && p.payment.voucher.currency == r.currency
        });
        let bytes = wallet
            .pay(request, trust, list.as_deref(), now)
            .doing("paying")
            .map_err(|e| self.signer_said(e))?;
        let p = decode_signed::<Payment<'_>>(&bytes).doing("reading the payment")?;
        Ok(PaymentMade {
            payment_id: p.id().to_string(),
            bytes: bytes.to_vec(),
            amount: Money::of(r.amount, r.currency),
            merchant_name: r.certificate.display_name.to_string(),
            already_paid,
            remaining: Money::of(wallet.remaining(r.currency, now), r.currency),
        })
    }

    /// Stores the merchant's receipt for a payment of this wallet; returns the payment's id.
    pub fn receive_receipt(&self, receipt: &[u8]) -> Result<String, Error> {
        decode_signed::<Receipt>(receipt).doing("reading the receipt")?;
        let id = self
            .state()
            .wallet
            .receive_receipt(receipt)
            .doing("storing the receipt")?;
        Ok(id.to_string())
    }

    /// Every payment this wallet holds, oldest first, with its receipt and whether the issuer
    /// has settled it. When the wallet retires vouchers to make room, it compacts its journal
    /// (SPEC §8.5) and moves their payments, every one settled, to its history:
    /// [`fetch_payment_history`](Self::fetch_payment_history) lists those too.
    pub fn fetch_offline_payments(&self) -> Vec<OfflinePayment> {
        let s = self.state();
        s.wallet
            .payments()
            .map(|p| OfflinePayment::new(&p.payment, p.receipt, p.synced))
            .collect()
    }

    /// Every payment this wallet ever made, oldest first: those moved to its history by a
    /// compaction (settled), then those it holds. Reads the history file, which grows with
    /// every payment; [`fetch_offline_payments`](Self::fetch_offline_payments) does not.
    pub fn fetch_payment_history(&self) -> Result<Vec<OfflinePayment>, Error> {
        crate::history::with_live(&self.dir, self.fetch_offline_payments())
    }

    /// Compacts the journal when worth it, moving the payments it drops to the history first.
    fn compact(&self, wallet: &mut Inner, now: Timestamp) -> Result<(), Error> {
        let _history = crate::history::lock();
        let mut archive = None;
        let mut add = crate::history::archiving(&self.dir, &mut archive);
        wallet
            .compact_if_worth_archiving(now, &mut |p| add(&p.payment, p.receipt))
            .doing("compacting the wallet")?;
        Ok(())
    }

    /// The vouchers held and what is left on each.
    pub fn balances(&self) -> Result<Vec<Balance>, Error> {
        let now = self.config.now()?;
        Ok(self
            .state()
            .wallet
            .balances()
            .map(|b| Balance {
                voucher_id: b.id.to_string(),
                limit: Money::of(b.limit, b.currency),
                remaining: Money::of(b.remaining, b.currency),
                payments: b.payments,
                not_after: b.not_after.0,
                expired: now > b.not_after,
            })
            .collect())
    }

    /// What can be spent in `currency` (ISO 4217 code) now.
    pub fn available(&self, currency: &str) -> Result<Money, Error> {
        let c = crate::money::currency(currency)?;
        let now = self.config.now()?;
        Ok(Money::of(self.state().wallet.remaining(c, now), c))
    }

    /// **Online.** Sends every payment and receipt the issuer has not acknowledged, applies
    /// its signed reports, installs the newest revocation list, and uploads the tills' batches
    /// this wallet carries ([`CustomerWallet::carry_batch`]), keeping their reports.
    pub fn sync_payments(&self) -> Result<SyncSummary, Error> {
        let now = self.config.now()?;
        let trust = self.trust();
        device::check_trusted(&self.issuer, &trust, now)?;
        let mut summary = sync::sync(&self.issuer, self, &self.dir, &trust, now)?;
        self.upload_carried(&self.issuer, &mut summary);
        Ok(summary)
    }

    /// **Online.** Installs the newest revocation list and reports issuer keys not trusted.
    pub fn refresh(&self) -> Result<RefreshSummary, Error> {
        let now = self.config.now()?;
        let trust = self.trust();
        device::refresh(&self.issuer, &self.dir, &trust, now)
    }

    /// The issuer keys this device trusts (hex), with their validity (Unix seconds).
    pub fn issuer_keys(&self) -> Result<Vec<(String, u32, u32)>, Error> {
        self.dir.anchors_hex()
    }

    /// Trusts one more issuer key (hex), valid from `not_before` to `not_after` (Unix
    /// seconds), got by the app over a channel it authenticates itself.
    pub fn trust_issuer_key(
        &self,
        key: &str,
        not_before: u32,
        not_after: u32,
    ) -> Result<(), Error> {
        let mut s = self.state();
        s.trust = device::trust_key(&self.dir, key, not_before, not_after)?;
        Ok(())
    }
}

impl Syncable for CustomerWallet {
    fn batch(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.state()
            .wallet
            .sync_batch(buf)
            .doing("making the sync batch")
    }

    fn apply(&self, report: &[u8], trust: &Trust, now: Timestamp) -> Result<usize, Error> {
        self.state()
            .wallet
            .apply_report(report, trust, now)
            .doing("applying the issuer's report")
    }
}

impl std::fmt::Debug for CustomerWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerWallet")
            .field("dir", &self.dir.path())
            .field("issuer", &self.issuer.base())
            .finish()
    }
}
