//! The file journal: `magic ‖ frame*`, each frame `len (u32 LE) ‖ crc32 (u32 LE) ‖ record`,
//! where the CRC-32 covers the length bytes and the record. Appends are one `write` followed
//! by `fsync` (`sync_data`).

use super::Store;
use crate::error::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::vec::Vec;

/// The first 8 bytes of every journal file.
pub const MAGIC: &[u8; 8] = b"OFFPAYJ1";
/// The largest record a journal accepts.
pub const MAX_RECORD: usize = 64 * 1024;
const FRAME_HEAD: usize = 8;

/// An append-only, checksummed journal file.
#[derive(Debug)]
pub struct FileStore {
    file: File,
    path: PathBuf,
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
    end: u64,
}

fn crc(len: &[u8; 4], record: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(record);
    h.finalize()
}

/// What a journal's bytes hold: the records' spans and where the valid part ends.
pub(crate) struct Scan {
    pub spans: Vec<(usize, usize)>,
    pub valid_len: usize,
}

/// Parses journal bytes. Frames are read while they check (whole, at most [`MAX_RECORD`],
/// CRC right). The bytes from the first frame that does not check to the end of the file
/// are a torn tail, dropped, when the one append a crash interrupted could have left them
/// (SPEC §8.5): they are no longer than one frame; no offset inside them after their first
/// byte starts a chain of valid frames that ends exactly at the end of the file (those
/// would be committed records after damage); and their first frame is not a whole frame
/// with more bytes after it, which an append writing one frame cannot leave, unless its
/// header reads as never written (a zero length, or a CRC field of zeros or 0xFF: a
/// header cut short and the rest of the file zeros). Anything else is refused as corrupt
/// rather than dropped, since it may hold committed records.
pub(crate) fn scan(bytes: &[u8]) -> Result<Scan, StoreError> {
    if torn_creation(bytes) {
        // A creation torn before the magic was on disk holds no records.
        return Ok(Scan {
            spans: Vec::new(),
            valid_len: 0,
        });
    }
    if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(StoreError::Corrupt);
    }
    let mut spans = Vec::new();
    let mut at = MAGIC.len();
    while let Some((start, end)) = frame_at(bytes, at) {
        spans.push((start, end));
        at = end;
    }
    let tail = bytes.get(at..).unwrap_or(&[]);
    if !tail.is_empty()
        && (tail.len() > FRAME_HEAD + MAX_RECORD
            || whole_with_more_after(tail)
            || frames_follow(tail))
    {
        return Err(StoreError::Corrupt);
    }
    Ok(Scan {
        valid_len: at,
        spans,
    })
}

/// Whether `bytes` are what an interrupted creation can leave: creating a journal writes
/// the 8-byte magic and syncs it before any record is appended, so a file of at most 8
/// bytes that starts with a prefix of the magic (perhaps empty) and reads as never
/// written after it (all zeros, as a file that grew before its data reached the disk
/// reads, or all 0xFF, as erased flash reads) holds no committed record.
fn torn_creation(bytes: &[u8]) -> bool {
    if bytes.len() > MAGIC.len() || bytes == MAGIC.as_slice() {
        return false;
    }
    let k = bytes
        .iter()
        .zip(MAGIC.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let rest = bytes.get(k..).unwrap_or(&[]);
    rest.iter().all(|b| *b == 0) || rest.iter().all(|b| *b == 0xff)
}

/// The header of the frame at `at`, if `bytes` hold all 8 of its bytes: the length field
/// and the CRC field.
fn header_at(bytes: &[u8], at: usize) -> Option<([u8; 4], [u8; 4])> {
    let head = bytes.get(at..at.checked_add(FRAME_HEAD)?)?;
    let mut len4 = [0u8; 4];
    len4.copy_from_slice(head.get(..4)?);
    let mut crc4 = [0u8; 4];
    crc4.copy_from_slice(head.get(4..)?);
    Some((len4, crc4))
}

/// The record span of the frame at `at`, if a whole frame that checks starts there.
fn frame_at(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let (len4, crc4) = header_at(bytes, at)?;
    let len = u32::from_le_bytes(len4) as usize;
    if len > MAX_RECORD {
        return None;
    }
    let start = at + FRAME_HEAD;
    let end = start.checked_add(len)?;
    let record = bytes.get(start..end)?;
    (crc(&len4, record) == u32::from_le_bytes(crc4)).then_some((start, end))
}

/// Whether `tail` starts with a whole frame that ends before the end of `tail`, its
/// header complete and written: a length from 1 to [`MAX_RECORD`], and a CRC field that
/// does not read as unwritten (all zeros, or all 0xFF as erased flash reads).
fn whole_with_more_after(tail: &[u8]) -> bool {
    let Some((len4, crc4)) = header_at(tail, 0) else {
        return false;
    };
    let len = u32::from_le_bytes(len4) as usize;
    let crc_unwritten = crc4 == [0; 4] || crc4 == [0xff; 4];
    len != 0 && len <= MAX_RECORD && !crc_unwritten && FRAME_HEAD + len < tail.len()
}

/// Whether some offset of `tail` after its first byte starts a chain of valid frames that
/// ends exactly at the end of `tail`. Decided from the end backwards, so a frame's CRC is
/// computed only when the frame would continue such a chain: linear for any tail but a
/// contrived one, and bounded by one frame's length squared in every case.
fn frames_follow(tail: &[u8]) -> bool {
    let n = tail.len();
    // reaches_end[o]: a chain of valid frames from o ends exactly at n.
    let mut reaches_end = std::vec![false; n + 1];
    if let Some(last) = reaches_end.last_mut() {
        *last = true;
    }
    let mut found = false;
    for o in (1..n).rev() {
        let Some((len4, _)) = header_at(tail, o) else {
            continue;
        };
        let len = u32::from_le_bytes(len4) as usize;
        let end = o + FRAME_HEAD + len.min(n);
        if len > MAX_RECORD || !reaches_end.get(end).copied().unwrap_or(false) {
            continue;
        }
        if frame_at(tail, o).is_some() {
            if let Some(r) = reaches_end.get_mut(o) {
                *r = true;
            }
            found = true;
        }
    }
    found
}

impl FileStore {
    /// Opens (creating if missing) the journal at `path`, recovering from a torn tail (what
    /// an interrupted append left) by cutting it off. Refuses, with
    /// [`StoreError::Corrupt`] and leaving the file untouched, a wrong magic and any damage
    /// that may hold committed records (SPEC §8.5).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|_| StoreError::Io)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|_| StoreError::Io)?;
        let Scan { spans, valid_len } = scan(&data)?;
        if valid_len < MAGIC.len() {
            file.set_len(0).map_err(|_| StoreError::Io)?;
            file.seek(SeekFrom::Start(0)).map_err(|_| StoreError::Io)?;
            file.write_all(MAGIC).map_err(|_| StoreError::Io)?;
            file.sync_all().map_err(|_| StoreError::Io)?;
            sync_dir(&path)?;
            data = MAGIC.to_vec();
        } else if valid_len < data.len() {
            file.set_len(valid_len as u64).map_err(|_| StoreError::Io)?;
            file.sync_all().map_err(|_| StoreError::Io)?;
            data.truncate(valid_len);
        }
        let end = data.len() as u64;
        Ok(FileStore {
            file,
            path,
            data,
            spans,
            end,
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Directories can be opened and fsynced on Unix; elsewhere this is best effort.
    match File::open(dir) {
        Ok(d) => {
            let _ = d.sync_all();
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

impl Store for FileStore {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        if record.len() > MAX_RECORD {
            return Err(StoreError::RecordTooLarge);
        }
        let len4 = (record.len() as u32).to_le_bytes();
        let mut frame = Vec::with_capacity(FRAME_HEAD + record.len());
        frame.extend_from_slice(&len4);
        frame.extend_from_slice(&crc(&len4, record).to_le_bytes());
        frame.extend_from_slice(record);
        let written = self
            .file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.file.write_all(&frame))
            .and_then(|_| self.file.sync_data());
        if written.is_err() {
            // Leave no partial frame behind; if even this fails, the next open drops it as
            // a torn tail.
            let _ = self.file.set_len(self.end);
            return Err(StoreError::Io);
        }
        let start = self.data.len() + FRAME_HEAD;
        self.data.extend_from_slice(&frame);
        self.spans.push((start, self.data.len()));
        self.end += frame.len() as u64;
        Ok(())
    }
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn get(&self, index: usize) -> Option<&[u8]> {
        let (s, e) = *self.spans.get(index)?;
        self.data.get(s..e)
    }
}
