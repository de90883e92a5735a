//! offpay over Bluetooth LE (SPEC §14), shaped like the ISO 18013-5 mobile-licence transport.
//!
//! - **Engagement** ([`engagement`]): the merchant shows a QR code holding a per-session
//!   service UUID and an ephemeral X25519 key. Scanning it is what authenticates the key, so
//!   the link needs no pairing.
//! - **GATT profile** ([`gatt`]): one service (the session UUID) with State, Client2Server
//!   (written by the customer) and Server2Client (notified by the merchant).
//! - **Chunks** ([`chunk`]): each message is cut into ATT payloads of at most MTU − 3 bytes
//!   whose first byte says whether more follow; reassembly has a hard bound.
//! - **Session** ([`session`]): X25519, HKDF-SHA256 salted with the transcript hash, one
//!   ChaCha20-Poly1305 key per direction, nonce = direction ‖ counter. Any replayed,
//!   reordered, truncated or forged frame ends the session.
//! - [`CustomerSession`] and [`MerchantSession`] run request → payment → receipt by calling
//!   offpay-protocol's `Wallet` and `Acceptor`: chunks and the time in, chunks, a deadline and
//!   [`Event`]s out, no IO. Every step has a timeout (SPEC §14.7). After a dropped link a new
//!   session resumes the same exchange, and each side ends with exactly one payment, because
//!   `Wallet::pay` and `Acceptor::accept` are idempotent.
//! - [`driver::drive`] is the one loop that runs either role over a [`driver::Link`]: the
//!   trouble-host and btleplug adapters and the in-memory [`link`] (feature `std`, for tests
//!   and benchmarks) implement it.
//!
//! The core is `#![no_std]` with no allocator.

#![no_std]
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "btleplug")]
pub mod central;
pub mod chunk;
pub mod driver;
pub mod engagement;
pub mod gatt;
#[cfg(feature = "std")]
pub mod link;
mod seal;
pub mod session;
#[cfg(feature = "trouble")]
pub mod trouble;

pub use chunk::{Chunker, Reassembler};
pub use engagement::{Engagement, MerchantEngagement};
pub use session::{CustomerSession, Event, MerchantSession, Party, Timeouts};

/// The largest frame (one reassembled message) either side accepts: a payment with its
/// voucher, sealed, with room to spare.
pub const MAX_FRAME: usize = 512;

/// The smallest ATT MTU (Bluetooth Core, Vol 3, Part F, 3.2.8).
pub const MIN_MTU: u16 = 23;

offpay_protocol::codes! {
    /// Why a BLE session ended. Every variant has a stable SPEC code (§9).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum BleError: u16 {
        /// A chunk is empty or its first byte is neither 0x00 (last) nor 0x01 (more follows).
        BadChunk = (700, "ble-bad-chunk"),
        /// A message grew beyond the reassembly bound.
        TooLarge = (701, "ble-too-large"),
        /// A chunk arrived after the last message of the exchange.
        ChunkAfterLast = (702, "ble-chunk-after-last"),
        /// A frame failed authenticated decryption: forged, replayed, reordered, truncated or
        /// sealed under another key.
        Decrypt = (703, "ble-decrypt"),
        /// The customer's hello names another session's service UUID.
        WrongSession = (704, "ble-wrong-session"),
        /// The handshake is malformed, of another version, or its key is of low order.
        Handshake = (705, "ble-handshake"),
        /// A frame arrived that the exchange does not allow at this point, or its content is
        /// malformed.
        Unexpected = (706, "ble-unexpected"),
        /// Input after the session ended.
        Closed = (707, "ble-closed"),
        /// The ATT MTU is below 23 or above 517.
        Mtu = (708, "ble-mtu"),
        /// The engagement bytes are malformed or of another version.
        Engagement = (709, "ble-engagement"),
        /// The customer declined the request (sent as a refusal code; never a local error).
        Declined = (710, "ble-declined"),
        /// The request is not bound to this session: its binding signature is missing or does not
        /// verify under the certificate's merchant key, or the merchant could not sign one
        /// (SPEC §14.5).
        Unbound = (711, "ble-unbound"),
        /// A timeout of SPEC §14.7 passed (sent in a sealed refusal when the merchant's session
        /// times out after the handshake).
        TimedOut = (712, "ble-timed-out"),
    }
}

impl core::fmt::Display for BleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl core::error::Error for BleError {}

/// Checks an ATT MTU and returns the largest chunk (MTU − 3 bytes).
pub fn chunk_len(mtu: u16) -> Result<usize, BleError> {
    if !(MIN_MTU..=517).contains(&mtu) {
        return Err(BleError::Mtu);
    }
    Ok(usize::from(mtu) - 3)
}
