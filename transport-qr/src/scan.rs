//! Finding QR codes in camera images with `rxing`, and a scan loop over a stream of frames.

use crate::{Progress, QrError, Scanner};
use image::GrayImage;
use rxing::{BarcodeFormat, DecodeHints};
use std::path::Path;

/// Decodes the QR code in a grayscale buffer (`width × height` bytes, row-major).
pub fn decode_luma(luma: &[u8], width: u32, height: u32) -> Result<String, QrError> {
    if width == 0 || height == 0 || luma.len() as u64 != u64::from(width) * u64::from(height) {
        return Err(QrError::Image);
    }
    let mut hints = DecodeHints::default().with(rxing::DecodeHintValue::TryHarder(true));
    rxing::helpers::detect_in_luma_slice_with_hints(
        luma,
        width,
        height,
        Some(BarcodeFormat::QR_CODE),
        &mut hints,
    )
    .map(|r| r.getText().to_string())
    .map_err(|_| QrError::NoQrCode)
}

/// Decodes the QR code in a grayscale image.
pub fn decode_gray(img: &GrayImage) -> Result<String, QrError> {
    decode_luma(img.as_raw(), img.width(), img.height())
}

/// Decodes the QR code in an RGB buffer (`width × height × 3` bytes).
pub fn decode_rgb(rgb: &[u8], width: u32, height: u32) -> Result<String, QrError> {
    let img = image::RgbImage::from_raw(width, height, rgb.to_vec()).ok_or(QrError::Image)?;
    decode_gray(&image::DynamicImage::ImageRgb8(img).to_luma8())
}

/// The largest image file [`decode_file`] reads.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The largest image [`decode_file`] decodes, in pixels per side (a 12-megapixel phone photo is
/// 4032 × 3024).
pub const MAX_SIDE: u32 = 8192;

/// Decodes the QR code in an image file (PNG, JPEG or GIF's first frame). The format is found
/// from the file's content, not its name. Files over [`MAX_FILE_BYTES`] and images over
/// [`MAX_SIDE`] pixels per side are refused before they are decoded, so a hostile file cannot
/// make the scanner allocate without bound.
pub fn decode_file(path: impl AsRef<Path>) -> Result<String, QrError> {
    let path = path.as_ref();
    let len = std::fs::metadata(path).map_err(|_| QrError::Image)?.len();
    if len > MAX_FILE_BYTES {
        return Err(QrError::Image);
    }
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|_| QrError::Image)?;
    decode_reader(reader)
}

/// Decodes the QR code in an image held in memory (PNG, JPEG or GIF's first frame), within the
/// same bounds as [`decode_file`].
pub fn decode_image(bytes: &[u8]) -> Result<String, QrError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(QrError::Image);
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| QrError::Image)?;
    decode_reader(reader)
}

fn decode_reader<R: std::io::BufRead + std::io::Seek>(
    mut reader: image::ImageReader<R>,
) -> Result<String, QrError> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|_| QrError::Image)?;
    decode_gray(&img.to_luma8())
}

/// Feeds camera frames to a scanner until a message completes. Frames with no readable code
/// are skipped, as a camera loop would; frames the scanner refuses (another message, a forged
/// header) are skipped too. Returns the message, or the scanner's progress when the frames ran
/// out.
pub fn scan_frames<'a>(
    frames: impl IntoIterator<Item = &'a GrayImage>,
    scanner: &mut Scanner,
) -> Result<Vec<u8>, Progress> {
    for img in frames {
        let Ok(text) = decode_gray(img) else { continue };
        if let Ok(Progress::Complete(m)) = scanner.receive(&text) {
            return Ok(m);
        }
    }
    Err(scanner.progress())
}
