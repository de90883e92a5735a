//! The merchant's till and its enrollment.

use crate::signer::config;
use crate::*;
use offpay_sdk as sdk;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A merchant's till (see `offpay_sdk::MerchantTill`).
#[derive(Debug, uniffi::Object)]
pub struct MerchantTill(pub(crate) sdk::MerchantTill);

/// A till being set up: send `merchant_key()` for certification, then `finish`.
#[derive(uniffi::Object)]
pub struct TillEnrollment(Mutex<sdk::TillEnrollment>, [u8; 32]);

#[uniffi::export]
impl TillEnrollment {
    /// **Online.** Starts a till in the new directory `dir`.
    #[uniffi::constructor]
    pub fn start(dir: String, config: Config) -> Result<Arc<Self>> {
        let e = sdk::TillEnrollment::start(Path::new(&dir), self::config(config, None))?;
        let key = e.merchant_key();
        Ok(Arc::new(Self(Mutex::new(e), key)))
    }

    /// The merchant key to certify.
    pub fn merchant_key(&self) -> Vec<u8> {
        self.1.to_vec()
    }

    /// Installs the certificate and opens the till; a refused certificate changes nothing.
    pub fn finish(&self, certificate: Vec<u8>) -> Result<Arc<MerchantTill>> {
        let till = locked(&self.0).finish(&certificate)?;
        Ok(Arc::new(MerchantTill(till)))
    }
}

#[uniffi::export]
impl MerchantTill {
    /// Opens the till in `dir`.
    #[uniffi::constructor]
    pub fn open(dir: String, config: Config) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(sdk::MerchantTill::open(
            Path::new(&dir),
            self::config(config, None),
        )?)))
    }

    /// The merchant id.
    pub fn merchant_id(&self) -> String {
        self.0.merchant_id()
    }

    /// The certified name.
    pub fn merchant_name(&self) -> String {
        self.0.merchant_name()
    }

    /// Makes a signed payment request.
    pub fn create_request(&self, amount: Money, reference: Option<String>) -> Result<Vec<u8>> {
        Ok(self
            .0
            .create_request(amount.try_into()?, reference.as_deref())?)
    }

    /// Makes a request and draws it as one QR code (PNG).
    pub fn request_qr(&self, amount: Money, reference: Option<String>) -> Result<Vec<u8>> {
        Ok(self
            .0
            .request_qr(amount.try_into()?, reference.as_deref())?)
    }

    /// Checks a payment offline; returns the receipt or raises a refusal with its SPEC code.
    pub fn accept(&self, payment: Vec<u8>) -> Result<Accepted> {
        let a = self.0.accept(&payment)?;
        Ok(Accepted {
            payment_id: a.payment_id,
            amount: a.amount.into(),
            voucher_id: a.voucher_id,
            seq: a.seq,
            receipt: a.receipt,
        })
    }

    /// Every payment the till holds, with settlement state.
    pub fn fetch_offline_payments(&self) -> Vec<OfflinePayment> {
        self.0
            .fetch_offline_payments()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Every payment ever accepted: the history a compaction moved settled ones to, then
    /// those held.
    pub fn fetch_payment_history(&self) -> Result<Vec<OfflinePayment>> {
        Ok(self
            .0
            .fetch_payment_history()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// **Online.** Syncs with the issuer.
    pub fn sync_payments(&self) -> Result<SyncSummary> {
        Ok(self.0.sync_payments()?.into())
    }

    /// **Online.** Installs the newest revocation list.
    pub fn refresh(&self) -> Result<RefreshSummary> {
        Ok(self.0.refresh()?.into())
    }

    /// Trusts one more issuer key (hex).
    pub fn trust_issuer_key(&self, key: String, not_before: u32, not_after: u32) -> Result<()> {
        Ok(self.0.trust_issuer_key(&key, not_before, not_after)?)
    }

    /// The till's sync batch, or nothing when all is acknowledged.
    pub fn relay_batch(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.0.relay_batch()?)
    }

    /// The till's sync batch as `count` animated QR frame texts.
    pub fn relay_frames(&self, count: u32) -> Result<Vec<String>> {
        Ok(self.0.relay_frames(count as usize)?)
    }

    /// Applies an issuer's report a phone carried back; returns records acknowledged.
    pub fn receive_report(&self, report: Vec<u8>) -> Result<u32> {
        Ok(self.0.receive_report(&report)?)
    }
}

#[uniffi::export]
impl MerchantTill {
    /// Makes a request and a BLE session that serves it.
    pub fn ble_session(
        &self,
        amount: Money,
        reference: Option<String>,
    ) -> Result<Arc<TillBleSession>> {
        let s = self
            .0
            .ble_session(amount.try_into()?, reference.as_deref())?;
        Ok(Arc::new(TillBleSession(Mutex::new(s))))
    }
}
