//! The file journal survives torn writes and refuses real corruption; wallets and acceptors
//! rebuilt from it never reuse a sequence number and answer retries with the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::store::{JOURNAL_MAGIC, scan_journal};
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| (0..(i * 37 % 300 + 1)).map(|j| (i * 7 + j) as u8).collect())
        .collect()
}

#[test]
fn a_torn_tail_at_any_byte_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let recs = records(6);
    {
        let mut s = FileStore::open(&path).unwrap();
        for r in &recs {
            s.append(r).unwrap();
        }
    }
    let full = std::fs::read(&path).unwrap();
    let last_frame = 8 + recs[5].len();
    let committed_len = full.len() - last_frame;
    // Cut the file at every byte of the last frame, as a crash during its write would.
    for cut in committed_len..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let mut s = FileStore::open(&path).unwrap();
        assert_eq!(s.len(), 5, "cut at {cut}");
        for (i, r) in recs[..5].iter().enumerate() {
            assert_eq!(s.get(i).unwrap(), r.as_slice());
        }
        // The torn tail was cut off, so the next append lands cleanly.
        s.append(b"after recovery").unwrap();
        drop(s);
        let s = FileStore::open(&path).unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(s.get(5).unwrap(), b"after recovery");
    }
    // A tail whose bytes were all written but garbled (length intact, content not) is torn too.
    let mut garbled = full.clone();
    let n = garbled.len();
    garbled[n - 1] ^= 0xff;
    std::fs::write(&path, &garbled).unwrap();
    assert_eq!(FileStore::open(&path).unwrap().len(), 5);
}

#[test]
fn damage_before_the_tail_is_refused_and_the_file_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    {
        let mut s = FileStore::open(&path).unwrap();
        for r in records(4) {
            s.append(&r).unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[JOURNAL_MAGIC.len() + 8 + 1] ^= 0x01; // inside the first record
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(FileStore::open(&path).unwrap_err(), StoreError::Corrupt);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a refused journal is not modified"
    );
    let mut foreign = bytes.clone();
    foreign[0] = b'X';
    assert_eq!(scan_journal(&foreign).unwrap_err(), StoreError::Corrupt);
}

/// A journal of `recs`, as bytes, and the end offset of each frame.
fn journal(recs: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let mut s = FileStore::open(&path).unwrap();
    let mut ends = Vec::new();
    for r in recs {
        s.append(r).unwrap();
        ends.push(std::fs::metadata(&path).unwrap().len() as usize);
    }
    (std::fs::read(&path).unwrap(), ends)
}

#[test]
fn a_torn_append_that_left_zeros_or_garbage_is_recovered() {
    let recs = records(5);
    let (full, _) = journal(&recs);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    // A crash after the file grew but before the frame's bytes reached the disk leaves zeros
    // (the frame's length is unknown, so any amount); or the frame's bytes garbled.
    let mut tails: Vec<Vec<u8>> = [1, 7, 8, 9, 208, 4096]
        .iter()
        .map(|&n| vec![0u8; n])
        .collect();
    tails.push([&[0u8, 0, 0, 0][..], &[0xff; 15]].concat());
    tails.push((0..300u32).map(|i| (i * 131 % 251) as u8).collect());
    for tail in tails {
        let torn = [full.as_slice(), &tail].concat();
        std::fs::write(&path, &torn).unwrap();
        let mut s = FileStore::open(&path).unwrap();
        assert_eq!(s.len(), 5, "tail of {} bytes", tail.len());
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(s.get(i).unwrap(), r.as_slice());
        }
        s.append(b"after recovery").unwrap();
        drop(s);
        assert_eq!(std::fs::read(&path).unwrap().len(), full.len() + 8 + 14);
        assert_eq!(FileStore::open(&path).unwrap().len(), 6);
    }
}

#[test]
fn damage_to_any_byte_of_a_frame_with_frames_after_it_is_refused() {
    let recs = records(6);
    let (full, ends) = journal(&recs);
    let before_last = ends[ends.len() - 2];
    // Every byte of every frame but the last, each bit pattern of one kind: a length that
    // runs past the end, a length that lands elsewhere, a wrong CRC, a changed record.
    for at in JOURNAL_MAGIC.len()..before_last {
        for x in [0x01u8, 0x80, 0xff] {
            let mut bad = full.clone();
            bad[at] ^= x;
            assert_eq!(
                scan_journal(&bad).unwrap_err(),
                StoreError::Corrupt,
                "byte {at} ^ {x:#04x}: committed frames after it would be lost"
            );
        }
    }
    // Damage in the last frame looks like a torn write: only that record is lost.
    for at in before_last..full.len() {
        let mut bad = full.clone();
        bad[at] ^= 0x01;
        assert_eq!(scan_journal(&bad).unwrap().len(), 5, "byte {at}");
    }
}

#[test]
fn committed_frames_damaged_with_a_torn_append_after_them_are_refused() {
    let recs = records(6);
    let (full, ends) = journal(&recs);
    // A device that rewrites a whole block for an append can garble frames already synced in
    // that block as well as tearing the new one. Those frames are whole, with more bytes after
    // them: no single append leaves that, so the journal is refused, not cut back.
    let next_frame = [&(300u32).to_le_bytes()[..], &[0xab; 4], &[0x5a; 120]].concat();
    for damaged in [1usize, 2] {
        let mut bytes = [full.as_slice(), &next_frame].concat();
        for frame in ends.len() - damaged..ends.len() {
            let record_start = if frame == 0 {
                JOURNAL_MAGIC.len()
            } else {
                ends[frame - 1]
            } + 8;
            bytes[record_start] ^= 0x40;
        }
        assert_eq!(
            scan_journal(&bytes).unwrap_err(),
            StoreError::Corrupt,
            "{damaged} damaged frames"
        );
    }
    // Garbage followed by valid frames that run to the end of the file: committed records
    // after damage, refused.
    let (tail_full, _) = journal(&records(2));
    let bytes = [
        &full[..ends[2]],
        &[0xee; 40][..],
        &tail_full[JOURNAL_MAGIC.len()..],
    ]
    .concat();
    assert_eq!(scan_journal(&bytes).unwrap_err(), StoreError::Corrupt);
}

#[test]
fn a_tail_longer_than_one_frame_is_refused() {
    let (full, _) = journal(&records(3));
    let garbage = vec![0u8; 8 + store::JOURNAL_MAX_RECORD + 1];
    let bytes = [full.as_slice(), &garbage].concat();
    assert_eq!(scan_journal(&bytes).unwrap_err(), StoreError::Corrupt);
    let one_frame = [full.as_slice(), &garbage[1..]].concat();
    assert_eq!(scan_journal(&one_frame).unwrap().len(), 3);
}

#[test]
fn a_torn_creation_at_any_byte_opens_as_an_empty_journal() {
    // What an interrupted creation can leave: the first k bytes of the magic, then nothing,
    // zeros (a file that grew before its data reached the disk) or 0xFF (erased flash), up
    // to the magic's length.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let mut tried = 0;
    for k in 0..JOURNAL_MAGIC.len() {
        for fill in [None, Some(0u8), Some(0xff)] {
            let mut bytes = JOURNAL_MAGIC[..k].to_vec();
            if let Some(f) = fill {
                bytes.resize(JOURNAL_MAGIC.len(), f);
            }
            std::fs::write(&path, &bytes).unwrap();
            let mut s = FileStore::open(&path).unwrap_or_else(|e| panic!("{bytes:02x?}: {e:?}"));
            assert_eq!(s.len(), 0, "{bytes:02x?}");
            // The magic is whole again, and the journal works.
            assert_eq!(std::fs::read(&path).unwrap(), JOURNAL_MAGIC.as_slice());
            s.append(b"x").unwrap();
            drop(s);
            let s = FileStore::open(&path).unwrap();
            assert_eq!(s.len(), 1);
            assert_eq!(s.get(0).unwrap(), b"x");
            tried += 1;
        }
    }
    eprintln!("{tried} torn creations opened as empty journals");
    assert_eq!(tried, 3 * JOURNAL_MAGIC.len());
}

#[test]
fn a_file_that_is_not_a_torn_creation_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    let cases: [&[u8]; 5] = [
        b"OFFPAYJ2",           // another magic
        b"OFFPX\0\0\0",        // a wrong byte, not an unwritten one
        b"OFF\0\xff\0\0\0",    // zeros and 0xFF mixed
        b"\0\0\0\0\0\0\0\0\0", // longer than a creation writes
        b"hello",              // not a journal
    ];
    for bytes in cases {
        std::fs::write(&path, bytes).unwrap();
        assert!(
            matches!(FileStore::open(&path), Err(StoreError::Corrupt)),
            "{bytes:02x?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "left alone");
    }
}

#[test]
fn oversized_records_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = FileStore::open(dir.path().join("j")).unwrap();
    assert_eq!(
        s.append(&vec![0u8; 64 * 1024 + 1]),
        Err(StoreError::RecordTooLarge)
    );
    assert_eq!(s.len(), 0);
    let mut m: MemStore<64, 2> = MemStore::new();
    m.append(&[1; 40]).unwrap();
    assert_eq!(m.append(&[2; 40]), Err(StoreError::Full));
    m.append(&[3; 24]).unwrap();
    assert_eq!(m.append(&[4; 1]), Err(StoreError::Full));
    assert_eq!(
        (m.get(0).unwrap(), m.get(1).unwrap()),
        (&[1u8; 40][..], &[3u8; 24][..])
    );
}

struct Setup {
    issuer: Issuer,
    trust: TrustStore<4>,
    cert: Vec<u8>,
    eur: Currency,
}

fn setup() -> Setup {
    let issuer = Issuer::new(SigningKey::from_seed(&[1; 32]));
    let mut trust = TrustStore::new();
    trust
        .add(
            issuer.public_key(),
            Timestamp(0),
            Timestamp(u32::MAX - 1000),
        )
        .unwrap();
    let cert = issuer
        .certify_merchant(
            MerchantId(*b"SHOP0001"),
            SigningKey::from_seed(&[3; 32]).public_key(),
            "Shop",
            Timestamp(0),
            Timestamp(2_000_000_000),
        )
        .unwrap()
        .to_vec();
    Setup {
        issuer,
        trust,
        cert,
        eur: Currency::parse("EUR").unwrap(),
    }
}

fn voucher_for(s: &Setup, holder: &SigningKey, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let w: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder).unwrap();
    let pre = w
        .preauth_request(
            b"card",
            Amount(10_000),
            s.eur,
            Nonce([0; 16]),
            Timestamp(1_000),
        )
        .unwrap();
    let terms = VoucherTerms {
        not_before: Timestamp(1_000),
        not_after: Timestamp(1_000_000),
        max_single: None,
        max_payments: 100,
    };
    s.issuer.issue_voucher(&pre, terms, rng).unwrap().to_vec()
}

#[test]
fn a_wallet_reopened_after_a_crash_never_reuses_a_sequence_number_and_retries_give_the_same_bytes()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wallet");
    let s = setup();
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let holder = SigningKey::from_seed(&[2; 32]);
    let voucher = voucher_for(&s, &holder, &mut rng);
    let mut shop: Acceptor<MemStore<65536, 256>, _> =
        Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &s.cert).unwrap();
    let now = Timestamp(2_000);
    let ctx = Context {
        trust: &s.trust,
        revocations: None,
        now,
    };

    let mut wallet: Wallet<FileStore, _> = Wallet::open(
        FileStore::open(&path).unwrap(),
        SigningKey::from_seed(&[2; 32]),
    )
    .unwrap();
    wallet.install_voucher(&voucher, &s.trust, now).unwrap();
    let req1 = shop
        .create_request(Amount(100), s.eur, None, now, &mut rng)
        .unwrap();
    let pay1 = wallet.pay(&req1, &s.trust, None, now).unwrap();
    // Crash right after the payment left the device (before any receipt).
    drop(wallet);
    let mut wallet: Wallet<FileStore, _> = Wallet::open(
        FileStore::open(&path).unwrap(),
        SigningKey::from_seed(&[2; 32]),
    )
    .unwrap();
    // The link dropped too: the customer retries the same request and gets the same bytes.
    assert_eq!(wallet.pay(&req1, &s.trust, None, now).unwrap(), pay1);
    let r1 = shop.accept(&pay1, &ctx).unwrap();
    // The merchant, asked twice, answers with the same receipt and stores nothing new.
    let stored = shop.store().len();
    assert_eq!(shop.accept(&pay1, &ctx).unwrap(), r1);
    assert_eq!(shop.store().len(), stored);
    wallet.receive_receipt(&r1).unwrap();
    wallet.receive_receipt(&r1).unwrap();
    assert_eq!(wallet.payments().filter(|p| p.receipt.is_some()).count(), 1);

    let req2 = shop
        .create_request(Amount(250), s.eur, None, now, &mut rng)
        .unwrap();
    let pay2 = wallet.pay(&req2, &s.trust, None, now).unwrap();
    let p2 = decode_signed::<msg::Payment<'_>>(&pay2).unwrap();
    let p1 = decode_signed::<msg::Payment<'_>>(&pay1).unwrap();
    assert_eq!(p2.seq, 2);
    assert_eq!(p2.prev, p1.id().link());
    assert_eq!(p2.cumulative, Amount(350));
    shop.accept(&pay2, &ctx).unwrap();
    assert_eq!(wallet.remaining(s.eur, now), Amount(10_000 - 350));
}

#[test]
fn a_refused_payment_changes_no_state_on_either_side() {
    let s = setup();
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let holder = SigningKey::from_seed(&[2; 32]);
    let voucher = voucher_for(&s, &holder, &mut rng);
    let now = Timestamp(2_000);
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder).unwrap();
    wallet.install_voucher(&voucher, &s.trust, now).unwrap();
    let mut shop: Acceptor<MemStore, _> =
        Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &s.cert).unwrap();
    let ctx = Context {
        trust: &s.trust,
        revocations: None,
        now,
    };

    // The wallet refuses a request it cannot pay, and stores nothing.
    let too_big = shop
        .create_request(Amount(10_001), s.eur, None, now, &mut rng)
        .unwrap();
    let before = wallet.store().len();
    assert_eq!(
        wallet.pay(&too_big, &s.trust, None, now),
        Err(Error::Rejected(Rejection::OverPolicy))
    );
    assert_eq!(wallet.store().len(), before);

    let req = shop
        .create_request(Amount(100), s.eur, None, now, &mut rng)
        .unwrap();
    let pay = wallet.pay(&req, &s.trust, None, now).unwrap();
    let mut tampered = pay.to_vec();
    let at = tampered.len() - 70;
    tampered[at] ^= 1;
    let open_before: Vec<_> = shop.open_requests().copied().collect();
    let len_before = shop.store().len();
    assert!(shop.accept(&tampered, &ctx).is_err());
    assert!(shop.accept(&pay[..pay.len() - 1], &ctx).is_err());
    assert_eq!(shop.store().len(), len_before);
    assert_eq!(
        shop.open_requests().copied().collect::<Vec<_>>(),
        open_before
    );
    // And the genuine payment still goes through afterwards.
    shop.accept(&pay, &ctx).unwrap();
    assert_eq!(shop.open_requests().count(), open_before.len() - 1);
}

#[test]
fn only_a_genuine_report_prunes_and_only_what_it_finalizes() {
    let s = setup();
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let holder = SigningKey::from_seed(&[2; 32]);
    let voucher = voucher_for(&s, &holder, &mut rng);
    let now = Timestamp(2_000);
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder).unwrap();
    wallet.install_voucher(&voucher, &s.trust, now).unwrap();
    let mut shop: Acceptor<MemStore, _> =
        Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &s.cert).unwrap();
    let ctx = Context {
        trust: &s.trust,
        revocations: None,
        now,
    };
    for amount in [100, 200] {
        let req = shop
            .create_request(Amount(amount), s.eur, None, now, &mut rng)
            .unwrap();
        let pay = wallet.pay(&req, &s.trust, None, now).unwrap();
        if amount == 100 {
            let r = shop.accept(&pay, &ctx).unwrap();
            wallet.receive_receipt(&r).unwrap();
        }
    }
    let mut ledger = Settlement::new(s.trust.clone(), settlement::DEFAULT_GRACE_SECS);
    ledger.register_merchant(&s.cert).unwrap();
    let mut buf = vec![0u8; 8192];
    let n = wallet.sync_batch(&mut buf).unwrap();
    let ingested = ledger.ingest(&buf[..n], now).unwrap();
    use msg::Outcome::*;
    // Payment 1 with its receipt is credited; payment 2 never reached the merchant: pending.
    assert_eq!(
        ingested
            .entries
            .iter()
            .map(|e| e.outcome)
            .collect::<Vec<_>>(),
        vec![Credited, Credited, Pending]
    );

    // A report signed by someone else prunes nothing.
    let forger = Issuer::new(SigningKey::from_seed(&[9; 32]));
    let forged = ingested.report(&forger, now).unwrap();
    let before = wallet.store().len();
    assert!(wallet.apply_report(&forged, &s.trust, now).is_err());
    assert_eq!(wallet.store().len(), before);

    let report = ingested.report(&s.issuer, now).unwrap();
    assert_eq!(wallet.apply_report(&report, &s.trust, now).unwrap(), 2);
    assert_eq!(
        wallet.payments().map(|p| p.synced).collect::<Vec<_>>(),
        vec![true, false]
    );
    // Applying it again acknowledges nothing new; the pending payment is synced again next time.
    assert_eq!(wallet.apply_report(&report, &s.trust, now).unwrap(), 0);
    let n = wallet.sync_batch(&mut buf).unwrap();
    assert_eq!(
        decode_unsigned::<msg::SyncBatch<'_>>(&buf[..n])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_older_or_replayed_revocation_list_does_not_replace_the_installed_one() {
    let s = setup();
    let v7 = s
        .issuer
        .revocation_list(7, Timestamp(100), &[VoucherId([1; 16])], &[])
        .unwrap();
    let v8 = s
        .issuer
        .revocation_list(8, Timestamp(200), &[], &[])
        .unwrap();
    let l7 = decode_signed::<msg::RevocationList<'_>>(&v7).unwrap();
    let l8 = decode_signed::<msg::RevocationList<'_>>(&v8).unwrap();
    assert_eq!(l7.supersedes(None), Ok(()));
    assert_eq!(l8.supersedes(Some(&l7)), Ok(()));
    assert_eq!(
        l7.supersedes(Some(&l8)),
        Err(Rejection::StaleRevocationList)
    );
    assert_eq!(
        l8.supersedes(Some(&l8)),
        Err(Rejection::StaleRevocationList)
    );
}
