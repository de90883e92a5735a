//! Messages in and out of QR code images: every message handed between roles is a PNG that
//! the next command finds and decodes in the pixels, as a phone camera would.

use crate::fail::{Doing, Failure, Result};
use offpay_qr::render::{Style, save_png, to_terminal};
use offpay_qr::{EcLevel, Encoded, Frame, Progress, QrConfig, Scanner};
use std::path::Path;

/// Renders `message` as one QR code into the PNG file `path`; returns the frame drawn.
pub fn write_png(message: &[u8], path: &Path) -> Result<Frame> {
    let Encoded::Single(frame) = QrConfig::default()
        .encode(message)
        .doing("drawing the QR code")?
    else {
        return Err(Failure::new(
            format!("a {}-byte message does not fit one QR code", message.len()),
            "this is a bug in offpay; please report it",
        ));
    };
    save_png(&frame, Style::default(), path).doing(&format!("writing {}", path.display()))?;
    Ok(frame)
}

/// Draws a frame for the terminal.
pub fn terminal(frame: &Frame) -> String {
    to_terminal(frame, 2)
}

/// Finds the QR code in the image file `path` and returns the offpay message it holds.
pub fn read_image(path: &Path) -> Result<Vec<u8>> {
    if !path.exists() {
        return Err(Failure::new(
            format!("{} does not exist", path.display()),
            "give the path of the QR code image the other device showed",
        ));
    }
    let what = format!("scanning {}", path.display());
    let text = offpay_qr::scan::decode_file(path).doing(&what)?;
    from_text(&text, &what)
}

/// The message in one scanned QR text (a single frame, or a one-part animated frame).
pub fn from_text(text: &str, what: &str) -> Result<Vec<u8>> {
    let mut scanner = Scanner::new(QrConfig::default().max_message_len);
    match scanner.receive(text).doing(what)? {
        Progress::Complete(bytes) => Ok(bytes),
        Progress::Partial { .. } => Err(Failure::new(
            format!("{what}: this is one frame of an animated QR code"),
            "offpay's role commands exchange single-frame codes; scan a single code",
        )),
    }
}

/// The smallest QR version a message needs at `level` as one frame, if it fits one at all.
pub fn version_at(message: &[u8], level: EcLevel) -> Option<i16> {
    let config = QrConfig {
        ec_level: level,
        max_version: 40,
        ..QrConfig::default()
    };
    match config.encode(message) {
        Ok(Encoded::Single(f)) => Some(f.version()),
        _ => None,
    }
}
