//! The wire format shared by every message (SPEC §3).
//!
//! ```text
//! message = version (1 byte, = 1) | type (1 byte) | body (postcard) | signature (64 bytes, signed types)
//! signed input = domain string | version | type | body
//! ```
//!
//! Decoding is strict: the hard size bound is checked first (so no work grows with a hostile
//! length), then version, type, body fields, range rules, the signature's presence and finally
//! that nothing trails. Postcard does not enforce canonical varints, so every group of fields is
//! re-encoded into a comparing [`Flavor`](postcard::ser_flavors::Flavor) that checks each byte
//! against the input: canonical form is enforced with no buffer and no allocator.

use crate::crypto::{self, Signer};
use crate::error::{DecodeError, EncodeError, VerifyError};
use crate::types::{HolderKey, PublicKey};
use serde::{Deserialize, Serialize};

/// The protocol version this implementation speaks, the first byte of every message.
pub const VERSION: u8 = 1;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

crate::codes! {
    /// The type byte of each message (SPEC §3.2), and the message's name in SPEC.md and the
    /// vectors.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum MessageType: repr(u8) {
        /// [`PreAuthRequest`](crate::msg::PreAuthRequest).
        PreAuthRequest = (0x01, "PreAuthRequest"),
        /// [`Voucher`](crate::msg::Voucher).
        Voucher = (0x02, "Voucher"),
        /// [`MerchantCertificate`](crate::msg::MerchantCertificate).
        MerchantCertificate = (0x03, "MerchantCertificate"),
        /// [`PaymentRequest`](crate::msg::PaymentRequest).
        PaymentRequest = (0x04, "PaymentRequest"),
        /// [`Payment`](crate::msg::Payment).
        Payment = (0x05, "Payment"),
        /// [`Receipt`](crate::msg::Receipt).
        Receipt = (0x06, "Receipt"),
        /// [`RevocationList`](crate::msg::RevocationList).
        RevocationList = (0x07, "RevocationList"),
        /// [`SyncBatch`](crate::msg::SyncBatch).
        SyncBatch = (0x08, "SyncBatch"),
        /// [`SyncReport`](crate::msg::SyncReport).
        SyncReport = (0x09, "SyncReport"),
        /// [`FraudProof`](crate::msg::FraudProof).
        FraudProof = (0x0A, "FraudProof"),
        /// [`PreAuthRequest`](crate::msg::PreAuthRequest) for a P-256 holder key (SPEC §7.1.1).
        PreAuthRequestP256 = (0x0B, "PreAuthRequestP256"),
        /// [`Voucher`](crate::msg::Voucher) bound to a P-256 holder key (SPEC §7.1.1).
        VoucherP256 = (0x0C, "VoucherP256"),
    }
}

impl MessageType {
    /// The type named by a type byte, if any.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::from_code(b)
    }

    /// Reads the type of a message from its first two bytes without decoding the rest.
    pub fn of(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes {
            [] | [_] => Err(DecodeError::Truncated),
            [v, _, ..] if *v != VERSION => Err(DecodeError::UnknownVersion),
            [_, t, ..] => Self::from_byte(*t).ok_or(DecodeError::WrongType),
        }
    }
}

/// One message type's body: how to read and write it and the rules its values obey.
pub trait Message<'a>: Sized {
    /// The type byte.
    const TYPE: MessageType;
    /// The hard maximum size of the whole message in bytes, signature included.
    const MAX_LEN: usize;
    /// Reads the body fields (after the header, before the signature); returns the rest.
    /// Implementations call [`Message::validate`].
    fn take_body(input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError>;
    /// Writes the body fields.
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EncodeError>;
    /// The range rules of SPEC §4 for this message; the encoder applies them too, so nothing is
    /// ever built that a decoder would refuse.
    fn validate(&self) -> Result<(), DecodeError>;
    /// The type byte this value is written with: [`Message::TYPE`], but for a message whose
    /// holder key is P-256, which has a type of its own (SPEC §3.2).
    fn message_type(&self) -> MessageType {
        Self::TYPE
    }
    /// The type bytes a message of this kind may carry.
    fn has_type(t: MessageType) -> bool {
        t == Self::TYPE
    }
    /// The hard maximum size of a message of type `t` (one of [`Message::has_type`]);
    /// [`Message::MAX_LEN`] is the largest of them.
    fn max_len_of(t: MessageType) -> usize {
        let _ = t;
        Self::MAX_LEN
    }
    /// Reads the body of a message of type `t` (one of [`Message::has_type`]).
    fn take_body_of(t: MessageType, input: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let _ = t;
        Self::take_body(input)
    }
}

/// A message that carries a signature.
pub trait SignedMessage<'a>: Message<'a> {
    /// The domain-separation string that precedes the message bytes in the signed input.
    const DOMAIN: &'static [u8];
}

/// A decoded signed message together with the exact bytes it was decoded from.
///
/// Signatures are always checked over [`Signed::signed_bytes`], the bytes received, never over a
/// re-serialization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<'a, T> {
    bytes: &'a [u8],
    value: T,
    signature: [u8; SIGNATURE_LEN],
}

impl<'a, T: SignedMessage<'a>> Signed<'a, T> {
    /// The whole message as received (header, body and signature).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The decoded body.
    pub fn value(&self) -> &T {
        &self.value
    }
    /// The 64-byte signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }
    /// The bytes the signature covers (after the domain string): header and body.
    pub fn signed_bytes(&self) -> &'a [u8] {
        self.bytes
            .get(..self.bytes.len().saturating_sub(SIGNATURE_LEN))
            .unwrap_or(&[])
    }
    /// Verifies the signature under `key` with `verify_strict` semantics (SPEC §7.1).
    pub fn verify(&self, key: &PublicKey) -> Result<(), VerifyError> {
        crypto::verify(key, T::DOMAIN, self.signed_bytes(), &self.signature)
    }
    /// Verifies the signature under a holder key of either algorithm (SPEC §7.1.1).
    pub fn verify_holder(&self, key: &HolderKey) -> Result<(), VerifyError> {
        crypto::verify_holder(key, T::DOMAIN, self.signed_bytes(), &self.signature)
    }
}

impl<T> core::ops::Deref for Signed<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Checks version and type; returns the type and the bytes after the header.
fn header<'a, 'b, T: Message<'a>>(bytes: &'b [u8]) -> Result<(MessageType, &'b [u8]), DecodeError> {
    let t = MessageType::of(bytes)?;
    if !T::has_type(t) {
        return Err(DecodeError::WrongType);
    }
    Ok((t, bytes.get(2..).unwrap_or(&[])))
}

/// The size bound of §3.4 step 1 for `bytes`: the maximum of the type its type byte names,
/// read without decoding anything (the largest of the message's types when there is none).
fn over_size<'a, T: Message<'a>>(bytes: &[u8]) -> bool {
    let max = match bytes.get(1).copied().and_then(MessageType::from_byte) {
        Some(t) if T::has_type(t) => T::max_len_of(t),
        _ => T::MAX_LEN,
    };
    bytes.len() > max
}

/// Reads a signed message that may be followed by more bytes (an embedded message); returns it
/// and the rest.
pub fn take_signed<'a, T: SignedMessage<'a>>(
    bytes: &'a [u8],
) -> Result<(Signed<'a, T>, &'a [u8]), DecodeError> {
    let (t, body) = header::<T>(bytes)?;
    let (value, rest) = T::take_body_of(t, body)?;
    let (signature, rest) = take_array::<SIGNATURE_LEN>(rest)?;
    let len = bytes.len() - rest.len();
    if len > T::max_len_of(t) {
        return Err(DecodeError::OverSize);
    }
    let bytes = bytes.get(..len).ok_or(DecodeError::Truncated)?;
    Ok((
        Signed {
            bytes,
            value,
            signature,
        },
        rest,
    ))
}

/// Decodes a whole signed message (SPEC §3.4 order of checks). Does not verify the signature.
pub fn decode_signed<'a, T: SignedMessage<'a>>(
    bytes: &'a [u8],
) -> Result<Signed<'a, T>, DecodeError> {
    if over_size::<T>(bytes) {
        return Err(DecodeError::OverSize);
    }
    let (signed, rest) = take_signed::<T>(bytes)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(signed)
}

/// Decodes a whole unsigned message.
pub fn decode_unsigned<'a, T: Message<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    if over_size::<T>(bytes) {
        return Err(DecodeError::OverSize);
    }
    let (t, body) = header::<T>(bytes)?;
    let (value, rest) = T::take_body_of(t, body)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(value)
}

/// A signing function: `sign(domain, message)` gives the 64-byte signature.
pub type SignFn<'f> = &'f dyn Fn(&[u8], &[u8]) -> Result<[u8; SIGNATURE_LEN], EncodeError>;

/// Encodes and signs a message into `buf`; returns the length written.
pub fn encode_signed<'a, T: SignedMessage<'a>>(
    value: &T,
    signer: &dyn Signer,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    encode_signed_with(value, &|d, m| signer.sign(d, m), buf)
}

/// As [`encode_signed`], signing with `sign(domain, message)`: a holder's messages, signed
/// by a [`HolderSigner`](crate::crypto::HolderSigner) of either algorithm.
pub fn encode_signed_with<'a, T: SignedMessage<'a>>(
    value: &T,
    sign: SignFn<'_>,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    value.validate().map_err(|_| EncodeError::OutOfRange)?;
    let t = value.message_type();
    let mut w = Writer::new(buf);
    w.bytes(&[VERSION, t as u8])?;
    value.write_body(&mut w)?;
    let n = w.pos;
    if n + SIGNATURE_LEN > T::max_len_of(t) {
        return Err(EncodeError::BufferTooSmall);
    }
    let signed = w.buf.get(..n).ok_or(EncodeError::BufferTooSmall)?;
    let sig = sign(T::DOMAIN, signed)?;
    w.bytes(&sig)?;
    Ok(w.pos)
}

/// An encoded message in a fixed-capacity buffer.
pub type MessageBuf<const N: usize> = heapless::Vec<u8, N>;

/// Encodes a signed message into a fixed-capacity buffer sized by its maximum length.
pub(crate) fn sign_into<'a, T: SignedMessage<'a>, const N: usize>(
    value: &T,
    signer: &dyn Signer,
) -> Result<MessageBuf<N>, EncodeError> {
    sign_into_with(value, &|d, m| signer.sign(d, m))
}

/// As [`sign_into`], signing with `sign(domain, message)`.
pub(crate) fn sign_into_with<'a, T: SignedMessage<'a>, const N: usize>(
    value: &T,
    sign: SignFn<'_>,
) -> Result<MessageBuf<N>, EncodeError> {
    let mut buf = [0u8; N];
    let n = encode_signed_with(value, sign, &mut buf)?;
    MessageBuf::from_slice(buf.get(..n).ok_or(EncodeError::BufferTooSmall)?)
        .map_err(|_| EncodeError::BufferTooSmall)
}

/// Encodes an unsigned message into `buf`; returns the length written.
pub fn encode_unsigned<'a, T: Message<'a>>(
    value: &T,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    value.validate().map_err(|_| EncodeError::OutOfRange)?;
    let t = value.message_type();
    let mut w = Writer::new(buf);
    w.bytes(&[VERSION, t as u8])?;
    value.write_body(&mut w)?;
    if w.pos > T::max_len_of(t) {
        return Err(EncodeError::BufferTooSmall);
    }
    Ok(w.pos)
}

/// A cursor over a caller-owned output buffer.
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }
    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let end = self
            .pos
            .checked_add(b.len())
            .ok_or(EncodeError::BufferTooSmall)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
    /// Appends a group of fields in postcard form.
    pub fn fields<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        let rest = self
            .buf
            .get_mut(self.pos..)
            .ok_or(EncodeError::BufferTooSmall)?;
        let used = postcard::to_slice(v, rest)
            .map_err(|_| EncodeError::BufferTooSmall)?
            .len();
        self.pos += used;
        Ok(())
    }
    /// Appends a postcard varint.
    pub fn varint(&mut self, v: u64) -> Result<(), EncodeError> {
        self.fields(&v)
    }
}

/// A postcard flavor that compares each serialized byte with the input instead of storing it.
struct Compare<'a> {
    expected: &'a [u8],
    pos: usize,
}

impl postcard::ser_flavors::Flavor for Compare<'_> {
    type Output = usize;
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.expected.get(self.pos) == Some(&data) {
            self.pos += 1;
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }
    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.pos)
    }
}

fn map_postcard(e: postcard::Error) -> DecodeError {
    match e {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        postcard::Error::DeserializeBadVarint => DecodeError::NonCanonical,
        _ => DecodeError::OutOfRange,
    }
}

/// Reads a group of postcard fields and checks that their encoding is canonical.
pub fn take_fields<'a, T>(input: &'a [u8]) -> Result<(T, &'a [u8]), DecodeError>
where
    T: Deserialize<'a> + Serialize,
{
    let (v, consumed, rest) = take_fields_unchecked::<T>(input)?;
    check_canonical(&v, consumed)?;
    Ok((v, rest))
}

/// Reads a group of postcard fields without the canonical check; returns the value, the
/// bytes it was read from and the rest. For a group split around a field postcard cannot
/// carry (a 33-byte key): read every part, then [`check_canonical`] each, so that the group
/// keeps §3.3's order (read whole first, then compared).
pub(crate) fn take_fields_unchecked<'a, T>(
    input: &'a [u8],
) -> Result<(T, &'a [u8], &'a [u8]), DecodeError>
where
    T: Deserialize<'a>,
{
    let (v, rest) = postcard::take_from_bytes::<T>(input).map_err(map_postcard)?;
    let used = input.len() - rest.len();
    let consumed = input.get(..used).ok_or(DecodeError::Truncated)?;
    Ok((v, consumed, rest))
}

/// Whether `consumed` is the canonical encoding of `v`.
pub(crate) fn check_canonical<T: Serialize>(v: &T, consumed: &[u8]) -> Result<(), DecodeError> {
    match postcard::serialize_with_flavor(
        v,
        Compare {
            expected: consumed,
            pos: 0,
        },
    ) {
        Ok(n) if n == consumed.len() => Ok(()),
        _ => Err(DecodeError::NonCanonical),
    }
}

/// Reads a canonical postcard varint.
pub fn take_varint(input: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    take_fields::<u64>(input)
}

/// Reads a fixed number of raw bytes.
pub fn take_array<const N: usize>(input: &[u8]) -> Result<([u8; N], &[u8]), DecodeError> {
    match input.split_first_chunk::<N>() {
        Some((a, rest)) => Ok((*a, rest)),
        None => Err(DecodeError::Truncated),
    }
}

/// Reads a length-prefixed byte string of at most `max` bytes. The length is checked against
/// `max` before anything else, so a forged length costs nothing.
pub fn take_bytes(input: &[u8], max: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    let (len, rest) = take_varint(input)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::OutOfRange)?;
    if len > max {
        return Err(DecodeError::OutOfRange);
    }
    if rest.len() < len {
        return Err(DecodeError::Truncated);
    }
    Ok(rest.split_at(len))
}
