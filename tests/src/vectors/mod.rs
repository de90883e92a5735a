//! The vector generator. Every expectation here is declared by hand from SPEC.md (what the
//! vector is built to exercise), never computed by the library, so that running the library
//! over the vectors is a real check.

use crate::fixture::*;
use offpay_protocol::codec::{Message, MessageType, SignedMessage};
use offpay_protocol::msg::sync::ItemsWriter;
use offpay_protocol::msg::*;
use offpay_protocol::*;
use serde_json::{Value, json};

mod accepting;
mod bluetooth;
mod decoding;
pub mod holder_p256;
mod paths;
mod paying;
mod retiring;
mod settling;
mod signatures;

use accepting::accept;
use bluetooth::ble;
pub use bluetooth::ble_keys;
use decoding::{codec_raw_payment, messages};
use paths::uncovered_paths;
use paying::pay;
use retiring::retire;
use settling::settlement;
pub use signatures::torsion_payments;
use signatures::{issued_before_key, verify};

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
        MessageType::PreAuthRequest | MessageType::PreAuthRequestP256 => decode_signed::<PreAuthRequest<'_>>(bytes).map(|m| json!({
            "instrument_id": hx(m.instrument_id), "amount": m.amount.0, "currency": m.currency.as_str(),
            "holder_key": hx(m.holder_key.as_bytes()), "client_nonce": hx(&m.client_nonce.0), "created_at": m.created_at.0,
        })).unwrap_or(Value::Null),
        MessageType::Voucher | MessageType::VoucherP256 => decode_signed::<Voucher>(bytes).map(|m| voucher_json(&m)).unwrap_or(Value::Null),
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
        "id": hx(&m.id.0), "issuer_key_id": hx(&m.issuer_key_id.0), "holder_key": hx(m.holder_key.as_bytes()),
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
        Outcome::Rejected(code) => {
            format!(
                "rejected:{}",
                Error::from_code(code)
                    .map(|e| e.name())
                    .unwrap_or("unknown")
            )
        }
        other => other.name().into(),
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
        "description": "Keys come from fixed seeds (issuer [1;32], holder [2;32], merchant A [3;32], merchant B [4;32], stranger [5;32]; the P-256 holder's secret scalar is [2;32], its signatures RFC 6979 and low-S); times are Unix seconds.",
        "issuer_key": hx(&f.issuer.public_key().0),
        "issuer_key_id": hx(&f.issuer.key_id().0),
        "trust": [{ "key": hx(&f.issuer.public_key().0), "not_before": t(0).0 - 86_400, "not_after": t(2 * 365 * 86_400).0 }],
        "holder_key": hx(&f.holder.public_key().0),
        "holder_p256_key": hx(&f.holder_p256.public_key().0),
        "voucher_p256": hx(&f.voucher_p256),
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

/// A payment tail to merchant A made at `t(3700)`, for payments built byte by byte.
fn tail_to_a(
    seq: u32,
    amount: u64,
    cumulative: u64,
    prev: [u8; 16],
    nonce: [u8; 16],
) -> PaymentTail {
    PaymentTail {
        seq,
        amount,
        cumulative,
        prev,
        merchant: MERCHANT_A.0,
        nonce,
        created_at: t(3700).0.to_le_bytes(),
    }
}

/// The generated files: (file name, pretty JSON).
pub fn generate() -> Vec<(String, String)> {
    let f = Fixture::new();
    let files = [
        (
            "messages.json",
            file(
                &f,
                "context 'decode': decode the hex as `message` (when `zero_pad_to` is present, the hex followed by zero bytes up to that many bytes in all); expect 'valid' (then `fields` are the decoded values) or the SPEC error name",
                [messages(&f), holder_p256::messages(&f)].concat(),
            ),
        ),
        (
            "verify.json",
            file(
                &f,
                "context 'verify': decode, then verify the message's signatures under the fixture trust store: a Voucher's issuer signature and its window at `now`; a MerchantCertificate's issuer signature and its window at `now`; a Payment's voucher (as a Voucher) and the payment under the voucher's holder key; a PaymentRequest's certificate (as a MerchantCertificate) and the request under the certificate's merchant key; a Receipt under the fixture key of the merchant its merchant_id names (merchant A or B; no certificate window is checked); a RevocationList's issuer signature. A voucher's or a certificate's issuer key must be trusted at its own `not_before` (SPEC §7.2), a revocation list's at `now`. Expect 'valid' or the first error",
                [verify(&f), holder_p256::verify(&f)].concat(),
            ),
        ),
        (
            "accept.json",
            file(
                &f,
                "context 'accept': merchant A decides on the payment (SPEC §8.2 steps 3-14; step 2 does not apply: this merchant has accepted nothing) with `open_request` as its one open request, its voucher memory (§8.2.1) holding each payment of `seen` (they are remembered, not accepted before), and `revocation_list` when not null (it verifies under the fixture trust store at `now` and is installed before the decision), at `now` (the voucher's issuer key at the voucher's `not_before`, §7.2); expect 'valid' or the first error",
                [accept(&f), holder_p256::accept(&f)].concat(),
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
            "retire.json",
            file(
                &f,
                "context 'install' (SPEC §8.1.1): a wallet with the fixture holder key carries out `steps` in order, each at its `at` and each succeeding: `install` a voucher, `pay` a request (no revocation list), store a `receipt`, or apply the issuer's sync `report`; then it installs the voucher of `hex` at `now`; expect 'valid' or the error name; when refused, the wallet stores nothing",
                retire(&f),
            ),
        ),
        (
            "settlement.json",
            file(
                &f,
                "settlement scenarios (SPEC §8.3): a fresh ledger with the fixture trust store, merchants A and B registered from their fixture certificates, grace `grace_secs`; each step ingests `batch` at `now` and expects one outcome per record in batch order (`rejected:<code name>`), and when `proofs` is present, exactly those FraudProofs in the report, in order (kind, first and second payment ids); after the steps, when `close_at` is not null, every voucher whose `not_after + grace` is before it closes; `final` is the ledger then: the credit of each merchant (merchants with none are absent), the number of proofs held, and for each voucher listed its credited total, overspend, whether it holds a proof and what closing released (null: not closed)",
                [settlement(&f), holder_p256::settlement(&f)].concat(),
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
