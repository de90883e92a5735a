//! A till that is never online syncs through a customer's phone: its batch leaves as animated
//! QR frames drawn and scanned as images with 30 % of them lost, the phone uploads it with its
//! own sync, and the issuer's report comes back the same way; the till verifies it and prunes.
//! A changed batch or report does not get through.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{World, eur, offline_till, wallet, world};
use offpay_sdk::Error;
use offpay_sdk::protocol::decode_signed;
use offpay_sdk::protocol::msg::{Outcome, SyncReport};
use offpay_sdk::qr::{self, Receiver};

/// Draws `frames` as PNG images, loses the ones `lost` picks, and reads the rest back as a
/// camera would; returns the message and how many images were scanned.
fn through_camera(frames: &[String], lost: impl Fn(usize) -> bool) -> (Vec<u8>, usize) {
    let mut r = Receiver::new();
    let mut scanned = 0;
    for (i, text) in frames.iter().enumerate() {
        if lost(i) {
            continue;
        }
        let png = qr::text_png(text).unwrap();
        scanned += 1;
        if let Some(m) = r.receive_image(&png).unwrap() {
            return (m, scanned);
        }
    }
    panic!("the frames ran out at {:?}", r.progress());
}

/// Loses 3 frames in every 10, the first among them.
fn thirty_percent(i: usize) -> bool {
    i % 10 < 3
}

#[test]
fn a_till_never_online_syncs_through_a_customers_phone() {
    let w = world();
    let till = offline_till(&w, &w.root.join("stall"));
    assert!(matches!(till.sync_payments(), Err(Error::Offline { .. })));

    // Two customers pay; neither ever syncs its own records: only the relay can settle them.
    let (alice, bob) = (wallet(&w, "alice", 10_000), wallet(&w, "bob", 10_000));
    let mut paid = Vec::new();
    for (who, amount) in [(&alice, "4.20"), (&bob, "7.00"), (&alice, "1.10")] {
        let p = who
            .pay(&till.create_request(eur(amount), None).unwrap())
            .unwrap();
        till.accept(&p.bytes).unwrap();
        paid.push(p.payment_id);
    }
    let batch = till.relay_batch().unwrap().unwrap();
    let need = qr::fragments(&batch).unwrap();
    let frames = till.relay_frames(4 * need + 16).unwrap();
    let (carried, scanned) = through_camera(&frames, thirty_percent);
    assert_eq!(carried, batch, "the batch arrives unchanged");
    println!(
        "batch of {} bytes: {need} fragments, {scanned} images scanned with 30 % lost",
        batch.len()
    );

    // A phone that changes the batch (here the last receipt) gets nothing through for what it
    // changed: the genuine records settle, the changed one is refused, its payment waits.
    let mut forged = batch.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let carol = wallet(&w, "carol", 10_000);
    carol.carry_batch(&forged).unwrap();
    let s = carol.sync_payments().unwrap();
    assert_eq!((s.relayed_batches, s.relayed_records), (1, 6), "{s:?}");
    assert!(s.incomplete.is_empty(), "{s:?}");
    let kept = &carol.relay_reports().unwrap()[0].report;
    let outcomes: Vec<Outcome> = decode_signed::<SyncReport<'_>>(kept)
        .unwrap()
        .entries()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(
        outcomes.last(),
        Some(&Outcome::Rejected(200)),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Pending).count(),
        1,
        "the changed receipt's payment waits: {outcomes:?}"
    );
    let credited = |w: &World| {
        w.admin
            .credits()
            .unwrap()
            .iter()
            .map(|c| (c.amount_minor, c.payments))
            .collect::<Vec<_>>()
    };
    assert_eq!(credited(&w), vec![(420 + 700, 2)]);

    // Alice carries the real one and uploads it with her own sync.
    let id = alice.carry_batch(&carried).unwrap();
    assert_eq!(alice.carry_batch(&carried).unwrap(), id, "kept once");
    let s = alice.sync_payments().unwrap();
    assert_eq!(s.relayed_batches, 1);
    assert_eq!(credited(&w), vec![(420 + 700 + 110, 3)], "each once");
    // Her next sync does not upload it again.
    assert_eq!(alice.sync_payments().unwrap().relayed_batches, 0);

    // The report goes back to the till on the next visit, through the camera too.
    let reports = alice.relay_reports().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].batch_id, id);
    let report = &reports[0].report;
    let frames = qr::animate(report, 4 * qr::fragments(report).unwrap() + 16).unwrap();
    let (back, _) = through_camera(&frames, thirty_percent);
    assert_eq!(&back, report);

    // A changed report is refused and prunes nothing.
    let mut tampered = back.clone();
    let at = tampered.len() - 10;
    tampered[at] ^= 0x40;
    assert!(matches!(
        till.receive_report(&tampered),
        Err(Error::Refused { .. })
    ));
    assert!(till.fetch_offline_payments().iter().all(|p| !p.settled));
    assert!(till.relay_batch().unwrap().is_some());

    assert_eq!(
        till.receive_report(&back).unwrap(),
        6,
        "3 payments, 3 receipts"
    );
    assert!(till.fetch_offline_payments().iter().all(|p| p.settled));
    assert_eq!(till.relay_batch().unwrap(), None, "nothing left to carry");
    assert!(till.relay_frames(10).unwrap().is_empty());

    alice.forget_relay(&id).unwrap();
    assert!(alice.relay_reports().unwrap().is_empty());
    assert_eq!(
        till.fetch_offline_payments()
            .into_iter()
            .map(|p| p.payment_id)
            .collect::<Vec<_>>(),
        paid
    );
}

#[test]
fn a_wallet_refuses_what_is_not_a_batch_and_carries_a_bounded_number() {
    let w = world();
    let alice = wallet(&w, "alice", 10_000);
    assert!(matches!(
        alice.carry_batch(b"\x00"),
        Err(Error::Refused { .. })
    ));
    assert!(matches!(
        alice.carry_batch(&[0u8; 400_000]),
        Err(Error::Invalid { .. })
    ));
    assert!(alice.relay_reports().unwrap().is_empty());
    assert!(matches!(
        alice.forget_relay("../wallet.journal"),
        Err(Error::Invalid { .. })
    ));
}
