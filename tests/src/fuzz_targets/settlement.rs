//! The structure-aware settlement target and its model.

use super::*;

/// A pool of genuinely signed records for structure-aware settlement fuzzing: an honest chain,
/// a clone's chain, mutated-and-re-signed variants, receipts from the right and wrong merchant.
struct Pool {
    records: Vec<Vec<u8>>,
    trust: TrustStore<4>,
    certs: [Vec<u8>; 2],
    limits: Vec<(VoucherId, u64)>,
}

fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| {
        let f = Fixture::new();
        let mut records = Vec::new();
        let second = voucher_with(&f, [0x6c; 16], t(2 * 86_400));
        for (vi, voucher) in [&f.voucher, &second].into_iter().enumerate() {
            for chain in 0u8..3 {
                let mut prev: Option<Vec<u8>> = None;
                let mut cumulative = 0;
                for seq in 1..=4u32 {
                    let amount = 100 * u64::from(chain + 1)
                        + u64::from(seq) * 7
                        + if chain == 2 { 900 } else { 0 };
                    cumulative += amount;
                    let merchant = if (seq + u32::from(chain)) % 2 == 0 {
                        MERCHANT_A
                    } else {
                        MERCHANT_B
                    };
                    let p = payment(
                        &f,
                        voucher,
                        seq,
                        amount,
                        cumulative,
                        prev.as_deref(),
                        merchant,
                        [chain * 16 + seq as u8 + vi as u8 * 64; 16],
                    );
                    let (key, other) = if merchant == MERCHANT_A {
                        (&f.merchant_a, &f.merchant_b)
                    } else {
                        (&f.merchant_b, &f.merchant_a)
                    };
                    records.push(receipt(&p, merchant, key, t(3650)));
                    records.push(receipt(&p, merchant, other, t(3650)));
                    // Receipts whose time does not qualify for the second voucher (after its
                    // window) or for either (after both), and a clockless one (§8.3 step 4).
                    records.push(receipt(&p, merchant, key, t(3 * 86_400)));
                    records.push(receipt(&p, merchant, key, t(40 * 86_400)));
                    records.push(receipt(&p, merchant, key, Timestamp(0)));
                    // A variant with a lying cumulative amount, genuinely signed by the holder.
                    let liar = raw_payment(
                        voucher,
                        &PaymentTail {
                            seq: seq + 1,
                            amount: 5,
                            cumulative: cumulative + 1,
                            prev: pid(&p).link().0,
                            merchant: merchant.0,
                            nonce: [0xee; 16],
                            created_at: t(3700).0.to_le_bytes(),
                        },
                        &f.holder,
                    );
                    records.push(liar);
                    records.push(p.clone());
                    prev = Some(p);
                }
            }
        }
        // A P-256 holder's voucher (SPEC §7.1.1): two chains that fork at sequence 1, their
        // receipts, and each payment's high-S twin, which must never be credited.
        for chain in 0u8..2 {
            let mut prev: Option<Vec<u8>> = None;
            let mut cumulative = 0;
            for seq in 1..=4u32 {
                let amount = 150 * u64::from(chain + 1) + u64::from(seq);
                cumulative += amount;
                let p = crate::vectors::holder_p256::payment_p256(
                    &f,
                    &f.voucher_p256,
                    seq,
                    amount,
                    cumulative,
                    prev.as_deref(),
                    MERCHANT_A,
                    [0xc0 + chain * 16 + seq as u8; 16],
                );
                records.push(receipt(&p, MERCHANT_A, &f.merchant_a, t(3650)));
                records.push(crate::vectors::holder_p256::high_s(&p));
                records.push(p.clone());
                prev = Some(p);
            }
        }
        Pool {
            records,
            trust: f.trust.clone(),
            certs: [f.cert_a.clone(), f.cert_b.clone()],
            limits: vec![
                (VOUCHER_ID, 5000),
                (VoucherId([0x6c; 16]), 5000),
                (VOUCHER_P256_ID, 5000),
            ],
        }
    })
}

/// One structure-aware settlement input: batches of records picked from the pool, some damaged.
#[derive(Debug, Arbitrary)]
pub struct SettlementInput {
    batches: Vec<Vec<Pick>>,
    close_after: bool,
}

/// One record of a batch.
#[derive(Debug, Arbitrary)]
pub struct Pick {
    index: u8,
    damage: Option<(u16, u8)>,
}

/// Settlement's final state (SPEC §8.3, order independence): the credited payments, the
/// credits, each voucher's credited total, overspend, proof flag and release.
type FinalState = (
    Vec<bool>,
    Vec<(MerchantId, Currency, Amount)>,
    Vec<Option<(Amount, Amount, bool, Option<Amount>)>>,
);

fn final_state(ledger: &Settlement<4>, p: &Pool) -> FinalState {
    (
        p.records
            .iter()
            .map(|r| ledger.is_credited(&PaymentId(crypto::sha256(r))))
            .collect(),
        ledger.credits().collect(),
        p.limits
            .iter()
            .map(|(id, _)| {
                ledger
                    .voucher(id)
                    .map(|v| (v.credited, v.overspend, v.fraud, v.released))
            })
            .collect(),
    )
}

/// Settlement over arbitrary record sequences, with a model check: a voucher's credits never
/// exceed its limit unless a FraudProof exists for it, every proof verifies, ingesting the
/// same batch again changes nothing, and the same records ingested in another order (reversed,
/// one record per batch) leave the same final state (SPEC §8.3, order independence).
pub fn settlement_ingest(data: &[u8]) {
    let Ok(input) = SettlementInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let p = pool();
    let fresh = || {
        let mut ledger = Settlement::new(p.trust.clone(), settlement::DEFAULT_GRACE_SECS);
        for c in &p.certs {
            ledger.register_merchant(c).unwrap();
        }
        ledger
    };
    let mut ledger = fresh();
    let mut all: Vec<Vec<u8>> = Vec::new();
    for picks in input.batches.iter().take(4) {
        let records: Vec<Vec<u8>> = picks
            .iter()
            .take(12)
            .map(|pick| {
                let mut r = p.records[usize::from(pick.index) % p.records.len()].clone();
                if let Some((at, x)) = pick.damage {
                    let i = usize::from(at) % r.len();
                    r[i] ^= x.max(1);
                }
                r
            })
            .collect();
        let refs: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
        let b = batch(&refs);
        all.extend(records.iter().cloned());
        let now = t(3700);
        let first = ledger.ingest(&b, now).unwrap();
        assert_eq!(first.entries.len(), records.len());
        let snapshot = (
            ledger.credits().collect::<Vec<_>>(),
            ledger.proofs().len(),
            ledger.payment_count(),
        );
        let again = ledger.ingest(&b, now).unwrap();
        for e in &again.entries {
            assert!(
                matches!(
                    e.outcome,
                    Outcome::Duplicate | Outcome::Rejected(_) | Outcome::Pending
                ),
                "re-ingesting gave {:?}",
                e.outcome
            );
        }
        assert!(again.proofs.is_empty());
        assert_eq!(
            snapshot,
            (
                ledger.credits().collect::<Vec<_>>(),
                ledger.proofs().len(),
                ledger.payment_count()
            )
        );
    }
    // The same records, reversed, one per batch: the same final state.
    let mut other = fresh();
    for r in all.iter().rev() {
        other.ingest(&batch(&[r]), t(3700)).unwrap();
    }
    if input.close_after {
        ledger.close_expired(t(400 * 86_400));
        other.close_expired(t(400 * 86_400));
    }
    assert_eq!(
        final_state(&ledger, p),
        final_state(&other, p),
        "the final state depends on the order the records arrived in"
    );
    for (id, limit) in &p.limits {
        if let Some(v) = ledger.voucher(id) {
            assert!(
                v.credited.0 <= *limit || v.fraud,
                "credits {} over limit {limit} with no FraudProof",
                v.credited.0
            );
            assert_eq!(v.overspend.0, v.credited.0.saturating_sub(*limit));
        }
    }
    for proof in ledger.proofs() {
        decode_unsigned::<FraudProof<'_>>(proof)
            .unwrap()
            .verify(&p.trust)
            .unwrap();
    }
}
