//! SPEC §8.3, order independence: the same records, arriving before their deadlines in any
//! order and split into batches in any way, leave settlement in the same final state (credited
//! payments, credits, each voucher's credited total, overspend, proof flag and release).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_conformance::fixture::*;
use offpay_conformance::vectors::batch;
use offpay_protocol::*;
use proptest::prelude::*;
use std::sync::OnceLock;

struct Records {
    trust: TrustStore<4>,
    certs: [Vec<u8>; 2],
    all: Vec<Vec<u8>>,
    payments: Vec<PaymentId>,
}

/// An honest chain of three payments and a clone's chain of two on one voucher (limit 5,000),
/// a payment on a second, short voucher; for each payment a good receipt, one accepted after
/// the voucher's window, a clockless one and one from the wrong merchant.
fn records() -> &'static Records {
    static R: OnceLock<Records> = OnceLock::new();
    R.get_or_init(|| {
        let f = Fixture::new();
        let short = voucher_with(&f, [0x6c; 16], t(2 * 86_400));
        let p1 = payment(&f, &f.voucher, 1, 2000, 2000, None, MERCHANT_A, [1; 16]);
        let p2 = payment(
            &f,
            &f.voucher,
            2,
            1500,
            3500,
            Some(&p1),
            MERCHANT_B,
            [2; 16],
        );
        let p3 = payment(
            &f,
            &f.voucher,
            3,
            1000,
            4500,
            Some(&p2),
            MERCHANT_A,
            [3; 16],
        );
        let c1 = payment(&f, &f.voucher, 1, 2500, 2500, None, MERCHANT_B, [4; 16]);
        let c2 = payment(
            &f,
            &f.voucher,
            2,
            2500,
            5000,
            Some(&c1),
            MERCHANT_A,
            [5; 16],
        );
        let s1 = payment(&f, &short, 1, 700, 700, None, MERCHANT_B, [6; 16]);
        let mut all = Vec::new();
        let mut payments = Vec::new();
        for p in [p1, p2, p3, c1, c2, s1] {
            let pay = decode_signed::<msg::Payment<'_>>(&p).unwrap();
            let (own, other) = if pay.merchant_id == MERCHANT_A {
                (&f.merchant_a, &f.merchant_b)
            } else {
                (&f.merchant_b, &f.merchant_a)
            };
            let wrong_id = if pay.merchant_id == MERCHANT_A {
                MERCHANT_B
            } else {
                MERCHANT_A
            };
            all.push(receipt(&p, pay.merchant_id, own, t(3650)));
            all.push(receipt(&p, pay.merchant_id, own, t(3 * 86_400)));
            all.push(receipt(&p, pay.merchant_id, own, t(40 * 86_400)));
            all.push(receipt(&p, pay.merchant_id, own, Timestamp(0)));
            all.push(receipt(&p, wrong_id, other, t(3650)));
            payments.push(pid(&p));
            all.push(p);
        }
        Records {
            trust: f.trust.clone(),
            certs: [f.cert_a.clone(), f.cert_b.clone()],
            all,
            payments,
        }
    })
}

type Final = (
    Vec<bool>,
    Vec<(MerchantId, Currency, Amount)>,
    Vec<Option<(Amount, Amount, bool, Option<Amount>)>>,
);

/// Ingests `order` (indexes into the records), cut into batches after each index in `cuts`,
/// then closes; returns the final state.
fn settle(order: &[usize], cuts: &[bool]) -> Final {
    let r = records();
    let mut s = Settlement::new(r.trust.clone(), settlement::DEFAULT_GRACE_SECS);
    for c in &r.certs {
        s.register_merchant(c).unwrap();
    }
    let mut pending: Vec<&[u8]> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        pending.push(&r.all[i]);
        if cuts.get(k).copied().unwrap_or(false) || k + 1 == order.len() {
            let report = s.ingest(&batch(&pending), t(3700)).unwrap();
            assert_eq!(report.entries.len(), pending.len());
            pending.clear();
        }
    }
    s.close_expired(t(400 * 86_400));
    (
        r.payments.iter().map(|p| s.is_credited(p)).collect(),
        s.credits().collect(),
        [VOUCHER_ID, VoucherId([0x6c; 16])]
            .iter()
            .map(|id| {
                s.voucher(id)
                    .map(|v| (v.credited, v.overspend, v.fraud, v.released))
            })
            .collect(),
    )
}

fn in_order() -> Vec<usize> {
    (0..records().all.len()).collect()
}

/// The reference: every record in one batch, in the order built.
fn reference() -> &'static Final {
    static F: OnceLock<Final> = OnceLock::new();
    F.get_or_init(|| settle(&in_order(), &[]))
}

#[test]
fn the_reference_state_is_what_the_rules_say() {
    let (credited, credits, vouchers) = reference().clone();
    // Every payment has a good receipt in time: all six are credited, the clone included (§10).
    assert_eq!(credited, vec![true; 6]);
    let a: u64 = 2000 + 1000 + 2500;
    let b: u64 = 1500 + 2500 + 700;
    assert_eq!(
        credits,
        vec![
            (MERCHANT_A, eur(), Amount(a)),
            (MERCHANT_B, eur(), Amount(b))
        ]
    );
    // 9,500 credited on a 5,000 voucher: 4,500 overspend, proven; the short voucher releases
    // what was not spent.
    assert_eq!(
        vouchers,
        vec![
            Some((Amount(9500), Amount(4500), true, Some(Amount(0)))),
            Some((Amount(700), Amount(0), false, Some(Amount(4300)))),
        ]
    );
}

#[test]
fn reversed_one_record_per_batch_gives_the_same_state() {
    let order: Vec<usize> = in_order().into_iter().rev().collect();
    let cuts = vec![true; order.len()];
    assert_eq!(&settle(&order, &cuts), reference());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_order_and_any_split_gives_the_same_state(
        order in Just(in_order()).prop_shuffle(),
        cuts in proptest::collection::vec(any::<bool>(), 36),
    ) {
        prop_assert_eq!(&settle(&order, &cuts), reference());
    }

    /// Only some of the records, in two different orders: still one final state.
    #[test]
    fn any_subset_in_two_orders_gives_one_state(
        picked in proptest::sample::subsequence(in_order(), 0..=36),
        seed in any::<u64>(),
        cuts in proptest::collection::vec(any::<bool>(), 36),
    ) {
        let mut shuffled = picked.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(settle(&picked, &[]), settle(&shuffled, &cuts));
    }
}
