//! BLE sessions and chunk rules (`ble.json`).

use super::*;

/// One whole BLE session at MTU 23 and one at 185, every chunk recorded (SPEC §14).
pub(super) fn ble(f: &Fixture) -> Vec<Value> {
    use offpay_ble::{CustomerSession, MerchantEngagement, MerchantSession};
    use offpay_protocol::{Acceptor, MemStore, Wallet};
    let mut out = Vec::new();
    for mtu in [23u16, 185] {
        let merchant_secret = [0x4d; 32];
        let customer_secret = [0x43; 32];
        let uuid = [
            0x0f, 0xf1, 0x1e, 0x00, 0xa1, 0x1c, 0x4e, 0x5b, 0x9a, 0x7e, 0x6d, 0x05, 0x11, 0x23,
            0x58, 0x13,
        ];
        let me =
            MerchantEngagement::from_parts(uuid, x25519_dalek::StaticSecret::from(merchant_secret));
        let mut wallet: Wallet<MemStore, SigningKey> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&[2; 32])).unwrap();
        wallet.install_voucher(&f.voucher, &f.trust, t(60)).unwrap();
        let mut shop: Acceptor<MemStore, SigningKey> =
            Acceptor::open(MemStore::new(), SigningKey::from_seed(&[3; 32]), &f.cert_a).unwrap();
        let now = t(NOW);
        let request = shop
            .create_request(Amount(420), eur(), Some("ble"), now, &mut Fixture::rng(21))
            .unwrap()
            .to_vec();
        let mut customer = CustomerSession::with_key(me.engagement(), &customer_secret).unwrap();
        let mut merchant = MerchantSession::new(&me, &request).unwrap();
        customer.set_mtu(mtu).unwrap();
        merchant.set_mtu(mtu).unwrap();
        let ctx = Context {
            trust: &f.trust,
            revocations: None,
            now,
        };
        customer.start(Default::default()).unwrap();
        merchant.start(Default::default()).unwrap();
        let mut frames = Vec::new();
        let mut buf = vec![0u8; usize::from(mtu)];
        while !(customer.is_finished() && merchant.is_finished()) {
            let mut chunks = Vec::new();
            while let Some(n) = customer.poll_transmit(&mut buf) {
                chunks.push(hx(&buf[..n]));
                merchant
                    .handle_input(&buf[..n], Default::default(), &mut shop, &ctx)
                    .unwrap();
            }
            if !chunks.is_empty() {
                frames.push(json!({ "direction": "c2s", "chunks": chunks }));
            }
            let mut chunks = Vec::new();
            while let Some(n) = merchant.poll_transmit(&mut buf) {
                chunks.push(hx(&buf[..n]));
                customer
                    .handle_input(&buf[..n], Default::default(), &mut wallet)
                    .unwrap();
            }
            if !chunks.is_empty() {
                frames.push(json!({ "direction": "s2c", "chunks": chunks }));
            }
            if customer.request().is_some() {
                customer
                    .approve(&mut wallet, &f.trust, None, now, Default::default())
                    .unwrap();
            }
        }
        // The keys, derived here independently of offpay-ble from the SPEC's formulas.
        let engagement = me.engagement().to_bytes();
        let hello: Vec<u8> = frames[0]["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| hex::decode(c.as_str().unwrap()).unwrap()[1..].to_vec())
            .collect();
        let (transcript, shared, k_c2s, k_s2c) = ble_keys(
            &engagement,
            &hello,
            &customer_secret,
            &me.engagement().merchant_key,
        );
        let payment = wallet.payments().next().unwrap().payment.bytes().to_vec();
        let receipt = wallet.payments().next().unwrap().receipt.unwrap().to_vec();
        // The request goes bound to the session: merchant A's signature over the transcript.
        let binding = Signer::sign(
            &SigningKey::from_seed(&[3; 32]),
            offpay_protocol::SESSION_BINDING_DOMAIN,
            &transcript,
        )
        .unwrap();
        let plaintexts = [
            hello.clone(),
            [&[3u8][..], &request, &binding].concat(),
            [&[1u8][..], &payment].concat(),
            [&[1u8][..], &receipt].concat(),
        ];
        for (frame, plain) in frames.iter_mut().zip(plaintexts.iter()) {
            let whole: Vec<u8> = frame["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| hex::decode(c.as_str().unwrap()).unwrap()[1..].to_vec())
                .collect();
            frame["frame"] = json!(hx(&whole));
            frame["plaintext"] = json!(hx(plain));
        }
        out.push(json!({
            "name": format!("ble-session-mtu-{mtu}"),
            "context": "ble",
            "mtu": mtu,
            "engagement": hx(&engagement),
            "engagement_qr": offpay_qr::frame::encode_single(&engagement),
            "merchant_secret": hx(&merchant_secret),
            "customer_secret": hx(&customer_secret),
            "transcript": hx(&transcript),
            "shared_secret": hx(&shared),
            "key_c2s": hx(&k_c2s),
            "key_s2c": hx(&k_s2c),
            "frames": frames,
        }));
    }
    // §14.3: chunks that reassemble, and chunks a receiver refuses. A chunk (flag included)
    // is at most MTU − 3 bytes; the 512-byte bound counts a frame's data, not its flags.
    let chunk = |flag: u8, len: usize, fill: u8| {
        let mut c = vec![flag];
        c.extend(std::iter::repeat_n(fill, len));
        hx(&c)
    };
    let cases: Vec<(&str, u16, Vec<String>, &str, usize)> = vec![
        (
            "chunks-a-chunk-at-the-mtu",
            23,
            vec![chunk(0, 19, 0xa1)],
            "valid",
            19,
        ),
        (
            "chunks-a-chunk-longer-than-the-mtu",
            23,
            vec![chunk(0, 20, 0xa2)],
            "ble-bad-chunk",
            0,
        ),
        (
            "chunks-512-data-bytes-in-two-chunks",
            517,
            vec![chunk(1, 300, 0xa3), chunk(0, 212, 0xa4)],
            "valid",
            512,
        ),
        (
            "chunks-513-data-bytes",
            517,
            vec![chunk(1, 300, 0xa5), chunk(0, 213, 0xa6)],
            "ble-too-large",
            0,
        ),
        (
            "chunks-empty-chunk",
            23,
            vec![String::new()],
            "ble-bad-chunk",
            0,
        ),
        (
            "chunks-unknown-flag",
            23,
            vec![chunk(2, 4, 0xa7)],
            "ble-bad-chunk",
            0,
        ),
    ];
    for (name, mtu, chunks, expect, len) in cases {
        let frame: Vec<u8> = chunks
            .iter()
            .flat_map(|c| hex::decode(c).unwrap().into_iter().skip(1))
            .collect();
        out.push(json!({
            "name": name, "context": "ble-chunks", "mtu": mtu, "chunks": chunks, "expect": expect,
            "frame": if expect == "valid" { Value::String(hx(&frame[..len])) } else { Value::Null },
        }));
    }
    out
}

/// SPEC §14.4 from its formulas: (transcript, shared secret, c2s key, s2c key).
pub fn ble_keys(
    engagement: &[u8],
    hello: &[u8],
    customer_secret: &[u8; 32],
    merchant_key: &[u8; 32],
) -> ([u8; 32], [u8; 32], [u8; 32], [u8; 32]) {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"offpay-ble-v1");
    h.update(engagement);
    h.update(hello);
    let transcript: [u8; 32] = h.finalize().into();
    let shared = x25519_dalek::x25519(*customer_secret, *merchant_key);
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&transcript), &shared);
    let (mut c2s, mut s2c) = ([0u8; 32], [0u8; 32]);
    hk.expand(b"offpay ble c2s", &mut c2s).unwrap();
    hk.expand(b"offpay ble s2c", &mut s2c).unwrap();
    (transcript, shared, c2s, s2c)
}
