//! The file journal: `magic ‖ frame*`, each frame `len (u32 LE) ‖ crc32 (u32 LE) ‖ record`,
//! where the CRC-32 covers the length bytes and the record. Appends are one `write` followed
//! by `fsync` (`sync_data`); a compaction writes a new file and renames it over the old.

use super::Store;
use crate::error::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::vec::Vec;

/// The first 8 bytes of every journal file.
pub const MAGIC: &[u8; 8] = b"OFFPAYJ1";
/// The largest record a journal accepts.
pub const MAX_RECORD: usize = 64 * 1024;
const FRAME_HEAD: usize = 8;

/// An append-only, checksummed journal file, over the file system `F`.
#[derive(Debug)]
pub struct FileStore<F: Fs = OsFs> {
    fs: F,
    path: PathBuf,
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// A compaction renamed its file but could not sync the directory: synced before the
    /// next append, so that no append lands in a file whose name a crash could undo.
    dir_unsynced: bool,
    /// A compaction's rename failed and whether it happened cannot be told: which file the
    /// path names is unknown, so nothing is written until the journal is opened again.
    poisoned: bool,
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

/// The file operations a [`FileStore`] is made of. [`OsFs`] is the real file system; a test
/// puts a layer under the store that cuts power between two operations or in the middle of
/// a write, and checks what the store opens afterwards (SPEC §8.5).
pub trait Fs {
    /// The whole content of `path`, which is created empty when missing.
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates `path` empty, or empties it.
    fn create(&mut self, path: &Path) -> io::Result<()>;
    /// Whether `path` exists; an error when that cannot be told.
    fn exists(&mut self, path: &Path) -> io::Result<bool>;
    /// Writes `bytes` at `offset` of the existing file `path`.
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Cuts or extends `path` to `len` bytes.
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes what was written to `path` durable (`fsync`).
    fn sync(&mut self, path: &Path) -> io::Result<()>;
    /// Replaces `to` with `from`, atomically: a reader sees one or the other.
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes `path`.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    /// Makes the names in `dir` durable: a creation, a rename, a removal (`fsync` of the
    /// directory).
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
}

/// The operating system's file system. It keeps the journal's file open between appends.
#[derive(Debug, Default)]
pub struct OsFs {
    open: Option<(PathBuf, File)>,
}

impl OsFs {
    fn file(&mut self, path: &Path) -> io::Result<&mut File> {
        if self.open.as_ref().is_none_or(|(p, _)| p != path) {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            self.open = Some((path.to_path_buf(), f));
        }
        match &mut self.open {
            Some((_, f)) => Ok(f),
            None => Err(io::Error::other("no open file")),
        }
    }
    fn forget(&mut self, path: &Path) {
        if self.open.as_ref().is_some_and(|(p, _)| p == path) {
            self.open = None;
        }
    }
}

impl Fs for OsFs {
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.file(path)?;
        let mut data = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut data)?;
        Ok(data)
    }
    fn create(&mut self, path: &Path) -> io::Result<()> {
        self.file(path)?.set_len(0)
    }
    fn exists(&mut self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let f = self.file(path)?;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(bytes)
    }
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.file(path)?.set_len(len)
    }
    fn sync(&mut self, path: &Path) -> io::Result<()> {
        self.file(path)?.sync_data()
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        std::fs::rename(from, to)
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.forget(path);
        std::fs::remove_file(path)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        // Directories can be opened and fsynced on Unix, where a failed sync is an error, but
        // for file systems that cannot sync a directory at all; elsewhere a directory cannot
        // be opened, and this is best effort.
        match File::open(dir).map(|d| d.sync_all()) {
            Ok(Err(e))
                if !matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported | io::ErrorKind::InvalidInput
                ) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }
}

fn io(_: io::Error) -> StoreError {
    StoreError::Io
}

/// The frame of one record.
fn push_frame(out: &mut Vec<u8>, record: &[u8]) {
    let len4 = (record.len() as u32).to_le_bytes();
    out.extend_from_slice(&len4);
    out.extend_from_slice(&crc(&len4, record).to_le_bytes());
    out.extend_from_slice(record);
}

impl FileStore<OsFs> {
    /// Opens (creating if missing) the journal at `path`, recovering from a torn tail (what
    /// an interrupted append left) by cutting it off, and from an interrupted compaction by
    /// removing its unfinished file. Refuses, with [`StoreError::Corrupt`] and leaving the
    /// file untouched, a wrong magic and any damage that may hold committed records (SPEC
    /// §8.5).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_in(OsFs::default(), path)
    }
}

impl<F: Fs> FileStore<F> {
    /// [`FileStore::open`] over the file system `fs`.
    pub fn open_in(mut fs: F, path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let dir = parent(&path).to_path_buf();
        let next = compacting(&path);
        if fs.exists(&next).map_err(io)? {
            // A compaction that did not reach its rename: the journal is still the old one.
            fs.remove(&next).map_err(io)?;
            fs.sync_dir(&dir).map_err(io)?;
        }
        let mut data = fs.read(&path).map_err(io)?;
        let Scan { spans, valid_len } = scan(&data)?;
        if valid_len < MAGIC.len() {
            fs.set_len(&path, 0).map_err(io)?;
            fs.write_at(&path, 0, MAGIC).map_err(io)?;
            fs.sync(&path).map_err(io)?;
            fs.sync_dir(&dir).map_err(io)?;
            data = MAGIC.to_vec();
        } else if valid_len < data.len() {
            fs.set_len(&path, valid_len as u64).map_err(io)?;
            fs.sync(&path).map_err(io)?;
            data.truncate(valid_len);
        }
        Ok(FileStore {
            fs,
            path,
            data,
            spans,
            dir_unsynced: false,
            poisoned: false,
        })
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal's size in bytes.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// The file system, for tests.
    pub fn fs(&mut self) -> &mut F {
        &mut self.fs
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Where a compaction writes the new journal before renaming it over the old one.
pub(crate) fn compacting(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".compacting");
    PathBuf::from(name)
}

impl<F: Fs> Store for FileStore<F> {
    fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        if record.len() > MAX_RECORD {
            return Err(StoreError::RecordTooLarge);
        }
        if self.poisoned {
            return Err(StoreError::Io);
        }
        if self.dir_unsynced {
            self.fs.sync_dir(parent(&self.path)).map_err(io)?;
            self.dir_unsynced = false;
        }
        let mut frame = Vec::with_capacity(FRAME_HEAD + record.len());
        push_frame(&mut frame, record);
        let end = self.data.len() as u64;
        let written = self
            .fs
            .write_at(&self.path, end, &frame)
            .and_then(|_| self.fs.sync(&self.path));
        if written.is_err() {
            // Leave no partial frame behind; if even this fails, the next open drops it as
            // a torn tail.
            let _ = self.fs.set_len(&self.path, end);
            return Err(StoreError::Io);
        }
        let start = self.data.len() + FRAME_HEAD;
        self.data.extend_from_slice(&frame);
        self.spans.push((start, self.data.len()));
        Ok(())
    }
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn get(&self, index: usize) -> Option<&[u8]> {
        let (s, e) = *self.spans.get(index)?;
        self.data.get(s..e)
    }
    /// Writes the new journal to `<path>.compacting`, syncs it, renames it over the journal
    /// and syncs the directory (SPEC §8.5). A crash before the rename leaves the old journal
    /// (the unfinished file is removed at the next open), after it the new one. An error
    /// after the rename (or from a rename that happened anyway) leaves the new journal, which
    /// this store then holds; a directory sync that failed is done again before the next
    /// append.
    fn compact(&mut self, keep: &dyn Fn(usize) -> bool, extra: &[&[u8]]) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Io);
        }
        let mut data = MAGIC.to_vec();
        let mut spans = Vec::new();
        let kept = (0..self.len())
            .filter(|&i| keep(i))
            .filter_map(|i| self.get(i));
        for r in kept.chain(extra.iter().copied()) {
            if r.len() > MAX_RECORD {
                return Err(StoreError::RecordTooLarge);
            }
            push_frame(&mut data, r);
            spans.push((data.len() - r.len(), data.len()));
        }
        let next = compacting(&self.path);
        let dir = parent(&self.path).to_path_buf();
        let prepared = self
            .fs
            .create(&next)
            .and_then(|_| self.fs.write_at(&next, 0, &data))
            .and_then(|_| self.fs.sync(&next));
        if prepared.is_err() {
            let _ = self.fs.remove(&next);
            return Err(StoreError::Io);
        }
        let written = self.fs.rename(&next, &self.path);
        // A rename reported as failed may still have happened: the new file's old name says
        // which journal the path now names; when even that cannot be told, nothing more is
        // written until the journal is opened again.
        if written.is_err() {
            match self.fs.exists(&next) {
                Ok(true) => {
                    let _ = self.fs.remove(&next);
                    return Err(StoreError::Io);
                }
                Ok(false) => {}
                Err(_) => {
                    self.poisoned = true;
                    return Err(StoreError::Io);
                }
            }
        }
        self.data = data;
        self.spans = spans;
        if self.fs.sync_dir(&dir).is_err() {
            self.dir_unsynced = true;
            return Err(StoreError::Io);
        }
        written.map_err(io)
    }
}
