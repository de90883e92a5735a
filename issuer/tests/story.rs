//! The whole story against the service on a loopback port, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;
use common::*;
use offpay_protocol::msg::{Outcome, SyncReport};
use offpay_protocol::*;

fn outcomes(report: &[u8]) -> Vec<Outcome> {
    let r = decode_signed::<SyncReport<'_>>(report).unwrap();
    r.entries().map(|e| e.outcome).collect()
}

on_both_backends! {
    fn fund_preauthorize_pay_sync_twice_credits_once(backend: Backend) {
        let w = World::on(backend);
        let (ins, cred) = w.instrument("EUR", 10_000);
        let mut phone = w.phone(1);
        let mut cafe = w.merchant(b"CAFE-001", "Cafe", 11);
        let voucher = w.preauthorize(&mut phone, &ins, &cred, 5_000, 1).unwrap();
        let v = decode_signed::<msg::Voucher>(&voucher).unwrap();
        // The issuer decided the terms from its policy.
        assert_eq!(v.limit, Amount(5_000));
        assert_eq!(v.not_before, w.now());
        assert_eq!(v.not_after, w.now().saturating_add(7 * 86_400));
        assert_eq!(v.policy.max_payments, 32);
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!((i.available_minor, i.reserved_minor), (5_000, 5_000));

        w.advance(60);
        w.pay(&mut phone, &mut cafe, 420);
        w.pay(&mut phone, &mut cafe, 180);

        // Both sides sync, each twice.
        w.advance(60);
        // The phone holds both payments and their receipts: its upload credits them.
        let first = w.sync_phone(&mut phone);
        assert_eq!(outcomes(&first[1]), vec![Outcome::Credited; 4]);
        // The till's own upload of the same payments credits nothing more.
        let till = w.sync_till(&mut cafe);
        assert_eq!(outcomes(&till[1]), vec![Outcome::Duplicate; 4]);
        let again = w.public.sync(&till[0]).unwrap();
        assert!(outcomes(&again).iter().all(|o| *o == Outcome::Duplicate));
        let again = w.public.sync(&first[0]).unwrap();
        assert!(outcomes(&again).iter().all(|o| *o == Outcome::Duplicate));

        let credits = w.admin.credits().unwrap();
        assert_eq!(credits.len(), 1);
        assert_eq!(credits[0].merchant_id, hex::encode(b"CAFE-001"));
        assert_eq!((credits[0].amount_minor, credits[0].payments), (600, 2));
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!(
            (
                i.available_minor,
                i.reserved_minor,
                i.spent_minor,
                i.owed_minor
            ),
            (5_000, 4_400, 600, 0)
        );

        // After the window and the grace period, what is left goes back to the instrument.
        w.advance(7 * 86_400 + 7 * 86_400 + 1);
        let closed = w.admin.close_expired().unwrap();
        assert_eq!(closed.closed.len(), 1);
        assert_eq!(closed.closed[0].released_minor, Some(4_400));
        assert!(w.admin.close_expired().unwrap().closed.is_empty());
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!(
            (
                i.funded_minor,
                i.available_minor,
                i.reserved_minor,
                i.spent_minor
            ),
            (10_000, 9_400, 0, 600)
        );
    }
}

on_both_backends! {
    fn a_cloned_wallet_is_proven_and_charged(backend: Backend) {
        let w = World::on(backend);
        let (ins, cred) = w.instrument("EUR", 1_000);
        let mut phone = w.phone(2);
        let mut a = w.merchant(b"SHOP-A01", "Shop A", 21);
        let mut b = w.merchant(b"SHOP-B01", "Shop B", 22);
        w.preauthorize(&mut phone, &ins, &cred, 1_000, 7).unwrap();
        // The journal is copied: both copies spend the voucher.
        let mut clone = Wallet::open(phone.store().clone(), SigningKey::from_seed(&[2; 32])).unwrap();
        w.pay(&mut phone, &mut a, 800);
        w.pay(&mut clone, &mut b, 700);
        w.sync_till(&mut a);
        let report = w.sync_till(&mut b);
        // The till's batch holds the payment and its receipt.
        assert_eq!(
            outcomes(&report[1]),
            vec![Outcome::Conflict, Outcome::Credited]
        );
        let proofs = w.admin.fraud().unwrap();
        assert_eq!(proofs.len(), 1);
        assert_eq!(proofs[0].kind, "same-sequence");
        let proof = hex::decode(&proofs[0].proof).unwrap();
        // Decoding a FraudProof checks that its two payments cannot both be honest.
        let p = decode_unsigned::<msg::FraudProof<'_>>(&proof).unwrap();
        assert_eq!(p.first.voucher.id, p.second.voucher.id);
        // Both honest merchants are credited in full; the holder owes the overspend.
        let credits = w.admin.credits().unwrap();
        assert_eq!(
            credits.iter().map(|c| c.amount_minor).collect::<Vec<_>>(),
            vec![800, 700]
        );
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!(
            (i.reserved_minor, i.owed_minor, i.spent_minor),
            (0, 500, 1_000)
        );
        let v = w.admin.vouchers().unwrap();
        assert!(v[0].fraud);
        assert_eq!(v[0].overspend_minor, 500);
        // The same uploads again change nothing.
        let before = w.snapshot();
        w.sync_till(&mut a);
        w.sync_till(&mut b);
        assert_eq!(w.snapshot(), before);
    }
}

on_both_backends! {
    fn a_retried_preauthorization_returns_the_same_voucher_and_reserves_once(backend: Backend) {
        let w = World::on(backend);
        let (ins, cred) = w.instrument("EUR", 3_000);
        let mut phone = w.phone(3);
        let req = w.preauth_request(&mut phone, &ins, 2_000, 9);
        let v1 = w.public.preauthorize(&req, &cred).unwrap();
        let before = w.snapshot();
        let v2 = w.public.preauthorize(&req, &cred).unwrap();
        assert_eq!(v1, v2);
        assert_eq!(w.snapshot(), before);
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!((i.available_minor, i.reserved_minor), (1_000, 2_000));
        // Funding retried with its reference funds once.
        w.admin.fund(&ins, 500, "top-up-1").unwrap();
        let funded = w.snapshot();
        let i = w.admin.fund(&ins, 500, "top-up-1").unwrap();
        assert_eq!((i.funded_minor, i.available_minor), (3_500, 1_500));
        assert_eq!(w.snapshot(), funded);
        assert_eq!(
            code(w.admin.fund(&ins, 600, "top-up-1")),
            (409, 813),
            "the same reference for another amount"
        );
        assert_eq!(w.snapshot(), funded);
    }
}

on_both_backends! {
    fn the_service_answers_health_metrics_and_revocations(backend: Backend) {
        let w = World::on(backend);
        w.public.health().unwrap();
        let list = w.public.revocations().unwrap();
        let l = decode_signed::<msg::RevocationList<'_>>(&list).unwrap();
        assert_eq!(l.serial, 1);
        let mut till = w.merchant(b"REVOKED1", "Gone", 31);
        let _ = &mut till;
        let new = w
            .admin
            .revoke(&offpay_issuer::api::Revoke {
                voucher: None,
                merchant: Some(hex::encode(b"REVOKED1")),
            })
            .unwrap();
        assert_eq!(w.public.revocations().unwrap(), new);
        let l = decode_signed::<msg::RevocationList<'_>>(&new).unwrap();
        assert_eq!(l.serial, 2);
        l.verify(&w.trust.issuer_key(&l.issuer_key_id, w.now()).unwrap())
            .unwrap();
        assert_eq!(w.public.issuer_info().unwrap().revocation_serial, 2);
        // Metrics are the operator's: on the admin listener, behind the token.
        let metrics = ureq::get(format!("{}/metrics", w.service.admin_url()))
            .header(
                "authorization",
                format!("Bearer {}", w.service.admin_token()),
            )
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(
            metrics.contains("offpay_issuer_requests_total{path=\"/v1/revocations\",status=\"200\"} 2"),
            "{metrics}"
        );
        assert!(
            metrics.contains("offpay_issuer_preauthorizations_total 0"),
            "{metrics}"
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let public = agent
            .get(format!("{}/metrics", w.service.url()))
            .call()
            .unwrap();
        assert_eq!(public.status().as_u16(), 404);
        let anonymous = agent
            .get(format!("{}/metrics", w.service.admin_url()))
            .call()
            .unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
    }
}

on_both_backends! {
    fn a_batch_of_hundreds_of_payments_is_written_whole(backend: Backend) {
        // 261 payments with their receipts in one batch: the ledger writes rows a chunk at a
        // time (256, 64, 16, 4, 1), so this crosses every chunk size.
        let w = World::on(backend);
        let (ins, cred) = w.instrument("EUR", 1_000_000);
        let mut till = w.merchant(b"MARKET01", "Market", 12);
        for p in 0..9u8 {
            let mut phone = w.phone(40 + p);
            w.preauthorize(&mut phone, &ins, &cred, 10_000, 1).unwrap();
            for _ in 0..29 {
                w.pay(&mut phone, &mut till, 7);
            }
        }
        w.advance(60);
        // Sent as the till builds it (the till's own store has no room left for the report).
        let mut buf = vec![0u8; <msg::SyncBatch<'_> as codec::Message<'_>>::MAX_LEN];
        let n = till.sync_batch(&mut buf).unwrap();
        let report = w.public.sync(&buf[..n]).unwrap();
        let outcomes = outcomes(&report);
        assert_eq!(outcomes.len(), 2 * 261);
        assert!(outcomes.iter().all(|o| *o == Outcome::Credited));
        assert_eq!(w.scalar("SELECT COUNT(*) FROM payments WHERE credited"), 261);
        assert_eq!(w.scalar("SELECT COUNT(*) FROM receipts"), 261);
        let credits = w.admin.credits().unwrap();
        assert_eq!((credits[0].amount_minor, credits[0].payments), (261 * 7, 261));
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!((i.reserved_minor, i.spent_minor), (90_000 - 261 * 7, 261 * 7));
        // Sent again, it changes nothing.
        let before = w.snapshot();
        let again = w.public.sync(&buf[..n]).unwrap();
        assert_eq!(super::outcomes(&again), vec![Outcome::Duplicate; 2 * 261]);
        assert_eq!(w.snapshot(), before);
    }
}

on_both_backends! {
    fn a_granted_request_gets_its_voucher_back_under_a_stricter_policy(backend: Backend) {
        let w = World::on(backend);
        let (ins, cred) = w.instrument("EUR", 5_000);
        let mut phone = w.phone(4);
        let req = w.preauth_request(&mut phone, &ins, 2_000, 5);
        let fresh = w.preauth_request(&mut phone, &ins, 2_000, 6);
        let v1 = w.public.preauthorize(&req, &cred).unwrap();
        // The service restarts on the same ledger with a lower maximum per voucher.
        let data = w.service.data().to_path_buf();
        drop(w.service);
        let mut config = offpay_issuer::server::Config::new(&data);
        config.listen = ([127, 0, 0, 1], 0).into();
        config.admin_listen = ([127, 0, 0, 1], 0).into();
        config.database = w.database.clone();
        let clock = w.clock.clone();
        config.clock = std::sync::Arc::new(move || {
            Timestamp(clock.load(std::sync::atomic::Ordering::SeqCst))
        });
        config.policy.max_amount_minor = Some(1_000);
        let strict = offpay_issuer::server::InProcess::start(config).unwrap();
        let public = offpay_issuer::client::Client::new(&strict.url()).unwrap();
        // The retry of the granted request gets the same voucher, reserving nothing more.
        assert_eq!(public.preauthorize(&req, &cred).unwrap(), v1);
        // A new request for as much is over the policy now.
        assert_eq!(code(public.preauthorize(&fresh, &cred)), (422, 304));
        let admin = offpay_issuer::client::Client::new(&strict.admin_url())
            .unwrap()
            .with_admin_token(strict.admin_token());
        let i = admin.instrument(&ins).unwrap();
        assert_eq!((i.available_minor, i.reserved_minor), (3_000, 2_000));
    }
}

on_both_backends! {
    fn closing_hundreds_of_expired_vouchers_releases_every_one(backend: Backend) {
        // More than one transaction's worth (256): closing goes on chunk after chunk.
        let w = World::on(backend);
        let (ins, cred) = w.instrument("EUR", 1_000_000);
        for p in 0..2u8 {
            let mut phone = w.phone(90 + p);
            for nonce in 0..150u8 {
                let req = w.preauth_request(&mut phone, &ins, 100, nonce);
                w.public.preauthorize(&req, &cred).unwrap();
            }
        }
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!((i.available_minor, i.reserved_minor), (970_000, 30_000));
        w.advance(7 * 86_400 + 7 * 86_400 + 1);
        let closed = w.admin.close_expired().unwrap().closed;
        assert_eq!(closed.len(), 300);
        assert!(closed.iter().all(|v| v.released_minor == Some(100)));
        let ids: std::collections::BTreeSet<_> = closed.iter().map(|v| &v.voucher_id).collect();
        assert_eq!(ids.len(), 300, "each voucher closed once");
        assert!(w.admin.close_expired().unwrap().closed.is_empty());
        let i = w.admin.instrument(&ins).unwrap();
        assert_eq!((i.available_minor, i.reserved_minor), (1_000_000, 0));
    }
}

#[test]
fn instances_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    use offpay_issuer::postgres::{PgStorage, SCHEMA_VERSION};
    use offpay_issuer::storage::Storage;
    let url = common::pg::shared().database();
    // Four instances open a fresh database at once: one migrates, the others wait for it.
    let versions: Vec<u32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PgStorage::open(&url).unwrap().schema_version().unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(versions, vec![SCHEMA_VERSION; 4]);
    assert_eq!(
        pg_scalar(&url, "SELECT COUNT(*) FROM offpay_schema"),
        1,
        "one schema row"
    );
    // A ledger written by a newer offpay-issuer is refused, and left as it is.
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .execute("UPDATE offpay_schema SET version = version + 1", &[])
        .unwrap();
    let before = pg_snapshot(&url);
    let e = PgStorage::open(&url)
        .err()
        .expect("a newer schema was accepted");
    assert!(e.to_string().contains("newer"), "{e}");
    assert_eq!(pg_snapshot(&url), before);
}
