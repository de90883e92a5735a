//! What a P-256 holder key costs (SPEC §7.1.1), against the cryptography it cannot avoid and
//! against an Ed25519 holder, in one run: the acceptor's decision on a payment, and settlement
//! per payment, where ECDSA has no batch verification. Ratios: `python3
//! scripts/p256-ratios.py` after `cargo bench -p offpay-protocol --bench holder_p256`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use offpay_protocol::acceptor::{OpenRequest, VoucherMemory, decide};
use offpay_protocol::codec::{SignedMessage, decode_signed};
use offpay_protocol::crypto::{self, HolderSigner, P256SigningKey};
use offpay_protocol::msg::Payment;
use offpay_protocol::msg::sync::ItemsWriter;
use offpay_protocol::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

const PAYMENTS: usize = 512;
const SHOP: MerchantId = MerchantId(*b"SHOP0001");

struct Run {
    trust: TrustStore<4>,
    cert: Vec<u8>,
    /// (the request each payment answers: nonce, amount), the payments, their receipts.
    payments: Vec<(Nonce, Amount, Vec<u8>, Vec<u8>)>,
}

/// `PAYMENTS` payments by a holder with key `K`, each accepted and receipted.
fn run<K: HolderSigner>(holder: K) -> Run {
    let issuer = Issuer::new(SigningKey::from_seed(&[1; 32]));
    let mut trust = TrustStore::<4>::new();
    trust
        .add(issuer.public_key(), Timestamp(0), Timestamp(1_000_000))
        .unwrap();
    let key = SigningKey::from_seed(&[3; 32]);
    let cert = issuer
        .certify_merchant(
            SHOP,
            key.public_key(),
            "Shop",
            Timestamp(0),
            Timestamp(1_000_000),
        )
        .unwrap()
        .to_vec();
    let mut shop: Acceptor<MemStore<{ 1 << 20 }, 4096>, _, 8, 1024> =
        Acceptor::open(MemStore::new(), key, &cert).unwrap();
    let mut wallet: Wallet<MemStore<{ 1 << 20 }, 4096>, K> =
        Wallet::open(MemStore::new(), holder).unwrap();
    let eur = Currency::parse("EUR").unwrap();
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let pre = wallet
        .preauth_request(
            b"card",
            Amount(1_000_000),
            eur,
            Nonce([4; 16]),
            Timestamp(10),
        )
        .unwrap();
    let terms = VoucherTerms {
        not_before: Timestamp(0),
        not_after: Timestamp(900_000),
        max_single: None,
        max_payments: PAYMENTS as u32,
    };
    let voucher = issuer.issue_voucher(&pre, terms, &mut rng).unwrap();
    wallet
        .install_voucher(&voucher, &trust, Timestamp(20))
        .unwrap();
    let now = Timestamp(100);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    let mut payments = Vec::new();
    for i in 0..PAYMENTS {
        let amount = Amount(100 + i as u64);
        let req = shop
            .create_request(amount, eur, None, now, &mut rng)
            .unwrap();
        let nonce = decode_signed::<msg::PaymentRequest<'_>>(&req)
            .unwrap()
            .nonce;
        let p = wallet.pay(&req, &trust, None, now).unwrap().to_vec();
        let r = shop.accept(&p, &ctx).unwrap().to_vec();
        payments.push((nonce, amount, p, r));
    }
    Run {
        trust,
        cert,
        payments,
    }
}

fn batch(records: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 20];
    let mut w = ItemsWriter::sync_batch(&mut buf, records.len()).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

fn bench(c: &mut Criterion) {
    let p256_key = P256SigningKey::from_bytes(&[2; 32]).unwrap();
    let ed_key = SigningKey::from_seed(&[2; 32]);
    let p256_run = run(&p256_key);
    let ed_run = run(&ed_key);
    let eur = Currency::parse("EUR").unwrap();

    // The floors: one holder signature verified by the crates themselves.
    let (_, _, p, _) = &p256_run.payments[0];
    let d = decode_signed::<Payment<'_>>(p).unwrap();
    let vk = crypto::p256_verifying_key(&p256_key.public_key()).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(d.signature()).unwrap();
    let signed = d.signed_bytes().to_vec();
    c.bench_function("p256/floor: p256 verify_prehash of a payment", |b| {
        b.iter(|| {
            let digest = crypto::holder_digest(
                <Payment<'_> as SignedMessage<'_>>::DOMAIN,
                black_box(&signed),
            );
            vk.verify_prehash(&digest, &sig).unwrap()
        })
    });
    let (_, _, e, _) = &ed_run.payments[0];
    let ed = decode_signed::<Payment<'_>>(e).unwrap();
    let ed_vk = ed25519_dalek::VerifyingKey::from_bytes(&ed_key.public_key().0).unwrap();
    let ed_sig = ed25519_dalek::Signature::from_bytes(ed.signature());
    let mut ed_input = <Payment<'_> as SignedMessage<'_>>::DOMAIN.to_vec();
    ed_input.extend_from_slice(ed.signed_bytes());
    c.bench_function("p256/floor: ed25519 verify_strict of a payment", |b| {
        b.iter(|| ed_vk.verify_strict(black_box(&ed_input), &ed_sig).unwrap())
    });

    // The acceptor's decision on a first payment (voucher verified, issuer key Ed25519).
    for (name, run) in [("P-256", &p256_run), ("Ed25519", &ed_run)] {
        let (nonce, amount, p, _) = &run.payments[0];
        let open = OpenRequest {
            nonce: *nonce,
            amount: *amount,
            currency: eur,
        };
        let ctx = Context {
            trust: &run.trust,
            revocations: None,
            now: Timestamp(100),
        };
        let memory = VoucherMemory::<8>::default();
        c.bench_function(&format!("p256/accept decision, {name} holder"), |b| {
            b.iter(|| {
                let payment = decode_signed::<Payment<'_>>(black_box(p)).unwrap();
                decide(&ctx, SHOP, Some(&open), &memory, &payment).unwrap()
            })
        });
    }

    // Settlement of every payment with its receipt, per batch of PAYMENTS.
    let mut g = c.benchmark_group(format!("p256/settlement of {PAYMENTS} payments + receipts"));
    g.sample_size(10);
    for (name, run) in [("P-256", &p256_run), ("Ed25519", &ed_run)] {
        let records: Vec<&[u8]> = run
            .payments
            .iter()
            .flat_map(|(_, _, p, r)| [&p[..], &r[..]])
            .collect();
        let b_bytes = batch(&records);
        g.bench_function(format!("{name} holder"), |b| {
            b.iter_batched(
                || {
                    let mut s = Settlement::<4>::new(run.trust.clone(), DEFAULT_GRACE_SECS);
                    s.register_merchant(&run.cert).unwrap();
                    s
                },
                |mut s| {
                    let out = s.ingest(&b_bytes, Timestamp(200)).unwrap();
                    assert_eq!(out.entries.len(), 2 * PAYMENTS);
                    out
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
