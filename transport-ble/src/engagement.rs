//! The engagement (SPEC §14.1): what the merchant shows as a QR code before the BLE link
//! exists. It names the session's GATT service UUID and carries the merchant's ephemeral
//! X25519 public key; the customer's camera is the authenticated channel for that key.
//!
//! Bytes: `0x01 (version) ‖ 0x20 (engagement) ‖ service UUID (16) ‖ X25519 key (32)`, 50
//! bytes, shown as an offpay single-frame QR code (`OP1:` + base45, SPEC §13.1).

use crate::BleError;
use rand_core::CryptoRngCore;
use x25519_dalek::{PublicKey, StaticSecret};

/// The protocol version the engagement announces.
pub const VERSION: u8 = 0x01;
/// The type byte that marks an engagement (outside the message types of SPEC §5).
pub const TYPE: u8 = 0x20;
/// Encoded length.
pub const LEN: usize = 2 + 16 + 32;

/// What the customer learns from the merchant's QR code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engagement {
    /// The GATT service UUID of this session (big-endian, as written in text form).
    pub service_uuid: [u8; 16],
    /// The merchant's ephemeral X25519 public key.
    pub merchant_key: [u8; 32],
}

impl Engagement {
    /// The 50 engagement bytes.
    pub fn to_bytes(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = VERSION;
        b[1] = TYPE;
        b[2..18].copy_from_slice(&self.service_uuid);
        b[18..].copy_from_slice(&self.merchant_key);
        b
    }

    /// Reads engagement bytes: exactly 50, this version, the engagement type.
    pub fn from_bytes(b: &[u8]) -> Result<Self, BleError> {
        let [VERSION, TYPE, rest @ ..] = b else {
            return Err(BleError::Engagement);
        };
        let (uuid, key) = rest.split_at_checked(16).ok_or(BleError::Engagement)?;
        let service_uuid: [u8; 16] = uuid.try_into().map_err(|_| BleError::Engagement)?;
        let merchant_key: [u8; 32] = key.try_into().map_err(|_| BleError::Engagement)?;
        Ok(Engagement {
            service_uuid,
            merchant_key,
        })
    }
}

/// The merchant's side of an engagement: the public part and its secret key. The secret is
/// zeroized on drop. One engagement may serve several BLE sessions (a reconnection after a
/// dropped link scans the same QR code), each with the customer's fresh key.
pub struct MerchantEngagement {
    public: Engagement,
    pub(crate) secret: StaticSecret,
}

impl core::fmt::Debug for MerchantEngagement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MerchantEngagement")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl MerchantEngagement {
    /// A fresh engagement: a random version-4 UUID and a fresh X25519 key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut uuid = [0u8; 16];
        rng.fill_bytes(&mut uuid);
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        let secret = StaticSecret::random_from_rng(rng);
        Self::from_parts(uuid, secret)
    }

    /// An engagement from a known UUID and secret (for vectors and tests).
    pub fn from_parts(service_uuid: [u8; 16], secret: StaticSecret) -> Self {
        MerchantEngagement {
            public: Engagement {
                service_uuid,
                merchant_key: PublicKey::from(&secret).to_bytes(),
            },
            secret,
        }
    }

    /// What the QR code shows.
    pub fn engagement(&self) -> &Engagement {
        &self.public
    }
}
