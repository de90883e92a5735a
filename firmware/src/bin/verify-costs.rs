//! What an ed25519 verification costs on the Cortex-M4, piece by piece, with and without
//! offpay-protocol's `FixedKeyTables`. Measurements for BENCHMARKS.md.
//!
//! For several signatures under one key A it measures, and checks:
//!
//! - `crypto::verify_with` (no tables) and `crypto::verify_with_tables`: both must accept the
//!   signature and refuse it with one bit changed;
//! - the pieces of the equation R = [s]B − [k]A: curve25519-dalek's
//!   `vartime_double_scalar_mul_basepoint` (what a verification without tables does), the
//!   `compress` of its result, `mul_base` (constant time, flash table), and [k]A with an
//!   `EdwardsBasepointTable` for A (curve25519-dalek's own precomputation, 30 KiB of RAM,
//!   constant time), which must give the same point;
//! - [s]B by curve25519-dalek's constant-time variable-base multiplication, what signing would
//!   cost without its flash table (the `precomputed-tables` feature), which must equal
//!   `mul_base`.
//!
//! It prints instructions per operation (SysTick under `-icount shift=0`, calibrated) and
//! exits 1 if any check fails.

#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::mem::MaybeUninit;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use offpay_protocol::crypto::{self, FixedKeyTables, Signer, SigningKey};
use sha2::{Digest, Sha512};

#[path = "../fastmem.rs"]
mod fastmem;
#[path = "../ticks.rs"]
mod ticks;
use ticks::{Ticks, calibrate};

static mut TABLES: FixedKeyTables = FixedKeyTables::new();
static mut DALEK_TABLE: MaybeUninit<EdwardsBasepointTable> = MaybeUninit::uninit();

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

    let signer = SigningKey::from_seed(&[0x11; 32]);
    let key = signer.public_key();
    let vk = crypto::verifying_key(&key).unwrap_or_else(|_| fail());
    let a = vk.to_edwards();
    let minus_a = -a;

    // SAFETY: main runs once; these are the only references ever taken to the statics.
    let (tables, dalek_table) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(TABLES),
            &mut *core::ptr::addr_of_mut!(DALEK_TABLE),
        )
    };
    let start = ticks.now();
    if tables.build(&key).is_err() {
        fail();
    }
    let build_tables = ticks.since(start);
    let tables: &FixedKeyTables = tables;
    let start = ticks.now();
    let dalek_table: &EdwardsBasepointTable = dalek_table.write(EdwardsBasepointTable::create(&a));
    let build_dalek = ticks.since(start);

    const ROUNDS: u8 = 4;
    let mut cost = [0u32; 7];
    for i in 0..ROUNDS {
        let message = [i; 100];
        let sig = signer
            .sign(b"verify-costs\0", &message)
            .unwrap_or_else(|_| fail());
        let mut bad = sig;
        bad[40] ^= 1;
        let (s, k) = (scalar(b's', i), scalar(b'k', i));
        let mut t = [0u32; 8];
        t[0] = ticks.now();
        let plain = crypto::verify_with(&vk, b"verify-costs\0", &message, &sig);
        t[1] = ticks.now();
        let fast = crypto::verify_with_tables(&vk, Some(tables), b"verify-costs\0", &message, &sig);
        t[2] = ticks.now();
        let double = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s);
        t[3] = ticks.now();
        let expected = double.compress();
        t[4] = ticks.now();
        let sb = EdwardsPoint::mul_base(&s);
        t[5] = ticks.now();
        let by_table = sb - dalek_table * &k;
        t[6] = ticks.now();
        let sb_variable_base = ED25519_BASEPOINT_POINT * s;
        t[7] = ticks.now();
        for (c, w) in cost.iter_mut().zip(t.windows(2)) {
            *c += w[0].wrapping_sub(w[1]) & 0x00FF_FFFF;
        }
        let refused = |t: Option<&FixedKeyTables>| {
            crypto::verify_with_tables(&vk, t, b"verify-costs\0", &message, &bad).is_err()
        };
        if plain.is_err()
            || fast.is_err()
            || !refused(None)
            || !refused(Some(tables))
            || by_table.compress() != expected
            || sb_variable_base != sb
        {
            let _ = writeln!(out, "verify-costs: a check failed in round {i}");
            fail();
        }
    }
    let per = |c: u32| insns(c) / u64::from(ROUNDS);
    let _ = writeln!(
        out,
        "verify-costs ({ROUNDS} signatures, all checks passed), instructions per operation:\n  \
         verify_with, no tables: {}\n  \
         verify_with_tables (FixedKeyTables, {} B of RAM): {}\n  \
         [s]B - [k]A by vartime_double_scalar_mul_basepoint: {}\n  \
         compress: {}\n  \
         [s]B by mul_base (constant time, flash table): {}\n  \
         [k]A by an EdwardsBasepointTable for A ({} B of RAM), and the subtraction: {}\n  \
         [s]B by variable-base multiplication (constant time, no table): {}\n  \
         building once: FixedKeyTables {}, EdwardsBasepointTable {}",
        per(cost[0]),
        core::mem::size_of::<FixedKeyTables>(),
        per(cost[1]),
        per(cost[2]),
        per(cost[3]),
        per(cost[4]),
        core::mem::size_of::<EdwardsBasepointTable>(),
        per(cost[5]),
        per(cost[6]),
        insns(build_tables),
        insns(build_dalek),
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
