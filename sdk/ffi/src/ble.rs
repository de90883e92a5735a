//! BLE sessions: the till's and the wallet's sides, and how they ended.

use crate::*;
use offpay_sdk as sdk;
use std::sync::{Arc, Mutex};

/// How a BLE session ended (see `offpay_sdk::BleOutcome`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum BleOutcome {
    /// Paid (customer) or accepted (till).
    Completed {
        /// The payment's id (hex).
        payment_id: String,
    },
    /// This side refused; nothing was paid or stored.
    Refused {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The other side refused.
    RefusedByPeer {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The till's receipt did not verify; the payment stays stored.
    BadReceipt {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The session failed.
    Failed {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// A time limit of SPEC §14.7 passed.
    TimedOut,
}

impl From<sdk::BleOutcome> for BleOutcome {
    fn from(o: sdk::BleOutcome) -> Self {
        use sdk::BleOutcome as O;
        match o {
            O::Completed { payment_id } => Self::Completed { payment_id },
            O::Refused { code, name } => Self::Refused { code, name },
            O::RefusedByPeer { code, name } => Self::RefusedByPeer { code, name },
            O::BadReceipt { code, name } => Self::BadReceipt { code, name },
            O::Failed { code, name } => Self::Failed { code, name },
            O::TimedOut => Self::TimedOut,
        }
    }
}

/// A till's side of one BLE session (see `offpay_sdk::TillBleSession`).
#[derive(Debug, uniffi::Object)]
pub struct TillBleSession(pub(crate) Mutex<sdk::TillBleSession>);

/// A wallet's side of one BLE session (see `offpay_sdk::WalletBleSession`).
#[derive(Debug, uniffi::Object)]
pub struct WalletBleSession(pub(crate) Mutex<sdk::WalletBleSession>);

#[uniffi::export]
impl TillBleSession {
    /// The engagement bytes to show as a QR code.
    pub fn engagement(&self) -> Vec<u8> {
        locked(&self.0).engagement()
    }

    /// The engagement as a QR code (PNG).
    pub fn engagement_qr(&self) -> Result<Vec<u8>> {
        Ok(locked(&self.0).engagement_qr()?)
    }

    /// The service UUID to advertise.
    pub fn service_uuid(&self) -> Vec<u8> {
        locked(&self.0).service_uuid().to_vec()
    }

    /// Sets the negotiated ATT MTU.
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        Ok(locked(&self.0).set_mtu(mtu)?)
    }

    /// The next chunk to notify, if any.
    pub fn poll_transmit(&self) -> Option<Vec<u8>> {
        locked(&self.0).poll_transmit()
    }

    /// A customer connected: the session's clock starts.
    pub fn start(&self) -> Result<()> {
        Ok(locked(&self.0).start()?)
    }

    /// Milliseconds until `handle_timeout` is due, while the session runs.
    pub fn next_timeout_ms(&self) -> Option<u64> {
        locked(&self.0)
            .next_timeout()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Ends the session as timed out when its limit passed; the outcome once there is one.
    pub fn handle_timeout(&self) -> Option<BleOutcome> {
        locked(&self.0).handle_timeout().map(Into::into)
    }

    /// Handles one Client2Server write.
    pub fn receive(&self, till: Arc<MerchantTill>, chunk: Vec<u8>) -> Result<()> {
        Ok(locked(&self.0).receive(&till.0, &chunk)?)
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<BleOutcome> {
        locked(&self.0).outcome().map(Into::into)
    }

    /// Whether the session is over and everything was sent.
    pub fn is_finished(&self) -> bool {
        locked(&self.0).is_finished()
    }
}

#[uniffi::export]
impl WalletBleSession {
    /// The till's service UUID.
    pub fn service_uuid(&self) -> Vec<u8> {
        locked(&self.0).service_uuid().to_vec()
    }

    /// Sets the negotiated ATT MTU.
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        Ok(locked(&self.0).set_mtu(mtu)?)
    }

    /// Starts the exchange (queues the hello).
    pub fn start(&self) -> Result<()> {
        Ok(locked(&self.0).start()?)
    }

    /// The next chunk to write, if any.
    pub fn poll_transmit(&self) -> Option<Vec<u8>> {
        locked(&self.0).poll_transmit()
    }

    /// Handles one Server2Client notification.
    pub fn receive(&self, wallet: Arc<CustomerWallet>, chunk: Vec<u8>) -> Result<()> {
        Ok(locked(&self.0).receive(&wallet.0, &chunk)?)
    }

    /// The request waiting for approval.
    pub fn pending_request(&self) -> Option<Vec<u8>> {
        locked(&self.0).pending_request()
    }

    /// Pays the pending request.
    pub fn approve(&self, wallet: Arc<CustomerWallet>) -> Result<Option<BleOutcome>> {
        Ok(locked(&self.0).approve(&wallet.0)?.map(Into::into))
    }

    /// Declines the pending request.
    pub fn decline(&self) -> Result<BleOutcome> {
        Ok(locked(&self.0).decline()?.into())
    }

    /// Milliseconds until `handle_timeout` is due, while the session runs.
    pub fn next_timeout_ms(&self) -> Option<u64> {
        locked(&self.0)
            .next_timeout()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Ends the session as timed out when its limit passed; the outcome once there is one.
    pub fn handle_timeout(&self) -> Option<BleOutcome> {
        locked(&self.0).handle_timeout().map(Into::into)
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<BleOutcome> {
        locked(&self.0).outcome().map(Into::into)
    }

    /// Whether the session is over and everything was sent.
    pub fn is_finished(&self) -> bool {
        locked(&self.0).is_finished()
    }
}
