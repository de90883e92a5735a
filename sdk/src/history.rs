//! The history a compaction drops from a device's journal (SPEC §8.5): settled payments, kept
//! in `history.journal` beside the journal, so that an app can list every payment the device
//! ever made or accepted. The journal stays bounded by what is live; the history grows with
//! every payment and is read only when asked for.

use crate::OfflinePayment;
use crate::error::{Doing, Error};
use crate::files::DeviceDir;
use offpay_protocol::msg::Payment;
use offpay_protocol::{FileStore, Signed, Store, StoreError, decode_signed};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

/// Serializes what reads and writes history files in this process: opening one repairs a torn
/// tail, which must not meet an append. Taken after a device's own lock, never before it.
static LOCK: Mutex<()> = Mutex::new(());

/// Holds the history lock.
pub(crate) fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The history file's name in a device directory.
const HISTORY: &str = "history.journal";

/// One record: `payment length (u16 LE) ‖ payment ‖ receipt (possibly empty)`.
fn parts(record: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = record.split_first_chunk::<2>()?;
    let n = usize::from(u16::from_le_bytes(*len));
    (n <= rest.len()).then(|| rest.split_at(n))
}

/// The history opened for appending, with the ids it holds.
pub(crate) struct Archive {
    store: FileStore,
    ids: HashSet<[u8; 32]>,
}

impl Archive {
    pub(crate) fn open(dir: &DeviceDir) -> Result<Self, offpay_protocol::Error> {
        let store = FileStore::open(dir.file(HISTORY))?;
        let mut ids = HashSet::new();
        for r in offpay_protocol::store::records(&store) {
            let (p, _) = parts(r).ok_or(StoreError::Corrupt)?;
            ids.insert(offpay_protocol::crypto::sha256(p));
        }
        Ok(Archive { store, ids })
    }

    /// Appends a settled payment and its receipt, unless the history holds it already.
    pub(crate) fn add(
        &mut self,
        payment: &Signed<'_, Payment<'_>>,
        receipt: Option<&[u8]>,
    ) -> Result<(), offpay_protocol::Error> {
        let id = payment.id().0;
        if self.ids.contains(&id) {
            return Ok(());
        }
        let p = payment.bytes();
        let len = u16::try_from(p.len()).map_err(|_| StoreError::RecordTooLarge)?;
        let mut record = Vec::with_capacity(2 + p.len() + receipt.map_or(0, <[u8]>::len));
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(p);
        record.extend_from_slice(receipt.unwrap_or_default());
        self.store.append(&record)?;
        self.ids.insert(id);
        Ok(())
    }
}

/// Archives through `f`, opening the history on the first payment to archive.
pub(crate) fn archiving<'a>(
    dir: &'a DeviceDir,
    archive: &'a mut Option<Archive>,
) -> impl FnMut(&Signed<'_, Payment<'_>>, Option<&[u8]>) -> Result<(), offpay_protocol::Error> + 'a
{
    move |payment, receipt| {
        let a = match archive {
            Some(a) => a,
            None => archive.insert(Archive::open(dir)?),
        };
        a.add(payment, receipt)
    }
}

/// Every payment in the history, oldest first: settled, each with its receipt if the device
/// had it.
fn list(dir: &DeviceDir) -> Result<Vec<OfflinePayment>, Error> {
    let _held = lock();
    let path = dir.file(HISTORY);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let store = FileStore::open(path).doing("reading the payment history")?;
    offpay_protocol::store::records(&store)
        .map(|r| {
            let (p, receipt) = parts(r).ok_or(StoreError::Corrupt)?;
            let p = decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
            let receipt = (!receipt.is_empty()).then_some(receipt);
            Ok(OfflinePayment::new(&p, receipt, true))
        })
        .collect::<Result<_, StoreError>>()
        .doing("reading the payment history")
}

/// The history, then the payments of `live` it does not hold: every payment, oldest first.
/// `live` is read before the history: a compaction in between moves payments from one to the
/// other, and each is listed once.
pub(crate) fn with_live(
    dir: &DeviceDir,
    live: Vec<OfflinePayment>,
) -> Result<Vec<OfflinePayment>, Error> {
    let mut all = list(dir)?;
    let known: HashSet<String> = all.iter().map(|p| p.payment_id.clone()).collect();
    all.extend(live.into_iter().filter(|p| !known.contains(&p.payment_id)));
    Ok(all)
}
