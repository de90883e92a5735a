//! `payment` with both sides on NOR flash (SPEC §8.5): the wallet's and the till's stores are
//! `FlashStore`s on a NOR region each (held in RAM under QEMU: `ramflash.rs`). After the
//! payment the device restarts its stores: both reopen from their flash with the payment and
//! the receipt; the wallet's log is compacted into its other bank and reopens again; a second
//! payment is then made and accepted. Prints the stack high-water mark, the instructions of
//! the accept, and the RAM the stores take beside their flash.

#![no_std]
#![no_main]

#[path = "../fastmem.rs"]
mod fastmem;
#[path = "../product.rs"]
mod product;
#[path = "../ramflash.rs"]
mod ramflash;
#[path = "../stack.rs"]
mod stack;
#[path = "../ticks.rs"]
mod ticks;

use cortex_m_rt::entry;
use offpay_protocol::store::FlashStore;
use offpay_protocol::*;
use product::{Line, fail, ok};
use ramflash::RamNor;

/// Each store's flash region: two banks of 3 erase pages (12 KiB each).
const REGION: usize = 6 * 4096;
/// Each store's records in RAM, in a `static` beside its flash region.
type Cache = MemStore<8192, 64>;
type Flash = FlashStore<RamNor<REGION>, &'static mut Cache>;

static mut WALLET_FLASH: [u8; REGION] = [0; REGION];
static mut SHOP_FLASH: [u8; REGION] = [0; REGION];
static mut WALLET_CACHE: Cache = MemStore::new();
static mut SHOP_CACHE: Cache = MemStore::new();
static mut ISSUER_TABLES: FixedKeyTables = FixedKeyTables::new();

#[entry]
fn main() -> ! {
    let top = stack::paint();
    let core = cortex_m::Peripherals::take().unwrap_or_else(|| fail());
    let ticks = ticks::Ticks::start(core.SYST);
    let per_tick_milli = ticks::calibrate(&ticks);
    // SAFETY: main runs once and never returns; these are the only references ever taken.
    let (wallet_flash, shop_flash, wallet_cache, shop_cache, tables) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(WALLET_FLASH),
            &mut *core::ptr::addr_of_mut!(SHOP_FLASH),
            &mut *core::ptr::addr_of_mut!(WALLET_CACHE),
            &mut *core::ptr::addr_of_mut!(SHOP_CACHE),
            &mut *core::ptr::addr_of_mut!(ISSUER_TABLES),
        )
    };
    let (trust, now) = product::trust(tables);
    // The regions start as a new part's flash does: erased. Opened, an erased region becomes
    // an empty store.
    wallet_flash.fill(0xff);
    shop_flash.fill(0xff);
    let wallet_store: Flash = ok(FlashStore::open(RamNor::new(wallet_flash), wallet_cache));
    let shop_store: Flash = ok(FlashStore::open(RamNor::new(shop_flash), shop_cache));
    let (stores, accept_ticks) = first(wallet_store, shop_store, &trust, now, &ticks);
    let open_ticks = restart(stores, &trust, now, &ticks);
    product::stack_line(b"payment-flash", top)
        .text(b"; instructions per accept ")
        .number(u64::from(accept_ticks) * per_tick_milli / 1000)
        .text(b", per reopen of the wallet's flash ")
        .number(u64::from(open_ticks) * per_tick_milli / 1000)
        .text(b"\n")
        .print();
    Line::new()
        .text(b"payment-flash: each store ")
        .number(core::mem::size_of::<Flash>() as u64)
        .text(b" B of RAM, on a flash region of ")
        .number(REGION as u64)
        .text(b" B; restarted, compacted, paid again\n")
        .print();
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// The first payment; gives both stores back, as a restart finds them.
#[inline(never)]
fn first(
    wallet: Flash,
    shop: Flash,
    trust: &TrustStore<2>,
    now: Timestamp,
    ticks: &ticks::Ticks,
) -> ((Flash, Flash), u32) {
    let (mut wallet, mut shop) = product::open_sides(wallet, shop, trust, now);
    let accept_ticks = product::pay(&mut wallet, &mut shop, 420, trust, now, ticks);
    ((wallet.into_store(), shop.into_store()), accept_ticks)
}

/// Restarts both sides from their flash, checks the payment is there, compacts the wallet's
/// log into its other bank, reopens it, and pays again. Returns the ticks of the wallet
/// store's first reopen.
#[inline(never)]
fn restart(
    (wallet, shop): (Flash, Flash),
    trust: &TrustStore<2>,
    now: Timestamp,
    ticks: &ticks::Ticks,
) -> u32 {
    let start = ticks.now();
    let (flash, cache) = wallet.into_parts();
    let store: Flash = ok(FlashStore::open(flash, cache));
    let open_ticks = ticks.since(start);
    let wallet: product::Customer<Flash> = ok(Wallet::open(store, SigningKey::from_seed(&[2; 32])));
    let (flash, cache) = shop.into_parts();
    let store: Flash = ok(FlashStore::open(flash, cache));
    let mut shop: product::Till<Flash> = ok(Acceptor::open(
        store,
        SigningKey::from_seed(&[3; 32]),
        product::MERCHANT_A_CERT,
    ));
    let paid = |w: &product::Customer<Flash>| w.payments().filter(|p| p.receipt.is_some()).count();
    if paid(&wallet) != 1 || shop.payments().count() != 1 {
        fail();
    }
    // The wallet's log moves to its other bank (a compaction keeping every record), and
    // opens from there.
    let records = wallet.store().len();
    let mut store = wallet.into_store();
    ok(store.compact(&|_| true, &[]));
    let (flash, cache) = store.into_parts();
    let store: Flash = ok(FlashStore::open(flash, cache));
    let mut wallet: product::Customer<Flash> =
        ok(Wallet::open(store, SigningKey::from_seed(&[2; 32])));
    if wallet.store().len() != records || paid(&wallet) != 1 {
        fail();
    }
    // And it pays on: the sequence goes on from the journal.
    product::pay(&mut wallet, &mut shop, 80, trust, now, ticks);
    if wallet.remaining(product::eur(), now) != Amount(5000 - 420 - 80)
        || shop.payments().count() != 2
    {
        fail();
    }
    open_ticks
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail()
}
