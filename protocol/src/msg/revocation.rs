//! RevocationList (type 0x07, online): vouchers and merchants the issuer no longer stands behind.

use crate::codec::{Message, MessageType, SignedMessage, Writer, take_fields};
use crate::error::{DecodeError, EncodeError, Rejection};
use crate::types::{KeyId, MerchantId, Timestamp, VoucherId};
use serde::{Deserialize, Serialize};

/// Most voucher ids one list may carry.
pub const MAX_REVOKED_VOUCHERS: usize = 2048;
/// Most merchant ids one list may carry.
pub const MAX_REVOKED_MERCHANTS: usize = 256;

/// A revocation list. The id lists are kept as the received bytes (strictly ascending, fixed
/// width) and searched in place, so checking one costs no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList<'a> {
    /// Which issuer key signed it.
    pub issuer_key_id: KeyId,
    /// Increases with every list the issuer publishes; a device keeps the highest.
    pub serial: u64,
    /// When the issuer made it.
    pub issued_at: Timestamp,
    /// Revoked voucher ids, 16 bytes each, strictly ascending.
    #[serde(borrow)]
    pub vouchers: &'a [u8],
    /// Revoked merchant ids, 8 bytes each, strictly ascending.
    #[serde(borrow)]
    pub merchants: &'a [u8],
}

fn sorted_unique<const W: usize>(ids: &[u8], max: usize) -> bool {
    ids.len() % W == 0
        && ids.len() / W <= max
        && ids
            .chunks_exact(W)
            .zip(ids.chunks_exact(W).skip(1))
            .all(|(a, b)| a < b)
}

fn contains<const W: usize>(ids: &[u8], id: &[u8; W]) -> bool {
    let (mut lo, mut hi) = (0usize, ids.len() / W);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match ids.get(mid * W..mid * W + W).map(|c| c.cmp(id.as_slice())) {
            Some(core::cmp::Ordering::Less) => lo = mid + 1,
            Some(core::cmp::Ordering::Greater) => hi = mid,
            Some(core::cmp::Ordering::Equal) => return true,
            None => return false,
        }
    }
    false
}

impl RevocationList<'_> {
    /// Whether this list may replace `installed`: a device keeps only the newest list, so a
    /// list whose serial is not higher (a replayed or reordered update) is refused.
    pub fn supersedes(&self, installed: Option<&RevocationList<'_>>) -> Result<(), Rejection> {
        match installed {
            Some(old) if self.serial <= old.serial => Err(Rejection::StaleRevocationList),
            _ => Ok(()),
        }
    }

    /// Whether a voucher is revoked.
    pub fn is_voucher_revoked(&self, id: &VoucherId) -> bool {
        contains(self.vouchers, &id.0)
    }
    /// Whether a merchant is revoked.
    pub fn is_merchant_revoked(&self, id: &MerchantId) -> bool {
        contains(self.merchants, &id.0)
    }
}

impl<'a> Message<'a> for RevocationList<'a> {
    const TYPE: MessageType = MessageType::RevocationList;
    const MAX_LEN: usize =
        2 + 8 + 10 + 4 + 3 + 16 * MAX_REVOKED_VOUCHERS + 2 + 8 * MAX_REVOKED_MERCHANTS + 64;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (v, rest) = take_fields::<RevocationList<'a>>(input)?;
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(self)
    }
    fn validate(&self) -> Result<(), DecodeError> {
        if sorted_unique::<16>(self.vouchers, MAX_REVOKED_VOUCHERS)
            && sorted_unique::<8>(self.merchants, MAX_REVOKED_MERCHANTS)
        {
            Ok(())
        } else {
            Err(DecodeError::OutOfRange)
        }
    }
}

impl<'a> SignedMessage<'a> for RevocationList<'a> {
    const DOMAIN: &'static [u8] = b"offpay/1/revocation-list\0";
}
