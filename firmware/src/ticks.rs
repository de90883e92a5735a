//! Counting instructions on the device: SysTick runs at the core clock, and under QEMU's
//! `-icount shift=0` the virtual clock advances one nanosecond per instruction, so ticks are
//! proportional to instructions; [`calibrate`] measures the ratio on a loop of known length.

use cortex_m::peripheral::syst::SystClkSource;

/// SysTick, free-running over its 24 bits at the core clock.
pub struct Ticks(cortex_m::peripheral::SYST);

impl Ticks {
    /// Starts SysTick free-running from the core clock over its full 24 bits.
    pub fn start(mut syst: cortex_m::peripheral::SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        Ticks(syst)
    }
    /// The counter now (it counts down).
    pub fn now(&self) -> u32 {
        cortex_m::peripheral::SYST::get_current()
    }
    /// Ticks elapsed since `start` (SysTick counts down; at most one wrap, 2^24 ticks).
    pub fn since(&self, start: u32) -> u32 {
        start.wrapping_sub(self.now()) & 0x00FF_FFFF
    }
}

/// Runs `n` iterations of a two-instruction loop (`subs`, `bne`) and returns instructions per
/// tick × 1000.
pub fn calibrate(t: &Ticks) -> u64 {
    const N: u32 = 1_000_000;
    let start = t.now();
    // SAFETY: a register-only countdown loop; it touches no memory and clobbers only r0
    // and the flags, which the asm block declares.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) N => _,
            options(nomem, nostack),
        );
    }
    let ticks = u64::from(t.since(start)).max(1);
    2 * u64::from(N) * 1000 / ticks
}
