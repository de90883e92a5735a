//! The smallest firmware that holds both roles: a wallet and an acceptor with in-memory stores
//! perform one whole payment (request → payment → receipt) and exit 0, or 1 on any failure.
//! It has no `core::fmt`, so its `.text` is the library's footprint on a device plus the
//! Cortex-M runtime, the firmware's `memcpy` and about 1.5 KiB of measuring and printing:
//! `scripts/firmware.sh` reports its sections, and the binary itself prints its own stack
//! high-water mark (stack painting) and the instructions of its accept (SysTick under
//! `-icount shift=0`, calibrated in the run), so all of its figures describe one binary.

#![no_std]
#![no_main]

#[path = "../fastmem.rs"]
mod fastmem;
#[path = "../stack.rs"]
mod stack;
#[path = "../ticks.rs"]
mod ticks;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use offpay_protocol::*;
use rand_core::SeedableRng;

include!(concat!(env!("OUT_DIR"), "/fixture.rs"));

static mut WALLET_STORE: MemStore<8192, 64> = MemStore::new();
static mut SHOP_STORE: MemStore<8192, 64> = MemStore::new();
static mut ISSUER_TABLES: FixedKeyTables = FixedKeyTables::new();

fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

fn ok<T, E>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|_| fail())
}

/// A line of text built without `core::fmt`.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn text(&mut self, text: &[u8]) -> &mut Self {
        for &b in text {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }
    fn number(&mut self, mut n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.text(&digits[i..])
    }
}

#[entry]
fn main() -> ! {
    let top = stack::paint();
    let core = cortex_m::Peripherals::take().unwrap_or_else(|| fail());
    let ticks = ticks::Ticks::start(core.SYST);
    let per_tick_milli = ticks::calibrate(&ticks);
    // SAFETY: main runs once and never returns; these are the only references ever taken.
    let (wallet_store, shop_store, tables) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(WALLET_STORE),
            &mut *core::ptr::addr_of_mut!(SHOP_STORE),
            &mut *core::ptr::addr_of_mut!(ISSUER_TABLES),
        )
    };
    let mut trust = TrustStore::<2>::new();
    for &(key, from, to) in TRUST {
        ok(trust.add(PublicKey(key), Timestamp(from), Timestamp(to)));
    }
    // Precomputed multiples of the issuer's key: vouchers verify in fewer instructions.
    ok(tables.build(&PublicKey(TRUST[0].0)));
    ok(trust.attach_tables(tables));
    let now = Timestamp(TRUST[0].1 + 86_400 + 3_600);
    let eur = Currency::parse("EUR").unwrap_or_else(|| fail());
    let mut wallet: Wallet<_, _, 2> =
        ok(Wallet::open(wallet_store, SigningKey::from_seed(&[2; 32])));
    ok(wallet.install_voucher(VOUCHER, &trust, now));
    let mut shop: Acceptor<_, _, 4, 64> = ok(Acceptor::open(
        shop_store,
        SigningKey::from_seed(&[3; 32]),
        MERCHANT_A_CERT,
    ));
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
    let request = ok(shop.create_request(Amount(420), eur, None, now, &mut rng));
    let payment = ok(wallet.pay(&request, &trust, None, now));
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    let start = ticks.now();
    let receipt = ok(shop.accept(&payment, &ctx));
    let accept_ticks = ticks.since(start);
    ok(wallet.receive_receipt(&receipt));
    if wallet.remaining(eur, now) != Amount(5000 - 420) || shop.payments().count() != 1 {
        fail();
    }
    let (stack_used, exhausted) = stack::high_water(top);
    if exhausted {
        fail();
    }
    let mut line = Line {
        buf: [0; 160],
        len: 0,
    };
    line.text(b"payment: stack high-water ")
        .number(stack_used as u64)
        .text(b" bytes; instructions per accept (voucher verified, issuer tables) ")
        .number(u64::from(accept_ticks) * per_tick_milli / 1000)
        .text(b"\n");
    let mut out = hio::hstdout().unwrap_or_else(|_| fail());
    ok(out.write_all(line.buf.get(..line.len).unwrap_or_default()));
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail()
}
