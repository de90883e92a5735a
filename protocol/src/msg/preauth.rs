//! PreAuthRequest (type 0x01, online): the holder asks the issuer for a voucher and proves it
//! holds the key by signing the request with it.

use crate::codec::{Message, MessageType, SignedMessage, Writer, take_fields};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Amount, Currency, Nonce, PublicKey, Timestamp};
use serde::{Deserialize, Serialize};

/// A pre-authorization request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreAuthRequest<'a> {
    /// The instrument to draw on, opaque to offpay: 1–32 bytes the issuer understands.
    #[serde(borrow)]
    pub instrument_id: &'a [u8],
    /// The amount to set aside.
    pub amount: Amount,
    /// Its currency.
    pub currency: Currency,
    /// The device key the voucher will be bound to; it signs this request.
    pub holder_key: PublicKey,
    /// 16 random bytes, so that two requests never have the same bytes.
    pub client_nonce: Nonce,
    /// The device's time when it asked.
    pub created_at: Timestamp,
}

impl<'a> Message<'a> for PreAuthRequest<'a> {
    const TYPE: MessageType = MessageType::PreAuthRequest;
    const MAX_LEN: usize = 164;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (v, rest) = take_fields::<PreAuthRequest<'a>>(input)?;
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(self)
    }
    fn validate(&self) -> Result<(), DecodeError> {
        let ok = !self.instrument_id.is_empty()
            && self.instrument_id.len() <= super::MAX_TEXT_LEN
            && self.amount.0 >= 1
            && self.currency.is_valid();
        if ok {
            Ok(())
        } else {
            Err(DecodeError::OutOfRange)
        }
    }
}

impl<'a> SignedMessage<'a> for PreAuthRequest<'a> {
    const DOMAIN: &'static [u8] = b"offpay/1/preauth-request\0";
}
