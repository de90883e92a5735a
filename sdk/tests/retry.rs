//! A pre-authorization whose answer is lost on the way back (the issuer reserved the money,
//! the phone saw the connection drop) is retried with the same request and reserves nothing
//! twice; the sync's steps that fail do not hide what the sync did.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{eur, till, wallet, world};
use offpay_sdk::{Config, CustomerWallet, Error};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One HTTP/1.1 message (head and a Content-Length body) from `r`.
fn message(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        head.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    Some(head)
}

/// A loopback proxy to `upstream` that forwards every request, and drops the answer to the
/// first `drops` requests that start with `lost` (the issuer did the work; the phone never
/// hears of it).
fn proxy(upstream: String, lost: &'static str, drops: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let up = upstream.clone();
            let d = d.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut client = client;
                let server = TcpStream::connect(up.trim_start_matches("http://")).unwrap();
                let mut from_server = BufReader::new(server.try_clone().unwrap());
                let mut server = server;
                while let Some(req) = message(&mut reader) {
                    server.write_all(&req).unwrap();
                    let Some(resp) = message(&mut from_server) else {
                        return;
                    };
                    if req.starts_with(lost.as_bytes()) && d.load(Ordering::SeqCst) < drops {
                        d.fetch_add(1, Ordering::SeqCst);
                        return; // the connection drops with the answer unsent
                    }
                    if client.write_all(&resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, dropped)
}

#[test]
fn a_lost_answer_is_retried_without_reserving_twice() {
    let w = world();
    let card = w.admin.create_instrument("EUR", None).unwrap();
    w.admin.fund(&card.instrument.id, 10_000, "fund").unwrap();
    let (url, dropped) = proxy(w.service.url(), "POST /v1/preauthorizations", 1);
    let wallet = CustomerWallet::create(&w.root.join("wallet"), Config::issuer(&url)).unwrap();
    let amount = eur("30.00");
    let first = wallet.pre_authorize_instrument(&card.instrument.id, &card.credential, amount);
    assert!(
        matches!(
            first,
            Err(Error::Offline { .. }) | Err(Error::IssuerFailed { .. })
        ),
        "{first:?}"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    // The issuer did reserve it: the answer alone was lost.
    let i = w.admin.instrument(&card.instrument.id).unwrap();
    assert_eq!((i.reserved_minor, i.available_minor), (3000, 7000));
    assert!(wallet.balances().unwrap().is_empty());

    // The same call again (even after a restart) gets the voucher granted the first time.
    drop(wallet);
    let wallet = CustomerWallet::open(&w.root.join("wallet"), Config::default()).unwrap();
    let auth = wallet
        .pre_authorize_instrument(&card.instrument.id, &card.credential, amount)
        .unwrap();
    assert_eq!(auth.amount, amount);
    let i = w.admin.instrument(&card.instrument.id).unwrap();
    assert_eq!(
        (i.reserved_minor, i.available_minor),
        (3000, 7000),
        "reserved once"
    );
    assert_eq!(wallet.balances().unwrap().len(), 1);
    assert!(!w.root.join("wallet/preauth.pending").exists());

    // A new pre-authorization is a new request.
    wallet
        .pre_authorize_instrument(&card.instrument.id, &card.credential, eur("10.00"))
        .unwrap();
    let i = w.admin.instrument(&card.instrument.id).unwrap();
    assert_eq!(i.reserved_minor, 4000);
    assert_eq!(wallet.balances().unwrap().len(), 2);
}

#[test]
fn a_sync_whose_last_step_fails_still_reports_what_it_did() {
    let w = world();
    let alice = wallet(&w, "alice", 10_000);
    let (url, dropped) = proxy(w.service.url(), "GET /v1/revocations", 1);
    let shop = till(&w, &w.root.join("shop"), "SHOP", Config::issuer(&url));
    let paid = alice
        .pay(&shop.create_request(eur("2.00"), None).unwrap())
        .unwrap();
    shop.accept(&paid.bytes).unwrap();
    let s = shop.sync_payments().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_eq!(
        (s.records_sent, s.credited, s.acknowledged),
        (2, 2, 2),
        "{s:?}"
    );
    assert_eq!(s.incomplete.len(), 1, "{s:?}");
    assert!(!s.revocation_list_updated);
    // The next sync sends nothing again and completes the step.
    let s = shop.sync_payments().unwrap();
    assert_eq!(s.records_sent, 0);
    assert!(
        s.incomplete.is_empty() && s.revocation_list_updated,
        "{s:?}"
    );
}
