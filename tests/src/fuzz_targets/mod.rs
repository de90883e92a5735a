//! The bodies of the fuzz targets in `fuzz/`. They live here, in stable code, so that the
//! normal test run replays every corpus file and saved crash through exactly the same checks
//! (`tests/fuzz_replay.rs`). Each function panics when an invariant breaks; that is the crash.

use crate::fixture::*;
use crate::vectors::batch;
use arbitrary::{Arbitrary, Unstructured};
use offpay_protocol::acceptor::CertificateBytes;
use offpay_protocol::codec::{Message, Signed, SignedMessage, VERSION, Writer};
use offpay_protocol::msg::*;
use offpay_protocol::*;
use std::sync::OnceLock;

mod ble;
mod journal;
mod settlement;

pub use ble::*;
pub use journal::*;
pub use settlement::*;

/// A fuzz target: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/*.rs` file.
pub const TARGETS: &[(&str, Target)] = &[
    ("decode_preauth_request", decode_preauth_request),
    ("decode_voucher", decode_voucher),
    ("decode_merchant_certificate", decode_merchant_certificate),
    ("decode_payment_request", decode_payment_request),
    ("decode_payment", decode_payment),
    ("decode_receipt", decode_receipt),
    ("decode_revocation_list", decode_revocation_list),
    ("decode_sync_batch", decode_sync_batch),
    ("decode_sync_report", decode_sync_report),
    ("decode_fraud_proof", decode_fraud_proof),
    ("acceptor_accept", acceptor_accept),
    ("settlement_ingest", settlement_ingest),
    ("journal_reopen", journal_reopen),
    ("qr_single_frame", qr_single_frame),
    ("qr_scanner", qr_scanner),
    ("ble_reassembler", ble_reassembler),
    ("ble_merchant_session", ble_merchant_session),
    ("ble_customer_session", ble_customer_session),
];

/// Re-encodes a decoded signed message around its own signature.
fn reencode_signed<'a, T: SignedMessage<'a>>(m: &Signed<'a, T>) -> Vec<u8> {
    let mut buf = vec![0u8; T::MAX_LEN];
    let mut w = Writer::new(&mut buf);
    w.bytes(&[VERSION, m.value().message_type() as u8]).unwrap();
    m.value().write_body(&mut w).unwrap();
    w.bytes(m.signature()).unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

fn signed_round_trip<'a, T: SignedMessage<'a>>(data: &'a [u8]) {
    if let Ok(m) = decode_signed::<T>(data) {
        assert_eq!(
            reencode_signed(&m),
            data,
            "{}: accepted bytes must re-encode identically",
            T::TYPE.name()
        );
        assert!(data.len() <= T::MAX_LEN);
    }
}

fn unsigned_round_trip<'a, T: Message<'a>>(data: &'a [u8]) {
    if let Ok(m) = decode_unsigned::<T>(data) {
        let mut buf = vec![0u8; T::MAX_LEN];
        let n = codec::encode_unsigned(&m, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            data,
            "{}: accepted bytes must re-encode identically",
            T::TYPE.name()
        );
    }
}

/// PreAuthRequest decoder.
pub fn decode_preauth_request(data: &[u8]) {
    signed_round_trip::<PreAuthRequest<'_>>(data);
}
/// Voucher decoder.
pub fn decode_voucher(data: &[u8]) {
    signed_round_trip::<Voucher>(data);
}
/// MerchantCertificate decoder.
pub fn decode_merchant_certificate(data: &[u8]) {
    signed_round_trip::<MerchantCertificate<'_>>(data);
}
/// PaymentRequest decoder.
pub fn decode_payment_request(data: &[u8]) {
    signed_round_trip::<PaymentRequest<'_>>(data);
}
/// Payment decoder.
pub fn decode_payment(data: &[u8]) {
    signed_round_trip::<Payment<'_>>(data);
}
/// Receipt decoder.
pub fn decode_receipt(data: &[u8]) {
    signed_round_trip::<Receipt>(data);
}
/// RevocationList decoder.
pub fn decode_revocation_list(data: &[u8]) {
    signed_round_trip::<RevocationList<'_>>(data);
}
/// SyncBatch decoder (and its record iterator).
pub fn decode_sync_batch(data: &[u8]) {
    unsigned_round_trip::<SyncBatch<'_>>(data);
    if let Ok(b) = decode_unsigned::<SyncBatch<'_>>(data) {
        assert_eq!(b.records().count(), b.len());
    }
}
/// SyncReport decoder (and its entry and proof iterators).
pub fn decode_sync_report(data: &[u8]) {
    signed_round_trip::<SyncReport<'_>>(data);
    if let Ok(r) = decode_signed::<SyncReport<'_>>(data) {
        let _ = (r.entries().count(), r.proofs().count());
    }
}
/// FraudProof decoder.
pub fn decode_fraud_proof(data: &[u8]) {
    unsigned_round_trip::<FraudProof<'_>>(data);
}

struct Merchant {
    cert: CertificateBytes,
    store: MemStore<8192, 64>,
    trust: TrustStore<4>,
    key_seed: [u8; 32],
}

fn merchant() -> &'static Merchant {
    static M: OnceLock<Merchant> = OnceLock::new();
    M.get_or_init(|| {
        let f = Fixture::new();
        // A store holding one open request (nonce NONCE, 4.20 EUR) and one accepted payment,
        // built through the real acceptor so its records are exactly what it writes.
        let mut a: Acceptor<MemStore<8192, 64>, _> =
            Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
        let mut rng = Fixture::rng(1);
        let first = a
            .create_request(Amount(100), eur(), None, t(3000), &mut rng)
            .unwrap();
        let mut wallet: Wallet<MemStore, _> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
        wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
        let p = wallet.pay(&first, &f.trust, None, t(3000)).unwrap();
        a.accept(
            &p,
            &Context {
                trust: &f.trust,
                revocations: None,
                now: t(3000),
            },
        )
        .unwrap();
        a.create_request(Amount(420), eur(), None, t(3600), &mut rng)
            .unwrap();
        Merchant {
            cert: CertificateBytes::from_slice(&f.cert_a).unwrap(),
            store: a.into_store(),
            trust: f.trust.clone(),
            key_seed: [3; 32],
        }
    })
}

/// `Acceptor::accept` over arbitrary payment bytes against a fixed merchant: a refusal changes
/// nothing; an acceptance stores exactly one record and returns a receipt for that payment.
pub fn acceptor_accept(data: &[u8]) {
    let m = merchant();
    let mut a: Acceptor<MemStore<8192, 64>, _> =
        Acceptor::open(m.store.clone(), SigningKey::from_seed(&m.key_seed), &m.cert).unwrap();
    let open_before: Vec<_> = a.open_requests().copied().collect();
    let ctx = Context {
        trust: &m.trust,
        revocations: None,
        now: t(3650),
    };
    match a.accept(data, &ctx) {
        Err(_) => {
            assert_eq!(a.store().len(), m.store.len());
            assert_eq!(a.open_requests().copied().collect::<Vec<_>>(), open_before);
        }
        Ok(receipt) => {
            let r = decode_signed::<Receipt>(&receipt).unwrap();
            assert_eq!(r.payment_id, pid(data));
            r.verify(&SigningKey::from_seed(&m.key_seed).public_key())
                .unwrap();
            assert!(a.store().len() <= m.store.len() + 1);
        }
    }
}

/// The seed corpus of a target, generated from the conformance vector files: the messages of
/// the target's type (and all others, to reach the wrong-type paths), journals made of them,
/// and for the structure-aware settlement target, byte strings that pick across the pool.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let dir = crate::vectors_dir();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for path in names {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        for v in json["vectors"].as_array().into_iter().flatten() {
            if let (Some(ty), Some(h)) = (v["message"].as_str(), v["hex"].as_str())
                && let Ok(b) = hex::decode(h)
            {
                messages.push((ty.to_string(), b));
            }
        }
    }
    let of_type = |ty: &str| -> Vec<Vec<u8>> {
        messages
            .iter()
            .filter(|(t, _)| t == ty)
            .map(|(_, b)| b.clone())
            .collect()
    };
    match target {
        "acceptor_accept" => of_type("Payment"),
        "qr_single_frame" => messages
            .iter()
            .take(40)
            .map(|(_, b)| offpay_qr::frame::encode_single(b).into_bytes())
            .collect(),
        "qr_scanner" => messages
            .iter()
            .take(8)
            .map(|(_, b)| {
                let mut a = offpay_qr::QrConfig {
                    max_version: 5,
                    ..offpay_qr::QrConfig::default()
                }
                .animate(b)
                .unwrap();
                (0..4)
                    .map(|_| a.next_frame().unwrap().text().to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            })
            .collect(),
        "settlement_ingest" => (0u8..16)
            .map(|k| {
                (0..96u32)
                    .map(|i| (i * 37 + u32::from(k) * 11) as u8)
                    .collect()
            })
            .collect(),
        "journal_reopen" => {
            let mut out = Vec::new();
            for chunk in messages.chunks(6) {
                let mut file = store::JOURNAL_MAGIC.to_vec();
                for (_, m) in chunk {
                    let len4 = (m.len() as u32).to_le_bytes();
                    let mut h = crc32fast::Hasher::new();
                    h.update(&len4);
                    h.update(m);
                    file.extend_from_slice(&len4);
                    file.extend_from_slice(&h.finalize().to_le_bytes());
                    file.extend_from_slice(m);
                }
                out.push(file.clone());
                out.push(file[..file.len() - 3].to_vec());
            }
            out
        }
        "ble_reassembler" => messages
            .iter()
            .take(20)
            .map(|(_, b)| {
                let mut out = Vec::new();
                let mut c = offpay_ble::Chunker::new(b, 20);
                let mut buf = [0u8; 20];
                while let Some(n) = c.next_into(&mut buf) {
                    out.push(n as u8);
                    out.extend_from_slice(&buf[..n]);
                }
                out
            })
            .collect(),
        "ble_merchant_session" | "ble_customer_session" => {
            let g = ble_genuine();
            let side = if target == "ble_merchant_session" {
                &g.c2s
            } else {
                &g.s2c
            };
            let raw = {
                let mut out = vec![0u8];
                for c in side {
                    out.push(c.len() as u8);
                    out.extend_from_slice(c);
                }
                out
            };
            vec![
                raw,
                vec![1],
                vec![1, 0, 3, 1, 7, 2, 0, 0, 9],
                vec![1, 4, 1, 1, 0],
            ]
        }
        _ => messages.into_iter().map(|(_, b)| b).collect(),
    }
}

/// Splits fuzz data into chunks: each is a length byte then that many bytes.
fn length_prefixed(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let n = usize::from(n).min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

/// The QR single-frame decoder over arbitrary text: it decodes or refuses; what it decodes
/// re-encodes to the same text.
pub fn qr_single_frame(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = offpay_qr::frame::decode_single(text, 4096) {
        assert!(m.len() <= 4096);
        assert_eq!(offpay_qr::frame::encode_single(&m), text);
    }
}

/// The multi-frame Scanner fed arbitrary frame strings (split on newlines), mixed with
/// genuine frames of one message: it never panics, and whatever it completes is that message
/// (a forged frame can only be refused, never merged).
pub fn qr_scanner(data: &[u8]) {
    static FRAMES: OnceLock<(Vec<u8>, Vec<String>)> = OnceLock::new();
    let (message, genuine) = FRAMES.get_or_init(|| {
        let message: Vec<u8> = (0..900u32).map(|i| (i * 31 % 251) as u8).collect();
        let config = offpay_qr::QrConfig {
            max_version: 5,
            ..offpay_qr::QrConfig::default()
        };
        let mut a = config.animate(&message).unwrap();
        let frames = (0..a.fragment_count() * 2)
            .map(|_| a.next_frame().unwrap().text().to_string())
            .collect();
        (message, frames)
    });
    let mut scanner = offpay_qr::Scanner::new(4096);
    for (i, line) in data.split(|b| *b == b'\n').take(64).enumerate() {
        let Ok(text) = core::str::from_utf8(line) else {
            continue;
        };
        for t in [text, genuine[i % genuine.len()].as_str()] {
            if let Ok(offpay_qr::Progress::Complete(m)) = scanner.receive(t)
                && !t.starts_with(offpay_qr::frame::SINGLE_PREFIX)
            {
                assert_eq!(&m, message, "a forged frame changed the message");
                scanner.reset();
            }
        }
    }
}
