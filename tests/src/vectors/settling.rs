//! Settlement scenarios (`settlement.json`).

use super::*;

/// Settlement scenarios.
pub(super) fn settlement(f: &Fixture) -> Vec<Value> {
    let grace = settlement::DEFAULT_GRACE_SECS;
    let step = |b: Vec<u8>, now: u32, expect: &[&str]| json!({ "batch": hx(&b), "now": t(now).0, "expect": expect });
    let scenario = |name: &str, steps: Vec<Value>, close_at: Option<u32>, fin: Value| json!({ "name": name, "message": "SyncBatch", "context": "settlement", "grace_secs": grace, "steps": steps, "close_at": close_at.map(|c| t(c).0), "final": fin });
    let p1 = payment(f, &f.voucher, 1, 420, 420, None, MERCHANT_A, NONCE);
    let r1 = receipt(&p1, MERCHANT_A, &f.merchant_a, t(NOW));
    let p2 = payment(
        f,
        &f.voucher,
        2,
        1200,
        1620,
        Some(&p1),
        MERCHANT_B,
        [0x12; 16],
    );
    let r2 = receipt(&p2, MERCHANT_B, &f.merchant_b, t(NOW));
    let p3 = payment(
        f,
        &f.voucher,
        3,
        80,
        1700,
        Some(&p2),
        MERCHANT_A,
        [0x13; 16],
    );
    let r3 = receipt(&p3, MERCHANT_A, &f.merchant_a, t(NOW));
    let a = hx(&MERCHANT_A.0);
    let b = hx(&MERCHANT_B.0);
    let vid = hx(&VOUCHER_ID.0);
    let mut out = Vec::new();
    out.push(scenario("same-payment-from-both-sides", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&p1, &r1, &p2, &r2]), NOW + 10, &["duplicate", "duplicate", "credited", "credited"]),
        step(batch(&[&p2, &r2]), NOW + 20, &["duplicate", "duplicate"]),
    ], None, json!({ "credits": { &a: 420, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1620, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("same-batch-twice", vec![
        step(batch(&[&p1, &r1, &p2, &r2]), NOW, &["credited", "credited", "credited", "credited"]),
        step(batch(&[&p1, &r1, &p2, &r2]), NOW, &["duplicate", "duplicate", "duplicate", "duplicate"]),
    ], None, json!({ "credits": { &a: 420, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1620, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("receipt-before-payment", vec![
        step(batch(&[&r1]), NOW, &["pending"]),
        step(batch(&[&p1]), NOW + 5, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // A cloned wallet spends the whole limit again at merchant B, from sequence 1.
    let c1 = payment(f, &f.voucher, 1, 2500, 2500, None, MERCHANT_B, [0x21; 16]);
    let rc1 = receipt(&c1, MERCHANT_B, &f.merchant_b, t(NOW));
    let c2 = payment(
        f,
        &f.voucher,
        2,
        2500,
        5000,
        Some(&c1),
        MERCHANT_B,
        [0x22; 16],
    );
    let rc2 = receipt(&c2, MERCHANT_B, &f.merchant_b, t(NOW));
    let honest_chain = [&p1[..], &r1, &p2, &r2, &p3, &r3];
    out.push(scenario("equivocation-cloned-wallet", vec![
        step(batch(&honest_chain), NOW, &["credited", "credited", "credited", "credited", "credited", "credited"]),
        step(batch(&[&c1, &rc1, &c2, &rc2]), NOW + 60, &["conflict", "credited", "conflict", "credited"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 500, &b: 6200 }, "proofs": 2, "vouchers": { &vid: { "credited": 6700, "overspend": 1700, "fraud": true, "released": 0 } } })));
    out.push(scenario("chain-gap", vec![
        step(batch(&[&p1, &r1, &p3, &r3]), NOW, &["credited", "credited", "credited", "credited"]),
        step(batch(&[&p2, &r2]), NOW + 30, &["credited", "credited"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 500, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1700, "overspend": 0, "fraud": false, "released": 3300 } } })));
    out.push(scenario("sync-after-grace", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&p2, &r2]), 30 * 86_400 + grace + 1, &["rejected:settlement-closed", "rejected:settlement-closed"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": 4580 } } })));
    out.push(scenario("sync-at-the-deadline", vec![
        step(batch(&[&p1, &r1]), 30 * 86_400 + grace, &["credited", "credited"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": 4580 } } })));
    out.push(scenario("undelivered-payment-is-released", vec![
        step(batch(&[&p1]), NOW, &["pending"]),
    ], Some(30 * 86_400 + grace + 1), json!({ "credits": {}, "proofs": 0, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": false, "released": 5000 } } })));
    let mut tampered = p1.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let forged_receipt = receipt(&p1, MERCHANT_A, &f.merchant_b, t(NOW));
    let wrong_merchant_receipt = receipt(&p1, MERCHANT_B, &f.merchant_b, t(NOW));
    // Two payments drawn on one forged voucher (the issuer's key id, a stranger's signature)
    // in one batch: both are refused, and the genuine voucher's payment still goes through.
    let forged = sign(
        &voucher_value(f.holder.public_key(), f.issuer.key_id()),
        &f.stranger,
    );
    let f1 = payment(f, &forged, 1, 420, 420, None, MERCHANT_A, [0x51; 16]);
    let f2 = payment(f, &forged, 2, 100, 520, Some(&f1), MERCHANT_A, [0x52; 16]);
    out.push(scenario("forged-voucher-fails-every-payment-on-it", vec![
        step(batch(&[&f1, &f2, &p1, &r1]), NOW, &["rejected:bad-signature", "rejected:bad-signature", "credited", "credited"]),
        step(batch(&[&f2]), NOW, &["rejected:bad-signature"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3: the final state does not depend on the order records arrive in. A receipt
    // accepted after the voucher's window (plus the skew) never credits its payment; a good
    // receipt that arrives later still does, whichever of the two came first.
    let late = t(30 * 86_400 + types::CLOCK_SKEW_SECS + 1);
    let r1_late = receipt(&p1, MERCHANT_A, &f.merchant_a, late);
    out.push(scenario("order-late-receipt-before-payment", vec![
        step(batch(&[&r1_late]), NOW, &["pending"]),
        step(batch(&[&p1]), NOW + 5, &["pending"]),
        step(batch(&[&r1]), NOW + 10, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("order-late-receipt-after-payment", vec![
        step(batch(&[&p1]), NOW, &["pending"]),
        step(batch(&[&r1_late]), NOW + 5, &["rejected:expired"]),
        step(batch(&[&r1]), NOW + 10, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3: a merchant without a clock writes `accepted_at = 0`; the payment's own
    // `created_at` (signed by the holder) is then the time checked against the window.
    let r1_clockless = receipt(&p1, MERCHANT_A, &f.merchant_a, Timestamp(0));
    let expired_tail = PaymentTail {
        seq: 2,
        amount: 100,
        cumulative: 520,
        prev: pid(&p1).link().0,
        merchant: MERCHANT_A.0,
        nonce: [0x14; 16],
        created_at: late.0.to_le_bytes(),
    };
    let p_expired = raw_payment(&f.voucher, &expired_tail, &f.holder);
    let r_expired_clockless = receipt(&p_expired, MERCHANT_A, &f.merchant_a, Timestamp(0));
    out.push(scenario("clockless-receipt-checks-the-payment-time", vec![
        step(batch(&[&p1, &r1_clockless]), NOW, &["credited", "credited"]),
        step(batch(&[&p_expired, &r_expired_clockless]), NOW + 5, &["pending", "rejected:expired"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3: a receipt is known by its bytes; another receipt for a payment already credited
    // is a duplicate and credits nothing more.
    out.push(scenario("second-receipt-for-a-credited-payment", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&r1_clockless]), NOW + 5, &["duplicate"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §7.2: settlement checks the key where the merchant does, at the voucher's `not_before`.
    let early = payment(
        f,
        &issued_before_key(f),
        1,
        420,
        420,
        None,
        MERCHANT_A,
        NONCE,
    );
    let early_r = receipt(&early, MERCHANT_A, &f.merchant_a, t(NOW));
    out.push(scenario(
        "voucher-issued-before-its-key",
        vec![step(
            batch(&[&early, &early_r]),
            NOW,
            &[
                "rejected:issuer-key-not-valid",
                "rejected:issuer-key-not-valid",
            ],
        )],
        None,
        json!({ "credits": {}, "proofs": 0, "vouchers": {} }),
    ));
    // §7.1 in a batch: settlement's batch verification gives the strict verdict, so a payment
    // under a torsion key whose cofactorless equation fails is refused among good records, and
    // one whose equation holds is credited, as the merchant decided.
    let (torsion_ok, torsion_bad) = torsion_payments(f);
    let torsion_ok_r = receipt(&torsion_ok, MERCHANT_A, &f.merchant_a, t(NOW));
    let torsion_bad_r = receipt(&torsion_bad, MERCHANT_A, &f.merchant_a, t(NOW));
    let tok = decode_signed::<Payment<'_>>(&torsion_ok).unwrap().amount.0;
    let tvid = hx(&[0x78; 16]);
    out.push(scenario("torsion-holder-key-in-a-batch", vec![
        step(batch(&[&torsion_bad, &p1, &torsion_bad_r, &r1]), NOW, &["rejected:bad-signature", "credited", "rejected:bad-signature", "credited"]),
        step(batch(&[&torsion_ok, &p2, &torsion_ok_r, &r2]), NOW + 5, &["credited", "credited", "credited", "credited"]),
    ], None, json!({ "credits": { &a: 420 + tok, &b: 1200 }, "proofs": 0, "vouchers": { &vid: { "credited": 1620, "overspend": 0, "fraud": false, "released": null }, &tvid: { "credited": tok, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 1: the same payment twice in one batch is recorded once.
    out.push(scenario("payment-twice-in-one-batch", vec![
        step(batch(&[&p1, &p1, &r1]), NOW, &["credited", "duplicate", "credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 4: the skew of §4 applies to the time of the payment: a receipt accepted
    // exactly 300 s after `not_after` still qualifies (one second later does not: the
    // order-late-receipt scenarios).
    let r1_edge = receipt(
        &p1,
        MERCHANT_A,
        &f.merchant_a,
        t(30 * 86_400 + types::CLOCK_SKEW_SECS),
    );
    out.push(scenario("receipt-at-the-edge-of-the-skew", vec![
        step(batch(&[&p1, &r1_edge]), NOW, &["credited", "credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 3: which proof a payment that breaks several rules yields, and which payment
    // is `first`. Checked per step in `proofs` (kind, first id, second id).
    let off_link = |seq: u32, amount: u64, cumulative: u64, prev: [u8; 16], n: u8| {
        raw_payment(
            &f.voucher,
            &tail_to_a(seq, amount, cumulative, prev, [n; 16]),
            &f.holder,
        )
    };
    let pid_hex = |p: &[u8]| hx(&pid(p).0);
    let proof = |kind: &str, first: &[u8], second: &[u8]| json!({ "kind": kind, "first": pid_hex(first), "second": pid_hex(second) });
    // Same sequence as p2, linking p1, and not linked by p3: SameSequence is checked first.
    let x2 = off_link(2, 1200, 1620, pid(&p1).link().0, 0x31);
    let (lo2, hi2) = if pid(&p2).0 < pid(&x2).0 {
        (&p2, &x2)
    } else {
        (&x2, &p2)
    };
    // Not linking p1, and not linked by p3, with p2 unknown: the payment before (seq − 1) is
    // checked before the payment after (seq + 1).
    let w2 = off_link(2, 1200, 1620, [0x77; 16], 0x32);
    // Linking p1 with a cumulative that does not add up: CumulativeMismatch, p1 first.
    let z2 = off_link(2, 1200, 1700, pid(&p1).link().0, 0x33);
    let stepp = |b: Vec<u8>, now: u32, expect: &[&str], proofs: Vec<Value>| json!({ "batch": hx(&b), "now": t(now).0, "expect": expect, "proofs": proofs });
    out.push(scenario("which-proof-a-conflict-yields", vec![
        stepp(batch(&[&p1, &p2, &p3]), NOW, &["pending", "pending", "pending"], vec![]),
        stepp(batch(&[&x2]), NOW + 1, &["conflict"], vec![proof("SameSequence", lo2, hi2)]),
    ], None, json!({ "credits": {}, "proofs": 1, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": true, "released": null } } })));
    out.push(scenario("proof-against-the-payment-before-first", vec![
        stepp(batch(&[&p1, &p3]), NOW, &["pending", "pending"], vec![]),
        stepp(batch(&[&w2]), NOW + 1, &["conflict"], vec![proof("BrokenLink", &p1, &w2)]),
    ], None, json!({ "credits": {}, "proofs": 1, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": true, "released": null } } })));
    out.push(scenario("cumulative-mismatch-names-the-earlier-payment-first", vec![
        stepp(batch(&[&z2]), NOW, &["pending"], vec![]),
        stepp(batch(&[&p1]), NOW + 1, &["conflict"], vec![proof("CumulativeMismatch", &p1, &z2)]),
    ], None, json!({ "credits": {}, "proofs": 1, "vouchers": { &vid: { "credited": 0, "overspend": 0, "fraud": true, "released": null } } })));
    // §8.3 step 1's refusals: a merchant settlement has no certificate for, a payment over the
    // voucher's policy, a cumulative over its limit.
    let stranger_id = MerchantId(*b"STRANGER");
    let unknown = raw_payment(
        &f.voucher,
        &PaymentTail {
            seq: 1,
            amount: 420,
            cumulative: 420,
            prev: [0; 16],
            merchant: stranger_id.0,
            nonce: [0x81; 16],
            created_at: t(3700).0.to_le_bytes(),
        },
        &f.holder,
    );
    let over_single = payment(f, &f.voucher, 1, 2600, 2600, None, MERCHANT_A, [0x82; 16]);
    let over_limit = payment(
        f,
        &f.voucher,
        3,
        2000,
        5100,
        Some(&p2),
        MERCHANT_A,
        [0x83; 16],
    );
    out.push(scenario("payments-refused-by-policy", vec![
        step(batch(&[&unknown, &over_single, &over_limit, &p1, &r1]), NOW, &["rejected:unknown-merchant", "rejected:over-policy", "rejected:over-limit", "credited", "credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    // §8.3 step 1: one id, one voucher. A second voucher under a recorded voucher's id (the
    // issuer's mistake, or a test of it) is refused, in a later batch or in the same one.
    let twin = {
        let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
        v.limit = Amount(4000);
        v.policy.max_single = Amount(2500);
        sign(&v, f.issuer.signer())
    };
    let q1 = payment(f, &twin, 1, 420, 420, None, MERCHANT_B, [0x91; 16]);
    let q2 = payment(f, &twin, 2, 100, 520, Some(&q1), MERCHANT_B, [0x92; 16]);
    out.push(scenario("two-vouchers-under-one-id", vec![
        step(batch(&[&p1, &r1]), NOW, &["credited", "credited"]),
        step(batch(&[&q1]), NOW + 1, &["rejected:chain-inconsistent"]),
        step(batch(&[&p2, &q2]), NOW + 2, &["pending", "rejected:chain-inconsistent"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    out.push(scenario("rejected-records-change-nothing", vec![
        step(batch(&[&tampered, &forged_receipt, &f.cert_a, &p1[..40]]), NOW, &["rejected:bad-signature", "rejected:bad-signature", "rejected:wrong-type", "rejected:truncated"]),
        step(batch(&[&p1, &wrong_merchant_receipt]), NOW, &["pending", "rejected:wrong-merchant"]),
        step(batch(&[&r1]), NOW, &["credited"]),
    ], None, json!({ "credits": { &a: 420 }, "proofs": 0, "vouchers": { &vid: { "credited": 420, "overspend": 0, "fraud": false, "released": null } } })));
    out
}
