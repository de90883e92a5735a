//! offpay-ble over the in-memory link: chunks and bytes on air per payment, and CPU time per
//! session on each side, at ATT MTU 23, 185 and 247.
//!
//! `cargo bench -p offpay-conformance --bench ble`; the air figures are printed first.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use offpay_ble::link::{self, LinkConfig};
use offpay_ble::{CustomerSession, MerchantEngagement, MerchantSession};
use offpay_conformance::fixture::*;
use offpay_protocol::*;
use std::time::{Duration, Instant};

struct Side {
    wallet: Wallet<MemStore, SigningKey>,
    shop: Acceptor<MemStore, SigningKey>,
    request: Vec<u8>,
    engagement: MerchantEngagement,
}

fn fresh(f: &Fixture, seed: u8) -> Side {
    let mut wallet = Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
    wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
    let mut shop =
        Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
    let mut rng = Fixture::rng(seed);
    let request = shop
        .create_request(Amount(420), eur(), Some("bench"), t(3650), &mut rng)
        .unwrap()
        .to_vec();
    Side {
        wallet,
        shop,
        request,
        engagement: MerchantEngagement::generate(&mut rng),
    }
}

/// One whole session, stepping both sides by hand; returns the time spent in the customer's
/// and in the merchant's calls.
fn timed_session(f: &Fixture, s: &mut Side, mtu: u16) -> (Duration, Duration) {
    let now = t(3650);
    let ctx = Context {
        trust: &f.trust,
        revocations: None,
        now,
    };
    let mut buf = vec![0u8; usize::from(mtu)];
    let (mut tc, mut tm) = (Duration::ZERO, Duration::ZERO);
    let clock = Instant::now();
    let mut customer =
        CustomerSession::new(s.engagement.engagement(), &mut Fixture::rng(1)).unwrap();
    customer.set_mtu(mtu).unwrap();
    customer.start(Default::default()).unwrap();
    tc += clock.elapsed();
    let clock = Instant::now();
    let mut merchant = MerchantSession::new(&s.engagement, &s.request).unwrap();
    merchant.set_mtu(mtu).unwrap();
    merchant.start(Default::default()).unwrap();
    tm += clock.elapsed();
    while !(customer.is_finished() && merchant.is_finished()) {
        loop {
            let clock = Instant::now();
            let n = customer.poll_transmit(&mut buf);
            tc += clock.elapsed();
            let Some(n) = n else { break };
            let clock = Instant::now();
            merchant
                .handle_input(&buf[..n], Default::default(), &mut s.shop, &ctx)
                .unwrap();
            tm += clock.elapsed();
        }
        loop {
            let clock = Instant::now();
            let n = merchant.poll_transmit(&mut buf);
            tm += clock.elapsed();
            let Some(n) = n else { break };
            let clock = Instant::now();
            customer
                .handle_input(&buf[..n], Default::default(), &mut s.wallet)
                .unwrap();
            tc += clock.elapsed();
        }
        if customer.request().is_some() {
            let clock = Instant::now();
            customer
                .approve(&mut s.wallet, &f.trust, None, now, Default::default())
                .unwrap();
            tc += clock.elapsed();
        }
    }
    (tc, tm)
}

fn bench(c: &mut Criterion) {
    let f = Fixture::new();
    for mtu in [23u16, 185, 247] {
        let mut s = fresh(&f, 9);
        let ctx = Context {
            trust: &f.trust,
            revocations: None,
            now: t(3650),
        };
        let mut customer =
            CustomerSession::new(s.engagement.engagement(), &mut Fixture::rng(1)).unwrap();
        let mut merchant = MerchantSession::new(&s.engagement, &s.request).unwrap();
        let r = link::run(
            LinkConfig::mtu(mtu),
            &mut customer,
            &mut s.wallet,
            &f.trust,
            None,
            &mut merchant,
            &mut s.shop,
            &ctx,
            t(3650),
        )
        .unwrap();
        println!(
            "air: MTU {mtu}: {} chunks ({} c2s + {} s2c), {} bytes on air ({} c2s + {} s2c), {} legs",
            r.chunks_c2s + r.chunks_s2c,
            r.chunks_c2s,
            r.chunks_s2c,
            r.bytes_c2s + r.bytes_s2c,
            r.bytes_c2s,
            r.bytes_s2c,
            r.legs
        );
    }
    let mut g = c.benchmark_group("ble");
    for mtu in [23u16, 185, 247] {
        for (side, pick) in [("customer", 0usize), ("merchant", 1)] {
            g.bench_function(format!("session CPU, {side} side, MTU {mtu}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        let mut s = fresh(&f, (i % 200) as u8);
                        let (tc, tm) = timed_session(&f, &mut s, mtu);
                        total += if pick == 0 { tc } else { tm };
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
