//! The vector generator. Every expectation here is declared by hand from SPEC.md (what the
//! vector is built to exercise), never computed by the library, so that running the library
//! over the vectors is a real check.

use crate::fixture::*;
use offpay_protocol::codec::{Message, MessageType, SignedMessage};
use offpay_protocol::msg::sync::ItemsWriter;
use offpay_protocol::msg::*;
use offpay_protocol::*;
use serde_json::{Value, json};

fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

fn v(name: &str, ty: MessageType, bytes: &[u8], expect: &str) -> Value {
    json!({ "name": name, "message": ty.name(), "hex": hx(bytes), "expect": expect })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            b.insert(k.clone(), x.clone());
        }
    }
    base
}

/// The decoded fields of a valid message, as the vectors show them.
pub fn describe(bytes: &[u8]) -> Value {
    let Ok(ty) = MessageType::of(bytes) else {
        return Value::Null;
    };
    match ty {
        MessageType::PreAuthRequest => decode_signed::<PreAuthRequest<'_>>(bytes).map(|m| json!({
            "instrument_id": hx(m.instrument_id), "amount": m.amount.0, "currency": m.currency.as_str(),
            "holder_key": hx(&m.holder_key.0), "client_nonce": hx(&m.client_nonce.0), "created_at": m.created_at.0,
        })).unwrap_or(Value::Null),
        MessageType::Voucher => decode_signed::<Voucher>(bytes).map(|m| voucher_json(&m)).unwrap_or(Value::Null),
        MessageType::MerchantCertificate => decode_signed::<MerchantCertificate<'_>>(bytes).map(|m| cert_json(&m)).unwrap_or(Value::Null),
        MessageType::PaymentRequest => decode_signed::<PaymentRequest<'_>>(bytes).map(|m| json!({
            "certificate": cert_json(&m.certificate), "amount": m.amount.0, "currency": m.currency.as_str(),
            "nonce": hx(&m.nonce.0), "created_at": m.created_at.0, "reference": m.reference,
        })).unwrap_or(Value::Null),
        MessageType::Payment => decode_signed::<Payment<'_>>(bytes).map(|m| payment_json(&m)).unwrap_or(Value::Null),
        MessageType::Receipt => decode_signed::<Receipt>(bytes).map(|m| json!({
            "payment_id": hx(&m.payment_id.0), "merchant_id": hx(&m.merchant_id.0), "accepted_at": m.accepted_at.0,
        })).unwrap_or(Value::Null),
        MessageType::RevocationList => decode_signed::<RevocationList<'_>>(bytes).map(|m| json!({
            "issuer_key_id": hx(&m.issuer_key_id.0), "serial": m.serial, "issued_at": m.issued_at.0,
            "vouchers": m.vouchers.chunks(16).map(hx).collect::<Vec<_>>(),
            "merchants": m.merchants.chunks(8).map(hx).collect::<Vec<_>>(),
        })).unwrap_or(Value::Null),
        MessageType::SyncBatch => decode_unsigned::<SyncBatch<'_>>(bytes).map(|m| json!({
            "records": m.records().map(hx).collect::<Vec<_>>(),
        })).unwrap_or(Value::Null),
        MessageType::SyncReport => decode_signed::<SyncReport<'_>>(bytes).map(|m| json!({
            "issuer_key_id": hx(&m.issuer_key_id.0), "batch_id": hx(&m.batch_id), "created_at": m.created_at.0,
            "entries": m.entries().map(|e| match e.outcome {
                Outcome::Rejected(code) => json!({"record": hx(&e.record.0), "outcome": "rejected", "code": code}),
                o => json!({"record": hx(&e.record.0), "outcome": outcome_name(o)}),
            }).collect::<Vec<_>>(),
            "proofs": m.proofs().map(hx).collect::<Vec<_>>(),
        })).unwrap_or(Value::Null),
        MessageType::FraudProof => decode_unsigned::<FraudProof<'_>>(bytes).map(|m| json!({
            "kind": format!("{:?}", m.kind), "first": payment_json(&m.first), "second": payment_json(&m.second),
        })).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn voucher_json(m: &Voucher) -> Value {
    json!({
        "id": hx(&m.id.0), "issuer_key_id": hx(&m.issuer_key_id.0), "holder_key": hx(&m.holder_key.0),
        "currency": m.currency.as_str(), "limit": m.limit.0, "not_before": m.not_before.0, "not_after": m.not_after.0,
        "max_single": m.policy.max_single.0, "max_payments": m.policy.max_payments,
    })
}

fn cert_json(m: &MerchantCertificate<'_>) -> Value {
    json!({
        "merchant_id": hx(&m.merchant_id.0), "issuer_key_id": hx(&m.issuer_key_id.0), "merchant_key": hx(&m.merchant_key.0),
        "display_name": m.display_name, "not_before": m.not_before.0, "not_after": m.not_after.0,
    })
}

fn payment_json(m: &Signed<'_, Payment<'_>>) -> Value {
    json!({
        "id": hx(&m.id().0), "voucher": voucher_json(&m.voucher), "seq": m.seq, "amount": m.amount.0,
        "cumulative": m.cumulative.0, "prev": hx(&m.prev.0), "merchant_id": hx(&m.merchant_id.0),
        "request_nonce": hx(&m.request_nonce.0), "created_at": m.created_at.0,
    })
}

/// The name a vector uses for a settlement outcome.
pub fn outcome_name(o: Outcome) -> String {
    match o {
        Outcome::Credited => "credited".into(),
        Outcome::Duplicate => "duplicate".into(),
        Outcome::Pending => "pending".into(),
        Outcome::Conflict => "conflict".into(),
        Outcome::Rejected(code) => {
            format!(
                "rejected:{}",
                Error::from_code(code)
                    .map(|e| e.name())
                    .unwrap_or("unknown")
            )
        }
    }
}

/// Encodes a sync batch.
pub fn batch(records: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = ItemsWriter::sync_batch(&mut buf, records.len()).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

fn fixture_json(f: &Fixture) -> Value {
    json!({
        "description": "Keys come from fixed seeds (issuer [1;32], holder [2;32], merchant A [3;32], merchant B [4;32], stranger [5;32]); times are Unix seconds.",
        "issuer_key": hx(&f.issuer.public_key().0),
        "issuer_key_id": hx(&f.issuer.key_id().0),
        "trust": [{ "key": hx(&f.issuer.public_key().0), "not_before": t(0).0 - 86_400, "not_after": t(2 * 365 * 86_400).0 }],
        "holder_key": hx(&f.holder.public_key().0),
        "merchant_a": { "id": hx(&MERCHANT_A.0), "key": hx(&f.merchant_a.public_key().0), "certificate": hx(&f.cert_a) },
        "merchant_b": { "id": hx(&MERCHANT_B.0), "key": hx(&f.merchant_b.public_key().0), "certificate": hx(&f.cert_b) },
        "voucher": hx(&f.voucher),
        "clock_skew_secs": types::CLOCK_SKEW_SECS,
    })
}

fn file(f: &Fixture, about: &str, vectors: Vec<Value>) -> Value {
    json!({ "spec": "offpay protocol version 1 (SPEC.md §12)", "about": about, "fixture": fixture_json(f), "vectors": vectors })
}

const NONCE: [u8; 16] = [0x11; 16];
const NOW: u32 = 3650;

/// The generated files: (file name, pretty JSON).
pub fn generate() -> Vec<(String, String)> {
    let f = Fixture::new();
    let files = [
        (
            "messages.json",
            file(
                &f,
                "context 'decode': decode the hex as `message` (when `zero_pad_to` is present, the hex followed by zero bytes up to that many bytes in all); expect 'valid' (then `fields` are the decoded values) or the SPEC error name",
                messages(&f),
            ),
        ),
        (
            "verify.json",
            file(
                &f,
                "context 'verify': decode, then verify the message's signatures under the fixture trust store: a Voucher's issuer signature and its window at `now`; a MerchantCertificate's issuer signature and its window at `now`; a Payment's voucher (as a Voucher) and the payment under the voucher's holder key; a PaymentRequest's certificate (as a MerchantCertificate) and the request under the certificate's merchant key; a Receipt under the fixture key of the merchant its merchant_id names (merchant A or B; no certificate window is checked); a RevocationList's issuer signature. A voucher's or a certificate's issuer key must be trusted at its own `not_before` (SPEC §7.2), a revocation list's at `now`. Expect 'valid' or the first error",
                verify(&f),
            ),
        ),
        (
            "accept.json",
            file(
                &f,
                "context 'accept': merchant A decides on the payment (SPEC §8.2 steps 3-14; step 2 does not apply: this merchant has accepted nothing) with `open_request` as its one open request, its voucher memory (§8.2.1) holding each payment of `seen` (they are remembered, not accepted before), and `revocation_list` when not null (it verifies under the fixture trust store at `now` and is installed before the decision), at `now` (the voucher's issuer key at the voucher's `not_before`, §7.2); expect 'valid' or the first error",
                accept(&f),
            ),
        ),
        (
            "pay.json",
            file(
                &f,
                "context 'pay': a wallet with the fixture holder key installs each voucher of `vouchers`, in order, at `install_at`, pays each request of `paid` at `paid_at` (no revocation list), then pays the request at `now` with `revocation_list` (if not null) installed; when valid, the payment equals `output`; when refused, the wallet stores nothing",
                pay(&f),
            ),
        ),
        (
            "settlement.json",
            file(
                &f,
                "settlement scenarios (SPEC §8.3): a fresh ledger with the fixture trust store, merchants A and B registered from their fixture certificates, grace `grace_secs`; each step ingests `batch` at `now` and expects one outcome per record in batch order (`rejected:<code name>`), and when `proofs` is present, exactly those FraudProofs in the report, in order (kind, first and second payment ids); after the steps, when `close_at` is not null, every voucher whose `not_after + grace` is before it closes; `final` is the ledger then: the credit of each merchant (merchants with none are absent), the number of proofs held, and for each voucher listed its credited total, overspend, whether it holds a proof and what closing released (null: not closed)",
                settlement(&f),
            ),
        ),
        (
            "ble.json",
            file(
                &f,
                "BLE (SPEC §14). Context 'ble': a whole session: from the engagement and both X25519 secrets, derive the transcript and keys; each frame's `chunks` (at `mtu`) reassemble to `frame`; sealed frames open under their direction's key and counter to `plaintext`. Context 'ble-chunks': a receiver at `mtu` takes `chunks` in order (§14.3); expect 'valid' (the chunks reassemble to `frame`) or the error the first refused chunk gets",
                ble(&f),
            ),
        ),
    ];
    files
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                serde_json::to_string_pretty(&v).unwrap() + "\n",
            )
        })
        .collect()
}

/// Valid messages of every type, and the decode failures of each received message.
fn messages(f: &Fixture) -> Vec<Value> {
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
    // §5.9: a report's counts are checked before what they count; a `rejected` code is any
    // u16 (a receiver maps codes it does not know to "refused"); its proofs are opaque byte
    // strings (1 to 589 bytes), decoded as FraudProofs only by a receiver that uses them.
    {
        let report_of = |body: &[u8]| {
            raw_signed(
                MessageType::SyncReport,
                <SyncReport<'_> as SignedMessage<'_>>::DOMAIN,
                body,
                f.issuer.signer(),
            )
        };
        let head = |body: &mut Vec<u8>| {
            body.extend(f.issuer.key_id().0);
            body.extend([0xbb; 32]);
            body.extend(t(NOW).0.to_le_bytes());
        };
        let entries = [
            ReportEntry {
                record: RecordId([1; 32]),
                outcome: Outcome::Credited,
            },
            ReportEntry {
                record: RecordId([2; 32]),
                outcome: Outcome::Rejected(303),
            },
            ReportEntry {
                record: RecordId([3; 32]),
                outcome: Outcome::Rejected(999),
            },
            ReportEntry {
                record: RecordId([4; 32]),
                outcome: Outcome::Conflict,
            },
        ];
        let with_proofs = SyncReport::build(
            &f.issuer,
            [0xbb; 32],
            t(NOW),
            &entries,
            &[proof.clone(), b"not a proof".to_vec()],
        )
        .unwrap();
        out.push(with(
            v("sync-report-codes-and-opaque-proofs", MessageType::SyncReport, &with_proofs, "valid"),
            json!({ "context": "decode", "size": with_proofs.len(), "fields": describe(&with_proofs) }),
        ));
        let mut over_entries = Vec::new();
        head(&mut over_entries);
        over_entries.extend(fields(&1025u64));
        let mut over_proofs = Vec::new();
        head(&mut over_proofs);
        over_proofs.extend(fields(&0u64));
        over_proofs.extend(fields(&65u64));
        let mut empty_proof = Vec::new();
        head(&mut empty_proof);
        empty_proof.extend(fields(&0u64));
        empty_proof.extend(fields(&1u64));
        empty_proof.extend(fields(&0u64));
        let mut outcome_tag = Vec::new();
        head(&mut outcome_tag);
        outcome_tag.extend(fields(&1u64));
        outcome_tag.extend([5u8; 32]);
        outcome_tag.push(5);
        outcome_tag.extend(fields(&0u64));
        for (name, body) in [
            ("sync-report-entry-count-over-its-bound", over_entries),
            ("sync-report-proof-count-over-its-bound", over_proofs),
            ("sync-report-empty-proof", empty_proof),
            ("sync-report-outcome-tag-out-of-range", outcome_tag),
        ] {
            out.push(with(
                v(
                    name,
                    MessageType::SyncReport,
                    &report_of(&body),
                    "out-of-range",
                ),
                json!({ "context": "decode" }),
            ));
        }
    }
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
            <Voucher as codec::Message<'_>>::MAX_LEN,
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
        body.extend(vv.holder_key.0);
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
        let body = fields(&vv);
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
    // Paths every decoder has and no other vector reaches (SPEC §3.4, §4, §5).
    {
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
        let request = f.request(false, 420, eur, NONCE, None);
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
        kind3.extend(&p1);
        kind3.extend(&p2);
        out_of_range(
            &mut out,
            "fraud-proof-kind-3",
            MessageType::FraudProof,
            &kind3,
            "out-of-range",
        );
        // The two other kinds of proof, valid.
        let broken = bad_payment(2, 1200, 1620, [0x66; 16]);
        let mismatch = bad_payment(2, 1200, 1700, pid(&p1).link().0);
        for (name, kind, second) in [
            ("fraud-proof-broken-link", 1u8, &broken),
            ("fraud-proof-cumulative-mismatch", 2, &mismatch),
        ] {
            let mut bytes = vec![1u8, MessageType::FraudProof as u8, kind];
            bytes.extend(&p1);
            bytes.extend(second);
            out.push(with(
                v(name, MessageType::FraudProof, &bytes, "valid"),
                json!({ "context": "decode", "size": bytes.len(), "fields": describe(&bytes) }),
            ));
        }
    }
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
    {
        let mut forged = vec![1u8, MessageType::SyncBatch as u8];
        forged.extend(overlong_varint(1_000_000, 3));
        // §3.2: the maximum sizes are exactly what the §5.8 and §5.9 fields allow, and the
        // first byte past one is `over-size`, before anything else is read.
        for (name, ty, max) in [
            (
                "sync-batch-one-byte-over-the-maximum",
                MessageType::SyncBatch,
                <SyncBatch<'_> as Message<'_>>::MAX_LEN,
            ),
            (
                "sync-report-one-byte-over-the-maximum",
                MessageType::SyncReport,
                <SyncReport<'_> as Message<'_>>::MAX_LEN,
            ),
        ] {
            out.push(with(
                v(name, ty, &[1, ty as u8], "over-size"),
                json!({ "context": "decode", "zero_pad_to": max + 1 }),
            ));
        }
        out.push(with(
            v(
                "sync-batch-forged-count",
                MessageType::SyncBatch,
                &forged,
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
        let mut forged = vec![1u8, MessageType::SyncBatch as u8, 1];
        forged.extend(fields(&60_000u64));
        forged.extend([1, 5]);
        out.push(with(
            v(
                "sync-batch-forged-record-length",
                MessageType::SyncBatch,
                &forged,
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
    }
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

fn codec_raw_payment(f: &Fixture, body: &[u8]) -> Vec<u8> {
    raw_signed(
        MessageType::Payment,
        <Payment<'_> as SignedMessage<'_>>::DOMAIN,
        body,
        &f.holder,
    )
}

/// Signature and trust failures.
fn verify(f: &Fixture) -> Vec<Value> {
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
        vv.holder_key = PublicKey(id);
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
        vv.holder_key = PublicKey(key);
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

/// Acceptor decisions.
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
    PaymentTail {
        seq,
        amount,
        cumulative: amount,
        prev: [0; 16],
        merchant: MERCHANT_A.0,
        nonce,
        created_at: t(3700).0.to_le_bytes(),
    }
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
        let i = usize::from(d.verify(&d.voucher.holder_key).is_err());
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
fn issued_before_key(f: &Fixture) -> Vec<u8> {
    let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
    v.not_before = Timestamp(T0 - 86_400 - types::CLOCK_SKEW_SECS - 1);
    sign(&v, f.issuer.signer())
}

fn accept(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let open =
        |amount: u64, cur: &str| json!({ "nonce": hx(&NONCE), "amount": amount, "currency": cur });
    let acc = |name: &str,
               p: &[u8],
               e: &str,
               open: Value,
               seen: Vec<&[u8]>,
               rl: Option<&[u8]>,
               now: u32| {
        with(
            v(name, MessageType::Payment, p, e),
            json!({
                "context": "accept", "now": t(now).0, "open_request": open,
                "seen": seen.iter().map(|s| hx(s)).collect::<Vec<_>>(),
                "revocation_list": rl.map(hx),
            }),
        )
    };
    let p1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    let p2 = payment(f, &f.voucher, 2, 1200, 1620, Some(&p1), MERCHANT_A, NONCE);
    out.push(acc(
        "accept-first-payment",
        &p1,
        "valid",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-second-payment-after-first",
        &p2,
        "valid",
        open(1200, "EUR"),
        vec![&p1],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-chain-gap-is-fine",
        &payment(f, &f.voucher, 3, 100, 1720, Some(&p2), MERCHANT_A, NONCE),
        "valid",
        open(100, "EUR"),
        vec![&p1],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-voucher-issued-before-its-key",
        &payment(
            f,
            &issued_before_key(f),
            1,
            420,
            420,
            None,
            MERCHANT_A,
            NONCE,
        ),
        "issuer-key-not-valid",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    // §7.1: a holder key with a torsion component is not weak; its payment is accepted when
    // the cofactorless equation holds, refused when only the cofactored one does.
    let (torsion_ok, torsion_bad) = torsion_payments(f);
    for (name, p, e) in [
        (
            "accept-torsion-holder-key-equation-holds",
            &torsion_ok,
            "valid",
        ),
        (
            "accept-torsion-holder-key-equation-fails",
            &torsion_bad,
            "bad-signature",
        ),
    ] {
        let amount = decode_signed::<Payment<'_>>(p).unwrap().amount.0;
        out.push(acc(name, p, e, open(amount, "EUR"), vec![], None, NOW));
    }
    let pb = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_B, NONCE);
    out.push(acc(
        "accept-wrong-merchant",
        &pb,
        "wrong-merchant",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let pn = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, [0x99; 16]);
    out.push(acc(
        "accept-wrong-nonce",
        &pn,
        "wrong-nonce",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-wrong-currency",
        &p1,
        "wrong-currency",
        open(420, "USD"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-wrong-amount",
        &p1,
        "wrong-amount",
        open(400, "EUR"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-expired-voucher",
        &p1,
        "expired",
        open(420, "EUR"),
        vec![],
        None,
        30 * 86_400 + 301,
    ));
    let early = voucher_with(f, [0x5b; 16], t(9000));
    let early = {
        let mut vv = decode_signed::<Voucher>(&early).unwrap().value().to_owned();
        vv.not_before = t(7200);
        sign(&vv, f.issuer.signer())
    };
    let on_early = payment(f, &early, 1, 420, 420, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-voucher-not-yet-valid",
        &on_early,
        "not-yet-valid",
        open(420, "EUR"),
        vec![],
        None,
        7200 - 301,
    ));
    let big = payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-over-max-single",
        &big,
        "over-policy",
        open(2600, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let eleventh = {
        let prev = [0x42u8; 16];
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 11,
                amount: 100,
                cumulative: 1100,
                prev,
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    out.push(acc(
        "accept-over-max-payments",
        &eleventh,
        "over-policy",
        open(100, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let over = {
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 3,
                amount: 2000,
                cumulative: 5100,
                prev: [0x42; 16],
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    out.push(acc(
        "accept-cumulative-over-limit",
        &over,
        "over-limit",
        open(2000, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let clone1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    let other1 = payment(f, &f.voucher, 1, 300, 300, None, MERCHANT_A, [0x31; 16]);
    out.push(acc(
        "accept-sequence-reused-with-other-content",
        &clone1,
        "sequence-reused",
        open(420, "EUR"),
        vec![&other1],
        None,
        NOW,
    ));
    let low = payment(f, &f.voucher, 3, 100, 500, Some(&p2), MERCHANT_A, NONCE);
    out.push(acc(
        "accept-cumulative-runs-backwards",
        &low,
        "chain-inconsistent",
        open(100, "EUR"),
        vec![&p2],
        None,
        NOW,
    ));
    let broken = {
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 2,
                amount: 1200,
                cumulative: 1620,
                prev: [0x42; 16],
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    // A clone's first payment, presented after the real wallet's second (which links to the
    // real first payment): a fork seen from above.
    let fork1 = payment(f, &f.voucher, 1, 300, 300, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-fork-of-a-seen-payments-predecessor",
        &fork1,
        "chain-inconsistent",
        open(300, "EUR"),
        vec![&p2],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-link-to-unknown-predecessor",
        &broken,
        "chain-inconsistent",
        open(1200, "EUR"),
        vec![&p1],
        None,
        NOW,
    ));
    let rl = f
        .issuer
        .revocation_list(9, t(100), &[VOUCHER_ID], &[])
        .unwrap();
    out.push(acc(
        "accept-revoked-voucher",
        &p1,
        "revoked",
        open(420, "EUR"),
        vec![],
        Some(&rl),
        NOW,
    ));
    let rl_other = f
        .issuer
        .revocation_list(9, t(100), &[VoucherId([0x01; 16])], &[])
        .unwrap();
    out.push(acc(
        "accept-with-unrelated-revocation",
        &p1,
        "valid",
        open(420, "EUR"),
        vec![],
        Some(&rl_other),
        NOW,
    ));
    let mut bad = p1.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x10;
    out.push(acc(
        "accept-bad-signature",
        &bad,
        "bad-signature",
        open(420, "EUR"),
        vec![],
        None,
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
    out.push(acc(
        "accept-signed-by-wrong-key",
        &by_stranger,
        "bad-signature",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let forged_voucher = sign(
        &voucher_value(f.holder.public_key(), f.issuer.key_id()),
        &f.stranger,
    );
    let on_forged = payment(f, &forged_voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-voucher-forged",
        &on_forged,
        "bad-signature",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let mut truncated = p1.clone();
    truncated.truncate(100);
    out.push(acc(
        "accept-truncated",
        &truncated,
        "truncated",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    // §8.2: payments that break two rules at once get the code of the earlier check.
    let rl_voucher = f
        .issuer
        .revocation_list(5, t(100), &[VOUCHER_ID], &[])
        .unwrap();
    let mut bad_sig = payment(f, &f.voucher, 3, 2000, 5100, Some(&p2), MERCHANT_A, NONCE);
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    type Case<'a> = (&'a str, Vec<u8>, &'a str, Value, Option<&'a [u8]>, u32);
    let two: Vec<Case<'_>> = vec![
        // steps 3 and 4: another merchant's payment answering no open request
        (
            "accept-two-wrong-merchant-before-wrong-nonce",
            payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_B, [0x98; 16]),
            "wrong-merchant",
            open(420, "EUR"),
            None,
            NOW,
        ),
        // steps 5 and 6: another currency and another amount
        (
            "accept-two-wrong-currency-before-wrong-amount",
            p1.clone(),
            "wrong-currency",
            open(421, "USD"),
            None,
            NOW,
        ),
        // steps 8 and 10: an expired voucher and a payment over its largest single payment
        (
            "accept-two-expired-before-over-policy",
            payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, NONCE),
            "expired",
            open(2600, "EUR"),
            None,
            30 * 86_400 + 301,
        ),
        // steps 9 and 10: a revoked voucher and a payment over policy
        (
            "accept-two-revoked-before-over-policy",
            payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, NONCE),
            "revoked",
            open(2600, "EUR"),
            Some(&rl_voucher),
            NOW,
        ),
        // steps 11 and 14: over the limit and a bad signature
        (
            "accept-two-over-limit-before-bad-signature",
            bad_sig,
            "over-limit",
            open(2000, "EUR"),
            None,
            NOW,
        ),
    ];
    for (name, p, e, o, rl, now) in two {
        out.push(acc(name, &p, e, o, vec![], rl, now));
    }
    out
}

/// Wallet payments.
fn pay(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let eur = eur();
    let p = |name: &str,
             req: &[u8],
             e: &str,
             now: u32,
             paid: Vec<Vec<u8>>,
             rl: Option<&[u8]>,
             output: Option<Vec<u8>>| {
        with(
            v(name, MessageType::PaymentRequest, req, e),
            json!({
                "context": "pay", "now": t(now).0, "install_at": t(60).0, "paid_at": t(3650).0,
                "vouchers": [hx(&f.voucher)],
                "paid": paid.iter().map(|x| hx(x)).collect::<Vec<_>>(),
                "revocation_list": rl.map(hx), "output": output.map(|o| hx(&o)),
            }),
        )
    };
    // §8.1 step 5 with several vouchers, installed in the order listed.
    let pv = |name: &str,
              req: &[u8],
              e: &str,
              vouchers: &[&[u8]],
              paid: Vec<Vec<u8>>,
              output: Option<Vec<u8>>| {
        with(
            v(name, MessageType::PaymentRequest, req, e),
            json!({
                "context": "pay", "now": t(NOW).0, "install_at": t(60).0, "paid_at": t(3650).0,
                "vouchers": vouchers.iter().map(|x| hx(x)).collect::<Vec<_>>(),
                "paid": paid.iter().map(|x| hx(x)).collect::<Vec<_>>(),
                "revocation_list": null, "output": output.map(|o| hx(&o)),
            }),
        )
    };
    let voucher = |id: u8, edit: &dyn Fn(&mut Voucher)| {
        let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
        v.id = VoucherId([id; 16]);
        edit(&mut v);
        sign(&v, f.issuer.signer())
    };
    let usd = voucher(0xa1, &|v| v.currency = Currency::parse("USD").unwrap());
    let small_limit = voucher(0xa2, &|v| {
        v.limit = Amount(450);
        v.policy.max_single = Amount(450);
    });
    let small_single = voucher(0xa3, &|v| v.policy.max_single = Amount(100));
    let one_payment = voucher(0xa4, &|v| v.policy.max_payments = 1);
    let req420 = f.request(false, 420, eur, NONCE, Some("table 4"));
    let on = |voucher: &[u8],
              seq: u32,
              cumulative: u64,
              prev: [u8; 16],
              nonce: [u8; 16],
              amount: u64| {
        raw_payment(
            voucher,
            &PaymentTail {
                seq,
                amount,
                cumulative,
                prev,
                merchant: MERCHANT_A.0,
                nonce,
                created_at: t(NOW).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    out.push(pv(
        "pay-chooses-the-first-voucher-that-can-pay",
        &req420,
        "valid",
        &[&usd, &small_single, &f.voucher, &small_limit],
        vec![],
        Some(on(&f.voucher, 1, 420, [0; 16], NONCE, 420)),
    ));
    // The 150 goes to the second voucher (over the first one's largest single payment); the
    // 420 then fits neither: over-policy from the first, insufficient-funds from the second.
    out.push(pv(
        "pay-insufficient-funds-is-the-most-telling-reason",
        &req420,
        "insufficient-funds",
        &[&small_single, &small_limit, &usd],
        vec![f.request(false, 150, eur, [0x43; 16], None)],
        None,
    ));
    out.push(pv(
        "pay-a-reason-in-the-right-currency-beats-wrong-currency",
        &req420,
        "over-policy",
        &[&usd, &small_single],
        vec![],
        None,
    ));
    // A voucher installed within the skew before its window, paid before the skew allows.
    let later = voucher(0xa6, &|v| {
        v.not_before = t(7200);
        v.not_after = t(9000);
    });
    let fresh_then = {
        let certificate = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
        sign(
            &PaymentRequest {
                certificate,
                amount: Amount(420),
                currency: eur,
                nonce: Nonce(NONCE),
                created_at: t(6890),
                reference: None,
            },
            &f.merchant_a,
        )
    };
    out.push(with(
        v("pay-voucher-not-yet-valid", MessageType::PaymentRequest, &fresh_then, "not-yet-valid"),
        json!({
            "context": "pay", "now": t(7200 - types::CLOCK_SKEW_SECS - 1).0, "install_at": t(7200 - types::CLOCK_SKEW_SECS).0,
            "paid_at": t(7200).0, "vouchers": [hx(&later)], "paid": [], "revocation_list": null, "output": null,
        }),
    ));
    let first = f.request(false, 50, eur, [0x41; 16], None);
    out.push(pv(
        "pay-max-payments-used-up",
        &f.request(false, 60, eur, [0x42; 16], None),
        "over-policy",
        &[&one_payment],
        vec![first.clone()],
        None,
    ));
    // §8.1 step 4: a retry names the same merchant and nonce; a different amount is refused.
    out.push(pv(
        "pay-retry-with-another-amount",
        &f.request(false, 70, eur, [0x41; 16], None),
        "wrong-amount",
        &[&f.voucher],
        vec![first],
        None,
    ));
    let req = f.request(false, 420, eur, NONCE, Some("table 4"));
    // The expected payment is built independently of the wallet, by the raw builder.
    let expected = raw_payment(
        &f.voucher,
        &PaymentTail {
            seq: 1,
            amount: 420,
            cumulative: 420,
            prev: [0; 16],
            merchant: MERCHANT_A.0,
            nonce: NONCE,
            created_at: t(NOW).0.to_le_bytes(),
        },
        &f.holder,
    );
    out.push(p(
        "pay-first-request",
        &req,
        "valid",
        NOW,
        vec![],
        None,
        Some(expected.clone()),
    ));
    let req2 = f.request(true, 1200, eur, [0x12; 16], None);
    let expected2 = raw_payment(
        &f.voucher,
        &PaymentTail {
            seq: 2,
            amount: 1200,
            cumulative: 1620,
            prev: pid(&expected).link().0,
            merchant: MERCHANT_B.0,
            nonce: [0x12; 16],
            created_at: t(NOW).0.to_le_bytes(),
        },
        &f.holder,
    );
    out.push(p(
        "pay-second-request-links-to-first",
        &req2,
        "valid",
        NOW,
        vec![req.clone()],
        None,
        Some(expected2),
    ));
    out.push(p(
        "pay-retry-returns-same-payment",
        &req,
        "valid",
        NOW,
        vec![req.clone()],
        None,
        Some(expected.clone()),
    ));
    out.push(p(
        "pay-wrong-currency",
        &f.request(false, 420, Currency::parse("USD").unwrap(), NONCE, None),
        "wrong-currency",
        NOW,
        vec![],
        None,
        None,
    ));
    out.push(p(
        "pay-over-max-single",
        &f.request(false, 2600, eur, NONCE, None),
        "over-policy",
        NOW,
        vec![],
        None,
        None,
    ));
    let r25 = |n: u8| f.request(false, 2500, eur, [n; 16], None);
    out.push(p(
        "pay-exhausted-voucher",
        &f.request(false, 1, eur, [0x40; 16], None),
        "insufficient-funds",
        NOW,
        vec![r25(0x41), r25(0x42)],
        None,
        None,
    ));
    out.push(p(
        "pay-expired-voucher",
        &req,
        "expired",
        30 * 86_400 + 301,
        vec![],
        None,
        None,
    ));
    let mut bad = req.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    out.push(p(
        "pay-request-bad-signature",
        &bad,
        "bad-signature",
        NOW,
        vec![],
        None,
        None,
    ));
    let rl = f
        .issuer
        .revocation_list(3, t(100), &[], &[MERCHANT_A])
        .unwrap();
    out.push(p(
        "pay-revoked-merchant",
        &req,
        "revoked",
        NOW,
        vec![],
        Some(&rl),
        None,
    ));
    let rl_v = f
        .issuer
        .revocation_list(4, t(100), &[VOUCHER_ID], &[])
        .unwrap();
    out.push(p(
        "pay-revoked-voucher",
        &req,
        "revoked",
        NOW,
        vec![],
        Some(&rl_v),
        None,
    ));
    // §8.1 step 2: a retry returns the stored payment whatever happened since.
    out.push(p(
        "pay-retry-after-the-merchant-was-revoked",
        &req,
        "valid",
        NOW,
        vec![req.clone()],
        Some(&rl),
        Some(expected.clone()),
    ));
    out.push(p(
        "pay-retry-after-the-certificate-expired",
        &req,
        "valid",
        365 * 86_400 + 301,
        vec![req.clone()],
        None,
        Some(expected.clone()),
    ));
    // §8.1 step 4: a request older than REQUEST_FRESH_SECS plus the skew is stale; one from
    // beyond the skew in the future is not yet valid; one whose created_at is 0 (a till
    // without a clock) is not checked.
    out.push(p(
        "pay-stale-request",
        &req,
        "expired",
        3600 + types::REQUEST_FRESH_SECS + types::CLOCK_SKEW_SECS + 1,
        vec![],
        None,
        None,
    ));
    out.push(p(
        "pay-request-fresh-at-the-edge",
        &req,
        "valid",
        3600 + types::REQUEST_FRESH_SECS + types::CLOCK_SKEW_SECS,
        vec![],
        None,
        Some(raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 1,
                amount: 420,
                cumulative: 420,
                prev: [0; 16],
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3600 + types::REQUEST_FRESH_SECS + types::CLOCK_SKEW_SECS)
                    .0
                    .to_le_bytes(),
            },
            &f.holder,
        )),
    ));
    out.push(p(
        "pay-request-from-the-future",
        &req,
        "not-yet-valid",
        3600 - types::CLOCK_SKEW_SECS - 1,
        vec![],
        None,
        None,
    ));
    let clockless = {
        let certificate = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
        sign(
            &PaymentRequest {
                certificate,
                amount: Amount(420),
                currency: eur,
                nonce: Nonce(NONCE),
                created_at: Timestamp(0),
                reference: None,
            },
            &f.merchant_a,
        )
    };
    out.push(p(
        "pay-request-without-a-clock-is-not-checked",
        &clockless,
        "valid",
        2 * 86_400,
        vec![],
        None,
        Some(raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 1,
                amount: 420,
                cumulative: 420,
                prev: [0; 16],
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(2 * 86_400).0.to_le_bytes(),
            },
            &f.holder,
        )),
    ));
    // §8.1: two rules broken at once.
    out.push(p(
        "pay-two-expired-certificate-before-revoked-merchant",
        &req,
        "expired",
        365 * 86_400 + 301,
        vec![],
        Some(&rl),
        None,
    ));
    let mut usd_forged = f.request(false, 420, Currency::parse("USD").unwrap(), NONCE, None);
    let last = usd_forged.len() - 1;
    usd_forged[last] ^= 1;
    out.push(p(
        "pay-two-bad-signature-before-wrong-currency",
        &usd_forged,
        "bad-signature",
        NOW,
        vec![],
        None,
        None,
    ));
    out.push(p(
        "pay-certificate-expired",
        &req,
        "expired",
        365 * 86_400 + 301,
        vec![],
        None,
        None,
    ));
    let forged_cert = {
        let cert = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
        let c = *cert.value();
        let forged = sign(&c, &f.stranger);
        let certificate = decode_signed::<MerchantCertificate<'_>>(&forged).unwrap();
        sign(
            &PaymentRequest {
                certificate,
                amount: Amount(420),
                currency: eur,
                nonce: Nonce(NONCE),
                created_at: t(3600),
                reference: None,
            },
            &f.merchant_a,
        )
    };
    out.push(p(
        "pay-forged-certificate",
        &forged_cert,
        "bad-signature",
        NOW,
        vec![],
        None,
        None,
    ));
    out
}

/// Settlement scenarios.
fn settlement(f: &Fixture) -> Vec<Value> {
    let grace = settlement::DEFAULT_GRACE_SECS;
    let step = |b: Vec<u8>, now: u32, expect: &[&str]| json!({ "batch": hx(&b), "now": t(now).0, "expect": expect });
    let scenario = |name: &str, steps: Vec<Value>, close_at: Option<u32>, fin: Value| json!({ "name": name, "message": "SyncBatch", "context": "settlement", "grace_secs": grace, "steps": steps, "close_at": close_at.map(|c| t(c).0), "final": fin });
    let p1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    let r1 = receipt(&p1, MERCHANT_A, &f.merchant_a, t(NOW));
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
    let r2 = receipt(&p2, MERCHANT_B, &f.merchant_b, t(NOW));
    let p3 = payment(
        f,
        &f.voucher,
        3,
        80,
        1700,
        Some(&p2),
        MERCHANT_A,
        [0x13; 16],
    );
    let r3 = receipt(&p3, MERCHANT_A, &f.merchant_a, t(NOW));
    let a = hx(&MERCHANT_A.0);
    let b = hx(&MERCHANT_B.0);
    let vid = hx(&VOUCHER_ID.0);
    let mut out = Vec::new();
    out.push(scenario("same-payment-from-both-sides", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&p1, &r1, &p2, &r2]), NOW + 10, &["duplicate", "duplicate", "credited", "credited"]),
        step(batch(&[&p2, &r2]), NOW + 20, &["duplicate", "duplicate"]),
    ], None, json!({ "credits": { &a: 420, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1620, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("same-batch-twice", vec![
        step(batch(&[&p1, &r1, &p2, &r2]), NOW, &["credited", "credited", "credited", "credited"]),
        step(batch(&[&p1, &r1, &p2, &r2]), NOW, &["duplicate", "duplicate", "duplicate", "duplicate"]),
    ], None, json!({ "credits": { &a: 420, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1620, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("receipt-before-payment", vec![
        step(batch(&[&r1]), NOW, &["pending"]),
        step(batch(&[&p1]), NOW + 5, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // A cloned wallet spends the whole limit again at merchant B, from sequence 1.
    let c1 = payment(f, &f.voucher, 1, 2500, 2500, None, MERCHANT_B, [0x21; 16]);
    let rc1 = receipt(&c1, MERCHANT_B, &f.merchant_b, t(NOW));
    let c2 = payment(
        f,
        &f.voucher,
        2,
        2500,
        5000,
        Some(&c1),
        MERCHANT_B,
        [0x22; 16],
    );
    let rc2 = receipt(&c2, MERCHANT_B, &f.merchant_b, t(NOW));
    let honest_chain = [&p1[..], &r1, &p2, &r2, &p3, &r3];
    out.push(scenario("equivocation-cloned-wallet", vec![
        step(batch(&honest_chain), NOW, &["credited", "credited", "credited", "credited", "credited", "credited"]),
        step(batch(&[&c1, &rc1, &c2, &rc2]), NOW + 60, &["conflict", "credited", "conflict", "credited"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 500, &b: 6200 }, "proofs": 2, "vouchers": { &vid: { "credited": 6700, "overspend": 1700, "fraud": true, "released": 0 } } })));
    out.push(scenario("chain-gap", vec![
        step(batch(&[&p1, &r1, &p3, &r3]), NOW, &["credited", "credited", "credited", "credited"]),
        step(batch(&[&p2, &r2]), NOW + 30, &["credited", "credited"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 500, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1700, "overspend": 0, "fraud": false, "released": 3300 } } })));
    out.push(scenario("sync-after-grace", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&p2, &r2]), 30 * 86_400 + grace + 1, &["rejected:settlement-closed", "rejected:settlement-closed"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": 4580 } } })));
    out.push(scenario("sync-at-the-deadline", vec![
        step(batch(&[&p1, &r1]), 30 * 86_400 + grace, &["credited", "credited"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": 4580 } } })));
    out.push(scenario("undelivered-payment-is-released", vec![
        step(batch(&[&p1]), NOW, &["pending"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": {}, "proofs": 0, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": false, "released": 5000 } } })));
    let mut tampered = p1.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let forged_receipt = receipt(&p1, MERCHANT_A, &f.merchant_b, t(NOW));
    let wrong_merchant_receipt = receipt(&p1, MERCHANT_B, &f.merchant_b, t(NOW));
    // Two payments drawn on one forged voucher (the issuer's key id, a stranger's signature)
    // in one batch: both are refused, and the genuine voucher's payment still goes through.
    let forged = sign(
        &voucher_value(f.holder.public_key(), f.issuer.key_id()),
        &f.stranger,
    );
    let f1 = payment(f, &forged, 1, 420, 420, None, MERCHANT_A, [0x51; 16]);
    let f2 = payment(f, &forged, 2, 100, 520, Some(&f1), MERCHANT_A, [0x52; 16]);
    out.push(scenario("forged-voucher-fails-every-payment-on-it", vec![
        step(batch(&[&f1, &f2, &p1, &r1]), NOW, &["rejected:bad-signature", "rejected:bad-signature", "credited", "credited"]),
        step(batch(&[&f2]), NOW, &["rejected:bad-signature"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3: the final state does not depend on the order records arrive in. A receipt
    // accepted after the voucher's window (plus the skew) never credits its payment; a good
    // receipt that arrives later still does, whichever of the two came first.
    let late = t(30 * 86_400 + types::CLOCK_SKEW_SECS + 1);
    let r1_late = receipt(&p1, MERCHANT_A, &f.merchant_a, late);
    out.push(scenario("order-late-receipt-before-payment", vec![
        step(batch(&[&r1_late]), NOW, &["pending"]),
        step(batch(&[&p1]), NOW + 5, &["pending"]),
        step(batch(&[&r1]), NOW + 10, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("order-late-receipt-after-payment", vec![
        step(batch(&[&p1]), NOW, &["pending"]),
        step(batch(&[&r1_late]), NOW + 5, &["rejected:expired"]),
        step(batch(&[&r1]), NOW + 10, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3: a merchant without a clock writes `accepted_at = 0`; the payment's own
    // `created_at` (signed by the holder) is then the time checked against the window.
    let r1_clockless = receipt(&p1, MERCHANT_A, &f.merchant_a, Timestamp(0));
    let expired_tail = PaymentTail {
        seq: 2,
        amount: 100,
        cumulative: 520,
        prev: pid(&p1).link().0,
        merchant: MERCHANT_A.0,
        nonce: [0x14; 16],
        created_at: late.0.to_le_bytes(),
    };
    let p_expired = raw_payment(&f.voucher, &expired_tail, &f.holder);
    let r_expired_clockless = receipt(&p_expired, MERCHANT_A, &f.merchant_a, Timestamp(0));
    out.push(scenario("clockless-receipt-checks-the-payment-time", vec![
        step(batch(&[&p1, &r1_clockless]), NOW, &["credited", "credited"]),
        step(batch(&[&p_expired, &r_expired_clockless]), NOW + 5, &["pending", "rejected:expired"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3: a receipt is known by its bytes; another receipt for a payment already credited
    // is a duplicate and credits nothing more.
    out.push(scenario("second-receipt-for-a-credited-payment", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&r1_clockless]), NOW + 5, &["duplicate"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §7.2: settlement checks the key where the merchant does, at the voucher's `not_before`.
    let early = payment(
        f,
        &issued_before_key(f),
        1,
        420,
        420,
        None,
        MERCHANT_A,
        NONCE,
    );
    let early_r = receipt(&early, MERCHANT_A, &f.merchant_a, t(NOW));
    out.push(scenario(
        "voucher-issued-before-its-key",
        vec![step(
            batch(&[&early, &early_r]),
            NOW,
            &[
                "rejected:issuer-key-not-valid",
                "rejected:issuer-key-not-valid",
            ],
        )],
        None,
        json!({ "credits": {}, "proofs": 0, "vouchers": {} }),
    ));
    // §7.1 in a batch: settlement's batch verification gives the strict verdict, so a payment
    // under a torsion key whose cofactorless equation fails is refused among good records, and
    // one whose equation holds is credited, as the merchant decided.
    let (torsion_ok, torsion_bad) = torsion_payments(f);
    let torsion_ok_r = receipt(&torsion_ok, MERCHANT_A, &f.merchant_a, t(NOW));
    let torsion_bad_r = receipt(&torsion_bad, MERCHANT_A, &f.merchant_a, t(NOW));
    let tok = decode_signed::<Payment<'_>>(&torsion_ok).unwrap().amount.0;
    let tvid = hx(&[0x78; 16]);
    out.push(scenario("torsion-holder-key-in-a-batch", vec![
        step(batch(&[&torsion_bad, &p1, &torsion_bad_r, &r1]), NOW, &["rejected:bad-signature", "credited", "rejected:bad-signature", "credited"]),
        step(batch(&[&torsion_ok, &p2, &torsion_ok_r, &r2]), NOW + 5, &["credited", "credited", "credited", "credited"]),
    ], None, json!({ "credits": { &a: 420 + tok, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1620, "overspend": 0, "fraud": false, "released": null }, &tvid: { "credited": tok, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 1: the same payment twice in one batch is recorded once.
    out.push(scenario("payment-twice-in-one-batch", vec![
        step(batch(&[&p1, &p1, &r1]), NOW, &["credited", "duplicate", "credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 4: the skew of §4 applies to the time of the payment: a receipt accepted
    // exactly 300 s after `not_after` still qualifies (one second later does not: the
    // order-late-receipt scenarios).
    let r1_edge = receipt(
        &p1,
        MERCHANT_A,
        &f.merchant_a,
        t(30 * 86_400 + types::CLOCK_SKEW_SECS),
    );
    out.push(scenario("receipt-at-the-edge-of-the-skew", vec![
        step(batch(&[&p1, &r1_edge]), NOW, &["credited", "credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 3: which proof a payment that breaks several rules yields, and which payment
    // is `first`. Checked per step in `proofs` (kind, first id, second id).
    let off_link = |seq: u32, amount: u64, cumulative: u64, prev: [u8; 16], n: u8| {
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq,
                amount,
                cumulative,
                prev,
                merchant: MERCHANT_A.0,
                nonce: [n; 16],
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    let pid_hex = |p: &[u8]| hx(&pid(p).0);
    let proof = |kind: &str, first: &[u8], second: &[u8]| json!({ "kind": kind, "first": pid_hex(first), "second": pid_hex(second) });
    // Same sequence as p2, linking p1, and not linked by p3: SameSequence is checked first.
    let x2 = off_link(2, 1200, 1620, pid(&p1).link().0, 0x31);
    let (lo2, hi2) = if pid(&p2).0 < pid(&x2).0 {
        (&p2, &x2)
    } else {
        (&x2, &p2)
    };
    // Not linking p1, and not linked by p3, with p2 unknown: the payment before (seq − 1) is
    // checked before the payment after (seq + 1).
    let w2 = off_link(2, 1200, 1620, [0x77; 16], 0x32);
    // Linking p1 with a cumulative that does not add up: CumulativeMismatch, p1 first.
    let z2 = off_link(2, 1200, 1700, pid(&p1).link().0, 0x33);
    let stepp = |b: Vec<u8>, now: u32, expect: &[&str], proofs: Vec<Value>| json!({ "batch": hx(&b), "now": t(now).0, "expect": expect, "proofs": proofs });
    out.push(scenario("which-proof-a-conflict-yields", vec![
        stepp(batch(&[&p1, &p2, &p3]), NOW, &["pending", "pending", "pending"], vec![]),
        stepp(batch(&[&x2]), NOW + 1, &["conflict"], vec![proof("SameSequence", lo2, hi2)]),
    ], None, json!({ "credits": {}, "proofs": 1, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": true, "released": null } } })));
    out.push(scenario("proof-against-the-payment-before-first", vec![
        stepp(batch(&[&p1, &p3]), NOW, &["pending", "pending"], vec![]),
        stepp(batch(&[&w2]), NOW + 1, &["conflict"], vec![proof("BrokenLink", &p1, &w2)]),
    ], None, json!({ "credits": {}, "proofs": 1, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": true, "released": null } } })));
    out.push(scenario("cumulative-mismatch-names-the-earlier-payment-first", vec![
        stepp(batch(&[&z2]), NOW, &["pending"], vec![]),
        stepp(batch(&[&p1]), NOW + 1, &["conflict"], vec![proof("CumulativeMismatch", &p1, &z2)]),
    ], None, json!({ "credits": {}, "proofs": 1, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": true, "released": null } } })));
    // §8.3 step 1's refusals: a merchant settlement has no certificate for, a payment over the
    // voucher's policy, a cumulative over its limit.
    let stranger_id = MerchantId(*b"STRANGER");
    let unknown = raw_payment(
        &f.voucher,
        &PaymentTail {
            seq: 1,
            amount: 420,
            cumulative: 420,
            prev: [0; 16],
            merchant: stranger_id.0,
            nonce: [0x81; 16],
            created_at: t(3700).0.to_le_bytes(),
        },
        &f.holder,
    );
    let over_single = payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, [0x82; 16]);
    let over_limit = payment(
        f,
        &f.voucher,
        3,
        2000,
        5100,
        Some(&p2),
        MERCHANT_A,
        [0x83; 16],
    );
    out.push(scenario("payments-refused-by-policy", vec![
        step(batch(&[&unknown, &over_single, &over_limit, &p1, &r1]), NOW, &["rejected:unknown-merchant", "rejected:over-policy", "rejected:over-limit", "credited", "credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 1: one id, one voucher. A second voucher under a recorded voucher's id (the
    // issuer's mistake, or a test of it) is refused, in a later batch or in the same one.
    let twin = {
        let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
        v.limit = Amount(4000);
        v.policy.max_single = Amount(2500);
        sign(&v, f.issuer.signer())
    };
    let q1 = payment(f, &twin, 1, 420, 420, None, MERCHANT_B, [0x91; 16]);
    let q2 = payment(f, &twin, 2, 100, 520, Some(&q1), MERCHANT_B, [0x92; 16]);
    out.push(scenario("two-vouchers-under-one-id", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&q1]), NOW + 1, &["rejected:chain-inconsistent"]),
        step(batch(&[&p2, &q2]), NOW + 2, &["pending", "rejected:chain-inconsistent"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("rejected-records-change-nothing", vec![
        step(batch(&[&tampered, &forged_receipt, &f.cert_a, &p1[..40]]), NOW, &["rejected:bad-signature", "rejected:bad-signature", "rejected:wrong-type", "rejected:truncated"]),
        step(batch(&[&p1, &wrong_merchant_receipt]), NOW, &["pending", "rejected:wrong-merchant"]),
        step(batch(&[&r1]), NOW, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    out
}

/// One whole BLE session at MTU 23 and one at 185, every chunk recorded (SPEC §14).
fn ble(f: &Fixture) -> Vec<Value> {
    use offpay_ble::{CustomerSession, MerchantEngagement, MerchantSession};
    use offpay_protocol::{Acceptor, MemStore, Wallet};
    let mut out = Vec::new();
    for mtu in [23u16, 185] {
        let merchant_secret = [0x4d; 32];
        let customer_secret = [0x43; 32];
        let uuid = [
            0x0f, 0xf1, 0x1e, 0x00, 0xa1, 0x1c, 0x4e, 0x5b, 0x9a, 0x7e, 0x6d, 0x05, 0x11, 0x23,
            0x58, 0x13,
        ];
        let me =
            MerchantEngagement::from_parts(uuid, x25519_dalek::StaticSecret::from(merchant_secret));
        let mut wallet: Wallet<MemStore, SigningKey> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
        wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
        let mut shop: Acceptor<MemStore, SigningKey> =
            Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
        let now = t(NOW);
        let request = shop
            .create_request(Amount(420), eur(), Some("ble"), now, &mut Fixture::rng(21))
            .unwrap()
            .to_vec();
        let mut customer = CustomerSession::with_key(me.engagement(), &customer_secret).unwrap();
        let mut merchant = MerchantSession::new(&me, &request).unwrap();
        customer.set_mtu(mtu).unwrap();
        merchant.set_mtu(mtu).unwrap();
        let ctx = Context {
            trust: &f.trust,
            revocations: None,
            now,
        };
        customer.start().unwrap();
        let mut frames = Vec::new();
        let mut buf = vec![0u8; usize::from(mtu)];
        while !(customer.is_finished() && merchant.is_finished()) {
            let mut chunks = Vec::new();
            while let Some(n) = customer.poll_transmit(&mut buf) {
                chunks.push(hx(&buf[..n]));
                merchant.receive(&buf[..n], &mut shop, &ctx).unwrap();
            }
            if !chunks.is_empty() {
                frames.push(json!({ "direction": "c2s", "chunks": chunks }));
            }
            let mut chunks = Vec::new();
            while let Some(n) = merchant.poll_transmit(&mut buf) {
                chunks.push(hx(&buf[..n]));
                customer.receive(&buf[..n], &mut wallet).unwrap();
            }
            if !chunks.is_empty() {
                frames.push(json!({ "direction": "s2c", "chunks": chunks }));
            }
            if customer.pending_request().is_some() {
                customer.approve(&mut wallet, &f.trust, None, now).unwrap();
            }
        }
        // The keys, derived here independently of offpay-ble from the SPEC's formulas.
        let engagement = me.engagement().to_bytes();
        let hello: Vec<u8> = frames[0]["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| hex::decode(c.as_str().unwrap()).unwrap()[1..].to_vec())
            .collect();
        let (transcript, shared, k_c2s, k_s2c) = ble_keys(
            &engagement,
            &hello,
            &customer_secret,
            &me.engagement().merchant_key,
        );
        let payment = wallet.payments().next().unwrap().payment.bytes().to_vec();
        let receipt = wallet.payments().next().unwrap().receipt.unwrap().to_vec();
        // The request goes bound to the session: merchant A's signature over the transcript.
        let binding = Signer::sign(
            &SigningKey::from_seed(&[3; 32]),
            offpay_protocol::SESSION_BINDING_DOMAIN,
            &transcript,
        )
        .unwrap();
        let plaintexts = [
            hello.clone(),
            [&[3u8][..], &request, &binding].concat(),
            [&[1u8][..], &payment].concat(),
            [&[1u8][..], &receipt].concat(),
        ];
        for (frame, plain) in frames.iter_mut().zip(plaintexts.iter()) {
            let whole: Vec<u8> = frame["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| hex::decode(c.as_str().unwrap()).unwrap()[1..].to_vec())
                .collect();
            frame["frame"] = json!(hx(&whole));
            frame["plaintext"] = json!(hx(plain));
        }
        out.push(json!({
            "name": format!("ble-session-mtu-{mtu}"),
            "context": "ble",
            "mtu": mtu,
            "engagement": hx(&engagement),
            "engagement_qr": offpay_qr::frame::encode_single(&engagement),
            "merchant_secret": hx(&merchant_secret),
            "customer_secret": hx(&customer_secret),
            "transcript": hx(&transcript),
            "shared_secret": hx(&shared),
            "key_c2s": hx(&k_c2s),
            "key_s2c": hx(&k_s2c),
            "frames": frames,
        }));
    }
    // §14.3: chunks that reassemble, and chunks a receiver refuses. A chunk (flag included)
    // is at most MTU − 3 bytes; the 512-byte bound counts a frame's data, not its flags.
    let chunk = |flag: u8, len: usize, fill: u8| {
        let mut c = vec![flag];
        c.extend(std::iter::repeat_n(fill, len));
        hx(&c)
    };
    let cases: Vec<(&str, u16, Vec<String>, &str, usize)> = vec![
        (
            "chunks-a-chunk-at-the-mtu",
            23,
            vec![chunk(0, 19, 0xa1)],
            "valid",
            19,
        ),
        (
            "chunks-a-chunk-longer-than-the-mtu",
            23,
            vec![chunk(0, 20, 0xa2)],
            "ble-bad-chunk",
            0,
        ),
        (
            "chunks-512-data-bytes-in-two-chunks",
            517,
            vec![chunk(1, 300, 0xa3), chunk(0, 212, 0xa4)],
            "valid",
            512,
        ),
        (
            "chunks-513-data-bytes",
            517,
            vec![chunk(1, 300, 0xa5), chunk(0, 213, 0xa6)],
            "ble-too-large",
            0,
        ),
        (
            "chunks-empty-chunk",
            23,
            vec![String::new()],
            "ble-bad-chunk",
            0,
        ),
        (
            "chunks-unknown-flag",
            23,
            vec![chunk(2, 4, 0xa7)],
            "ble-bad-chunk",
            0,
        ),
    ];
    for (name, mtu, chunks, expect, len) in cases {
        let frame: Vec<u8> = chunks
            .iter()
            .flat_map(|c| hex::decode(c).unwrap().into_iter().skip(1))
            .collect();
        out.push(json!({
            "name": name, "context": "ble-chunks", "mtu": mtu, "chunks": chunks, "expect": expect,
            "frame": if expect == "valid" { Value::String(hx(&frame[..len])) } else { Value::Null },
        }));
    }
    out
}

/// SPEC §14.4 from its formulas: (transcript, shared secret, c2s key, s2c key).
pub fn ble_keys(
    engagement: &[u8],
    hello: &[u8],
    customer_secret: &[u8; 32],
    merchant_key: &[u8; 32],
) -> ([u8; 32], [u8; 32], [u8; 32], [u8; 32]) {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"offpay-ble-v1");
    h.update(engagement);
    h.update(hello);
    let transcript: [u8; 32] = h.finalize().into();
    let shared = x25519_dalek::x25519(*customer_secret, *merchant_key);
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&transcript), &shared);
    let (mut c2s, mut s2c) = ([0u8; 32], [0u8; 32]);
    hk.expand(b"offpay ble c2s", &mut c2s).unwrap();
    hk.expand(b"offpay ble s2c", &mut s2c).unwrap();
    (transcript, shared, c2s, s2c)
}
