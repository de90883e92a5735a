//! Crash-safe local storage for wallets and acceptors (SPEC §8.5).
//!
//! A store is an append-only list of opaque records. The wallet and the acceptor derive all of
//! their state by replaying it, so a record is the unit of durability: once
//! [`Store::append`] returns `Ok`, the record survives a crash or power loss, and a record whose
//! append failed or was torn is never seen.

use crate::error::StoreError;

/// Append-only, durable record storage.
pub trait Store {
    /// Appends one record. When this returns `Ok`, the record is durable.
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError>;
    /// The number of records.
    fn len(&self) -> usize;
    /// Whether there are no records.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Record `index` (0-based, in append order).
    fn get(&self, index: usize) -> Option<&[u8]>;
}

/// A store used through a mutable reference: keep a large [`MemStore`] in a `static` or on the
/// caller's stack and lend it, rather than moving tens of kilobytes by value.
impl<S: Store + ?Sized> Store for &mut S {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        (**self).append(record)
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Option<&[u8]> {
        (**self).get(index)
    }
}

/// Iterates a store's records in order.
pub fn records<S: Store + ?Sized>(store: &S) -> impl Iterator<Item = &[u8]> {
    (0..store.len()).filter_map(move |i| store.get(i))
}

/// A store in a fixed memory area: `BYTES` bytes of records, at most `RECORDS` records. No
/// allocator. Durable only as long as its memory is (battery-backed RAM, or tests).
#[derive(Clone, Debug)]
pub struct MemStore<const BYTES: usize = 16384, const RECORDS: usize = 128> {
    data: [u8; BYTES],
    ends: [usize; RECORDS],
    count: usize,
}

impl<const BYTES: usize, const RECORDS: usize> MemStore<BYTES, RECORDS> {
    /// An empty store.
    pub const fn new() -> Self {
        MemStore {
            data: [0; BYTES],
            ends: [0; RECORDS],
            count: 0,
        }
    }
    fn used(&self) -> usize {
        match self.count {
            0 => 0,
            n => self.ends.get(n - 1).copied().unwrap_or(0),
        }
    }
}

impl<const BYTES: usize, const RECORDS: usize> Default for MemStore<BYTES, RECORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BYTES: usize, const RECORDS: usize> Store for MemStore<BYTES, RECORDS> {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        let start = self.used();
        let end = start.checked_add(record.len()).ok_or(StoreError::Full)?;
        let slot = self.ends.get_mut(self.count).ok_or(StoreError::Full)?;
        let dst = self.data.get_mut(start..end).ok_or(StoreError::Full)?;
        dst.copy_from_slice(record);
        *slot = end;
        self.count += 1;
        Ok(())
    }
    fn len(&self) -> usize {
        self.count
    }
    fn get(&self, index: usize) -> Option<&[u8]> {
        if index >= self.count {
            return None;
        }
        let start = if index == 0 {
            0
        } else {
            *self.ends.get(index - 1)?
        };
        self.data.get(start..*self.ends.get(index)?)
    }
}

#[cfg(feature = "std")]
pub use file::FileStore;

#[cfg(feature = "std")]
mod file;

#[cfg(feature = "std")]
pub use file::{MAGIC as JOURNAL_MAGIC, MAX_RECORD as JOURNAL_MAX_RECORD};

/// Parses journal bytes as [`FileStore::open`] would, without touching a file: the records it
/// would recover, or the error it would refuse with. For tools and fuzzing.
#[cfg(feature = "std")]
pub fn scan_journal(bytes: &[u8]) -> Result<std::vec::Vec<&[u8]>, StoreError> {
    let s = file::scan(bytes)?;
    Ok(s.spans
        .iter()
        .filter_map(|&(a, b)| bytes.get(a..b))
        .collect())
}
