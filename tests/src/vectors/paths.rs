//! Decoding paths no other vector reaches (SPEC §3.4, §4, §5): a C1 control character, an
//! option tag of 2, a u32 overflow, an empty instrument id, malformed revocation lists, an
//! empty batch record, a FraudProof kind of 3, and the two other kinds of proof, valid.

use super::*;

/// The vectors; `p1` and `p2` are the fixture's first two payments (seq 1 and 2, linked).
pub(super) fn uncovered_paths(f: &Fixture, p1: &[u8], p2: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let out_of_range =
        |out: &mut Vec<Value>, name: &str, ty: MessageType, bytes: &[u8], e: &str| {
            out.push(with(v(name, ty, bytes, e), json!({ "context": "decode" })));
        };
    // U+0085 (NEL) is a control character (Unicode category Cc) outside ASCII.
    let cert = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
    let mut c = *cert.value();
    c.display_name = "Caf\u{85}Shop";
    let nel = raw_signed(
        MessageType::MerchantCertificate,
        <MerchantCertificate<'_> as SignedMessage<'_>>::DOMAIN,
        &fields(&c),
        f.issuer.signer(),
    );
    out_of_range(
        &mut out,
        "merchant-certificate-c1-control-character",
        MessageType::MerchantCertificate,
        &nel,
        "out-of-range",
    );
    // An option tag of 2 (reference: 0 = none, 1 = some).
    let request = f.request(false, 420, eur(), NONCE, None);
    let mut tag2 = request[..request.len() - 65].to_vec();
    tag2.push(2);
    let tag2 = raw_signed(
        MessageType::PaymentRequest,
        <PaymentRequest<'_> as SignedMessage<'_>>::DOMAIN,
        &tag2[2..],
        &f.merchant_a,
    );
    out_of_range(
        &mut out,
        "payment-request-option-tag-2",
        MessageType::PaymentRequest,
        &tag2,
        "out-of-range",
    );
    // seq = 2^32: a varint overflowing its u32.
    let mut body = f.voucher.clone();
    body.extend(fields(&(1u64 << 32)));
    body.extend(fields(&420u64));
    body.extend(fields(&420u64));
    body.extend([0u8; 16]);
    body.extend(MERCHANT_A.0);
    body.extend(NONCE);
    body.extend(t(3700).0.to_le_bytes());
    out_of_range(
        &mut out,
        "payment-seq-overflows-u32",
        MessageType::Payment,
        &codec_raw_payment(f, &body),
        "non-canonical",
    );
    // An empty instrument id.
    let preauth = |instrument: &[u8]| {
        raw_signed(
            MessageType::PreAuthRequest,
            <PreAuthRequest<'_> as SignedMessage<'_>>::DOMAIN,
            &fields(&(
                instrument,
                420u64,
                *b"EUR",
                f.holder.public_key().0,
                [0x22u8; 16],
                t(60),
            )),
            &f.holder,
        )
    };
    out_of_range(
        &mut out,
        "preauth-request-empty-instrument-id",
        MessageType::PreAuthRequest,
        &preauth(b""),
        "out-of-range",
    );
    // Revocation lists: a voucher list not a multiple of 16 bytes; merchants unsorted.
    let rl = |vouchers: &[u8], merchants: &[u8]| {
        raw_signed(
            MessageType::RevocationList,
            <RevocationList<'_> as SignedMessage<'_>>::DOMAIN,
            &fields(&(f.issuer.key_id(), 9u64, t(100), vouchers, merchants)),
            f.issuer.signer(),
        )
    };
    out_of_range(
        &mut out,
        "revocation-list-voucher-ids-not-whole",
        MessageType::RevocationList,
        &rl(&[0x11; 17], &[]),
        "out-of-range",
    );
    out_of_range(
        &mut out,
        "revocation-list-merchants-unsorted",
        MessageType::RevocationList,
        &rl(&[], &[[0x77u8; 8], [0x01; 8]].concat()),
        "out-of-range",
    );
    // A batch holding an empty record.
    let mut empty = vec![1u8, MessageType::SyncBatch as u8];
    empty.extend(fields(&1u64));
    empty.extend(fields(&0u64));
    out_of_range(
        &mut out,
        "sync-batch-empty-record",
        MessageType::SyncBatch,
        &empty,
        "out-of-range",
    );
    // A FraudProof kind of 3.
    let mut kind3 = vec![1u8, MessageType::FraudProof as u8, 3];
    kind3.extend(p1);
    kind3.extend(p2);
    out_of_range(
        &mut out,
        "fraud-proof-kind-3",
        MessageType::FraudProof,
        &kind3,
        "out-of-range",
    );
    // The two other kinds of proof, valid.
    let broken = raw_payment(
        &f.voucher,
        &tail_to_a(2, 1200, 1620, [0x66; 16], NONCE),
        &f.holder,
    );
    let mismatch = raw_payment(
        &f.voucher,
        &tail_to_a(2, 1200, 1700, pid(p1).link().0, NONCE),
        &f.holder,
    );
    for (name, kind, second) in [
        ("fraud-proof-broken-link", 1u8, &broken),
        ("fraud-proof-cumulative-mismatch", 2, &mismatch),
    ] {
        let mut bytes = vec![1u8, MessageType::FraudProof as u8, kind];
        bytes.extend(p1);
        bytes.extend(second);
        out.push(with(
            v(name, MessageType::FraudProof, &bytes, "valid"),
            json!({ "context": "decode", "size": bytes.len(), "fields": describe(&bytes) }),
        ));
    }
    out
}
