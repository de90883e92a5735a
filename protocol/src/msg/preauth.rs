//! PreAuthRequest (type 0x01, online): the holder asks the issuer for a voucher and proves it
//! holds the key by signing the request with it.

use crate::codec::{
    Message, MessageType, SignedMessage, Writer, check_canonical, take_fields_unchecked,
};
use crate::error::{DecodeError, EncodeError};
use crate::types::{Amount, Currency, HolderKey, Nonce, Timestamp};
use serde::{Deserialize, Serialize};

/// A pre-authorization request. Its type byte is `0x01` for an Ed25519 holder key, `0x0B`
/// for a P-256 one (SPEC §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreAuthRequest<'a> {
    /// The instrument to draw on, opaque to offpay: 1–32 bytes the issuer understands.
    pub instrument_id: &'a [u8],
    /// The amount to set aside.
    pub amount: Amount,
    /// Its currency.
    pub currency: Currency,
    /// The device key the voucher will be bound to; it signs this request.
    pub holder_key: HolderKey,
    /// 16 random bytes, so that two requests never have the same bytes.
    pub client_nonce: Nonce,
    /// The device's time when it asked.
    pub created_at: Timestamp,
}

/// The fields before the holder key.
#[derive(Serialize, Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    instrument_id: &'a [u8],
    amount: Amount,
    currency: Currency,
}

/// The fields after the holder key.
#[derive(Serialize, Deserialize)]
struct Tail {
    client_nonce: Nonce,
    created_at: Timestamp,
}

/// The size of an Ed25519 request at its longest (type `0x01`).
const MAX_LEN_ED25519: usize = 164;

impl<'a> Message<'a> for PreAuthRequest<'a> {
    const TYPE: MessageType = MessageType::PreAuthRequest;
    /// A P-256 key is one byte longer (type `0x0B`).
    const MAX_LEN: usize = MAX_LEN_ED25519 + 1;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        Self::take_body_of(MessageType::PreAuthRequest, input)
    }
    fn take_body_of(t: MessageType, input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        // One group of fields around the key (SPEC §3.3): read whole, then compared.
        let (head, head_bytes, rest) = take_fields_unchecked::<Head<'a>>(input)?;
        let (holder_key, rest) =
            super::take_holder_key(t == MessageType::PreAuthRequestP256, rest)?;
        let (tail, tail_bytes, rest) = take_fields_unchecked::<Tail>(rest)?;
        check_canonical(&head, head_bytes)?;
        check_canonical(&tail, tail_bytes)?;
        let v = PreAuthRequest {
            instrument_id: head.instrument_id,
            amount: head.amount,
            currency: head.currency,
            holder_key,
            client_nonce: tail.client_nonce,
            created_at: tail.created_at,
        };
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(&Head {
            instrument_id: self.instrument_id,
            amount: self.amount,
            currency: self.currency,
        })?;
        w.bytes(self.holder_key.as_bytes())?;
        w.fields(&Tail {
            client_nonce: self.client_nonce,
            created_at: self.created_at,
        })
    }
    fn message_type(&self) -> MessageType {
        match self.holder_key {
            HolderKey::Ed25519(_) => MessageType::PreAuthRequest,
            HolderKey::P256(_) => MessageType::PreAuthRequestP256,
        }
    }
    fn has_type(t: MessageType) -> bool {
        matches!(
            t,
            MessageType::PreAuthRequest | MessageType::PreAuthRequestP256
        )
    }
    fn max_len_of(t: MessageType) -> usize {
        match t {
            MessageType::PreAuthRequestP256 => Self::MAX_LEN,
            _ => MAX_LEN_ED25519,
        }
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
