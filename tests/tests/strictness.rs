//! SPEC §7.1: the vectors tell a strict Ed25519 verifier from the lax ones. A verifier in the
//! style of many deployed libraries — the top bit of `s` ignored and `s` reduced mod L, `R`
//! decompressed without a canonical-encoding or small-order check, the equation checked with
//! the cofactor — accepts every `ed25519-*` vector that expects `bad-signature`, so such a
//! verifier fails the vectors; the reference refuses them all (conformance.rs runs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::IsIdentity;
use curve25519_dalek::{EdwardsPoint, Scalar};
use offpay_protocol::codec::SignedMessage;
use offpay_protocol::msg::*;
use offpay_protocol::*;
use serde_json::Value;
use sha2::{Digest, Sha512};

/// Cofactored, point-comparing, `s`-masking verification.
fn lax_verify(key: &[u8; 32], domain: &[u8], signed: &[u8], sig: &[u8; 64]) -> bool {
    let Some(a) = CompressedEdwardsY(*key).decompress() else {
        return false;
    };
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
        return false;
    };
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    s_bytes[31] &= 0x7f;
    let s = Scalar::from_bytes_mod_order(s_bytes);
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key);
    h.update(domain);
    h.update(signed);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let lhs: EdwardsPoint = EdwardsPoint::mul_base(&s) - r - k * a;
    lhs.mul_by_cofactor().is_identity()
}

fn parts<'a, T: SignedMessage<'a>>(s: &offpay_protocol::Signed<'a, T>) -> (&'a [u8], [u8; 64]) {
    (s.signed_bytes(), *s.signature())
}

/// (strict verdict, lax verdict) of the outer signature of a verify-context vector.
fn verdicts(ty: &str, bytes: &[u8], merchant_a: [u8; 32], issuer: [u8; 32]) -> (bool, bool) {
    let (key, domain, (signed, sig)) = match ty {
        "Voucher" => {
            let v = decode_signed::<Voucher>(bytes).unwrap();
            (issuer, Voucher::DOMAIN, parts(&v))
        }
        "Payment" => {
            let p = decode_signed::<Payment<'_>>(bytes).unwrap();
            let HolderKey::Ed25519(k) = p.voucher.holder_key else {
                panic!("edge vectors are of Ed25519 holder keys")
            };
            (k.0, Payment::DOMAIN, parts(&p))
        }
        "Receipt" => {
            let r = decode_signed::<Receipt>(bytes).unwrap();
            (merchant_a, Receipt::DOMAIN, parts(&r))
        }
        "PaymentRequest" => {
            let r = decode_signed::<PaymentRequest<'_>>(bytes).unwrap();
            (
                r.certificate.merchant_key.0,
                PaymentRequest::DOMAIN,
                parts(&r),
            )
        }
        other => panic!("no edge vectors of type {other}"),
    };
    let strict = crypto::verify(&PublicKey(key), domain, signed, &sig).is_ok();
    (strict, lax_verify(&key, domain, signed, &sig))
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn a_lax_verifier_fails_the_strictness_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/verify.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let merchant_a = hex32(&file["fixture"]["merchant_a"]["key"]);
    let issuer = hex32(&file["fixture"]["issuer_key"]);
    let mut refused = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for v in file["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        if !name.starts_with("ed25519-") {
            continue;
        }
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let ty = v["message"].as_str().unwrap();
        let (strict, lax) = verdicts(ty, &bytes, merchant_a, issuer);
        match v["expect"].as_str().unwrap() {
            "valid" => assert!(strict && lax, "{name}: both verifiers accept it"),
            "bad-signature" => {
                assert!(!strict, "{name}: the strict verifier refuses it");
                assert!(
                    lax,
                    "{name}: the lax verifier accepts it, so it fails the vector"
                );
                refused.push(name.to_string());
                kinds.insert(name.split('-').nth(1).unwrap().to_string());
            }
            other => panic!("{name}: unexpected expectation {other}"),
        }
    }
    // s + L, s's top bit, small-order R, non-canonical R, for the issuer's, the holder's and a
    // merchant's key; and a torsion holder key and merchant key.
    assert_eq!(refused.len(), 4 * 3 + 2, "{refused:?}");
    assert!(
        ["s", "small", "non", "torsion"]
            .iter()
            .all(|k| kinds.contains(*k)),
        "{kinds:?}"
    );
}

/// Keys with a torsion component never enter what settlement verifies in batches: the issuer
/// certifies no such merchant key and pre-authorizes no such holder key, and settlement
/// registers no such certificate (`weak-key`).
#[test]
fn the_issuer_refuses_keys_with_a_torsion_component() {
    use offpay_conformance::fixture::*;
    let f = Fixture::new();
    let torsion = EdgeSigner::new([3; 32], true, Edge::None);
    let clean = EdgeSigner::new([3; 32], false, Edge::None);
    let certify = |k: PublicKey| {
        f.issuer
            .certify_merchant(MerchantId(*b"MERCH-T8"), k, "Shop", t(0), t(86_400))
            .map(|c| c.to_vec())
    };
    assert_eq!(
        certify(torsion.public_key()).unwrap_err().name(),
        "weak-key"
    );
    assert!(certify(clean.public_key()).is_ok());

    // A certificate the issuer would not make, signed anyway: settlement will not register it.
    let forced = sign(
        &MerchantCertificate {
            merchant_id: MerchantId(*b"MERCH-T8"),
            issuer_key_id: f.issuer.key_id(),
            merchant_key: torsion.public_key(),
            display_name: "Shop",
            not_before: t(0),
            not_after: t(86_400),
        },
        f.issuer.signer(),
    );
    let mut s = Settlement::new(f.trust.clone(), settlement::DEFAULT_GRACE_SECS);
    assert_eq!(s.register_merchant(&forced).unwrap_err().name(), "weak-key");

    // A pre-authorization request from a holder key with a torsion component.
    let holder = EdgeSigner::new([2; 32], true, Edge::None);
    let wallet: Wallet<MemStore, crypto::Ed25519Holder<EdgeSigner>> =
        Wallet::open(MemStore::new(), crypto::Ed25519Holder(holder)).unwrap();
    // One whose signature satisfies the strict equation, so that the key alone is refused.
    let req = (0u8..=255)
        .map(|n| {
            wallet
                .preauth_request(b"card:1", Amount(100), eur(), Nonce([n; 16]), t(60))
                .unwrap()
                .to_vec()
        })
        .find(|r| {
            let d = decode_signed::<PreAuthRequest<'_>>(r).unwrap();
            d.verify_holder(&d.holder_key).is_ok()
        })
        .unwrap();
    let terms = VoucherTerms {
        not_before: t(60),
        not_after: t(86_400),
        max_single: None,
        max_payments: 4,
    };
    let e = f
        .issuer
        .issue_voucher(&req, terms, &mut Fixture::rng(1))
        .unwrap_err();
    assert_eq!(e.name(), "weak-key");
}
