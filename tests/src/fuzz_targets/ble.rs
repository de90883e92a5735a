//! The BLE reassembler and both sessions over arbitrary chunks.

use super::*;

/// The BLE chunk reassembler over arbitrary chunks: it never holds more than its bound, and
/// every message it completes survives being chunked and reassembled again.
pub fn ble_reassembler(data: &[u8]) {
    let mut r = offpay_ble::Reassembler::<{ offpay_ble::MAX_FRAME }>::new();
    for chunk in length_prefixed(data) {
        if let Ok(Some(m)) = r.push(chunk) {
            assert!(m.len() <= offpay_ble::MAX_FRAME);
            let m = m.to_vec();
            for len in [2usize, 20, 514] {
                let mut again = offpay_ble::Reassembler::<{ offpay_ble::MAX_FRAME }>::new();
                let mut c = offpay_ble::Chunker::new(&m, len);
                let mut buf = [0u8; 514];
                let mut got = None;
                while let Some(n) = c.next_into(&mut buf[..len]) {
                    assert!(n <= len);
                    got = again
                        .push(&buf[..n])
                        .expect("own chunks")
                        .map(<[u8]>::to_vec);
                }
                assert_eq!(got.as_deref(), Some(&m[..]));
            }
        }
    }
}

/// One genuine BLE session at MTU 23 (fixed keys): the customer's chunks and the merchant's.
pub struct BleGenuine {
    /// Customer → merchant chunks: hello, then the sealed payment.
    pub c2s: Vec<Vec<u8>>,
    /// Merchant → customer chunks: the sealed request, then the sealed receipt.
    pub s2c: Vec<Vec<u8>>,
    /// The merchant's engagement (fixed keys).
    pub engagement: [u8; 32],
    /// The request the merchant sends.
    pub request: Vec<u8>,
}

const BLE_MERCHANT_SECRET: [u8; 32] = [0x4d; 32];
const BLE_CUSTOMER_SECRET: [u8; 32] = [0x43; 32];
const BLE_UUID: [u8; 16] = [0x0f; 16];

fn ble_engagement() -> offpay_ble::MerchantEngagement {
    offpay_ble::MerchantEngagement::from_parts(
        BLE_UUID,
        x25519_dalek::StaticSecret::from(BLE_MERCHANT_SECRET),
    )
}

fn ble_wallet(f: &Fixture) -> Wallet<MemStore<8192, 32>, SigningKey> {
    let mut w = Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).expect("wallet");
    w.install_voucher(&f.voucher, &f.trust, t(60))
        .expect("voucher");
    w
}

fn ble_shop(f: &Fixture) -> Acceptor<MemStore<8192, 32>, SigningKey> {
    Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).expect("shop")
}

fn ble_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(Fixture::new)
}

/// The genuine session, recorded once.
pub fn ble_genuine() -> &'static BleGenuine {
    static G: OnceLock<BleGenuine> = OnceLock::new();
    G.get_or_init(|| {
        let f = ble_fixture();
        let e = ble_engagement();
        let mut wallet = ble_wallet(f);
        let mut shop = ble_shop(f);
        let now = t(3650);
        let request = shop
            .create_request(Amount(420), eur(), None, now, &mut Fixture::rng(3))
            .expect("request")
            .to_vec();
        let mut customer =
            offpay_ble::CustomerSession::with_key(e.engagement(), &BLE_CUSTOMER_SECRET)
                .expect("customer");
        let mut merchant = offpay_ble::MerchantSession::new(&e, &request).expect("merchant");
        let ctx = Context {
            trust: &f.trust,
            revocations: None,
            now,
        };
        customer.start(Default::default()).expect("start");
        merchant.start(Default::default()).expect("start");
        let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 20];
        while !(customer.is_finished() && merchant.is_finished()) {
            while let Some(n) = customer.poll_transmit(&mut buf) {
                c2s.push(buf[..n].to_vec());
                merchant
                    .handle_input(&buf[..n], Default::default(), &mut shop, &ctx)
                    .expect("merchant receive");
            }
            while let Some(n) = merchant.poll_transmit(&mut buf) {
                s2c.push(buf[..n].to_vec());
                customer
                    .handle_input(&buf[..n], Default::default(), &mut wallet)
                    .expect("customer receive");
            }
            if customer.request().is_some() {
                customer
                    .approve(&mut wallet, &f.trust, None, now, Default::default())
                    .expect("approve");
            }
        }
        BleGenuine {
            c2s,
            s2c,
            engagement: e.engagement().merchant_key,
            request,
        }
    })
}

/// The chunks a fuzz input stands for: mode 0, its own length-prefixed chunks; mode 1, the
/// genuine chunks edited by (op, argument) pairs: flip a byte, drop, duplicate or keep.
fn ble_chunks(data: &[u8], genuine: &[Vec<u8>]) -> Vec<Vec<u8>> {
    match data.split_first() {
        Some((m, rest)) if m & 1 == 1 => {
            let mut out: Vec<Vec<u8>> = Vec::new();
            let mut ops = rest.chunks(2);
            for c in genuine {
                match ops.next() {
                    Some([op, arg]) => match op % 4 {
                        0 => {
                            let mut c = c.clone();
                            let i = usize::from(*arg) % c.len();
                            c[i] ^= arg | 1;
                            out.push(c);
                        }
                        1 => {}
                        2 => {
                            out.push(c.clone());
                            out.push(c.clone());
                        }
                        _ => out.push(c.clone()),
                    },
                    _ => out.push(c.clone()),
                }
            }
            out
        }
        Some((_, rest)) => length_prefixed(rest)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect(),
        None => Vec::new(),
    }
}

/// A merchant BLE session fed hostile customer chunks (arbitrary, or the genuine session
/// edited): it never panics; it stores a payment only when it accepts one, and then the
/// genuine one; once it fails it refuses everything after.
pub fn ble_merchant_session(data: &[u8]) {
    let f = ble_fixture();
    let g = ble_genuine();
    let e = ble_engagement();
    let mut shop = ble_shop(f);
    let now = t(3650);
    // The same open request as in the genuine session.
    let request = shop
        .create_request(Amount(420), eur(), None, now, &mut Fixture::rng(3))
        .expect("request");
    assert_eq!(&request[..], &g.request[..]);
    let mut merchant = offpay_ble::MerchantSession::new(&e, &request).expect("merchant");
    let ctx = Context {
        trust: &f.trust,
        revocations: None,
        now,
    };
    merchant.start(Default::default()).expect("start");
    let mut failed = false;
    let mut end = None;
    let mut out = [0u8; 20];
    for c in ble_chunks(data, &g.c2s) {
        while merchant.poll_transmit(&mut out).is_some() {}
        match merchant.handle_input(&c, Default::default(), &mut shop, &ctx) {
            Ok(()) => assert!(!failed, "no input is taken after a failure"),
            Err(e) => {
                if failed {
                    assert_eq!(e, offpay_ble::BleError::Closed);
                }
                failed = true;
            }
        }
        while let Some(e) = merchant.poll_event() {
            if e.is_final() {
                assert!(end.is_none(), "one final event");
                end = Some(e);
            }
        }
    }
    let stored: Vec<Vec<u8>> = shop
        .payments()
        .map(|p| p.payment.bytes().to_vec())
        .collect();
    match end {
        Some(offpay_ble::Event::Accepted(id)) => {
            assert_eq!(stored.len(), 1);
            assert_eq!(crate::fixture::pid(&stored[0]), id);
        }
        _ => assert!(stored.is_empty(), "nothing stored without an acceptance"),
    }
}

/// A customer BLE session fed hostile merchant chunks: it never panics; the wallet pays at
/// most once, and only the genuine request.
pub fn ble_customer_session(data: &[u8]) {
    let f = ble_fixture();
    let g = ble_genuine();
    let mut wallet = ble_wallet(f);
    let engagement = offpay_ble::Engagement {
        service_uuid: BLE_UUID,
        merchant_key: g.engagement,
    };
    let mut customer =
        offpay_ble::CustomerSession::with_key(&engagement, &BLE_CUSTOMER_SECRET).expect("customer");
    customer.start(Default::default()).expect("start");
    let now = t(3650);
    let mut out = [0u8; 20];
    let mut end = None;
    for c in ble_chunks(data, &g.s2c) {
        while customer.poll_transmit(&mut out).is_some() {}
        let _ = customer.handle_input(&c, Default::default(), &mut wallet);
        while let Some(e) = customer.poll_event() {
            if e.is_final() {
                assert!(end.is_none(), "one final event");
                end = Some(e);
            }
        }
        if let Some(r) = customer.request() {
            // Only what the merchant sealed can be shown. (The seeds come from a normal build
            // whose signatures differ from a fuzzing build's, so compare what they sign.)
            let want = decode_signed::<PaymentRequest<'_>>(&g.request).expect("genuine");
            let got = decode_signed::<PaymentRequest<'_>>(r).expect("a sealed request decodes");
            assert_eq!(
                (got.nonce, got.amount, got.currency),
                (want.nonce, want.amount, want.currency),
                "only a genuinely sealed request is shown"
            );
            let _ = customer.approve(&mut wallet, &f.trust, None, now, Default::default());
        }
    }
    assert!(wallet.payments().count() <= 1);
    while let Some(e) = customer.poll_event() {
        end = end.or(Some(e).filter(offpay_ble::Event::is_final));
    }
    if let Some(offpay_ble::Event::Paid(id)) = end {
        let p = wallet
            .payments()
            .next()
            .expect("the paid payment is stored");
        assert_eq!(p.payment.id(), id);
        assert!(p.receipt.is_some());
    }
}
