//! An in-process issuer service, funded customers and certified tills for the SDK's tests.

#![allow(clippy::unwrap_used, dead_code, missing_docs)]

use offpay_issuer::api;
use offpay_issuer::client::Client;
use offpay_issuer::server::{self, InProcess};
use offpay_sdk::{Config, CustomerWallet, MerchantTill, Money, TillEnrollment};
use std::path::Path;

pub struct World {
    _tmp: tempfile::TempDir,
    pub root: std::path::PathBuf,
    pub service: InProcess,
    pub admin: Client,
}

pub fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut sc = server::Config::new(&root.join("issuer"));
    sc.listen = ([127, 0, 0, 1], 0).into();
    sc.admin_listen = ([127, 0, 0, 1], 0).into();
    let service = InProcess::start(sc).unwrap();
    let admin = Client::new(&service.admin_url())
        .unwrap()
        .with_admin_token(service.admin_token());
    World {
        _tmp: tmp,
        root,
        service,
        admin,
    }
}

pub fn eur(text: &str) -> Money {
    Money::parse(text, "EUR").unwrap()
}

/// A wallet named `name` holding a 50.00 EUR voucher from an instrument funded with `minor`.
pub fn wallet(w: &World, name: &str, minor: u64) -> CustomerWallet {
    let card = w.admin.create_instrument("EUR", None).unwrap();
    w.admin
        .fund(&card.instrument.id, minor, &format!("fund-{name}"))
        .unwrap();
    let wallet =
        CustomerWallet::create(&w.root.join(name), Config::issuer(&w.service.url())).unwrap();
    wallet
        .pre_authorize_instrument(&card.instrument.id, &card.credential, eur("50"))
        .unwrap();
    wallet
}

/// A till certified as merchant `id`, in `dir`, configured with `config` once enrolled.
pub fn till(w: &World, dir: &Path, id: &str, config: Config) -> MerchantTill {
    let mut e = TillEnrollment::start(dir, Config::issuer(&w.service.url())).unwrap();
    let cert = w
        .admin
        .certify_merchant(&api::NewMerchant {
            merchant_id: api::merchant_hex(&offpay_sdk::merchant_id(id).unwrap()),
            merchant_key: hex::encode(e.merchant_key()),
            display_name: format!("Shop {id}"),
            days: 30,
        })
        .unwrap();
    drop(e.finish(&cert).unwrap());
    MerchantTill::open(dir, config).unwrap()
}

/// A till enrolled once (online at its set-up), then opened with an issuer it cannot reach.
pub fn offline_till(w: &World, dir: &Path) -> MerchantTill {
    till(w, dir, "STALL", Config::issuer("http://127.0.0.1:9"))
}
