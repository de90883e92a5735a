//! The commands that talk to the issuer service over HTTP: the issuer's admin commands, a
//! device's first contact (`wallet init`, `issuer certify-merchant`), pre-authorization and
//! sync.

use crate::data::{config, merchant_id, read_token, role_dir, show_merchant, show_time};
use crate::fail::{Doing, Failure, Result};
use crate::roles::{Output, money, open_merchant, open_wallet};
use offpay_issuer::api;
use offpay_issuer::client::Client;
use offpay_protocol::Timestamp;
use offpay_protocol::decode_signed;
use offpay_protocol::msg::{MerchantCertificate, RevocationList};
use offpay_sdk::{CustomerWallet, SyncSummary, TillEnrollment, show_money};
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};
use std::path::Path;

/// Where the issuer is and how to reach its admin API.
pub struct IssuerArgs<'a> {
    /// The public API's URL (`--issuer`), if given.
    pub url: Option<&'a str>,
    /// The admin API's URL.
    pub admin_url: &'a str,
    /// The admin token, if given.
    pub admin_token: Option<&'a str>,
    /// The file holding the admin token, read when no token is given.
    pub admin_token_file: &'a Path,
}

impl IssuerArgs<'_> {
    fn admin(&self) -> Result<Client> {
        let token = match self.admin_token {
            Some(t) => t.to_string(),
            None => read_token(self.admin_token_file, "reading the admin token").map_err(|e| {
                e.todo("give the issuer's admin token with --admin-token or --admin-token-file")
            })?,
        };
        Ok(Client::new(self.admin_url)
            .doing("reaching the issuer's admin API")?
            .with_admin_token(&token))
    }

    /// The public API's URL for creating a device: `--issuer`, else this machine's.
    fn public_url(&self) -> &str {
        self.url.unwrap_or(DEFAULT_ISSUER)
    }
}

/// The issuer service's public API on this machine.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:7878";

// ---------------------------------------------------------------- issuer (admin)

/// `offpay issuer instrument`.
pub fn create_instrument(
    a: &IssuerArgs<'_>,
    currency_code: &str,
    label: Option<&str>,
) -> Result<Output> {
    let cur = offpay_sdk::currency(currency_code).doing("creating the instrument")?;
    let c = a
        .admin()?
        .create_instrument(cur.as_str(), label)
        .doing("creating the instrument")?;
    Ok(Output {
        text: format!(
            "instrument {} ({}) created\n  credential {}\n  it is shown this once: hand it to the customer's app",
            c.instrument.id, c.instrument.currency, c.credential
        ),
        json: json!({"instrument": c.instrument.id, "currency": c.instrument.currency, "credential": c.credential}),
    })
}

fn instrument_json(i: &api::Instrument) -> Value {
    json!({
        "instrument": i.id, "currency": i.currency, "funded_minor": i.funded_minor,
        "available_minor": i.available_minor, "reserved_minor": i.reserved_minor,
        "spent_minor": i.spent_minor, "owed_minor": i.owed_minor,
    })
}

fn instrument_text(i: &api::Instrument) -> String {
    let m = |v: u64| show_money(v, &i.currency);
    format!(
        "instrument {}: funded {}, available {}, reserved {}, spent {}, owed {}",
        i.id,
        m(i.funded_minor),
        m(i.available_minor),
        m(i.reserved_minor),
        m(i.spent_minor),
        m(i.owed_minor)
    )
}

/// `offpay issuer fund`.
pub fn fund(
    a: &IssuerArgs<'_>,
    instrument: &str,
    amount_text: &str,
    reference: Option<&str>,
) -> Result<Output> {
    let admin = a.admin()?;
    let i = admin
        .instrument(instrument)
        .doing("reading the instrument")?;
    let amount = money(amount_text, &i.currency)?;
    // Without a reference of the user's, each call is a new funding.
    let fresh;
    let reference = match reference {
        Some(r) => r,
        None => {
            let mut b = [0u8; 8];
            OsRng.fill_bytes(&mut b);
            fresh = format!("cli-{}", hex::encode(b));
            &fresh
        }
    };
    let i = admin
        .fund(instrument, amount.minor(), reference)
        .doing("funding the instrument")?;
    Ok(Output {
        text: instrument_text(&i),
        json: instrument_json(&i),
    })
}

/// `offpay issuer certify-merchant`: the merchant's till is made here, in its own data
/// directory (its key never leaves it); the issuer certifies its key.
pub fn certify_merchant(
    a: &IssuerArgs<'_>,
    data: &Path,
    id: &str,
    name: &str,
    merchant_data: Option<&Path>,
    days: u32,
) -> Result<Output> {
    let mid = merchant_id(id)?;
    let max = offpay_protocol::msg::MAX_TEXT_LEN;
    if name.is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(Failure::new(
            format!(
                "the merchant name must be 1 to {max} bytes of text without control characters"
            ),
            "shorten it",
        ));
    }
    let md = role_dir(merchant_data.unwrap_or(data), "merchant");
    if md.exists() {
        return Err(Failure::new(
            format!("{} already holds a merchant", md.display()),
            "give another directory with --merchant-data",
        ));
    }
    let admin = a.admin()?;
    // Everything local is staged first and the certification asked last: a failure leaves no
    // trace, and the id is not used up.
    let mut enrollment = TillEnrollment::start(&md, config(Some(a.public_url()), None))
        .doing("creating the data directory")?;
    let cert = admin
        .certify_merchant(&api::NewMerchant {
            merchant_id: api::merchant_hex(&mid),
            merchant_key: hex::encode(enrollment.merchant_key()),
            display_name: name.to_string(),
            days,
        })
        .doing("certifying the merchant")?;
    enrollment
        .finish(&cert)
        .doing("installing the certificate")?;
    let c = decode_signed::<MerchantCertificate<'_>>(&cert).doing("reading the certificate")?;
    Ok(Output {
        text: format!(
            "certified merchant {id} \"{name}\" until {}\n  key and certificate in {}",
            show_time(c.not_after),
            md.display()
        ),
        json: json!({"merchant_id": id, "name": name, "not_after": c.not_after.0, "dir": md}),
    })
}

/// `offpay issuer revoke`.
pub fn revoke(a: &IssuerArgs<'_>, voucher: Option<&str>, merchant: Option<&str>) -> Result<Output> {
    if let Some(v) = voucher
        && api::parse_voucher(v).is_none()
    {
        return Err(Failure::new(
            format!("'{v}' is not a voucher id"),
            "give the 32 hex digits `offpay issuer report` shows",
        ));
    }
    let merchant = merchant.map(merchant_id).transpose()?;
    if voucher.is_none() && merchant.is_none() {
        return Err(Failure::new(
            "nothing to revoke",
            "give --voucher ID or --merchant ID",
        ));
    }
    let list = a
        .admin()?
        .revoke(&api::Revoke {
            voucher: voucher.map(str::to_ascii_lowercase),
            merchant: merchant.as_ref().map(api::merchant_hex),
        })
        .doing("revoking")
        .map_err(|e| match e.code() {
            Some(804) => e.todo("check the id with `offpay issuer report`"),
            _ => e,
        })?;
    let l = decode_signed::<RevocationList<'_>>(&list).doing("reading the revocation list")?;
    let (nv, nm) = (l.vouchers.len() / 16, l.merchants.len() / 8);
    Ok(Output {
        text: format!(
            "revocation list #{} signed: {nv} voucher(s), {nm} merchant(s); devices get it when they sync",
            l.serial
        ),
        json: json!({"serial": l.serial, "vouchers": nv, "merchants": nm}),
    })
}

fn merchant_text(hex_id: &str) -> String {
    api::parse_merchant(hex_id).map_or_else(|| hex_id.to_string(), |m| show_merchant(&m))
}

/// `offpay issuer report`: closes what has expired, then shows credits, vouchers and proofs.
pub fn report(a: &IssuerArgs<'_>) -> Result<Output> {
    let admin = a.admin()?;
    admin.close_expired().doing("closing expired vouchers")?;
    let credits = admin.credits().doing("reading the credits")?;
    let vouchers = admin.vouchers().doing("reading the vouchers")?;
    let proofs = admin.fraud().doing("reading the fraud proofs")?;
    let mut text = String::from("issuer report\n\n  merchant   payments  credited\n");
    let mut cj = Vec::new();
    for c in &credits {
        let id = merchant_text(&c.merchant_id);
        text.push_str(&format!(
            "  {id:<10} {:>8}  {}\n",
            c.payments,
            show_money(c.amount_minor, &c.currency)
        ));
        cj.push(json!({"merchant_id": id, "currency": c.currency, "amount_minor": c.amount_minor, "payments": c.payments}));
    }
    if credits.is_empty() {
        text.push_str("  none\n");
    }
    text.push_str("\n  vouchers\n");
    let mut vj = Vec::new();
    for v in &vouchers {
        let m = |x: u64| show_money(x, &v.currency);
        text.push_str(&format!(
            "  {}  limit {}, credited {}{}{}{}\n",
            v.voucher_id,
            m(v.limit_minor),
            m(v.credited_minor),
            if v.overspend_minor > 0 {
                format!(", overspend owed by the holder {}", m(v.overspend_minor))
            } else {
                String::new()
            },
            if v.fraud { ", FRAUD PROVEN" } else { "" },
            match v.released_minor {
                Some(r) => format!(", closed: {} released", m(r)),
                None => format!(", open until {} + grace", show_time(Timestamp(v.not_after))),
            },
        ));
        vj.push(json!({
            "voucher_id": v.voucher_id, "instrument": v.instrument, "currency": v.currency,
            "limit_minor": v.limit_minor, "credited_minor": v.credited_minor,
            "overspend_minor": v.overspend_minor, "fraud": v.fraud,
            "released_minor": v.released_minor, "not_after": v.not_after,
        }));
    }
    text.push_str("\n  fraud proofs\n");
    for p in &proofs {
        text.push_str(&format!(
            "  FraudProof {} ({} bytes): voucher {}, payments {} and {}\n",
            p.kind,
            p.proof.len() / 2,
            p.voucher_id,
            p.first_payment.get(..16).unwrap_or(&p.first_payment),
            p.second_payment.get(..16).unwrap_or(&p.second_payment)
        ));
    }
    if proofs.is_empty() {
        text.push_str("  none\n");
    }
    let pj: Vec<Value> = proofs
        .iter()
        .map(|p| json!({"voucher_id": p.voucher_id, "kind": p.kind, "first_payment": p.first_payment, "second_payment": p.second_payment, "bytes": p.proof.len() / 2}))
        .collect();
    Ok(Output {
        text: text.trim_end().to_string(),
        json: json!({"credits": cj, "vouchers": vj, "fraud_proofs": pj}),
    })
}

// ---------------------------------------------------------------- wallet

/// `offpay wallet init`: a holder key, and the issuer's key pinned (`--issuer-key`, or the
/// one the service shows now).
pub fn wallet_init(a: &IssuerArgs<'_>, data: &Path, issuer_key: Option<&str>) -> Result<Output> {
    let dir = role_dir(data, "wallet");
    let mut c = config(Some(a.public_url()), None);
    c.issuer_key = issuer_key.map(str::to_string);
    let wallet = CustomerWallet::create(&dir, c)
        .doing("creating the wallet")
        .map_err(|e| {
            if dir.join("holder.key").exists() || dir.join("holder.pub").exists() {
                e.todo("use it as it is, or choose another directory with --data")
            } else {
                e
            }
        })?;
    let public = hex::encode(wallet.holder_key());
    let anchor = wallet
        .issuer_keys()
        .doing("reading the trust anchors")?
        .into_iter()
        .next()
        .map(|(k, _, _)| k)
        .unwrap_or_default();
    Ok(Output {
        text: format!(
            "wallet created in {}\n  holder key {public}\n  trusts issuer key {anchor} at {}",
            dir.display(),
            wallet.issuer_url()
        ),
        json: json!({"holder_key": public, "dir": dir, "issuer_key": anchor, "issuer": wallet.issuer_url()}),
    })
}

/// `offpay wallet preauth`: the issuer reserves the amount on the instrument and signs a
/// voucher bound to this wallet.
pub fn preauth(
    a: &IssuerArgs<'_>,
    data: &Path,
    amount_text: &str,
    currency_code: &str,
    instrument: &str,
    credential: &str,
    now: Option<u32>,
) -> Result<Output> {
    let wallet = open_wallet(data, a.url, now)?;
    let amount = money(amount_text, currency_code)?;
    let v = wallet
        .pre_authorize_instrument(instrument, credential, amount)
        .doing("pre-authorizing")
        .map_err(|e| match e.code() {
            Some(c) if c == offpay_protocol::Rejection::CapacityExceeded.code() => e.todo(
                "spend what is left on a voucher, or wait until one is past its window, then \
                 `offpay wallet sync`: a spent-out or closed voucher whose payments the issuer \
                 has acknowledged frees its slot",
            ),
            _ => e,
        })?;
    Ok(Output {
        text: format!(
            "voucher {}: {} pre-authorized on {instrument}, valid until {}, at most {} payment(s) of at most {}",
            v.voucher_id,
            v.amount,
            show_time(Timestamp(v.not_after)),
            v.max_payments,
            v.max_single
        ),
        json: json!({
            "voucher_id": v.voucher_id, "amount_minor": v.amount.minor(), "currency": v.amount.currency_code(),
            "not_before": v.not_before, "not_after": v.not_after,
            "max_single_minor": v.max_single.minor(), "max_payments": v.max_payments,
        }),
    })
}

fn sync_output(who: &str, s: &SyncSummary) -> Output {
    let rejected: Vec<u16> = s.refused.iter().map(|r| r.code).collect();
    let new = s.credited + s.pending + s.conflicts;
    let text = if s.records_sent == 0 {
        format!(
            "{who}: nothing to sync{}",
            if s.revocation_list_updated {
                "; revocation list updated"
            } else {
                ""
            }
        )
    } else {
        format!(
            "{who}: {} record(s) sent, {new} new, {} already known, {} record(s) credited, {} acknowledged{}{}{}",
            s.records_sent,
            s.duplicates,
            s.credited,
            s.acknowledged,
            if rejected.is_empty() {
                String::new()
            } else {
                format!(", {} refused (codes {rejected:?})", rejected.len())
            },
            if s.fraud_proofs.is_empty() {
                String::new()
            } else {
                format!(", {} FraudProof(s) found", s.fraud_proofs.len())
            },
            if s.revocation_list_updated {
                "; revocation list updated"
            } else {
                ""
            },
        )
    };
    Output {
        text,
        json: json!({
            "records_sent": s.records_sent, "new": new, "duplicates": s.duplicates,
            "credited_records": s.credited, "fraud_proofs": s.fraud_proofs.len(), "rejected": rejected,
            "acknowledged": s.acknowledged, "revocation_list_updated": s.revocation_list_updated,
        }),
    }
}

/// `offpay wallet sync`.
pub fn wallet_sync(a: &IssuerArgs<'_>, data: &Path, now: Option<u32>) -> Result<Output> {
    let s = open_wallet(data, a.url, now)?
        .sync_payments()
        .doing("syncing")?;
    Ok(sync_output("wallet", &s))
}

/// `offpay merchant sync`.
pub fn merchant_sync(a: &IssuerArgs<'_>, data: &Path, now: Option<u32>) -> Result<Output> {
    let s = open_merchant(data, a.url, now)?
        .sync_payments()
        .doing("syncing")?;
    Ok(sync_output("merchant", &s))
}
