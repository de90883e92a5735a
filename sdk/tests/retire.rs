//! A wallet that lives through many vouchers (SPEC §8.1.1), against a live issuer: 100
//! pre-authorizations in a row, each spent and synced, in a wallet of 8 slots.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

mod common;

use common::{eur, till, world};
use offpay_sdk::{Config, CustomerWallet};

#[test]
fn a_wallet_pre_authorizes_spends_and_retires_100_vouchers_in_a_row() {
    let world = world();
    let card = world.admin.create_instrument("EUR", None).unwrap();
    world
        .admin
        .fund(&card.instrument.id, 100 * 100, "fund-100")
        .unwrap();
    let wallet = CustomerWallet::create(
        &world.root.join("wallet"),
        Config::issuer(&world.service.url()),
    )
    .unwrap();
    let shop = till(&world, &world.root.join("shop"), "SHOP", Config::default());
    for n in 0..100 {
        wallet
            .pre_authorize_instrument(&card.instrument.id, &card.credential, eur("1.00"))
            .unwrap_or_else(|e| panic!("pre-authorization {n}: {e}"));
        assert!(wallet.balances().unwrap().len() <= 8);
        let request = shop.create_request(eur("1.00"), None).unwrap();
        let paid = wallet.pay(&request).unwrap();
        let accepted = shop.accept(&paid.bytes).unwrap();
        wallet.receive_receipt(&accepted.receipt).unwrap();
        // Synced: the spent-out voucher is settled, and its slot may be reused.
        shop.sync_payments().unwrap();
        wallet.sync_payments().unwrap();
    }
    // Every payment so far is recent: a till may still show its request again, so retiring
    // vouchers kept their payments (SPEC §8.1.1). An hour later they are past any retry, and
    // the next pre-authorization compacts the journal, moving them to the history.
    assert_eq!(wallet.fetch_offline_payments().len(), 100);
    drop(wallet);
    world
        .admin
        .fund(&card.instrument.id, 100, "fund-101")
        .unwrap();
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
        + 3600;
    let wallet = CustomerWallet::open(
        &world.root.join("wallet"),
        Config {
            fixed_time: Some(later),
            ..Config::issuer(&world.service.url())
        },
    )
    .unwrap();
    wallet
        .pre_authorize_instrument(&card.instrument.id, &card.credential, eur("1.00"))
        .unwrap();
    // It holds the payments of its installed vouchers; the others moved to its history,
    // settled, none lost or twice.
    let held = wallet.fetch_offline_payments();
    assert!(held.len() < 100, "compacted: {} held", held.len());
    let all = wallet.fetch_payment_history().unwrap();
    assert_eq!(all.len(), 100, "every payment stays listed");
    assert!(all.iter().all(|p| p.receipt.is_some()));
    let ids: std::collections::HashSet<_> = all.iter().map(|p| &p.payment_id).collect();
    assert_eq!(ids.len(), 100);
    assert!(
        all.windows(2).all(|w| w[0].created_at <= w[1].created_at),
        "oldest first"
    );
    assert!(all[..100 - held.len()].iter().all(|p| p.settled));
    assert_eq!(&all[100 - held.len()..], &held[..]);
    // The till kept all 100 (its memory holds 256), and lists the same.
    assert_eq!(
        shop.fetch_payment_history().unwrap(),
        shop.fetch_offline_payments()
    );
    // The instrument paid 100 × 1.00, each credited once; the last 1.00 is reserved.
    let card_now = world.admin.instrument(&card.instrument.id).unwrap();
    assert_eq!(card_now.available_minor, 0, "{card_now:?}");
    assert_eq!(card_now.spent_minor, 100 * 100, "{card_now:?}");
}
