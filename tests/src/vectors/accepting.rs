//! Acceptor decisions (`accept.json`).

use super::*;

/// Acceptor decisions.
pub(super) fn accept(f: &Fixture) -> Vec<Value> {
    let mut out = Vec::new();
    let open =
        |amount: u64, cur: &str| json!({ "nonce": hx(&NONCE), "amount": amount, "currency": cur });
    let acc = |name: &str,
               p: &[u8],
               e: &str,
               open: Value,
               seen: Vec<&[u8]>,
               rl: Option<&[u8]>,
               now: u32| {
        with(
            v(name, MessageType::Payment, p, e),
            json!({
                "context": "accept", "now": t(now).0, "open_request": open,
                "seen": seen.iter().map(|s| hx(s)).collect::<Vec<_>>(),
                "revocation_list": rl.map(hx),
            }),
        )
    };
    let p1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    let p2 = payment(f, &f.voucher, 2, 1200, 1620, Some(&p1), MERCHANT_A, NONCE);
    out.push(acc(
        "accept-first-payment",
        &p1,
        "valid",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-second-payment-after-first",
        &p2,
        "valid",
        open(1200, "EUR"),
        vec![&p1],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-chain-gap-is-fine",
        &payment(f, &f.voucher, 3, 100, 1720, Some(&p2), MERCHANT_A, NONCE),
        "valid",
        open(100, "EUR"),
        vec![&p1],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-voucher-issued-before-its-key",
        &payment(
            f,
            &issued_before_key(f),
            1,
            420,
            420,
            None,
            MERCHANT_A,
            NONCE,
        ),
        "issuer-key-not-valid",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    // §7.1: a holder key with a torsion component is not weak; its payment is accepted when
    // the cofactorless equation holds, refused when only the cofactored one does.
    let (torsion_ok, torsion_bad) = torsion_payments(f);
    for (name, p, e) in [
        (
            "accept-torsion-holder-key-equation-holds",
            &torsion_ok,
            "valid",
        ),
        (
            "accept-torsion-holder-key-equation-fails",
            &torsion_bad,
            "bad-signature",
        ),
    ] {
        let amount = decode_signed::<Payment<'_>>(p).unwrap().amount.0;
        out.push(acc(name, p, e, open(amount, "EUR"), vec![], None, NOW));
    }
    let pb = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_B, NONCE);
    out.push(acc(
        "accept-wrong-merchant",
        &pb,
        "wrong-merchant",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let pn = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, [0x99; 16]);
    out.push(acc(
        "accept-wrong-nonce",
        &pn,
        "wrong-nonce",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-wrong-currency",
        &p1,
        "wrong-currency",
        open(420, "USD"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-wrong-amount",
        &p1,
        "wrong-amount",
        open(400, "EUR"),
        vec![],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-expired-voucher",
        &p1,
        "expired",
        open(420, "EUR"),
        vec![],
        None,
        30 * 86_400 + 301,
    ));
    let early = voucher_with(f, [0x5b; 16], t(9000));
    let early = {
        let mut vv = decode_signed::<Voucher>(&early).unwrap().value().to_owned();
        vv.not_before = t(7200);
        sign(&vv, f.issuer.signer())
    };
    let on_early = payment(f, &early, 1, 420, 420, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-voucher-not-yet-valid",
        &on_early,
        "not-yet-valid",
        open(420, "EUR"),
        vec![],
        None,
        7200 - 301,
    ));
    let big = payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-over-max-single",
        &big,
        "over-policy",
        open(2600, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let eleventh = {
        let prev = [0x42u8; 16];
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 11,
                amount: 100,
                cumulative: 1100,
                prev,
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    out.push(acc(
        "accept-over-max-payments",
        &eleventh,
        "over-policy",
        open(100, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let over = {
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 3,
                amount: 2000,
                cumulative: 5100,
                prev: [0x42; 16],
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    out.push(acc(
        "accept-cumulative-over-limit",
        &over,
        "over-limit",
        open(2000, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let clone1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    let other1 = payment(f, &f.voucher, 1, 300, 300, None, MERCHANT_A, [0x31; 16]);
    out.push(acc(
        "accept-sequence-reused-with-other-content",
        &clone1,
        "sequence-reused",
        open(420, "EUR"),
        vec![&other1],
        None,
        NOW,
    ));
    let low = payment(f, &f.voucher, 3, 100, 500, Some(&p2), MERCHANT_A, NONCE);
    out.push(acc(
        "accept-cumulative-runs-backwards",
        &low,
        "chain-inconsistent",
        open(100, "EUR"),
        vec![&p2],
        None,
        NOW,
    ));
    let broken = {
        raw_payment(
            &f.voucher,
            &PaymentTail {
                seq: 2,
                amount: 1200,
                cumulative: 1620,
                prev: [0x42; 16],
                merchant: MERCHANT_A.0,
                nonce: NONCE,
                created_at: t(3700).0.to_le_bytes(),
            },
            &f.holder,
        )
    };
    // A clone's first payment, presented after the real wallet's second (which links to the
    // real first payment): a fork seen from above.
    let fork1 = payment(f, &f.voucher, 1, 300, 300, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-fork-of-a-seen-payments-predecessor",
        &fork1,
        "chain-inconsistent",
        open(300, "EUR"),
        vec![&p2],
        None,
        NOW,
    ));
    out.push(acc(
        "accept-link-to-unknown-predecessor",
        &broken,
        "chain-inconsistent",
        open(1200, "EUR"),
        vec![&p1],
        None,
        NOW,
    ));
    let rl = f
        .issuer
        .revocation_list(9, t(100), &[VOUCHER_ID], &[])
        .unwrap();
    out.push(acc(
        "accept-revoked-voucher",
        &p1,
        "revoked",
        open(420, "EUR"),
        vec![],
        Some(&rl),
        NOW,
    ));
    let rl_other = f
        .issuer
        .revocation_list(9, t(100), &[VoucherId([0x01; 16])], &[])
        .unwrap();
    out.push(acc(
        "accept-with-unrelated-revocation",
        &p1,
        "valid",
        open(420, "EUR"),
        vec![],
        Some(&rl_other),
        NOW,
    ));
    let mut bad = p1.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x10;
    out.push(acc(
        "accept-bad-signature",
        &bad,
        "bad-signature",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let by_stranger = raw_payment(
        &f.voucher,
        &PaymentTail {
            seq: 1,
            amount: 420,
            cumulative: 420,
            prev: [0; 16],
            merchant: MERCHANT_A.0,
            nonce: NONCE,
            created_at: t(3700).0.to_le_bytes(),
        },
        &f.stranger,
    );
    out.push(acc(
        "accept-signed-by-wrong-key",
        &by_stranger,
        "bad-signature",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let forged_voucher = sign(
        &voucher_value(f.holder.public_key(), f.issuer.key_id()),
        &f.stranger,
    );
    let on_forged = payment(f, &forged_voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    out.push(acc(
        "accept-voucher-forged",
        &on_forged,
        "bad-signature",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    let mut truncated = p1.clone();
    truncated.truncate(100);
    out.push(acc(
        "accept-truncated",
        &truncated,
        "truncated",
        open(420, "EUR"),
        vec![],
        None,
        NOW,
    ));
    // §8.2: payments that break two rules at once get the code of the earlier check.
    let rl_voucher = f
        .issuer
        .revocation_list(5, t(100), &[VOUCHER_ID], &[])
        .unwrap();
    let mut bad_sig = payment(f, &f.voucher, 3, 2000, 5100, Some(&p2), MERCHANT_A, NONCE);
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    type Case<'a> = (&'a str, Vec<u8>, &'a str, Value, Option<&'a [u8]>, u32);
    let two: Vec<Case<'_>> = vec![
        // steps 3 and 4: another merchant's payment answering no open request
        (
            "accept-two-wrong-merchant-before-wrong-nonce",
            payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_B, [0x98; 16]),
            "wrong-merchant",
            open(420, "EUR"),
            None,
            NOW,
        ),
        // steps 5 and 6: another currency and another amount
        (
            "accept-two-wrong-currency-before-wrong-amount",
            p1.clone(),
            "wrong-currency",
            open(421, "USD"),
            None,
            NOW,
        ),
        // steps 8 and 10: an expired voucher and a payment over its largest single payment
        (
            "accept-two-expired-before-over-policy",
            payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, NONCE),
            "expired",
            open(2600, "EUR"),
            None,
            30 * 86_400 + 301,
        ),
        // steps 9 and 10: a revoked voucher and a payment over policy
        (
            "accept-two-revoked-before-over-policy",
            payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, NONCE),
            "revoked",
            open(2600, "EUR"),
            Some(&rl_voucher),
            NOW,
        ),
        // steps 11 and 14: over the limit and a bad signature
        (
            "accept-two-over-limit-before-bad-signature",
            bad_sig,
            "over-limit",
            open(2000, "EUR"),
            None,
            NOW,
        ),
    ];
    for (name, p, e, o, rl, now) in two {
        out.push(acc(name, &p, e, o, vec![], rl, now));
    }
    out
}
