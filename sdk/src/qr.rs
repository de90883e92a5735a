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
