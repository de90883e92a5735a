//! Whole payments through a real BLE host stack: two trouble-host hosts, each attached over
//! TCP (H4) to one of Google Bumble's virtual controllers sharing a virtual radio. The merchant
//! advertises the engagement's service UUID, the customer connects, and request → payment →
//! receipt crosses real HCI, L2CAP, ATT and GATT: at ATT MTU 23 and 185, in both write modes
//! of SPEC §14.2 (without response: every chunk back to back); a refusal that reaches the
//! customer with State = end; a customer who leaves without State = end, after which the till
//! serves the next customer.
//!
//! Needs Bumble: `scripts/test-all.sh` installs it into `.venv/` (or set
//! `OFFPAY_BUMBLE_PYTHON` to a Python that has it). The controller process is stopped in every
//! case, also when the test fails (a guard kills it on drop).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Each test holds SERIAL on its own thread and runtime: blocking there blocks no one else.
#![allow(clippy::await_holding_lock)]

use bt_hci_serial::SerialTransport;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_io_adapters::tokio_1::FromTokio;
use offpay_ble::driver::{Customer, Merchant};
use offpay_ble::trouble::{CustomerReport, TroubleError, WriteMode};
use offpay_ble::{CustomerSession, Event, MerchantEngagement, MerchantSession, Party};
use offpay_conformance::fixture::*;
use offpay_protocol::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use trouble_host::prelude::{
    Address, DefaultPacketPool, ExternalController, HostResources, Packet, PacketPool,
};

type Hci = ExternalController<
    SerialTransport<NoopRawMutex, FromTokio<ReadHalf<TcpStream>>, FromTokio<WriteHalf<TcpStream>>>,
    10,
>;

/// The Bumble controllers process, killed when dropped.
struct Controllers(Child);

impl Drop for Controllers {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OFFPAY_BUMBLE_PYTHON") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3");
    assert!(
        p.exists(),
        "Bumble is not installed: run `bash scripts/test-all.sh` (it makes .venv/ with Bumble) \
         or set OFFPAY_BUMBLE_PYTHON"
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn hci(port: u16) -> Hci {
    let mut stream = None;
    for _ in 0..200 {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let stream = stream.expect("the Bumble controller did not start listening within 20 s");
    stream.set_nodelay(true).unwrap();
    let (r, w) = tokio::io::split(stream);
    ExternalController::new(SerialTransport::new(FromTokio::new(r), FromTokio::new(w)))
}

/// A packet pool of `MTU`-byte buffers: the customer asks for ATT MTU `MTU` − 4, so the
/// tests choose the MTU the way a phone's stack would.
struct Pool<const MTU: usize>;

struct Buf<const MTU: usize>(Box<[u8; MTU]>);

impl<const MTU: usize> Packet for Buf<MTU> {}

impl<const MTU: usize> AsRef<[u8]> for Buf<MTU> {
    fn as_ref(&self) -> &[u8] {
        &self.0[..]
    }
}

impl<const MTU: usize> AsMut<[u8]> for Buf<MTU> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0[..]
    }
}

impl<const MTU: usize> PacketPool for Pool<MTU> {
    type Packet = Buf<MTU>;
    const MTU: usize = MTU;
    fn allocate() -> Option<Buf<MTU>> {
        Some(Buf(Box::new([0; MTU])))
    }
    fn capacity() -> usize {
        64
    }
}

const MERCHANT_ADDRESS: [u8; 6] = [0xc3, 0x5a, 0x11, 0x0f, 0xfa, 0xcf];

/// One Bumble session at a time: they share two cores with the rest of the suite, and a
/// virtual radio that must not stall.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn controllers() -> (Controllers, u16, u16) {
    let (p1, p2) = (free_port(), free_port());
    let c = Controllers(
        Command::new(python())
            .args(["-m", "bumble.apps.controllers"])
            .arg(format!("tcp-server:127.0.0.1:{p1}"))
            .arg(format!("tcp-server:127.0.0.1:{p2}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Bumble's controllers"),
    );
    (c, p1, p2)
}

struct World {
    f: Fixture,
    wallet: Wallet<MemStore, SigningKey>,
    shop: Acceptor<MemStore, SigningKey>,
    now: Timestamp,
}

impl World {
    fn new() -> Self {
        let f = Fixture::new();
        let mut wallet: Wallet<MemStore, SigningKey> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
        wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
        let shop =
            Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
        World {
            f,
            wallet,
            shop,
            now: t(3650),
        }
    }

    fn request(&mut self, amount: u64, seed: u8) -> Vec<u8> {
        self.shop
            .create_request(
                Amount(amount),
                eur(),
                Some("bumble"),
                self.now,
                &mut Fixture::rng(seed),
            )
            .unwrap()
            .to_vec()
    }
}

/// The merchant host: serves `sessions` customers in turn, one engagement and request each,
/// the acceptor checking against protocol time `merchant_now`. Returns each session's result.
async fn merchant_host(
    port: u16,
    shop: &mut Acceptor<MemStore, SigningKey>,
    trust: &TrustStore<4>,
    merchant_now: Timestamp,
    sessions: &[(MerchantEngagement, Vec<u8>)],
) -> Vec<Result<Event, TroubleError>> {
    let mut resources: HostResources<DefaultPacketPool, 1, 3> = HostResources::new();
    let stack = trouble_host::new(hci(port).await, &mut resources)
        .set_random_address(Address::random(MERCHANT_ADDRESS))
        .build();
    let mut runner = stack.runner();
    let mut peripheral = stack.peripheral();
    let ctx = Context {
        trust,
        revocations: None,
        now: merchant_now,
    };
    let serve = async {
        let mut results = Vec::new();
        for (engagement, request) in sessions {
            let mut session = MerchantSession::new(engagement, request).unwrap();
            let mut endpoint = Merchant {
                session: &mut session,
                acceptor: &mut *shop,
                ctx: &ctx,
            };
            let public = engagement.engagement().service_uuid;
            results
                .push(offpay_ble::trouble::merchant(&mut peripheral, &public, &mut endpoint).await);
        }
        results
    };
    // The host keeps running until every session has ended (State = end goes out first).
    match select(runner.run(), serve).await {
        Either::First(r) => panic!("merchant host stopped: {r:?}"),
        Either::Second(r) => r,
    }
}

/// The customer host with packet pool `P` (so ATT MTU `P::MTU` − 4): pays once.
async fn customer_host<P: PacketPool>(
    port: u16,
    engagement: &MerchantEngagement,
    wallet: &mut Wallet<MemStore, SigningKey>,
    trust: &TrustStore<4>,
    now: Timestamp,
    write: WriteMode,
) -> (Result<CustomerReport, TroubleError>, Vec<u8>) {
    let mut resources: HostResources<P, 1, 3> = HostResources::new();
    let stack = trouble_host::new(hci(port).await, &mut resources)
        .set_random_address(Address::random([0x77, 0x42, 0x01, 0x0c, 0xfa, 0xcf]))
        .build();
    let mut runner = stack.runner();
    let mut central = stack.central();
    let mut session = CustomerSession::new(engagement.engagement(), &mut Fixture::rng(12)).unwrap();
    let mut shown = Vec::new();
    let mut endpoint = Customer {
        session: &mut session,
        wallet,
        trust,
        revocations: None,
        time: now,
        approve: |req: &[u8]| {
            shown = req.to_vec();
            true
        },
    };
    let r = match select(
        runner.run(),
        offpay_ble::trouble::customer(
            &stack,
            &mut central,
            Address::random(MERCHANT_ADDRESS),
            &mut endpoint,
            write,
        ),
    )
    .await
    {
        Either::First(r) => panic!("customer host stopped: {r:?}"),
        Either::Second(r) => r,
    };
    (r, shown)
}

async fn pay_at<P: PacketPool>(write: WriteMode, want_mtu: u16) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_controllers, p1, p2) = controllers();
    let mut w = World::new();
    let request = w.request(1200, 11);
    let engagement = MerchantEngagement::generate(&mut Fixture::rng(13));
    let sessions = [(
        MerchantEngagement::generate(&mut Fixture::rng(13)),
        request.clone(),
    )];
    let World {
        f,
        wallet,
        shop,
        now,
    } = &mut w;
    let (m, (c, shown)) = tokio::time::timeout(
        Duration::from_secs(60),
        embassy_futures::join::join(
            merchant_host(p1, shop, &f.trust, *now, &sessions),
            customer_host::<P>(p2, &engagement, wallet, &f.trust, *now, write),
        ),
    )
    .await
    .expect("the payment over Bumble did not finish within 60 s");
    let what = format!("{write:?} at MTU {want_mtu}");
    let c = c.unwrap_or_else(|e| panic!("{what}: customer {e:?}, merchant {m:?}"));
    assert_eq!(c.mtu, want_mtu, "{what}");
    let Event::Paid(id) = c.event else {
        panic!("{what}: customer {c:?}, merchant {m:?}");
    };
    assert!(
        matches!(m[..], [Ok(Event::Accepted(mid))] if mid == id),
        "{what}: {m:?}"
    );
    assert!(c.merchant_ended, "{what}: the customer saw State = end");
    assert_eq!(
        shown, request,
        "the customer approved the merchant's request"
    );
    // Both stores hold the payment and the receipt, and the payment verifies.
    assert_eq!(w.wallet.payments().count(), 1);
    let stored = w.wallet.payments().next().unwrap();
    let receipt = stored.receipt.expect("the wallet stored the receipt");
    let p = stored.payment.clone();
    p.verify_holder(&p.voucher.holder_key).unwrap();
    assert_eq!((p.id(), p.amount), (id, Amount(1200)));
    assert_eq!(w.shop.payments().count(), 1);
    let accepted = w.shop.payments().next().unwrap();
    assert_eq!(accepted.payment.bytes(), stored.payment.bytes());
    assert_eq!(accepted.receipt, receipt);
    let r = decode_signed::<msg::Receipt>(receipt).unwrap();
    r.verify(&w.f.merchant_a.public_key()).unwrap();
    assert_eq!(r.payment_id, id);
}

#[tokio::test(flavor = "current_thread")]
async fn pays_at_mtu_23_writing_with_response() {
    pay_at::<Pool<27>>(WriteMode::WithResponse, 23).await;
}

#[tokio::test(flavor = "current_thread")]
async fn pays_at_mtu_23_writing_without_response_back_to_back() {
    pay_at::<Pool<27>>(WriteMode::WithoutResponse, 23).await;
}

#[tokio::test(flavor = "current_thread")]
async fn pays_at_mtu_185_writing_with_response() {
    pay_at::<Pool<189>>(WriteMode::WithResponse, 185).await;
}

#[tokio::test(flavor = "current_thread")]
async fn pays_at_mtu_185_writing_without_response_back_to_back() {
    pay_at::<Pool<189>>(WriteMode::WithoutResponse, 185).await;
}

/// The acceptor refuses (its clock is past the voucher's window): the customer gets the
/// sealed refusal and State = end before the link drops; the till stores nothing.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_payment_reaches_the_customer_with_state_end() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_controllers, p1, p2) = controllers();
    let mut w = World::new();
    let request = w.request(700, 21);
    let stored = w.shop.store().len();
    let engagement = MerchantEngagement::generate(&mut Fixture::rng(22));
    let sessions = [(MerchantEngagement::generate(&mut Fixture::rng(22)), request)];
    let World {
        f,
        wallet,
        shop,
        now,
    } = &mut w;
    let late = t(100_000_000);
    let (m, (c, _)) = tokio::time::timeout(
        Duration::from_secs(60),
        embassy_futures::join::join(
            merchant_host(p1, shop, &f.trust, late, &sessions),
            customer_host::<Pool<27>>(
                p2,
                &engagement,
                wallet,
                &f.trust,
                *now,
                WriteMode::WithoutResponse,
            ),
        ),
    )
    .await
    .expect("the session over Bumble did not finish within 60 s");
    let c = c.unwrap();
    let Event::Refused {
        by: Party::Merchant,
        code,
    } = c.event
    else {
        panic!("customer {c:?}, merchant {m:?}");
    };
    assert!(Error::from_code(code).is_some(), "a protocol code: {code}");
    assert!(
        matches!(m[..], [Ok(Event::Refused { by: Party::Merchant, code: mc })] if mc == code),
        "{m:?}"
    );
    assert!(c.merchant_ended, "State = end reached the customer");
    assert_eq!(w.shop.payments().count(), 0);
    assert_eq!(
        w.shop.store().len(),
        stored,
        "nothing stored at the till beyond its request"
    );
}

/// A customer sends its hello and leaves without State = end: that session ends as
/// disconnected with nothing stored, and the till serves the next customer, who pays.
#[tokio::test(flavor = "current_thread")]
async fn a_customer_who_leaves_without_end_then_the_next_customer_pays() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_controllers, p1, p2) = controllers();
    let mut w = World::new();
    let first = (
        MerchantEngagement::generate(&mut Fixture::rng(31)),
        w.request(300, 32),
    );
    let second = (
        MerchantEngagement::generate(&mut Fixture::rng(33)),
        w.request(450, 34),
    );
    let sessions = [
        (
            MerchantEngagement::generate(&mut Fixture::rng(31)),
            first.1.clone(),
        ),
        (
            MerchantEngagement::generate(&mut Fixture::rng(33)),
            second.1.clone(),
        ),
    ];
    let World {
        f,
        wallet,
        shop,
        now,
    } = &mut w;
    let customers = async {
        let mut resources: HostResources<DefaultPacketPool, 1, 3> = HostResources::new();
        let stack = trouble_host::new(hci(p2).await, &mut resources)
            .set_random_address(Address::random([0x78, 0x42, 0x01, 0x0c, 0xfa, 0xcf]))
            .build();
        let mut runner = stack.runner();
        let mut central = stack.central();
        let pay = async {
            leave_after_hello(&stack, &mut central, &first.0).await;
            let mut session =
                CustomerSession::new(second.0.engagement(), &mut Fixture::rng(35)).unwrap();
            let mut endpoint = Customer {
                session: &mut session,
                wallet,
                trust: &f.trust,
                revocations: None,
                time: *now,
                approve: |_: &[u8]| true,
            };
            offpay_ble::trouble::customer(
                &stack,
                &mut central,
                Address::random(MERCHANT_ADDRESS),
                &mut endpoint,
                WriteMode::WithResponse,
            )
            .await
        };
        match select(runner.run(), pay).await {
            Either::First(r) => panic!("customer host stopped: {r:?}"),
            Either::Second(r) => r,
        }
    };
    let (m, c) = tokio::time::timeout(
        Duration::from_secs(60),
        embassy_futures::join::join(
            merchant_host(p1, shop, &f.trust, *now, &sessions),
            customers,
        ),
    )
    .await
    .expect("the sessions over Bumble did not finish within 60 s");
    assert!(matches!(m[0], Err(TroubleError::Disconnected)), "{m:?}");
    let c = c.unwrap();
    let Event::Paid(id) = c.event else {
        panic!("{c:?} / {m:?}");
    };
    assert!(
        matches!(m[1], Ok(Event::Accepted(mid)) if mid == id),
        "{m:?}"
    );
    assert_eq!(
        w.shop.payments().count(),
        1,
        "only the second customer's payment"
    );
    assert_eq!(
        w.shop.payments().next().unwrap().payment.amount,
        Amount(450)
    );
    assert_eq!(w.wallet.payments().count(), 1);
}

/// Connects to the merchant, writes State = start and the hello, then disconnects without
/// State = end, as a phone whose app was killed.
async fn leave_after_hello<C: trouble_host::prelude::Controller>(
    stack: &trouble_host::prelude::Stack<'_, C, DefaultPacketPool>,
    central: &mut trouble_host::prelude::Central<'_, C, DefaultPacketPool>,
    engagement: &MerchantEngagement,
) {
    use offpay_ble::gatt::{CLIENT2SERVER_UUID, STATE_START, STATE_UUID};
    use offpay_ble::trouble::air_uuid;
    use trouble_host::prelude::*;
    let config = ConnectConfig {
        connect_params: Default::default(),
        scan_config: ScanConfig {
            active: true,
            filter_accept_list: &[Address::random(MERCHANT_ADDRESS)],
            ..Default::default()
        },
    };
    let conn = central.connect(&config).await.unwrap();
    let client = GattClient::<C, DefaultPacketPool, 4>::new(stack, &conn)
        .await
        .unwrap();
    let work = async {
        let uuid = engagement.engagement().service_uuid;
        let services = client.services_by_uuid(&air_uuid(&uuid)).await.unwrap();
        let service = services.first().unwrap().clone();
        let state: Characteristic<[u8]> = client
            .characteristic_by_uuid(&service, &air_uuid(&STATE_UUID))
            .await
            .unwrap();
        let c2s: Characteristic<[u8]> = client
            .characteristic_by_uuid(&service, &air_uuid(&CLIENT2SERVER_UUID))
            .await
            .unwrap();
        client
            .write_characteristic_without_response(&state, &[STATE_START])
            .await
            .unwrap();
        let mut session =
            CustomerSession::new(engagement.engagement(), &mut Fixture::rng(36)).unwrap();
        session.set_mtu(conn.att_mtu()).unwrap();
        session.start(Default::default()).unwrap();
        let mut buf = [0u8; 514];
        while let Some(n) = session.poll_transmit(&mut buf) {
            client.write_characteristic(&c2s, &buf[..n]).await.unwrap();
        }
        conn.disconnect();
    };
    match select(client.task(), work).await {
        Either::First(_) | Either::Second(()) => {}
    }
}
