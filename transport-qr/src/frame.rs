//! The two frame formats (SPEC §13).
//!
//! - **Single frame**: `OP1:` followed by the message in base45 (RFC 9285). Every character is
//!   in the QR alphanumeric set, so the code uses alphanumeric mode (5.5 bits a character).
//! - **Animated frame**: one part of a Blockchain Commons UR of type `offpay`, upper-cased:
//!   `UR:OFFPAY/<seq>-<count>/<bytewords>`. The bytewords carry a CBOR array
//!   `[seq, count, message length, checksum, fragment]` and a CRC-32.
//!
//! Frames come from a camera, so [`parse_part_header`] reads and bounds an animated frame's
//! header before any work that grows with it: the `ur` decoder, given a forged part count of
//! 1,000,000, spends tens of seconds and hundreds of megabytes.

use crate::QrError;

/// The prefix of a single-frame message: format `OP`, version 1.
pub const SINGLE_PREFIX: &str = "OP1:";
/// The UR type of animated frames.
pub const UR_TYPE: &str = "offpay";
/// The upper-case prefix of an animated frame.
pub const PART_PREFIX: &str = "UR:OFFPAY/";

/// Encodes a message as single-frame text.
pub fn encode_single(message: &[u8]) -> String {
    let mut s = String::with_capacity(SINGLE_PREFIX.len() + message.len().div_ceil(2) * 3);
    s.push_str(SINGLE_PREFIX);
    s.push_str(&base45::encode(message));
    s
}

/// The base45 length of a message of `len` bytes.
pub const fn base45_len(len: usize) -> usize {
    len / 2 * 3 + (len % 2) * 2
}

/// Decodes single-frame text, refusing (before decoding) text longer than a message of
/// `max_len` bytes could be.
pub fn decode_single(text: &str, max_len: usize) -> Result<Vec<u8>, QrError> {
    let body = text
        .strip_prefix(SINGLE_PREFIX)
        .ok_or(QrError::WrongPrefix)?;
    if body.len() > base45_len(max_len) {
        return Err(QrError::TooLarge);
    }
    let message = base45::decode(body).map_err(|_| QrError::NotBase45)?;
    // RFC 9285 §4.2 makes a group whose value is out of range (a final pair above 255, a
    // triplet above 65535) an error; the `base45` crate lets some through and wraps them.
    // Re-encoding (bounded by the length check above) refuses every such text, so exactly one
    // text decodes to each message.
    if base45::encode(&message) != body {
        return Err(QrError::NotBase45);
    }
    Ok(message)
}

/// The header of one animated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartHeader {
    /// The part's sequence number (1-based; beyond `count` the parts are fountain mixes).
    pub seq: u32,
    /// How many fragments the message was cut into.
    pub count: u32,
    /// The message length in bytes.
    pub message_len: u32,
    /// CRC-32 of the whole message.
    pub checksum: u32,
    /// The length of each fragment.
    pub fragment_len: usize,
}

/// Reads and checks an animated frame's header. Work and memory are bounded by the frame's own
/// length, which a QR code bounds: the part count and message length are checked against
/// `max_message_len` and against each other before anything is handed to the fountain decoder.
pub fn parse_part_header(text: &str, max_message_len: usize) -> Result<PartHeader, QrError> {
    let prefix = text.get(..PART_PREFIX.len()).ok_or(QrError::WrongPrefix)?;
    if !prefix.eq_ignore_ascii_case(PART_PREFIX) {
        return Err(QrError::WrongPrefix);
    }
    let rest = &text[PART_PREFIX.len()..];
    let (indices, words) = rest.split_once('/').ok_or(QrError::ForgedHeader)?;
    let (seq, count) = indices.split_once('-').ok_or(QrError::ForgedHeader)?;
    let seq = small_decimal(seq)?;
    let count = small_decimal(count)?;
    // A QR code of version 40 holds 4,296 characters: no honest frame is longer.
    if words.len() > 4296 || words.len() % 2 != 0 {
        return Err(QrError::ForgedHeader);
    }
    let bytes = ur::bytewords::decode(&words.to_ascii_lowercase(), ur::bytewords::Style::Minimal)
        .map_err(|_| QrError::ForgedHeader)?;
    let h = cbor_header(&bytes)?;
    let consistent = h.seq == seq
        && h.count == count
        && seq >= 1
        && count >= 1
        && h.message_len >= 1
        && (h.message_len as usize) <= max_message_len
        && h.fragment_len >= 1
        // The encoder cuts the message into `count` fragments of `fragment_len` bytes.
        && (h.message_len as usize).div_ceil(h.fragment_len) == count as usize;
    if consistent {
        Ok(h)
    } else {
        Err(QrError::ForgedHeader)
    }
}

fn small_decimal(s: &str) -> Result<u32, QrError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QrError::ForgedHeader);
    }
    s.parse().map_err(|_| QrError::ForgedHeader)
}

/// Reads the CBOR array `[uint, uint, uint, uint, bytes]` of a UR part. Hand-written because
/// the `ur` crate keeps its part parser private; it reads five heads and nothing else.
fn cbor_header(b: &[u8]) -> Result<PartHeader, QrError> {
    let (&first, mut rest) = b.split_first().ok_or(QrError::ForgedHeader)?;
    if first != 0x85 {
        return Err(QrError::ForgedHeader);
    }
    let mut uint = |major: u8| -> Result<u64, QrError> {
        let (&h, r) = rest.split_first().ok_or(QrError::ForgedHeader)?;
        if h >> 5 != major {
            return Err(QrError::ForgedHeader);
        }
        let (v, r) = match h & 0x1f {
            n @ 0..=23 => (u64::from(n), r),
            24 => take(r, 1)?,
            25 => take(r, 2)?,
            26 => take(r, 4)?,
            _ => return Err(QrError::ForgedHeader),
        };
        rest = r;
        Ok(v)
    };
    let seq = uint(0)?;
    let count = uint(0)?;
    let message_len = uint(0)?;
    let checksum = uint(0)?;
    let fragment_len = uint(2)?;
    let to_u32 = |v: u64| u32::try_from(v).map_err(|_| QrError::ForgedHeader);
    if rest.len() as u64 != fragment_len {
        return Err(QrError::ForgedHeader);
    }
    Ok(PartHeader {
        seq: to_u32(seq)?,
        count: to_u32(count)?,
        message_len: to_u32(message_len)?,
        checksum: to_u32(checksum)?,
        fragment_len: rest.len(),
    })
}

fn take(b: &[u8], n: usize) -> Result<(u64, &[u8]), QrError> {
    if b.len() < n {
        return Err(QrError::ForgedHeader);
    }
    let (v, r) = b.split_at(n);
    Ok((v.iter().fold(0u64, |acc, x| acc << 8 | u64::from(*x)), r))
}
