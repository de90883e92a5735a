//! PaymentRequest (type 0x04): the merchant asks for an amount, under its certificate.

use super::{MerchantCertificate, check_text};
use crate::codec::{Message, MessageType, Signed, SignedMessage, Writer, take_fields, take_signed};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Amount, Currency, Nonce, Timestamp};
use serde::{Deserialize, Serialize};

/// A payment request, embedding the merchant's certificate as its exact signed bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequest<'a> {
    /// The merchant's certificate.
    pub certificate: Signed<'a, MerchantCertificate<'a>>,
    /// The amount asked for.
    pub amount: Amount,
    /// Its currency.
    pub currency: Currency,
    /// 16 random bytes; the payment must echo them.
    pub nonce: Nonce,
    /// The merchant's time (zero when the merchant device has no clock).
    pub created_at: Timestamp,
    /// An optional reference shown to the customer: 1–32 bytes of UTF-8, no control characters.
    pub reference: Option<&'a str>,
}

#[derive(Serialize, Deserialize)]
struct Fields<'a> {
    amount: Amount,
    currency: Currency,
    nonce: Nonce,
    created_at: Timestamp,
    #[serde(borrow)]
    reference: Option<&'a str>,
}

impl<'a> Message<'a> for PaymentRequest<'a> {
    const TYPE: MessageType = MessageType::PaymentRequest;
    const MAX_LEN: usize = 288;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (certificate, rest) = take_signed::<MerchantCertificate<'a>>(input)?;
        let (f, rest) = take_fields::<Fields<'a>>(rest)?;
        let v = PaymentRequest {
            certificate,
            amount: f.amount,
            currency: f.currency,
            nonce: f.nonce,
            created_at: f.created_at,
            reference: f.reference,
        };
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.bytes(self.certificate.bytes())?;
        w.fields(&Fields {
            amount: self.amount,
            currency: self.currency,
            nonce: self.nonce,
            created_at: self.created_at,
            reference: self.reference,
        })
    }
    fn validate(&self) -> Result<(), DecodeError> {
        if let Some(r) = self.reference {
            check_text(r)?;
        }
        if self.amount.0 >= 1 && self.currency.is_valid() {
            Ok(())
        } else {
            Err(DecodeError::OutOfRange)
        }
    }
}

impl<'a> SignedMessage<'a> for PaymentRequest<'a> {
    const DOMAIN: &'static [u8] = b"offpay/1/payment-request\0";
}
