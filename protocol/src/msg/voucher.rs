//! Voucher (type 0x02): the issuer's signed pre-authorization, bound to the holder's key.

use crate::codec::{
    Message, MessageType, SignedMessage, Writer, check_canonical, take_fields_unchecked,
};
use crate::error::{DecodeError, EncodeError, Rejection};
use crate::types::{Amount, CLOCK_SKEW_SECS, Currency, HolderKey, KeyId, Timestamp, VoucherId};
use serde::{Deserialize, Serialize};

/// What a merchant may accept from a voucher, beyond its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptancePolicy {
    /// The largest single payment (1 ..= limit).
    pub max_single: Amount,
    /// The most payments the voucher may make (sequence numbers 1 ..= max_payments).
    pub max_payments: u32,
}

/// A voucher. It carries no instrument id or card number: only the issuer links it to one.
/// Its type byte is `0x02` for an Ed25519 holder key, `0x0C` for a P-256 one (SPEC §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Voucher {
    /// 16 random bytes chosen by the issuer.
    pub id: VoucherId,
    /// Which issuer key signed it.
    pub issuer_key_id: KeyId,
    /// The customer device key that may spend it.
    pub holder_key: HolderKey,
    /// The currency of every amount drawn on it.
    pub currency: Currency,
    /// The total that may be spent.
    pub limit: Amount,
    /// First second of validity.
    pub not_before: Timestamp,
    /// Last second of validity.
    pub not_after: Timestamp,
    /// Per-payment rules.
    pub policy: AcceptancePolicy,
}

impl Voucher {
    /// Whether the voucher is valid at `now`, allowing [`CLOCK_SKEW_SECS`] either way.
    pub fn check_time(&self, now: Timestamp) -> Result<(), Rejection> {
        check_window(self.not_before, self.not_after, now)
    }
}

/// The window rule shared by vouchers and certificates (SPEC §6.1).
pub(crate) fn check_window(
    not_before: Timestamp,
    not_after: Timestamp,
    now: Timestamp,
) -> Result<(), Rejection> {
    if now < not_before.saturating_sub(CLOCK_SKEW_SECS) {
        Err(Rejection::NotYetValid)
    } else if now > not_after.saturating_add(CLOCK_SKEW_SECS) {
        Err(Rejection::Expired)
    } else {
        Ok(())
    }
}

/// The fields before the holder key.
#[derive(Serialize, Deserialize)]
struct Head {
    id: VoucherId,
    issuer_key_id: KeyId,
}

/// The fields after the holder key.
#[derive(Serialize, Deserialize)]
struct Tail {
    currency: Currency,
    limit: Amount,
    not_before: Timestamp,
    not_after: Timestamp,
    policy: AcceptancePolicy,
}

/// The size of an Ed25519-bound voucher at its longest (type `0x02`): 2 header + 16 id + 8
/// key id + 32 key + 3 currency + 10 limit + 4 + 4 times + 10 max_single + 5 max_payments
/// + 64 signature.
const MAX_LEN_ED25519: usize = 158;

impl<'a> Message<'a> for Voucher {
    const TYPE: MessageType = MessageType::Voucher;
    /// A P-256 key is one byte longer (type `0x0C`).
    const MAX_LEN: usize = MAX_LEN_ED25519 + 1;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        Self::take_body_of(MessageType::Voucher, input)
    }
    fn take_body_of(t: MessageType, input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        // One group of fields around the key (SPEC §3.3): read whole, then compared.
        let (head, head_bytes, rest) = take_fields_unchecked::<Head>(input)?;
        let (holder_key, rest) = super::take_holder_key(t == MessageType::VoucherP256, rest)?;
        let (tail, tail_bytes, rest) = take_fields_unchecked::<Tail>(rest)?;
        check_canonical(&head, head_bytes)?;
        check_canonical(&tail, tail_bytes)?;
        let v = Voucher {
            id: head.id,
            issuer_key_id: head.issuer_key_id,
            holder_key,
            currency: tail.currency,
            limit: tail.limit,
            not_before: tail.not_before,
            not_after: tail.not_after,
            policy: tail.policy,
        };
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(&Head {
            id: self.id,
            issuer_key_id: self.issuer_key_id,
        })?;
        w.bytes(self.holder_key.as_bytes())?;
        w.fields(&Tail {
            currency: self.currency,
            limit: self.limit,
            not_before: self.not_before,
            not_after: self.not_after,
            policy: self.policy,
        })
    }
    fn message_type(&self) -> MessageType {
        match self.holder_key {
            HolderKey::Ed25519(_) => MessageType::Voucher,
            HolderKey::P256(_) => MessageType::VoucherP256,
        }
    }
    fn has_type(t: MessageType) -> bool {
        matches!(t, MessageType::Voucher | MessageType::VoucherP256)
    }
    fn max_len_of(t: MessageType) -> usize {
        match t {
            MessageType::VoucherP256 => Self::MAX_LEN,
            _ => MAX_LEN_ED25519,
        }
    }
    fn validate(&self) -> Result<(), DecodeError> {
        let ok = self.currency.is_valid()
            && self.limit.0 >= 1
            && self.not_before < self.not_after
            && self.policy.max_single.0 >= 1
            && self.policy.max_single <= self.limit
            && self.policy.max_payments >= 1;
        if ok {
            Ok(())
        } else {
            Err(DecodeError::OutOfRange)
        }
    }
}

impl SignedMessage<'_> for Voucher {
    const DOMAIN: &'static [u8] = b"offpay/1/voucher\0";
}
