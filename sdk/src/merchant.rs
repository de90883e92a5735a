//! The merchant's till: make requests, accept payments offline, sync later.

use crate::device::{self, Config, RefreshSummary, merchant_text};
use crate::error::Doing;
use crate::files::{DeviceDir, Staged, Trust};
use crate::sync::{self, SyncSummary, Syncable};
use crate::{Error, Money, OfflinePayment};
use offpay_issuer::client::Client;
use offpay_protocol::msg::{MerchantCertificate, Payment, RevocationList};
use offpay_protocol::{Acceptor, Context, FileStore, Signer, SigningKey, Timestamp, decode_signed};
use rand_core::OsRng;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

type Inner = Acceptor<FileStore, SigningKey>;

/// A merchant's till: its directory (merchant key, certificate, journal, trust anchors,
/// revocation list) and its issuer. Safe to share between threads; the directory is locked
/// against other processes while the till is open.
pub struct MerchantTill {
    state: Mutex<State>,
    issuer: Client,
    dir: DeviceDir,
    config: Config,
}

struct State {
    acceptor: Inner,
    trust: Trust,
}

/// A till being set up: its key exists, its certificate does not yet. Dropped without
/// [`TillEnrollment::finish`], nothing is left behind.
pub struct TillEnrollment {
    staged: Option<Staged>,
    key: [u8; 32],
    config: Config,
}

/// A payment accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The payment's id (hex).
    pub payment_id: String,
    /// The amount.
    pub amount: Money,
    /// The voucher it was drawn on (hex).
    pub voucher_id: String,
    /// Its sequence number on the voucher.
    pub seq: u32,
    /// The signed receipt to hand back to the customer.
    pub receipt: Vec<u8>,
}

impl TillEnrollment {
    /// **Online.** Starts creating a till in the new directory `dir`: pins the issuer's key
    /// and makes the merchant key. Send [`TillEnrollment::merchant_key`] to the issuer's back
    /// office for certification, then call [`TillEnrollment::finish`] with the certificate.
    pub fn start(dir: &Path, config: Config) -> Result<Self, Error> {
        let issuer = config.client_to_create()?;
        let staged = DeviceDir::stage(dir, "till", "merchant.key")?;
        device::write_anchor(&staged, &issuer, config.issuer_key.as_deref())?;
        FileStore::open(staged.dir().file("merchant.journal")).doing("creating the till")?;
        let key = SigningKey::generate(&mut OsRng);
        staged.dir().write_key("merchant.key", &key)?;
        Ok(TillEnrollment {
            staged: Some(staged),
            key: key.public_key().0,
            config,
        })
    }

    /// The merchant key's public half, to be certified.
    pub fn merchant_key(&self) -> [u8; 32] {
        self.key
    }

    /// Installs the issuer's certificate (it must certify this till's key under a trusted
    /// issuer key) and opens the till. A certificate that is refused changes nothing: call
    /// again with the right one.
    pub fn finish(&mut self, certificate: &[u8]) -> Result<MerchantTill, Error> {
        let staged = self
            .staged
            .as_ref()
            .ok_or_else(|| Error::device("this till was created already; open it"))?;
        let trust = staged.dir().trust()?;
        let c = decode_signed::<MerchantCertificate<'_>>(certificate)
            .doing("reading the certificate")?;
        trust
            .verify(&c, &c.issuer_key_id, c.not_before)
            .doing("checking the certificate")?;
        if c.merchant_key.0 != self.key {
            return Err(crate::error::protocol(
                "checking the certificate",
                offpay_protocol::Rejection::WrongMerchant.into(),
            ));
        }
        crate::files::write_atomic(&staged.dir().file("certificate.bin"), certificate)?;
        let staged = self
            .staged
            .take()
            .ok_or_else(|| Error::device("this till was created already; open it"))?;
        let dir = staged.commit()?;
        MerchantTill::open_dir(dir, self.config.clone())
    }
}

impl MerchantTill {
    /// **Online.** Creates a till in the new directory `dir` in one step, with `certify`
    /// getting the certificate for the merchant key it is given (from the issuer's back
    /// office). Nothing is left behind if it fails.
    pub fn enroll(
        dir: &Path,
        config: Config,
        certify: impl FnOnce([u8; 32]) -> Result<Vec<u8>, Error>,
    ) -> Result<Self, Error> {
        let mut e = TillEnrollment::start(dir, config)?;
        let cert = certify(e.merchant_key())?;
        e.finish(&cert)
    }

    /// Opens the till in `dir`.
    pub fn open(dir: &Path, config: Config) -> Result<Self, Error> {
        let d = DeviceDir::open(dir, "till", "merchant.key", "merchant.key")?;
        Self::open_dir(d, config)
    }

    fn open_dir(dir: DeviceDir, config: Config) -> Result<Self, Error> {
        let trust = dir.trust()?;
        let cert = crate::files::read_capped(
            &dir.file("certificate.bin"),
            <MerchantCertificate<'static> as offpay_protocol::codec::Message<'static>>::MAX_LEN,
            "reading the certificate",
        )?;
        let store = FileStore::open(dir.file("merchant.journal")).doing("opening the till")?;
        let mut acceptor =
            Acceptor::open(store, dir.key("merchant.key")?, &cert).doing("opening the till")?;
        // Compactions go through the history (after a sync), so that no sale is lost to a
        // listing.
        acceptor.set_auto_compact(false);
        let issuer = config.client_for(&dir)?;
        Ok(MerchantTill {
            state: Mutex::new(State { acceptor, trust }),
            issuer,
            dir,
            config,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is one journal append: the state behind a poisoned lock is consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn config_now(&self) -> Result<Timestamp, Error> {
        self.config.now()
    }

    pub(crate) fn trust(&self) -> Trust {
        self.state().trust.clone()
    }

    pub(crate) fn revocations(&self) -> Result<Option<Vec<u8>>, Error> {
        self.dir.revocations()
    }

    pub(crate) fn with_acceptor<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.state().acceptor)
    }

    /// The till's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The issuer's URL this till talks to.
    pub fn issuer_url(&self) -> &str {
        self.issuer.base()
    }

    /// The merchant id (`CAFE-001`).
    pub fn merchant_id(&self) -> String {
        merchant_text(&self.state().acceptor.merchant_id())
    }

    /// The merchant's certified name.
    pub fn merchant_name(&self) -> String {
        let s = self.state();
        decode_signed::<MerchantCertificate<'_>>(s.acceptor.certificate())
            .map(|c| c.display_name.to_string())
            .unwrap_or_default()
    }

    /// The merchant certificate's last second of validity.
    pub fn certificate_not_after(&self) -> u32 {
        let s = self.state();
        decode_signed::<MerchantCertificate<'_>>(s.acceptor.certificate())
            .map(|c| c.not_after.0)
            .unwrap_or(0)
    }

    /// Makes a signed payment request for `amount`, with an optional `reference` shown to the
    /// customer (1–32 bytes of text). Stored before it is returned; the oldest of more than 8
    /// open requests is dropped.
    pub fn create_request(&self, amount: Money, reference: Option<&str>) -> Result<Vec<u8>, Error> {
        if let Some(r) = reference {
            device::check_text("reference", r)?;
        }
        let now = self.config.now()?;
        let bytes = self
            .state()
            .acceptor
            .create_request(
                amount.amount(),
                amount.currency(),
                reference,
                now,
                &mut OsRng,
            )
            .doing("making the payment request")?;
        Ok(bytes.to_vec())
    }

    /// Makes a request as [`MerchantTill::create_request`] and draws it as one QR code (PNG).
    pub fn request_qr(&self, amount: Money, reference: Option<&str>) -> Result<Vec<u8>, Error> {
        let bytes = self.create_request(amount, reference)?;
        crate::qr::png(&bytes)
    }

    /// Checks a customer's payment offline (SPEC §8.2) and, if it is good, stores it and
    /// returns the signed receipt. A refusal is [`Error::Refused`] with its SPEC code and
    /// stores nothing. The same payment again gets the same receipt.
    pub fn accept(&self, payment: &[u8]) -> Result<Accepted, Error> {
        let now = self.config.now()?;
        let list = self.dir.revocations()?;
        let list = list
            .as_deref()
            .map(decode_signed::<RevocationList<'_>>)
            .transpose()
            .doing("reading the revocation list")?;
        let mut s = self.state();
        let State { acceptor, trust } = &mut *s;
        let ctx = Context {
            trust,
            revocations: list.as_deref(),
            now,
        };
        let receipt = acceptor
            .accept(payment, &ctx)
            .doing("accepting the payment")?;
        let p = decode_signed::<Payment<'_>>(payment).doing("reading the payment")?;
        Ok(Accepted {
            payment_id: p.id().to_string(),
            amount: Money::of(p.amount, p.voucher.currency),
            voucher_id: p.voucher.id.to_string(),
            seq: p.seq,
            receipt: receipt.to_vec(),
        })
    }

    /// Every payment this till holds, oldest first, with its receipt and whether the issuer
    /// has settled it. After a sync the till compacts its journal (SPEC §8.5) and moves the
    /// payments the issuer settled, beyond its memory of the last 256, to its history:
    /// [`fetch_payment_history`](Self::fetch_payment_history) lists those too.
    pub fn fetch_offline_payments(&self) -> Vec<OfflinePayment> {
        let s = self.state();
        s.acceptor
            .payments()
            .map(|p| OfflinePayment::new(&p.payment, Some(p.receipt), p.synced))
            .collect()
    }

    /// Every payment this till ever accepted, oldest first: those moved to its history by a
    /// compaction (settled), then those it holds. Reads the history file, which grows with
    /// every sale; [`fetch_offline_payments`](Self::fetch_offline_payments) does not.
    pub fn fetch_payment_history(&self) -> Result<Vec<OfflinePayment>, Error> {
        crate::history::with_live(&self.dir, self.fetch_offline_payments())
    }

    /// **Online.** Sends every payment and receipt the issuer has not acknowledged, applies
    /// its signed reports, and installs the newest revocation list.
    pub fn sync_payments(&self) -> Result<SyncSummary, Error> {
        let now = self.config.now()?;
        let trust = self.trust();
        device::check_trusted(&self.issuer, &trust, now)?;
        sync::sync(&self.issuer, self, &self.dir, &trust, now)
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

    /// Trusts one more issuer key (hex), valid from `not_before` to `not_after`, got by the
    /// app over a channel it authenticates itself.
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

impl Syncable for MerchantTill {
    fn batch(&self, buf: &mut [u8]) -> Result<usize, Error> {
        self.state()
            .acceptor
            .sync_batch(buf)
            .doing("making the sync batch")
    }

    fn apply(&self, report: &[u8], trust: &Trust, now: Timestamp) -> Result<usize, Error> {
        let mut s = self.state();
        let acked = s
            .acceptor
            .apply_report(report, trust, now)
            .doing("applying the issuer's report")?;
        if acked > 0 {
            // What the issuer settled may now be dead: compacted, through the history. That is
            // housekeeping: should it fail, the journal stays as it is and the next sync that
            // acknowledges something tries again.
            let _history = crate::history::lock();
            let mut archive = None;
            let mut add = crate::history::archiving(&self.dir, &mut archive);
            let _ = s
                .acceptor
                .compact_if_worth_archiving(&mut |p| add(&p.payment, Some(p.receipt)));
        }
        Ok(acked)
    }
}

impl std::fmt::Debug for MerchantTill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantTill")
            .field("dir", &self.dir.path())
            .field("issuer", &self.issuer.base())
            .finish()
    }
}
