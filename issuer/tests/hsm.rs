//! The `offpay-issuer` binary signing with an Ed25519 key held in a PKCS#11 token (SoftHSM2,
//! initialised in a temporary directory): no key file is written, vouchers, certificates and
//! sync reports verify under the key the token holds, a P-256 holder pays with its voucher and
//! is settled, and a restart finds the same key in the token. A wrong PIN stops the start.

#![cfg(feature = "pkcs11")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_issuer::api;
use offpay_issuer::client::Client;
use offpay_protocol::codec::{Message, MessageType, decode_signed};
use offpay_protocol::crypto::P256SigningKey;
use offpay_protocol::msg::{SyncBatch, SyncReport, Voucher};
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const TOKEN: &str = "offpay-hsm";
const PIN: &str = "24681357";

fn module() -> PathBuf {
    std::env::var_os("OFFPAY_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// A fresh SoftHSM2 token in `dir`; its configuration file.
fn softhsm(dir: &Path) -> PathBuf {
    assert!(
        module().exists(),
        "SoftHSM2 is not installed ({} is missing): `apt-get install softhsm2`, which \
         `bash scripts/test-all.sh` does",
        module().display()
    );
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", TOKEN, "--pin", PIN])
        .args(["--so-pin", "1357924680"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

struct Service {
    child: Child,
    public: Client,
    admin: Client,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(conf: &Path, data: &Path, pin: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_offpay-issuer"));
    c.arg("serve")
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--pkcs11-module")
        .arg(module())
        .args(["--pkcs11-token", TOKEN, "--pkcs11-key", "issuer-2027"])
        .env("SOFTHSM2_CONF", conf)
        .env("OFFPAY_PKCS11_PIN", pin);
    c
}

fn start(conf: &Path, data: &Path) -> Service {
    let mut child = command(conf, data, PIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = |after: &str| -> String {
        let rest = line.split(after).nth(1).unwrap_or_else(|| panic!("{line}"));
        rest.split([',', ' ']).next().unwrap().to_string()
    };
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    Service {
        public: Client::new(&url("public API on ")).unwrap(),
        admin: Client::new(&url("admin API on "))
            .unwrap()
            .with_admin_token(token.trim()),
        child,
    }
}

fn trust_of(public: &Client) -> (TrustStore<4>, PublicKey) {
    let info = public.issuer_info().unwrap();
    assert_eq!(info.keys.len(), 1);
    let k = &info.keys[0];
    let key = api::parse_key(&k.public_key).unwrap();
    let mut trust = TrustStore::new();
    trust
        .add(key, Timestamp(k.not_before), Timestamp(k.not_after))
        .unwrap();
    (trust, key)
}

#[test]
fn the_issuer_service_signs_with_a_key_held_in_a_pkcs11_token() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm(dir.path());
    let data = dir.path().join("issuer");
    let s = start(&conf, &data);
    assert!(
        !data.join("issuer.key").exists(),
        "no key file: the key is in the token"
    );
    assert!(data.join("issuer.window").exists());
    let (trust, issuer_key) = trust_of(&s.public);
    let published = |c: &Client| {
        let k = &c.issuer_info().unwrap().keys[0];
        (k.public_key.clone(), k.not_before, k.not_after)
    };
    let first = published(&s.public);

    // A merchant certified and a P-256 holder pre-authorized, both signed in the token.
    let merchant = SigningKey::from_seed(&[3; 32]);
    let cert = s
        .admin
        .certify_merchant(&api::NewMerchant {
            merchant_id: hex::encode(b"HSMSHOP1"),
            merchant_key: hex::encode(merchant.public_key().0),
            display_name: "HSM shop".into(),
            days: 365,
        })
        .unwrap();
    decode_signed::<msg::MerchantCertificate<'_>>(&cert)
        .unwrap()
        .verify(&issuer_key)
        .unwrap();
    let created = s.admin.create_instrument("EUR", Some("card")).unwrap();
    s.admin
        .fund(&created.instrument.id, 10_000, "initial")
        .unwrap();
    let holder = P256SigningKey::from_bytes(&[7; 32]).unwrap();
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), &holder).unwrap();
    let now = Timestamp(
        u32::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap(),
    );
    let eur = Currency::parse("EUR").unwrap();
    let pre = wallet
        .preauth_request(
            created.instrument.id.as_bytes(),
            Amount(3000),
            eur,
            Nonce([5; 16]),
            now,
        )
        .unwrap();
    let voucher = s.public.preauthorize(&pre, &created.credential).unwrap();
    assert_eq!(MessageType::of(&voucher), Ok(MessageType::VoucherP256));
    decode_signed::<Voucher>(&voucher)
        .unwrap()
        .verify(&issuer_key)
        .unwrap();
    wallet.install_voucher(&voucher, &trust, now).unwrap();

    // Paid offline, synced by the wallet: the report is signed in the token too.
    let mut shop: Acceptor<MemStore<32768, 128>, _> =
        Acceptor::open(MemStore::new(), merchant, &cert).unwrap();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    let req = shop
        .create_request(Amount(1250), eur, None, now, &mut rng)
        .unwrap();
    let payment = wallet.pay(&req, &trust, None, now).unwrap();
    let receipt = shop.accept(&payment, &ctx).unwrap();
    wallet.receive_receipt(&receipt).unwrap();
    let mut buf = vec![0u8; <SyncBatch<'_> as Message<'_>>::MAX_LEN];
    let n = wallet.sync_batch(&mut buf).unwrap();
    let report = s.public.sync(&buf[..n]).unwrap();
    decode_signed::<SyncReport<'_>>(&report)
        .unwrap()
        .verify(&issuer_key)
        .unwrap();
    wallet.apply_report(&report, &trust, now).unwrap();
    let credits = s.admin.credits().unwrap();
    assert_eq!(credits.len(), 1);
    assert_eq!(credits[0].amount_minor, 1250);
    drop(s);

    // A restart finds the same key in the token, and the same window.
    let s = start(&conf, &data);
    assert_eq!(published(&s.public), first);
    drop(s);

    // Starts that must not sign with the wrong key refuse, and say why: a wrong PIN; another
    // data directory without the window file while the token holds the label (it would
    // publish another window); a data directory that signs with a software key.
    let refused = |data: &Path, pin: &str| {
        let mut bad = command(&conf, data, pin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = bad.wait().unwrap();
        let mut err = String::new();
        bad.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(!status.success(), "{err}");
        err
    };
    assert!(refused(&data, "00000000").contains("PKCS#11"));
    let other = dir.path().join("other");
    assert!(refused(&other, PIN).contains("already holds a key labelled"));
    assert!(!other.join("issuer.window").exists());
    let software = dir.path().join("software");
    std::fs::create_dir(&software).unwrap();
    std::fs::write(software.join("issuer.key"), "00 0 1\n").unwrap();
    assert!(refused(&software, PIN).contains("software key in issuer.key"));
    // The window file names the key: a file naming another key is refused.
    let text = std::fs::read_to_string(data.join("issuer.window")).unwrap();
    assert!(text.starts_with(&hex::encode(issuer_key.0)), "{text}");
    std::fs::write(
        data.join("issuer.window"),
        text.replacen(&hex::encode(issuer_key.0), &"ab".repeat(32), 1),
    )
    .unwrap();
    assert!(refused(&data, PIN).contains("is not the issuer key"));
}
