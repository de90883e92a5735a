//! Drawing frames: grayscale images (PNG), SVG, terminal text, numbered PNGs and animated GIF.

use crate::{Frame, QrError};
use image::{GrayImage, Luma};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// How a frame is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Pixels per module (at least 1).
    pub module_px: u32,
    /// Light modules around the code (the standard asks for 4).
    pub quiet_zone: u32,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            module_px: 8,
            quiet_zone: 4,
        }
    }
}

/// Draws a frame as a grayscale image.
pub fn to_image(frame: &Frame, style: Style) -> GrayImage {
    let px = style.module_px.max(1);
    let modules = frame.width() as u32 + 2 * style.quiet_zone;
    let side = modules * px;
    GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / px, y / px);
        let inside = |m: u32| m >= style.quiet_zone && m < style.quiet_zone + frame.width() as u32;
        let dark = inside(mx)
            && inside(my)
            && frame.is_dark(
                (mx - style.quiet_zone) as usize,
                (my - style.quiet_zone) as usize,
            );
        Luma([if dark { 0 } else { 255 }])
    })
}

/// Encodes a frame as PNG bytes.
pub fn to_png(frame: &Frame, style: Style) -> Result<Vec<u8>, QrError> {
    let mut out = Cursor::new(Vec::new());
    to_image(frame, style)
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|_| QrError::Image)?;
    Ok(out.into_inner())
}

/// Writes a frame to a PNG file.
pub fn save_png(frame: &Frame, style: Style, path: impl AsRef<Path>) -> Result<(), QrError> {
    std::fs::write(path, to_png(frame, style)?).map_err(|_| QrError::Image)
}

/// Draws a frame as an SVG document (one path of unit squares, scaled by `module_px`).
pub fn to_svg(frame: &Frame, style: Style) -> String {
    let q = style.quiet_zone as usize;
    let side = frame.width() + 2 * q;
    let mut path = String::new();
    for y in 0..frame.width() {
        for x in 0..frame.width() {
            if frame.is_dark(x, y) {
                path.push_str(&format!("M{} {}h1v1h-1z", x + q, y + q));
            }
        }
    }
    let px = side * style.module_px.max(1) as usize;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{px}\" height=\"{px}\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
<rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>\n"
    )
}

/// Draws a frame for a terminal: Unicode half blocks, two modules per character cell, dark
/// modules as dark cells on a light background (the quiet zone included).
pub fn to_terminal(frame: &Frame, quiet_zone: usize) -> String {
    let side = frame.width() + 2 * quiet_zone;
    let dark = |x: usize, y: usize| {
        x >= quiet_zone
            && y >= quiet_zone
            && x < quiet_zone + frame.width()
            && y < quiet_zone + frame.width()
            && frame.is_dark(x - quiet_zone, y - quiet_zone)
    };
    let mut s = String::new();
    for row in (0..side).step_by(2) {
        for x in 0..side {
            // Light is drawn, dark is left blank: works on a dark terminal theme as printed
            // paper does.
            let (top, bottom) = (!dark(x, row), row + 1 < side && !dark(x, row + 1));
            s.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        s.push('\n');
    }
    s
}

/// Writes frames as `stem-0001.png`, `stem-0002.png`, … in `dir`; returns the paths.
pub fn save_numbered_pngs(
    frames: &[Frame],
    style: Style,
    dir: impl AsRef<Path>,
    stem: &str,
) -> Result<Vec<PathBuf>, QrError> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let path = dir.as_ref().join(format!("{stem}-{:04}.png", i + 1));
            save_png(f, style, &path).map(|_| path)
        })
        .collect()
}

/// Encodes frames as an endlessly looping animated GIF, `delay_ms` per frame. Frames of
/// different versions are centred on the largest.
pub fn to_gif(frames: &[Frame], style: Style, delay_ms: u32) -> Result<Vec<u8>, QrError> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let images: Vec<GrayImage> = frames.iter().map(|f| to_image(f, style)).collect();
    let side = images
        .iter()
        .map(|i| i.width())
        .max()
        .ok_or(QrError::Encode)?;
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(Repeat::Infinite)
            .map_err(|_| QrError::Image)?;
        for img in &images {
            let off = (side - img.width()) / 2;
            let rgba = image::RgbaImage::from_fn(side, side, |x, y| {
                let v = if x >= off && y >= off && x - off < img.width() && y - off < img.height() {
                    img.get_pixel(x - off, y - off)[0]
                } else {
                    255
                };
                image::Rgba([v, v, v, 255])
            });
            let delay = image::Delay::from_numer_denom_ms(delay_ms, 1);
            enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .map_err(|_| QrError::Image)?;
        }
    }
    Ok(out)
}
