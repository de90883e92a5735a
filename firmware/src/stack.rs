//! Stack painting: fill the unused stack with a pattern, later find the deepest word
//! that changed.

/// How much stack may be painted below the current frame.
pub const PAINT_BYTES: usize = 64 * 1024;
/// What the unused stack is painted with.
const PAINT: u32 = 0xA5C3_5A3C;

unsafe extern "C" {
    /// The lowest address the stack may grow to (end of .bss), from cortex-m-rt's link.x.
    static _stack_end: u32;
    /// Where the stack starts (its highest address), from cortex-m-rt's link.x.
    static _stack_start: u32;
}

/// Bytes of stack in use above `top` (the stack pointer when painting began): the frames of
/// the functions that were running when it was painted, `main`'s and the reset handler's.
/// They cannot be painted, so a figure of the whole stack adds them to [`high_water`].
pub fn above(top: usize) -> usize {
    (core::ptr::addr_of!(_stack_start) as usize).saturating_sub(top)
}

/// The lowest address to paint: the end of .bss, or `limit` bytes below `sp`.
fn floor(sp: usize, limit: usize) -> usize {
    let end = core::ptr::addr_of!(_stack_end) as usize;
    end.max(sp.saturating_sub(limit))
}

/// Paints from the floor up to 256 bytes below the current stack pointer.
pub fn paint() -> usize {
    let (limit, pattern) = (PAINT_BYTES, PAINT);
    let sp = cortex_m::register::msp::read() as usize;
    let low = floor(sp, limit) & !3;
    let high = (sp - 256) & !3;
    let mut a = low;
    while a < high {
        // SAFETY: [low, high) lies between the end of .bss and 256 bytes below the live
        // stack pointer: memory nothing uses yet. Volatile, so the writes are not elided.
        unsafe { core::ptr::write_volatile(a as *mut u32, pattern) };
        a += 4;
    }
    sp
}

/// Bytes of stack used below `top` (the stack pointer when painting began), and whether
/// the painted area was exhausted.
pub fn high_water(top: usize) -> (usize, bool) {
    let (limit, pattern) = (PAINT_BYTES, PAINT);
    let low = floor(top, limit) & !3;
    let mut a = low;
    while a < top {
        // SAFETY: reading the painted range, which is valid RAM.
        if unsafe { core::ptr::read_volatile(a as *const u32) } != pattern {
            break;
        }
        a += 4;
    }
    (top - a, a == low)
}
