//! Messages as QR codes: drawn as PNG images, read back from camera images or from the text a
//! platform scanner returns. Every offpay message between two devices fits one code (version
//! 10 or less at level L).

use crate::Error;
use offpay_qr::render::{Style, to_png};
use offpay_qr::{Encoded, Progress, QrConfig, QrError, Scanner};

pub(crate) fn qr_error(what: &str, e: QrError) -> Error {
    Error::Refused {
        code: e.code(),
        name: e.name().into(),
        message: format!("{what}: {}", e.name().replace('-', " ")),
    }
}

/// The text of the one QR code that carries `message` (`OP1:` and base45), for apps that draw
/// codes themselves.
pub fn text(message: &[u8]) -> Result<String, Error> {
    match QrConfig::default()
        .encode(message)
        .map_err(|e| qr_error("drawing the QR code", e))?
    {
        Encoded::Single(frame) => Ok(frame.text().to_string()),
        Encoded::Animated(_) => Err(Error::invalid(format!(
            "a {}-byte message does not fit one QR code",
            message.len()
        ))),
    }
}

/// `message` drawn as one QR code, as a PNG image.
pub fn png(message: &[u8]) -> Result<Vec<u8>, Error> {
    let Encoded::Single(frame) = QrConfig::default()
        .encode(message)
        .map_err(|e| qr_error("drawing the QR code", e))?
    else {
        return Err(Error::invalid(format!(
            "a {}-byte message does not fit one QR code",
            message.len()
        )));
    };
    to_png(&frame, Style::default()).map_err(|e| qr_error("drawing the QR code", e))
}

/// The message in the text a QR scanner read from one single-frame code.
pub fn from_text(text: &str) -> Result<Vec<u8>, Error> {
    let mut scanner = Scanner::new(QrConfig::default().max_message_len);
    match scanner
        .receive(text)
        .map_err(|e| qr_error("reading the QR code", e))?
    {
        Progress::Complete(bytes) => Ok(bytes),
        Progress::Partial { .. } => Err(Error::invalid(
            "this is one frame of an animated QR code; scan a single code",
        )),
    }
}

/// The message in the QR code of a camera image (PNG, JPEG or GIF; at most 64 MiB and 8192
/// pixels a side).
pub fn scan(image: &[u8]) -> Result<Vec<u8>, Error> {
    let text =
        offpay_qr::scan::decode_image(image).map_err(|e| qr_error("scanning the image", e))?;
    from_text(&text)
}

/// `message` as `count` animated QR frames (their texts), for a message too large for one code:
/// the first [`fragments`] frames carry its fragments in order and later ones mix them
/// (fountain codes), so a camera that missed some frames completes from whichever it sees
/// next. Show them in a loop; [`Receiver`] reads them back. At most `8 × fragments + 64`
/// frames are made (more than a receiver ever takes).
pub fn animate(message: &[u8], count: usize) -> Result<Vec<String>, Error> {
    let mut a = animation(message)?;
    // More than a receiver ever takes (SPEC §13.2: 8 × count + 64) is never useful.
    let most = a.fragment_count().saturating_mul(8).saturating_add(64);
    let frames = a
        .frames(count.clamp(1, most))
        .map_err(|e| qr_error("drawing the QR codes", e))?;
    Ok(frames.iter().map(|f| f.text().to_string()).collect())
}

/// How many frames [`animate`] cuts `message` into: the fewest a receiver needs.
pub fn fragments(message: &[u8]) -> Result<usize, Error> {
    Ok(animation(message)?.fragment_count())
}

fn animation(message: &[u8]) -> Result<offpay_qr::Animation, Error> {
    relay_config()
        .animate(message)
        .map_err(|e| qr_error("drawing the QR codes", e))
}

/// Animated codes carry up to a whole sync batch or report.
fn relay_config() -> QrConfig {
    QrConfig {
        max_message_len: crate::sync::SYNC_BATCH_MAX.max(crate::sync::SYNC_REPORT_MAX),
        ..QrConfig::default()
    }
}

/// The frame whose text is `text` (single or animated), drawn as a PNG image.
pub fn text_png(text: &str) -> Result<Vec<u8>, Error> {
    let c = QrConfig::default();
    let frame = offpay_qr::Frame::new(text.to_string(), c.ec_level, 40)
        .map_err(|e| qr_error("drawing the QR code", e))?;
    to_png(&frame, Style::default()).map_err(|e| qr_error("drawing the QR code", e))
}

/// Reads a message from QR frames as a camera delivers them: single codes, or animated frames
/// in any order with any of them missing or repeated. Frames of another message, forged
/// headers and unreadable images are refused one by one without losing what was read.
#[derive(Debug)]
pub struct Receiver {
    scanner: Scanner,
    done: Option<Vec<u8>>,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver::new()
    }
}

impl Receiver {
    /// A receiver for messages up to a whole sync batch or report.
    pub fn new() -> Self {
        Receiver {
            scanner: Scanner::new(relay_config().max_message_len),
            done: None,
        }
    }

    /// Takes the text a scanner read from one frame; returns the message once it is complete.
    pub fn receive_text(&mut self, text: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some(m) = &self.done {
            return Ok(Some(m.clone()));
        }
        match self
            .scanner
            .receive(text)
            .map_err(|e| qr_error("reading the QR frame", e))?
        {
            Progress::Complete(m) => {
                self.done = Some(m.clone());
                Ok(Some(m))
            }
            Progress::Partial { .. } => Ok(None),
        }
    }

    /// Takes one camera image; returns the message once it is complete.
    pub fn receive_image(&mut self, image: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let text =
            offpay_qr::scan::decode_image(image).map_err(|e| qr_error("scanning the image", e))?;
        self.receive_text(&text)
    }

    /// Forgets what was read, to read another message.
    pub fn reset(&mut self) {
        *self = Receiver::new();
    }

    /// Fragments recovered so far and how many the message has (0 before the first frame).
    pub fn progress(&self) -> (usize, usize) {
        match self.scanner.progress() {
            Progress::Partial {
                recovered, total, ..
            } => (recovered, total),
            Progress::Complete(_) => (1, 1),
        }
    }
}
