//! FraudProof (type 0x0A, unsigned, self-evident): two payments signed by one holder key for
//! one voucher that no honest wallet could both have made.

use crate::codec::{Message, MessageType, Signed, Writer, take_fields, take_signed};
use crate::error::{DecodeError, EncodeError, VerifyError};
use crate::msg::Payment;
use crate::trust::TrustStore;
use serde::{Deserialize, Serialize};

crate::codes! {
    /// Which rule of SPEC §8.3 the two payments break together. The code is the value on the
    /// wire (the kind byte); the name is the one the ledger, the vectors and every report use.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum FraudKind: u8 {
        /// Two different payments with the same sequence number (`first.id < second.id`).
        SameSequence = (0, "same-sequence"),
        /// `second.seq == first.seq + 1` but `second.prev` is not `first`'s link: the holder
        /// made another payment with `first`'s sequence number.
        BrokenLink = (1, "broken-link"),
        /// `second` links to `first` but its cumulative amount is not
        /// `first.cumulative + second.amount`.
        CumulativeMismatch = (2, "cumulative-mismatch"),
    }
}

/// A fraud proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudProof<'a> {
    /// The rule broken.
    pub kind: FraudKind,
    /// The earlier payment (or the one with the lower id for [`FraudKind::SameSequence`]).
    pub first: Signed<'a, Payment<'a>>,
    /// The other payment.
    pub second: Signed<'a, Payment<'a>>,
}

impl FraudProof<'_> {
    /// Checks everything a third party needs: the voucher under a trusted issuer key (at the
    /// voucher's `not_before`, so old proofs stay checkable), and both holder signatures.
    pub fn verify<const N: usize>(&self, trust: &TrustStore<N>) -> Result<(), VerifyError> {
        let v = &self.first.voucher;
        trust.verify(v, &v.issuer_key_id, v.not_before)?;
        self.first.verify_holder(&v.holder_key)?;
        self.second.verify_holder(&v.holder_key)
    }
}

impl<'a> Message<'a> for FraudProof<'a> {
    const TYPE: MessageType = MessageType::FraudProof;
    const MAX_LEN: usize = 2 + 1 + 2 * <Payment<'_> as Message<'_>>::MAX_LEN;
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let (kind, rest) = take_fields::<FraudKind>(input)?;
        let (first, rest) = take_signed::<Payment<'a>>(rest)?;
        let (second, rest) = take_signed::<Payment<'a>>(rest)?;
        let v = FraudProof {
            kind,
            first,
            second,
        };
        v.validate()?;
        Ok((v, rest))
    }
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.fields(&self.kind)?;
        w.bytes(self.first.bytes())?;
        w.bytes(self.second.bytes())
    }
    fn validate(&self) -> Result<(), DecodeError> {
        let (a, b) = (&self.first, &self.second);
        let same_voucher = a.voucher.bytes() == b.voucher.bytes();
        let next = a.seq.checked_add(1) == Some(b.seq);
        let ok = same_voucher
            && match self.kind {
                FraudKind::SameSequence => a.seq == b.seq && a.id() < b.id(),
                FraudKind::BrokenLink => next && b.prev != a.id().link(),
                FraudKind::CumulativeMismatch => {
                    next && b.prev == a.id().link()
                        && a.cumulative.checked_add(b.amount) != Some(b.cumulative)
                }
            };
        if ok {
            Ok(())
        } else {
            Err(DecodeError::OutOfRange)
        }
    }
}
