//! SPEC §8.5 on NOR flash: a wallet's life (vouchers installed, spent, receipts stored,
//! synced, retired, the log compacted into the other bank) on a simulated NOR flash whose
//! writes only clear bits and whose erases work per page, with the power cut at every write
//! and every erase: none of it, half of it with one word torn, or all but its last word.
//! After each cut the flash is opened again, and: every record committed is there, and the
//! one in flight only whole; the wallet replays; no sequence number that left the wallet is
//! used again; no retired voucher installs again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use offpay_protocol::store::{FlashStore, records};
use offpay_protocol::*;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

mod wallet_life;
use wallet_life::{World, t, voucher, world};

const PAGE: usize = 512;
const PAGES: usize = 16;

/// How a cut operation ends.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Nothing of it reached the flash.
    Before,
    /// Its first `n` words (or pages) did, and the next one only in part: `Torn(0)` tears a
    /// frame's length word, `Torn(1)` its CRC word.
    Torn(usize),
    /// Half of its words did, and the next one only in part.
    Half,
    /// All but its last word, which reached the flash only in part.
    AllButLast,
}

const WAYS: [Cut; 6] = [
    Cut::Before,
    Cut::Torn(0),
    Cut::Torn(1),
    Cut::Torn(2),
    Cut::Half,
    Cut::AllButLast,
];

/// A NOR flash of `PAGES` pages in RAM, with words of `W` bytes. A write clears bits (the new
/// byte is the old one AND the written one); an erase sets a page to 0xFF. Clones share the
/// flash, so the test keeps it when the store holding it is dropped.
#[derive(Clone)]
struct SimNor<const W: usize>(Rc<RefCell<Nor>>);

#[derive(Clone)]
struct Nor {
    data: Vec<u8>,
    ops: usize,
    cut: Option<(usize, Cut)>,
    off: bool,
    /// An operation that takes full effect but reports failure (a driver's verify error),
    /// the power staying on.
    lie: Option<usize>,
}

impl<const W: usize> SimNor<W> {
    fn new(cut: Option<(usize, Cut)>) -> Self {
        SimNor(Rc::new(RefCell::new(Nor {
            // Factory state: erased.
            data: vec![0xff; PAGE * PAGES],
            ops: 0,
            cut,
            off: false,
            lie: None,
        })))
    }
    /// The flash after the power came back.
    fn restarted(&self) -> Self {
        let mut n = self.0.borrow().clone();
        n.cut = None;
        n.off = false;
        n.ops = 0;
        SimNor(Rc::new(RefCell::new(n)))
    }
}

impl Nor {
    /// The part of an operation of `units` words or pages that happens: whole units, and
    /// whether one more is torn. `None` when the operation completes.
    fn cut_now(&mut self, units: usize) -> Result<Option<(usize, bool)>, NorFlashErrorKind> {
        if self.off {
            return Err(NorFlashErrorKind::Other);
        }
        let n = self.ops;
        self.ops += 1;
        if self.lie == Some(n) {
            self.lie = None;
            return Ok(Some((usize::MAX, false)));
        }
        match self.cut {
            Some((k, how)) if k == n => {
                self.off = true;
                Ok(Some(match how {
                    Cut::Before => (0, false),
                    Cut::Torn(w) => (w.min(units - 1), true),
                    Cut::Half => (units / 2, true),
                    Cut::AllButLast => (units - 1, true),
                }))
            }
            _ => Ok(None),
        }
    }
}

impl<const W: usize> ErrorType for SimNor<W> {
    type Error = NorFlashErrorKind;
}

impl<const W: usize> ReadNorFlash for SimNor<W> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let n = self.0.borrow();
        let at = offset as usize;
        let src = n
            .data
            .get(at..at + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.borrow().data.len()
    }
}

impl<const W: usize> NorFlash for SimNor<W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let mut n = self.0.borrow_mut();
        let (from, to) = (from as usize, to as usize);
        if from % PAGE != 0 || to % PAGE != 0 || to > n.data.len() || from > to {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let pages = (to - from) / PAGE;
        let done = n.cut_now(pages)?;
        let (whole, torn) = done.map_or((pages, false), |(w, t)| (w.min(pages), t));
        n.data[from..from + whole * PAGE].fill(0xff);
        if torn {
            // An erase cut short: part of the page erased, the rest as it was.
            let p = from + whole * PAGE;
            n.data[p..p + PAGE / 3].fill(0xff);
        }
        match done {
            Some(_) => Err(NorFlashErrorKind::Other),
            None => Ok(()),
        }
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let mut n = self.0.borrow_mut();
        let at = offset as usize;
        if at % W != 0 || bytes.len() % W != 0 || at + bytes.len() > n.data.len() {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let words = bytes.len() / W;
        let done = n.cut_now(words)?;
        let (whole, torn) = done.map_or((words, false), |(w, t)| (w.min(words), t));
        for (d, b) in n.data[at..].iter_mut().zip(&bytes[..whole * W]) {
            *d &= b;
        }
        if torn {
            // A word cut short: only some of the bits it clears are cleared, a pattern that
            // changes from one operation to the next.
            let w = at + whole * W;
            let seed = (n.ops as u8).wrapping_mul(0x9d) ^ 0x5a;
            let word = n.data[w..w + W].iter_mut().zip(&bytes[whole * W..]);
            for (i, (d, b)) in word.enumerate() {
                *d &= b | seed.rotate_left(i as u32 * 3);
            }
        }
        match done {
            Some(_) => Err(NorFlashErrorKind::Other),
            None => Ok(()),
        }
    }
}

type Flash = FlashStore<SimNor<4>, MemStore<4096, 64>>;

/// What the store above the flash has committed, kept outside it so that it survives the cut:
/// the records after the last operation that returned, and those the operation in flight
/// would leave.
#[derive(Default)]
struct Ledger {
    committed: Vec<Vec<u8>>,
    in_flight: Option<Vec<Vec<u8>>>,
}

/// A store that tells the ledger what it commits.
struct Recorded {
    inner: Flash,
    ledger: Rc<RefCell<Ledger>>,
}

impl Store for Recorded {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        let mut next = self.ledger.borrow().committed.clone();
        next.push(record.to_vec());
        self.ledger.borrow_mut().in_flight = Some(next);
        self.inner.append(record)?;
        let mut l = self.ledger.borrow_mut();
        l.committed = l.in_flight.take().unwrap();
        Ok(())
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn get(&self, index: usize) -> Option<&[u8]> {
        self.inner.get(index)
    }
    fn compact(&mut self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> Result<(), StoreError> {
        let mut next: Vec<Vec<u8>> = records(&self.inner)
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, r)| r.to_vec())
            .collect();
        next.extend(extra.iter().map(|r| r.to_vec()));
        self.ledger.borrow_mut().in_flight = Some(next);
        self.inner.compact(keep, extra)?;
        let mut l = self.ledger.borrow_mut();
        l.committed = l.in_flight.take().unwrap();
        Ok(())
    }
}

/// What left the wallet: payments (voucher, seq) and the vouchers it retired.
#[derive(Default)]
struct Released {
    payments: BTreeSet<(VoucherId, u32)>,
    vouchers: Vec<Vec<u8>>,
    retired: BTreeSet<VoucherId>,
    /// Records the compactions dropped.
    dropped: usize,
}

/// The scenario, stopping at the first error (the power cut). Before each voucher, when the
/// bank is short of room, the wallet retires what it can and compacts.
fn life(
    w: &mut World,
    flash: SimNor<4>,
    ledger: &Rc<RefCell<Ledger>>,
    out: &mut Released,
) -> Result<(), Error> {
    let store = Recorded {
        inner: Flash::open(flash, MemStore::new())?,
        ledger: ledger.clone(),
    };
    ledger.borrow_mut().committed = records(&store).map(<[u8]>::to_vec).collect();
    let mut wallet =
        Wallet::<_, SigningKey>::open(store, SigningKey::from_seed(&wallet_life::HOLDER))?;
    let mut shop = wallet_life::shop(w, MemStore::<65536, 512>::new());
    let mut buf = vec![0u8; 64 * 1024];
    // Rounds 25 minutes apart: a retired voucher's records stay until no request it paid can
    // be shown again (20 minutes, SPEC §8.1.1), so each compaction drops the earlier ones.
    for n in 0..12u32 {
        let now = t(1000 + n * 1500);
        if wallet.store().inner.free() < 2048 {
            let installed: Vec<VoucherId> = wallet.balances().map(|b| b.id).collect();
            wallet.retire(now)?;
            let still: Vec<VoucherId> = wallet.balances().map(|b| b.id).collect();
            out.retired
                .extend(installed.into_iter().filter(|id| !still.contains(id)));
            let mut marks = vec![false; wallet.store().len()];
            out.dropped += wallet.compact(now, &mut marks)?.dropped;
        }
        let v = voucher(w, &wallet, n, now);
        out.vouchers.push(v.clone());
        wallet.install_voucher(&v, &w.trust, now)?;
        for (i, amount) in [600u64, 400].into_iter().enumerate() {
            let at = now.saturating_add(1 + i as u32);
            let request = shop.create_request(Amount(amount), w.eur, None, at, &mut w.rng)?;
            let payment = wallet.pay(&request, &w.trust, None, at)?;
            let p = decode_signed::<msg::Payment<'_>>(&payment)?;
            out.payments.insert((p.voucher.id, p.seq));
            let ctx = Context {
                trust: &w.trust,
                revocations: None,
                now: at,
            };
            let receipt = shop.accept(&payment, &ctx)?;
            wallet.receive_receipt(&receipt)?;
        }
        let at = now.saturating_add(10);
        let len = wallet.sync_batch(&mut buf)?;
        let ingested = w.ledger.ingest(&buf[..len], at).unwrap();
        let report = ingested.report(&w.issuer, at).unwrap();
        wallet.apply_report(&report, &w.trust, at)?;
    }
    Ok(())
}

/// Opens the flash after a cut and checks what the SPEC promises.
fn check_after_cut(w: &World, flash: SimNor<4>, ledger: &Ledger, out: &Released, at: &str) {
    let store = Flash::open(flash, MemStore::new()).unwrap_or_else(|e| panic!("{at}: open: {e:?}"));
    let got: Vec<Vec<u8>> = records(&store).map(<[u8]>::to_vec).collect();
    // Every committed record, and the operation in flight either whole or not at all.
    assert!(
        got == ledger.committed || ledger.in_flight.as_ref() == Some(&got),
        "{at}: neither what was committed nor what was in flight"
    );
    let mut wallet =
        Wallet::<_, SigningKey>::open(store, SigningKey::from_seed(&wallet_life::HOLDER))
            .unwrap_or_else(|e| panic!("{at}: replay: {e:?}"));
    // No sequence number that left the wallet is used again: each installed voucher is at
    // least at the last one released, and a payment made now is a new one.
    for b in wallet.balances() {
        let last = out
            .payments
            .iter()
            .filter(|(v, _)| *v == b.id)
            .map(|(_, s)| *s)
            .max();
        assert!(
            b.payments >= last.unwrap_or(0),
            "{at}: voucher behind its payments"
        );
    }
    let now = t(1000 + 12 * 1500);
    let mut shop = wallet_life::shop(w, MemStore::<8192, 32>::new());
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([9; 32]);
    let request = shop
        .create_request(Amount(1), w.eur, None, now, &mut rng)
        .unwrap();
    if let Ok(p) = wallet.pay(&request, &w.trust, None, now) {
        let p = decode_signed::<msg::Payment<'_>>(&p).unwrap();
        assert!(
            !out.payments.contains(&(p.voucher.id, p.seq)),
            "{at}: sequence number {} used again",
            p.seq
        );
    }
    // What the wallet wrote after the cut is there at the next start too: the flash took
    // appends again where the cut one ended.
    let held: Vec<Vec<u8>> = records(wallet.store()).map(<[u8]>::to_vec).collect();
    let (flash, _) = wallet.into_store().into_parts();
    let store =
        Flash::open(flash, MemStore::new()).unwrap_or_else(|e| panic!("{at}: second open: {e:?}"));
    let again: Vec<Vec<u8>> = records(&store).map(<[u8]>::to_vec).collect();
    assert_eq!(again, held, "{at}: the records written after the cut");
    let mut wallet =
        Wallet::<_, SigningKey>::open(store, SigningKey::from_seed(&wallet_life::HOLDER))
            .unwrap_or_else(|e| panic!("{at}: second replay: {e:?}"));
    // No retired voucher installs again.
    for v in &out.vouchers {
        let id = decode_signed::<msg::Voucher>(v).unwrap().id;
        if out.retired.contains(&id) {
            let e = wallet.install_voucher(v, &w.trust, now).unwrap_err();
            assert_eq!(e.name(), "voucher-retired", "{at}");
        }
    }
}

#[test]
fn a_power_cut_at_every_write_and_erase_of_a_wallet_on_nor_flash() {
    // A run without a cut counts the operations and shows the life compacts.
    let flash = SimNor::<4>::new(None);
    let mut whole = Released::default();
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    life(&mut world(), flash.clone(), &ledger, &mut whole).unwrap();
    let ops = flash.0.borrow().ops;
    assert_eq!(whole.payments.len(), 24);
    assert!(!whole.retired.is_empty(), "the life retires");
    assert!(whole.dropped > 0, "and its compactions drop records");

    let (mut cuts, mut relocations) = (0usize, 0usize);
    for k in 0..ops {
        for how in WAYS {
            let mut w = world();
            let flash = SimNor::<4>::new(Some((k, how)));
            let ledger = Rc::new(RefCell::new(Ledger::default()));
            let mut released = Released::default();
            let r = life(&mut w, flash.clone(), &ledger, &mut released);
            assert!(r.is_err(), "cut {k} ({how:?}) must stop the life");
            cuts += 1;
            let at = format!("cut {k} ({how:?})");
            // Opening moves a log with a torn end to the other bank: the power is cut during
            // that move too, at its first, middle and last operation, and opened again.
            let probe = flash.restarted();
            drop(Flash::open(probe.clone(), MemStore::new()));
            let moves = probe.0.borrow().ops;
            for j in [0, moves / 2, moves.saturating_sub(1)] {
                if moves == 0 {
                    break;
                }
                let again = flash.restarted();
                again.0.borrow_mut().cut = Some((j, Cut::Half));
                // Refused, or (a cut in the last, best-effort erase of the old header) opened.
                drop(Flash::open(again.clone(), MemStore::new()));
                relocations += 1;
                let at = format!("{at}, then cut {j} of {moves} while opening");
                check_after_cut(&w, again.restarted(), &ledger.borrow(), &released, &at);
            }
            check_after_cut(&w, flash.restarted(), &ledger.borrow(), &released, &at);
        }
    }
    eprintln!(
        "flash power cuts: {ops} writes and erases × {} ways = {cuts} cut points, each reopened; \
         {relocations} more cuts while an open moved a torn log",
        WAYS.len()
    );
}

#[test]
fn a_torn_length_word_reading_as_more_than_the_mirror_holds_is_a_torn_append() {
    // Bank 0 holds one record of 1,000 bytes; then an append of 200 bytes was cut in its
    // length word, which reads as 1,500: more than the 2 KiB mirror has left, within the bank.
    let flash = SimNor::<4>::new(None);
    let mut store = FlashStore::open(flash.clone(), MemStore::<2048, 16>::new()).unwrap();
    store.append(&[7u8; 1000]).unwrap();
    let end = 4096 - store.free();
    drop(store);
    {
        let mut n = flash.0.borrow_mut();
        n.data[end..end + 4].copy_from_slice(&1500u32.to_le_bytes());
        n.data[end + 4..end + 8].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
    }
    let store = FlashStore::open(flash.clone(), MemStore::<2048, 16>::new()).unwrap();
    assert_eq!(records(&store).collect::<Vec<_>>(), [&[7u8; 1000][..]]);
    // A whole frame the mirror cannot hold is refused, not cut: the same flash under a
    // mirror of 512 bytes.
    let e = FlashStore::open(flash.restarted(), MemStore::<512, 16>::new()).err();
    assert_eq!(e, Some(StoreError::Full));
}

#[test]
fn a_region_that_is_neither_erased_nor_a_store_is_refused_until_formatted() {
    let flash = SimNor::<4>::new(None);
    flash.0.borrow_mut().data.fill(0);
    let e = FlashStore::open(flash.clone(), MemStore::<2048, 16>::new()).err();
    assert_eq!(
        e,
        Some(StoreError::Corrupt),
        "never formatted over what it held"
    );
    assert!(
        flash.0.borrow().data.iter().all(|b| *b == 0),
        "left as it was"
    );
    let mut store = FlashStore::format(flash.clone(), MemStore::<2048, 16>::new()).unwrap();
    store.append(b"first").unwrap();
    drop(store);
    let store = FlashStore::open(flash.restarted(), MemStore::<2048, 16>::new()).unwrap();
    assert_eq!(records(&store).collect::<Vec<_>>(), [&b"first"[..]]);

    // The same store seen through a region twice as large (its banks at other offsets) is
    // refused rather than read from the wrong place.
    let bigger = flash.restarted();
    bigger.0.borrow_mut().data.resize(2 * PAGE * PAGES, 0xff);
    let e = FlashStore::open(bigger, MemStore::<2048, 16>::new()).err();
    assert_eq!(e, Some(StoreError::Corrupt));
}

#[test]
fn an_operation_reported_failed_that_took_effect_loses_nothing() {
    // A store with records, retired ones among them, and a compaction that drops some: each
    // of the compaction's writes and erases in turn reports failure after taking effect.
    let fill = |flash: &SimNor<4>| {
        let mut store = FlashStore::open(flash.clone(), MemStore::<2048, 32>::new()).unwrap();
        for i in 0..10u8 {
            store.append(&[i; 100]).unwrap();
        }
        store
    };
    let probe = SimNor::<4>::new(None);
    let mut store = fill(&probe);
    let before = probe.0.borrow().ops;
    store.compact(&|i| i % 2 == 0, &[b"extra"]).unwrap();
    let ops = probe.0.borrow().ops - before;
    let kept: Vec<Vec<u8>> = records(&store).map(<[u8]>::to_vec).collect();
    for k in 0..ops {
        let flash = SimNor::<4>::new(None);
        let mut store = fill(&flash);
        let at = flash.0.borrow().ops + k;
        flash.0.borrow_mut().lie = Some(at);
        // The failure is reported, or (a commit that happened) the compaction stands.
        let compacted = store.compact(&|i| i % 2 == 0, &[b"extra"]).is_ok();
        let held: Vec<Vec<u8>> = records(&store).map(<[u8]>::to_vec).collect();
        store.append(b"after").unwrap();
        let (flash, _) = store.into_parts();
        let reopened = FlashStore::open(flash, MemStore::<2048, 32>::new()).unwrap();
        let got: Vec<Vec<u8>> = records(&reopened).map(<[u8]>::to_vec).collect();
        let mut want = held.clone();
        want.push(b"after".to_vec());
        assert_eq!(got, want, "operation {k} of {ops}");
        assert!(
            held == kept || !compacted,
            "operation {k}: a compaction reported done holds its result"
        );
    }
}
