//! QR codes: single messages, animated frames, and a receiver for camera frames.

use crate::Result;
use offpay_sdk as sdk;
use std::sync::{Arc, Mutex};

/// `message` drawn as one QR code (PNG).
#[uniffi::export]
pub fn qr_png(message: Vec<u8>) -> Result<Vec<u8>> {
    Ok(sdk::qr::png(&message)?)
}

/// The message in the QR code of a camera image (PNG, JPEG or GIF).
#[uniffi::export]
pub fn qr_scan(image: Vec<u8>) -> Result<Vec<u8>> {
    Ok(sdk::qr::scan(&image)?)
}

/// The text of the one QR code that carries `message`, for apps that draw codes themselves.
#[uniffi::export]
pub fn qr_text(message: Vec<u8>) -> Result<String> {
    Ok(sdk::qr::text(&message)?)
}

/// The message in the text a platform QR scanner read.
#[uniffi::export]
pub fn qr_from_text(text: String) -> Result<Vec<u8>> {
    Ok(sdk::qr::from_text(&text)?)
}

/// `message` as `count` animated QR frame texts.
#[uniffi::export]
pub fn qr_animate(message: Vec<u8>, count: u32) -> Result<Vec<String>> {
    Ok(sdk::qr::animate(&message, count as usize)?)
}

/// How many frames `message` is cut into (the fewest a receiver needs).
#[uniffi::export]
pub fn qr_fragments(message: Vec<u8>) -> Result<u32> {
    Ok(u32::try_from(sdk::qr::fragments(&message)?).unwrap_or(u32::MAX))
}

/// One frame's text drawn as a PNG image.
#[uniffi::export]
pub fn qr_text_png(text: String) -> Result<Vec<u8>> {
    Ok(sdk::qr::text_png(&text)?)
}

/// Reads a message from QR frames as a camera delivers them.
#[derive(Debug, uniffi::Object)]
pub struct QrReceiver(Mutex<sdk::qr::Receiver>);

#[uniffi::export]
impl QrReceiver {
    /// A new receiver.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(sdk::qr::Receiver::new())))
    }

    /// Takes one frame's text; the message once complete.
    pub fn receive_text(&self, text: String) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().receive_text(&text)?)
    }

    /// Takes one camera image; the message once complete.
    pub fn receive_image(&self, image: Vec<u8>) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().receive_image(&image)?)
    }
}

impl QrReceiver {
    fn lock(&self) -> std::sync::MutexGuard<'_, sdk::qr::Receiver> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
