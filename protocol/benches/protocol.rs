//! The cost of each operation next to the cryptography it cannot avoid.
//!
//! Run: `cargo bench -p offpay-protocol --bench protocol`; ratios: `python3 scripts/bench-ratios.py`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use offpay_protocol::acceptor::{VoucherMemory, decide};
use offpay_protocol::codec::{Message, SignedMessage};
use offpay_protocol::msg::sync::ItemsWriter;
use offpay_protocol::msg::*;
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

struct World {
    issuer: Issuer,
    trust: TrustStore<4>,
    cert: Vec<u8>,
    eur: Currency,
}

fn world() -> World {
    let issuer = Issuer::new(SigningKey::from_seed(&[1; 32]));
    let mut trust = TrustStore::new();
    trust
        .add(issuer.public_key(), Timestamp(0), Timestamp(2_000_000_000))
        .unwrap();
    let cert = issuer
        .certify_merchant(
            MerchantId(*b"SHOP0001"),
            SigningKey::from_seed(&[3; 32]).public_key(),
            "Shop",
            Timestamp(0),
            Timestamp(2_000_000_000),
        )
        .unwrap()
        .to_vec();
    World {
        issuer,
        trust,
        cert,
        eur: Currency::parse("EUR").unwrap(),
    }
}

const NOW: Timestamp = Timestamp(1_000_000);

fn voucher(w: &World, holder: &SigningKey, id: u8) -> Vec<u8> {
    let wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder).unwrap();
    let pre = wallet
        .preauth_request(b"card", Amount(1_000_000), w.eur, Nonce([id; 16]), NOW)
        .unwrap();
    let terms = VoucherTerms {
        not_before: Timestamp(0),
        not_after: Timestamp(1_900_000_000),
        max_single: None,
        max_payments: 1000,
    };
    w.issuer
        .issue_voucher(&pre, terms, &mut ChaCha20Rng::from_seed([id; 32]))
        .unwrap()
        .to_vec()
}

/// Small stores: a fresh one per iteration holds the few records a benchmark writes.
type Small = MemStore<4096, 16>;
type Shop = Acceptor<Small, SigningKey, 8, 256>;
type Customer = Wallet<Small, SigningKey>;

fn customer(w: &World, voucher: &[u8]) -> Customer {
    let mut wallet: Customer =
        Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
    wallet.install_voucher(voucher, &w.trust, NOW).unwrap();
    wallet
}

/// A fresh merchant with one open request, and a fresh wallet's payment for it.
fn shop_and_payment(w: &World, voucher: &[u8], rng: &mut ChaCha20Rng) -> (Shop, Customer, Vec<u8>) {
    let mut shop: Shop =
        Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &w.cert).unwrap();
    let mut wallet = customer(w, voucher);
    let req = shop
        .create_request(Amount(420), w.eur, None, NOW, rng)
        .unwrap();
    let pay = wallet.pay(&req, &w.trust, None, NOW).unwrap().to_vec();
    (shop, wallet, pay)
}

/// The floor, measured at the start of the run ("floor/") and again at its end ("floor-end/"):
/// on a shared machine the two differ when something else took the processor, and
/// bench-ratios.py refuses a run whose two floors disagree.
fn crypto_floor(c: &mut Criterion) {
    floor(c, "floor");
}

fn crypto_floor_again(c: &mut Criterion) {
    floor(c, "floor-end");
}

fn floor(c: &mut Criterion, prefix: &str) {
    let key = SigningKey::from_seed(&[2; 32]);
    let w = world();
    let v = voucher(&w, &key, 1);
    let input = [<Voucher as SignedMessage<'_>>::DOMAIN, &v[..v.len() - 64]].concat();
    let sig = ed25519_dalek::Signature::from_slice(&v[v.len() - 64..]).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&w.issuer.public_key().0).unwrap();
    c.bench_function(&format!("{prefix}/ed25519 verify_strict"), |b| {
        b.iter(|| {
            vk.verify_strict(black_box(&input), black_box(&sig))
                .unwrap()
        })
    });
    // Signing as cheaply as ed25519-dalek can: the secret already expanded, as our
    // `SigningKey` keeps it. The receipt signature an accept cannot avoid.
    let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(&sk.to_bytes());
    let sk_public = sk.verifying_key();
    c.bench_function(&format!("{prefix}/ed25519 sign"), |b| {
        b.iter(|| {
            ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(
                &expanded,
                black_box(&input),
                &sk_public,
            )
        })
    });
    // Settlement verifies each ingest's payments in one batch and its receipts in another:
    // about 500 signatures each in the settlement benchmark below, so the floor is a batch of
    // that size (per-signature cost falls with batch size).
    const BATCH: usize = 512;
    let mut g = c.benchmark_group(format!("{prefix}/ed25519 batch of 512"));
    g.throughput(Throughput::Elements(BATCH as u64));
    let keys: Vec<_> = (0..BATCH as u32)
        .map(|i| {
            let mut s = [0u8; 32];
            s[..4].copy_from_slice(&i.to_le_bytes());
            ed25519_dalek::SigningKey::from_bytes(&s)
        })
        .collect();
    let msgs: Vec<Vec<u8>> = (0..BATCH as u32)
        .map(|i| [input.as_slice(), &i.to_le_bytes()].concat())
        .collect();
    use ed25519_dalek::Signer as _;
    let sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let vks: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    g.bench_function("verify_batch", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&refs), &sigs, &vks).unwrap())
    });
    g.finish();
}

fn acceptor(c: &mut Criterion) {
    let w = world();
    let holder = SigningKey::from_seed(&[2; 32]);
    let v = voucher(&w, &holder, 2);
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let ctx = Context {
        trust: &w.trust,
        revocations: None,
        now: NOW,
    };

    // The pure decision, voucher not yet verified / already verified.
    let (shop, _, pay) = shop_and_payment(&w, &v, &mut rng);
    let open = *shop.open_requests().next().unwrap();
    let p = decode_signed::<Payment<'_>>(&pay).unwrap();
    let cold = VoucherMemory::<256>::default();
    let mut warm = VoucherMemory::<256>::default();
    warm.remember_voucher(offpay_protocol::crypto::sha256(p.voucher.bytes()));
    c.bench_function("accept/decide", |b| {
        b.iter(|| {
            decide(
                &ctx,
                shop.merchant_id(),
                Some(&open),
                &cold,
                black_box(&decode_signed::<Payment<'_>>(black_box(&pay)).unwrap()),
            )
            .unwrap()
        })
    });
    c.bench_function("accept/decide, voucher cached", |b| {
        b.iter(|| {
            decide(
                &ctx,
                shop.merchant_id(),
                Some(&open),
                &warm,
                black_box(&decode_signed::<Payment<'_>>(black_box(&pay)).unwrap()),
            )
            .unwrap()
        })
    });

    // The same decision with precomputed tables for the issuer's key (SPEC §7.1).
    let mut fast_trust = w.trust.clone();
    let tables: &'static mut FixedKeyTables = Box::leak(Box::new(FixedKeyTables::new()));
    tables.build(&w.issuer.public_key()).unwrap();
    fast_trust.attach_tables(tables).unwrap();
    let fast_ctx = Context {
        trust: &fast_trust,
        revocations: None,
        now: NOW,
    };
    c.bench_function("accept/decide, issuer tables", |b| {
        b.iter(|| {
            decide(
                &fast_ctx,
                shop.merchant_id(),
                Some(&open),
                &cold,
                black_box(&decode_signed::<Payment<'_>>(black_box(&pay)).unwrap()),
            )
            .unwrap()
        })
    });

    // The whole accept: decision, receipt signature, journal append. `iter_batched_ref`: the
    // fresh till and wallet are neither moved into nor dropped inside the timed routine.
    c.bench_function("accept/accept (decide + sign receipt + store)", |b| {
        b.iter_batched_ref(
            || shop_and_payment(&w, &v, &mut rng),
            |(shop, _, pay)| shop.accept(pay, &ctx).unwrap(),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("accept/accept, issuer tables", |b| {
        b.iter_batched_ref(
            || shop_and_payment(&w, &v, &mut rng),
            |(shop, _, pay)| shop.accept(pay, &fast_ctx).unwrap(),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("accept/accept, voucher cached", |b| {
        b.iter_batched_ref(
            || {
                let (mut shop, mut wallet, first) = shop_and_payment(&w, &v, &mut rng);
                shop.accept(&first, &ctx).unwrap();
                let req = shop
                    .create_request(Amount(420), w.eur, None, NOW, &mut rng)
                    .unwrap();
                let pay = wallet.pay(&req, &w.trust, None, NOW).unwrap().to_vec();
                (shop, pay)
            },
            |(shop, pay)| shop.accept(pay, &ctx).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

fn wallet_pay(c: &mut Criterion) {
    let w = world();
    let holder = SigningKey::from_seed(&[2; 32]);
    let v = voucher(&w, &holder, 3);
    let mut shop: Shop =
        Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &w.cert).unwrap();
    let req = shop
        .create_request(
            Amount(420),
            w.eur,
            None,
            NOW,
            &mut ChaCha20Rng::from_seed([1; 32]),
        )
        .unwrap();
    c.bench_function(
        "wallet/pay (verify certificate and request, sign, store)",
        |b| {
            b.iter_batched_ref(
                || customer(&w, &v),
                |wallet| wallet.pay(&req, &w.trust, None, NOW).unwrap(),
                BatchSize::SmallInput,
            )
        },
    );
}

/// 10,000 payments with their receipts, as merchants would sync them: 100 vouchers of 100
/// payments each, in batches of 1,000 records.
fn ten_thousand(w: &World) -> Vec<Vec<u8>> {
    let holder = SigningKey::from_seed(&[2; 32]);
    let merchant = SigningKey::from_seed(&[3; 32]);
    let mut records = Vec::new();
    for vi in 0..100u8 {
        let vb = voucher(w, &holder, vi.wrapping_add(10));
        let mut prev = LinkId::default();
        for seq in 1..=100u32 {
            let p = Payment {
                voucher: decode_signed::<Voucher>(&vb).unwrap(),
                seq,
                amount: Amount(100),
                cumulative: Amount(100 * u64::from(seq)),
                prev,
                merchant_id: MerchantId(*b"SHOP0001"),
                request_nonce: Nonce([seq as u8; 16]),
                created_at: NOW,
            };
            let mut buf = vec![0u8; 400];
            let n = codec::encode_signed(&p, &holder, &mut buf).unwrap();
            buf.truncate(n);
            let id = PaymentId(offpay_protocol::crypto::sha256(&buf));
            prev = id.link();
            let mut rb = vec![0u8; 200];
            let rn = codec::encode_signed(
                &Receipt {
                    payment_id: id,
                    merchant_id: MerchantId(*b"SHOP0001"),
                    accepted_at: NOW,
                },
                &merchant,
                &mut rb,
            )
            .unwrap();
            rb.truncate(rn);
            records.push(buf);
            records.push(rb);
        }
    }
    records
        .chunks(1000)
        .map(|chunk| {
            let mut buf = vec![0u8; 512 * 1024];
            let mut w = ItemsWriter::sync_batch(&mut buf, chunk.len()).unwrap();
            for r in chunk {
                w.push(r).unwrap();
            }
            let n = w.finish().unwrap();
            buf.truncate(n);
            buf
        })
        .collect()
}

fn settlement(c: &mut Criterion) {
    let w = world();
    let batches = ten_thousand(&w);
    let mut g = c.benchmark_group("settlement/ingest 10,000 payments + receipts");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    for batch_verify in [true, false] {
        let name = if batch_verify {
            "batch verification"
        } else {
            "one by one"
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut s = Settlement::new(w.trust.clone(), settlement::DEFAULT_GRACE_SECS);
                    s.register_merchant(&w.cert).unwrap();
                    s.set_batch_verification(batch_verify);
                    s
                },
                |mut s| {
                    for b in &batches {
                        let r = s.ingest(b, NOW).unwrap();
                        assert!(r.entries.iter().all(|e| e.outcome == Outcome::Credited));
                    }
                    assert_eq!(s.payment_count(), 10_000);
                    s
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// A signer that hands back a signature it was given: encoding measured without signing.
struct Replay([u8; 64]);

impl Signer for Replay {
    fn public_key(&self) -> PublicKey {
        PublicKey([0; 32])
    }
    fn sign(&self, _: &[u8], _: &[u8]) -> Result<[u8; 64], EncodeError> {
        Ok(self.0)
    }
}

/// Decode and encode of one signed message type, on a conformance vector's bytes. Encoding
/// re-encodes the decoded value with its own signature (no signing), and must give back the
/// vector's bytes exactly.
fn codec_signed<'a, T: SignedMessage<'a>>(c: &mut Criterion, name: &str, bytes: &'a [u8]) {
    let decoded = decode_signed::<T>(bytes).unwrap();
    let signer = Replay(*decoded.signature());
    let mut buf = vec![0u8; T::MAX_LEN];
    let n = codec::encode_signed(decoded.value(), &signer, &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        bytes,
        "{name}: re-encoding differs from the vector"
    );
    c.bench_function(&format!("codec/decode {name}"), |b| {
        b.iter(|| decode_signed::<T>(black_box(bytes)).unwrap())
    });
    c.bench_function(&format!("codec/encode {name}"), |b| {
        b.iter(|| codec::encode_signed(black_box(decoded.value()), &signer, &mut buf).unwrap())
    });
}

/// As [`codec_signed`], for the unsigned messages.
fn codec_unsigned<'a, T: Message<'a>>(c: &mut Criterion, name: &str, bytes: &'a [u8]) {
    let decoded = decode_unsigned::<T>(bytes).unwrap();
    let mut buf = vec![0u8; bytes.len()];
    let n = codec::encode_unsigned(&decoded, &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        bytes,
        "{name}: re-encoding differs from the vector"
    );
    c.bench_function(&format!("codec/decode {name}"), |b| {
        b.iter(|| decode_unsigned::<T>(black_box(bytes)).unwrap())
    });
    c.bench_function(&format!("codec/encode {name}"), |b| {
        b.iter(|| codec::encode_unsigned(black_box(&decoded), &mut buf).unwrap())
    });
}

/// Every message type of SPEC §5, from the conformance vectors (tests/vectors/messages.json).
fn codec(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/messages.json"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for v in json["vectors"].as_array().unwrap() {
        let message = v["message"].as_str().unwrap();
        if v["expect"] != "valid" || !seen.insert(message.to_string()) {
            continue;
        }
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let ty = MessageType::of(&bytes).unwrap();
        assert_eq!(ty.name(), message);
        match ty {
            MessageType::PreAuthRequest => codec_signed::<PreAuthRequest>(c, message, &bytes),
            MessageType::Voucher => codec_signed::<Voucher>(c, message, &bytes),
            MessageType::MerchantCertificate => {
                codec_signed::<MerchantCertificate>(c, message, &bytes)
            }
            MessageType::PaymentRequest => codec_signed::<PaymentRequest>(c, message, &bytes),
            MessageType::Payment => codec_signed::<Payment>(c, message, &bytes),
            MessageType::Receipt => codec_signed::<Receipt>(c, message, &bytes),
            MessageType::RevocationList => codec_signed::<RevocationList>(c, message, &bytes),
            MessageType::SyncBatch => codec_unsigned::<SyncBatch>(c, message, &bytes),
            MessageType::SyncReport => codec_signed::<SyncReport>(c, message, &bytes),
            MessageType::FraudProof => codec_unsigned::<FraudProof>(c, message, &bytes),
            other => panic!("no benchmark for {other:?}"),
        }
    }
    assert_eq!(
        seen.len(),
        MessageType::ALL.len(),
        "a message type has no vector"
    );

    // Encoding with the signature, for the two messages signed offline at every payment.
    let w = world();
    let holder = SigningKey::from_seed(&[2; 32]);
    let v = voucher(&w, &holder, 4);
    let (_, _, pay) = shop_and_payment(&w, &v, &mut ChaCha20Rng::from_seed([9; 32]));
    let p = decode_signed::<Payment<'_>>(&pay).unwrap();
    let mut buf = [0u8; 400];
    c.bench_function("codec/encode + sign Payment", |b| {
        b.iter(|| codec::encode_signed(black_box(p.value()), &holder, &mut buf).unwrap())
    });
    let receipt = Receipt {
        payment_id: p.id(),
        merchant_id: p.merchant_id,
        accepted_at: NOW,
    };
    c.bench_function("codec/encode + sign Receipt", |b| {
        b.iter(|| codec::encode_signed(black_box(&receipt), &holder, &mut buf).unwrap())
    });
}

criterion_group!(
    benches,
    crypto_floor,
    acceptor,
    wallet_pay,
    settlement,
    codec,
    crypto_floor_again
);
criterion_main!(benches);
