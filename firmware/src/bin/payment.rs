//! The smallest firmware that holds both roles: a wallet and an acceptor with in-memory stores
//! perform one whole payment (request → payment → receipt) and exit 0, or 1 on any failure.
//! It prints nothing (no `core::fmt`), so its `.text` is the library's footprint on a device
//! plus the Cortex-M runtime (and the firmware's `memcpy`); `scripts/firmware.sh` reports it.

#![no_std]
#![no_main]

#[path = "../fastmem.rs"]
mod fastmem;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
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

#[entry]
fn main() -> ! {
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
    let receipt = ok(shop.accept(&payment, &ctx));
    ok(wallet.receive_receipt(&receipt));
    if wallet.remaining(eur, now) != Amount(5000 - 420) || shop.payments().count() != 1 {
        fail();
    }
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail()
}
