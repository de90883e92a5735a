//! Signing and verification (SPEC §7.1).
//!
//! The signed input is `domain ‖ message bytes`. Verification streams both parts through
//! SHA-512, so a large message (a revocation list) needs no buffer, evaluates the ed25519
//! equation on curve25519-dalek and makes the checks `VerifyingKey::verify_strict` makes: the
//! public key and the signature's R must not be of small order, s must be canonical. The result
//! accepts exactly what `verify_strict` accepts.
//!
//! A key verified often, such as the issuer's, can have [`FixedKeyTables`]: precomputed
//! multiples of the key and of the basepoint that make its verifications about 1.7 times
//! cheaper on a Cortex-M4, for 36 KiB of RAM, with the same result.

use crate::error::{EncodeError, VerifyError};
use crate::types::{HolderKey, PublicKey};
use core::fmt;
#[cfg(not(fuzzing))]
use curve25519_dalek::edwards::EdwardsPoint;
#[cfg(not(fuzzing))]
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::VerifyingKey;
#[cfg(not(fuzzing))]
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign_byupdate};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

mod ecdsa;
mod tables;
pub use ecdsa::{
    P256SigningKey, holder_digest, p256_key_from_sec1, p256_key_of, p256_low_s,
    p256_signature_from_der, p256_verifying_key, verify_p256,
};
pub use tables::FixedKeyTables;

/// Something that holds an Ed25519 private key and signs with it: a software key, or a secure
/// element behind this trait.
pub trait Signer {
    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> PublicKey;
    /// Signs `domain ‖ message` with pure Ed25519 (RFC 8032).
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError>;
}

/// An Ed25519 key held in memory. The secret is zeroized on drop and never printed.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
    /// The secret scalar and nonce prefix, SHA-512 of the seed, kept rather than hashed again
    /// for every signature (zeroized on drop too).
    #[cfg(not(fuzzing))]
    expanded: ExpandedSecretKey,
}

impl SigningKey {
    /// A new random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }
    /// The key for a 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey {
            inner: ed25519_dalek::SigningKey::from_bytes(seed),
            #[cfg(not(fuzzing))]
            expanded: ExpandedSecretKey::from(seed),
        }
    }
    /// The 32-byte seed, in a buffer that zeroizes itself on drop. Handle with care.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.inner.to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public: {})", self.public_key())
    }
}

impl SigningKey {
    /// Pure Ed25519 over `domain ‖ message`, streamed: no buffer for the concatenation.
    #[cfg(not(fuzzing))]
    fn sign_ed25519(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        let sig = raw_sign_byupdate::<Sha512, _>(
            &self.expanded,
            |d: &mut Sha512| {
                d.update(domain);
                d.update(message);
                Ok(())
            },
            &self.inner.verifying_key(),
        )
        .map_err(|_| EncodeError::Signer)?;
        Ok(sig.to_bytes())
    }
}

impl Signer for SigningKey {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.inner.verifying_key().to_bytes())
    }
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        #[cfg(fuzzing)]
        return Ok(fuzzing::signature(&self.public_key().0, domain, message));
        #[cfg(not(fuzzing))]
        self.sign_ed25519(domain, message)
    }
}

/// What signs a wallet's messages (its pre-authorization requests and payments): an Ed25519
/// key ([`SigningKey`], or any [`Signer`] wrapped in [`Ed25519Holder`]), or a P-256 key ([`P256SigningKey`], a secure element, a PKCS#11 token).
pub trait HolderSigner {
    /// The holder key, whose algorithm decides the type of the pre-authorization request.
    fn holder_key(&self) -> HolderKey;
    /// Signs `domain ‖ message` with the holder key: pure Ed25519, or ECDSA P-256 over
    /// [`holder_digest`]`(domain, message)` as `r ‖ s` (either S: the wallet brings it to
    /// low S with [`p256_low_s`]).
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError>;
}

impl HolderSigner for SigningKey {
    fn holder_key(&self) -> HolderKey {
        HolderKey::Ed25519(self.public_key())
    }
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        Signer::sign(self, domain, message)
    }
}

impl<H: HolderSigner + ?Sized> HolderSigner for &H {
    fn holder_key(&self) -> HolderKey {
        (**self).holder_key()
    }
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        (**self).sign_holder(domain, message)
    }
}

/// An Ed25519 [`Signer`] as a holder: for a key behind the Ed25519 trait (a secure element
/// that holds Ed25519) given to a wallet.
#[derive(Debug)]
pub struct Ed25519Holder<S>(pub S);

impl<S: Signer> HolderSigner for Ed25519Holder<S> {
    fn holder_key(&self) -> HolderKey {
        HolderKey::Ed25519(self.0.public_key())
    }
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        self.0.sign(domain, message)
    }
}

impl HolderSigner for P256SigningKey {
    fn holder_key(&self) -> HolderKey {
        HolderKey::P256(self.public_key())
    }
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        self.sign(domain, message)
    }
}

/// Signs as the holder and, for P-256, brings the signature to low S (SPEC §7.1.1) and
/// verifies it: a P-256 signer is secure hardware whose answer is checked before a wallet
/// stores it for good (a payment stored with a bad signature would be refused by every
/// merchant, and its retry returns the same bytes). An Ed25519 signer is trusted as before.
pub fn sign_as_holder<K: HolderSigner + ?Sized>(
    signer: &K,
    domain: &[u8],
    message: &[u8],
) -> Result<[u8; 64], EncodeError> {
    let sig = signer.sign_holder(domain, message)?;
    match signer.holder_key() {
        HolderKey::Ed25519(_) => Ok(sig),
        HolderKey::P256(k) => {
            let low = p256_low_s(&sig)?;
            verify_p256(&k, domain, message, &low).map_err(|_| EncodeError::Signer)?;
            Ok(low)
        }
    }
}

/// Verifies a holder signature over `domain ‖ message` under a key of either algorithm.
pub fn verify_holder(
    key: &HolderKey,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    match key {
        HolderKey::Ed25519(k) => verify(k, domain, message, signature),
        HolderKey::P256(k) => verify_p256(k, domain, message, signature),
    }
}

#[cfg(feature = "alloc")]
impl<S: Signer + ?Sized> Signer for alloc::boxed::Box<S> {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        (**self).sign(domain, message)
    }
}

impl<S: Signer + ?Sized> Signer for &S {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        (**self).sign(domain, message)
    }
}

/// Whether a 32-byte point encoding has `y ≥ p` (p = 2^255 − 19): a non-canonical encoding,
/// which decompression would silently reduce mod p.
fn y_non_canonical(b: &[u8; 32]) -> bool {
    b[31] & 0x7f == 0x7f && b[1..31].iter().all(|&x| x == 0xff) && b[0] >= 0xed
}

/// Decompresses a public key and refuses what SPEC §7.1 calls `weak-key`: an encoding that
/// is not canonical (`y ≥ p`), that names no point, or a point of small order.
pub fn verifying_key(key: &PublicKey) -> Result<VerifyingKey, VerifyError> {
    if y_non_canonical(&key.0) {
        return Err(VerifyError::WeakKey);
    }
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| VerifyError::WeakKey)?;
    if vk.is_weak() {
        return Err(VerifyError::WeakKey);
    }
    Ok(vk)
}

/// Whether a public key has a torsion component (a mixed-order key: `a·B + T` with `T` of
/// small order). Such a key is not weak and verifies strictly, but only when `k·T` vanishes,
/// which a batch equation with random weights does not reproduce (SPEC §7.1): its signatures
/// are verified one by one. Costs one scalar multiplication.
pub fn has_torsion(key: &PublicKey) -> bool {
    match VerifyingKey::from_bytes(&key.0) {
        Ok(vk) => !vk.to_edwards().is_torsion_free(),
        Err(_) => false,
    }
}

/// [`has_torsion`] for a holder key: a P-256 key has none (its group has prime order).
pub fn holder_has_torsion(key: &HolderKey) -> bool {
    match key {
        HolderKey::Ed25519(k) => has_torsion(k),
        HolderKey::P256(_) => false,
    }
}

/// Verifies `signature` over `domain ‖ message` under `key` with `verify_strict` semantics.
pub fn verify(
    key: &PublicKey,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    let vk = verifying_key(key)?;
    verify_with(&vk, domain, message, signature)
}

/// As [`verify`], with an already decompressed (and weak-checked) key.
pub fn verify_with(
    vk: &VerifyingKey,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    verify_with_tables(vk, None, domain, message, signature)
}

/// As [`verify_with`], using `tables` when they were built for this key (otherwise they are
/// ignored). The result is the same with or without them; only the cost differs.
pub fn verify_with_tables(
    vk: &VerifyingKey,
    tables: Option<&FixedKeyTables>,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    #[cfg(fuzzing)]
    {
        let _ = tables;
        return match fuzzing::signature(vk.as_bytes(), domain, message) == *signature {
            true => Ok(()),
            false => Err(VerifyError::BadSignature),
        };
    }
    #[cfg(not(fuzzing))]
    verify_strict_stream(vk, tables, domain, message, signature)
}

/// The canonical encodings of the eight points of order dividing 8 (the torsion subgroup),
/// as `CompressedEdwardsY` bytes; a test checks them against curve25519-dalek's
/// `EIGHT_TORSION`.
pub(crate) const SMALL_ORDER_ENCODINGS: [[u8; 32]; 8] = {
    let mut e = [[0u8; 32]; 8];
    // Identity (0, 1).
    e[0][0] = 1;
    // Order 2: (0, -1), y = p - 1.
    e[1] = p_minus(1);
    // Order 4: (±sqrt(-1), 0).
    e[3][31] = 0x80;
    // Order 8: y = ±Y8 with both signs of x.
    e[4] = Y8;
    e[5] = Y8;
    e[5][31] |= 0x80;
    e[6] = Y8_NEG;
    e[7] = Y8_NEG;
    e[7][31] |= 0x80;
    e
};

/// Whether a signature's R, *if it decodes*, is one `verify_strict` accepts: canonically
/// encoded and not of small order. Decided on the bytes, without decompressing: y must be
/// below p = 2^255 − 19 (decompression reduces y modulo p), R must not be a small-order
/// encoding, and the only other non-canonical encodings (x = 0 with the sign bit set) are the
/// identity's and the order-2 point's, both of small order. A test checks this against
/// decompress-and-recompress on every encoding where the two could differ.
pub fn r_is_strict(r: &[u8; 32]) -> bool {
    let top = r[31] & 0x7f;
    let y_canonical = !(top == 0x7f && r[1..31].iter().all(|b| *b == 0xff) && r[0] >= 0xed);
    let mut unsigned = *r;
    unsigned[31] &= 0x7f;
    y_canonical
        && !SMALL_ORDER_ENCODINGS
            .iter()
            .any(|e| *e == *r || (e[31] & 0x80 == 0 && *e == unsigned))
}

/// The y coordinate of the order-8 points with positive y (little-endian).
const Y8: [u8; 32] = [
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
    0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
];
/// p - Y8.
// In a const block: `i` runs below 32, the length of all three arrays.
#[allow(clippy::indexing_slicing)]
const Y8_NEG: [u8; 32] = {
    let mut out = [0u8; 32];
    let p = p_minus(0);
    let mut borrow = 0i16;
    let mut i = 0;
    while i < 32 {
        let d = p[i] as i16 - Y8[i] as i16 - borrow;
        out[i] = d.rem_euclid(256) as u8;
        borrow = if d < 0 { 1 } else { 0 };
        i += 1;
    }
    out
};

/// p - k for small k, little-endian (p = 2^255 - 19).
const fn p_minus(k: u8) -> [u8; 32] {
    let mut out = [0xff; 32];
    out[0] = 0xed - k;
    out[31] = 0x7f;
    out
}

/// `verify_strict` over `domain ‖ message`, streamed through SHA-512: the ed25519 equation
/// `R = [s]B − [k]A` with `k = SHA-512(R ‖ A ‖ domain ‖ message)`, checked on curve25519-dalek
/// directly, as ed25519-dalek's own verifier does. Written out instead of going through
/// ed25519-dalek's `StreamVerifier` because that one copies its 500-byte state twice, which is
/// what kept a Cortex-M4 accept above 8 KiB of stack. The key was decompressed and refused when
/// weak by [`verifying_key`]; `s` must be canonical; R must not be a small-order encoding (see
/// [`SMALL_ORDER_ENCODINGS`]) and must equal the canonical encoding of the recomputed point.
/// A test compares it with ed25519-dalek's `verify_strict` on valid and damaged signatures.
#[cfg(not(fuzzing))]
fn verify_strict_stream(
    vk: &VerifyingKey,
    tables: Option<&FixedKeyTables>,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    let (r, s) = signature.split_at(32);
    // verify_strict refuses an R of small order. Comparing R with the eight small-order
    // encodings needs no decompression (a square root, about 3.5 % of an accept on a
    // Cortex-M4). It is the same rule: the final comparison is against the canonical encoding
    // of the recomputed R, so a non-canonical R fails there whatever point it names.
    if SMALL_ORDER_ENCODINGS.iter().any(|e| r == &e[..]) {
        return Err(VerifyError::BadSignature);
    }
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(s);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
        .ok_or(VerifyError::BadSignature)?;
    let mut h = Sha512::new();
    h.update(r);
    h.update(vk.as_bytes());
    h.update(domain);
    h.update(message);
    let k = Scalar::from_hash(h);
    let computed = tables
        .and_then(|t| t.double_mul(vk.as_bytes(), &s, &k))
        .unwrap_or_else(|| {
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-vk.to_edwards(), &s)
        });
    let expected = computed.compress();
    if expected.as_bytes()[..] == *r {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// Only under cargo-fuzz (`--cfg fuzzing`, never in a normal build): signatures become
/// SHA-512(public key ‖ domain ‖ message), so that the fuzzer spends its time on the logic
/// behind the signature checks rather than on curve arithmetic. Forging one is still as hard
/// as finding a preimage, so random inputs are refused as before. The stable test suite
/// replays every corpus file with real Ed25519.
#[cfg(fuzzing)]
mod fuzzing {
    use super::*;
    pub fn signature(key: &[u8], domain: &[u8], message: &[u8]) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(key);
        h.update(domain);
        h.update(message);
        h.finalize().into()
    }
}

#[cfg(all(test, feature = "alloc"))]
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate alloc;
    use super::SMALL_ORDER_ENCODINGS;
    use crate::types::PublicKey;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    /// The hard-coded encodings are exactly the compressions of the eight torsion points, and
    /// every one of them decompresses to a point of small order.
    #[test]
    fn small_order_encodings_are_the_torsion_points() {
        let mut want: [[u8; 32]; 8] = EIGHT_TORSION.map(|p| p.compress().to_bytes());
        let mut got = SMALL_ORDER_ENCODINGS;
        want.sort();
        got.sort();
        assert_eq!(got, want);
        for e in SMALL_ORDER_ENCODINGS {
            let p = CompressedEdwardsY(e).decompress();
            assert!(p.is_some_and(|p| p.is_small_order()));
        }
    }

    /// The streamed verifier accepts exactly what ed25519-dalek's `verify_strict` accepts, on
    /// valid signatures and on signatures damaged in R, in s (including s + L, non-canonical),
    /// in the key and in the message, and with small-order R and weak keys.
    #[test]
    #[cfg(not(fuzzing))]
    fn the_streamed_verifier_agrees_with_verify_strict() {
        use ed25519_dalek::Signer as _;
        // L, the order of the basepoint, little-endian.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut agreed = 0;
        for seed in 0u8..24 {
            let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
            let vk = sk.verifying_key();
            let domain = b"offpay test\0";
            let msg: alloc::vec::Vec<u8> = (0..(seed as usize * 13)).map(|i| i as u8).collect();
            let whole = [&domain[..], &msg].concat();
            let sig = sk.sign(&whole).to_bytes();
            let mut tables = alloc::boxed::Box::new(super::FixedKeyTables::new());
            assert!(tables.build(&PublicKey(vk.to_bytes())).is_ok());
            let mut cases: alloc::vec::Vec<([u8; 64], alloc::vec::Vec<u8>)> =
                alloc::vec::Vec::new();
            cases.push((sig, msg.clone()));
            for i in [0usize, 17, 31, 32, 45, 63] {
                let mut bad = sig;
                bad[i] ^= 1 << (seed % 8);
                cases.push((bad, msg.clone()));
            }
            // s + L: the same scalar, not canonical.
            let mut plus_l = sig;
            let mut carry = 0u16;
            for i in 0..32 {
                let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
                plus_l[32 + i] = v as u8;
                carry = v >> 8;
            }
            // Without the canonical check, s + L would verify; with it, it must not.
            assert!(
                vk.verify_strict(&whole, &ed25519_dalek::Signature::from_bytes(&plus_l))
                    .is_err()
            );
            cases.push((plus_l, msg.clone()));
            for e in SMALL_ORDER_ENCODINGS {
                let mut small = sig;
                small[..32].copy_from_slice(&e);
                cases.push((small, msg.clone()));
            }
            let mut other = msg.clone();
            other.push(1);
            cases.push((sig, other));
            for (sig, m) in cases {
                let whole = [&domain[..], &m].concat();
                let want = vk
                    .verify_strict(&whole, &ed25519_dalek::Signature::from_bytes(&sig))
                    .is_ok();
                let got = super::verify_strict_stream(&vk, None, domain, &m, &sig).is_ok();
                assert_eq!(got, want, "seed {seed}");
                let with_tables =
                    super::verify_strict_stream(&vk, Some(&tables), domain, &m, &sig).is_ok();
                assert_eq!(with_tables, want, "seed {seed}, with tables");
                agreed += 1;
            }
        }
        assert!(agreed > 300);
    }

    /// What verify_strict decides about R, by decompressing and recompressing.
    fn strict_by_points(r: &[u8; 32]) -> Option<bool> {
        let p = CompressedEdwardsY(*r).decompress()?;
        Some(!p.is_small_order() && p.compress().0 == *r)
    }

    /// `r_is_strict` agrees with decompress-and-recompress on every encoding that decodes among
    /// those where they could differ: both signs of every y ≥ p (2 × 19), both signs of every
    /// small-order y, and R values from real signatures.
    #[test]
    fn the_byte_check_of_r_matches_the_point_check() {
        let mut candidates: alloc::vec::Vec<[u8; 32]> = alloc::vec::Vec::new();
        for low in 0xedu8..=0xff {
            let mut r = [0xffu8; 32];
            r[0] = low;
            r[31] = 0x7f;
            candidates.push(r);
        }
        for e in SMALL_ORDER_ENCODINGS {
            candidates.push(e);
        }
        for sign in [0u8, 0x80] {
            for mut r in candidates.clone() {
                r[31] = (r[31] & 0x7f) | sign;
                candidates.push(r);
            }
        }
        let key = crate::crypto::SigningKey::from_seed(&[4; 32]);
        for i in 0..200u32 {
            let sig = crate::crypto::Signer::sign(&key, b"d", &i.to_le_bytes()).unwrap_or([0; 64]);
            let mut r = [0u8; 32];
            r.copy_from_slice(&sig[..32]);
            candidates.push(r);
        }
        let (mut decoded, mut refused) = (0, 0);
        for r in &candidates {
            if let Some(want) = strict_by_points(r) {
                decoded += 1;
                refused += usize::from(!want);
                assert_eq!(super::r_is_strict(r), want, "{r:02x?}");
            }
        }
        assert!(
            decoded > 200 && refused >= 10,
            "{decoded} decoded, {refused} refused"
        );
    }
}
