//! The commands that talk to the issuer service over HTTP: the issuer's admin commands, a
//! device's first contact (`wallet init`, `issuer certify-merchant`), pre-authorization and
//! sync.

use crate::amount;
use crate::data::{
    RoleDir, Trust, merchant_id, read_capped, show_merchant, show_time, trust_line, write_atomic,
};
use crate::fail::{Doing, Failure, Result};
use crate::roles::{Output, currency, open_merchant, open_wallet, text_field};
use offpay_issuer::api;
use offpay_issuer::client::Client;
use offpay_protocol::msg::sync::MAX_SYNC_RECORDS;
use offpay_protocol::msg::{MerchantCertificate, Outcome, RevocationList, SyncBatch, SyncReport};
use offpay_protocol::{
    FileStore, KeyId, Nonce, PublicKey, Signer, SigningKey, Timestamp, decode_signed,
    decode_unsigned,
};
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};
use std::path::Path;

/// The size bound of a sync batch, for buffers.
const SYNC_BATCH_MAX: usize =
    <SyncBatch<'static> as offpay_protocol::codec::Message<'static>>::MAX_LEN;

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
            None => {
                let bytes = read_capped(self.admin_token_file, 1024, "reading the admin token")
                    .map_err(|e| {
                        e.todo("give the issuer's admin token with --admin-token or --admin-token-file")
                    })?;
                String::from_utf8_lossy(&bytes).trim().to_string()
            }
        };
        Ok(Client::new(self.admin_url)
            .doing("reaching the issuer's admin API")?
            .with_admin_token(&token))
    }

    /// The public API's client for a device: `--issuer`, else the URL saved at `init`.
    fn public_for(&self, d: &RoleDir) -> Result<Client> {
        let saved;
        let url = match self.url {
            Some(u) => u,
            None => {
                saved = read_capped(&d.file("issuer.url"), 1024, "reading the issuer's URL")
                    .map_err(|e| e.todo("give the issuer's URL with --issuer"))?;
                std::str::from_utf8(&saved)
                    .map_err(|_| Failure::new("issuer.url is not text", "give --issuer"))?
                    .trim()
            }
        };
        Client::new(url).doing("reaching the issuer")
    }

    fn public(&self) -> Result<Client> {
        Client::new(self.url.unwrap_or(DEFAULT_ISSUER)).doing("reaching the issuer")
    }
}

/// The issuer service's public API on this machine.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:7878";

/// The issuer's key a device pins: the one given with `--issuer-key`, or the newest the
/// service shows (trust on first use).
fn pinned_key(info: &api::IssuerInfo, wanted: Option<&str>) -> Result<api::IssuerKey> {
    let key = match wanted {
        Some(w) => info
            .keys
            .iter()
            .find(|k| k.public_key.eq_ignore_ascii_case(w.trim())),
        None => info.keys.first(),
    };
    key.cloned().ok_or_else(|| {
        Failure::new(
            "the issuer does not show the key this device is to trust",
            "check --issuer-key against the issuer's public key (offpay-issuer prints it)",
        )
    })
}

/// Refuses an issuer whose keys the device does not trust now, before anything is sent.
fn check_trusted(client: &Client, trust: &Trust, device: &str, now: Timestamp) -> Result<()> {
    let info = client
        .issuer_info()
        .doing("asking the issuer for its keys")?;
    let trusted = info.keys.iter().any(|k| {
        api::parse_key(&k.public_key).is_some_and(|key| {
            trust
                .issuer_key(&KeyId::of(&key), now)
                .is_ok_and(|t| t == key)
        })
    });
    if trusted {
        Ok(())
    } else {
        Err(Failure::new(
            format!(
                "this {device} does not trust the issuer at {}",
                client.base()
            ),
            "give the URL of the issuer the device was created with (--issuer)",
        ))
    }
}

/// Writes the trust anchor and the issuer's URL into a role directory being created.
fn write_anchor(staged: &RoleDir, key: &api::IssuerKey, url: &str) -> Result<PublicKey> {
    let public = api::parse_key(&key.public_key)
        .ok_or_else(|| Failure::new("the issuer sent a malformed key", "check the issuer's URL"))?;
    write_atomic(
        &staged.file("issuer.pub"),
        trust_line(&public, Timestamp(key.not_before), Timestamp(key.not_after)).as_bytes(),
    )?;
    write_atomic(&staged.file("issuer.url"), format!("{url}\n").as_bytes())?;
    Ok(public)
}

// ---------------------------------------------------------------- issuer (admin)

/// `offpay issuer instrument`.
pub fn create_instrument(
    a: &IssuerArgs<'_>,
    currency_code: &str,
    label: Option<&str>,
) -> Result<Output> {
    let cur = currency(currency_code)?;
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
    let m = |v: u64| amount::money(v, &i.currency);
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
    let cur = currency(&i.currency)?;
    let amount = amount::parse(amount_text, cur).map_err(|e| Failure::new(e, ""))?;
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
        .fund(instrument, amount.0, reference)
        .doing("funding the instrument")?;
    Ok(Output {
        text: instrument_text(&i),
        json: instrument_json(&i),
    })
}

/// `offpay issuer certify-merchant`: the merchant's key is made here, in its own data
/// directory; the issuer certifies it.
pub fn certify_merchant(
    a: &IssuerArgs<'_>,
    data: &Path,
    id: &str,
    name: &str,
    merchant_data: Option<&Path>,
    days: u32,
) -> Result<Output> {
    let mid = merchant_id(id)?;
    text_field("merchant name", name)?;
    let md = RoleDir::new(merchant_data.unwrap_or(data), "merchant");
    if md.exists("merchant.key") {
        return Err(Failure::new(
            format!("{} already holds a merchant", md.path().display()),
            "give another directory with --merchant-data",
        ));
    }
    let admin = a.admin()?;
    let public = a.public()?;
    // Everything local is staged first and the certification asked last: a failure leaves no
    // trace, and the id is not used up.
    let staged = md.stage("merchant.key")?;
    let key = SigningKey::generate(&mut OsRng);
    let result = (|| {
        let info = public
            .issuer_info()
            .doing("asking the issuer for its keys")?;
        let anchor = pinned_key(&info, None)?;
        write_anchor(&staged, &anchor, public.base())?;
        FileStore::open(staged.file("merchant.journal"))
            .map_err(offpay_protocol::Error::from)
            .doing("creating the merchant journal")?;
        staged.write_key("merchant.key", &key)?;
        let cert = admin
            .certify_merchant(&api::NewMerchant {
                merchant_id: api::merchant_hex(&mid),
                merchant_key: hex::encode(key.public_key().0),
                display_name: name.to_string(),
                days,
            })
            .doing("certifying the merchant")?;
        write_atomic(&staged.file("certificate.bin"), &cert)?;
        Ok(cert)
    })();
    let cert = match result {
        Ok(c) => c,
        Err(e) => {
            staged.abandon();
            return Err(e);
        }
    };
    staged.commit(&md).map_err(|e| {
        e.todo(
            "the merchant is certified but its files could not be moved into place; \
             they are in the .merchant.new-* directory beside it",
        )
    })?;
    let c = decode_signed::<MerchantCertificate<'_>>(&cert).doing("reading the certificate")?;
    Ok(Output {
        text: format!(
            "certified merchant {id} \"{name}\" until {}\n  key and certificate in {}",
            show_time(c.not_after),
            md.path().display()
        ),
        json: json!({"merchant_id": id, "name": name, "not_after": c.not_after.0, "dir": md.path()}),
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
            amount::money(c.amount_minor, &c.currency)
        ));
        cj.push(json!({"merchant_id": id, "currency": c.currency, "amount_minor": c.amount_minor, "payments": c.payments}));
    }
    if credits.is_empty() {
        text.push_str("  none\n");
    }
    text.push_str("\n  vouchers\n");
    let mut vj = Vec::new();
    for v in &vouchers {
        let m = |x: u64| amount::money(x, &v.currency);
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
    let d = RoleDir::new(data, "wallet");
    let client = a.public()?;
    let info = client
        .issuer_info()
        .doing("asking the issuer for its keys")?;
    let anchor = pinned_key(&info, issuer_key)?;
    let staged = d.stage("holder.key")?;
    let key = SigningKey::generate(&mut OsRng);
    let result = (|| {
        write_anchor(&staged, &anchor, client.base())?;
        FileStore::open(staged.file("wallet.journal"))
            .map_err(offpay_protocol::Error::from)
            .doing("creating the wallet journal")?;
        staged.write_key("holder.key", &key)
    })();
    match result {
        Ok(()) => staged.commit(&d)?,
        Err(e) => {
            staged.abandon();
            return Err(e);
        }
    }
    let public = hex::encode(key.public_key().0);
    Ok(Output {
        text: format!(
            "wallet created in {}\n  holder key {public}\n  trusts issuer key {} at {}",
            d.path().display(),
            anchor.public_key,
            client.base()
        ),
        json: json!({"holder_key": public, "dir": d.path(), "issuer_key": anchor.public_key, "issuer": client.base()}),
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
    now: Timestamp,
) -> Result<Output> {
    let (d, mut wallet, trust) = open_wallet(data)?;
    let cur = currency(currency_code)?;
    let amount = amount::parse(amount_text, cur).map_err(|e| Failure::new(e, ""))?;
    if instrument.is_empty() || instrument.len() > offpay_protocol::msg::MAX_TEXT_LEN {
        return Err(Failure::new(
            "the instrument id must be 1 to 32 bytes",
            "give the id the issuer handed out with --instrument",
        ));
    }
    if wallet.balances().count() >= 8 {
        return Err(Failure::new(
            "the wallet already holds its maximum of 8 vouchers, and this version never retires one",
            "start a new wallet with `offpay --data NEW-DIR wallet init` for further pre-authorizations",
        ));
    }
    let client = a.public_for(&d)?;
    check_trusted(&client, &trust, "wallet", now)?;
    let mut nonce = [0u8; 16];
    OsRng.fill_bytes(&mut nonce);
    let request = wallet
        .preauth_request(instrument.as_bytes(), amount, cur, Nonce(nonce), now)
        .doing("asking for the pre-authorization")?;
    let voucher = client
        .preauthorize(&request, credential)
        .doing("pre-authorizing")?;
    let id = wallet
        .install_voucher(&voucher, &trust, now)
        .doing("installing the voucher")?;
    let v =
        decode_signed::<offpay_protocol::msg::Voucher>(&voucher).doing("reading the voucher")?;
    Ok(Output {
        text: format!(
            "voucher {id}: {} pre-authorized on {instrument}, valid until {}, at most {} payment(s) of at most {}",
            amount::format(amount, cur),
            show_time(v.not_after),
            v.policy.max_payments,
            amount::format(v.policy.max_single, cur)
        ),
        json: json!({
            "voucher_id": id.to_string(), "amount_minor": amount.0, "currency": cur.as_str(),
            "not_before": v.not_before.0, "not_after": v.not_after.0,
            "max_single_minor": v.policy.max_single.0, "max_payments": v.policy.max_payments,
        }),
    })
}

/// Syncs one device's journal until nothing more is acknowledged, then installs the newest
/// revocation list.
fn sync_device(
    client: &Client,
    d: &RoleDir,
    trust: &Trust,
    now: Timestamp,
    make_batch: &mut dyn FnMut(&mut [u8]) -> Result<usize>,
    apply: &mut dyn FnMut(&[u8]) -> Result<usize>,
) -> Result<Value> {
    let mut buf = vec![0u8; SYNC_BATCH_MAX];
    let (mut sent, mut new, mut dup, mut credited, mut proofs, mut marked) = (0, 0, 0, 0, 0, 0);
    let mut rejected = Vec::new();
    // A journal may hold more unsynced records than one batch carries; stop when a round
    // marks nothing new (what is left waits for its other half).
    for _ in 0..1024 {
        let n = make_batch(&mut buf)?;
        let batch = buf.get(..n).unwrap_or(&[]);
        let count = decode_unsigned::<SyncBatch<'_>>(batch)
            .map_err(offpay_protocol::Error::from)
            .doing("reading the sync batch")?
            .len();
        if count == 0 {
            break;
        }
        let report = client.sync(batch).doing("syncing")?;
        let r = decode_signed::<SyncReport<'_>>(&report).doing("reading the issuer's report")?;
        for e in r.entries() {
            match e.outcome {
                Outcome::Credited => {
                    new += 1;
                    credited += 1;
                }
                Outcome::Pending | Outcome::Conflict => new += 1,
                Outcome::Duplicate => dup += 1,
                Outcome::Rejected(code) => rejected.push(code),
            }
        }
        proofs += r.proofs().count();
        let m = apply(&report)?;
        sent += count;
        marked += m;
        if count < MAX_SYNC_RECORDS || m == 0 {
            break;
        }
    }
    let list = client.revocations().doing("fetching the revocation list")?;
    let installed = d.install_revocations(&list, trust, now)?;
    Ok(json!({
        "records_sent": sent, "new": new, "duplicates": dup, "credited_records": credited,
        "fraud_proofs": proofs, "rejected": rejected, "acknowledged": marked,
        "revocation_list_updated": installed,
    }))
}

fn sync_text(who: &str, v: &Value) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    if n("records_sent") == 0 {
        return format!("{who}: nothing to sync");
    }
    let rejected = v["rejected"].as_array().map(Vec::len).unwrap_or(0);
    format!(
        "{who}: {} record(s) sent, {} new, {} already known, {} record(s) credited, {} acknowledged{}{}{}",
        n("records_sent"),
        n("new"),
        n("duplicates"),
        n("credited_records"),
        n("acknowledged"),
        if rejected > 0 {
            format!(", {rejected} refused (codes {})", v["rejected"])
        } else {
            String::new()
        },
        if n("fraud_proofs") > 0 {
            format!(", {} FraudProof(s) found", n("fraud_proofs"))
        } else {
            String::new()
        },
        if v["revocation_list_updated"].as_bool() == Some(true) {
            "; revocation list updated"
        } else {
            ""
        },
    )
}

/// `offpay wallet sync`.
pub fn wallet_sync(a: &IssuerArgs<'_>, data: &Path, now: Timestamp) -> Result<Output> {
    let (d, mut wallet, trust) = open_wallet(data)?;
    let client = a.public_for(&d)?;
    check_trusted(&client, &trust, "wallet", now)?;
    let wallet = std::cell::RefCell::new(&mut wallet);
    let v = sync_device(
        &client,
        &d,
        &trust,
        now,
        &mut |buf| {
            wallet
                .borrow()
                .sync_batch(buf)
                .doing("making the sync batch")
        },
        &mut |report| {
            wallet
                .borrow_mut()
                .apply_report(report, &trust, now)
                .doing("applying the issuer's report")
        },
    )?;
    Ok(Output {
        text: sync_text("wallet", &v),
        json: v,
    })
}

/// `offpay merchant sync`.
pub fn merchant_sync(a: &IssuerArgs<'_>, data: &Path, now: Timestamp) -> Result<Output> {
    let (d, mut shop, trust) = open_merchant(data)?;
    let client = a.public_for(&d)?;
    check_trusted(&client, &trust, "merchant", now)?;
    let shop = std::cell::RefCell::new(&mut shop);
    let v = sync_device(
        &client,
        &d,
        &trust,
        now,
        &mut |buf| shop.borrow().sync_batch(buf).doing("making the sync batch"),
        &mut |report| {
            shop.borrow_mut()
                .apply_report(report, &trust, now)
                .doing("applying the issuer's report")
        },
    )?;
    Ok(Output {
        text: sync_text("merchant", &v),
        json: v,
    })
}
