//! The file journal reopened over damaged bytes.

use super::*;

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
