//! The fixed world every vector lives in: keys from fixed seeds, one issuer, two merchants, one
//! holder, and raw builders that can also make messages the library would refuse to build.

use offpay_protocol::codec::{MessageType, SignedMessage, VERSION, Writer};
use offpay_protocol::msg::{MerchantCertificate, Payment, PaymentRequest, Receipt, Voucher};
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Serialize;

/// The fixture's base time: 2027-01-15 08:00:00 UTC.
pub const T0: u32 = 1_799_913_600;

/// `T0 + s`.
pub fn t(s: u32) -> Timestamp {
    Timestamp(T0 + s)
}

/// The fixed keys and credentials.
pub struct Fixture {
    /// The issuer.
    pub issuer: Issuer,
    /// A key no one trusts.
    pub stranger: SigningKey,
    /// The customer's device key.
    pub holder: SigningKey,
    /// A second customer's device key, ECDSA P-256 (secret scalar `02` × 32).
    pub holder_p256: crypto::P256SigningKey,
    /// Its 50.00 EUR voucher (id [`VOUCHER_P256_ID`]), otherwise as [`Fixture::voucher`].
    pub voucher_p256: Vec<u8>,
    /// Merchant A's key.
    pub merchant_a: SigningKey,
    /// Merchant B's key.
    pub merchant_b: SigningKey,
    /// Merchant A's certificate.
    pub cert_a: Vec<u8>,
    /// Merchant B's certificate.
    pub cert_b: Vec<u8>,
    /// The holder's 50.00 EUR voucher.
    pub voucher: Vec<u8>,
    /// The issuer's trust store.
    pub trust: TrustStore<4>,
}

/// Merchant A's id.
pub const MERCHANT_A: MerchantId = MerchantId(*b"MERCH-A1");
/// Merchant B's id.
pub const MERCHANT_B: MerchantId = MerchantId(*b"MERCH-B2");
/// The voucher id.
pub const VOUCHER_ID: VoucherId = VoucherId([0x5a; 16]);
/// The P-256 holder's voucher id.
pub const VOUCHER_P256_ID: VoucherId = VoucherId([0x5c; 16]);

/// Euro.
pub fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// The voucher terms of the fixture: valid T0 .. T0+30 days, 25.00 max single, 10 payments.
pub fn voucher_value(holder: impl Into<HolderKey>, key_id: KeyId) -> Voucher {
    Voucher {
        id: VOUCHER_ID,
        issuer_key_id: key_id,
        holder_key: holder.into(),
        currency: eur(),
        limit: Amount(5000),
        not_before: t(0),
        not_after: t(30 * 86_400),
        policy: msg::AcceptancePolicy {
            max_single: Amount(2500),
            max_payments: 10,
        },
    }
}

impl Fixture {
    /// Builds the fixture; the same bytes every time.
    pub fn new() -> Self {
        let issuer = Issuer::new(SigningKey::from_seed(&[1; 32]));
        let holder = SigningKey::from_seed(&[2; 32]);
        let merchant_a = SigningKey::from_seed(&[3; 32]);
        let merchant_b = SigningKey::from_seed(&[4; 32]);
        let stranger = SigningKey::from_seed(&[5; 32]);
        let year = 365 * 86_400;
        let cert_a = issuer
            .certify_merchant(
                MERCHANT_A,
                merchant_a.public_key(),
                "Café Amélie",
                t(0),
                t(year),
            )
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let cert_b = issuer
            .certify_merchant(
                MERCHANT_B,
                merchant_b.public_key(),
                "Bike Repair B",
                t(0),
                t(year),
            )
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let voucher = sign(
            &voucher_value(holder.public_key(), issuer.key_id()),
            issuer.signer(),
        );
        let holder_p256 = crypto::P256SigningKey::from_bytes(&[2; 32])
            .unwrap_or_else(|| fail("a P-256 scalar below n"));
        let voucher_p256 = {
            let mut v = voucher_value(holder_p256.public_key(), issuer.key_id());
            v.id = VOUCHER_P256_ID;
            sign(&v, issuer.signer())
        };
        let mut trust = TrustStore::new();
        let _ = trust.add(
            issuer.public_key(),
            t(0).saturating_sub(86_400),
            t(2 * year),
        );
        Fixture {
            issuer,
            stranger,
            holder,
            holder_p256,
            voucher_p256,
            merchant_a,
            merchant_b,
            cert_a,
            cert_b,
            voucher,
            trust,
        }
    }

    /// A seeded RNG for nonces.
    pub fn rng(seed: u8) -> ChaCha20Rng {
        ChaCha20Rng::from_seed([seed; 32])
    }

    /// A request from merchant A (or B) signed by `signer`.
    pub fn request(
        &self,
        b: bool,
        amount: u64,
        currency: Currency,
        nonce: [u8; 16],
        reference: Option<&str>,
    ) -> Vec<u8> {
        let cert = if b { &self.cert_b } else { &self.cert_a };
        let signer = if b {
            &self.merchant_b
        } else {
            &self.merchant_a
        };
        let certificate =
            decode_signed::<MerchantCertificate<'_>>(cert).unwrap_or_else(|e| fail(e));
        let req = PaymentRequest {
            certificate,
            amount: Amount(amount),
            currency,
            nonce: Nonce(nonce),
            created_at: t(3600),
            reference,
        };
        sign(&req, signer)
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

fn fail(e: impl core::fmt::Debug) -> ! {
    panic!("fixture inconsistent: {e:?}")
}

/// Encodes and signs with the library's encoder (refuses out-of-range values).
pub fn sign<'a, T: SignedMessage<'a>>(value: &T, signer: &dyn Signer) -> Vec<u8> {
    let mut buf = vec![0u8; T::MAX_LEN];
    match codec::encode_signed(value, signer, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(e) => fail(e),
    }
}

/// Builds `version ‖ type ‖ parts… ‖ signature(domain ‖ …)` with no range checks, so vectors
/// can hold messages a conforming encoder would never produce.
pub fn raw_signed(ty: MessageType, domain: &[u8], body: &[u8], signer: &dyn Signer) -> Vec<u8> {
    raw_signed_with(ty, domain, body, &|d, m| signer.sign(d, m))
}

/// As [`raw_signed`], signing with `sign(domain, message)` (a P-256 holder key).
pub fn raw_signed_with(
    ty: MessageType,
    domain: &[u8],
    body: &[u8],
    sign: codec::SignFn<'_>,
) -> Vec<u8> {
    let mut m = vec![VERSION, ty as u8];
    m.extend_from_slice(body);
    let sig = sign(domain, &m).unwrap_or_else(|e| fail(e));
    m.extend_from_slice(&sig);
    m
}

/// A payment built raw and signed by the P-256 holder key.
pub fn raw_payment_p256(
    voucher: &[u8],
    tail: &PaymentTail,
    key: &crypto::P256SigningKey,
) -> Vec<u8> {
    let mut body = voucher.to_vec();
    body.extend(fields(tail));
    raw_signed_with(
        MessageType::Payment,
        <Payment<'_> as SignedMessage<'_>>::DOMAIN,
        &body,
        &|d, m| key.sign(d, m),
    )
}

/// A voucher's body fields as they are written, without the range rules the library applies
/// (for vouchers it would refuse to build).
pub fn voucher_body(v: &Voucher) -> Vec<u8> {
    let mut body = fields(&(v.id, v.issuer_key_id));
    body.extend(v.holder_key.as_bytes());
    body.extend(fields(&(
        v.currency,
        v.limit,
        v.not_before,
        v.not_after,
        v.policy.max_single,
        v.policy.max_payments,
    )));
    body
}

/// Postcard-encodes a group of fields.
pub fn fields<T: Serialize>(v: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::new(&mut buf);
    if let Err(e) = w.fields(v) {
        fail(e)
    }
    let n = w.len();
    buf.truncate(n);
    buf
}

/// A varint in `width` bytes: the value, padded with continuation bits (non-canonical when
/// wider than needed).
pub fn overlong_varint(mut v: u64, width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..width {
        let last = i + 1 == width;
        let b = (v & 0x7f) as u8;
        v >>= 7;
        out.push(if last { b } else { b | 0x80 });
    }
    out
}

/// The payment fields after the embedded voucher, in wire order.
#[derive(Serialize)]
pub struct PaymentTail {
    /// Sequence number.
    pub seq: u32,
    /// Amount.
    pub amount: u64,
    /// Cumulative amount.
    pub cumulative: u64,
    /// Link.
    pub prev: [u8; 16],
    /// Merchant.
    pub merchant: [u8; 8],
    /// Request nonce.
    pub nonce: [u8; 16],
    /// Created at, u32le.
    pub created_at: [u8; 4],
}

/// A payment built raw: `voucher ‖ tail`, signed by `signer` under the payment domain.
pub fn raw_payment(voucher: &[u8], tail: &PaymentTail, signer: &dyn Signer) -> Vec<u8> {
    let mut body = voucher.to_vec();
    body.extend(fields(tail));
    raw_signed(
        MessageType::Payment,
        <Payment<'_> as SignedMessage<'_>>::DOMAIN,
        &body,
        signer,
    )
}

/// A receipt for `payment` from a merchant.
pub fn receipt(
    payment: &[u8],
    merchant: MerchantId,
    signer: &dyn Signer,
    at: Timestamp,
) -> Vec<u8> {
    let id = PaymentId(crypto::sha256(payment));
    sign(
        &Receipt {
            payment_id: id,
            merchant_id: merchant,
            accepted_at: at,
        },
        signer,
    )
}

/// A fresh voucher for the holder (used for settlement scenarios that need several).
pub fn voucher_with(f: &Fixture, id: [u8; 16], not_after: Timestamp) -> Vec<u8> {
    let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
    v.id = VoucherId(id);
    v.not_after = not_after;
    sign(&v, f.issuer.signer())
}

/// The payment id of payment bytes.
pub fn pid(payment: &[u8]) -> PaymentId {
    PaymentId(crypto::sha256(payment))
}

/// Makes a well-formed payment of the fixture voucher.
#[allow(clippy::too_many_arguments)]
pub fn payment(
    f: &Fixture,
    voucher: &[u8],
    seq: u32,
    amount: u64,
    cumulative: u64,
    prev: Option<&[u8]>,
    merchant: MerchantId,
    nonce: [u8; 16],
) -> Vec<u8> {
    raw_payment(
        voucher,
        &tail_at_3700(seq, amount, cumulative, prev, merchant, nonce),
        &f.holder,
    )
}

/// The tail of a payment made at `t(3700)`, linked to `prev` (none: sequence 1).
pub fn tail_at_3700(
    seq: u32,
    amount: u64,
    cumulative: u64,
    prev: Option<&[u8]>,
    merchant: MerchantId,
    nonce: [u8; 16],
) -> PaymentTail {
    PaymentTail {
        seq,
        amount,
        cumulative,
        prev: prev.map(|p| pid(p).link().0).unwrap_or([0; 16]),
        merchant: merchant.0,
        nonce,
        created_at: t(3700).0.to_le_bytes(),
    }
}

/// Which message a vector holds, as its SPEC name.
pub fn type_name(ty: MessageType) -> &'static str {
    ty.name()
}

/// The voucher message type (for raw builders).
pub const VOUCHER_DOMAIN: &[u8] = <Voucher as SignedMessage<'static>>::DOMAIN;

/// How [`EdgeSigner`] departs from a normal Ed25519 signature: the edge cases of "Taming the
/// many EdDSAs" (Chalkias, Garillot, Nikolaenko) that separate a strict verifier (SPEC §7.1)
/// from a cofactored or a libsodium-style one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// A correct signature.
    None,
    /// `s + L`: the same point equation, a non-canonical scalar.
    SPlusL,
    /// `s` with its top bit set.
    SHighBit,
    /// `R` = the identity (small order), `s = k·a`: the equation holds without the check on R.
    SmallOrderR,
    /// `R` = a non-canonical encoding of the identity (y = p + 1), `s = k·a`: holds for a
    /// verifier that compares points rather than encodings.
    NonCanonicalR,
}

/// An Ed25519 signer built from the curve operations, so that vectors can hold signatures a
/// correct signer never makes; with `torsion`, its public key is `a·B + T` for a point `T` of
/// order 8 (a mixed-order key: not small order, so not `weak-key`).
pub struct EdgeSigner {
    a: curve25519_dalek::Scalar,
    prefix: [u8; 32],
    public: [u8; 32],
    /// The departure from a correct signature.
    pub edge: Edge,
}

impl EdgeSigner {
    /// The signer of `seed` (RFC 8032 key expansion).
    pub fn new(seed: [u8; 32], torsion: bool, edge: Edge) -> Self {
        use curve25519_dalek::{EdwardsPoint, Scalar, constants::EIGHT_TORSION};
        use sha2::Digest;
        let h = sha2::Sha512::digest(seed);
        let mut lo = [0u8; 32];
        lo.copy_from_slice(&h[..32]);
        lo[0] &= 248;
        lo[31] &= 127;
        lo[31] |= 64;
        let a = Scalar::from_bytes_mod_order(lo);
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&h[32..]);
        let mut point = EdwardsPoint::mul_base(&a);
        if torsion {
            point += EIGHT_TORSION[1];
        }
        EdgeSigner {
            a,
            prefix,
            public: point.compress().to_bytes(),
            edge,
        }
    }
}

impl Signer for EdgeSigner {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.public)
    }
    fn sign(
        &self,
        domain: &[u8],
        message: &[u8],
    ) -> Result<[u8; 64], offpay_protocol::EncodeError> {
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::Digest;
        let wide = |parts: &[&[u8]]| {
            let mut d = sha2::Sha512::new();
            for p in parts {
                d.update(p);
            }
            Scalar::from_bytes_mod_order_wide(&d.finalize().into())
        };
        let (r, r_bytes) = match self.edge {
            Edge::SmallOrderR => {
                let mut id = [0u8; 32];
                id[0] = 1;
                (Scalar::ZERO, id)
            }
            Edge::NonCanonicalR => {
                // y = p + 1 = 2^255 - 18, little-endian: names the identity, not canonically.
                let mut y = [0xff; 32];
                y[0] = 0xee;
                y[31] = 0x7f;
                (Scalar::ZERO, y)
            }
            _ => {
                let r = wide(&[&self.prefix, domain, message]);
                (r, EdwardsPoint::mul_base(&r).compress().to_bytes())
            }
        };
        let k = wide(&[&r_bytes, &self.public, domain, message]);
        let mut s = (r + k * self.a).to_bytes();
        match self.edge {
            Edge::SPlusL => {
                // s + L as 256-bit little-endian integers (s < L < 2^253: no overflow).
                // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
                let order: [u8; 32] = [
                    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde,
                    0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
                ];
                let mut carry = 0u16;
                for (x, y) in s.iter_mut().zip(order) {
                    let t = u16::from(*x) + u16::from(y) + carry;
                    *x = t as u8;
                    carry = t >> 8;
                }
            }
            Edge::SHighBit => s[31] |= 0x80,
            _ => {}
        }
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(&s);
        Ok(sig)
    }
}
