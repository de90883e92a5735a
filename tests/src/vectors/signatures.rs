//! Signatures, trust and windows, and Ed25519 strictness (`verify.json`).

use super::*;

/// Signature and trust failures.
pub(super) fn verify(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let ver = |name: &str, ty: MessageType, b: &[u8], e: &str, now: u32| {
        with(
            v(name, ty, b, e),
            json!({ "context": "verify", "now": t(now).0 }),
        )
    };
    let p1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    out.push(ver(
        "payment-valid",
        MessageType::Payment,
        &p1,
        "valid",
        NOW,
    ));
    out.push(ver(
        "voucher-valid",
        MessageType::Voucher,
        &f.voucher,
        "valid",
        NOW,
    ));
    out.push(ver(
        "merchant-certificate-valid",
        MessageType::MerchantCertificate,
        &f.cert_a,
        "valid",
        NOW,
    ));
    let mut flipped = p1.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    out.push(ver(
        "payment-bad-signature",
        MessageType::Payment,
        &flipped,
        "bad-signature",
        NOW,
    ));
    let mut flipped_body = p1.clone();
    let at = flipped_body.len() - 64 - 5;
    flipped_body[at] ^= 0x01;
    out.push(ver(
        "payment-tampered-nonce",
        MessageType::Payment,
        &flipped_body,
        "bad-signature",
        NOW,
    ));
    let by_stranger = raw_payment(
        &f.voucher,
        &PaymentTail {
            seq: 1,
            amount: 420,
            cumulative: 420,
            prev: [0; 16],
            merchant: MERCHANT_A.0,
            nonce: NONCE,
            created_at: t(3700).0.to_le_bytes(),
        },
        &f.stranger,
    );
    out.push(ver(
        "payment-signed-by-wrong-key",
        MessageType::Payment,
        &by_stranger,
        "bad-signature",
        NOW,
    ));
    let vv = voucher_value(f.holder.public_key(), f.issuer.key_id());
    let forged_voucher = sign(&vv, &f.stranger);
    out.push(ver(
        "voucher-signed-by-wrong-key",
        MessageType::Voucher,
        &forged_voucher,
        "bad-signature",
        NOW,
    ));
    let mut vv2 = vv;
    vv2.issuer_key_id = KeyId::of(&f.stranger.public_key());
    let stranger_voucher = sign(&vv2, &f.stranger);
    out.push(ver(
        "voucher-unknown-issuer-key",
        MessageType::Voucher,
        &stranger_voucher,
        "unknown-issuer-key",
        NOW,
    ));
    out.push(ver(
        "voucher-expired",
        MessageType::Voucher,
        &f.voucher,
        "expired",
        30 * 86_400 + 301,
    ));
    out.push(ver(
        "voucher-last-second-with-skew",
        MessageType::Voucher,
        &f.voucher,
        "valid",
        30 * 86_400 + 300,
    ));
    let early = {
        let mut vv = vv;
        vv.not_before = t(7200);
        vv.not_after = t(9000);
        sign(&vv, f.issuer.signer())
    };
    out.push(ver(
        "voucher-not-yet-valid-beyond-skew",
        MessageType::Voucher,
        &early,
        "not-yet-valid",
        7200 - 301,
    ));
    // §7.2: a voucher's issuer key is checked at the voucher's `not_before` (when it was
    // issued), by every party; the voucher's own window at `now`.
    out.push(ver(
        "voucher-after-its-key-window-is-expired-not-untrusted",
        MessageType::Voucher,
        &f.voucher,
        "expired",
        2 * 365 * 86_400 + 301,
    ));
    out.push(ver(
        "voucher-issued-at-the-edge-of-its-key-with-skew",
        MessageType::Voucher,
        &{
            let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
            v.not_before = Timestamp(T0 - 86_400 - types::CLOCK_SKEW_SECS);
            sign(&v, f.issuer.signer())
        },
        "valid",
        NOW,
    ));
    out.push(ver(
        "voucher-issued-before-its-key",
        MessageType::Voucher,
        &issued_before_key(f),
        "issuer-key-not-valid",
        NOW,
    ));
    out.push(ver(
        "merchant-certificate-expired",
        MessageType::MerchantCertificate,
        &f.cert_a,
        "expired",
        365 * 86_400 + 301,
    ));
    let weak_holder = {
        // The identity point (small order) as a holder key: any signature "verifies" under it
        // with plain verification, which is why strict verification refuses it.
        let mut vv = vv;
        let mut id = [0u8; 32];
        id[0] = 1;
        vv.holder_key = PublicKey(id).into();
        sign(&vv, f.issuer.signer())
    };
    let weak_payment = raw_payment(
        &weak_holder,
        &PaymentTail {
            seq: 1,
            amount: 420,
            cumulative: 420,
            prev: [0; 16],
            merchant: MERCHANT_A.0,
            nonce: NONCE,
            created_at: t(3700).0.to_le_bytes(),
        },
        &f.holder,
    );
    out.push(ver(
        "payment-weak-holder-key",
        MessageType::Payment,
        &weak_payment,
        "weak-key",
        NOW,
    ));
    // §7.1: a holder key that names no point, and one that names a point of large order by a
    // non-canonical encoding (y ≥ p), are `weak-key` before any signature is checked.
    let (off_curve, non_canonical) = odd_keys();
    for (name, key) in [
        ("payment-holder-key-not-a-point", off_curve),
        ("payment-holder-key-non-canonical", non_canonical),
    ] {
        let mut vv = vv;
        vv.holder_key = PublicKey(key).into();
        let voucher = sign(&vv, f.issuer.signer());
        let p = raw_payment(&voucher, &tail(1, 420, NONCE), &f.holder);
        out.push(ver(name, MessageType::Payment, &p, "weak-key", NOW));
    }
    let request = f.request(false, 420, eur(), NONCE, Some("table 4"));
    out.push(ver(
        "payment-request-valid",
        MessageType::PaymentRequest,
        &request,
        "valid",
        NOW,
    ));
    let mut req_bad = request.clone();
    let last = req_bad.len() - 1;
    req_bad[last] ^= 0x80;
    out.push(ver(
        "payment-request-bad-signature",
        MessageType::PaymentRequest,
        &req_bad,
        "bad-signature",
        NOW,
    ));
    let r1 = receipt(&p1, MERCHANT_A, &f.merchant_a, t(NOW));
    out.push(ver(
        "receipt-valid",
        MessageType::Receipt,
        &r1,
        "valid",
        NOW,
    ));
    let r_wrong = receipt(&p1, MERCHANT_A, &f.merchant_b, t(NOW));
    out.push(ver(
        "receipt-signed-by-wrong-merchant",
        MessageType::Receipt,
        &r_wrong,
        "bad-signature",
        NOW,
    ));
    let rl = f
        .issuer
        .revocation_list(7, t(100), &[VoucherId([0x77; 16])], &[])
        .unwrap();
    out.push(ver(
        "revocation-list-valid",
        MessageType::RevocationList,
        &rl,
        "valid",
        NOW,
    ));
    let rl_forged = Issuer::new(SigningKey::from_seed(&[5; 32]))
        .revocation_list(8, t(100), &[], &[])
        .unwrap();
    out.push(ver(
        "revocation-list-unknown-issuer-key",
        MessageType::RevocationList,
        &rl_forged,
        "unknown-issuer-key",
        NOW,
    ));
    out.extend(ed25519_edges(f));
    out
}

/// SPEC §7.1 strictness, for each key that signs: the issuer's (a voucher), the holder's (a
/// payment) and a merchant's (a receipt, a payment request). `s + L`, `s` with the top bit
/// set, a small-order `R` and a non-canonical `R` each satisfy the point equation in some
/// form, and each is refused (`bad-signature`); a mixed-order (torsion) key is not weak, and
/// a signature under it verifies exactly when the cofactorless equation holds. A cofactored or
/// libsodium-style verifier fails some of these (tests/tests/strictness.rs shows which).
fn ed25519_edges(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let ver = |name: String, ty: MessageType, b: &[u8], e: &str| {
        with(
            v(&name, ty, b, e),
            json!({ "context": "verify", "now": t(NOW).0 }),
        )
    };
    let edges = [
        (Edge::SPlusL, "s-plus-l"),
        (Edge::SHighBit, "s-high-bit"),
        (Edge::SmallOrderR, "small-order-r"),
        (Edge::NonCanonicalR, "non-canonical-r"),
    ];
    for (edge, tag) in edges {
        let issuer = EdgeSigner::new([1; 32], false, edge);
        let holder = EdgeSigner::new([2; 32], false, edge);
        let merchant = EdgeSigner::new([3; 32], false, edge);
        let voucher = sign(
            &voucher_value(f.holder.public_key(), f.issuer.key_id()),
            &issuer,
        );
        out.push(ver(
            format!("ed25519-{tag}-issuer-voucher"),
            MessageType::Voucher,
            &voucher,
            "bad-signature",
        ));
        let payment = raw_payment(&f.voucher, &tail(1, 420, [0x61; 16]), &holder);
        out.push(ver(
            format!("ed25519-{tag}-holder-payment"),
            MessageType::Payment,
            &payment,
            "bad-signature",
        ));
        let p1 = raw_payment(&f.voucher, &tail(1, 420, NONCE), &f.holder);
        out.push(ver(
            format!("ed25519-{tag}-merchant-receipt"),
            MessageType::Receipt,
            &receipt(&p1, MERCHANT_A, &merchant, t(NOW)),
            "bad-signature",
        ));
    }
    // A holder key with a torsion component, in a voucher the issuer signed: the payment
    // under it verifies when k·T = 0 (k ≡ 0 mod 8) and not otherwise.
    let (ok, bad) = torsion_payments(f);
    out.push(ver(
        "ed25519-torsion-holder-key-equation-holds".into(),
        MessageType::Payment,
        &ok,
        "valid",
    ));
    out.push(ver(
        "ed25519-torsion-holder-key-equation-fails".into(),
        MessageType::Payment,
        &bad,
        "bad-signature",
    ));
    // A merchant key with a torsion component, in a certificate the issuer signed.
    let torsion = EdgeSigner::new([3; 32], true, Edge::None);
    let cert = sign(
        &MerchantCertificate {
            merchant_id: MerchantId(*b"MERCH-T8"),
            issuer_key_id: f.issuer.key_id(),
            merchant_key: torsion.public_key(),
            display_name: "Torsion Shop",
            not_before: t(0),
            not_after: t(365 * 86_400),
        },
        f.issuer.signer(),
    );
    let certificate = decode_signed::<MerchantCertificate<'_>>(&cert).unwrap();
    let mut found = [None, None];
    for amount in 1..=200u64 {
        let request = sign(
            &PaymentRequest {
                certificate: certificate.clone(),
                amount: Amount(amount),
                currency: eur(),
                nonce: Nonce(NONCE),
                created_at: t(3600),
                reference: None,
            },
            &torsion,
        );
        let r = decode_signed::<PaymentRequest<'_>>(&request).unwrap();
        let i = usize::from(r.verify(&r.certificate.merchant_key).is_err());
        found[i].get_or_insert(request);
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    let [Some(holds), Some(fails)] = found else {
        panic!("no request of each kind")
    };
    out.push(ver(
        "ed25519-torsion-merchant-key-equation-holds".into(),
        MessageType::PaymentRequest,
        &holds,
        "valid",
    ));
    out.push(ver(
        "ed25519-torsion-merchant-key-equation-fails".into(),
        MessageType::PaymentRequest,
        &fails,
        "bad-signature",
    ));
    out
}

/// Two 32-byte strings a decoder must refuse as public keys: the first `y` (from 2) that is
/// on no point, and `p + y` for the first `y` whose point has large order.
fn odd_keys() -> ([u8; 32], [u8; 32]) {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let enc = |y: u8| {
        let mut b = [0u8; 32];
        b[0] = y;
        b
    };
    let off = (2u8..=255)
        .map(enc)
        .find(|b| CompressedEdwardsY(*b).decompress().is_none())
        .unwrap();
    let y = (2u8..=18)
        .find(|y| {
            CompressedEdwardsY(enc(*y))
                .decompress()
                .is_some_and(|p| !p.is_small_order())
        })
        .unwrap();
    // p + y, little-endian: p = 2^255 - 19.
    let mut b = [0xff; 32];
    b[31] = 0x7f;
    b[0] = 0xed + y;
    assert!(
        CompressedEdwardsY(b).decompress().is_some(),
        "p + y names the point y"
    );
    (off, b)
}

/// A payment tail drawn on the fixture voucher, to merchant A.
fn tail(seq: u32, amount: u64, nonce: [u8; 16]) -> PaymentTail {
    tail_to_a(seq, amount, amount, [0; 16], nonce)
}

/// The voucher for a holder key with a torsion component (issuer-signed), and two payments
/// on it to merchant A with the fixture nonce: one whose signature satisfies the cofactorless
/// equation (k ≡ 0 mod 8), one whose does not. They differ in amount only.
pub fn torsion_payments(f: &Fixture) -> (Vec<u8>, Vec<u8>) {
    let holder = EdgeSigner::new([2; 32], true, Edge::None);
    let mut v = voucher_value(holder.public_key(), f.issuer.key_id());
    v.id = VoucherId([0x78; 16]);
    let voucher = sign(&v, f.issuer.signer());
    let mut found = [None, None];
    for amount in 400..600u64 {
        let p = raw_payment(&voucher, &tail(1, amount, NONCE), &holder);
        let d = decode_signed::<Payment<'_>>(&p).unwrap();
        let i = usize::from(d.verify_holder(&d.voucher.holder_key).is_err());
        found[i].get_or_insert(p);
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    match found {
        [Some(ok), Some(bad)] => (ok, bad),
        _ => panic!("no payment of each kind"),
    }
}

/// A voucher whose `not_before` lies before its issuer key's window (plus the skew), valid
/// at `NOW` by its own window.
pub(super) fn issued_before_key(f: &Fixture) -> Vec<u8> {
    let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
    v.not_before = Timestamp(T0 - 86_400 - types::CLOCK_SKEW_SECS - 1);
    sign(&v, f.issuer.signer())
}
