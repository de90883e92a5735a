//! The service against the in-memory `Settlement` of offpay-protocol: the same random streams
//! of batches (honest chains, clones, duplicates, both sides, lost receipts, late syncs) give
//! identical reports, credits and proofs; and after every step the ledger's money balances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;
use common::*;
use offpay_protocol::msg::{SyncBatch, SyncReport};
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::BTreeMap;

fn batch_of(make: impl FnOnce(&mut [u8]) -> Result<usize, Error>) -> Vec<u8> {
    let mut buf = vec![0u8; <SyncBatch<'_> as codec::Message<'_>>::MAX_LEN];
    let n = make(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn run(backend: Backend, seed: u64, steps: usize, seen: &mut BTreeMap<String, usize>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let w = World::on(backend);
    let mut reference = Settlement::<4>::new(w.trust.clone(), DEFAULT_GRACE_SECS);
    let names: [&[u8; 8]; 3] = [b"MERCH-01", b"MERCH-02", b"MERCH-03"];
    let mut tills: Vec<Till> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let cert = w.certify(n, "Shop", 40 + i as u8);
        reference.register_merchant(&cert).unwrap();
        tills.push(
            Acceptor::open(
                common::Store::new(),
                SigningKey::from_seed(&[40 + i as u8; 32]),
                &cert,
            )
            .unwrap(),
        );
    }
    let (ins, cred) = w.instrument("EUR", 100_000);
    let mut phones: Vec<Phone> = Vec::new();
    for p in 0..3u8 {
        let mut phone = w.phone(60 + p);
        w.preauthorize(&mut phone, &ins, &cred, 2_000 + 500 * u64::from(p), p)
            .unwrap();
        phones.push(phone);
    }
    // A clone of phone 0, made after its voucher was installed.
    let clone = Wallet::open(phones[0].store().clone(), SigningKey::from_seed(&[60; 32])).unwrap();
    phones.push(clone);
    check_funds(|q| w.scalar(q));
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut credits: BTreeMap<MerchantId, u64> = BTreeMap::new();
    for _ in 0..steps {
        let now = w.now();
        match rng.next_u32() % 10 {
            0..=4 => {
                // A payment; sometimes its receipt never reaches the phone.
                let p = (rng.next_u32() % 4) as usize;
                let t = (rng.next_u32() % 3) as usize;
                let amount = 1 + u64::from(rng.next_u32() % 400);
                let req = tills[t]
                    .create_request(Amount(amount), eur(), None, now, &mut rng)
                    .unwrap();
                let Ok(payment) = phones[p].pay(&req, &w.trust, None, now) else {
                    continue;
                };
                let ctx = Context {
                    trust: &w.trust,
                    revocations: None,
                    now,
                };
                if let Ok(receipt) = tills[t].accept(&payment, &ctx)
                    && rng.next_u32() % 4 != 0
                {
                    phones[p].receive_receipt(&receipt).unwrap();
                }
            }
            5..=8 => {
                // A device syncs, or an old batch is sent again.
                let who = rng.next_u32() % 8;
                let batch = match who {
                    0..=3 => batch_of(|b| phones[who as usize].sync_batch(b)),
                    4..=6 => batch_of(|b| tills[(who - 4) as usize].sync_batch(b)),
                    // An old batch again, sometimes with its last signature broken.
                    _ if !sent.is_empty() => {
                        let mut b = sent[(rng.next_u32() as usize) % sent.len()].clone();
                        if rng.next_u32() % 2 == 0 && b.len() > 8 {
                            let i = b.len() - 1 - (rng.next_u32() % 8) as usize;
                            b[i] ^= 0x40;
                        }
                        b
                    }
                    _ => continue,
                };
                let report = w.public.sync(&batch).unwrap();
                let expected = reference.ingest(&batch, now).unwrap();
                let r = decode_signed::<SyncReport<'_>>(&report).unwrap();
                let got: Vec<_> = r.entries().collect();
                for e in &got {
                    let name = format!("{:?}", e.outcome);
                    *seen
                        .entry(name.split('(').next().unwrap_or("").to_string())
                        .or_default() += 1;
                }
                assert_eq!(got, expected.entries, "seed {seed}: report entries differ");
                let proofs: Vec<&[u8]> = r.proofs().collect();
                assert_eq!(
                    proofs.len(),
                    expected.proofs.len(),
                    "seed {seed}: proofs differ"
                );
                for (a, b) in proofs.iter().zip(&expected.proofs) {
                    assert_eq!(a, &b.as_slice());
                }
                match who {
                    0..=3 => phones[who as usize]
                        .apply_report(&report, &w.trust, now)
                        .map(|_| ())
                        .unwrap(),
                    4..=6 => tills[(who - 4) as usize]
                        .apply_report(&report, &w.trust, now)
                        .map(|_| ())
                        .unwrap(),
                    _ => {}
                }
                sent.push(batch);
                check_funds(|q| w.scalar(q));
            }
            // Time passes: within a day, or (rarely) past every voucher's window and grace.
            _ if rng.next_u32() % 8 == 0 => w.advance(15 * 86_400),
            _ => w.advance(1 + rng.next_u32() % 86_400),
        }
    }
    for (m, c, a) in reference.credits() {
        assert_eq!(c, eur());
        credits.insert(m, a.0);
    }
    let service: BTreeMap<MerchantId, u64> = w
        .admin
        .credits()
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                offpay_issuer::api::parse_merchant(&c.merchant_id).unwrap(),
                c.amount_minor,
            )
        })
        .collect();
    assert_eq!(service, credits, "seed {seed}: credits differ");
    let mut mine: Vec<Vec<u8>> = w
        .admin
        .fraud()
        .unwrap()
        .iter()
        .map(|p| hex::decode(&p.proof).unwrap())
        .collect();
    let mut theirs = reference.proofs().to_vec();
    mine.sort();
    theirs.sort();
    assert_eq!(mine, theirs, "seed {seed}: proofs differ");
    for v in reference.vouchers() {
        let s = w
            .admin
            .vouchers()
            .unwrap()
            .into_iter()
            .find(|s| s.voucher_id == hex::encode(v.id.0))
            .unwrap();
        assert_eq!(
            (s.credited_minor, s.fraud),
            (v.credited.0, v.fraud),
            "seed {seed}"
        );
    }
    // Closing after every window: the service releases by the same rule.
    w.advance(30 * 86_400);
    let closed = w.admin.close_expired().unwrap();
    for v in reference.close_expired(w.now()) {
        let s = closed
            .closed
            .iter()
            .find(|s| s.voucher_id == hex::encode(v.id.0))
            .unwrap();
        assert_eq!(s.released_minor, v.released.map(|a| a.0));
    }
    check_funds(|q| w.scalar(q));
    let i = w.admin.instrument(&ins).unwrap();
    assert_eq!(i.reserved_minor, 0);
    assert_eq!(i.funded_minor, 100_000);
}

on_both_backends! {
    fn the_service_settles_as_the_reference_does(backend: Backend) {
        let mut seen = BTreeMap::new();
        for seed in 0..6 {
            run(backend, seed, 150, &mut seen);
        }
        eprintln!("outcomes compared: {seen:?}");
        // The streams reach every outcome, so each path was compared.
        for o in ["Credited", "Pending", "Duplicate", "Conflict", "Rejected"] {
            assert!(
                seen.get(o).copied().unwrap_or(0) > 0,
                "no {o} outcome: {seen:?}"
            );
        }
    }
}
