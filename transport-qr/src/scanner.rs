//! The receiving side: frames in, in any order, message out.

use crate::QrError;
use crate::frame::{self, PartHeader};

/// How far a transfer has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More frames are needed.
    Partial {
        /// Fragments recovered so far, out of `total`.
        recovered: usize,
        /// The number of fragments of the message.
        total: usize,
        /// Distinct frames received.
        frames_seen: usize,
    },
    /// The message is complete.
    Complete(Vec<u8>),
}

impl Progress {
    /// The fraction complete, 0.0 to 1.0.
    pub fn fraction(&self) -> f64 {
        match self {
            Progress::Partial {
                recovered, total, ..
            } if *total > 0 => *recovered as f64 / *total as f64,
            Progress::Partial { .. } => 0.0,
            Progress::Complete(_) => 1.0,
        }
    }
}

/// Rebuilds one message from camera frames: a single frame completes at once; animated frames
/// are checked ([`frame::parse_part_header`]) and fed to the fountain decoder until it
/// completes. Frames of another message are refused without disturbing the transfer under way.
/// [`Scanner::reset`] readies it for the next customer.
pub struct Scanner {
    max_message_len: usize,
    header: Option<PartHeader>,
    decoder: ur::Decoder,
    seen: std::collections::BTreeSet<u32>,
    received: usize,
}

impl core::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Scanner({:?}, {} frames)", self.header, self.seen.len())
    }
}

impl Scanner {
    /// A scanner accepting messages up to `max_message_len` bytes.
    pub fn new(max_message_len: usize) -> Self {
        Scanner {
            max_message_len,
            header: None,
            decoder: ur::Decoder::default(),
            seen: Default::default(),
            received: 0,
        }
    }

    /// Forgets the transfer under way.
    pub fn reset(&mut self) {
        *self = Scanner::new(self.max_message_len);
    }

    /// The progress so far.
    pub fn progress(&self) -> Progress {
        Progress::Partial {
            recovered: self.decoder.resolved_fragment_count().unwrap_or(0),
            total: self.header.map_or(0, |h| h.count as usize),
            frames_seen: self.seen.len(),
        }
    }

    /// Takes one decoded frame string.
    pub fn receive(&mut self, text: &str) -> Result<Progress, QrError> {
        if text.starts_with(frame::SINGLE_PREFIX) {
            return frame::decode_single(text, self.max_message_len).map(Progress::Complete);
        }
        let h = frame::parse_part_header(text, self.max_message_len)?;
        match self.header {
            Some(cur)
                if (cur.count, cur.message_len, cur.checksum, cur.fragment_len)
                    != (h.count, h.message_len, h.checksum, h.fragment_len) =>
            {
                return Err(QrError::MixedMessages);
            }
            _ => {}
        }
        // An honest sender needs at most a small multiple of the fragment count; a flood of
        // distinct mixed parts would otherwise grow the decoder's memory without end.
        let budget = (h.count as usize).saturating_mul(8).saturating_add(64);
        if self.seen.contains(&h.seq) {
            return Ok(self.progress());
        }
        if self.received >= budget {
            return Err(QrError::TooManyFrames);
        }
        self.decoder
            .receive(text)
            .map_err(|_| QrError::ForgedHeader)?;
        self.header = Some(h);
        self.seen.insert(h.seq);
        self.received += 1;
        if self.decoder.complete() {
            let message = self
                .decoder
                .message()
                .map_err(|_| QrError::Checksum)?
                .ok_or(QrError::Checksum)?;
            if message.len() != h.message_len as usize {
                return Err(QrError::Checksum);
            }
            return Ok(Progress::Complete(message));
        }
        Ok(self.progress())
    }
}
