//! ECDSA P-256 holder keys (SPEC §7.1.1): valid vouchers, requests, payments and proofs, and
//! every class of refusal, added to `messages.json`, `verify.json`, `accept.json` and
//! `settlement.json`.

use super::*;

/// The order n of P-256's group, big-endian.
pub const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The field prime p of P-256, big-endian.
const P256_P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

/// `n − s` for `0 < s < n`, big-endian: the other S of an ECDSA signature.
pub fn n_minus(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_N[i]) - i16::from(s[i]) - borrow;
        out[i] = d.rem_euclid(256) as u8;
        borrow = i16::from(d < 0);
    }
    out
}

/// The same payment with its signature's S replaced by n − S: a valid ECDSA signature that
/// plain ECDSA verification accepts, and that §7.1.1 refuses (high S).
pub fn high_s(payment: &[u8]) -> Vec<u8> {
    let mut p = payment.to_vec();
    let at = p.len() - 32;
    let s: [u8; 32] = p[at..].try_into().unwrap();
    p[at..].copy_from_slice(&n_minus(&s));
    p
}

/// A well-formed payment of `voucher`, signed by the fixture's P-256 holder.
#[allow(clippy::too_many_arguments)]
pub fn payment_p256(
    f: &Fixture,
    voucher: &[u8],
    seq: u32,
    amount: u64,
    cumulative: u64,
    prev: Option<&[u8]>,
    merchant: MerchantId,
    nonce: [u8; 16],
) -> Vec<u8> {
    raw_payment_p256(
        voucher,
        &tail_at_3700(seq, amount, cumulative, prev, merchant, nonce),
        &f.holder_p256,
    )
}

/// The fixture's P-256 voucher bound to another 33-byte key.
fn voucher_with_key(f: &Fixture, key: [u8; 33]) -> Vec<u8> {
    let mut v = voucher_value(P256Key(key), f.issuer.key_id());
    v.id = VOUCHER_P256_ID;
    raw_signed(
        MessageType::VoucherP256,
        VOUCHER_DOMAIN,
        &voucher_body(&v),
        f.issuer.signer(),
    )
}

/// The first x (counting up from 0) that is no point's x-coordinate on P-256.
fn off_curve_x() -> [u8; 33] {
    (0u8..=255)
        .map(|x| {
            let mut k = [0u8; 33];
            k[0] = 0x02;
            k[32] = x;
            k
        })
        .find(|k| crypto::p256_key_from_sec1(k).is_none())
        .unwrap()
}

/// The payment with its signature replaced by `sig`.
fn with_signature(payment: &[u8], sig: &[u8; 64]) -> Vec<u8> {
    let mut p = payment.to_vec();
    let at = p.len() - 64;
    p[at..].copy_from_slice(sig);
    p
}

/// DER `ECDSA-Sig-Value` of `r ‖ s` (each a positive INTEGER, minimal).
pub fn der_of(sig: &[u8; 64]) -> Vec<u8> {
    let int = |b: &[u8]| {
        let mut v: Vec<u8> = b.iter().copied().skip_while(|&x| x == 0).collect();
        if v.first().is_none_or(|&x| x & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let body = [int(&sig[..32]), int(&sig[32..])].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// `messages.json`: P-256 messages decoded.
pub(super) fn messages(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let preauth = {
        let w: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &f.holder_p256).unwrap();
        w.preauth_request(
            b"card:4111-xxxx-1111",
            Amount(5000),
            eur(),
            Nonce([0x22; 16]),
            t(60),
        )
        .unwrap()
        .to_vec()
    };
    let p1 = payment_p256(f, &f.voucher_p256, 1, 420, 420, None, MERCHANT_A, NONCE);
    let p1b = payment_p256(
        f,
        &f.voucher_p256,
        1,
        999,
        999,
        None,
        MERCHANT_B,
        [0x13; 16],
    );
    let proof = {
        let (a, b) = if pid(&p1).0 < pid(&p1b).0 {
            (&p1, &p1b)
        } else {
            (&p1b, &p1)
        };
        let mut bytes = vec![1u8, MessageType::FraudProof as u8, 0];
        bytes.extend(a);
        bytes.extend(b);
        bytes
    };
    for (name, ty, bytes) in [
        (
            "preauth-request-p256",
            MessageType::PreAuthRequestP256,
            &preauth,
        ),
        ("voucher-p256", MessageType::VoucherP256, &f.voucher_p256),
        ("payment-p256-seq-1", MessageType::Payment, &p1),
        (
            "fraud-proof-p256-same-sequence",
            MessageType::FraudProof,
            &proof,
        ),
    ] {
        out.push(with(
            v(name, ty, bytes, "valid"),
            json!({ "context": "decode", "size": bytes.len(), "fields": describe(bytes) }),
        ));
    }
    let dec = |name: &str, ty: MessageType, b: &[u8], e: &str| {
        with(v(name, ty, b, e), json!({ "context": "decode" }))
    };
    // The key is one byte longer: cut inside it, the voucher is truncated.
    out.push(dec(
        "voucher-p256-cut-in-the-key",
        MessageType::VoucherP256,
        &f.voucher_p256[..2 + 16 + 8 + 20],
        "truncated",
    ));
    // The type byte says how long the key is. An Ed25519 voucher relabelled 0x0C reads the
    // first currency letter into its key, then "UR" and the limit's first byte as currency.
    let mut relabelled = f.voucher.clone();
    relabelled[1] = MessageType::VoucherP256 as u8;
    out.push(dec(
        "voucher-ed25519-relabelled-p256",
        MessageType::VoucherP256,
        &relabelled,
        "out-of-range",
    ));
    // A P-256 voucher relabelled 0x02 reads the key's last byte as the first currency letter.
    let mut relabelled = f.voucher_p256.clone();
    relabelled[1] = MessageType::Voucher as u8;
    out.push(dec(
        "voucher-p256-relabelled-ed25519",
        MessageType::Voucher,
        &relabelled,
        "out-of-range",
    ));
    // A version-1 reader that knows only Ed25519 holders refuses the P-256 types as unknown.
    out.push(dec(
        "voucher-p256-read-as-a-certificate",
        MessageType::MerchantCertificate,
        &f.voucher_p256,
        "wrong-type",
    ));
    // §3.4 step 1: a type byte that is neither voucher type takes the larger maximum, so 159
    // bytes of it are not over-size but the wrong type; 160 bytes are over-size.
    for (n, e) in [(159, "wrong-type"), (160, "over-size")] {
        let mut b = vec![0u8; n];
        b[0] = 1;
        b[1] = 0x7f;
        out.push(dec(
            &format!("voucher-unknown-type-{n}-bytes"),
            MessageType::Voucher,
            &b,
            e,
        ));
    }
    // A DER signature where `r ‖ s` belongs: 70 to 72 bytes, so bytes trail the message.
    let sig: [u8; 64] = p1[p1.len() - 64..].try_into().unwrap();
    let mut der_payment = p1[..p1.len() - 64].to_vec();
    der_payment.extend(der_of(&sig));
    out.push(dec(
        "payment-p256-der-signature",
        MessageType::Payment,
        &der_payment,
        "trailing-bytes",
    ));
    out
}

/// `verify.json`: P-256 payments verified.
pub(super) fn verify(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let ver = |name: &str, ty: MessageType, b: &[u8], e: &str| {
        with(
            v(name, ty, b, e),
            json!({ "context": "verify", "now": t(NOW).0 }),
        )
    };
    let p1 = payment_p256(f, &f.voucher_p256, 1, 420, 420, None, MERCHANT_A, NONCE);
    out.push(ver(
        "voucher-p256-valid",
        MessageType::VoucherP256,
        &f.voucher_p256,
        "valid",
    ));
    out.push(ver(
        "payment-p256-valid",
        MessageType::Payment,
        &p1,
        "valid",
    ));
    out.push(ver(
        "payment-p256-high-s",
        MessageType::Payment,
        &high_s(&p1),
        "bad-signature",
    ));
    let sig: [u8; 64] = p1[p1.len() - 64..].try_into().unwrap();
    let (r, s) = sig.split_at(32);
    let der = der_of(&sig);
    let mut der64 = [0u8; 64];
    der64.copy_from_slice(&der[..64]);
    let sig_of = |r: &[u8], s: &[u8]| -> [u8; 64] { [r, s].concat().try_into().unwrap() };
    for (name, bad) in [
        ("payment-p256-der-cut-to-64-bytes", der64),
        ("payment-p256-r-zero", sig_of(&[0; 32], s)),
        ("payment-p256-s-zero", sig_of(r, &[0; 32])),
        ("payment-p256-r-equals-n", sig_of(&P256_N, s)),
        ("payment-p256-s-equals-n", sig_of(r, &P256_N)),
        ("payment-p256-r-above-n", sig_of(&[0xff; 32], s)),
    ] {
        out.push(ver(
            name,
            MessageType::Payment,
            &with_signature(&p1, &bad),
            "bad-signature",
        ));
    }
    // Keys that name no usable point are `weak-key`, before the signature is looked at.
    let mut identity = [0u8; 33];
    let mut uncompressed_tag = f.holder_p256.public_key().0;
    uncompressed_tag[0] = 0x04;
    identity[0] = 0x00;
    let mut x_is_p = [0u8; 33];
    x_is_p[0] = 0x02;
    x_is_p[1..].copy_from_slice(&P256_P);
    for (name, key) in [
        ("payment-p256-holder-key-off-curve", off_curve_x()),
        ("payment-p256-holder-key-identity", identity),
        ("payment-p256-holder-key-tag-04", uncompressed_tag),
        ("payment-p256-holder-key-x-equals-p", x_is_p),
    ] {
        let voucher = voucher_with_key(f, key);
        let p = payment_p256(f, &voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
        out.push(ver(name, MessageType::Payment, &p, "weak-key"));
    }
    // The key is judged before the signature under it: a bad key with r = 0 is `weak-key`.
    let voucher = voucher_with_key(f, off_curve_x());
    let p = payment_p256(f, &voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    out.push(ver(
        "payment-p256-holder-key-off-curve-and-r-zero",
        MessageType::Payment,
        &with_signature(&p, &sig_of(&[0; 32], s)),
        "weak-key",
    ));
    // The algorithm is the voucher's: an Ed25519 signature under a P-256 voucher, and a P-256
    // signature under an Ed25519 voucher, are both bad signatures.
    let tail = PaymentTail {
        seq: 1,
        amount: 420,
        cumulative: 420,
        prev: [0; 16],
        merchant: MERCHANT_A.0,
        nonce: NONCE,
        created_at: t(3700).0.to_le_bytes(),
    };
    out.push(ver(
        "payment-p256-voucher-ed25519-signature",
        MessageType::Payment,
        &raw_payment(&f.voucher_p256, &tail, &f.holder),
        "bad-signature",
    ));
    out.push(ver(
        "payment-ed25519-voucher-p256-signature",
        MessageType::Payment,
        &raw_payment_p256(&f.voucher, &tail, &f.holder_p256),
        "bad-signature",
    ));
    out
}

/// `accept.json`: the acceptor on P-256 payments.
pub(super) fn accept(f: &Fixture) -> Vec<Value> {
    let acc = |name: &str, p: &[u8], e: &str| {
        with(
            v(name, MessageType::Payment, p, e),
            json!({
                "context": "accept", "now": t(NOW).0,
                "open_request": { "nonce": hx(&NONCE), "amount": 420, "currency": "EUR" },
                "seen": Vec::<String>::new(), "revocation_list": null,
            }),
        )
    };
    let p1 = payment_p256(f, &f.voucher_p256, 1, 420, 420, None, MERCHANT_A, NONCE);
    vec![
        acc("accept-p256-payment", &p1, "valid"),
        acc("accept-p256-high-s", &high_s(&p1), "bad-signature"),
    ]
}

/// `settlement.json`: a P-256 voucher settled, its double spend proved, a high-S copy refused.
pub(super) fn settlement(f: &Fixture) -> Vec<Value> {
    let grace = settlement::DEFAULT_GRACE_SECS;
    let step = |b: Vec<u8>, now: u32, expect: &[&str]| json!({ "batch": hx(&b), "now": t(now).0, "expect": expect });
    let p1 = payment_p256(f, &f.voucher_p256, 1, 420, 420, None, MERCHANT_A, NONCE);
    let r1 = receipt(&p1, MERCHANT_A, &f.merchant_a, t(NOW));
    let p2 = payment_p256(
        f,
        &f.voucher_p256,
        2,
        1200,
        1620,
        Some(&p1),
        MERCHANT_B,
        [0x12; 16],
    );
    let r2 = receipt(&p2, MERCHANT_B, &f.merchant_b, t(NOW));
    // A cloned wallet pays merchant B from sequence 1 again.
    let c1 = payment_p256(
        f,
        &f.voucher_p256,
        1,
        2500,
        2500,
        None,
        MERCHANT_B,
        [0x21; 16],
    );
    let rc1 = receipt(&c1, MERCHANT_B, &f.merchant_b, t(NOW));
    let a = hx(&MERCHANT_A.0);
    let b = hx(&MERCHANT_B.0);
    let vid = hx(&VOUCHER_P256_ID.0);
    // The high-S twin of p1 would have another payment id; it is refused, and changes nothing.
    vec![json!({
        "name": "p256-voucher-settled-double-spend-proved-high-s-refused",
        "message": "SyncBatch", "context": "settlement", "grace_secs": grace,
        "steps": [
            step(batch(&[&p1, &r1, &p2, &r2]), NOW, &["credited", "credited", "credited", "credited"]),
            step(batch(&[&high_s(&p1)]), NOW + 30, &["rejected:bad-signature"]),
            step(batch(&[&c1, &rc1]), NOW + 60, &["conflict", "credited"]),
        ],
        "close_at": t(30 * 86_400 + grace + 1).0,
        "final": { "credits": { &a: 420, &b: 3700 }, "proofs": 1, "vouchers": { &vid: { "credited": 4120, "overspend": 0, "fraud": true, "released": 880 } } },
    })]
}
