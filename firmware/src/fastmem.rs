//! `memcpy` for the Cortex-M4: four words per LDM/STM pair when both pointers are word-aligned.
//!
//! Why it is here: at opt-level "z", curve25519-dalek's 40-byte field elements (and 160-byte
//! points) are moved by value through `memcpy`, and the generic one in `compiler_builtins`
//! takes 76 instructions per field element on this core: 11.5 % of all the instructions of a
//! payment (BENCHMARKS.md, `scripts/firmware-profile.py`). No crate provides an ARMv7-M copy
//! routine for `no_std`; this one takes 16 bytes per loop step and finishes the last 0–15
//! bytes without a loop. It defines the symbols LLVM calls for copies (`memcpy` and the ARM
//! EABI `__aeabi_memcpy*`), which take precedence over compiler_builtins' weak ones. The
//! firmware's self-check ([`check`], run by `offpay-firmware`) copies every length up to 70
//! bytes at every alignment and compares.

/// Copies `n` bytes from `src` to `dst`.
///
/// # Safety
/// The `memcpy` contract: `src` is readable and `dst` writable for `n` bytes, and the two do
/// not overlap.
unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    if (dst as usize | src as usize) & 3 == 0 {
        // SAFETY: the caller's contract; both pointers are word-aligned, so word, double-word
        // (LDM/STM) and halfword accesses are aligned. Only r3–r5, r12 and the flags are
        // clobbered, as declared; the stack is not touched.
        unsafe {
            core::arch::asm!(
                "subs {n}, {n}, #16",
                "blo 3f",
                "2:",
                "ldm {s}!, {{r3, r4, r5, r12}}",
                "stm {d}!, {{r3, r4, r5, r12}}",
                "subs {n}, {n}, #16",
                "bhs 2b",
                "3:",
                // n is now (length mod 16) − 16, whose low four bits are the bytes left: bit 3
                // goes to the carry flag and bit 2 to the sign flag, then bits 1 and 0.
                "lsls {n}, {n}, #29",
                "itt cs",
                "ldmcs {s}!, {{r3, r4}}",
                "stmcs {d}!, {{r3, r4}}",
                "itt mi",
                "ldrmi r3, [{s}], #4",
                "strmi r3, [{d}], #4",
                "lsls {n}, {n}, #2",
                "itt cs",
                "ldrhcs r3, [{s}], #2",
                "strhcs r3, [{d}], #2",
                "itt mi",
                "ldrbmi r3, [{s}]",
                "strbmi r3, [{d}]",
                s = inout(reg) src => _,
                d = inout(reg) dst => _,
                n = inout(reg) n => _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r12") _,
                options(nostack),
            );
        }
    } else {
        // SAFETY: the caller's contract; byte accesses need no alignment. Only r3 and the
        // flags are clobbered. (A plain Rust loop here could be turned back into a `memcpy`
        // call by the optimizer.)
        unsafe {
            core::arch::asm!(
                "cmp {n}, #0",
                "beq 3f",
                "2:",
                "ldrb r3, [{s}], #1",
                "strb r3, [{d}], #1",
                "subs {n}, {n}, #1",
                "bne 2b",
                "3:",
                s = inout(reg) src => _,
                d = inout(reg) dst => _,
                n = inout(reg) n => _,
                out("r3") _,
                options(nostack),
            );
        }
    }
}

/// # Safety
/// The C `memcpy` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { copy(dst, src, n) };
    dst
}

/// # Safety
/// The ARM EABI `__aeabi_memcpy` contract (memcpy without a return value).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: forwarded contract.
    unsafe { copy(dst, src, n) }
}

/// # Safety
/// As [`__aeabi_memcpy`], both pointers 4-byte aligned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy4(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: forwarded contract.
    unsafe { copy(dst, src, n) }
}

/// # Safety
/// As [`__aeabi_memcpy`], both pointers 8-byte aligned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __aeabi_memcpy8(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: forwarded contract.
    unsafe { copy(dst, src, n) }
}

/// Copies every length from 0 to 70 bytes between every pair of alignments and checks that
/// exactly those bytes arrived and nothing around them changed. Returns the first failing
/// (length, source offset, destination offset).
#[allow(dead_code)] // only offpay-firmware runs it
pub fn check() -> Result<(), (usize, usize, usize)> {
    let mut src = [0u8; 80];
    for (i, b) in src.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    for len in 0..=70 {
        for so in 0..4 {
            for d_off in 0..4 {
                let mut dst = [0xa5u8; 80];
                // SAFETY: so + len ≤ 73 and d_off + len ≤ 73, inside the two 80-byte arrays,
                // which do not overlap.
                unsafe { memcpy(dst.as_mut_ptr().add(d_off), src.as_ptr().add(so), len) };
                let moved = dst[d_off..d_off + len] == src[so..so + len];
                let around = dst[..d_off]
                    .iter()
                    .chain(&dst[d_off + len..])
                    .all(|&b| b == 0xa5);
                if !moved || !around {
                    return Err((len, so, d_off));
                }
            }
        }
    }
    Ok(())
}
