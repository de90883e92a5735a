//! Decode vectors of the list messages' bounds (`messages.json`): a sync report's counts and
//! opaque proofs (§5.9), and the sync messages' maximum sizes (§3.2).

use super::*;

/// §5.9: a report's counts are checked before what they count; a `rejected` code is any
/// u16 (a receiver maps codes it does not know to "refused"); its proofs are opaque byte
/// strings (1 to 591 bytes), decoded as FraudProofs only by a receiver that uses them.
pub(super) fn sync_reports(f: &Fixture, proof: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let report_of = |body: &[u8]| {
        raw_signed(
            MessageType::SyncReport,
            <SyncReport<'_> as SignedMessage<'_>>::DOMAIN,
            body,
            f.issuer.signer(),
        )
    };
    let head = |body: &mut Vec<u8>| {
        body.extend(f.issuer.key_id().0);
        body.extend([0xbb; 32]);
        body.extend(t(NOW).0.to_le_bytes());
    };
    let entries = [
        ReportEntry {
            record: RecordId([1; 32]),
            outcome: Outcome::Credited,
        },
        ReportEntry {
            record: RecordId([2; 32]),
            outcome: Outcome::Rejected(303),
        },
        ReportEntry {
            record: RecordId([3; 32]),
            outcome: Outcome::Rejected(999),
        },
        ReportEntry {
            record: RecordId([4; 32]),
            outcome: Outcome::Conflict,
        },
    ];
    let with_proofs = SyncReport::build(
        &f.issuer,
        [0xbb; 32],
        t(NOW),
        &entries,
        &[proof.to_vec(), b"not a proof".to_vec()],
    )
    .unwrap();
    out.push(with(
        v(
            "sync-report-codes-and-opaque-proofs",
            MessageType::SyncReport,
            &with_proofs,
            "valid",
        ),
        json!({ "context": "decode", "size": with_proofs.len(), "fields": describe(&with_proofs) }),
    ));
    let mut over_entries = Vec::new();
    head(&mut over_entries);
    over_entries.extend(fields(&1025u64));
    let mut over_proofs = Vec::new();
    head(&mut over_proofs);
    over_proofs.extend(fields(&0u64));
    over_proofs.extend(fields(&65u64));
    let mut empty_proof = Vec::new();
    head(&mut empty_proof);
    empty_proof.extend(fields(&0u64));
    empty_proof.extend(fields(&1u64));
    empty_proof.extend(fields(&0u64));
    let mut outcome_tag = Vec::new();
    head(&mut outcome_tag);
    outcome_tag.extend(fields(&1u64));
    outcome_tag.extend([5u8; 32]);
    outcome_tag.push(5);
    outcome_tag.extend(fields(&0u64));
    for (name, body) in [
        ("sync-report-entry-count-over-its-bound", over_entries),
        ("sync-report-proof-count-over-its-bound", over_proofs),
        ("sync-report-empty-proof", empty_proof),
        ("sync-report-outcome-tag-out-of-range", outcome_tag),
    ] {
        out.push(with(
            v(
                name,
                MessageType::SyncReport,
                &report_of(&body),
                "out-of-range",
            ),
            json!({ "context": "decode" }),
        ));
    }
    out
}

/// §3.2: the sync messages' maximum sizes, and what comes of a forged length.
pub(super) fn size_bounds() -> Vec<Value> {
    let mut out = Vec::new();
    let mut forged = vec![1u8, MessageType::SyncBatch as u8];
    forged.extend(overlong_varint(1_000_000, 3));
    // §3.2: the maximum sizes are exactly what the §5.8 and §5.9 fields allow, and the
    // first byte past one is `over-size`, before anything else is read.
    for (name, ty, max) in [
        (
            "sync-batch-one-byte-over-the-maximum",
            MessageType::SyncBatch,
            <SyncBatch<'_> as Message<'_>>::MAX_LEN,
        ),
        (
            "sync-report-one-byte-over-the-maximum",
            MessageType::SyncReport,
            <SyncReport<'_> as Message<'_>>::MAX_LEN,
        ),
    ] {
        out.push(with(
            v(name, ty, &[1, ty as u8], "over-size"),
            json!({ "context": "decode", "zero_pad_to": max + 1 }),
        ));
    }
    out.push(with(
        v(
            "sync-batch-forged-count",
            MessageType::SyncBatch,
            &forged,
            "out-of-range",
        ),
        json!({ "context": "decode" }),
    ));
    let mut forged = vec![1u8, MessageType::SyncBatch as u8, 1];
    forged.extend(fields(&60_000u64));
    forged.extend([1, 5]);
    out.push(with(
        v(
            "sync-batch-forged-record-length",
            MessageType::SyncBatch,
            &forged,
            "out-of-range",
        ),
        json!({ "context": "decode" }),
    ));
    out
}
