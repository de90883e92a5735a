//! Messages in and out of QR code images: every message handed between roles is a PNG that
//! the next command finds and decodes in the pixels, as a phone camera would.

use crate::fail::{Doing, Failure, Result};
use offpay_qr::render::{Style, to_png, to_terminal};
use offpay_qr::{EcLevel, Encoded, Frame, Progress, QrConfig, Scanner};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A PNG file about to be written. Its temporary file is created first, so a path that cannot
/// be written is refused before the command stores anything; [`OutPng::finish`] writes the
/// code and renames it into place.
pub struct OutPng {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
}

impl OutPng {
    /// Checks that `path` can be written by creating its temporary file.
    pub fn prepare(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "give a file name in an existing, writable directory; nothing was changed",
            )
        })?;
        Ok(OutPng {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    /// Draws `message` as one QR code, writes it and moves it into place.
    pub fn finish(mut self, message: &[u8]) -> Result<Frame> {
        let Encoded::Single(frame) = QrConfig::default()
            .encode(message)
            .doing("drawing the QR code")?
        else {
            return Err(Failure::new(
                format!("a {}-byte message does not fit one QR code", message.len()),
                "this is a bug in offpay; please report it",
            ));
        };
        let png = to_png(&frame, Style::default()).doing("drawing the QR code")?;
        let mut file = self
            .file
            .take()
            .ok_or_else(|| Failure::new("already written", ""))?;
        file.write_all(&png)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&self.tmp, &self.path))
            .map_err(|e| Failure::new(format!("writing {}: {e}", self.path.display()), ""))?;
        Ok(frame)
    }
}

impl Drop for OutPng {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Draws a frame for the terminal.
pub fn terminal(frame: &Frame) -> String {
    to_terminal(frame, 2)
}

/// Draws the frame whose text is `text` for the terminal.
pub fn terminal_text(text: &str) -> Result<String> {
    let c = QrConfig::default();
    let frame = Frame::new(text.to_string(), c.ec_level, 40).doing("drawing the QR code")?;
    Ok(terminal(&frame))
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
