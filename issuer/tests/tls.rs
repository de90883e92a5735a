//! With `--tls-cert` and `--tls-key` both APIs speak HTTPS: a client that trusts the
//! certificate pre-authorizes; plain HTTP and a client without that trust are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_issuer::client::{Client, ClientError};
use offpay_issuer::server::{Config, InProcess};

#[test]
fn both_listeners_speak_tls_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key_pem).unwrap();
    let mut config = Config::new(&dir.path().join("issuer"));
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = ([127, 0, 0, 1], 0).into();
    config.tls = Some((dir.path().join("cert.pem"), dir.path().join("key.pem")));
    let service = InProcess::start(config).unwrap();
    assert!(service.url().starts_with("https://127.0.0.1:"));

    let public = Client::with_tls_roots(&service.url(), cert_pem.as_bytes()).unwrap();
    let info = public.issuer_info().unwrap();
    assert_eq!(info.keys.len(), 1);
    let admin = Client::with_tls_roots(&service.admin_url(), cert_pem.as_bytes())
        .unwrap()
        .with_admin_token(service.admin_token());
    let created = admin.create_instrument("EUR", None).unwrap();
    assert_eq!(created.instrument.currency, "EUR");

    // A client that does not trust the certificate does not talk to the service.
    let stranger = Client::new(&service.url()).unwrap();
    assert!(matches!(
        stranger.issuer_info(),
        Err(ClientError::Server(_) | ClientError::Offline(_))
    ));
    // Plain HTTP to a TLS listener gets no answer of the API.
    let plain = Client::new(&service.url().replace("https://", "http://")).unwrap();
    assert!(plain.issuer_info().is_err());
}
