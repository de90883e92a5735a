//! offpay-ble's session over the in-memory link: whole payments at MTU 23, 185 and 517; a cut
//! at every chunk boundary then a retry (exactly one payment on each side); a hostile peer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_ble::link::{self, LinkConfig, LinkReport};
use offpay_ble::session::{Event, Party, Timeouts};
use offpay_ble::{
    BleError, CustomerSession, Engagement, MAX_FRAME, MerchantEngagement, MerchantSession,
};
use offpay_conformance::fixture::*;
use offpay_protocol::*;

type Shop = Acceptor<MemStore, SigningKey>;
type Customer = Wallet<MemStore, SigningKey>;

struct World {
    f: Fixture,
    wallet: Customer,
    shop: Shop,
    engagement: MerchantEngagement,
    request: Vec<u8>,
    now: Timestamp,
}

impl World {
    fn new(amount: u64) -> Self {
        let f = Fixture::new();
        let now = t(3650);
        let mut wallet: Customer =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
        wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
        let mut shop: Shop =
            Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
        let mut rng = Fixture::rng(9);
        let request = shop
            .create_request(Amount(amount), eur(), Some("ble"), now, &mut rng)
            .unwrap()
            .to_vec();
        let engagement = MerchantEngagement::generate(&mut rng);
        World {
            f,
            wallet,
            shop,
            engagement,
            request,
            now,
        }
    }

    /// One session over the link; returns the report and both sessions' results.
    fn session(&mut self, config: LinkConfig, seed: u8) -> (LinkReport, Side, Side) {
        let mut customer =
            CustomerSession::new(self.engagement.engagement(), &mut Fixture::rng(seed)).unwrap();
        let mut merchant = MerchantSession::new(&self.engagement, &self.request).unwrap();
        let ctx = Context {
            trust: &self.f.trust,
            revocations: None,
            now: self.now,
        };
        let report = link::run(
            config,
            &mut customer,
            &mut self.wallet,
            &self.f.trust,
            None,
            &mut merchant,
            &mut self.shop,
            &ctx,
            self.now,
        )
        .unwrap();
        (report, Side::of(report.customer), Side::of(report.merchant))
    }

    fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.wallet.payments().count(),
            self.wallet
                .payments()
                .filter(|p| p.receipt.is_some())
                .count(),
            self.shop.payments().count(),
            self.shop.store().len(),
        )
    }
}

/// One side's final event, and the error when it failed.
#[derive(Debug)]
struct Side {
    end: Option<Event>,
    error: Option<BleError>,
}

impl Side {
    fn of(end: Option<Event>) -> Self {
        let error = match end {
            Some(Event::Failed(e)) => Some(e),
            _ => None,
        };
        Side { end, error }
    }
}

/// A session's final event, taken from its events (`None` when it has none, or it was taken).
trait Ends {
    fn end(&mut self) -> Option<Event>;
}

impl Ends for MerchantSession {
    fn end(&mut self) -> Option<Event> {
        std::iter::from_fn(|| self.poll_event()).find(Event::is_final)
    }
}

impl Ends for CustomerSession {
    fn end(&mut self) -> Option<Event> {
        std::iter::from_fn(|| self.poll_event()).find(Event::is_final)
    }
}

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
        p.verify(&p.voucher.holder_key).unwrap();
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

/// A hostile customer: drives the merchant session with crafted chunks.
mod hostile {
    use super::*;
    use offpay_ble::chunk::{LAST, MORE};

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
