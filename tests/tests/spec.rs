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
        MessageType::PreAuthRequest | MessageType::PreAuthRequestP256 => {
            <PreAuthRequest<'_> as Message<'_>>::max_len_of(t)
        }
        MessageType::Voucher | MessageType::VoucherP256 => <Voucher as Message<'_>>::max_len_of(t),
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

/// §9 is generated from the enums' own code tables: each row is there, whole (code, name,
/// Rust variant and meaning), so no table can drift from `code()` and `name()`.
#[test]
fn every_error_code_is_in_the_error_table_as_its_enum_defines_it() {
    use offpay_protocol::codes::Codes;
    use offpay_protocol::error::*;
    fn rows<E: Codes<Code = u16>>(spec: &str, enum_name: &str) -> usize {
        for r in E::TABLE {
            let doc: Vec<&str> = r.doc.lines().map(str::trim).collect();
            let row = format!(
                "| {} | `{}` | `{enum_name}::{}` | {} |",
                r.code,
                r.name,
                r.variant,
                doc.join(" ")
            );
            assert!(spec.contains(&row), "SPEC §9 lacks {row}");
        }
        E::TABLE.len()
    }
    let spec = spec();
    let n = rows::<DecodeError>(&spec, "DecodeError")
        + rows::<VerifyError>(&spec, "VerifyError")
        + rows::<Rejection>(&spec, "Rejection")
        + rows::<StoreError>(&spec, "StoreError")
        + rows::<EncodeError>(&spec, "EncodeError");
    assert_eq!(n, ALL.len(), "every protocol error is in one table");
    for e in ALL {
        assert_eq!(Error::from_code(e.code()), Some(*e));
    }
    rows::<offpay_qr::QrError>(&spec, "QrError");
    rows::<offpay_ble::BleError>(&spec, "BleError");
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
