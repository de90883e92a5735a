//! Payment (type 0x05): the holder draws an amount on its voucher for one request.

use crate::codec::{Message, MessageType, Signed, SignedMessage, Writer, take_fields, take_signed};
use crate::crypto::sha256;
use crate::error::{DecodeError, EncodeError};
use crate::msg::Voucher;
use crate::types::{Amount, LinkId, MerchantId, Nonce, PaymentId, Timestamp};
use serde::{Deserialize, Serialize};

/// A payment, embedding the voucher as its exact signed bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment<'a> {
    /// The voucher drawn on.
    pub voucher: Signed<'a, Voucher>,
    /// 1 for the voucher's first payment, then one more for each.
    pub seq: u32,
    /// The amount of this payment.
    pub amount: Amount,
    /// The sum of the amounts of payments 1 ..= seq of this voucher.
    pub cumulative: Amount,
    /// [`PaymentId::link`] of payment `seq - 1`; zero for `seq == 1`.
    pub prev: LinkId,
    /// The merchant paid (from the request's certificate).
    pub merchant_id: MerchantId,
    /// The request's nonce.
    pub request_nonce: Nonce,
    /// The holder device's time.
    pub created_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct Fields {
    seq: u32,
    amount: Amount,
    cumulative: Amount,
    prev: LinkId,
    merchant_id: MerchantId,
    request_nonce: Nonce,
    created_at: Timestamp,
}

impl<'a> Message<'a> for Payment<'a> {
    const TYPE: MessageType = MessageType::Payment;
    // 2 header + the voucher (159 with a P-256 holder key, 158 with Ed25519) + 5 seq
    // + 10 amount + 10 cumulative + 16 link + 8 merchant + 16 nonce + 4 time + 64 signature.
    const MAX_LEN: usize = 2 + <Voucher as Message<'_>>::MAX_LEN + 133;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (voucher, rest) = take_signed::<Voucher>(input)?;
        let (f, rest) = take_fields::<Fields>(rest)?;
        let v = Payment {
            voucher,
            seq: f.seq,
            amount: f.amount,
            cumulative: f.cumulative,
            prev: f.prev,
            merchant_id: f.merchant_id,
            request_nonce: f.request_nonce,
            created_at: f.created_at,
        };
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.bytes(self.voucher.bytes())?;
        w.fields(&Fields {
            seq: self.seq,
            amount: self.amount,
            cumulative: self.cumulative,
            prev: self.prev,
            merchant_id: self.merchant_id,
            request_nonce: self.request_nonce,
            created_at: self.created_at,
        })
    }
    /// SPEC §5.5: `seq >= 1`, `amount >= 1`, the first payment has a zero link and
    /// `cumulative == amount`, a later one a non-zero link and `cumulative >= amount + seq - 1`.
    fn validate(&self) -> Result<(), DecodeError> {
        let zero = self.prev == LinkId::default();
        let ok = self.seq >= 1
            && self.amount.0 >= 1
            && if self.seq == 1 {
                zero && self.cumulative == self.amount
            } else {
                !zero
                    && self
                        .amount
                        .0
                        .checked_add(u64::from(self.seq) - 1)
                        .is_some_and(|least| self.cumulative.0 >= least)
            };
        if ok {
            Ok(())
        } else {
            Err(DecodeError::OutOfRange)
        }
    }
}

impl<'a> SignedMessage<'a> for Payment<'a> {
    const DOMAIN: &'static [u8] = b"offpay/1/payment\0";
}

impl Signed<'_, Payment<'_>> {
    /// The payment id: SHA-256 of the whole signed message.
    pub fn id(&self) -> PaymentId {
        PaymentId(sha256(self.bytes()))
    }
}
