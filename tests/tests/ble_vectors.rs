//! The BLE conformance vectors (tests/vectors/ble.json) checked from SPEC §14's formulas by an
//! independent reading: keys derived here, chunks reassembled, frames opened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod vector_files;

use offpay_protocol::msg::*;
use offpay_protocol::*;
use serde_json::Value;
use vector_files::{arr, load, unhex};

/// The BLE vectors, read as another implementation would: keys from the SPEC's formulas,
/// chunks reassembled, frames opened with ChaCha20-Poly1305 under direction ‖ counter.
#[test]
fn ble_vectors_follow_the_spec_formulas() {
    use chacha20poly1305::aead::Aead;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
    let file = load("ble.json");
    let all = file["vectors"].as_array().unwrap();
    let vectors: Vec<&Value> = all.iter().filter(|v| v["context"] == "ble").collect();
    assert_eq!(vectors.len(), 2);
    // §14.3 chunk rules, read from the SPEC: a chunk is at most MTU − 3 bytes with its flag;
    // the reassembler's bound (512 bytes of data) and flags are the library's.
    let mut chunk_cases = 0;
    for v in all.iter().filter(|v| v["context"] == "ble-chunks") {
        let mtu = v["mtu"].as_u64().unwrap() as usize;
        let mut r = offpay_ble::chunk::Reassembler::<{ offpay_ble::MAX_FRAME }>::new();
        let mut got = Err(offpay_ble::BleError::Unexpected);
        for c in v["chunks"].as_array().unwrap() {
            let c = unhex(c);
            got = if c.len() > mtu - 3 {
                Err(offpay_ble::BleError::BadChunk)
            } else {
                r.push(&c)
                    .map(|f| f.map(<[u8]>::to_vec).unwrap_or_default())
            };
            if got.is_err() {
                break;
            }
        }
        match v["expect"].as_str().unwrap() {
            "valid" => assert_eq!(hex::encode(got.unwrap()), v["frame"].as_str().unwrap()),
            e => assert_eq!(got.unwrap_err().name(), e, "{}", v["name"]),
        }
        chunk_cases += 1;
    }
    assert!(chunk_cases >= 6);
    for v in vectors {
        let mtu = v["mtu"].as_u64().unwrap() as usize;
        let engagement = unhex(&v["engagement"]);
        assert_eq!(
            offpay_qr::frame::decode_single(v["engagement_qr"].as_str().unwrap(), 64).unwrap(),
            engagement
        );
        let frames = v["frames"].as_array().unwrap();
        assert_eq!(frames.len(), 4, "hello, request, payment, receipt");
        let hello = unhex(&frames[0]["frame"]);
        assert_eq!(hello.len(), 50);
        assert_eq!(
            &hello[2..18],
            &engagement[2..18],
            "hello names the session UUID"
        );
        let merchant_key: [u8; 32] = engagement[18..].try_into().unwrap();
        // The merchant's public key is its secret's.
        assert_eq!(
            x25519_dalek::x25519(
                arr(&v["merchant_secret"]),
                x25519_dalek::X25519_BASEPOINT_BYTES
            ),
            merchant_key
        );
        let (transcript, shared, c2s, s2c) = offpay_conformance::vectors::ble_keys(
            &engagement,
            &hello,
            &arr(&v["customer_secret"]),
            &merchant_key,
        );
        assert_eq!(transcript, arr::<32>(&v["transcript"]));
        assert_eq!(shared, arr::<32>(&v["shared_secret"]));
        assert_eq!(c2s, arr::<32>(&v["key_c2s"]));
        assert_eq!(s2c, arr::<32>(&v["key_s2c"]));
        let mut counters = [0u64; 2];
        for (i, fr) in frames.iter().enumerate() {
            let chunks: Vec<Vec<u8>> = fr["chunks"].as_array().unwrap().iter().map(unhex).collect();
            for (j, c) in chunks.iter().enumerate() {
                assert!(c.len() <= mtu - 3, "chunk within MTU - 3");
                let last = j + 1 == chunks.len();
                assert_eq!(c[0], if last { 0x00 } else { 0x01 });
            }
            let whole: Vec<u8> = chunks.iter().flat_map(|c| c[1..].to_vec()).collect();
            assert_eq!(whole, unhex(&fr["frame"]));
            let plain = unhex(&fr["plaintext"]);
            if i == 0 {
                assert_eq!(whole, plain, "the hello is sent in the clear");
                continue;
            }
            let (d, key) = if fr["direction"] == "c2s" {
                (0usize, c2s)
            } else {
                (1, s2c)
            };
            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(&(d as u32).to_be_bytes());
            nonce[4..].copy_from_slice(&counters[d].to_be_bytes());
            counters[d] += 1;
            let cipher = ChaCha20Poly1305::new((&key).into());
            let opened = cipher.decrypt((&nonce).into(), &whole[..]).unwrap();
            assert_eq!(opened, plain, "frame {i}");
            if i == 1 {
                // The request, bound to this session: the merchant's signature over the
                // transcript under the certificate's merchant key (§14.5).
                assert_eq!(plain[0], 0x03, "a bound request");
                let (request, binding) = plain[1..].split_at(plain.len() - 1 - 64);
                let r = decode_signed::<PaymentRequest<'_>>(request).unwrap();
                let sig: [u8; 64] = binding.try_into().unwrap();
                offpay_protocol::crypto::verify(
                    &r.certificate.merchant_key,
                    b"offpay/1/ble-binding\0",
                    &unhex(&v["transcript"]),
                    &sig,
                )
                .unwrap();
            } else {
                assert_eq!(plain[0], 0x01, "an offpay message");
            }
        }
        // The payment inside verifies and is the one the receipt names.
        let payment = unhex(&frames[2]["plaintext"])[1..].to_vec();
        let p = decode_signed::<Payment<'_>>(&payment).unwrap();
        p.verify_holder(&p.voucher.holder_key).unwrap();
        let receipt = unhex(&frames[3]["plaintext"])[1..].to_vec();
        assert_eq!(
            decode_signed::<Receipt>(&receipt).unwrap().payment_id,
            p.id()
        );
    }
}
