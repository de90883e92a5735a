//! Session keys and authenticated encryption (SPEC §14.4).
//!
//! `transcript = SHA-256("offpay-ble-v1" ‖ engagement ‖ hello)`;
//! `k_c2s ‖ k_s2c = HKDF-SHA256(salt = transcript, ikm = X25519(e_c, e_m))` with the infos
//! `"offpay ble c2s"` and `"offpay ble s2c"`; each frame is ChaCha20-Poly1305 under its
//! direction's key with the nonce `direction (u32, 0 = c2s, 1 = s2c) ‖ counter (u64)`, both
//! big-endian, the counter starting at 0 and counting frames. A receiver expects exactly the
//! next counter, so a replayed, reordered or dropped frame fails authentication.

use crate::BleError;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// The transcript hash that salts the key derivation.
pub fn transcript(engagement: &[u8], hello: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"offpay-ble-v1");
    h.update(engagement);
    h.update(hello);
    h.finalize().into()
}

/// Derives the two direction keys. A low-order peer key gives an all-zero shared secret,
/// which the caller refuses before calling this.
pub fn derive(shared: &[u8; 32], transcript: &[u8; 32]) -> (Direction, Direction) {
    let hk = Hkdf::<Sha256>::new(Some(transcript), shared);
    let mut c2s = Zeroizing::new([0u8; 32]);
    let mut s2c = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit of 255 × 32: expand cannot fail.
    let _ = hk.expand(b"offpay ble c2s", &mut c2s[..]);
    let _ = hk.expand(b"offpay ble s2c", &mut s2c[..]);
    (
        Direction {
            key: c2s,
            direction: 0,
            counter: 0,
        },
        Direction {
            key: s2c,
            direction: 1,
            counter: 0,
        },
    )
}

/// One direction's key and frame counter. The key is zeroized on drop.
pub struct Direction {
    key: Zeroizing<[u8; 32]>,
    direction: u32,
    counter: u64,
}

impl Direction {
    fn nonce(&self) -> Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.direction.to_be_bytes());
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        Nonce::from(n)
    }

    /// Encrypts `buf[..len]` in place and appends the tag; returns the frame length.
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Result<usize, BleError> {
        let frame = buf.get_mut(..len + TAG_LEN).ok_or(BleError::TooLarge)?;
        let (body, tag_out) = frame.split_at_mut(len);
        let cipher = ChaCha20Poly1305::new((&*self.key).into());
        let tag = cipher
            .encrypt_in_place_detached(&self.nonce(), &[], body)
            .map_err(|_| BleError::TooLarge)?;
        tag_out.copy_from_slice(&tag);
        self.counter = self.counter.checked_add(1).ok_or(BleError::Closed)?;
        Ok(len + TAG_LEN)
    }

    /// Authenticates and decrypts a frame in place; returns the plaintext length.
    pub fn open(&mut self, frame: &mut [u8]) -> Result<usize, BleError> {
        let len = frame.len().checked_sub(TAG_LEN).ok_or(BleError::Decrypt)?;
        let (body, tag) = frame.split_at_mut(len);
        let tag = Tag::clone_from_slice(tag);
        let cipher = ChaCha20Poly1305::new((&*self.key).into());
        cipher
            .decrypt_in_place_detached(&self.nonce(), &[], body, &tag)
            .map_err(|_| BleError::Decrypt)?;
        self.counter = self.counter.checked_add(1).ok_or(BleError::Closed)?;
        Ok(len)
    }
}
