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
    /// Compaction (SPEC §8.5): replaces the records with those `keep` selects (by index, in
    /// order), followed by `extra`, in one step that a crash cannot split. When this returns,
    /// and after a crash at any point of it, the store holds either every old record or
    /// exactly the new list. On an error the store is unchanged, unless it says otherwise.
    fn compact(&mut self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> Result<(), StoreError>;
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
    fn compact(&mut self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> Result<(), StoreError> {
        (**self).compact(keep, extra)
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
    /// Whether one more record of `len` bytes fits.
    pub fn fits(&self, len: usize) -> bool {
        self.count < RECORDS && self.used().checked_add(len).is_some_and(|e| e <= BYTES)
    }
    /// Whether the records `keep` selects, then `extra`, fit.
    pub fn fits_compacted(&self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> bool {
        let (mut bytes, mut count) = (0usize, 0usize);
        for i in (0..self.count).filter(|&i| keep(i)) {
            bytes += self.get(i).map_or(0, <[u8]>::len);
            count += 1;
        }
        for r in extra {
            bytes = bytes.saturating_add(r.len());
            count += 1;
        }
        bytes <= BYTES && count <= RECORDS
    }
    /// Drops every record.
    pub fn truncate(&mut self) {
        self.count = 0;
    }
    /// Appends a record of `len` bytes that `fill` writes in place; nothing is appended if
    /// it fails.
    #[cfg_attr(not(feature = "flash"), allow(dead_code))]
    pub(crate) fn append_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let start = self.used();
        let end = start.checked_add(len).ok_or(StoreError::Full)?;
        let slot = self.ends.get_mut(self.count).ok_or(StoreError::Full)?;
        fill(self.data.get_mut(start..end).ok_or(StoreError::Full)?)?;
        *slot = end;
        self.count += 1;
        Ok(())
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
    /// Moves the kept records down in place. Memory has no crash to survive: the result is
    /// checked to fit before anything moves.
    fn compact(&mut self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> Result<(), StoreError> {
        if !self.fits_compacted(keep, extra) {
            return Err(StoreError::Full);
        }
        let (mut at, mut n, mut start) = (0usize, 0usize, 0usize);
        for i in 0..self.count {
            let end = self.ends.get(i).copied().ok_or(StoreError::Corrupt)?;
            if keep(i) {
                let len = end - start;
                self.data.copy_within(start..end, at);
                at += len;
                if let Some(e) = self.ends.get_mut(n) {
                    *e = at;
                }
                n += 1;
            }
            start = end;
        }
        self.count = n;
        for r in extra {
            self.append(r)?;
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use file::{FileStore, Fs, OsFs};

#[cfg(feature = "std")]
mod file;

#[cfg(feature = "flash")]
mod flash;
#[cfg(feature = "flash")]
pub use flash::{FLASH_MAGIC, FlashStore, Mirror};

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
