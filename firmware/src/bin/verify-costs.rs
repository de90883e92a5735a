//! What the ed25519 verification inside an accept costs on the Cortex-M4, piece by piece, and
//! what precomputation for a fixed key (the issuer's, which signs every voucher) would buy.
//! Measurements for BENCHMARKS.md and for deciding future work; nothing here is used by
//! offpay-protocol.
//!
//! For several pairs of scalars (s, k) and a fixed point A it computes [s]B − [k]A three ways
//! and exits 1 unless all agree:
//!
//! - `vartime_double_scalar_mul_basepoint`: what every `verify_strict` does today;
//! - `mul_base` (constant time, curve25519-dalek's flash table) minus `k` times an
//!   `EdwardsBasepointTable` built for A at run time (30 KiB of RAM);
//! - a variable-time radix-16 comb over two run-time tables of 64 points each, one for B and
//!   one for A (2 × 10 KiB of RAM): 64 digits per scalar, 8 rows, 28 doublings shared.
//!
//! It prints instructions per operation (SysTick under `-icount shift=0`, calibrated).

#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::mem::MaybeUninit;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{BasepointTable, Identity};
use sha2::{Digest, Sha512};

#[path = "../ticks.rs"]
mod ticks;
use ticks::{Ticks, calibrate};

/// Comb rows; 64 radix-16 digits = ROWS × PASSES.
const ROWS: usize = 8;
const PASSES: usize = 8;
/// `comb[r][j]` = (j + 1) · 16^(PASSES·r) · P.
type Comb = [[EdwardsPoint; 8]; ROWS];

static mut COMB_A: MaybeUninit<Comb> = MaybeUninit::uninit();
static mut COMB_B: MaybeUninit<Comb> = MaybeUninit::uninit();
static mut TABLE_A: MaybeUninit<EdwardsBasepointTable> = MaybeUninit::uninit();

fn build(comb: &mut MaybeUninit<Comb>, p: EdwardsPoint) -> &Comb {
    let t = comb.as_mut_ptr().cast::<EdwardsPoint>();
    let mut base = p;
    for r in 0..ROWS {
        let mut acc = base;
        for j in 0..8 {
            // SAFETY: r * 8 + j < ROWS * 8, inside the array `comb` points to.
            unsafe { t.add(r * 8 + j).write(acc) };
            acc += base;
        }
        // base · 2^32 = base · 16^PASSES: ten times by 8, then twice doubled.
        for _ in 0..10 {
            base = base.mul_by_cofactor();
        }
        base += base;
        base += base;
    }
    // SAFETY: every one of the ROWS × 8 points was written above.
    unsafe { comb.assume_init_ref() }
}

/// Signed radix-16 digits in [−8, 8) of a scalar below 2^255.
fn radix16(s: &Scalar) -> [i8; 64] {
    let bytes = s.as_bytes();
    let mut d = [0i8; 64];
    for (i, b) in bytes.iter().enumerate() {
        d[2 * i] = (b & 15) as i8;
        d[2 * i + 1] = (b >> 4) as i8;
    }
    for i in 0..63 {
        let carry = (d[i] + 8) >> 4;
        d[i] -= carry << 4;
        d[i + 1] += carry;
    }
    d
}

/// Adds `d` times the comb's row `r` (d in [−8, 8]).
fn add_digit(acc: EdwardsPoint, row: &[EdwardsPoint; 8], d: i8) -> EdwardsPoint {
    match d {
        1..=8 => acc + row[(d - 1) as usize],
        -8..=-1 => acc - row[(-d - 1) as usize],
        _ => acc,
    }
}

/// [s]B − [k]A over the two combs, in variable time (public inputs only).
#[inline(never)]
fn comb_double(b: &Comb, s: &Scalar, a: &Comb, k: &Scalar) -> EdwardsPoint {
    let ds = radix16(s);
    let dk = radix16(&-k);
    let mut acc = EdwardsPoint::identity();
    for p in (0..PASSES).rev() {
        if p != PASSES - 1 {
            acc = acc.mul_by_cofactor();
            acc += acc;
        }
        for r in 0..ROWS {
            acc = add_digit(acc, &b[r], ds[PASSES * r + p]);
            acc = add_digit(acc, &a[r], dk[PASSES * r + p]);
        }
    }
    acc
}

fn scalar(label: u8, i: u8) -> Scalar {
    Scalar::from_hash(Sha512::new().chain_update([label, i]))
}

fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[entry]
fn main() -> ! {
    let core = cortex_m::Peripherals::take().unwrap_or_else(|| fail());
    let ticks = Ticks::start(core.SYST);
    let per_tick_milli = calibrate(&ticks);
    let insns = |t: u32| u64::from(t) * per_tick_milli / 1000;
    let mut out = hio::hstdout().unwrap_or_else(|_| fail());

    let a = EdwardsPoint::mul_base(&scalar(b'a', 0));
    let minus_a = -a;

    let start = ticks.now();
    // SAFETY: main runs once; these are the only references ever taken to the statics.
    let (comb_a, comb_b) = unsafe {
        (
            build(&mut *core::ptr::addr_of_mut!(COMB_A), a),
            build(
                &mut *core::ptr::addr_of_mut!(COMB_B),
                ED25519_BASEPOINT_POINT,
            ),
        )
    };
    let build_combs = ticks.since(start);
    let start = ticks.now();
    // SAFETY: as above.
    let table_a: &EdwardsBasepointTable =
        unsafe { (*core::ptr::addr_of_mut!(TABLE_A)).write(EdwardsBasepointTable::create(&a)) };
    let build_table = ticks.since(start);

    const ROUNDS: u8 = 4;
    let mut cost = [0u32; 5];
    for i in 0..ROUNDS {
        let (s, k) = (scalar(b's', i), scalar(b'k', i));
        let t0 = ticks.now();
        let double = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s);
        let t1 = ticks.now();
        let expected = double.compress();
        let t2 = ticks.now();
        let sb = EdwardsPoint::mul_base(&s);
        let t3 = ticks.now();
        let tables = sb - table_a * &k;
        let t4 = ticks.now();
        let comb = comb_double(comb_b, &s, comb_a, &k);
        let t5 = ticks.now();
        for (c, (from, to)) in
            cost.iter_mut()
                .zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)])
        {
            *c += from.wrapping_sub(to) & 0x00FF_FFFF;
        }
        if tables.compress() != expected || comb.compress() != expected {
            let _ = writeln!(out, "verify-costs: the three ways disagree in round {i}");
            fail();
        }
    }
    let per = |c: u32| insns(c) / u64::from(ROUNDS);
    let _ = writeln!(
        out,
        "verify-costs ({ROUNDS} rounds agree), instructions per operation:\n  \
         [s]B - [k]A by vartime_double_scalar_mul_basepoint: {}\n  \
         compress: {}\n  \
         [s]B by mul_base (constant time, flash table): {}\n  \
         [k]A by an EdwardsBasepointTable for A (30 KiB RAM), and the subtraction: {}\n  \
         [s]B - [k]A by a radix-16 comb for B and A (20 KiB RAM): {}\n  \
         building that table once: {}; building those combs once: {}",
        per(cost[0]),
        per(cost[1]),
        per(cost[2]),
        per(cost[3]),
        per(cost[4]),
        insns(build_table),
        insns(build_combs),
    );
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail()
}
