//! MerchantCertificate (type 0x03): the issuer vouches for a merchant's key.

use super::check_text;
use crate::codec::{Message, MessageType, SignedMessage, Writer, take_fields};
use crate::error::{DecodeError, EncodeError, Rejection};
use crate::types::{KeyId, MerchantId, PublicKey, Timestamp};
use serde::{Deserialize, Serialize};

/// A merchant certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantCertificate<'a> {
    /// The merchant's id, assigned by the issuer; payments name it.
    pub merchant_id: MerchantId,
    /// Which issuer key signed it.
    pub issuer_key_id: KeyId,
    /// The key that signs this merchant's requests and receipts.
    pub merchant_key: PublicKey,
    /// The name a wallet shows its user: 1–32 bytes of UTF-8, no control characters.
    #[serde(borrow)]
    pub display_name: &'a str,
    /// First second of validity.
    pub not_before: Timestamp,
    /// Last second of validity.
    pub not_after: Timestamp,
}

impl MerchantCertificate<'_> {
    /// Whether the certificate is valid at `now`, allowing the clock skew either way.
    pub fn check_time(&self, now: Timestamp) -> Result<(), Rejection> {
        super::voucher::check_window(self.not_before, self.not_after, now)
    }
}

impl<'a> Message<'a> for MerchantCertificate<'a> {
    const TYPE: MessageType = MessageType::MerchantCertificate;
    const MAX_LEN: usize = 155;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (v, rest) = take_fields::<MerchantCertificate<'a>>(input)?;
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(self)
    }
    fn validate(&self) -> Result<(), DecodeError> {
        check_text(self.display_name)?;
        if self.not_before < self.not_after {
            Ok(())
        } else {
            Err(DecodeError::OutOfRange)
        }
    }
}

impl<'a> SignedMessage<'a> for MerchantCertificate<'a> {
    const DOMAIN: &'static [u8] = b"offpay/1/merchant-certificate\0";
}
