//! # offpay-qr
//!
//! Moves opaque offpay message bytes from a screen to a camera (SPEC §13).
//!
//! - A message that fits one QR code of at most [`QrConfig::max_version`] becomes one
//!   **single frame**: `OP1:` + base45, drawn in alphanumeric mode at the smallest version for
//!   the configured error-correction level.
//! - A larger one becomes an **animated** sequence of fountain-coded frames (Blockchain Commons
//!   UR), each within the same largest version; a [`Scanner`] rebuilds the message from frames
//!   received in any order, with duplicates and losses.
//! - [`render`] draws frames as PNG, SVG, terminal text and animated GIF; [`scan`] finds codes
//!   in camera images with `rxing`.
//!
//! ```
//! use offpay_qr::{QrConfig, Encoded, Scanner, Progress};
//!
//! let message = vec![7u8; 253]; // a payment with its voucher
//! let config = QrConfig::default();
//! let Encoded::Single(frame) = config.encode(&message)? else { unreachable!() };
//! assert!(frame.version() <= 13);
//! let mut scanner = Scanner::new(config.max_message_len);
//! assert_eq!(scanner.receive(frame.text())?, Progress::Complete(message));
//! # Ok::<(), offpay_qr::QrError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod frame;
pub mod render;
pub mod scan;
mod scanner;

pub use qrcode::EcLevel;
pub use scanner::{Progress, Scanner};

use core::fmt;
use qrcode::{QrCode, Version};

offpay_protocol::codes! {
    /// Why QR encoding, decoding or scanning failed (SPEC §9, codes 600–699).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum QrError: u16 {
        /// The text is neither a single frame (`OP1:`) nor an offpay UR part.
        WrongPrefix = (600, "qr-wrong-prefix"),
        /// A single frame holds characters outside base45, an impossible base45 length, or a
        /// group whose value is out of range.
        NotBase45 = (601, "qr-not-base45"),
        /// The message is longer than the configured maximum.
        TooLarge = (602, "qr-too-large"),
        /// An animated frame's header is malformed, out of bounds or inconsistent.
        ForgedHeader = (603, "qr-forged-header"),
        /// A frame of another message arrived while one is being assembled.
        MixedMessages = (604, "qr-mixed-messages"),
        /// The reassembled message fails its checksum.
        Checksum = (605, "qr-checksum"),
        /// More frames arrived than any honest transfer of this message needs.
        TooManyFrames = (606, "qr-too-many-frames"),
        /// No QR code was found in the image.
        NoQrCode = (607, "qr-no-code"),
        /// The image could not be read or written.
        Image = (608, "qr-image"),
        /// The message cannot be drawn within the configured version (even as animated frames).
        Encode = (609, "qr-encode"),
    }
}

impl fmt::Display for QrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (offpay error {})", self.name(), self.code())
    }
}
impl core::error::Error for QrError {}

/// How messages are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrConfig {
    /// Error-correction level (default M: 15 % of the code may be damaged).
    pub ec_level: EcLevel,
    /// The largest QR version a frame may use (1–40, default 13); a message that does not fit
    /// one frame at this version is sent animated.
    pub max_version: i16,
    /// The longest message accepted (default 64 KiB); the scanner refuses longer ones from the
    /// first frame header.
    pub max_message_len: usize,
}

impl Default for QrConfig {
    fn default() -> Self {
        QrConfig {
            ec_level: EcLevel::M,
            max_version: 13,
            max_message_len: 64 * 1024,
        }
    }
}

/// One QR code: its text and its module matrix.
#[derive(Clone)]
pub struct Frame {
    text: String,
    code: QrCode,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Frame(version {}, {} chars)",
            self.version(),
            self.text.len()
        )
    }
}

impl Frame {
    /// Draws `text` at the smallest version for `ec_level`, failing above `max_version`.
    pub fn new(text: String, ec_level: EcLevel, max_version: i16) -> Result<Self, QrError> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), ec_level)
            .map_err(|_| QrError::Encode)?;
        match code.version() {
            Version::Normal(v) if v <= max_version => Ok(Frame { text, code }),
            _ => Err(QrError::Encode),
        }
    }
    /// The text the code holds.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The QR version (1–40).
    pub fn version(&self) -> i16 {
        match self.code.version() {
            Version::Normal(v) | Version::Micro(v) => v,
        }
    }
    /// Modules per side.
    pub fn width(&self) -> usize {
        self.code.width()
    }
    /// Whether module (x, y) is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.code[(x, y)] == qrcode::Color::Dark
    }
}

/// What [`QrConfig::encode`] made.
#[derive(Debug)]
pub enum Encoded {
    /// The message fits one frame.
    Single(Frame),
    /// The message needs animated frames.
    Animated(Animation),
}

/// An endless source of fountain-coded frames for one message. The first
/// [`Animation::fragment_count`] frames carry the fragments in order; later ones mix them, so a
/// receiver that lost some frames completes from whichever it sees next.
pub struct Animation {
    encoder: ur::Encoder<'static>,
    config: QrConfig,
}

impl fmt::Debug for Animation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Animation({} fragments)", self.fragment_count())
    }
}

impl Animation {
    /// How many fragments the message was cut into: the least number of frames a receiver needs.
    pub fn fragment_count(&self) -> usize {
        self.encoder.fragment_count()
    }
    /// The next frame.
    pub fn next_frame(&mut self) -> Result<Frame, QrError> {
        let part = self
            .encoder
            .next_part()
            .map_err(|_| QrError::Encode)?
            .to_ascii_uppercase();
        Frame::new(part, self.config.ec_level, self.config.max_version)
    }
    /// The next `n` frames.
    pub fn frames(&mut self, n: usize) -> Result<Vec<Frame>, QrError> {
        (0..n).map(|_| self.next_frame()).collect()
    }
}

impl QrConfig {
    /// Encodes a message: one frame if it fits, animated frames otherwise.
    pub fn encode(&self, message: &[u8]) -> Result<Encoded, QrError> {
        if message.len() > self.max_message_len {
            return Err(QrError::TooLarge);
        }
        if message.is_empty() {
            return Err(QrError::Encode);
        }
        if let Ok(frame) = Frame::new(
            frame::encode_single(message),
            self.ec_level,
            self.max_version,
        ) {
            return Ok(Encoded::Single(frame));
        }
        self.animate(message).map(Encoded::Animated)
    }

    /// Encodes a message as animated frames whatever its size (a sync batch, say), with the
    /// largest fragments whose frames still fit [`QrConfig::max_version`].
    pub fn animate(&self, message: &[u8]) -> Result<Animation, QrError> {
        if message.len() > self.max_message_len || message.is_empty() {
            return Err(QrError::TooLarge);
        }
        // Alphanumeric capacity of the largest version, in characters; a part spends
        // ~2 characters a byte (bytewords) plus its header, so start there and step down.
        let mut fragment = capacity_chars(self.ec_level, self.max_version).saturating_sub(40) / 2;
        while fragment >= 10 {
            let mut encoder =
                ur::Encoder::new(message, fragment, UR_TYPE_STATIC).map_err(|_| QrError::Encode)?;
            // Parts differ only in their sequence number's digits: allow for up to 10^7 frames.
            let first = encoder.next_part().map_err(|_| QrError::Encode)?.len();
            let ok = Frame::new("A".repeat(first + 7), self.ec_level, self.max_version).is_ok();
            if ok {
                let encoder = ur::Encoder::new(message, fragment, UR_TYPE_STATIC)
                    .map_err(|_| QrError::Encode)?;
                return Ok(Animation {
                    encoder,
                    config: *self,
                });
            }
            fragment = fragment * 9 / 10;
        }
        Err(QrError::Encode)
    }
}

const UR_TYPE_STATIC: &str = frame::UR_TYPE;

/// Alphanumeric characters a QR code of `version` holds at `ec`.
pub fn capacity_chars(ec: EcLevel, version: i16) -> usize {
    let Ok(bits) = qrcode::bits::Bits::new(Version::Normal(version)).max_len(ec) else {
        return 0;
    };
    // Mode indicator (4 bits) and character count (9–13 bits), then 11 bits per 2 characters.
    let count_bits = match version {
        1..=9 => 9,
        10..=26 => 11,
        _ => 13,
    };
    let data = bits.saturating_sub(4 + count_bits);
    data / 11 * 2 + usize::from(data % 11 >= 6)
}
