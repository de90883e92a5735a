//! Receipt (type 0x06): the merchant's signed acknowledgement of one payment.

use crate::codec::{Message, MessageType, SignedMessage, Writer, take_fields};
use crate::error::{DecodeError, EncodeError};
use crate::types::{MerchantId, PaymentId, Timestamp};
use serde::{Deserialize, Serialize};

/// A receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The payment accepted.
    pub payment_id: PaymentId,
    /// The merchant that accepted it.
    pub merchant_id: MerchantId,
    /// The merchant's time of acceptance (zero when the device has no clock).
    pub accepted_at: Timestamp,
}

impl<'a> Message<'a> for Receipt {
    const TYPE: MessageType = MessageType::Receipt;
    const MAX_LEN: usize = 110;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        take_fields::<Receipt>(input)
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(self)
    }
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl SignedMessage<'_> for Receipt {
    const DOMAIN: &'static [u8] = b"offpay/1/receipt\0";
}
