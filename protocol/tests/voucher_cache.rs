//! The acceptor's cache of verified vouchers skips only work whose answer cannot change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::codec::{decode_signed, encode_signed};
use offpay_protocol::msg::Voucher;
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[test]
fn a_cached_voucher_never_lets_a_forgery_or_a_distrusted_key_through() {
    let issuer = Issuer::new(SigningKey::from_seed(&[1; 32]));
    let mut trust = TrustStore::<4>::new();
    trust
        .add(issuer.public_key(), Timestamp(0), Timestamp(1_000_000))
        .unwrap();
    let eur = Currency::parse("EUR").unwrap();
    let key = SigningKey::from_seed(&[3; 32]);
    let cert = issuer
        .certify_merchant(
            MerchantId(*b"SHOP0001"),
            key.public_key(),
            "Shop",
            Timestamp(0),
            Timestamp(1_000_000),
        )
        .unwrap();
    let mut shop: Acceptor<MemStore<32768, 128>, _> =
        Acceptor::open(MemStore::new(), key, &cert).unwrap();
    let holder = SigningKey::from_seed(&[2; 32]);
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &holder).unwrap();
    let pre = wallet
        .preauth_request(b"card", Amount(5000), eur, Nonce([0; 16]), Timestamp(10))
        .unwrap();
    let terms = VoucherTerms {
        not_before: Timestamp(0),
        not_after: Timestamp(900_000),
        max_single: None,
        max_payments: 50,
    };
    let voucher = issuer.issue_voucher(&pre, terms, &mut rng).unwrap();
    wallet
        .install_voucher(&voucher, &trust, Timestamp(20))
        .unwrap();
    let now = Timestamp(100);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    let req = shop
        .create_request(Amount(10), eur, None, now, &mut rng)
        .unwrap();
    shop.accept(&wallet.pay(&req, &trust, None, now).unwrap(), &ctx)
        .unwrap();

    // The same voucher fields under a forged issuer signature: different bytes, so not cached.
    let v = *decode_signed::<Voucher>(&voucher).unwrap().value();
    let mut forged = vec![0u8; 200];
    let n = encode_signed(&v, &SigningKey::from_seed(&[9; 32]), &mut forged).unwrap();
    forged.truncate(n);
    let req = shop
        .create_request(Amount(10), eur, None, now, &mut rng)
        .unwrap();
    let forged_payment = {
        let p = offpay_protocol::msg::Payment {
            voucher: decode_signed::<Voucher>(&forged).unwrap(),
            seq: 5,
            amount: Amount(10),
            cumulative: Amount(100),
            prev: LinkId([1; 16]),
            merchant_id: MerchantId(*b"SHOP0001"),
            request_nonce: decode_signed::<offpay_protocol::msg::PaymentRequest<'_>>(&req)
                .unwrap()
                .nonce,
            created_at: now,
        };
        let mut b = vec![0u8; 400];
        let n = encode_signed(&p, &holder, &mut b).unwrap();
        b.truncate(n);
        b
    };
    assert_eq!(
        shop.accept(&forged_payment, &ctx),
        Err(Error::Verify(VerifyError::BadSignature))
    );

    // The genuine voucher is cached; once its issuer key is no longer trusted, it is refused.
    let req = shop
        .create_request(Amount(10), eur, None, now, &mut rng)
        .unwrap();
    let p2 = wallet.pay(&req, &trust, None, now).unwrap();
    let mut distrust = trust.clone();
    distrust.remove(&issuer.key_id());
    let ctx2 = Context {
        trust: &distrust,
        revocations: None,
        now,
    };
    assert_eq!(
        shop.accept(&p2, &ctx2),
        Err(Error::Verify(VerifyError::UnknownIssuerKey))
    );
    assert!(shop.accept(&p2, &ctx).is_ok());
}
