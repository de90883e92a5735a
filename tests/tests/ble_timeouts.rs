//! offpay-ble's time limits (SPEC §14.7) on the in-memory link's virtual clock: a silent
//! customer, a late approval, the whole-session limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ble_world;

use ble_world::*;
use offpay_ble::link::LinkConfig;
use offpay_ble::session::{Event, Timeouts};
use offpay_ble::{BleError, CustomerSession, MerchantSession};
use offpay_conformance::fixture::*;
use offpay_protocol::*;

/// SPEC §14.7: a customer that stays connected and goes silent — before its hello, after the
/// request (a phone put away mid-approval), after half of its payment's chunks — ends the
/// merchant's session by timeout at the stated time (virtual clock), the till stores nothing
/// new, and the next customer pays exactly once.
#[test]
fn a_silent_customer_times_out_at_the_stated_time_and_the_next_customer_pays() {
    let full = World::new(420).session(LinkConfig::mtu(23), 1).0;
    let hello = 50usize.div_ceil(19);
    let payment = full.chunks_c2s - hello;
    assert!(payment >= 4, "{full:?}");
    let limits = Timeouts::SPEC;
    for (silent_after, limit) in [
        (0, limits.idle),
        (1, limits.idle),
        (hello, limits.approval),
        (hello + payment / 2, limits.idle),
    ] {
        let mut w = World::new(420);
        let shop_before = (w.shop.payments().count(), w.shop.store().len());
        let (r, c, m) = w.session(
            LinkConfig {
                customer_silent_after: Some(silent_after),
                ..LinkConfig::mtu(23)
            },
            1,
        );
        assert_eq!(
            m.end,
            Some(Event::TimedOut),
            "silent after {silent_after}: {r:?}"
        );
        assert_eq!(c.end, None, "the silent customer never finished");
        assert_eq!(
            r.elapsed, limit,
            "silent after {silent_after}: the stated limit"
        );
        assert_eq!(
            (w.shop.payments().count(), w.shop.store().len()),
            shop_before,
            "the till stored nothing"
        );
        // The next customer (the same wallet, a new session) pays once.
        let (_, c, m) = w.session(LinkConfig::mtu(23), 2);
        let Some(Event::Paid(id)) = c.end else {
            panic!("silent after {silent_after}: next customer {c:?} / {m:?}");
        };
        assert_eq!(m.end, Some(Event::Accepted(id)));
        let (wallet_payments, receipts, shop_payments, _) = w.counts();
        assert_eq!((wallet_payments, receipts, shop_payments), (1, 1, 1));
        assert_eq!(w.wallet.remaining(eur(), w.now), Amount(5000 - 420));
    }
}

/// A person who approves after the customer's approval limit (approval − idle, SPEC §14.7)
/// is too late: the session times out and the wallet signs nothing.
#[test]
fn an_approval_after_the_limit_signs_nothing() {
    let mut w = World::new(420);
    let mut customer =
        CustomerSession::new(w.engagement.engagement(), &mut Fixture::rng(1)).unwrap();
    let mut merchant = MerchantSession::new(&w.engagement, &w.request).unwrap();
    let ctx = Context {
        trust: &w.f.trust,
        revocations: None,
        now: w.now,
    };
    let at = std::time::Duration::from_secs;
    merchant.start(at(0)).unwrap();
    customer.start(at(0)).unwrap();
    let mut buf = [0u8; 20];
    while let Some(n) = customer.poll_transmit(&mut buf) {
        merchant
            .handle_input(&buf[..n], at(0), &mut w.shop, &ctx)
            .unwrap();
    }
    while let Some(n) = merchant.poll_transmit(&mut buf) {
        customer
            .handle_input(&buf[..n], at(1), &mut w.wallet)
            .unwrap();
    }
    assert_eq!(customer.poll_event(), Some(Event::RequestShown));
    let limits = Timeouts::SPEC;
    // The customer gives up an idle limit before the merchant does.
    assert_eq!(
        customer.poll_timeout(),
        Some(at(1) + limits.approval - limits.idle)
    );
    assert_eq!(merchant.poll_timeout(), Some(at(0) + limits.approval));
    let late = at(1) + limits.approval - limits.idle;
    let e = customer
        .approve(&mut w.wallet, &w.f.trust, None, w.now, late)
        .unwrap_err();
    assert_eq!(e, BleError::TimedOut);
    assert_eq!(customer.end(), Some(Event::TimedOut));
    assert_eq!(
        w.counts(),
        (0, 0, 0, w.shop.store().len()),
        "nothing signed or stored"
    );
}

/// The whole-session limit holds even when every step keeps within its own.
#[test]
fn the_whole_session_limit_ends_a_session_that_keeps_every_step_limit() {
    let mut w = World::new(420);
    let mut customer =
        CustomerSession::new(w.engagement.engagement(), &mut Fixture::rng(1)).unwrap();
    let mut merchant = MerchantSession::new(&w.engagement, &w.request).unwrap();
    let limits = Timeouts {
        session: std::time::Duration::from_secs(15),
        ..Timeouts::SPEC
    };
    merchant.set_timeouts(limits);
    let ctx = Context {
        trust: &w.f.trust,
        revocations: None,
        now: w.now,
    };
    let at = std::time::Duration::from_secs;
    merchant.start(at(0)).unwrap();
    customer.start(at(0)).unwrap();
    let mut buf = [0u8; 20];
    // The hello arrives one chunk every 9 s: each within the idle limit. No timer fires: the
    // chunk that comes after the session limit is itself refused as too late.
    let mut t = 0;
    while let Some(n) = customer.poll_transmit(&mut buf) {
        assert_eq!(merchant.poll_timeout(), Some(at(t + 10).min(at(15))));
        t += 9;
        match merchant.handle_input(&buf[..n], at(t), &mut w.shop, &ctx) {
            Err(BleError::TimedOut) => break,
            r => r.unwrap(),
        }
    }
    assert_eq!(merchant.end(), Some(Event::TimedOut));
    assert_eq!(t, 18, "the third chunk came after the 15 s session limit");
    assert_eq!(w.shop.payments().count(), 0);
}
