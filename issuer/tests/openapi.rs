//! The OpenAPI document in the repository describes exactly the routes the service serves,
//! and the service serves that document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::World;
use offpay_issuer::service::{OPENAPI, admin_routes, public_routes};
use std::collections::BTreeSet;

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.insert((path.clone(), method.clone()));
            }
        }
    }
    out
}

#[test]
fn the_document_lists_every_route_and_no_other() {
    let served: BTreeSet<(String, String)> = public_routes()
        .into_iter()
        .chain(admin_routes())
        .map(|(p, m, _)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(documented(), served);
}

#[test]
fn the_service_serves_the_document() {
    let w = World::new();
    let body = ureq::get(format!("{}/v1/openapi.json", w.service.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, file);
    assert_eq!(served["openapi"].as_str().map(|v| &v[..2]), Some("3."));
}
