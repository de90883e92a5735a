//! A NOR flash region held in RAM, for running the flash store under QEMU (whose mps2-an386
//! has no flash controller): writes clear bits (the new byte is the old one AND the written
//! one) in words of 4 bytes, erases set whole 4 KiB pages to 0xFF, as a NOR part does. On a
//! device, the part's own `NorFlash` driver takes its place.

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};

pub struct RamNor<const N: usize> {
    data: &'static mut [u8; N],
}

impl<const N: usize> RamNor<N> {
    pub fn new(data: &'static mut [u8; N]) -> Self {
        RamNor { data }
    }
}

impl<const N: usize> ErrorType for RamNor<N> {
    type Error = NorFlashErrorKind;
}

impl<const N: usize> ReadNorFlash for RamNor<N> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let at = offset as usize;
        let src = self
            .data
            .get(at..at + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize> NorFlash for RamNor<N> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(Self::ERASE_SIZE) || !to.is_multiple_of(Self::ERASE_SIZE) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let pages = self
            .data
            .get_mut(from..to)
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        pages.fill(0xff);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let at = offset as usize;
        if !at.is_multiple_of(Self::WRITE_SIZE) || !bytes.len().is_multiple_of(Self::WRITE_SIZE) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        let dst = self
            .data
            .get_mut(at..at + bytes.len())
            .ok_or(NorFlashErrorKind::OutOfBounds)?;
        for (d, b) in dst.iter_mut().zip(bytes) {
            *d &= b;
        }
        Ok(())
    }
}
