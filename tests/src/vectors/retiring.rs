//! Retiring vouchers (`retire.json`, SPEC §8.1.1): a wallet with every slot taken installs
//! one more voucher. Each vector's `steps` build the wallet's state; the receipts and the
//! report that settles the payments are merchant A's and the fixture issuer's answers to what
//! the wallet sent (made here). The expectations are declared from the SPEC.

use super::*;

const SLOTS: u8 = 8;

/// A fixture voucher with id `[id; 16]`, edited.
fn voucher(f: &Fixture, id: u8, edit: &dyn Fn(&mut Voucher)) -> Vec<u8> {
    let mut v = voucher_value(f.holder.public_key(), f.issuer.key_id());
    v.id = VoucherId([id; 16]);
    edit(&mut v);
    sign(&v, f.issuer.signer())
}

/// The steps: install `vouchers` at `t(60)`, pay each request of `paid` at `t(3650)` and
/// store merchant A's receipt for it (made at `t(3660)`); when `settle`, then apply the report
/// the issuer answers the wallet's sync batch with at `t(3700)`.
fn steps(f: &Fixture, vouchers: &[Vec<u8>], paid: &[Vec<u8>], settle: bool) -> Vec<Value> {
    let fail = |e: Error| -> ! { panic!("retirement vectors: {e:?}") };
    // The wallet the steps build, to know its payments and its sync batch.
    let holder = SigningKey::from_seed(&[2; 32]);
    let mut wallet: Wallet<MemStore, SigningKey> =
        Wallet::open(MemStore::new(), holder).unwrap_or_else(|e| fail(e));
    let mut out = Vec::new();
    for v in vouchers {
        wallet
            .install_voucher(v, &f.trust, t(60))
            .unwrap_or_else(|e| fail(e));
        out.push(json!({ "install": hx(v), "at": t(60).0 }));
    }
    for r in paid {
        let payment = wallet
            .pay(r, &f.trust, None, t(3650))
            .unwrap_or_else(|e| fail(e))
            .to_vec();
        out.push(json!({ "pay": hx(r), "at": t(3650).0 }));
        let receipt = receipt(&payment, MERCHANT_A, &f.merchant_a, t(3660));
        wallet.receive_receipt(&receipt).unwrap_or_else(|e| fail(e));
        out.push(json!({ "receipt": hx(&receipt), "at": t(3660).0 }));
    }
    if settle {
        let mut buf = vec![0u8; 64 * 1024];
        let n = wallet.sync_batch(&mut buf).unwrap_or_else(|e| fail(e));
        let mut ledger = Settlement::<4>::new(f.trust.clone(), settlement::DEFAULT_GRACE_SECS);
        ledger
            .register_merchant(&f.cert_a)
            .unwrap_or_else(|e| fail(e));
        let ingested = ledger
            .ingest(buf.get(..n).unwrap_or_default(), t(3700))
            .unwrap_or_else(|e| fail(e));
        let report = ingested
            .report(&f.issuer, t(3700))
            .unwrap_or_else(|e| fail(e));
        out.push(json!({ "report": hx(&report), "at": t(3700).0 }));
    }
    out
}

/// Retirement vectors.
pub(super) fn retire(f: &Fixture) -> Vec<Value> {
    let eur = eur();
    let vector = |name: &str, install: &[u8], now: u32, steps: Vec<Value>, expect: &str| {
        with(
            v(name, MessageType::Voucher, install, expect),
            json!({ "context": "install", "now": t(now).0, "steps": steps }),
        )
    };
    // Eight vouchers; the first may pay once only (so one payment uses its last sequence
    // number), or has money left, or closes early.
    let eight = |first: Vec<u8>| -> Vec<Vec<u8>> {
        let mut all = vec![first];
        all.extend((2..=SLOTS).map(|i| voucher(f, 0xb0 + i, &|_| {})));
        all
    };
    let one_payment = voucher(f, 0xb1, &|v| v.policy.max_payments = 1);
    let roomy = voucher(f, 0xb1, &|_| {});
    let closing = voucher(f, 0xb1, &|v| v.not_after = t(1000));
    let roomy_b2 = voucher(f, 0xb2, &|_| {});
    let ninth = voucher(f, 0xb9, &|_| {});
    let pay420 = f.request(false, 420, eur, [0x31; 16], None);
    let mut out = Vec::new();

    let done = eight(one_payment.clone());
    let paid = [pay420.clone()];
    out.push(vector(
        "install-into-the-slot-of-a-retired-voucher",
        &ninth,
        3800,
        steps(f, &done, &paid, true),
        "valid",
    ));
    let mut then = steps(f, &done, &paid, true);
    then.push(json!({ "install": hx(&ninth), "at": t(3800).0 }));
    out.push(vector(
        "install-a-retired-voucher-again",
        &one_payment,
        3900,
        then,
        "voucher-retired",
    ));
    out.push(vector(
        "install-when-the-done-voucher-is-not-settled",
        &ninth,
        3800,
        steps(f, &done, &paid, false),
        "capacity-exceeded",
    ));
    out.push(vector(
        "install-when-the-settled-voucher-has-money-left",
        &ninth,
        3800,
        steps(f, &eight(roomy), &paid, true),
        "capacity-exceeded",
    ));
    // Closed: past not_after plus the 300-second skew (§4), with nothing paid (settled).
    out.push(vector(
        "install-into-the-slot-of-a-closed-voucher",
        &ninth,
        1301,
        steps(f, &eight(closing.clone()), &[], false),
        "valid",
    ));
    out.push(vector(
        "install-when-a-voucher-closes-at-the-skew-edge",
        &ninth,
        1300,
        steps(f, &eight(closing.clone()), &[], false),
        "capacity-exceeded",
    ));

    // Compaction (§8.5): the closed voucher retired at t(1301); a compaction past its
    // not_after + skew folds its tombstone into the floor t(1000), one at the edge keeps it.
    // The wallet's clock is then set back to t(900), inside the vouchers' windows.
    let compacted = |at: u32| {
        let mut s = steps(f, &[closing.clone(), roomy_b2.clone()], &[], false);
        s.push(json!({ "retire": true, "at": t(1301).0 }));
        s.push(json!({ "compact": true, "at": t(at).0 }));
        s
    };
    let ending = |id: u8, end: u32| voucher(f, id, &|v| v.not_after = t(end));
    out.push(vector(
        "install-a-voucher-ending-at-the-floor",
        &ending(0xc1, 1000),
        900,
        compacted(1301),
        "voucher-retired",
    ));
    out.push(vector(
        "install-a-voucher-ending-after-the-floor",
        &ending(0xc2, 1001),
        900,
        compacted(1301),
        "valid",
    ));
    out.push(vector(
        "install-a-retired-voucher-after-its-tombstone-folded",
        &closing,
        900,
        compacted(1301),
        "voucher-retired",
    ));
    out.push(vector(
        "install-a-retired-voucher-whose-tombstone-a-compaction-kept",
        &closing,
        900,
        compacted(1300),
        "voucher-retired",
    ));
    out.push(vector(
        "install-a-voucher-ending-before-a-kept-tombstone-ends",
        &ending(0xc1, 1000),
        900,
        compacted(1300),
        "valid",
    ));
    out
}
