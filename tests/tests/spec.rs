//! SPEC.md stays true to the code: the size table, the error table and the hex examples.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::codec::{Message, MessageType};
use offpay_protocol::msg::*;

fn spec() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../SPEC.md"))
        .unwrap()
}

#[test]
fn the_type_table_gives_every_message_its_byte_and_maximum_size() {
    let spec = spec();
    let max = |t: MessageType| match t {
        MessageType::PreAuthRequest => <PreAuthRequest<'_> as Message<'_>>::MAX_LEN,
        MessageType::Voucher => <Voucher as Message<'_>>::MAX_LEN,
        MessageType::MerchantCertificate => <MerchantCertificate<'_> as Message<'_>>::MAX_LEN,
        MessageType::PaymentRequest => <PaymentRequest<'_> as Message<'_>>::MAX_LEN,
        MessageType::Payment => <Payment<'_> as Message<'_>>::MAX_LEN,
        MessageType::Receipt => <Receipt as Message<'_>>::MAX_LEN,
        MessageType::RevocationList => <RevocationList<'_> as Message<'_>>::MAX_LEN,
        MessageType::SyncBatch => <SyncBatch<'_> as Message<'_>>::MAX_LEN,
        MessageType::SyncReport => <SyncReport<'_> as Message<'_>>::MAX_LEN,
        MessageType::FraudProof => <FraudProof<'_> as Message<'_>>::MAX_LEN,
        _ => unreachable!(),
    };
    for t in MessageType::ALL {
        let n = max(t);
        let grouped = if n >= 1000 {
            format!("{},{:03}", n / 1000, n % 1000)
        } else {
            n.to_string()
        };
        let row = spec
            .lines()
            .find(|l| l.starts_with(&format!("| `0x{:02X}` | {} |", t as u8, t.name())))
            .unwrap_or_else(|| panic!("no row for {}", t.name()));
        assert!(
            row.contains(&format!("| {grouped} |")),
            "{}: SPEC says {row}, code says {n}",
            t.name()
        );
    }
}

#[test]
fn every_error_code_is_in_the_error_table() {
    let spec = spec();
    for e in offpay_protocol::error::ALL {
        assert!(
            spec.contains(&format!("| {} | `{}` |", e.code(), e.name())),
            "{e:?}"
        );
    }
    for e in [
        offpay_qr::QrError::WrongPrefix,
        offpay_qr::QrError::ForgedHeader,
        offpay_qr::QrError::Encode,
    ] {
        assert!(
            spec.contains(&format!("| {} | `{}` |", e.code(), e.name())),
            "{e:?}"
        );
    }
    for e in offpay_ble::BleError::ALL {
        assert!(
            spec.contains(&format!("| {} | `{}` |", e.code(), e.name())),
            "{e:?}"
        );
    }
}

#[test]
fn every_hex_example_is_its_vector() {
    let spec = spec();
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(offpay_conformance::vectors_dir().join("messages.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    let mut lines = spec.lines();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix("Example (vector `") else {
            continue;
        };
        let name = rest.split('`').next().unwrap();
        lines.next();
        assert_eq!(lines.next(), Some("```text"));
        let hex: String = lines.by_ref().take_while(|l| *l != "```").collect();
        let v = json["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        assert_eq!(hex, v["hex"].as_str().unwrap(), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 10, "one example per message type");
}
