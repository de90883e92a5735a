//! The bodies of the fuzz targets in `fuzz/`. They live here, in stable code, so that the
//! normal test run replays every corpus file and saved crash through exactly the same checks
//! (`tests/fuzz_replay.rs`). Each function panics when an invariant breaks; that is the crash.

use crate::fixture::*;
use crate::vectors::batch;
use arbitrary::{Arbitrary, Unstructured};
use offpay_protocol::acceptor::CertificateBytes;
use offpay_protocol::codec::{Message, Signed, SignedMessage, VERSION, Writer};
use offpay_protocol::msg::*;
use offpay_protocol::*;
use std::sync::OnceLock;

/// A fuzz target: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/*.rs` file.
pub const TARGETS: &[(&str, Target)] = &[
    ("decode_preauth_request", decode_preauth_request),
    ("decode_voucher", decode_voucher),
    ("decode_merchant_certificate", decode_merchant_certificate),
    ("decode_payment_request", decode_payment_request),
    ("decode_payment", decode_payment),
    ("decode_receipt", decode_receipt),
    ("decode_revocation_list", decode_revocation_list),
    ("decode_sync_batch", decode_sync_batch),
    ("decode_sync_report", decode_sync_report),
    ("decode_fraud_proof", decode_fraud_proof),
    ("acceptor_accept", acceptor_accept),
    ("settlement_ingest", settlement_ingest),
    ("journal_reopen", journal_reopen),
    ("qr_single_frame", qr_single_frame),
    ("qr_scanner", qr_scanner),
    ("ble_reassembler", ble_reassembler),
    ("ble_merchant_session", ble_merchant_session),
    ("ble_customer_session", ble_customer_session),
];

/// Re-encodes a decoded signed message around its own signature.
fn reencode_signed<'a, T: SignedMessage<'a>>(m: &Signed<'a, T>) -> Vec<u8> {
    let mut buf = vec![0u8; T::MAX_LEN];
    let mut w = Writer::new(&mut buf);
    w.bytes(&[VERSION, T::TYPE as u8]).unwrap();
    m.value().write_body(&mut w).unwrap();
    w.bytes(m.signature()).unwrap();
    let n = w.len();
    buf.truncate(n);
    buf
}

fn signed_round_trip<'a, T: SignedMessage<'a>>(data: &'a [u8]) {
    if let Ok(m) = decode_signed::<T>(data) {
        assert_eq!(
            reencode_signed(&m),
            data,
            "{}: accepted bytes must re-encode identically",
            T::TYPE.name()
        );
        assert!(data.len() <= T::MAX_LEN);
    }
}

fn unsigned_round_trip<'a, T: Message<'a>>(data: &'a [u8]) {
    if let Ok(m) = decode_unsigned::<T>(data) {
        let mut buf = vec![0u8; T::MAX_LEN];
        let n = codec::encode_unsigned(&m, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            data,
            "{}: accepted bytes must re-encode identically",
            T::TYPE.name()
        );
    }
}

/// PreAuthRequest decoder.
pub fn decode_preauth_request(data: &[u8]) {
    signed_round_trip::<PreAuthRequest<'_>>(data);
}
/// Voucher decoder.
pub fn decode_voucher(data: &[u8]) {
    signed_round_trip::<Voucher>(data);
}
/// MerchantCertificate decoder.
pub fn decode_merchant_certificate(data: &[u8]) {
    signed_round_trip::<MerchantCertificate<'_>>(data);
}
/// PaymentRequest decoder.
pub fn decode_payment_request(data: &[u8]) {
    signed_round_trip::<PaymentRequest<'_>>(data);
}
/// Payment decoder.
pub fn decode_payment(data: &[u8]) {
    signed_round_trip::<Payment<'_>>(data);
}
/// Receipt decoder.
pub fn decode_receipt(data: &[u8]) {
    signed_round_trip::<Receipt>(data);
}
/// RevocationList decoder.
pub fn decode_revocation_list(data: &[u8]) {
    signed_round_trip::<RevocationList<'_>>(data);
}
/// SyncBatch decoder (and its record iterator).
pub fn decode_sync_batch(data: &[u8]) {
    unsigned_round_trip::<SyncBatch<'_>>(data);
    if let Ok(b) = decode_unsigned::<SyncBatch<'_>>(data) {
        assert_eq!(b.records().count(), b.len());
    }
}
/// SyncReport decoder (and its entry and proof iterators).
pub fn decode_sync_report(data: &[u8]) {
    signed_round_trip::<SyncReport<'_>>(data);
    if let Ok(r) = decode_signed::<SyncReport<'_>>(data) {
        let _ = (r.entries().count(), r.proofs().count());
    }
}
/// FraudProof decoder.
pub fn decode_fraud_proof(data: &[u8]) {
    unsigned_round_trip::<FraudProof<'_>>(data);
}

struct Merchant {
    cert: CertificateBytes,
    store: MemStore<8192, 64>,
    trust: TrustStore<4>,
    key_seed: [u8; 32],
}

fn merchant() -> &'static Merchant {
    static M: OnceLock<Merchant> = OnceLock::new();
    M.get_or_init(|| {
        let f = Fixture::new();
        // A store holding one open request (nonce NONCE, 4.20 EUR) and one accepted payment,
        // built through the real acceptor so its records are exactly what it writes.
        let mut a: Acceptor<MemStore<8192, 64>, _> =
            Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
        let mut rng = Fixture::rng(1);
        let first = a
            .create_request(Amount(100), eur(), None, t(3000), &mut rng)
            .unwrap();
        let mut wallet: Wallet<MemStore, _> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
        wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
        let p = wallet.pay(&first, &f.trust, None, t(3000)).unwrap();
        a.accept(
            &p,
            &Context {
                trust: &f.trust,
                revocations: None,
                now: t(3000),
            },
        )
        .unwrap();
        a.create_request(Amount(420), eur(), None, t(3600), &mut rng)
            .unwrap();
        Merchant {
            cert: CertificateBytes::from_slice(&f.cert_a).unwrap(),
            store: a.into_store(),
            trust: f.trust.clone(),
            key_seed: [3; 32],
        }
    })
}

/// `Acceptor::accept` over arbitrary payment bytes against a fixed merchant: a refusal changes
/// nothing; an acceptance stores exactly one record and returns a receipt for that payment.
pub fn acceptor_accept(data: &[u8]) {
    let m = merchant();
    let mut a: Acceptor<MemStore<8192, 64>, _> =
        Acceptor::open(m.store.clone(), SigningKey::from_seed(&m.key_seed), &m.cert).unwrap();
    let open_before: Vec<_> = a.open_requests().copied().collect();
    let ctx = Context {
        trust: &m.trust,
        revocations: None,
        now: t(3650),
    };
    match a.accept(data, &ctx) {
        Err(_) => {
            assert_eq!(a.store().len(), m.store.len());
            assert_eq!(a.open_requests().copied().collect::<Vec<_>>(), open_before);
        }
        Ok(receipt) => {
            let r = decode_signed::<Receipt>(&receipt).unwrap();
            assert_eq!(r.payment_id, pid(data));
            r.verify(&SigningKey::from_seed(&m.key_seed).public_key())
                .unwrap();
            assert!(a.store().len() <= m.store.len() + 1);
        }
    }
}

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
        Pool {
            records,
            trust: f.trust.clone(),
            certs: [f.cert_a.clone(), f.cert_b.clone()],
            limits: vec![(VOUCHER_ID, 5000), (VoucherId([0x6c; 16]), 5000)],
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

/// One structure-aware journal input: records, then damage to the file.
#[derive(Debug, Arbitrary)]
pub struct JournalInput {
    records: Vec<Vec<u8>>,
    damage: JournalDamage,
}

/// What happened to the file after the records were committed.
#[derive(Debug, Arbitrary)]
pub enum JournalDamage {
    /// A crash cut the file at this offset (torn tail).
    Cut(u16),
    /// A byte at this offset changed.
    Flip(u16, u8),
    /// Arbitrary bytes were appended.
    Append(Vec<u8>),
    /// A crash interrupted the append of one more frame.
    Torn(TornAppend),
}

/// An append of the frame of `record` that a crash interrupted: its first `written` bytes
/// reached the disk, the rest of the frame's length reads as `rest` (or the file ends there),
/// and, when `header_lost`, its 8-byte header never reached the disk and reads as `rest` too.
#[derive(Debug, Arbitrary)]
pub struct TornAppend {
    record: Vec<u8>,
    written: u16,
    rest: TornRest,
    header_lost: bool,
}

/// What the unwritten part of a torn frame reads as.
#[derive(Debug, Arbitrary)]
pub enum TornRest {
    /// The file ends where the written bytes end.
    Absent,
    /// Zeros: the file grew before its data reached the disk.
    Zeros,
    /// 0xFF: erased flash.
    Erased,
    /// Stale bytes of a reused block, repeated; never in the header, which reads as zeros.
    Stale(Vec<u8>),
}

impl TornAppend {
    /// The bytes this append leaves after the committed frames, and whether they are its
    /// whole frame after all.
    fn bytes(&self) -> (Vec<u8>, bool) {
        let record = &self.record[..self.record.len().min(1024)];
        let frame = journal_frame(record);
        let written = usize::from(self.written) % (frame.len() + 1);
        let fill = |i: usize| match &self.rest {
            TornRest::Absent | TornRest::Zeros => 0,
            TornRest::Erased => 0xff,
            TornRest::Stale(b) if i < 8 || b.is_empty() => 0,
            TornRest::Stale(b) => b[i % b.len()],
        };
        let end = match self.rest {
            TornRest::Absent => written,
            _ => frame.len(),
        };
        let mut out: Vec<u8> = (0..end)
            .map(|i| if i < written { frame[i] } else { fill(i) })
            .collect();
        let header_lost = self.header_lost && !matches!(self.rest, TornRest::Absent);
        if header_lost {
            let unwritten = if matches!(self.rest, TornRest::Erased) {
                0xff
            } else {
                0
            };
            for b in out.iter_mut().take(8) {
                *b = unwritten;
            }
        }
        // The unwritten bytes may read as what would have been written (a record ending in
        // zeros, say): then the frame is whole after all.
        let whole = out == frame;
        (out, whole)
    }
}

/// The file journal reopened over damaged bytes recovers or refuses, never panics, and never
/// loses a record whose frame lies wholly before the damage. A torn tail (a cut, or what an
/// interrupted append left: a prefix of its frame, then zeros, erased flash or stale bytes,
/// its header perhaps lost) is always recovered, with exactly the committed records, unless
/// valid frames follow inside it up to the end of the file: those are indistinguishable from
/// committed records after damage, which are refused rather than dropped. A changed byte
/// with committed frames after it is refused; in the last frame it loses only that frame.
pub fn journal_reopen(data: &[u8]) {
    // Plain arbitrary bytes as a journal file.
    let _ = store::scan_journal(data);
    let Ok(input) = JournalInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut file = store::JOURNAL_MAGIC.to_vec();
    let mut ends = Vec::new();
    for r in input.records.iter().take(32).filter(|r| r.len() <= 1024) {
        file.extend_from_slice(&journal_frame(r));
        ends.push(file.len());
    }
    let committed = ends.len();
    // For an interrupted append: whether what it left is its whole frame after all.
    let mut torn_whole = false;
    let (damaged, first_bad) = match &input.damage {
        JournalDamage::Cut(at) => {
            let at = usize::from(*at) % (file.len() + 1);
            (file[..at].to_vec(), at)
        }
        JournalDamage::Flip(at, x) => {
            let mut f = file.clone();
            let at = usize::from(*at) % f.len();
            f[at] ^= (*x).max(1);
            (f, at)
        }
        JournalDamage::Append(extra) => {
            let mut f = file.clone();
            f.extend(extra.iter().copied());
            (f, file.len())
        }
        JournalDamage::Torn(torn) => {
            let (left, whole) = torn.bytes();
            torn_whole = whole;
            let mut f = file.clone();
            f.extend(left);
            (f, file.len())
        }
    };
    let intact = ends.iter().take_while(|&&e| e <= first_bad).count();
    match store::scan_journal(&damaged) {
        Ok(recs) => {
            assert!(recs.len() >= intact, "lost a record before the damage");
            let kept = input.records.iter().take(32).filter(|r| r.len() <= 1024);
            for (got, want) in recs.iter().zip(kept).take(intact) {
                assert_eq!(got, want);
            }
            match input.damage {
                JournalDamage::Cut(_) => assert!(recs.len() <= committed),
                JournalDamage::Flip(..) => assert!(
                    recs.len() + 1 >= committed,
                    "a changed byte lost committed frames after it"
                ),
                JournalDamage::Torn(_) => assert_eq!(
                    recs.len(),
                    committed + usize::from(torn_whole),
                    "a torn append left a record"
                ),
                JournalDamage::Append(_) => {}
            }
        }
        Err(e) => {
            assert_eq!(e, StoreError::Corrupt);
            // A cut or an interrupted append is a torn tail: refused only when valid frames
            // run inside it to the end of the file (indistinguishable from committed records
            // after damage). A changed byte, or arbitrary appended bytes, may look like a
            // damaged committed frame and be refused.
            if matches!(input.damage, JournalDamage::Cut(_) | JournalDamage::Torn(_)) {
                let from = ends
                    .iter()
                    .rev()
                    .find(|&&e| e <= first_bad)
                    .copied()
                    .unwrap_or(store::JOURNAL_MAGIC.len());
                assert!(
                    valid_frames_follow_damage(&damaged, from),
                    "a torn tail must be recovered, not refused"
                );
            }
        }
    }
}

/// One journal frame: length, CRC-32 over the length and the record, the record.
fn journal_frame(record: &[u8]) -> Vec<u8> {
    let len4 = (record.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len4);
    h.update(record);
    [&len4[..], &h.finalize().to_le_bytes(), record].concat()
}

/// The frame at `at` in `bytes`, if it is whole and its CRC checks; its end.
fn valid_frame(bytes: &[u8], at: usize) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
    let record = bytes.get(at + 8..(at + 8).checked_add(len)?)?;
    (len <= store::JOURNAL_MAX_RECORD && journal_frame(record) == bytes[at..at + 8 + len])
        .then_some(at + 8 + len)
}

/// (The journal also refuses a tail longer than one frame of 64 KiB, which no cut or torn
/// append of these records, at most 1,032 bytes a frame, can produce.)
///
/// Whether, past the valid frames from `from` and the first byte where they stop, some offset
/// starts valid frames that run exactly to the end of `bytes` (by brute force: the fuzz input
/// is small).
fn valid_frames_follow_damage(bytes: &[u8], from: usize) -> bool {
    let mut bad = from;
    while let Some(end) = valid_frame(bytes, bad) {
        bad = end;
    }
    (bad + 1..bytes.len()).any(|mut o| {
        while let Some(end) = valid_frame(bytes, o) {
            if end == bytes.len() {
                return true;
            }
            o = end;
        }
        false
    })
}

/// The seed corpus of a target, generated from the conformance vector files: the messages of
/// the target's type (and all others, to reach the wrong-type paths), journals made of them,
/// and for the structure-aware settlement target, byte strings that pick across the pool.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let dir = crate::vectors_dir();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for path in names {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        for v in json["vectors"].as_array().into_iter().flatten() {
            if let (Some(ty), Some(h)) = (v["message"].as_str(), v["hex"].as_str())
                && let Ok(b) = hex::decode(h)
            {
                messages.push((ty.to_string(), b));
            }
        }
    }
    let of_type = |ty: &str| -> Vec<Vec<u8>> {
        messages
            .iter()
            .filter(|(t, _)| t == ty)
            .map(|(_, b)| b.clone())
            .collect()
    };
    match target {
        "acceptor_accept" => of_type("Payment"),
        "qr_single_frame" => messages
            .iter()
            .take(40)
            .map(|(_, b)| offpay_qr::frame::encode_single(b).into_bytes())
            .collect(),
        "qr_scanner" => messages
            .iter()
            .take(8)
            .map(|(_, b)| {
                let mut a = offpay_qr::QrConfig {
                    max_version: 5,
                    ..offpay_qr::QrConfig::default()
                }
                .animate(b)
                .unwrap();
                (0..4)
                    .map(|_| a.next_frame().unwrap().text().to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            })
            .collect(),
        "settlement_ingest" => (0u8..16)
            .map(|k| {
                (0..96u32)
                    .map(|i| (i * 37 + u32::from(k) * 11) as u8)
                    .collect()
            })
            .collect(),
        "journal_reopen" => {
            let mut out = Vec::new();
            for chunk in messages.chunks(6) {
                let mut file = store::JOURNAL_MAGIC.to_vec();
                for (_, m) in chunk {
                    let len4 = (m.len() as u32).to_le_bytes();
                    let mut h = crc32fast::Hasher::new();
                    h.update(&len4);
                    h.update(m);
                    file.extend_from_slice(&len4);
                    file.extend_from_slice(&h.finalize().to_le_bytes());
                    file.extend_from_slice(m);
                }
                out.push(file.clone());
                out.push(file[..file.len() - 3].to_vec());
            }
            out
        }
        "ble_reassembler" => messages
            .iter()
            .take(20)
            .map(|(_, b)| {
                let mut out = Vec::new();
                let mut c = offpay_ble::Chunker::new(b, 20);
                let mut buf = [0u8; 20];
                while let Some(n) = c.next_into(&mut buf) {
                    out.push(n as u8);
                    out.extend_from_slice(&buf[..n]);
                }
                out
            })
            .collect(),
        "ble_merchant_session" | "ble_customer_session" => {
            let g = ble_genuine();
            let side = if target == "ble_merchant_session" {
                &g.c2s
            } else {
                &g.s2c
            };
            let raw = {
                let mut out = vec![0u8];
                for c in side {
                    out.push(c.len() as u8);
                    out.extend_from_slice(c);
                }
                out
            };
            vec![
                raw,
                vec![1],
                vec![1, 0, 3, 1, 7, 2, 0, 0, 9],
                vec![1, 4, 1, 1, 0],
            ]
        }
        _ => messages.into_iter().map(|(_, b)| b).collect(),
    }
}

/// Splits fuzz data into chunks: each is a length byte then that many bytes.
fn length_prefixed(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let n = usize::from(n).min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

/// The BLE chunk reassembler over arbitrary chunks: it never holds more than its bound, and
/// every message it completes survives being chunked and reassembled again.
pub fn ble_reassembler(data: &[u8]) {
    let mut r = offpay_ble::Reassembler::<{ offpay_ble::MAX_FRAME }>::new();
    for chunk in length_prefixed(data) {
        if let Ok(Some(m)) = r.push(chunk) {
            assert!(m.len() <= offpay_ble::MAX_FRAME);
            let m = m.to_vec();
            for len in [2usize, 20, 514] {
                let mut again = offpay_ble::Reassembler::<{ offpay_ble::MAX_FRAME }>::new();
                let mut c = offpay_ble::Chunker::new(&m, len);
                let mut buf = [0u8; 514];
                let mut got = None;
                while let Some(n) = c.next_into(&mut buf[..len]) {
                    assert!(n <= len);
                    got = again
                        .push(&buf[..n])
                        .expect("own chunks")
                        .map(<[u8]>::to_vec);
                }
                assert_eq!(got.as_deref(), Some(&m[..]));
            }
        }
    }
}

/// One genuine BLE session at MTU 23 (fixed keys): the customer's chunks and the merchant's.
pub struct BleGenuine {
    /// Customer → merchant chunks: hello, then the sealed payment.
    pub c2s: Vec<Vec<u8>>,
    /// Merchant → customer chunks: the sealed request, then the sealed receipt.
    pub s2c: Vec<Vec<u8>>,
    /// The merchant's engagement (fixed keys).
    pub engagement: [u8; 32],
    /// The request the merchant sends.
    pub request: Vec<u8>,
}

const BLE_MERCHANT_SECRET: [u8; 32] = [0x4d; 32];
const BLE_CUSTOMER_SECRET: [u8; 32] = [0x43; 32];
const BLE_UUID: [u8; 16] = [0x0f; 16];

fn ble_engagement() -> offpay_ble::MerchantEngagement {
    offpay_ble::MerchantEngagement::from_parts(
        BLE_UUID,
        x25519_dalek::StaticSecret::from(BLE_MERCHANT_SECRET),
    )
}

fn ble_wallet(f: &Fixture) -> Wallet<MemStore<8192, 32>, SigningKey> {
    let mut w = Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).expect("wallet");
    w.install_voucher(&f.voucher, &f.trust, t(60))
        .expect("voucher");
    w
}

fn ble_shop(f: &Fixture) -> Acceptor<MemStore<8192, 32>, SigningKey> {
    Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).expect("shop")
}

fn ble_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(Fixture::new)
}

/// The genuine session, recorded once.
pub fn ble_genuine() -> &'static BleGenuine {
    static G: OnceLock<BleGenuine> = OnceLock::new();
    G.get_or_init(|| {
        let f = ble_fixture();
        let e = ble_engagement();
        let mut wallet = ble_wallet(f);
        let mut shop = ble_shop(f);
        let now = t(3650);
        let request = shop
            .create_request(Amount(420), eur(), None, now, &mut Fixture::rng(3))
            .expect("request")
            .to_vec();
        let mut customer =
            offpay_ble::CustomerSession::with_key(e.engagement(), &BLE_CUSTOMER_SECRET)
                .expect("customer");
        let mut merchant = offpay_ble::MerchantSession::new(&e, &request).expect("merchant");
        let ctx = Context {
            trust: &f.trust,
            revocations: None,
            now,
        };
        customer.start().expect("start");
        let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 20];
        while !(customer.is_finished() && merchant.is_finished()) {
            while let Some(n) = customer.poll_transmit(&mut buf) {
                c2s.push(buf[..n].to_vec());
                merchant
                    .receive(&buf[..n], &mut shop, &ctx)
                    .expect("merchant receive");
            }
            while let Some(n) = merchant.poll_transmit(&mut buf) {
                s2c.push(buf[..n].to_vec());
                customer
                    .receive(&buf[..n], &mut wallet)
                    .expect("customer receive");
            }
            if customer.pending_request().is_some() {
                customer
                    .approve(&mut wallet, &f.trust, None, now)
                    .expect("approve");
            }
        }
        BleGenuine {
            c2s,
            s2c,
            engagement: e.engagement().merchant_key,
            request,
        }
    })
}

/// The chunks a fuzz input stands for: mode 0, its own length-prefixed chunks; mode 1, the
/// genuine chunks edited by (op, argument) pairs: flip a byte, drop, duplicate or keep.
fn ble_chunks(data: &[u8], genuine: &[Vec<u8>]) -> Vec<Vec<u8>> {
    match data.split_first() {
        Some((m, rest)) if m & 1 == 1 => {
            let mut out: Vec<Vec<u8>> = Vec::new();
            let mut ops = rest.chunks(2);
            for c in genuine {
                match ops.next() {
                    Some([op, arg]) => match op % 4 {
                        0 => {
                            let mut c = c.clone();
                            let i = usize::from(*arg) % c.len();
                            c[i] ^= arg | 1;
                            out.push(c);
                        }
                        1 => {}
                        2 => {
                            out.push(c.clone());
                            out.push(c.clone());
                        }
                        _ => out.push(c.clone()),
                    },
                    _ => out.push(c.clone()),
                }
            }
            out
        }
        Some((_, rest)) => length_prefixed(rest)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect(),
        None => Vec::new(),
    }
}

/// A merchant BLE session fed hostile customer chunks (arbitrary, or the genuine session
/// edited): it never panics; it stores a payment only when it accepts one, and then the
/// genuine one; once it fails it refuses everything after.
pub fn ble_merchant_session(data: &[u8]) {
    let f = ble_fixture();
    let g = ble_genuine();
    let e = ble_engagement();
    let mut shop = ble_shop(f);
    let now = t(3650);
    // The same open request as in the genuine session.
    let request = shop
        .create_request(Amount(420), eur(), None, now, &mut Fixture::rng(3))
        .expect("request");
    assert_eq!(&request[..], &g.request[..]);
    let mut merchant = offpay_ble::MerchantSession::new(&e, &request).expect("merchant");
    let ctx = Context {
        trust: &f.trust,
        revocations: None,
        now,
    };
    let mut failed = false;
    let mut out = [0u8; 20];
    for c in ble_chunks(data, &g.c2s) {
        while merchant.poll_transmit(&mut out).is_some() {}
        match merchant.receive(&c, &mut shop, &ctx) {
            Ok(()) => assert!(!failed, "no input is taken after a failure"),
            Err(e) => {
                if failed {
                    assert_eq!(e, offpay_ble::BleError::Closed);
                }
                failed = true;
            }
        }
    }
    let stored: Vec<Vec<u8>> = shop
        .payments()
        .map(|p| p.payment.bytes().to_vec())
        .collect();
    match merchant.outcome() {
        Some(offpay_ble::MerchantOutcome::Accepted(id)) => {
            assert_eq!(stored.len(), 1);
            assert_eq!(crate::fixture::pid(&stored[0]), id);
        }
        _ => assert!(stored.is_empty(), "nothing stored without an acceptance"),
    }
}

/// A customer BLE session fed hostile merchant chunks: it never panics; the wallet pays at
/// most once, and only the genuine request.
pub fn ble_customer_session(data: &[u8]) {
    let f = ble_fixture();
    let g = ble_genuine();
    let mut wallet = ble_wallet(f);
    let engagement = offpay_ble::Engagement {
        service_uuid: BLE_UUID,
        merchant_key: g.engagement,
    };
    let mut customer =
        offpay_ble::CustomerSession::with_key(&engagement, &BLE_CUSTOMER_SECRET).expect("customer");
    customer.start().expect("start");
    let now = t(3650);
    let mut out = [0u8; 20];
    for c in ble_chunks(data, &g.s2c) {
        while customer.poll_transmit(&mut out).is_some() {}
        let _ = customer.receive(&c, &mut wallet);
        if let Some(r) = customer.pending_request() {
            // Only what the merchant sealed can be shown. (The seeds come from a normal build
            // whose signatures differ from a fuzzing build's, so compare what they sign.)
            let want = decode_signed::<PaymentRequest<'_>>(&g.request).expect("genuine");
            let got = decode_signed::<PaymentRequest<'_>>(r).expect("a sealed request decodes");
            assert_eq!(
                (got.nonce, got.amount, got.currency),
                (want.nonce, want.amount, want.currency),
                "only a genuinely sealed request is shown"
            );
            let _ = customer.approve(&mut wallet, &f.trust, None, now);
        }
    }
    assert!(wallet.payments().count() <= 1);
    if let Some(offpay_ble::CustomerOutcome::Paid(id)) = customer.outcome() {
        let p = wallet
            .payments()
            .next()
            .expect("the paid payment is stored");
        assert_eq!(p.payment.id(), id);
        assert!(p.receipt.is_some());
    }
}

/// The QR single-frame decoder over arbitrary text: it decodes or refuses; what it decodes
/// re-encodes to the same text.
pub fn qr_single_frame(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = offpay_qr::frame::decode_single(text, 4096) {
        assert!(m.len() <= 4096);
        assert_eq!(offpay_qr::frame::encode_single(&m), text);
    }
}

/// The multi-frame Scanner fed arbitrary frame strings (split on newlines), mixed with
/// genuine frames of one message: it never panics, and whatever it completes is that message
/// (a forged frame can only be refused, never merged).
pub fn qr_scanner(data: &[u8]) {
    static FRAMES: OnceLock<(Vec<u8>, Vec<String>)> = OnceLock::new();
    let (message, genuine) = FRAMES.get_or_init(|| {
        let message: Vec<u8> = (0..900u32).map(|i| (i * 31 % 251) as u8).collect();
        let config = offpay_qr::QrConfig {
            max_version: 5,
            ..offpay_qr::QrConfig::default()
        };
        let mut a = config.animate(&message).unwrap();
        let frames = (0..a.fragment_count() * 2)
            .map(|_| a.next_frame().unwrap().text().to_string())
            .collect();
        (message, frames)
    });
    let mut scanner = offpay_qr::Scanner::new(4096);
    for (i, line) in data.split(|b| *b == b'\n').take(64).enumerate() {
        let Ok(text) = core::str::from_utf8(line) else {
            continue;
        };
        for t in [text, genuine[i % genuine.len()].as_str()] {
            if let Ok(offpay_qr::Progress::Complete(m)) = scanner.receive(t)
                && !t.starts_with(offpay_qr::frame::SINGLE_PREFIX)
            {
                assert_eq!(&m, message, "a forged frame changed the message");
                scanner.reset();
            }
        }
    }
}
