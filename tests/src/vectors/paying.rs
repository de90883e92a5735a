//! Wallet payments (`pay.json`).

use super::*;

/// Wallet payments.
pub(super) fn pay(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let eur = eur();
    let p = |name: &str,
             req: &[u8],
             e: &str,
             now: u32,
             paid: Vec<Vec<u8>>,
             rl: Option<&[u8]>,
             output: Option<Vec<u8>>| {
        with(
            v(name, MessageType::PaymentRequest, req, e),
            json!({
                "context": "pay", "now": t(now).0, "install_at": t(60).0, "paid_at": t(3650).0,
                "vouchers": [hx(&f.voucher)],
                "paid": paid.iter().map(|x| hx(x)).collect::<Vec<_>>(),
                "revocation_list": rl.map(hx), "output": output.map(|o| hx(&o)),
            }),
        )
    };
    // §8.1 step 5 with several vouchers, installed in the order listed.
    let pv = |name: &str,
              req: &[u8],
              e: &str,
              vouchers: &[&[u8]],
              paid: Vec<Vec<u8>>,
              output: Option<Vec<u8>>| {
        with(
            v(name, MessageType::PaymentRequest, req, e),
            json!({
                "context": "pay", "now": t(NOW).0, "install_at": t(60).0, "paid_at": t(3650).0,
                "vouchers": vouchers.iter().map(|x| hx(x)).collect::<Vec<_>>(),
                "paid": paid.iter().map(|x| hx(x)).collect::<Vec<_>>(),
                "revocation_list": null, "output": output.map(|o| hx(&o)),
            }),
        )
    };
    let voucher = |id: u8, edit: &dyn Fn(&mut Voucher)| {
        let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
        v.id = VoucherId([id; 16]);
        edit(&mut v);
        sign(&v, f.issuer.signer())
    };
    let usd = voucher(0xa1, &|v| v.currency = Currency::parse("USD").unwrap());
    let small_limit = voucher(0xa2, &|v| {
        v.limit = Amount(450);
        v.policy.max_single = Amount(450);
    });
    let small_single = voucher(0xa3, &|v| v.policy.max_single = Amount(100));
    let one_payment = voucher(0xa4, &|v| v.policy.max_payments = 1);
    let req420 = f.request(false, 420, eur, NONCE, Some("table 4"));
    let on = |voucher: &[u8],
              seq: u32,
              cumulative: u64,
              prev: [u8; 16],
              nonce: [u8; 16],
              amount: u64| {
        raw_payment(
            voucher,
            &PaymentTail {
                seq,
                amount,
                cumulative,
                prev,
                merchant: MERCHANT_A.0,
                nonce,
                created_at: t(NOW).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    out.push(pv(
        "pay-chooses-the-first-voucher-that-can-pay",
        &req420,
        "valid",
        &[&usd, &small_single, &f.voucher, &small_limit],
        vec![],
        Some(on(&f.voucher, 1, 420, [0; 16], NONCE, 420)),
    ));
    // The 150 goes to the second voucher (over the first one's largest single payment); the
    // 420 then fits neither: over-policy from the first, insufficient-funds from the second.
    out.push(pv(
        "pay-insufficient-funds-is-the-most-telling-reason",
        &req420,
        "insufficient-funds",
        &[&small_single, &small_limit, &usd],
        vec![f.request(false, 150, eur, [0x43; 16], None)],
        None,
    ));
    out.push(pv(
        "pay-a-reason-in-the-right-currency-beats-wrong-currency",
        &req420,
        "over-policy",
        &[&usd, &small_single],
        vec![],
        None,
    ));
    // A voucher installed within the skew before its window, paid before the skew allows.
    let later = voucher(0xa6, &|v| {
        v.not_before = t(7200);
        v.not_after = t(9000);
    });
    let fresh_then = {
        let certificate = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
        sign(
            &PaymentRequest {
                certificate,
                amount: Amount(420),
                currency: eur,
                nonce: Nonce(NONCE),
                created_at: t(6890),
                reference: None,
            },
            &f.merchant_a,
        )
    };
    out.push(with(
        v("pay-voucher-not-yet-valid", MessageType::PaymentRequest, &fresh_then, "not-yet-valid"),
        json!({
            "context": "pay", "now": t(7200 - types::CLOCK_SKEW_SECS - 1).0, "install_at": t(7200 - types::CLOCK_SKEW_SECS).0,
            "paid_at": t(7200).0, "vouchers": [hx(&later)], "paid": [], "revocation_list": null, "output": null,
        }),
    ));
    let first = f.request(false, 50, eur, [0x41; 16], None);
    out.push(pv(
        "pay-max-payments-used-up",
        &f.request(false, 60, eur, [0x42; 16], None),
        "over-policy",
        &[&one_payment],
        vec![first.clone()],
        None,
    ));
    // §8.1 step 4: a retry names the same merchant and nonce; a different amount is refused.
    out.push(pv(
        "pay-retry-with-another-amount",
        &f.request(false, 70, eur, [0x41; 16], None),
        "wrong-amount",
        &[&f.voucher],
        vec![first],
        None,
    ));
    let req = f.request(false, 420, eur, NONCE, Some("table 4"));
    // The expected payment is built independently of the wallet, by the raw builder.
    // The wallet's first payment (seq 1, 420 to merchant A for `NONCE`), made at `at`.
    let first_at = |at: u32| {
        raw_payment(
            &f.voucher,
            &PaymentTail {
                created_at: t(at).0.to_le_bytes(),
                ..tail_to_a(1, 420, 420, [0; 16], NONCE)
            },
            &f.holder,
        )
    };
    let expected = first_at(NOW);
    out.push(p(
        "pay-first-request",
        &req,
        "valid",
        NOW,
        vec![],
        None,
        Some(expected.clone()),
    ));
    let req2 = f.request(true, 1200, eur, [0x12; 16], None);
    let expected2 = raw_payment(
        &f.voucher,
        &PaymentTail {
            seq: 2,
            amount: 1200,
            cumulative: 1620,
            prev: pid(&expected).link().0,
            merchant: MERCHANT_B.0,
            nonce: [0x12; 16],
            created_at: t(NOW).0.to_le_bytes(),
        },
        &f.holder,
    );
    out.push(p(
        "pay-second-request-links-to-first",
        &req2,
        "valid",
        NOW,
        vec![req.clone()],
        None,
        Some(expected2),
    ));
    out.push(p(
        "pay-retry-returns-same-payment",
        &req,
        "valid",
        NOW,
        vec![req.clone()],
        None,
        Some(expected.clone()),
    ));
    out.push(p(
        "pay-wrong-currency",
        &f.request(false, 420, Currency::parse("USD").unwrap(), NONCE, None),
        "wrong-currency",
        NOW,
        vec![],
        None,
        None,
    ));
    out.push(p(
        "pay-over-max-single",
        &f.request(false, 2600, eur, NONCE, None),
        "over-policy",
        NOW,
        vec![],
        None,
        None,
    ));
    let r25 = |n: u8| f.request(false, 2500, eur, [n; 16], None);
    out.push(p(
        "pay-exhausted-voucher",
        &f.request(false, 1, eur, [0x40; 16], None),
        "insufficient-funds",
        NOW,
        vec![r25(0x41), r25(0x42)],
        None,
        None,
    ));
    out.push(p(
        "pay-expired-voucher",
        &req,
        "expired",
        30 * 86_400 + 301,
        vec![],
        None,
        None,
    ));
    let mut bad = req.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    out.push(p(
        "pay-request-bad-signature",
        &bad,
        "bad-signature",
        NOW,
        vec![],
        None,
        None,
    ));
    let rl = f
        .issuer
        .revocation_list(3, t(100), &[], &[MERCHANT_A])
        .unwrap();
    out.push(p(
        "pay-revoked-merchant",
        &req,
        "revoked",
        NOW,
        vec![],
        Some(&rl),
        None,
    ));
    let rl_v = f
        .issuer
        .revocation_list(4, t(100), &[VOUCHER_ID], &[])
        .unwrap();
    out.push(p(
        "pay-revoked-voucher",
        &req,
        "revoked",
        NOW,
        vec![],
        Some(&rl_v),
        None,
    ));
    // §8.1 step 2: a retry returns the stored payment whatever happened since.
    out.push(p(
        "pay-retry-after-the-merchant-was-revoked",
        &req,
        "valid",
        NOW,
        vec![req.clone()],
        Some(&rl),
        Some(expected.clone()),
    ));
    out.push(p(
        "pay-retry-after-the-certificate-expired",
        &req,
        "valid",
        365 * 86_400 + 301,
        vec![req.clone()],
        None,
        Some(expected.clone()),
    ));
    // §8.1 step 4: a request older than REQUEST_FRESH_SECS plus the skew is stale; one from
    // beyond the skew in the future is not yet valid; one whose created_at is 0 (a till
    // without a clock) is not checked.
    out.push(p(
        "pay-stale-request",
        &req,
        "expired",
        3600 + types::REQUEST_FRESH_SECS + types::CLOCK_SKEW_SECS + 1,
        vec![],
        None,
        None,
    ));
    out.push(p(
        "pay-request-fresh-at-the-edge",
        &req,
        "valid",
        3600 + types::REQUEST_FRESH_SECS + types::CLOCK_SKEW_SECS,
        vec![],
        None,
        Some(first_at(
            3600 + types::REQUEST_FRESH_SECS + types::CLOCK_SKEW_SECS,
        )),
    ));
    out.push(p(
        "pay-request-from-the-future",
        &req,
        "not-yet-valid",
        3600 - types::CLOCK_SKEW_SECS - 1,
        vec![],
        None,
        None,
    ));
    let clockless = {
        let certificate = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
        sign(
            &PaymentRequest {
                certificate,
                amount: Amount(420),
                currency: eur,
                nonce: Nonce(NONCE),
                created_at: Timestamp(0),
                reference: None,
            },
            &f.merchant_a,
        )
    };
    out.push(p(
        "pay-request-without-a-clock-is-not-checked",
        &clockless,
        "valid",
        2 * 86_400,
        vec![],
        None,
        Some(first_at(2 * 86_400)),
    ));
    // §8.1: two rules broken at once.
    out.push(p(
        "pay-two-expired-certificate-before-revoked-merchant",
        &req,
        "expired",
        365 * 86_400 + 301,
        vec![],
        Some(&rl),
        None,
    ));
    let mut usd_forged = f.request(false, 420, Currency::parse("USD").unwrap(), NONCE, None);
    let last = usd_forged.len() - 1;
    usd_forged[last] ^= 1;
    out.push(p(
        "pay-two-bad-signature-before-wrong-currency",
        &usd_forged,
        "bad-signature",
        NOW,
        vec![],
        None,
        None,
    ));
    out.push(p(
        "pay-certificate-expired",
        &req,
        "expired",
        365 * 86_400 + 301,
        vec![],
        None,
        None,
    ));
    let forged_cert = {
        let cert = decode_signed::<MerchantCertificate<'_>>(&f.cert_a).unwrap();
        let c = *cert.value();
        let forged = sign(&c, &f.stranger);
        let certificate = decode_signed::<MerchantCertificate<'_>>(&forged).unwrap();
        sign(
            &PaymentRequest {
                certificate,
                amount: Amount(420),
                currency: eur,
                nonce: Nonce(NONCE),
                created_at: t(3600),
                reference: None,
            },
            &f.merchant_a,
        )
    };
    out.push(p(
        "pay-forged-certificate",
        &forged_cert,
        "bad-signature",
        NOW,
        vec![],
        None,
        None,
    ));
    out
}
