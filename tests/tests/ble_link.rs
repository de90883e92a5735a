//! offpay-ble's session over the in-memory link: whole payments at MTU 23, 185 and 517; a cut
//! at every chunk boundary then a retry (exactly one payment on each side); refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ble_world;

use ble_world::*;
use offpay_ble::link::LinkConfig;
use offpay_ble::session::{Event, Party};
use offpay_ble::{BleError, CustomerSession, Engagement, MerchantEngagement, MerchantSession};
use offpay_conformance::fixture::*;
use offpay_protocol::*;

#[test]
fn a_whole_payment_at_mtu_23_185_and_517() {
    for mtu in [23u16, 185, 517] {
        let mut w = World::new(420);
        let (report, c, m) = w.session(LinkConfig::mtu(mtu), 1);
        let Some(Event::Paid(id)) = c.end else {
            panic!("MTU {mtu}: customer {c:?}, merchant {m:?}");
        };
        assert_eq!(m.end, Some(Event::Accepted(id)), "MTU {mtu}");
        assert_eq!((c.error, m.error), (None, None));
        assert_eq!(w.counts().0, 1);
        assert_eq!(w.counts().1, 1, "the wallet holds the receipt");
        assert_eq!(w.counts().2, 1);
        assert_eq!(w.wallet.remaining(eur(), w.now), Amount(5000 - 420));
        // Hello, request, payment, receipt: 1.5 round trips after the handshake.
        assert_eq!(report.legs, 4, "MTU {mtu}: {report:?}");
        assert!(report.round_trips_after_handshake() <= 2);
        assert!(!report.cut);
        // Every chunk fits the MTU.
        let max_chunk = usize::from(mtu) - 3;
        assert!(report.bytes_c2s <= report.chunks_c2s * (max_chunk + 3));
        // The payment the merchant stored verifies with offpay-protocol, and is the wallet's.
        let stored = w.shop.payments().next().unwrap();
        let p = stored.payment.clone();
        p.verify_holder(&p.voucher.holder_key).unwrap();
        assert_eq!(p.id(), id);
        assert_eq!(
            w.wallet.payments().next().unwrap().payment.bytes(),
            stored.payment.bytes()
        );
    }
}

#[test]
fn latency_counts_one_leg_per_direction_change() {
    let mut w = World::new(420);
    let config = LinkConfig {
        latency: std::time::Duration::from_millis(30),
        ..LinkConfig::mtu(185)
    };
    let (report, _, _) = w.session(config, 1);
    assert_eq!(report.elapsed, std::time::Duration::from_millis(30 * 4));
}

/// A cut at every chunk boundary of every message, then a new session over the same
/// engagement: each side ends with exactly one payment and the customer is charged once.
#[test]
fn a_cut_at_every_chunk_boundary_then_a_retry_gives_exactly_one_payment() {
    for mtu in [23u16, 185] {
        let total = {
            let mut w = World::new(420);
            let (r, _, _) = w.session(LinkConfig::mtu(mtu), 1);
            r.chunks_c2s + r.chunks_s2c
        };
        assert!(total >= 4);
        for cut in 0..total {
            let mut w = World::new(420);
            let (r, _, _) = w.session(
                LinkConfig {
                    cut_after: Some(cut),
                    ..LinkConfig::mtu(mtu)
                },
                1,
            );
            assert!(r.cut, "MTU {mtu}, cut {cut}");
            let (_, c, m) = w.session(LinkConfig::mtu(mtu), 2);
            let Some(Event::Paid(id)) = c.end else {
                panic!("MTU {mtu}, cut {cut}: retry gave {c:?} / {m:?}");
            };
            assert_eq!(m.end, Some(Event::Accepted(id)));
            let (wallet_payments, receipts, shop_payments, _) = w.counts();
            assert_eq!(
                (wallet_payments, receipts, shop_payments),
                (1, 1, 1),
                "MTU {mtu}, cut {cut}"
            );
            assert_eq!(w.wallet.remaining(eur(), w.now), Amount(5000 - 420));
        }
    }
}

#[test]
fn a_refused_payment_is_reported_to_both_sides_and_stores_nothing_at_the_merchant() {
    // More than the voucher's per-payment maximum: the wallet refuses before signing.
    let mut w = World::new(4_000);
    let (_, c, m) = w.session(LinkConfig::mtu(185), 1);
    let Some(Event::Refused {
        by: Party::Customer,
        code,
    }) = c.end
    else {
        panic!("{c:?}");
    };
    assert_eq!(Error::from_code(code).map(Error::name), Some("over-policy"));
    assert_eq!(
        m.end,
        Some(Event::Refused {
            by: Party::Customer,
            code
        })
    );
    assert_eq!(w.counts().0, 0);
    assert_eq!(w.counts().2, 0);
}

#[test]
fn a_declined_request_pays_nothing() {
    let mut w = World::new(420);
    let mut customer =
        CustomerSession::new(w.engagement.engagement(), &mut Fixture::rng(1)).unwrap();
    let mut merchant = MerchantSession::new(&w.engagement, &w.request).unwrap();
    merchant.start(Default::default()).unwrap();
    let ctx = Context {
        trust: &w.f.trust,
        revocations: None,
        now: w.now,
    };
    customer.start(Default::default()).unwrap();
    let mut buf = [0u8; 20];
    while let Some(n) = customer.poll_transmit(&mut buf) {
        merchant
            .handle_input(&buf[..n], Default::default(), &mut w.shop, &ctx)
            .unwrap();
    }
    while let Some(n) = merchant.poll_transmit(&mut buf) {
        customer
            .handle_input(&buf[..n], Default::default(), &mut w.wallet)
            .unwrap();
    }
    let request = customer.request().unwrap();
    assert_eq!(
        request,
        &w.request[..],
        "the customer sees the merchant's request"
    );
    customer.decline().unwrap();
    assert_eq!(
        customer.end(),
        Some(Event::Refused {
            by: Party::Customer,
            code: offpay_ble::session::DECLINED
        })
    );
    while let Some(n) = customer.poll_transmit(&mut buf) {
        merchant
            .handle_input(&buf[..n], Default::default(), &mut w.shop, &ctx)
            .unwrap();
    }
    assert_eq!(
        merchant.end(),
        Some(Event::Refused {
            by: Party::Customer,
            code: BleError::Declined.code()
        })
    );
    assert!(customer.is_finished() && merchant.is_finished());
    assert_eq!((w.counts().0, w.counts().2), (0, 0));
}

#[test]
fn engagement_bytes_round_trip_through_a_qr_single_frame() {
    let e = MerchantEngagement::generate(&mut Fixture::rng(1));
    let bytes = e.engagement().to_bytes();
    let text = offpay_qr::frame::encode_single(&bytes);
    let back = offpay_qr::frame::decode_single(&text, 64).unwrap();
    assert_eq!(Engagement::from_bytes(&back).unwrap(), *e.engagement());
    assert_eq!(
        Engagement::from_bytes(&back[..49]),
        Err(BleError::Engagement)
    );
    let mut other_version = back.clone();
    other_version[0] = 2;
    assert_eq!(
        Engagement::from_bytes(&other_version),
        Err(BleError::Engagement)
    );
}
