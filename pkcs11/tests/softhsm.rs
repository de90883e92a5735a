//! Against a real PKCS#11 token (SoftHSM2, initialised in a temporary directory): a whole
//! payment whose holder key is a non-extractable P-256 key in the token, vouchers and
//! certificates signed by an issuer whose Ed25519 key is in the token, settled once.
//!
//! SoftHSM2 reads its configuration from `SOFTHSM2_CONF` when the module is initialised. The
//! workspace forbids `unsafe` (which `std::env::set_var` needs), so each test runs itself
//! again as a child process with that variable set on a fresh token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_pkcs11::Token;
use offpay_protocol::codec::{MessageType, decode_signed};
use offpay_protocol::crypto::HolderSigner;
use offpay_protocol::msg::sync::ItemsWriter;
use offpay_protocol::msg::{Outcome, Voucher};
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::path::PathBuf;
use std::process::Command;

const LABEL: &str = "offpay-test";
const PIN: &str = "81726354";

fn module() -> PathBuf {
    std::env::var_os("OFFPAY_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// Runs `test` in a child process on a fresh SoftHSM2 token, or, in that child, returns the
/// open token.
fn token(test: &str) -> Option<Token> {
    if std::env::var_os("SOFTHSM2_CONF").is_some() {
        return Some(Token::open(module(), LABEL, PIN).expect("the token opens"));
    }
    assert!(
        module().exists(),
        "SoftHSM2 is not installed ({} is missing): `apt-get install softhsm2`, which \
         `bash scripts/test-all.sh` does, or set OFFPAY_PKCS11_MODULE",
        module().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", LABEL, "--pin", PIN])
        .args(["--so-pin", "5647382910"])
        .output()
        .expect("softhsm2-util runs");
    assert!(
        init.status.success(),
        "softhsm2-util --init-token: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let child = Command::new(std::env::current_exe().unwrap())
        .env("SOFTHSM2_CONF", &conf)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    let err = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success() && out.contains("1 passed"),
        "{test} on SoftHSM2 failed:\n{out}\n{err}"
    );
    print!("{out}");
    None
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
fn a_whole_payment_with_the_holder_and_issuer_keys_in_a_pkcs11_token() {
    let Some(token) = token("a_whole_payment_with_the_holder_and_issuer_keys_in_a_pkcs11_token")
    else {
        return;
    };
    let holder = token.generate_p256("holder").unwrap();
    let issuer_key = token.generate_ed25519("issuer").unwrap();
    // Neither private key can leave the token.
    assert!(token.is_held(holder.private_object()).unwrap());
    assert!(token.is_held(issuer_key.private_object()).unwrap());
    let issuer_public = issuer_key.public_key();
    let issuer = Issuer::new(issuer_key);

    let mut trust = TrustStore::<4>::new();
    trust
        .add(issuer_public, Timestamp(0), Timestamp(1_000_000))
        .unwrap();
    let merchant = SigningKey::from_seed(&[3; 32]);
    let shop_id = MerchantId(*b"SHOP0001");
    let cert = issuer
        .certify_merchant(
            shop_id,
            merchant.public_key(),
            "Shop",
            Timestamp(0),
            Timestamp(1_000_000),
        )
        .unwrap()
        .to_vec();
    let mut shop: Acceptor<MemStore<32768, 128>, _> =
        Acceptor::open(MemStore::new(), merchant, &cert).unwrap();
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder.clone()).unwrap();
    let eur = Currency::parse("EUR").unwrap();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);

    // Pre-authorization: signed in the token by the holder key, answered by the issuer key
    // in the same token with a P-256 voucher.
    let pre = wallet
        .preauth_request(b"card", Amount(5000), eur, Nonce([2; 16]), Timestamp(10))
        .unwrap();
    assert_eq!(MessageType::of(&pre), Ok(MessageType::PreAuthRequestP256));
    let terms = VoucherTerms {
        not_before: Timestamp(0),
        not_after: Timestamp(900_000),
        max_single: None,
        max_payments: 20,
    };
    let voucher = issuer.issue_voucher(&pre, terms, &mut rng).unwrap();
    let v = decode_signed::<Voucher>(&voucher).unwrap();
    assert_eq!(v.holder_key, holder.holder_key());
    v.verify(&issuer_public).unwrap();
    wallet
        .install_voucher(&voucher, &trust, Timestamp(20))
        .unwrap();

    // Twelve payments: SoftHSM2 does not normalize S, so some of its signatures come back
    // high; every stored payment must still verify strictly.
    let now = Timestamp(100);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    let mut ledger = Settlement::<4>::new(trust.clone(), DEFAULT_GRACE_SECS);
    ledger.register_merchant(&cert).unwrap();
    let mut records = Vec::new();
    for i in 0..12u64 {
        let req = shop
            .create_request(Amount(100 + i), eur, None, now, &mut rng)
            .unwrap();
        let payment = wallet.pay(&req, &trust, None, now).unwrap();
        assert_eq!(
            wallet.pay(&req, &trust, None, now).unwrap(),
            payment,
            "a retry returns the stored bytes"
        );
        let receipt = shop.accept(&payment, &ctx).unwrap();
        wallet.receive_receipt(&receipt).unwrap();
        records.push(payment.to_vec());
        records.push(receipt.to_vec());
    }
    let high = (0..16)
        .filter(|_| {
            let sig = holder.sign_holder(b"d", b"m").unwrap();
            offpay_protocol::crypto::p256_low_s(&sig).unwrap() != sig
        })
        .count();
    println!("SoftHSM2 gave {high} high-S signatures of 16 (the wallet brings them low)");
    let refs: Vec<&[u8]> = records.iter().map(|r| &r[..]).collect();
    let report = ledger.ingest(&batch(&refs), now).unwrap();
    assert!(
        report
            .entries
            .iter()
            .all(|e| e.outcome == Outcome::Credited),
        "every payment and receipt credited"
    );
    let total: u64 = (0..12).map(|i| 100 + i).sum();
    assert_eq!(ledger.credit_of(&shop_id, eur), Amount(total));
    let again = ledger.ingest(&batch(&refs), now).unwrap();
    assert!(
        again
            .entries
            .iter()
            .all(|e| e.outcome == Outcome::Duplicate)
    );
    assert_eq!(
        ledger.credit_of(&shop_id, eur),
        Amount(total),
        "credited once"
    );

    // The keys are found again by label, as an app or the issuer service would after a
    // restart, and are the same keys.
    let again_holder = token.p256("holder").unwrap();
    assert_eq!(again_holder.holder_key(), holder.holder_key());
    assert_eq!(token.ed25519("issuer").unwrap().public_key(), issuer_public);
    assert!(token.p256("nobody").is_err());
}
