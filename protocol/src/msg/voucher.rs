//! Voucher (type 0x02): the issuer's signed pre-authorization, bound to the holder's key.

use crate::codec::{Message, MessageType, SignedMessage, Writer, take_fields};
use crate::error::{DecodeError, EncodeError, Rejection};
use crate::types::{Amount, CLOCK_SKEW_SECS, Currency, KeyId, PublicKey, Timestamp, VoucherId};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    /// 16 random bytes chosen by the issuer.
    pub id: VoucherId,
    /// Which issuer key signed it.
    pub issuer_key_id: KeyId,
    /// The customer device key that may spend it.
    pub holder_key: PublicKey,
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

impl<'a> Message<'a> for Voucher {
    const TYPE: MessageType = MessageType::Voucher;
    // 2 header + 16 id + 8 key id + 32 key + 3 currency + 10 limit + 4 + 4 times
    // + 10 max_single + 5 max_payments + 64 signature.
    const MAX_LEN: usize = 158;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (v, rest) = take_fields::<Voucher>(input)?;
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(self)
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
