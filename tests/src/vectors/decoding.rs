//! Decoding: every message valid and broken (`messages.json`).

use super::*;

mod bounds;
use bounds::{size_bounds, sync_reports};

/// Valid messages of every type, and the decode failures of each received message.
pub(super) fn messages(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let eur = eur();
    let preauth = {
        let w: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &f.holder).unwrap();
        w.preauth_request(
            b"card:4111-xxxx-1111",
            Amount(5000),
            eur,
            Nonce([0x22; 16]),
            t(60),
        )
        .unwrap()
        .to_vec()
    };
    let request = f.request(false, 420, eur, NONCE, Some("table 4"));
    let request_plain = f.request(true, 1200, eur, [0x12; 16], None);
    let p1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    let p2 = payment(
        f,
        &f.voucher,
        2,
        1200,
        1620,
        Some(&p1),
        MERCHANT_B,
        [0x12; 16],
    );
    let p1b = payment(f, &f.voucher, 1, 999, 999, None, MERCHANT_B, [0x13; 16]);
    let r1 = receipt(&p1, MERCHANT_A, &f.merchant_a, t(NOW));
    let rl = f
        .issuer
        .revocation_list(
            7,
            t(100),
            &[VoucherId([0x77; 16]), VoucherId([0x01; 16])],
            &[MerchantId(*b"BADSHOP1")],
        )
        .unwrap();
    let b = batch(&[&p1, &r1]);
    let mut ledger = Settlement::new(f.trust.clone(), settlement::DEFAULT_GRACE_SECS);
    ledger.register_merchant(&f.cert_a).unwrap();
    ledger.register_merchant(&f.cert_b).unwrap();
    let report = ledger
        .ingest(&b, t(NOW))
        .unwrap()
        .report(&f.issuer, t(NOW))
        .unwrap();
    let (lo, hi) = if pid(&p1) < pid(&p1b) {
        (&p1, &p1b)
    } else {
        (&p1b, &p1)
    };
    let proof = {
        let first = decode_signed::<Payment<'_>>(lo).unwrap();
        let second = decode_signed::<Payment<'_>>(hi).unwrap();
        let mut buf = vec![0u8; 1024];
        let n = codec::encode_unsigned(
            &FraudProof {
                kind: FraudKind::SameSequence,
                first,
                second,
            },
            &mut buf,
        )
        .unwrap();
        buf.truncate(n);
        buf
    };
    let valid: Vec<(&str, MessageType, Vec<u8>)> = vec![
        (
            "preauth-request",
            MessageType::PreAuthRequest,
            preauth.clone(),
        ),
        ("voucher", MessageType::Voucher, f.voucher.clone()),
        (
            "merchant-certificate",
            MessageType::MerchantCertificate,
            f.cert_a.clone(),
        ),
        (
            "payment-request-with-reference",
            MessageType::PaymentRequest,
            request.clone(),
        ),
        (
            "payment-request-without-reference",
            MessageType::PaymentRequest,
            request_plain,
        ),
        ("payment-seq-1", MessageType::Payment, p1.clone()),
        ("payment-seq-2", MessageType::Payment, p2.clone()),
        ("receipt", MessageType::Receipt, r1.clone()),
        ("revocation-list", MessageType::RevocationList, rl.clone()),
        ("sync-batch", MessageType::SyncBatch, b.clone()),
        ("sync-report", MessageType::SyncReport, report.clone()),
        (
            "fraud-proof-same-sequence",
            MessageType::FraudProof,
            proof.clone(),
        ),
    ];
    for (name, ty, bytes) in &valid {
        out.push(with(
            v(name, *ty, bytes, "valid"),
            json!({ "context": "decode", "size": bytes.len(), "fields": describe(bytes) }),
        ));
    }
    out.extend(sync_reports(f, &proof));
    // The generic classes, for each message a device receives.
    for (name, ty, bytes) in &valid {
        let dec = |n: &str, b: &[u8], e: &str| {
            with(
                v(&format!("{name}-{n}"), *ty, b, e),
                json!({ "context": "decode" }),
            )
        };
        out.push(dec("truncated", &bytes[..bytes.len() - 1], "truncated"));
        let mut trailing = bytes.clone();
        trailing.push(0);
        // The size bound is checked first (SPEC §3.4): a receipt is always exactly its maximum
        // size, so one byte more is over-size.
        let trailing_expect = if *ty == MessageType::Receipt {
            "over-size"
        } else {
            "trailing-bytes"
        };
        out.push(dec("trailing-byte", &trailing, trailing_expect));
        let mut version = bytes.clone();
        version[0] = 2;
        out.push(dec("wrong-version", &version, "unknown-version"));
        let mut unknown = bytes.clone();
        unknown[1] = 0x7f;
        out.push(dec("unknown-type", &unknown, "wrong-type"));
        if matches!(
            ty,
            MessageType::Payment
                | MessageType::Voucher
                | MessageType::Receipt
                | MessageType::PaymentRequest
        ) {
            let mut other = bytes.clone();
            other[1] = if *ty == MessageType::Receipt {
                MessageType::Payment as u8
            } else {
                MessageType::Receipt as u8
            };
            out.push(dec("other-type", &other, "wrong-type"));
        }
    }
    // Over-size: one byte past each hard maximum.
    for (name, ty, max) in [
        (
            "voucher",
            MessageType::Voucher,
            <Voucher as codec::Message<'_>>::max_len_of(MessageType::Voucher),
        ),
        (
            "voucher-p256",
            MessageType::VoucherP256,
            <Voucher as codec::Message<'_>>::max_len_of(MessageType::VoucherP256),
        ),
        (
            "payment",
            MessageType::Payment,
            <Payment<'_> as codec::Message<'_>>::MAX_LEN,
        ),
        (
            "payment-request",
            MessageType::PaymentRequest,
            <PaymentRequest<'_> as codec::Message<'_>>::MAX_LEN,
        ),
        (
            "receipt",
            MessageType::Receipt,
            <Receipt as codec::Message<'_>>::MAX_LEN,
        ),
        (
            "merchant-certificate",
            MessageType::MerchantCertificate,
            <MerchantCertificate<'_> as codec::Message<'_>>::MAX_LEN,
        ),
    ] {
        let mut big = vec![0u8; max + 1];
        big[0] = 1;
        big[1] = ty as u8;
        out.push(with(
            v(&format!("{name}-over-size"), ty, &big, "over-size"),
            json!({ "context": "decode" }),
        ));
    }
    // Non-canonical varints, correctly signed so only the encoding is wrong.
    let tail = |amount: Vec<u8>| {
        let mut body = f.voucher.clone();
        body.extend(fields(&1u32));
        body.extend(amount);
        body.extend(fields(&420u64));
        body.extend([0u8; 16]);
        body.extend(MERCHANT_A.0);
        body.extend(NONCE);
        body.extend(t(3700).0.to_le_bytes());
        codec_raw_payment(f, &body)
    };
    out.push(with(
        v(
            "payment-non-canonical-amount",
            MessageType::Payment,
            &tail(overlong_varint(420, 3)),
            "non-canonical",
        ),
        json!({ "context": "decode" }),
    ));
    out.push(with(
        v(
            "payment-non-canonical-amount-zero-padding",
            MessageType::Payment,
            &tail(overlong_varint(420, 10)),
            "non-canonical",
        ),
        json!({ "context": "decode" }),
    ));
    out.push(with(
        v(
            "payment-varint-too-long",
            MessageType::Payment,
            &tail(vec![0x80; 11].into_iter().chain([0]).collect()),
            "non-canonical",
        ),
        json!({ "context": "decode" }),
    ));
    {
        let vv = voucher_value(f.holder.public_key(), f.issuer.key_id());
        let mut body = Vec::new();
        body.extend(vv.id.0);
        body.extend(vv.issuer_key_id.0);
        body.extend(vv.holder_key.as_bytes());
        body.extend(*b"EUR");
        body.extend(overlong_varint(5000, 4));
        body.extend(fields(&(
            vv.not_before,
            vv.not_after,
            vv.policy.max_single.0,
            vv.policy.max_payments,
        )));
        let bytes = raw_signed(
            MessageType::Voucher,
            VOUCHER_DOMAIN,
            &body,
            f.issuer.signer(),
        );
        out.push(with(
            v(
                "voucher-non-canonical-limit",
                MessageType::Voucher,
                &bytes,
                "non-canonical",
            ),
            json!({ "context": "decode" }),
        ));
    }
    // Out-of-range values, correctly signed.
    let bad_voucher = |edit: &dyn Fn(&mut Voucher)| {
        let mut vv = voucher_value(f.holder.public_key(), f.issuer.key_id());
        edit(&mut vv);
        let body = voucher_body(&vv);
        raw_signed(
            MessageType::Voucher,
            VOUCHER_DOMAIN,
            &body,
            f.issuer.signer(),
        )
    };
    for (name, bytes) in [
        ("voucher-zero-limit", bad_voucher(&|v| v.limit = Amount(0))),
        (
            "voucher-lowercase-currency",
            bad_voucher(&|v| v.currency = unsafe_currency()),
        ),
        (
            "voucher-window-reversed",
            bad_voucher(&|v| v.not_before = v.not_after),
        ),
        (
            "voucher-max-single-over-limit",
            bad_voucher(&|v| v.policy.max_single = Amount(5001)),
        ),
        (
            "voucher-zero-max-payments",
            bad_voucher(&|v| v.policy.max_payments = 0),
        ),
    ] {
        out.push(with(
            v(name, MessageType::Voucher, &bytes, "out-of-range"),
            json!({ "context": "decode" }),
        ));
    }
    // §3.3/§3.4 groups: a group is read whole, then compared with its canonical encoding. A
    // non-shortest varint followed by a cut inside the same group is `truncated`; after a
    // complete group (here, in the signature) it is `non-canonical`.
    {
        let mut group = fields(&1u32);
        group.extend(overlong_varint(420, 3));
        group.extend(fields(&420u64));
        group.extend([0u8; 16]);
        group.extend(MERCHANT_A.0);
        group.extend(NONCE);
        group.extend(t(3700).0.to_le_bytes());
        let mut cut_in_group = vec![1u8, MessageType::Payment as u8];
        cut_in_group.extend(&f.voucher);
        cut_in_group.extend(&group[..group.len() - 10]);
        let mut cut_in_signature = vec![1u8, MessageType::Payment as u8];
        cut_in_signature.extend(&f.voucher);
        cut_in_signature.extend(&group);
        cut_in_signature.extend([0x55; 10]);
        for (name, bytes, e) in [
            (
                "payment-non-canonical-then-cut-in-the-same-group",
                cut_in_group,
                "truncated",
            ),
            (
                "payment-non-canonical-group-then-cut-in-the-signature",
                cut_in_signature,
                "non-canonical",
            ),
        ] {
            out.push(with(
                v(name, MessageType::Payment, &bytes, e),
                json!({ "context": "decode" }),
            ));
        }
        // An embedded message is decoded whole (its fields, its value rules, its signature's
        // length) where it stands, before the outer message's next field: a voucher with
        // `max_payments = 0` inside a payment whose `seq` is over-long is `out-of-range`.
        let mut body = bad_voucher(&|v| v.policy.max_payments = 0);
        body.extend(overlong_varint(1, 2));
        body.extend(fields(&420u64));
        body.extend(fields(&420u64));
        body.extend([0u8; 16]);
        body.extend(MERCHANT_A.0);
        body.extend(NONCE);
        body.extend(t(3700).0.to_le_bytes());
        out.push(with(
            v(
                "payment-embedded-voucher-rules-before-the-outer-fields",
                MessageType::Payment,
                &codec_raw_payment(f, &body),
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
    }
    let bad_payment = |seq: u32, amount: u64, cumulative: u64, prev: [u8; 16]| {
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq,
                amount,
                cumulative,
                prev,
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    for (name, bytes) in [
        ("payment-seq-zero", bad_payment(0, 420, 420, [0; 16])),
        ("payment-zero-amount", bad_payment(1, 0, 0, [0; 16])),
        ("payment-seq-1-with-link", bad_payment(1, 420, 420, [9; 16])),
        (
            "payment-seq-1-cumulative-not-amount",
            bad_payment(1, 420, 500, [0; 16]),
        ),
        (
            "payment-seq-2-without-link",
            bad_payment(2, 420, 840, [0; 16]),
        ),
        (
            "payment-cumulative-below-amount",
            bad_payment(2, 420, 400, [9; 16]),
        ),
    ] {
        out.push(with(
            v(name, MessageType::Payment, &bytes, "out-of-range"),
            json!({ "context": "decode" }),
        ));
    }
    {
        let cert = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
        let mut c = *cert.value();
        c.display_name = "Evil\u{1b}[2JShop";
        let bytes = raw_signed(
            MessageType::MerchantCertificate,
            <MerchantCertificate<'_> as SignedMessage<'_>>::DOMAIN,
            &fields(&c),
            f.issuer.signer(),
        );
        out.push(with(
            v(
                "merchant-certificate-control-character",
                MessageType::MerchantCertificate,
                &bytes,
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
        let mut body = Vec::new();
        body.extend(fields(&(c.merchant_id, c.issuer_key_id, c.merchant_key)));
        body.extend([4, 0xff, 0xfe, 0x41, 0x42]);
        body.extend(fields(&(c.not_before, c.not_after)));
        let bytes = raw_signed(
            MessageType::MerchantCertificate,
            <MerchantCertificate<'_> as SignedMessage<'_>>::DOMAIN,
            &body,
            f.issuer.signer(),
        );
        out.push(with(
            v(
                "merchant-certificate-invalid-utf8",
                MessageType::MerchantCertificate,
                &bytes,
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
    }
    // §3.4: two checks failing at once; the earlier one is reported.
    {
        let mut big = r1.clone();
        big[0] = 2;
        big.push(0);
        let mut noncanon_trailing = tail(overlong_varint(420, 3));
        noncanon_trailing.push(0);
        for (name, ty, bytes, e) in [
            (
                "receipt-two-over-size-before-unknown-version",
                MessageType::Receipt,
                big,
                "over-size",
            ),
            (
                "receipt-two-truncated-before-unknown-version",
                MessageType::Receipt,
                vec![2u8],
                "truncated",
            ),
            (
                "payment-two-non-canonical-before-trailing-bytes",
                MessageType::Payment,
                noncanon_trailing,
                "non-canonical",
            ),
        ] {
            out.push(with(v(name, ty, &bytes, e), json!({ "context": "decode" })));
        }
    }
    out.extend(uncovered_paths(f, &p1, &p2));
    {
        let unsorted: Vec<u8> = [[0x77u8; 16], [0x01; 16]].concat();
        let body = fields(&(
            f.issuer.key_id(),
            8u64,
            t(100),
            unsorted.as_slice(),
            &[] as &[u8],
        ));
        let bytes = raw_signed(
            MessageType::RevocationList,
            <RevocationList<'_> as SignedMessage<'_>>::DOMAIN,
            &body,
            f.issuer.signer(),
        );
        out.push(with(
            v(
                "revocation-list-unsorted",
                MessageType::RevocationList,
                &bytes,
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
    }
    out.extend(size_bounds());
    {
        // Two payments at the same sequence in the wrong order: not a canonical proof.
        let first = decode_signed::<Payment<'_>>(hi).unwrap();
        let second = decode_signed::<Payment<'_>>(lo).unwrap();
        let mut bytes = vec![1u8, MessageType::FraudProof as u8, 0];
        bytes.extend(first.bytes());
        bytes.extend(second.bytes());
        out.push(with(
            v(
                "fraud-proof-unordered",
                MessageType::FraudProof,
                &bytes,
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
        let mut honest = vec![1u8, MessageType::FraudProof as u8, 1];
        honest.extend(&p1);
        honest.extend(&p2);
        out.push(with(
            v(
                "fraud-proof-of-an-honest-chain",
                MessageType::FraudProof,
                &honest,
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
        // §5.10: ids compare byte-wise from the first byte (lexicographically), not as
        // integers read from the other end. Two same-sequence payments whose ids order one way
        // by their first differing byte and the other way by their last: the proof in
        // byte-wise order decodes, the other does not.
        let bytewise_first = |a: &PaymentId, b: &PaymentId| a.0 < b.0;
        let from_the_end = |a: &PaymentId, b: &PaymentId| a.0.iter().rev().lt(b.0.iter().rev());
        let (x, y) = (0u8..=255)
            .map(|n| payment(f, &f.voucher, 1, 400, 400, None, MERCHANT_B, [n; 16]))
            .find_map(|q| {
                let (a, b) = (pid(&p1), pid(&q));
                (bytewise_first(&a, &b) != from_the_end(&a, &b)).then(|| {
                    if bytewise_first(&a, &b) {
                        (p1.clone(), q)
                    } else {
                        (q, p1.clone())
                    }
                })
            })
            .unwrap();
        for (name, first, second, expect) in [
            ("fraud-proof-ids-compare-bytewise", &x, &y, "valid"),
            (
                "fraud-proof-ids-compared-from-the-end",
                &y,
                &x,
                "out-of-range",
            ),
        ] {
            let mut bytes = vec![1u8, MessageType::FraudProof as u8, 0];
            bytes.extend(first);
            bytes.extend(second);
            let ctx = if expect == "valid" {
                json!({ "context": "decode", "size": bytes.len(), "fields": describe(&bytes) })
            } else {
                json!({ "context": "decode" })
            };
            out.push(with(v(name, MessageType::FraudProof, &bytes, expect), ctx));
        }
    }
    out
}

/// A currency value holding lower-case letters, which a decoder must refuse. Built through
/// serde, since the library's constructor refuses it.
fn unsafe_currency() -> Currency {
    let bytes = fields(b"eur");
    let (c, _) = codec::take_fields::<Currency>(&bytes).unwrap();
    c
}

pub(super) fn codec_raw_payment(f: &Fixture, body: &[u8]) -> Vec<u8> {
    raw_signed(
        MessageType::Payment,
        <Payment<'_> as SignedMessage<'_>>::DOMAIN,
        body,
        &f.holder,
    )
}
