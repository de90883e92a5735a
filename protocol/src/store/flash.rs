//! The NOR flash store (SPEC §8.5): a log of checksummed frames in one of two banks, the
//! other bank taking the compacted log, for firmware without an allocator.
//!
//! Written here rather than taken from `sequential-storage`: that crate's API is async only
//! (a `Store` is called synchronously from the wallet and the acceptor), its queue drops
//! records only from the front, and its map removes items one at a time, while a compaction
//! must replace a set of records anywhere in the log with a new list in one step that a power
//! cut cannot split (§8.5). Two banks with a generation number give that step: the new bank's
//! header is written last, and is the commit.
//!
//! The flash `F` is split into two banks of whole erase pages. A bank is `header ‖ frame*`,
//! the rest erased (0xFF). The header is `"OFFPAYF1" ‖ generation (u32 LE) ‖ bank size (u32
//! LE) ‖ crc32 (u32 LE, over the 16 bytes before it)`, padded with 0xFF to the write alignment; a frame is
//! `length (u32 LE) ‖ crc32 (u32 LE, over the length bytes and the record) ‖ record`, padded
//! with 0xFF to the alignment. The bank with a valid header and the higher generation is the
//! log. Records are kept in RAM as well (a [`Mirror`]: a [`MemStore`], owned or lent), so that
//! [`Store::get`] can lend them.

use super::{MemStore, Store};
use crate::error::StoreError;
use embedded_storage::nor_flash::NorFlash;

/// The first 8 bytes of a bank's header.
pub const FLASH_MAGIC: &[u8; 8] = b"OFFPAYF1";
/// Reads and writes go through a buffer of this many bytes on the stack; the flash's read and
/// write sizes must divide it.
const CHUNK: usize = 64;
const HEADER: usize = 20;
const FRAME_HEAD: usize = 8;

const CRC: crc::Crc<u32, crc::Table<1>> =
    crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);

/// The RAM copy of a [`FlashStore`]'s records: a [`MemStore`], owned, or lent (`&mut`) so
/// that firmware can keep it in a `static` rather than on the stack.
pub trait Mirror: Store {
    /// The most record bytes it holds.
    fn capacity(&self) -> usize;
    /// Whether one more record of `len` bytes fits.
    fn fits(&self, len: usize) -> bool;
    /// Appends a record of `len` bytes that `fill` writes in place; nothing is appended if
    /// `fill` fails.
    fn append_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Drops every record.
    fn clear(&mut self);
    /// Whether `extra` records after those `keep` selects fit.
    fn fits_compacted(&self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> bool;
}

impl<const BYTES: usize, const RECORDS: usize> Mirror for MemStore<BYTES, RECORDS> {
    fn capacity(&self) -> usize {
        BYTES
    }
    fn fits(&self, len: usize) -> bool {
        MemStore::fits(self, len)
    }
    fn append_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        MemStore::append_with(self, len, fill)
    }
    fn clear(&mut self) {
        self.truncate();
    }
    fn fits_compacted(&self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> bool {
        MemStore::fits_compacted(self, keep, extra)
    }
}

impl<M: Mirror + ?Sized> Mirror for &mut M {
    fn capacity(&self) -> usize {
        (**self).capacity()
    }
    fn fits(&self, len: usize) -> bool {
        (**self).fits(len)
    }
    fn append_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        (**self).append_with(len, fill)
    }
    fn clear(&mut self) {
        (**self).clear();
    }
    fn fits_compacted(&self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> bool {
        (**self).fits_compacted(keep, extra)
    }
}

/// A store on NOR flash, mirrored in RAM by `M`, which bounds what it holds.
#[derive(Debug)]
pub struct FlashStore<F: NorFlash, M: Mirror = MemStore> {
    flash: F,
    cache: M,
    bank: u32,
    active: u32,
    generation: u32,
    /// Where the next frame goes, from the start of the active bank.
    end: u32,
    /// The log must move to the other bank before the next append: a write failed part way
    /// (the active bank has bytes after `end` that are not erased), or a compaction failed
    /// after erasing the other bank (its header may have reached the flash).
    dirty: bool,
}

fn io<E>(_: E) -> StoreError {
    StoreError::Io
}

impl<F: NorFlash, M: Mirror> FlashStore<F, M> {
    const ALIGN: usize = {
        assert!(CHUNK % F::WRITE_SIZE == 0 && CHUNK % F::READ_SIZE == 0);
        let a = if F::WRITE_SIZE > F::READ_SIZE {
            F::WRITE_SIZE
        } else {
            F::READ_SIZE
        };
        if a > 4 { a } else { 4 }
    };

    fn padded(len: usize) -> usize {
        len.div_ceil(Self::ALIGN) * Self::ALIGN
    }

    /// Opens the store on `flash`; `cache` takes the records in RAM (what it held is dropped).
    ///
    /// The log is the bank with a valid header and the higher generation. A region with no
    /// valid header is formatted only when it reads as never written: every byte 0xFF, but
    /// for a header cut short at the start of bank 0 (a format the power cut). Any other
    /// region without a valid header, a header of another bank size (the region's geometry
    /// changed), or two headers of one generation are refused as [`StoreError::Corrupt`]:
    /// [`format`](Self::format) it if it is to be used anyway. A log whose end is not erased
    /// holds an interrupted append: at most one frame's length of such bytes is dropped by
    /// moving the records before them to the other bank; more is `Corrupt`, the flash left
    /// as it is. The flash must read back bytes that were written or erased part way (a part
    /// whose ECC turns such a read into an error makes this `Io`).
    pub fn open(flash: F, cache: M) -> Result<Self, StoreError> {
        let mut s = Self::new(flash, cache)?;
        let headers = [s.header(0)?, s.header(1)?];
        let active = match headers {
            [Some(a), Some(b)] if a == b => return Err(StoreError::Corrupt),
            [Some(a), Some(b)] => Some(if a > b { (0, a) } else { (1, b) }),
            [Some(a), None] => Some((0, a)),
            [None, Some(b)] => Some((1, b)),
            [None, None] => None,
        };
        let Some((active, generation)) = active else {
            if !s.blank()? {
                return Err(StoreError::Corrupt);
            }
            s.format_banks()?;
            return Ok(s);
        };
        s.active = active;
        s.generation = generation;
        s.end = Self::padded(HEADER) as u32;
        s.replay()?;
        if s.dirty {
            s.relocate()?;
        }
        Ok(s)
    }

    /// Formats `flash` as an empty store, whatever it held: both banks erased, a header of
    /// generation 1 written. For a region first put to use that is not erased.
    pub fn format(flash: F, cache: M) -> Result<Self, StoreError> {
        let mut s = Self::new(flash, cache)?;
        s.format_banks()?;
        Ok(s)
    }

    fn new(flash: F, mut cache: M) -> Result<Self, StoreError> {
        cache.clear();
        let bank = (flash.capacity() / 2 / F::ERASE_SIZE * F::ERASE_SIZE) as u32;
        if (bank as usize) < Self::padded(HEADER) + Self::padded(FRAME_HEAD) {
            return Err(StoreError::Full);
        }
        Ok(FlashStore {
            flash,
            cache,
            bank,
            active: 0,
            generation: 0,
            end: 0,
            dirty: false,
        })
    }

    /// Whether the region reads as never written: all 0xFF, but for bank 0's header area
    /// (where a format the power cut writes first and last).
    fn blank(&mut self) -> Result<bool, StoreError> {
        let mut buf = [0u8; CHUNK];
        let mut at = Self::padded(HEADER);
        let total = 2 * self.bank as usize;
        while at < total {
            let len = CHUNK.min(total - at);
            let chunk = buf.get_mut(..len).ok_or(StoreError::Io)?;
            read_at(&mut self.flash, at as u32, chunk)?;
            if chunk.iter().any(|b| *b != 0xff) {
                return Ok(false);
            }
            at += len;
        }
        Ok(true)
    }

    /// Bytes left in the active bank for frames.
    pub fn free(&self) -> usize {
        (self.bank - self.end) as usize
    }

    /// The flash, for tests and diagnostics.
    pub fn flash(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash and the RAM copy back.
    pub fn into_parts(self) -> (F, M) {
        (self.flash, self.cache)
    }

    fn base(&self, bank: u32) -> u32 {
        bank * self.bank
    }

    fn read(&mut self, offset: u32, out: &mut [u8]) -> Result<(), StoreError> {
        read_at(&mut self.flash, offset, out)
    }

    /// The generation in `bank`'s header, if the header is valid; a valid header of another
    /// bank size is `Corrupt`.
    fn header(&mut self, bank: u32) -> Result<Option<u32>, StoreError> {
        let mut h = [0u8; HEADER];
        self.read(self.base(bank), &mut h)?;
        let (body, crc) = h.split_at(16);
        let (magic, rest) = body.split_at(8);
        let (generation, size) = rest.split_at(4);
        if magic != FLASH_MAGIC.as_slice() || CRC.checksum(body).to_le_bytes() != crc {
            return Ok(None);
        }
        let word = |b: &[u8]| {
            let mut w = [0u8; 4];
            w.copy_from_slice(b);
            u32::from_le_bytes(w)
        };
        if word(size) != self.bank {
            return Err(StoreError::Corrupt);
        }
        Ok(Some(word(generation)))
    }

    /// Writes `bank`'s header (the bank erased): the commit of a compaction, or a new store.
    fn write_header(&mut self, bank: u32, generation: u32) -> Result<(), StoreError> {
        let mut h = [0xffu8; CHUNK];
        let (body, rest) = h.split_at_mut(16);
        let (magic, fields) = body.split_at_mut(8);
        magic.copy_from_slice(FLASH_MAGIC);
        let (g, size) = fields.split_at_mut(4);
        g.copy_from_slice(&generation.to_le_bytes());
        size.copy_from_slice(&self.bank.to_le_bytes());
        let crc = CRC.checksum(body).to_le_bytes();
        rest.get_mut(..4)
            .ok_or(StoreError::Io)?
            .copy_from_slice(&crc);
        let header = h.get(..Self::padded(HEADER)).ok_or(StoreError::Io)?;
        self.flash.write(self.base(bank), header).map_err(io)
    }

    fn erase(&mut self, bank: u32) -> Result<(), StoreError> {
        let base = self.base(bank);
        self.flash.erase(base, base + self.bank).map_err(io)
    }

    /// A new, empty store in bank 0.
    fn format_banks(&mut self) -> Result<(), StoreError> {
        // Bank 1 too: a header left there from an earlier use must not win over the new store.
        self.erase(1)?;
        self.erase(0)?;
        self.write_header(0, 1)?;
        self.active = 0;
        self.generation = 1;
        self.end = Self::padded(HEADER) as u32;
        self.cache.clear();
        self.dirty = false;
        Ok(())
    }

    /// Reads the active bank's frames into the cache; marks the store dirty when bytes after
    /// the last valid frame are not erased, and refuses more of them than one frame.
    fn replay(&mut self) -> Result<(), StoreError> {
        let base = self.base(self.active);
        loop {
            let at = self.end;
            if (at as usize) + FRAME_HEAD > self.bank as usize {
                break;
            }
            let mut head = [0u8; FRAME_HEAD];
            self.read(base + at, &mut head)?;
            if head == [0xff; FRAME_HEAD] {
                break;
            }
            let (len4, crc4) = head.split_at(4);
            let mut l = [0u8; 4];
            l.copy_from_slice(len4);
            let len = u32::from_le_bytes(l) as usize;
            // Checked before any arithmetic on it: a torn length word may read as anything.
            if len > self.bank as usize {
                break;
            }
            let span = Self::padded(FRAME_HEAD + len);
            if at as usize + span > self.bank as usize {
                break;
            }
            if !self.cache.fits(len) {
                // A whole frame that this build's RAM copy cannot hold is refused rather than
                // cut; one that does not check is a torn append, whose length word may read as
                // more than was written.
                if self.frame_checks(base + at, len, len4, crc4)? {
                    return Err(StoreError::Full);
                }
                break;
            }
            let mut record_ok = false;
            let flash = &mut self.flash;
            let appended = self.cache.append_with(len, &mut |dst| {
                read_at(flash, base + at + FRAME_HEAD as u32, dst)?;
                let mut digest = CRC.digest();
                digest.update(len4);
                digest.update(dst);
                record_ok = digest.finalize().to_le_bytes() == crc4;
                if record_ok {
                    Ok(())
                } else {
                    Err(StoreError::Corrupt)
                }
            });
            match appended {
                Ok(()) => self.end = at + span as u32,
                Err(StoreError::Corrupt) if !record_ok => break,
                Err(e) => return Err(e),
            }
        }
        // Everything after the log must be erased; an interrupted append may have left up to
        // one frame of other bytes.
        let limit = self.end as usize + Self::padded(FRAME_HEAD + self.cache.capacity());
        let mut at = self.end as usize;
        let mut buf = [0u8; CHUNK];
        while at < self.bank as usize {
            let len = CHUNK.min(self.bank as usize - at);
            let chunk = buf.get_mut(..len).ok_or(StoreError::Io)?;
            self.read(base + at as u32, chunk)?;
            if let Some(i) = chunk.iter().rposition(|b| *b != 0xff) {
                if at + i >= limit {
                    return Err(StoreError::Corrupt);
                }
                self.dirty = true;
            }
            at += len;
        }
        Ok(())
    }

    /// Erases `bank`, writes the kept records and `extra` there, then its header with the next
    /// generation. Returns the generation and where the log ends.
    fn write_bank(
        &mut self,
        bank: u32,
        keep: &dyn Fn(usize) -> bool,
        extra: &[&[u8]],
    ) -> Result<(u32, u32), StoreError> {
        self.erase(bank)?;
        let base = self.base(bank);
        let mut at = Self::padded(HEADER) as u32;
        let cache = &self.cache;
        let kept = (0..cache.len())
            .filter(|&i| keep(i))
            .filter_map(|i| cache.get(i));
        for r in kept.chain(extra.iter().copied()) {
            let span = Self::padded(FRAME_HEAD + r.len());
            write_frame(&mut self.flash, base + at, r, span)?;
            at += span as u32;
        }
        let generation = self.generation.checked_add(1).ok_or(StoreError::Full)?;
        self.write_header(bank, generation)?;
        Ok((generation, at))
    }

    /// Whether the record of `len` bytes at `offset` (its frame's start) matches the CRC in
    /// its header, streamed from the flash.
    fn frame_checks(
        &mut self,
        offset: u32,
        len: usize,
        len4: &[u8],
        crc4: &[u8],
    ) -> Result<bool, StoreError> {
        let mut digest = CRC.digest();
        digest.update(len4);
        let mut buf = [0u8; CHUNK];
        let mut done = 0usize;
        while done < len {
            let n = CHUNK.min(len - done);
            let chunk = buf.get_mut(..n).ok_or(StoreError::Io)?;
            read_at(&mut self.flash, offset + (FRAME_HEAD + done) as u32, chunk)?;
            digest.update(chunk);
            done += n;
        }
        Ok(digest.finalize().to_le_bytes() == crc4)
    }

    /// Moves every record to the other bank: what an interrupted append left is dropped.
    fn relocate(&mut self) -> Result<(), StoreError> {
        self.compact(&|_| true, &[])
    }
}

/// Reads `out.len()` bytes at `offset` through aligned chunks.
fn read_at<F: NorFlash>(flash: &mut F, offset: u32, out: &mut [u8]) -> Result<(), StoreError> {
    let mut buf = [0u8; CHUNK];
    let mut done = 0usize;
    while done < out.len() {
        let at = offset as usize + done;
        let aligned = at / F::READ_SIZE * F::READ_SIZE;
        let skip = at - aligned;
        let len = ((out.len() - done + skip).div_ceil(F::READ_SIZE) * F::READ_SIZE).min(CHUNK);
        let chunk = buf.get_mut(..len).ok_or(StoreError::Io)?;
        flash.read(aligned as u32, chunk).map_err(io)?;
        let take = (len - skip).min(out.len() - done);
        out.get_mut(done..done + take)
            .ok_or(StoreError::Io)?
            .copy_from_slice(chunk.get(skip..skip + take).ok_or(StoreError::Io)?);
        done += take;
    }
    Ok(())
}

/// Writes the frame of `record`, `span` bytes long, at `offset`, through aligned chunks.
fn write_frame<F: NorFlash>(
    flash: &mut F,
    offset: u32,
    record: &[u8],
    span: usize,
) -> Result<(), StoreError> {
    let len4 = (record.len() as u32).to_le_bytes();
    let mut digest = CRC.digest();
    digest.update(&len4);
    digest.update(record);
    let crc4 = digest.finalize().to_le_bytes();
    let mut bytes = len4
        .iter()
        .chain(crc4.iter())
        .chain(record.iter())
        .copied()
        .chain(core::iter::repeat(0xff))
        .take(span);
    let mut buf = [0xffu8; CHUNK];
    let mut written = 0usize;
    while written < span {
        let n = CHUNK.min(span - written);
        let chunk = buf.get_mut(..n).ok_or(StoreError::Io)?;
        for (d, b) in chunk.iter_mut().zip(&mut bytes) {
            *d = b;
        }
        flash.write(offset + written as u32, chunk).map_err(io)?;
        written += n;
    }
    Ok(())
}

impl<F: NorFlash, M: Mirror> Store for FlashStore<F, M> {
    /// Writes the record's frame after the log; the record is durable when the write
    /// returns. After a failed write the log is first moved to the other bank.
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        if self.dirty {
            self.relocate()?;
        }
        let span = Self::padded(FRAME_HEAD + record.len());
        if span > self.free() || !self.cache.fits(record.len()) {
            return Err(StoreError::Full);
        }
        let at = self.base(self.active) + self.end;
        match write_frame(&mut self.flash, at, record, span) {
            Ok(()) => {
                self.end += span as u32;
                self.cache.append(record)
            }
            Err(e) => {
                self.dirty = true;
                Err(e)
            }
        }
    }
    fn len(&self) -> usize {
        self.cache.len()
    }
    fn get(&self, index: usize) -> Option<&[u8]> {
        self.cache.get(index)
    }
    /// Erases the other bank, writes the kept records and `extra` there, then its header
    /// with the next generation: the commit. A power cut before the header is complete
    /// leaves the old bank the log (its header is valid and the new one is not); after, the
    /// new one.
    fn compact(&mut self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> Result<(), StoreError> {
        let mut need = Self::padded(HEADER);
        let kept = (0..self.len())
            .filter(|&i| keep(i))
            .filter_map(|i| self.cache.get(i));
        for r in kept.chain(extra.iter().copied()) {
            need += Self::padded(FRAME_HEAD + r.len());
        }
        // The RAM copy must take the result too: checked before anything is erased.
        if need > self.bank as usize || !self.cache.fits_compacted(keep, extra) {
            return Err(StoreError::Full);
        }
        let target = 1 - self.active;
        // From the erase on, a failure may leave the other bank in any state, its header
        // written or not: the next append moves the log there afresh (erasing it first).
        let next = self.generation.checked_add(1).ok_or(StoreError::Full)?;
        let (generation, at) = match self.write_bank(target, keep, extra) {
            Ok(done) => done,
            // A failure reported after the header reached the flash (a driver's timeout, a
            // verify error): the commit happened, every frame before it too.
            Err(_) if self.header(target).ok().flatten() == Some(next) => (next, need as u32),
            Err(e) => {
                self.dirty = true;
                return Err(e);
            }
        };
        self.active = target;
        self.generation = generation;
        self.end = at;
        self.cache.compact(keep, extra)?;
        self.dirty = false;
        // The old bank's header goes, best effort: were the live header ever to read as
        // damaged, the store is then refused rather than rolled back to the old log.
        let old = self.base(1 - target);
        let _ = self.flash.erase(old, old + F::ERASE_SIZE as u32);
        Ok(())
    }
}
