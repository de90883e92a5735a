//! Paying over BLE with the SDK's sessions: chunks moved between a wallet's and a till's
//! session as a GATT link would, at the smallest and a common MTU.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{eur, till, wallet, world};
use offpay_sdk::{
    BleOutcome, Config, CustomerWallet, MerchantTill, TillBleSession, Timeouts, WalletBleSession,
};
use std::time::Duration;

/// Moves chunks both ways until neither side has anything to send; the customer approves
/// (or declines) the request when it arrives. `tamper` may change a chunk in flight.
fn run(
    wallet: &CustomerWallet,
    w: &mut WalletBleSession,
    till: &MerchantTill,
    t: &mut TillBleSession,
    approve: bool,
    mut tamper: impl FnMut(usize, &mut Vec<u8>),
) {
    w.start().unwrap();
    let mut n = 0;
    for _ in 0..1000 {
        let mut moved = false;
        while let Some(mut c) = w.poll_transmit() {
            tamper(n, &mut c);
            n += 1;
            moved = true;
            if t.receive(till, &c).is_err() {
                return;
            }
        }
        while let Some(c) = t.poll_transmit() {
            moved = true;
            if w.receive(wallet, &c).is_err() {
                return;
            }
        }
        if w.pending_request().is_some() {
            moved = true;
            if approve {
                w.approve(wallet).unwrap();
            } else {
                w.decline().unwrap();
            }
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn a_payment_over_ble_at_mtu_23_and_185() {
    let world = world();
    let alice = wallet(&world, "alice", 10_000);
    let shop = till(&world, &world.root.join("shop"), "SHOP", Config::default());
    for (mtu, amount) in [(23u16, "4.20"), (185, "1.30")] {
        let mut t = shop.ble_session(eur(amount), Some("over BLE")).unwrap();
        let mut w = alice.ble_session(&t.engagement()).unwrap();
        assert_eq!(w.service_uuid(), t.service_uuid());
        t.set_mtu(mtu).unwrap();
        w.set_mtu(mtu).unwrap();
        run(&alice, &mut w, &shop, &mut t, true, |_, _| {});
        let Some(BleOutcome::Completed { payment_id }) = w.outcome() else {
            panic!("{:?}", w.outcome());
        };
        assert_eq!(
            t.outcome(),
            Some(BleOutcome::Completed {
                payment_id: payment_id.clone()
            })
        );
        assert!(w.is_finished() && t.is_finished());
        let paid = alice.fetch_offline_payments();
        let p = paid.iter().find(|p| p.payment_id == payment_id).unwrap();
        assert!(p.receipt.is_some(), "the receipt came back over BLE");
        assert_eq!(p.amount, eur(amount));
        assert!(
            shop.fetch_offline_payments()
                .iter()
                .any(|p| p.payment_id == payment_id)
        );
    }
    assert_eq!(
        alice.balances().unwrap()[0].remaining,
        eur("44.50"),
        "50.00 - 4.20 - 1.30"
    );
}

#[test]
fn a_declined_or_broken_session_pays_and_stores_nothing() {
    let world = world();
    let alice = wallet(&world, "alice", 10_000);
    let shop = till(&world, &world.root.join("shop"), "SHOP", Config::default());

    let mut t = shop.ble_session(eur("9.99"), None).unwrap();
    let mut w = alice.ble_session(&t.engagement()).unwrap();
    run(&alice, &mut w, &shop, &mut t, false, |_, _| {});
    assert!(matches!(
        w.outcome(),
        Some(BleOutcome::Refused { code: 710, .. })
    ));
    assert!(matches!(
        t.outcome(),
        Some(BleOutcome::RefusedByPeer { code: 710, .. })
    ));
    assert!(alice.fetch_offline_payments().is_empty());
    assert!(shop.fetch_offline_payments().is_empty());

    // A payment chunk changed in flight: the till's session fails, nothing is accepted.
    let mut t = shop.ble_session(eur("2.00"), None).unwrap();
    let mut w = alice.ble_session(&t.engagement()).unwrap();
    t.set_mtu(23).unwrap();
    w.set_mtu(23).unwrap();
    run(&alice, &mut w, &shop, &mut t, true, |i, c| {
        if i == 6 {
            let last = c.len() - 1;
            c[last] ^= 1;
        }
    });
    assert!(matches!(
        t.outcome(),
        Some(BleOutcome::Failed { code: 703, .. })
    ));
    assert!(shop.fetch_offline_payments().is_empty());

    // Engagement bytes that are not one are refused before anything is sent.
    assert!(alice.ble_session(b"not an engagement").is_err());
}

/// A customer who connects and goes silent: the till's session times out at its limit with
/// nothing stored, and the next customer pays. (Limits shortened to keep the test quick.)
#[test]
fn a_silent_customer_times_out_and_the_next_one_pays() {
    let world = world();
    let alice = wallet(&world, "alice", 10_000);
    let shop = till(&world, &world.root.join("shop"), "SHOP", Config::default());
    let before = shop.fetch_offline_payments().len();
    let mut t = shop.ble_session(eur("2.00"), Some("silent")).unwrap();
    t.set_timeouts(Timeouts {
        idle: Duration::from_millis(200),
        ..Timeouts::SPEC
    });
    t.start().unwrap();
    let left = t.next_timeout().expect("a running session has a deadline");
    assert!(left <= Duration::from_millis(200), "{left:?}");
    assert_eq!(t.handle_timeout(), None, "not yet");
    std::thread::sleep(left + Duration::from_millis(20));
    assert_eq!(t.handle_timeout(), Some(BleOutcome::TimedOut));
    assert_eq!(t.next_timeout(), None, "the session is over");
    assert_eq!(
        shop.fetch_offline_payments().len(),
        before,
        "nothing stored"
    );
    // The next customer, a new session for the same request.
    t.reconnect().unwrap();
    let mut w = alice.ble_session(&t.engagement()).unwrap();
    run(&alice, &mut w, &shop, &mut t, true, |_, _| {});
    assert!(
        matches!(w.outcome(), Some(BleOutcome::Completed { .. })),
        "{:?}",
        w.outcome()
    );
    assert_eq!(shop.fetch_offline_payments().len(), before + 1);
}
