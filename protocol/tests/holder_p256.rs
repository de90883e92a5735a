//! ECDSA P-256 holder keys end to end (SPEC §7.1.1): a wallet whose key is P-256 is
//! pre-authorized, pays, is accepted and settled; a high-S copy of its payment is refused by
//! the acceptor and by settlement and changes nothing; a randomized signer's retry returns the
//! stored bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::codec::{MessageType, decode_signed};
use offpay_protocol::crypto::{self, HolderSigner, P256SigningKey};
use offpay_protocol::msg::sync::ItemsWriter;
use offpay_protocol::msg::{Outcome, Payment, Voucher};
use offpay_protocol::*;
use p256::ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::cell::RefCell;

const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The same message with S replaced by n − S.
fn high_s(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    let at = m.len() - 32;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_N[i]) - i16::from(m[at + i]) - borrow;
        m[at + i] = d.rem_euclid(256) as u8;
        borrow = i16::from(d < 0);
    }
    m
}

struct World {
    issuer: Issuer,
    trust: TrustStore<4>,
    cert: Vec<u8>,
    shop: Acceptor<MemStore<32768, 128>, SigningKey>,
    rng: ChaCha20Rng,
    eur: Currency,
}

fn world() -> World {
    let issuer = Issuer::new(SigningKey::from_seed(&[1; 32]));
    let mut trust = TrustStore::<4>::new();
    trust
        .add(issuer.public_key(), Timestamp(0), Timestamp(1_000_000))
        .unwrap();
    let key = SigningKey::from_seed(&[3; 32]);
    let cert = issuer
        .certify_merchant(
            MerchantId(*b"SHOP0001"),
            key.public_key(),
            "Shop",
            Timestamp(0),
            Timestamp(1_000_000),
        )
        .unwrap()
        .to_vec();
    let shop = Acceptor::open(MemStore::new(), key, &cert).unwrap();
    World {
        issuer,
        trust,
        cert,
        shop,
        rng: ChaCha20Rng::from_seed([7; 32]),
        eur: Currency::parse("EUR").unwrap(),
    }
}

/// Pre-authorizes 50.00 for `wallet` and installs the voucher; returns its bytes.
fn fund<K: HolderSigner>(w: &mut World, wallet: &mut Wallet<MemStore, K>) -> Vec<u8> {
    let pre = wallet
        .preauth_request(b"card", Amount(5000), w.eur, Nonce([4; 16]), Timestamp(10))
        .unwrap();
    let terms = VoucherTerms {
        not_before: Timestamp(0),
        not_after: Timestamp(900_000),
        max_single: None,
        max_payments: 50,
    };
    let voucher = w.issuer.issue_voucher(&pre, terms, &mut w.rng).unwrap();
    wallet
        .install_voucher(&voucher, &w.trust, Timestamp(20))
        .unwrap();
    voucher.to_vec()
}

fn batch(records: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = ItemsWriter::sync_batch(&mut buf, records.len()).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_p256_wallet_pays_is_accepted_and_settled_and_its_high_s_twin_is_refused_everywhere() {
    let mut w = world();
    let key = P256SigningKey::generate(&mut ChaCha20Rng::from_seed([2; 32]));
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &key).unwrap();
    assert_eq!(wallet.holder_key(), HolderKey::P256(key.public_key()));
    let voucher = fund(&mut w, &mut wallet);
    // The issuer answered with the P-256 voucher type, bound to the wallet's key.
    assert_eq!(MessageType::of(&voucher), Ok(MessageType::VoucherP256));
    let v = decode_signed::<Voucher>(&voucher).unwrap();
    assert_eq!(v.holder_key, HolderKey::P256(key.public_key()));

    let now = Timestamp(100);
    let ctx = Context {
        trust: &w.trust,
        revocations: None,
        now,
    };
    let req = w
        .shop
        .create_request(Amount(420), w.eur, None, now, &mut w.rng)
        .unwrap();
    let payment = wallet.pay(&req, &w.trust, None, now).unwrap();
    assert_eq!(payment.len(), 254, "one byte more than an Ed25519 payment");
    let p = decode_signed::<Payment<'_>>(&payment).unwrap();
    p.verify_holder(&p.voucher.holder_key).unwrap();

    // The high-S twin: valid ECDSA (plain verification accepts it), another payment id.
    let twin = high_s(&payment);
    let t = decode_signed::<Payment<'_>>(&twin).unwrap();
    assert_ne!(t.id(), p.id());
    let vk = crypto::p256_verifying_key(&key.public_key()).unwrap();
    let digest = crypto::holder_digest(
        <Payment<'_> as codec::SignedMessage<'_>>::DOMAIN,
        t.signed_bytes(),
    );
    let sig = p256::ecdsa::Signature::from_slice(t.signature()).unwrap();
    vk.verify_prehash(&digest, &sig)
        .expect("plain ECDSA accepts the high-S twin");
    assert_eq!(
        t.verify_holder(&t.voucher.holder_key),
        Err(VerifyError::BadSignature)
    );

    // The acceptor refuses the twin and stores nothing; then accepts the original.
    let before = w.shop.store().len();
    let e = w.shop.accept(&twin, &ctx).unwrap_err();
    assert_eq!(e.name(), "bad-signature");
    assert_eq!(w.shop.store().len(), before, "a refusal changes nothing");
    let receipt = w.shop.accept(&payment, &ctx).unwrap();
    wallet.receive_receipt(&receipt).unwrap();

    // Settlement: the twin is rejected and changes nothing; the payment is credited once.
    let mut ledger = Settlement::<4>::new(w.trust.clone(), DEFAULT_GRACE_SECS);
    ledger.register_merchant(&w.cert).unwrap();
    let first = ledger.ingest(&batch(&[&twin]), now).unwrap();
    assert_eq!(
        first.entries[0].outcome,
        Outcome::Rejected(VerifyError::BadSignature.code())
    );
    assert!(
        first.changes.is_empty(),
        "a rejected record changes no state"
    );
    assert!(ledger.voucher(&v.id).is_none());
    let second = ledger.ingest(&batch(&[&payment, &receipt]), now).unwrap();
    assert_eq!(second.entries[0].outcome, Outcome::Credited);
    let again = ledger.ingest(&batch(&[&payment, &twin]), now).unwrap();
    assert_eq!(again.entries[0].outcome, Outcome::Duplicate);
    assert_eq!(
        again.entries[1].outcome,
        Outcome::Rejected(VerifyError::BadSignature.code())
    );
    assert!(
        again.proofs.is_empty(),
        "no fraud proof against the honest holder"
    );
    assert_eq!(
        ledger.credit_of(&MerchantId(*b"SHOP0001"), w.eur),
        Amount(420)
    );
    assert_eq!(ledger.voucher(&v.id).unwrap().credited, Amount(420));
}

/// A P-256 key that signs with a random nonce every time, returning S as it comes (high
/// half the time), as a secure element does.
struct Randomized {
    key: p256::ecdsa::SigningKey,
    rng: RefCell<ChaCha20Rng>,
    calls: RefCell<u32>,
    high: RefCell<u32>,
}

impl HolderSigner for Randomized {
    fn holder_key(&self) -> HolderKey {
        HolderKey::P256(crypto::p256_key_of(self.key.verifying_key()))
    }
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        *self.calls.borrow_mut() += 1;
        let sig: p256::ecdsa::Signature = self
            .key
            .sign_prehash_with_rng(
                &mut *self.rng.borrow_mut(),
                &crypto::holder_digest(domain, message),
            )
            .map_err(|_| EncodeError::Signer)?;
        if sig.normalize_s().is_some() {
            *self.high.borrow_mut() += 1;
        }
        Ok(sig.to_bytes().into())
    }
}

#[test]
fn a_randomized_signers_retry_returns_the_stored_bytes_and_every_s_is_low() {
    let mut w = world();
    let key = Randomized {
        key: p256::ecdsa::SigningKey::random(&mut ChaCha20Rng::from_seed([5; 32])),
        rng: RefCell::new(ChaCha20Rng::from_seed([6; 32])),
        calls: RefCell::new(0),
        high: RefCell::new(0),
    };
    // The signer is randomized: the same input signed twice gives two signatures.
    assert_ne!(
        key.sign_holder(b"d", b"m").unwrap(),
        key.sign_holder(b"d", b"m").unwrap()
    );
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &key).unwrap();
    fund(&mut w, &mut wallet);
    let now = Timestamp(100);
    let ctx = Context {
        trust: &w.trust,
        revocations: None,
        now,
    };
    for i in 0..16u64 {
        let req = w
            .shop
            .create_request(Amount(10 + i), w.eur, None, now, &mut w.rng)
            .unwrap();
        let first = wallet.pay(&req, &w.trust, None, now).unwrap();
        let calls = *key.calls.borrow();
        let retry = wallet.pay(&req, &w.trust, None, now).unwrap();
        assert_eq!(first, retry, "a retry returns the stored bytes");
        assert_eq!(*key.calls.borrow(), calls, "and signs nothing");
        // Whatever S the signer gave, the stored payment verifies strictly: S is low.
        w.shop.accept(&first, &ctx).unwrap();
    }
    assert!(
        *key.high.borrow() > 0,
        "the signer gave some high S, which the wallet brought low"
    );
}

#[test]
fn the_issuer_refuses_a_p256_request_with_a_high_s_and_signs_the_low_one() {
    let w = world();
    let key = P256SigningKey::from_bytes(&[9; 32]).unwrap();
    let wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &key).unwrap();
    let pre = wallet
        .preauth_request(b"card", Amount(700), w.eur, Nonce([1; 16]), Timestamp(10))
        .unwrap();
    assert_eq!(MessageType::of(&pre), Ok(MessageType::PreAuthRequestP256));
    assert_eq!(pre.len(), 2 + 1 + 4 + 2 + 3 + 33 + 16 + 4 + 64);
    let e = VerifiedPreAuth::check(&high_s(&pre)).unwrap_err();
    assert_eq!(e.name(), "bad-signature");
    let ok = VerifiedPreAuth::check(&pre).unwrap();
    assert_eq!(ok.holder_key, HolderKey::P256(key.public_key()));
}

#[test]
fn der_and_uncompressed_forms_from_platform_apis_convert_to_the_wire_forms() {
    let key = P256SigningKey::from_bytes(&[3; 32]).unwrap();
    let inner = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
    // An uncompressed point (04 ‖ X ‖ Y, as SecKeyCopyExternalRepresentation gives it).
    let uncompressed = inner.verifying_key().to_encoded_point(false);
    assert_eq!(uncompressed.as_bytes().len(), 65);
    assert_eq!(
        crypto::p256_key_from_sec1(uncompressed.as_bytes()),
        Some(key.public_key())
    );
    // A DER signature with a high S becomes r ‖ low S, which verifies strictly.
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let digest = crypto::holder_digest(b"offpay/1/payment\0", b"bytes");
    let high = loop {
        let s: p256::ecdsa::Signature = inner.sign_prehash_with_rng(&mut rng, &digest).unwrap();
        if s.normalize_s().is_some() {
            break s;
        }
    };
    let der = high.to_der();
    let raw = crypto::p256_signature_from_der(der.as_bytes()).unwrap();
    assert_eq!(&raw[..32], &high.to_bytes()[..32], "r is kept");
    assert_ne!(&raw[32..], &high.to_bytes()[32..], "S was brought low");
    crypto::verify_p256(&key.public_key(), b"offpay/1/payment\0", b"bytes", &raw).unwrap();
    assert_eq!(
        crypto::verify_p256(
            &key.public_key(),
            b"offpay/1/payment\0",
            b"bytes",
            &high.to_bytes().into()
        ),
        Err(VerifyError::BadSignature)
    );
    assert!(crypto::p256_signature_from_der(&der.as_bytes()[..20]).is_err());
}

/// A P-256 signer whose key answers for another public key.
struct Lying {
    shown: P256SigningKey,
    used: P256SigningKey,
}

impl HolderSigner for Lying {
    fn holder_key(&self) -> HolderKey {
        HolderKey::P256(self.shown.public_key())
    }
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        self.used.sign(domain, message)
    }
}

#[test]
fn a_p256_signature_that_does_not_verify_is_never_stored() {
    let mut w = world();
    let honest = P256SigningKey::from_bytes(&[4; 32]).unwrap();
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &honest).unwrap();
    fund(&mut w, &mut wallet);
    // The same journal opened with a signer that signs with another key.
    let store = wallet.into_store();
    let lying = Lying {
        shown: P256SigningKey::from_bytes(&[4; 32]).unwrap(),
        used: P256SigningKey::from_bytes(&[5; 32]).unwrap(),
    };
    let mut wallet: Wallet<MemStore, _> = Wallet::open(store, lying).unwrap();
    let now = Timestamp(100);
    let req = w
        .shop
        .create_request(Amount(420), w.eur, None, now, &mut w.rng)
        .unwrap();
    let before = wallet.store().len();
    let e = wallet.pay(&req, &w.trust, None, now).unwrap_err();
    assert_eq!(e, Error::Encode(EncodeError::Signer));
    assert_eq!(wallet.store().len(), before, "nothing stored");
    assert_eq!(wallet.remaining(w.eur, now), Amount(5000), "nothing spent");
}
