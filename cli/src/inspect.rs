//! `offpay inspect FILE|HEX|IMAGE`: decode any offpay message, print its fields, its size and
//! the QR version it needs, and verify every signature this data directory can check.

use crate::data::{role_dir, show_merchant, show_time};
use crate::fail::{Failure, Result};
use crate::qrio;
use crate::roles::Output;
use offpay_protocol::codec::{SignedMessage, decode_unsigned};
use offpay_protocol::msg::{
    FraudProof, MerchantCertificate, Payment, PaymentRequest, PreAuthRequest, Receipt,
    RevocationList, SyncBatch, SyncReport, Voucher,
};
use offpay_protocol::{
    Error, MessageType, PublicKey, Signed, Timestamp, VerifyError, decode_signed,
};
use offpay_qr::EcLevel;
use offpay_sdk::Trust;
use serde_json::{Map, Value, json};
use std::path::Path;

/// Reads the message `input` names: an image file with a QR code, a file holding the QR text,
/// hex or raw bytes, or hex / QR text given on the command line.
pub fn load(input: &str) -> Result<(Vec<u8>, &'static str)> {
    let path = Path::new(input);
    if path.is_file() {
        let meta =
            std::fs::metadata(path).map_err(|e| Failure::new(format!("{input}: {e}"), ""))?;
        if meta.len() > 16 * 1024 * 1024 {
            return Err(Failure::new(
                format!("{input} is larger than 16 MiB"),
                "give a QR image, a message file or hex",
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Failure::new(format!("{input}: {e}"), ""))?;
        let image = bytes.starts_with(b"\x89PNG")
            || bytes.starts_with(&[0xff, 0xd8])
            || bytes.starts_with(b"GIF8")
            || bytes.starts_with(b"BM");
        if image {
            return Ok((qrio::read_image(path)?, "QR image"));
        }
        if let Ok(text) = std::str::from_utf8(&bytes)
            && let Some(found) = from_text(text.trim(), input)?
        {
            return Ok(found);
        }
        return Ok((bytes, "file"));
    }
    match from_text(input.trim(), "the argument")? {
        Some(found) => Ok(found),
        None => Err(Failure::new(
            format!("'{input}' is neither a file, nor hex, nor an offpay QR text"),
            "give the path of a QR image or message file, or the message in hex",
        )),
    }
}

fn from_text(text: &str, what: &str) -> Result<Option<(Vec<u8>, &'static str)>> {
    if text.starts_with("OP1:") || text.to_ascii_uppercase().starts_with("UR:") {
        return Ok(Some((qrio::from_text(text, what)?, "QR text")));
    }
    let compact: String = text.split_whitespace().collect();
    if !compact.is_empty()
        && let Ok(b) = hex::decode(&compact)
    {
        return Ok(Some((b, "hex")));
    }
    Ok(None)
}

/// Trust anchors and merchant keys this data directory knows.
struct Known {
    trust: Option<Trust>,
    data: std::path::PathBuf,
}

impl Known {
    fn new(data: &Path) -> Self {
        let trust = ["issuer", "wallet", "merchant"]
            .into_iter()
            .map(|r| role_dir(data, r))
            .find(|d| d.join("issuer.pub").exists())
            .and_then(|d| offpay_sdk::read_trust(&d).ok());
        Known {
            trust,
            data: data.to_path_buf(),
        }
    }

    /// A merchant's key, from this directory's merchant certificate.
    fn merchant_key(&self, id: &offpay_protocol::MerchantId) -> Option<PublicKey> {
        let cert = offpay_sdk::read_certificate(&role_dir(&self.data, "merchant")).ok();
        if let Some(c) = cert
            .as_deref()
            .and_then(|c| decode_signed::<MerchantCertificate<'_>>(c).ok())
            && c.merchant_id == *id
        {
            return Some(c.merchant_key);
        }
        None
    }
}

/// What inspecting found.
struct Report {
    kind: &'static str,
    fields: Vec<(String, String)>,
    json: Map<String, Value>,
    /// Each check: what, and `Ok(how)` or `Err(why)`.
    checks: Vec<(String, std::result::Result<String, String>)>,
}

impl Report {
    fn field(&mut self, name: &str, text: impl Into<String>, value: Value) {
        self.fields.push((name.into(), text.into()));
        self.json.insert(name.into(), value);
    }
    fn check(&mut self, what: &str, r: std::result::Result<String, String>) {
        self.checks.push((what.into(), r));
    }
}

fn ver(e: VerifyError) -> String {
    Error::from(e).to_string()
}

fn issuer_check<'a, T: SignedMessage<'a>>(
    k: &Known,
    m: &Signed<'a, T>,
    key_id: &offpay_protocol::KeyId,
    at: Timestamp,
) -> std::result::Result<String, String> {
    match &k.trust {
        None => Ok("not checked: no trusted issuer key in this data directory".into()),
        Some(t) => t
            .verify(m, key_id, at)
            .map(|()| format!("valid under trusted issuer key {key_id}"))
            .map_err(ver),
    }
}

fn voucher_fields(r: &mut Report, prefix: &str, v: &Signed<'_, Voucher>) {
    let p = |n: &str| format!("{prefix}{n}");
    r.field(&p("id"), v.id.to_string(), json!(v.id.to_string()));
    r.field(
        &p("issuer key id"),
        v.issuer_key_id.to_string(),
        json!(v.issuer_key_id.to_string()),
    );
    r.field(
        &p("holder key"),
        format!(
            "{} ({})",
            hex::encode(v.holder_key.as_bytes()),
            v.holder_key.algorithm().name()
        ),
        json!(hex::encode(v.holder_key.as_bytes())),
    );
    r.field(
        &p("limit"),
        offpay_sdk::show_money(v.limit.0, v.currency.as_str()),
        json!({"minor": v.limit.0, "currency": v.currency.as_str()}),
    );
    r.field(
        &p("valid"),
        format!("{} to {}", show_time(v.not_before), show_time(v.not_after)),
        json!({"not_before": v.not_before.0, "not_after": v.not_after.0}),
    );
    r.field(
        &p("policy"),
        format!(
            "at most {} per payment, at most {} payments",
            offpay_sdk::show_money(v.policy.max_single.0, v.currency.as_str()),
            v.policy.max_payments
        ),
        json!({"max_single_minor": v.policy.max_single.0, "max_payments": v.policy.max_payments}),
    );
}

fn payment_fields(r: &mut Report, k: &Known, prefix: &str, p: &Signed<'_, Payment<'_>>) {
    let n = |s: &str| format!("{prefix}{s}");
    let cur = p.voucher.currency;
    r.field(
        &n("payment id"),
        p.id().to_string(),
        json!(p.id().to_string()),
    );
    r.field(
        &n("amount"),
        offpay_sdk::show_money(p.amount.0, cur.as_str()),
        json!({"minor": p.amount.0, "currency": cur.as_str()}),
    );
    r.field(
        &n("merchant"),
        show_merchant(&p.merchant_id),
        json!(show_merchant(&p.merchant_id)),
    );
    r.field(&n("sequence"), p.seq.to_string(), json!(p.seq));
    r.field(
        &n("cumulative"),
        offpay_sdk::show_money(p.cumulative.0, cur.as_str()),
        json!(p.cumulative.0),
    );
    r.field(
        &n("previous link"),
        p.prev.to_string(),
        json!(p.prev.to_string()),
    );
    r.field(
        &n("request nonce"),
        p.request_nonce.to_string(),
        json!(p.request_nonce.to_string()),
    );
    r.field(
        &n("created"),
        show_time(p.created_at),
        json!(p.created_at.0),
    );
    voucher_fields(r, &n("voucher "), &p.voucher);
    let c = issuer_check(
        k,
        &p.voucher,
        &p.voucher.issuer_key_id,
        p.voucher.not_before,
    );
    r.check(&n("voucher signature"), c);
    r.check(
        &n("holder signature"),
        p.verify_holder(&p.voucher.holder_key)
            .map(|()| "valid under the voucher's holder key".into())
            .map_err(ver),
    );
}

fn describe(bytes: &[u8], k: &Known, now: Timestamp) -> std::result::Result<Report, Error> {
    let t = MessageType::of(bytes)?;
    let mut r = Report {
        kind: "",
        fields: Vec::new(),
        json: Map::new(),
        checks: Vec::new(),
    };
    match t {
        MessageType::PreAuthRequest | MessageType::PreAuthRequestP256 => {
            let m = decode_signed::<PreAuthRequest<'_>>(bytes)?;
            r.kind = "PreAuthRequest";
            r.field(
                "instrument",
                String::from_utf8_lossy(m.instrument_id),
                json!(hex::encode(m.instrument_id)),
            );
            r.field(
                "amount",
                offpay_sdk::show_money(m.amount.0, m.currency.as_str()),
                json!({"minor": m.amount.0, "currency": m.currency.as_str()}),
            );
            r.field(
                "holder key",
                format!(
                    "{} ({})",
                    hex::encode(m.holder_key.as_bytes()),
                    m.holder_key.algorithm().name()
                ),
                json!(hex::encode(m.holder_key.as_bytes())),
            );
            r.field("created", show_time(m.created_at), json!(m.created_at.0));
            r.check(
                "holder signature",
                m.verify_holder(&m.holder_key)
                    .map(|()| "valid under the holder key it carries".into())
                    .map_err(ver),
            );
        }
        MessageType::Voucher | MessageType::VoucherP256 => {
            let m = decode_signed::<Voucher>(bytes)?;
            r.kind = "Voucher";
            voucher_fields(&mut r, "", &m);
            r.check(
                "issuer signature",
                issuer_check(k, &m, &m.issuer_key_id, m.not_before),
            );
            r.check(
                "validity now",
                m.check_time(now)
                    .map(|()| "valid now".into())
                    .map_err(|e| Error::from(e).to_string()),
            );
        }
        MessageType::MerchantCertificate => {
            let m = decode_signed::<MerchantCertificate<'_>>(bytes)?;
            r.kind = "MerchantCertificate";
            r.field(
                "merchant",
                show_merchant(&m.merchant_id),
                json!(show_merchant(&m.merchant_id)),
            );
            r.field("name", m.display_name, json!(m.display_name));
            r.field(
                "merchant key",
                hex::encode(m.merchant_key.0),
                json!(hex::encode(m.merchant_key.0)),
            );
            r.field(
                "valid",
                format!("{} to {}", show_time(m.not_before), show_time(m.not_after)),
                json!({"not_before": m.not_before.0, "not_after": m.not_after.0}),
            );
            r.check(
                "issuer signature",
                issuer_check(k, &m, &m.issuer_key_id, m.not_before),
            );
        }
        MessageType::PaymentRequest => {
            let m = decode_signed::<PaymentRequest<'_>>(bytes)?;
            r.kind = "PaymentRequest";
            r.field(
                "amount",
                offpay_sdk::show_money(m.amount.0, m.currency.as_str()),
                json!({"minor": m.amount.0, "currency": m.currency.as_str()}),
            );
            r.field(
                "merchant",
                format!(
                    "{} ({})",
                    m.certificate.display_name,
                    show_merchant(&m.certificate.merchant_id)
                ),
                json!(show_merchant(&m.certificate.merchant_id)),
            );
            r.field("reference", m.reference.unwrap_or("-"), json!(m.reference));
            r.field("nonce", m.nonce.to_string(), json!(m.nonce.to_string()));
            r.field("created", show_time(m.created_at), json!(m.created_at.0));
            let c = &m.certificate;
            r.check(
                "certificate signature",
                issuer_check(k, c, &c.issuer_key_id, c.not_before),
            );
            r.check(
                "merchant signature",
                m.verify(&c.merchant_key)
                    .map(|()| "valid under the certified merchant key".into())
                    .map_err(ver),
            );
        }
        MessageType::Payment => {
            let m = decode_signed::<Payment<'_>>(bytes)?;
            r.kind = "Payment";
            payment_fields(&mut r, k, "", &m);
        }
        MessageType::Receipt => {
            let m = decode_signed::<Receipt>(bytes)?;
            r.kind = "Receipt";
            r.field(
                "payment id",
                m.payment_id.to_string(),
                json!(m.payment_id.to_string()),
            );
            r.field(
                "merchant",
                show_merchant(&m.merchant_id),
                json!(show_merchant(&m.merchant_id)),
            );
            r.field("accepted", show_time(m.accepted_at), json!(m.accepted_at.0));
            let c = match k.merchant_key(&m.merchant_id) {
                Some(key) => m
                    .verify(&key)
                    .map(|()| "valid under the merchant's certified key".into())
                    .map_err(ver),
                None => {
                    Ok("not checked: this data directory does not know the merchant's key".into())
                }
            };
            r.check("merchant signature", c);
        }
        MessageType::RevocationList => {
            let m = decode_signed::<RevocationList<'_>>(bytes)?;
            r.kind = "RevocationList";
            r.field("serial", m.serial.to_string(), json!(m.serial));
            r.field("issued", show_time(m.issued_at), json!(m.issued_at.0));
            r.field(
                "revoked vouchers",
                (m.vouchers.len() / 16).to_string(),
                json!(m.vouchers.chunks(16).map(hex::encode).collect::<Vec<_>>()),
            );
            r.field(
                "revoked merchants",
                (m.merchants.len() / 8).to_string(),
                json!(m.merchants.chunks(8).map(hex::encode).collect::<Vec<_>>()),
            );
            r.check(
                "issuer signature",
                issuer_check(k, &m, &m.issuer_key_id, m.issued_at),
            );
        }
        MessageType::SyncBatch => {
            let m = decode_unsigned::<SyncBatch<'_>>(bytes)?;
            r.kind = "SyncBatch";
            let kinds: Vec<String> = m
                .records()
                .map(|x| {
                    MessageType::of(x)
                        .map(|t| format!("{t:?}"))
                        .unwrap_or_else(|e| Error::from(e).to_string())
                })
                .collect();
            r.field(
                "records",
                format!("{} ({})", m.len(), kinds.join(", ")),
                json!(kinds),
            );
        }
        MessageType::SyncReport => {
            let m = decode_signed::<SyncReport<'_>>(bytes)?;
            r.kind = "SyncReport";
            r.field(
                "batch",
                hex::encode(m.batch_id),
                json!(hex::encode(m.batch_id)),
            );
            r.field("created", show_time(m.created_at), json!(m.created_at.0));
            let outcomes: Vec<String> = m.entries().map(|e| format!("{:?}", e.outcome)).collect();
            r.field("outcomes", outcomes.join(", "), json!(outcomes));
            r.field(
                "fraud proofs",
                m.proofs().count().to_string(),
                json!(m.proofs().count()),
            );
            r.check(
                "issuer signature",
                issuer_check(k, &m, &m.issuer_key_id, m.created_at),
            );
        }
        MessageType::FraudProof => {
            let m = decode_unsigned::<FraudProof<'_>>(bytes)?;
            r.kind = "FraudProof";
            r.field(
                "kind",
                format!("{:?}", m.kind),
                json!(format!("{:?}", m.kind)),
            );
            payment_fields(&mut r, k, "first ", &m.first);
            payment_fields(&mut r, k, "second ", &m.second);
            let c = match &k.trust {
                Some(t) => m
                    .verify(t)
                    .map(|()| "two validly signed payments that break the rule named".into())
                    .map_err(ver),
                None => Ok("not checked: no trusted issuer key in this data directory".into()),
            };
            r.check("proof", c);
        }
        _ => return Err(offpay_protocol::DecodeError::WrongType.into()),
    }
    Ok(r)
}

/// `offpay inspect`.
pub fn inspect(data: &Path, input: &str, now: Timestamp) -> Result<(Output, Option<Failure>)> {
    let (bytes, source) = load(input)?;
    let known = Known::new(data);
    let r = describe(&bytes, &known, now)
        .map_err(|e| crate::fail::protocol(&format!("{input} is not a valid offpay message"), e))?;
    let (l, m) = (
        qrio::version_at(&bytes, EcLevel::L),
        qrio::version_at(&bytes, EcLevel::M),
    );
    let v = |x: Option<i16>| x.map_or("animated".to_string(), |v| v.to_string());
    let mut text = format!(
        "{} ({} bytes, from {source}; QR version {} at level L, {} at M)\n",
        r.kind,
        bytes.len(),
        v(l),
        v(m)
    );
    let width = r.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, val) in &r.fields {
        text.push_str(&format!("  {k:<width$}  {val}\n"));
    }
    let mut failed = Vec::new();
    let mut checks = Map::new();
    for (what, c) in &r.checks {
        match c {
            Ok(how) => {
                text.push_str(&format!("  check {what}: {how}\n"));
                checks.insert(what.clone(), json!({"ok": true, "detail": how}));
            }
            Err(why) => {
                text.push_str(&format!("  check {what}: FAILED: {why}\n"));
                checks.insert(what.clone(), json!({"ok": false, "detail": why}));
                failed.push(format!("{what}: {why}"));
            }
        }
    }
    let json = json!({
        "type": r.kind, "bytes": bytes.len(), "hex": hex::encode(&bytes),
        "qr_version": {"L": l, "M": m}, "fields": r.json, "checks": checks,
    });
    let failure = (!failed.is_empty()).then(|| {
        Failure::new(
            format!("{input}: {}", failed.join("; ")),
            "do not trust this message",
        )
    });
    Ok((
        Output {
            text: text.trim_end().to_string(),
            json,
        },
        failure,
    ))
}
