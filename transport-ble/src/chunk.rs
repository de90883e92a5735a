//! Chunking of messages into ATT payloads and their bounded reassembly (SPEC §14.3).
//!
//! A chunk is at most MTU − 3 bytes: a first byte 0x01 when more chunks of the same message
//! follow, 0x00 on the last one, then data. An empty message is one chunk `[0x00]`.

use crate::BleError;

/// First byte of a chunk that is followed by more.
pub const MORE: u8 = 0x01;
/// First byte of the last chunk of a message.
pub const LAST: u8 = 0x00;

/// Cuts one message into chunks of at most `chunk_len` bytes (flag byte included).
#[derive(Clone, Debug)]
pub struct Chunker<'a> {
    rest: &'a [u8],
    data_len: usize,
    done: bool,
}

impl<'a> Chunker<'a> {
    /// Chunks `message` for an ATT MTU: `chunk_len` is [`crate::chunk_len`]`(mtu)`, at least 2.
    pub fn new(message: &'a [u8], chunk_len: usize) -> Self {
        Chunker {
            rest: message,
            data_len: chunk_len.saturating_sub(1).max(1),
            done: false,
        }
    }

    /// Writes the next chunk into `out` (at least `chunk_len` bytes) and returns its length,
    /// or `None` when the message is exhausted.
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.done {
            return None;
        }
        let n = self
            .rest
            .len()
            .min(self.data_len)
            .min(out.len().checked_sub(1)?);
        let (now, rest) = self.rest.split_at(n);
        let (flag, data) = out.split_first_mut()?;
        *flag = if rest.is_empty() { LAST } else { MORE };
        data.get_mut(..n)?.copy_from_slice(now);
        self.rest = rest;
        self.done = rest.is_empty();
        Some(n + 1)
    }

    /// How many chunks a message of `len` bytes takes at `chunk_len`.
    pub const fn count(len: usize, chunk_len: usize) -> usize {
        let data = if chunk_len > 1 { chunk_len - 1 } else { 1 };
        if len == 0 { 1 } else { len.div_ceil(data) }
    }
}

/// Reassembles chunks into one message of at most `N` bytes.
#[derive(Clone, Debug)]
pub struct Reassembler<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Reassembler<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Reassembler<N> {
    /// An empty reassembler.
    pub const fn new() -> Self {
        Reassembler {
            buf: [0; N],
            len: 0,
        }
    }

    /// Adds a chunk. Returns the whole message when this was its last chunk (the
    /// reassembler is then empty again), `None` while more are expected. A malformed chunk
    /// or a message over `N` bytes is an error; the bytes gathered so far are dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<&[u8]>, BleError> {
        let (&flag, data) = match chunk.split_first() {
            Some(x) => x,
            None => {
                self.len = 0;
                return Err(BleError::BadChunk);
            }
        };
        if flag != MORE && flag != LAST {
            self.len = 0;
            return Err(BleError::BadChunk);
        }
        let end = self.len + data.len();
        if end > N {
            self.len = 0;
            return Err(BleError::TooLarge);
        }
        self.buf[self.len..end].copy_from_slice(data);
        if flag == MORE {
            self.len = end;
            return Ok(None);
        }
        self.len = 0;
        Ok(Some(&self.buf[..end]))
    }

    /// Whether part of a message has arrived.
    pub fn in_progress(&self) -> bool {
        self.len > 0
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn chunks_reassemble_at_every_size() {
        let message: [u8; 300] = core::array::from_fn(|i| i as u8);
        for chunk_len in [2usize, 3, 20, 182, 244, 514] {
            for len in [0usize, 1, 19, 20, 21, 299, 300] {
                let mut c = Chunker::new(&message[..len], chunk_len);
                let mut r = Reassembler::<300>::new();
                let mut out = [0u8; 514];
                let mut chunks = 0;
                let mut got = None;
                while let Some(n) = c.next_into(&mut out) {
                    assert!(n <= chunk_len);
                    chunks += 1;
                    if let Some(m) = r.push(&out[..n]).unwrap_or(None) {
                        got = Some(m.to_vec_like());
                    }
                }
                assert_eq!(chunks, Chunker::count(len, chunk_len));
                assert_eq!(got.as_deref(), Some(&message[..len]));
            }
        }
    }

    trait ToVecLike {
        fn to_vec_like(&self) -> heapless::Vec<u8, 300>;
    }
    impl ToVecLike for [u8] {
        fn to_vec_like(&self) -> heapless::Vec<u8, 300> {
            heapless::Vec::from_slice(self).unwrap_or_default()
        }
    }

    #[test]
    fn malformed_and_oversized_chunks_are_refused() {
        let mut r = Reassembler::<8>::new();
        assert_eq!(r.push(&[]), Err(BleError::BadChunk));
        assert_eq!(r.push(&[0x02, 1]), Err(BleError::BadChunk));
        assert_eq!(r.push(&[MORE, 1, 2, 3, 4, 5]), Ok(None));
        assert_eq!(r.push(&[LAST, 6, 7, 8, 9]), Err(BleError::TooLarge));
        assert!(!r.in_progress(), "a refused message leaves nothing behind");
        assert_eq!(r.push(&[LAST, 1, 2]), Ok(Some(&[1u8, 2][..])));
    }
}
