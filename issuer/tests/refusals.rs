//! Every refusal over real HTTP: its status and stable code, and the ledger unchanged row for
//! row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;
use common::*;
use offpay_issuer::api::{self, ErrorBody};
use offpay_protocol::Signer as _;

/// Sends raw bytes with a content type; (status, body).
fn raw(url: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, ErrorBody) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(url).header("content-type", content_type);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not an error body: {text}")),
    )
}

on_both_backends! {
    fn refused_preauthorizations_change_nothing(backend: Backend) {
        let w = World::on(backend);
        let (ins, cred) = w.instrument("EUR", 1_000);
        let (usd, usd_cred) = w.instrument("USD", 1_000);
        let mut phone = w.phone(4);
        let good = w.preauth_request(&mut phone, &ins, 500, 1);
        let before = w.snapshot();

        // Wrong credential; an unknown instrument: the same answer.
        assert_eq!(code(w.public.preauthorize(&good, &usd_cred)), (401, 801));
        assert_eq!(code(w.public.preauthorize(&good, "")), (401, 801));
        let unknown = w.preauth_request(&mut phone, "ins-000000000000000000000000", 500, 2);
        assert_eq!(code(w.public.preauthorize(&unknown, &cred)), (401, 801));
        // More than is available.
        let big = w.preauth_request(&mut phone, &ins, 1_001, 3);
        assert_eq!(code(w.public.preauthorize(&big, &cred)), (422, 311));
        // A EUR request on a USD instrument.
        let wrong = w.preauth_request(&mut phone, &usd, 10, 4);
        assert_eq!(code(w.public.preauthorize(&wrong, &usd_cred)), (422, 302));
        // A bad holder signature.
        let mut forged = good.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(code(w.public.preauthorize(&forged, &cred)), (422, 200));
        // Malformed bytes: cut short, a byte more, another message type.
        assert_eq!(code(w.public.preauthorize(&good[..40], &cred)), (400, 100));
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(code(w.public.preauthorize(&longer, &cred)), (400, 101));
        assert_eq!(
            code(
                w.public
                    .preauthorize(&w.public.revocations().unwrap(), &cred)
            ),
            (400, 103)
        );
        // A body over the PreAuthRequest maximum (165 bytes, with a P-256 holder key).
        let url = format!("{}{}", w.service.url(), api::path::PREAUTHORIZATIONS);
        let (s, e) = raw(
            &url,
            api::OCTET_STREAM,
            &[1u8; 166],
            &[(api::CREDENTIAL_HEADER, &cred)],
        );
        assert_eq!((s, e.code, e.error.as_str()), (413, 802, "body-too-large"));
        // The wrong media type.
        let (s, e) = raw(
            &url,
            "text/plain",
            &good,
            &[(api::CREDENTIAL_HEADER, &cred)],
        );
        assert_eq!((s, e.code), (415, 803));
        assert_eq!(w.snapshot(), before);

        // The same nonce for another request, after the first was granted.
        w.public.preauthorize(&good, &cred).unwrap();
        let granted = w.snapshot();
        let other = w.preauth_request(&mut phone, &ins, 400, 1);
        assert_eq!(code(w.public.preauthorize(&other, &cred)), (409, 806));
        assert_eq!(w.snapshot(), granted);
    }
}

on_both_backends! {
    fn refused_syncs_and_admin_calls_change_nothing(backend: Backend) {
        let w = World::on(backend);
        let (ins, _) = w.instrument("EUR", 1_000);
        let before = w.snapshot();
        let sync = format!("{}{}", w.service.url(), api::path::SYNC);
        // Not a SyncBatch; over its maximum size; the wrong media type.
        assert_eq!(code(w.public.sync(&[1, 8, 5])).0, 400);
        let (s, e) = raw(&sync, api::OCTET_STREAM, &vec![0u8; 303_110], &[]);
        assert_eq!((s, e.code), (413, 802));
        let (s, e) = raw(&sync, api::JSON, b"{}", &[]);
        assert_eq!((s, e.code), (415, 803));
        // No admin token, a wrong one, or the admin API on the public listener.
        let anon = offpay_issuer::client::Client::new(&w.service.admin_url()).unwrap();
        assert_eq!(code(anon.create_instrument("EUR", None)), (401, 800));
        let wrong = anon.clone().with_admin_token(&"0".repeat(64));
        assert_eq!(code(wrong.fund(&ins, 5, "r1")), (401, 800));
        let public_admin = offpay_issuer::client::Client::new(&w.service.url())
            .unwrap()
            .with_admin_token(w.service.admin_token());
        assert_eq!(code(public_admin.credits()), (404, 804));
        // Bad JSON, bad fields, unknown objects.
        let admin_url = format!("{}{}", w.service.admin_url(), api::path::ADMIN_INSTRUMENTS);
        let bearer = format!("Bearer {}", w.service.admin_token());
        let (s, e) = raw(
            &admin_url,
            api::JSON,
            b"{not json",
            &[("authorization", &bearer)],
        );
        assert_eq!((s, e.code), (400, 805));
        assert_eq!(code(w.admin.create_instrument("eur", None)), (400, 805));
        assert_eq!(code(w.admin.fund("ins-nope", 5, "r1")), (404, 804));
        assert_eq!(code(w.admin.fund(&ins, 0, "r1")), (400, 805));
        assert_eq!(code(w.admin.fund(&ins, u64::MAX, "r1")), (422, 811));
        assert_eq!(
            code(w.admin.revoke(&api::Revoke {
                voucher: Some("00".repeat(16)),
                merchant: None
            })),
            (404, 804)
        );
        let bad_key = api::NewMerchant {
            merchant_id: hex::encode(b"SHOP-001"),
            merchant_key: "00".repeat(32),
            display_name: "Shop".into(),
            days: 30,
        };
        assert_eq!(code(w.admin.certify_merchant(&bad_key)).1, 203);
        let bad_name = api::NewMerchant {
            merchant_key: hex::encode(
                offpay_protocol::SigningKey::from_seed(&[5; 32])
                    .public_key()
                    .0,
            ),
            display_name: "\u{1b}[2J".into(),
            ..bad_key.clone()
        };
        assert_eq!(code(w.admin.certify_merchant(&bad_name)), (400, 805));
        // Unknown paths and methods.
        let (s, e) = raw(
            &format!("{}/v2/sync", w.service.url()),
            api::OCTET_STREAM,
            b"",
            &[],
        );
        assert_eq!((s, e.code), (404, 804));
        let (s, e) = raw(
            &format!("{}{}", w.service.url(), api::path::ISSUER),
            api::JSON,
            b"{}",
            &[],
        );
        assert_eq!((s, e.code), (405, 808));
        assert_eq!(w.snapshot(), before);

        // A merchant id certified twice.
        let ok = api::NewMerchant {
            merchant_key: hex::encode(
                offpay_protocol::SigningKey::from_seed(&[5; 32])
                    .public_key()
                    .0,
            ),
            ..bad_key
        };
        w.admin.certify_merchant(&ok).unwrap();
        let certified = w.snapshot();
        assert_eq!(code(w.admin.certify_merchant(&ok)), (409, 807));
        assert_eq!(w.snapshot(), certified);
    }
}
