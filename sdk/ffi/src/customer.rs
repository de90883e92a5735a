//! The customer's wallet.

use crate::signer::config;
use crate::*;
use offpay_sdk as sdk;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A customer's wallet (see `offpay_sdk::CustomerWallet`).
#[derive(Debug, uniffi::Object)]
pub struct CustomerWallet(pub(crate) sdk::CustomerWallet);

#[uniffi::export]
impl CustomerWallet {
    /// **Online.** Creates a wallet in the new directory `dir`; with `signer`, the app keeps
    /// the holder key.
    #[uniffi::constructor]
    pub fn create(
        dir: String,
        config: Config,
        signer: Option<Arc<dyn HolderSigner>>,
    ) -> Result<Arc<Self>> {
        let c = self::config(config, signer);
        Ok(Arc::new(Self(sdk::CustomerWallet::create(
            Path::new(&dir),
            c,
        )?)))
    }

    /// Opens the wallet in `dir` (with the signer it was created with, if any).
    #[uniffi::constructor]
    pub fn open(
        dir: String,
        config: Config,
        signer: Option<Arc<dyn HolderSigner>>,
    ) -> Result<Arc<Self>> {
        let c = self::config(config, signer);
        Ok(Arc::new(Self(sdk::CustomerWallet::open(
            Path::new(&dir),
            c,
        )?)))
    }

    /// The holder key's public half.
    pub fn holder_key(&self) -> Vec<u8> {
        self.0.holder_key()
    }

    /// **Online.** Reserves `amount` on `instrument` and installs the voucher.
    pub fn pre_authorize_instrument(
        &self,
        instrument: String,
        credential: String,
        amount: Money,
    ) -> Result<Authorization> {
        let a = self
            .0
            .pre_authorize_instrument(&instrument, &credential, amount.try_into()?)?;
        Ok(Authorization {
            voucher_id: a.voucher_id,
            amount: a.amount.into(),
            not_before: a.not_before,
            not_after: a.not_after,
            max_single: a.max_single.into(),
            max_payments: a.max_payments,
        })
    }

    /// Checks a payment request and says what to show before approval. Changes nothing.
    pub fn review(&self, request: Vec<u8>) -> Result<PaymentReview> {
        let r = self.0.review(&request)?;
        Ok(PaymentReview {
            merchant_name: r.merchant_name,
            merchant_id: r.merchant_id,
            amount: r.amount.into(),
            reference: r.reference,
            created_at: r.created_at,
            already_paid: r.already_paid,
            available: r.available.into(),
        })
    }

    /// Pays a request; the payment is stored before it is returned.
    pub fn pay(&self, request: Vec<u8>) -> Result<PaymentMade> {
        let p = self.0.pay(&request)?;
        Ok(PaymentMade {
            payment_id: p.payment_id,
            bytes: p.bytes,
            amount: p.amount.into(),
            merchant_name: p.merchant_name,
            already_paid: p.already_paid,
            remaining: p.remaining.into(),
        })
    }

    /// Stores a merchant's receipt; returns the payment id.
    pub fn receive_receipt(&self, receipt: Vec<u8>) -> Result<String> {
        Ok(self.0.receive_receipt(&receipt)?)
    }

    /// Every payment the wallet holds, with receipt and settlement state.
    pub fn fetch_offline_payments(&self) -> Vec<OfflinePayment> {
        self.0
            .fetch_offline_payments()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Every payment ever made: the history a compaction moved settled ones to, then those
    /// held.
    pub fn fetch_payment_history(&self) -> Result<Vec<OfflinePayment>> {
        Ok(self
            .0
            .fetch_payment_history()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The vouchers and what is left.
    pub fn balances(&self) -> Result<Vec<Balance>> {
        Ok(self
            .0
            .balances()?
            .into_iter()
            .map(|b| Balance {
                voucher_id: b.voucher_id,
                limit: b.limit.into(),
                remaining: b.remaining.into(),
                payments: b.payments,
                not_after: b.not_after,
                expired: b.expired,
            })
            .collect())
    }

    /// What can be spent in `currency` now.
    pub fn available(&self, currency: String) -> Result<Money> {
        Ok(self.0.available(&currency)?.into())
    }

    /// **Online.** Syncs payments and receipts with the issuer.
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

    /// Keeps a till's sync batch to upload with the next sync; returns its id.
    pub fn carry_batch(&self, batch: Vec<u8>) -> Result<String> {
        Ok(self.0.carry_batch(&batch)?)
    }

    /// The issuer's reports on carried batches, to show to their tills.
    pub fn relay_reports(&self) -> Result<Vec<RelayReport>> {
        Ok(self
            .0
            .relay_reports()?
            .into_iter()
            .map(|r| RelayReport {
                batch_id: r.batch_id,
                report: r.report,
            })
            .collect())
    }

    /// Forgets a carried batch and its report.
    pub fn forget_relay(&self, batch_id: String) -> Result<()> {
        Ok(self.0.forget_relay(&batch_id)?)
    }
}

#[uniffi::export]
impl CustomerWallet {
    /// A BLE session with the till whose engagement was scanned.
    pub fn ble_session(&self, engagement: Vec<u8>) -> Result<Arc<WalletBleSession>> {
        let s = self.0.ble_session(&engagement)?;
        Ok(Arc::new(WalletBleSession(Mutex::new(s))))
    }
}
