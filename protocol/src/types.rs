//! Newtypes for the values that travel in messages: ids, keys, amounts, currencies and times.
//!
//! Each serializes exactly as SPEC §3 says: fixed-size byte arrays as raw bytes, amounts as
//! postcard varints, timestamps as 4 little-endian bytes.

use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ")")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    };
}

byte_id!(
    /// A voucher id: 16 random bytes chosen by the issuer.
    VoucherId, 16);
byte_id!(
    /// A merchant id: 8 bytes assigned by the issuer in the merchant certificate.
    MerchantId, 8);
byte_id!(
    /// An issuer key id: the first 8 bytes of SHA-256 of the issuer public key.
    KeyId, 8);
byte_id!(
    /// A 16-byte random nonce (request nonce, client nonce).
    Nonce, 16);
byte_id!(
    /// A payment id: SHA-256 of the whole signed payment message.
    PaymentId, 32);
byte_id!(
    /// The link from a payment to its predecessor: the first 16 bytes of the previous payment's
    /// id, or all zeros for sequence number 1.
    LinkId, 16);
byte_id!(
    /// An Ed25519 public key (32 bytes, compressed Edwards point).
    PublicKey, 32);
byte_id!(
    /// A record id: SHA-256 of one record (payment or receipt) as it appears in a sync batch.
    RecordId, 32);

/// An ECDSA P-256 public key: a SEC1 compressed point (33 bytes, `02` or `03` then X).
/// Written by hand, not by `byte_id!`: serde and `Default` stop at 32-byte arrays.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct P256Key(pub [u8; 33]);

impl P256Key {
    /// Length in bytes.
    pub const LEN: usize = 33;
    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }
}

impl fmt::Debug for P256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P256Key({self})")
    }
}

impl fmt::Display for P256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The algorithm of a holder key (SPEC §7.1.1); the message type of a pre-authorization
/// request or voucher says which (SPEC §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HolderAlgorithm {
    /// Ed25519 (RFC 8032), as every other key of the protocol.
    Ed25519,
    /// ECDSA on P-256 with SHA-256, low-S, signature `r ‖ s`: the keys a phone's secure
    /// hardware can hold (Secure Enclave, StrongBox).
    P256,
}

impl HolderAlgorithm {
    /// The name used in SPEC.md, the vectors and the issuer API.
    pub const fn name(self) -> &'static str {
        match self {
            HolderAlgorithm::Ed25519 => "ed25519",
            HolderAlgorithm::P256 => "p256",
        }
    }
}

/// The key a voucher is bound to and that signs the holder's messages: Ed25519 or ECDSA
/// P-256 (SPEC §7.1.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HolderKey {
    /// An Ed25519 key, 32 bytes.
    Ed25519(PublicKey),
    /// A P-256 key, 33 bytes SEC1 compressed.
    P256(P256Key),
}

impl HolderKey {
    /// The key's algorithm.
    pub const fn algorithm(&self) -> HolderAlgorithm {
        match self {
            HolderKey::Ed25519(_) => HolderAlgorithm::Ed25519,
            HolderKey::P256(_) => HolderAlgorithm::P256,
        }
    }
    /// The key's bytes as they travel: 32 for Ed25519, 33 for P-256.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            HolderKey::Ed25519(k) => &k.0,
            HolderKey::P256(k) => &k.0,
        }
    }
    /// The key from its bytes, the algorithm told by their length (32: Ed25519, 33: P-256).
    /// Checks the length only; whether the bytes name a usable point is checked when a
    /// signature is verified (SPEC §7.1).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if let Ok(k) = <[u8; 32]>::try_from(b) {
            Some(HolderKey::Ed25519(PublicKey(k)))
        } else {
            <[u8; 33]>::try_from(b)
                .ok()
                .map(|k| HolderKey::P256(P256Key(k)))
        }
    }
}

impl From<PublicKey> for HolderKey {
    fn from(k: PublicKey) -> Self {
        HolderKey::Ed25519(k)
    }
}

impl From<P256Key> for HolderKey {
    fn from(k: P256Key) -> Self {
        HolderKey::P256(k)
    }
}

impl fmt::Debug for HolderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HolderKey::Ed25519(k) => write!(f, "HolderKey::Ed25519({k})"),
            HolderKey::P256(k) => write!(f, "HolderKey::P256({k})"),
        }
    }
}

impl fmt::Display for HolderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HolderKey::Ed25519(k) => write!(f, "{k}"),
            HolderKey::P256(k) => write!(f, "{k}"),
        }
    }
}

impl PaymentId {
    /// The link that the next payment of the same voucher carries.
    pub fn link(&self) -> LinkId {
        let mut l = [0u8; 16];
        l.copy_from_slice(&self.0[..16]);
        LinkId(l)
    }
}

impl KeyId {
    /// The key id of an issuer public key.
    pub fn of(key: &PublicKey) -> Self {
        use sha2::Digest;
        let h = sha2::Sha256::digest(key.0);
        let mut id = [0u8; 8];
        for (d, s) in id.iter_mut().zip(h.iter()) {
            *d = *s;
        }
        KeyId(id)
    }
}

/// An amount in minor units of its currency (cents for EUR, yen for JPY). Never a float.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
pub struct Amount(pub u64);

impl Amount {
    /// Checked addition: `None` on overflow.
    pub const fn checked_add(self, other: Amount) -> Option<Amount> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }
    /// Checked subtraction: `None` if `other > self`.
    pub const fn checked_sub(self, other: Amount) -> Option<Amount> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }
}

/// An ISO 4217 alphabetic currency code: exactly three ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Builds a currency from its code; `None` unless it is three ASCII letters `A`–`Z`.
    pub const fn new(code: [u8; 3]) -> Option<Self> {
        if code[0].is_ascii_uppercase()
            && code[1].is_ascii_uppercase()
            && code[2].is_ascii_uppercase()
        {
            Some(Currency(code))
        } else {
            None
        }
    }
    /// Parses `"EUR"`-style text.
    pub fn parse(code: &str) -> Option<Self> {
        let b: [u8; 3] = code.as_bytes().try_into().ok()?;
        Self::new(b)
    }
    /// The three letters.
    pub const fn code(&self) -> [u8; 3] {
        self.0
    }
    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Three ASCII capitals, checked at construction, are valid UTF-8.
        core::str::from_utf8(&self.0).unwrap_or("???")
    }
    /// Whether the value holds three capital letters (a decoded value may not).
    pub(crate) const fn is_valid(&self) -> bool {
        Self::new(self.0).is_some()
    }
    /// Number of minor-unit digits per ISO 4217 for the common currencies; 2 otherwise.
    pub fn minor_units(&self) -> u8 {
        match &self.0 {
            b"JPY" | b"KRW" | b"ISK" | b"CLP" | b"VND" | b"XAF" | b"XOF" | b"UGX" | b"PYG"
            | b"RWF" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" | b"LYD" | b"IQD" => 3,
            _ => 2,
        }
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point in time: Unix seconds, unsigned 32-bit (valid until 2106-02-07), encoded as 4
/// little-endian bytes so that every time costs the same on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Timestamp(pub u32);

impl Timestamp {
    /// Adds seconds, saturating at the largest representable time.
    pub const fn saturating_add(self, secs: u32) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }
    /// Subtracts seconds, saturating at zero.
    pub const fn saturating_sub(self, secs: u32) -> Timestamp {
        Timestamp(self.0.saturating_sub(secs))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.to_le_bytes().serialize(s)
    }
}
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <[u8; 4]>::deserialize(d).map(|b| Timestamp(u32::from_le_bytes(b)))
    }
}

/// The tolerated difference between two devices' clocks, in seconds (SPEC §6).
pub const CLOCK_SKEW_SECS: u32 = 300;

/// How long a payment request stays fresh for a wallet, in seconds (SPEC §8.1): a request
/// whose `created_at` (when not 0) is older than this, plus the skew, is refused as
/// `expired`, so an old genuine request shown again makes the wallet sign nothing.
pub const REQUEST_FRESH_SECS: u32 = 600;
