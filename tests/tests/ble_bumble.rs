//! A whole payment through a real BLE host stack: two trouble-host hosts, each attached over
//! TCP (H4) to one of Google Bumble's virtual controllers sharing a virtual radio. The merchant
//! advertises the engagement's service UUID, the customer connects, and request → payment →
//! receipt crosses real HCI, L2CAP, ATT and GATT.
//!
//! Needs Bumble: `scripts/test-all.sh` installs it into `.venv/` (or set
//! `OFFPAY_BUMBLE_PYTHON` to a Python that has it). The controller process is stopped in every
//! case, also when the test fails (a guard kills it on drop).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bt_hci_serial::SerialTransport;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_io_adapters::tokio_1::FromTokio;
use offpay_ble::session::{CustomerOutcome, MerchantOutcome};
use offpay_ble::{CustomerSession, MerchantEngagement, MerchantSession};
use offpay_conformance::fixture::*;
use offpay_protocol::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use trouble_host::prelude::{Address, DefaultPacketPool, ExternalController, HostResources};

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

#[tokio::test(flavor = "current_thread")]
async fn a_whole_payment_over_bumble_virtual_controllers() {
    let (p1, p2) = (free_port(), free_port());
    let _controllers = Controllers(
        Command::new(python())
            .args(["-m", "bumble.apps.controllers"])
            .arg(format!("tcp-server:127.0.0.1:{p1}"))
            .arg(format!("tcp-server:127.0.0.1:{p2}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Bumble's controllers"),
    );

    let f = Fixture::new();
    let now = t(3650);
    let mut wallet: Wallet<MemStore, SigningKey> =
        Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
    wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
    let mut shop: Acceptor<MemStore, SigningKey> =
        Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
    let mut rng = Fixture::rng(11);
    let request = shop
        .create_request(Amount(1200), eur(), Some("bumble"), now, &mut rng)
        .unwrap()
        .to_vec();
    let engagement = MerchantEngagement::generate(&mut rng);
    let public = *engagement.engagement();
    let merchant_address = Address::random([0xc3, 0x5a, 0x11, 0x0f, 0xfa, 0xcf]);
    let ctx = Context {
        trust: &f.trust,
        revocations: None,
        now,
    };

    let merchant = async {
        let mut resources: HostResources<DefaultPacketPool, 1, 3> = HostResources::new();
        let stack = trouble_host::new(hci(p1).await, &mut resources)
            .set_random_address(merchant_address)
            .build();
        let mut runner = stack.runner();
        let mut peripheral = stack.peripheral();
        let mut session = MerchantSession::new(&engagement, &request).unwrap();
        match select(
            runner.run(),
            offpay_ble::trouble::merchant(
                &mut peripheral,
                &public.service_uuid,
                &mut session,
                &mut shop,
                &ctx,
            ),
        )
        .await
        {
            Either::First(r) => panic!("merchant host stopped: {r:?}"),
            Either::Second(r) => r,
        }
    };
    let customer = async {
        let mut resources: HostResources<DefaultPacketPool, 1, 3> = HostResources::new();
        let stack = trouble_host::new(hci(p2).await, &mut resources)
            .set_random_address(Address::random([0x77, 0x42, 0x01, 0x0c, 0xfa, 0xcf]))
            .build();
        let mut runner = stack.runner();
        let mut central = stack.central();
        let mut session = CustomerSession::new(&public, &mut Fixture::rng(12)).unwrap();
        let mut shown = Vec::new();
        let r = match select(
            runner.run(),
            offpay_ble::trouble::customer(
                &stack,
                &mut central,
                merchant_address,
                &mut session,
                &mut wallet,
                &f.trust,
                None,
                now,
                |req| {
                    shown = req.to_vec();
                    true
                },
            ),
        )
        .await
        {
            Either::First(r) => panic!("customer host stopped: {r:?}"),
            Either::Second(r) => r,
        };
        (r, shown)
    };
    let (m, (c, shown)) = tokio::time::timeout(
        Duration::from_secs(60),
        embassy_futures::join::join(merchant, customer),
    )
    .await
    .expect("the payment over Bumble did not finish within 60 s");

    let Ok(CustomerOutcome::Paid(id)) = c else {
        panic!("customer: {c:?}, merchant: {m:?}");
    };
    assert!(
        matches!(m, Ok(MerchantOutcome::Accepted(mid)) if mid == id),
        "{m:?}"
    );
    assert_eq!(
        shown, request,
        "the customer approved the merchant's request"
    );
    // Both stores hold the payment and the receipt, and the payment verifies.
    let stored = wallet.payments().next().unwrap();
    assert_eq!(wallet.payments().count(), 1);
    let receipt = stored.receipt.expect("the wallet stored the receipt");
    let p = stored.payment.clone();
    p.verify(&p.voucher.holder_key).unwrap();
    assert_eq!(p.id(), id);
    assert_eq!(p.amount, Amount(1200));
    let accepted = shop.payments().next().unwrap();
    assert_eq!(shop.payments().count(), 1);
    assert_eq!(accepted.payment.bytes(), stored.payment.bytes());
    assert_eq!(accepted.receipt, receipt);
    let r = decode_signed::<msg::Receipt>(receipt).unwrap();
    r.verify(&f.merchant_a.public_key()).unwrap();
    assert_eq!(r.payment_id, id);
}
