//! The smallest firmware that holds both roles: a wallet and an acceptor with in-memory stores
//! perform one whole payment (request → payment → receipt) and exit 0, or 1 on any failure.
//! It has no `core::fmt`, so its `.text` is the library's footprint on a device plus the
//! Cortex-M runtime, the firmware's `memcpy` and about 1.5 KiB of measuring and printing:
//! `scripts/firmware.sh` reports its sections, and the binary itself prints its own stack
//! high-water mark (stack painting) and the instructions of its accept (SysTick under
//! `-icount shift=0`, calibrated in the run), so all of its figures describe one binary.
//! `payment-flash` is the same payment with both sides on NOR flash.

#![no_std]
#![no_main]

#[path = "../fastmem.rs"]
mod fastmem;
#[path = "../product.rs"]
mod product;
#[path = "../stack.rs"]
mod stack;
#[path = "../ticks.rs"]
mod ticks;

use cortex_m_rt::entry;
use offpay_protocol::*;
use product::fail;

static mut WALLET_STORE: MemStore<8192, 64> = MemStore::new();
static mut SHOP_STORE: MemStore<8192, 64> = MemStore::new();
static mut ISSUER_TABLES: FixedKeyTables = FixedKeyTables::new();

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
    let (trust, now) = product::trust(tables);
    let (mut wallet, mut shop) = product::open_sides(wallet_store, shop_store, &trust, now);
    let accept_ticks = product::pay(&mut wallet, &mut shop, 420, &trust, now, &ticks);
    if wallet.remaining(product::eur(), now) != Amount(5000 - 420) || shop.payments().count() != 1 {
        fail();
    }
    product::stack_line(b"payment", top)
        .text(b"; instructions per accept (voucher verified, issuer tables) ")
        .number(u64::from(accept_ticks) * per_tick_milli / 1000)
        .text(b"\n")
        .print();
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail()
}
