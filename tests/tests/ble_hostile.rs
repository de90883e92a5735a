//! A hostile peer on the in-memory link: crafted, replayed, oversized and misdirected chunks
//! end the session with their SPEC code and change no store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ble_world;

use ble_world::*;
use offpay_ble::chunk::{LAST, MORE};
use offpay_ble::link::{self, LinkConfig};
use offpay_ble::session::Event;
use offpay_ble::{
    BleError, CustomerSession, Engagement, MAX_FRAME, MerchantEngagement, MerchantSession,
};
use offpay_conformance::fixture::*;
use offpay_protocol::*;

/// A merchant session that has received a genuine hello, and the customer session that
/// sent it (so that tests can seal frames under the real keys).
fn handshaken(w: &mut World, seed: u8) -> (CustomerSession, MerchantSession) {
    let mut customer =
        CustomerSession::new(w.engagement.engagement(), &mut Fixture::rng(seed)).unwrap();
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
    (customer, merchant)
}

fn unchanged(w: &World, before: (usize, usize, usize, usize)) {
    assert_eq!(w.counts(), before, "a refused input changes no store");
}

fn feed(
    merchant: &mut MerchantSession,
    shop: &mut Shop,
    f: &Fixture,
    now: Timestamp,
    chunks: &[Vec<u8>],
) -> Result<(), BleError> {
    let ctx = Context {
        trust: &f.trust,
        revocations: None,
        now,
    };
    for c in chunks {
        merchant.handle_input(c, Default::default(), shop, &ctx)?;
    }
    Ok(())
}

#[test]
fn an_oversized_message_is_refused() {
    let mut w = World::new(420);
    let before = w.counts();
    let engagement = MerchantEngagement::generate(&mut Fixture::rng(3));
    let mut merchant = MerchantSession::new(&engagement, &w.request).unwrap();
    merchant.start(Default::default()).unwrap();
    let mut chunks: Vec<Vec<u8>> = (0..MAX_FRAME / 19 + 1)
        .map(|_| {
            let mut c = vec![MORE];
            c.extend_from_slice(&[0xaa; 19]);
            c
        })
        .collect();
    chunks.push(vec![LAST, 1]);
    let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &chunks).unwrap_err();
    assert_eq!(e, BleError::TooLarge);
    assert_eq!(merchant.end(), Some(Event::Failed(BleError::TooLarge)));
    // The session is closed for good.
    let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &[vec![LAST, 1]]).unwrap_err();
    assert_eq!(e, BleError::Closed);
    unchanged(&w, before);
}

/// SPEC §14.5: a relay shows its own engagement and passes merchant A's request off in
/// its own session. It cannot sign the binding with A's key (here it signs with its own,
/// merchant B's): the customer refuses with `ble-unbound` and the wallet signs nothing.
#[test]
fn a_relayed_request_is_refused_and_nothing_is_paid() {
    let mut w = World::new(420);
    let before = w.counts();
    let relay_engagement = MerchantEngagement::generate(&mut Fixture::rng(5));
    let mut relay_shop: Shop = Acceptor::open(
        MemStore::new(),
        SigningKey::from_seed(&[4; 32]),
        &w.f.cert_b,
    )
    .unwrap();
    let mut relay = MerchantSession::new(&relay_engagement, &w.request).unwrap();
    relay.start(Default::default()).unwrap();
    let mut customer =
        CustomerSession::new(relay_engagement.engagement(), &mut Fixture::rng(6)).unwrap();
    let ctx = Context {
        trust: &w.f.trust,
        revocations: None,
        now: w.now,
    };
    customer.start(Default::default()).unwrap();
    let mut buf = [0u8; 20];
    while let Some(n) = customer.poll_transmit(&mut buf) {
        relay
            .handle_input(&buf[..n], Default::default(), &mut relay_shop, &ctx)
            .unwrap();
    }
    let mut last = Ok(());
    while let Some(n) = relay.poll_transmit(&mut buf) {
        last = customer.handle_input(&buf[..n], Default::default(), &mut w.wallet);
    }
    assert_eq!(last, Err(BleError::Unbound));
    assert_eq!(customer.end(), Some(Event::Failed(BleError::Unbound)));
    assert!(customer.request().is_none(), "nothing to approve");
    unchanged(&w, before);
}

/// SPEC §14.3: a chunk longer than MTU − 3 bytes (its flag included) ends the session as
/// `ble-bad-chunk`, at the default MTU (23) and at a negotiated one.
#[test]
fn a_chunk_longer_than_the_mtu_is_refused() {
    for (mtu, len) in [(None, 21usize), (Some(185u16), 183)] {
        let mut w = World::new(420);
        let before = w.counts();
        let engagement = MerchantEngagement::generate(&mut Fixture::rng(4));
        let mut merchant = MerchantSession::new(&engagement, &w.request).unwrap();
        merchant.start(Default::default()).unwrap();
        if let Some(m) = mtu {
            merchant.set_mtu(m).unwrap();
        }
        let mut chunk = vec![MORE];
        chunk.resize(len, 0xaa);
        let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &[chunk]).unwrap_err();
        assert_eq!(e, BleError::BadChunk);
        assert_eq!(merchant.end(), Some(Event::Failed(BleError::BadChunk)));
        unchanged(&w, before);
    }
}

#[test]
fn bytes_after_the_last_chunk_end_the_session() {
    let mut w = World::new(420);
    let (_, c, m) = w.session(LinkConfig::mtu(185), 1);
    assert!(matches!(c.end, Some(Event::Paid(_))), "{m:?}");
    let before = w.counts();
    // A finished merchant session that receives one more chunk.
    let (mut customer, mut merchant) = {
        let mut customer =
            CustomerSession::new(w.engagement.engagement(), &mut Fixture::rng(5)).unwrap();
        let mut merchant = MerchantSession::new(&w.engagement, &w.request).unwrap();
        let ctx = Context {
            trust: &w.f.trust,
            revocations: None,
            now: w.now,
        };
        link::run(
            LinkConfig::mtu(185),
            &mut customer,
            &mut w.wallet,
            &w.f.trust,
            None,
            &mut merchant,
            &mut w.shop,
            &ctx,
            w.now,
        )
        .unwrap();
        (customer, merchant)
    };
    assert!(merchant.is_finished());
    let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &[vec![LAST, 0]]).unwrap_err();
    assert_eq!(e, BleError::ChunkAfterLast);
    assert_eq!(
        merchant.end(),
        None,
        "the acceptance stands: no second final event"
    );
    let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &[vec![LAST, 0]]).unwrap_err();
    assert_eq!(e, BleError::Closed);
    let e = customer
        .handle_input(&[LAST, 0], Default::default(), &mut w.wallet)
        .unwrap_err();
    assert_eq!(e, BleError::ChunkAfterLast);
    assert_eq!(customer.end(), None, "the payment stands");
    unchanged(&w, before);
}

/// The customer's payment frame, sealed under the real key, as chunks of 20 bytes.
fn payment_chunks(customer: &mut CustomerSession, w: &mut World) -> Vec<Vec<u8>> {
    customer
        .approve(&mut w.wallet, &w.f.trust, None, w.now, Default::default())
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 20];
    while let Some(n) = customer.poll_transmit(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn a_replayed_frame_ends_the_session() {
    let mut w = World::new(420);
    let (mut customer, mut merchant) = handshaken(&mut w, 1);
    let chunks = payment_chunks(&mut customer, &mut w);
    let before_merchant = (w.shop.payments().count(), w.shop.store().len());
    // Replay the first chunk of the payment twice: the frame's bytes are doubled, so it
    // fails authentication.
    let mut replayed = vec![chunks[0].clone()];
    replayed.extend(chunks.iter().cloned());
    let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &replayed).unwrap_err();
    assert_eq!(e, BleError::Decrypt);
    assert_eq!(
        (w.shop.payments().count(), w.shop.store().len()),
        before_merchant
    );
}

#[test]
fn a_replayed_whole_frame_from_an_earlier_session_ends_the_session() {
    let mut w = World::new(420);
    let (mut customer, mut merchant) = handshaken(&mut w, 1);
    let old = payment_chunks(&mut customer, &mut w);
    feed(&mut merchant, &mut w.shop, &w.f, w.now, &old).unwrap();
    assert!(matches!(merchant.end(), Some(Event::Accepted(_))));
    let before = w.counts();
    // A new session (new customer key): the recorded frame is under the old keys.
    let (_, mut merchant2) = handshaken(&mut w, 2);
    let e = feed(&mut merchant2, &mut w.shop, &w.f, w.now, &old).unwrap_err();
    assert_eq!(e, BleError::Decrypt);
    unchanged(&w, before);
}

#[test]
fn a_frame_under_the_wrong_key_ends_the_session() {
    let mut w = World::new(420);
    let (_customer, mut merchant) = handshaken(&mut w, 1);
    // Another customer session's payment, sealed under that session's keys.
    let (mut other, _) = handshaken(&mut w, 7);
    let before = w.counts();
    let chunks = payment_chunks(&mut other, &mut w);
    let wallet_after = w.counts();
    let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &chunks).unwrap_err();
    assert_eq!(e, BleError::Decrypt);
    assert_eq!(w.counts().2, before.2, "the merchant stored nothing");
    assert_eq!(w.counts(), wallet_after);
}

#[test]
fn a_tampered_or_truncated_frame_ends_the_session() {
    for damage in 0..3 {
        let mut w = World::new(420);
        let (mut customer, mut merchant) = handshaken(&mut w, 1);
        let mut chunks = payment_chunks(&mut customer, &mut w);
        match damage {
            0 => chunks[2][5] ^= 0x01,
            1 => {
                // Truncated: drop a middle chunk.
                chunks.remove(3);
            }
            _ => {
                // Reordered: swap two chunks.
                chunks.swap(1, 2);
            }
        }
        let before = w.counts();
        let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &chunks).unwrap_err();
        assert_eq!(e, BleError::Decrypt, "damage {damage}");
        unchanged(&w, before);
    }
}

#[test]
fn the_wrong_session_uuid_is_refused() {
    let mut w = World::new(420);
    // The customer scanned another merchant's engagement.
    let other = MerchantEngagement::generate(&mut Fixture::rng(4));
    let mut customer = CustomerSession::new(other.engagement(), &mut Fixture::rng(1)).unwrap();
    let mut merchant = MerchantSession::new(&w.engagement, &w.request).unwrap();
    merchant.start(Default::default()).unwrap();
    customer.start(Default::default()).unwrap();
    let mut chunks = Vec::new();
    let mut buf = [0u8; 20];
    while let Some(n) = customer.poll_transmit(&mut buf) {
        chunks.push(buf[..n].to_vec());
    }
    let before = w.counts();
    let e = feed(&mut merchant, &mut w.shop, &w.f, w.now, &chunks).unwrap_err();
    assert_eq!(e, BleError::WrongSession);
    assert!(
        merchant.poll_transmit(&mut buf).is_none(),
        "no request is sent"
    );
    unchanged(&w, before);
}

#[test]
fn a_low_order_key_is_refused_on_both_sides() {
    let mut w = World::new(420);
    let e = w.engagement.engagement();
    // A merchant key of low order (the all-zero point).
    let bad = Engagement {
        service_uuid: e.service_uuid,
        merchant_key: [0; 32],
    };
    assert_eq!(
        CustomerSession::new(&bad, &mut Fixture::rng(1)).unwrap_err(),
        BleError::Handshake
    );
    // A hello with a low-order customer key.
    let mut hello = vec![0x01, offpay_ble::session::HELLO_TYPE];
    hello.extend_from_slice(&e.service_uuid);
    hello.extend_from_slice(&[0; 32]);
    let mut chunk = vec![LAST];
    chunk.extend_from_slice(&hello);
    let mut merchant = MerchantSession::new(&w.engagement, &w.request).unwrap();
    merchant.start(Default::default()).unwrap();
    merchant.set_mtu(517).unwrap();
    let before = w.counts();
    let err = feed(&mut merchant, &mut w.shop, &w.f, w.now, &[chunk]).unwrap_err();
    assert_eq!(err, BleError::Handshake);
    unchanged(&w, before);
}

#[test]
fn a_hostile_merchant_cannot_make_the_wallet_pay_twice_or_store_garbage() {
    let mut w = World::new(420);
    let mut customer =
        CustomerSession::new(w.engagement.engagement(), &mut Fixture::rng(1)).unwrap();
    customer.start(Default::default()).unwrap();
    let mut buf = [0u8; 20];
    while customer.poll_transmit(&mut buf).is_some() {}
    let before = w.counts();
    // Garbage where the sealed request should be.
    let e = customer
        .handle_input(&[LAST, 1, 2, 3], Default::default(), &mut w.wallet)
        .unwrap_err();
    assert_eq!(e, BleError::Decrypt);
    assert_eq!(
        customer
            .handle_input(&[LAST, 1], Default::default(), &mut w.wallet)
            .unwrap_err(),
        BleError::Closed
    );
    unchanged(&w, before);
}
