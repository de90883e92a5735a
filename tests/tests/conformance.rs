//! Runs every conformance vector in tests/vectors/*.json through offpay-protocol, reading only
//! the files (as another implementation would), and checks that the committed files are
//! exactly what the generator produces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::acceptor::{OpenRequest, Seen, VoucherMemory, decide};
use offpay_protocol::codec::MessageType;
use offpay_protocol::msg::*;
use offpay_protocol::*;
use serde_json::Value;

mod vector_files;

use vector_files::{arr, load, unhex};

thread_local! {
    /// Whether [`trust`] attaches precomputed tables to every key (per test thread).
    static WITH_TABLES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tables for `key`, built once per key for the whole test binary.
fn tables_for(key: &PublicKey) -> &'static FixedKeyTables {
    type Cache = std::sync::Mutex<std::collections::HashMap<[u8; 32], &'static FixedKeyTables>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    cache.entry(key.0).or_insert_with(|| {
        let mut t = Box::new(FixedKeyTables::new());
        t.build(key).unwrap();
        Box::leak(t)
    })
}

fn trust(file: &Value) -> TrustStore<4> {
    let mut t = TrustStore::new();
    for k in file["fixture"]["trust"].as_array().unwrap() {
        let key = PublicKey(arr(&k["key"]));
        t.add(
            key,
            Timestamp(k["not_before"].as_u64().unwrap() as u32),
            Timestamp(k["not_after"].as_u64().unwrap() as u32),
        )
        .unwrap();
        if WITH_TABLES.get() {
            t.attach_tables(tables_for(&key)).unwrap();
        }
    }
    t
}

fn name_of<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => "valid".into(),
        Err(e) => e.name().into(),
    }
}

fn decode_any(ty: &str, b: &[u8]) -> Result<(), Error> {
    match ty {
        "PreAuthRequest" | "PreAuthRequestP256" => decode_signed::<PreAuthRequest<'_>>(b).map(drop),
        "Voucher" | "VoucherP256" => decode_signed::<Voucher>(b).map(drop),
        "MerchantCertificate" => decode_signed::<MerchantCertificate<'_>>(b).map(drop),
        "PaymentRequest" => decode_signed::<PaymentRequest<'_>>(b).map(drop),
        "Payment" => decode_signed::<Payment<'_>>(b).map(drop),
        "Receipt" => decode_signed::<Receipt>(b).map(drop),
        "RevocationList" => decode_signed::<RevocationList<'_>>(b).map(drop),
        "SyncBatch" => decode_unsigned::<SyncBatch<'_>>(b).map(drop),
        "SyncReport" => decode_signed::<SyncReport<'_>>(b).map(drop),
        "FraudProof" => decode_unsigned::<FraudProof<'_>>(b).map(drop),
        other => panic!("unknown message type {other}"),
    }
    .map_err(Error::from)
}

fn verify_any(file: &Value, ty: &str, b: &[u8], now: Timestamp) -> Result<(), Error> {
    let trust = trust(file);
    let merchant_key = |id: &MerchantId| {
        for m in ["merchant_a", "merchant_b"] {
            if arr::<8>(&file["fixture"][m]["id"]) == id.0 {
                return PublicKey(arr(&file["fixture"][m]["key"]));
            }
        }
        panic!("unknown merchant in vector")
    };
    match ty {
        "Voucher" | "VoucherP256" => {
            let v = decode_signed::<Voucher>(b)?;
            trust.verify(&v, &v.issuer_key_id, v.not_before)?;
            Ok(v.check_time(now)?)
        }
        "MerchantCertificate" => {
            let c = decode_signed::<MerchantCertificate<'_>>(b)?;
            trust.verify(&c, &c.issuer_key_id, c.not_before)?;
            Ok(c.check_time(now)?)
        }
        "Payment" => {
            let p = decode_signed::<Payment<'_>>(b)?;
            trust.verify(&p.voucher, &p.voucher.issuer_key_id, p.voucher.not_before)?;
            p.voucher.check_time(now)?;
            Ok(p.verify_holder(&p.voucher.holder_key)?)
        }
        "PaymentRequest" => {
            let r = decode_signed::<PaymentRequest<'_>>(b)?;
            trust.verify(
                &r.certificate,
                &r.certificate.issuer_key_id,
                r.certificate.not_before,
            )?;
            r.certificate.check_time(now)?;
            Ok(r.verify(&r.certificate.merchant_key)?)
        }
        "Receipt" => {
            let r = decode_signed::<Receipt>(b)?;
            Ok(r.verify(&merchant_key(&r.merchant_id))?)
        }
        "RevocationList" => {
            let l = decode_signed::<RevocationList<'_>>(b)?;
            Ok(trust.verify(&l, &l.issuer_key_id, now)?)
        }
        other => panic!("no verify context for {other}"),
    }
}

fn accept_one(file: &Value, vector: &Value) -> Result<(), Error> {
    let trust = trust(file);
    let now = Timestamp(vector["now"].as_u64().unwrap() as u32);
    let o = &vector["open_request"];
    let open = OpenRequest {
        nonce: Nonce(arr(&o["nonce"])),
        amount: Amount(o["amount"].as_u64().unwrap()),
        currency: Currency::parse(o["currency"].as_str().unwrap()).unwrap(),
    };
    let mut memory = VoucherMemory::<64>::default();
    for s in vector["seen"].as_array().unwrap() {
        let b = unhex(s);
        let p = decode_signed::<Payment<'_>>(&b).unwrap();
        memory.remember(Seen {
            voucher: p.voucher.id,
            seq: p.seq,
            link: p.id().link(),
            prev: p.prev,
            cumulative: p.cumulative,
        });
    }
    let rl_bytes = vector["revocation_list"]
        .as_str()
        .map(|h| hex::decode(h).unwrap());
    let rl = rl_bytes.as_ref().map(|b| {
        let l = decode_signed::<RevocationList<'_>>(b).unwrap();
        trust.verify(&l, &l.issuer_key_id, now).unwrap();
        *l.value()
    });
    let merchant = MerchantId(arr(&file["fixture"]["merchant_a"]["id"]));
    let bytes = unhex(&vector["hex"]);
    let payment = decode_signed::<Payment<'_>>(&bytes)?;
    let ctx = Context {
        trust: &trust,
        revocations: rl.as_ref(),
        now,
    };
    decide(&ctx, merchant, Some(&open), &memory, &payment)
}

fn pay_one(file: &Value, vector: &Value) -> Result<Vec<u8>, Error> {
    let trust = trust(file);
    let now = Timestamp(vector["now"].as_u64().unwrap() as u32);
    // The fixture holder key comes from seed [2; 32] (fixture description).
    let holder = SigningKey::from_seed(&[2; 32]);
    assert_eq!(
        holder.public_key().0,
        arr::<32>(&file["fixture"]["holder_key"])
    );
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder).unwrap();
    let install_at = Timestamp(vector["install_at"].as_u64().unwrap() as u32);
    for voucher in vector["vouchers"].as_array().unwrap() {
        wallet
            .install_voucher(&unhex(voucher), &trust, install_at)
            .unwrap();
    }
    let paid_at = Timestamp(vector["paid_at"].as_u64().unwrap() as u32);
    for paid in vector["paid"].as_array().unwrap() {
        wallet.pay(&unhex(paid), &trust, None, paid_at).unwrap();
    }
    let rl_bytes = vector["revocation_list"]
        .as_str()
        .map(|h| hex::decode(h).unwrap());
    let rl = rl_bytes
        .as_ref()
        .map(|b| *decode_signed::<RevocationList<'_>>(b).unwrap().value());
    let before = wallet.store().len();
    let result = wallet
        .pay(&unhex(&vector["hex"]), &trust, rl.as_ref(), now)
        .map(|b| b.to_vec());
    if result.is_err() {
        assert_eq!(
            wallet.store().len(),
            before,
            "{}: a refused payment must store nothing",
            vector["name"]
        );
    }
    result
}

/// Context 'install' (SPEC §8.1.1): the steps, then the install of the vector's voucher.
fn install_one(file: &Value, vector: &Value) -> Result<(), Error> {
    let trust = trust(file);
    let holder = SigningKey::from_seed(&[2; 32]);
    let mut wallet: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder).unwrap();
    let at = |v: &Value| Timestamp(v["at"].as_u64().unwrap() as u32);
    for step in vector["steps"].as_array().unwrap() {
        let name = &vector["name"];
        if let Some(v) = step.get("install") {
            wallet
                .install_voucher(&unhex(v), &trust, at(step))
                .unwrap_or_else(|e| panic!("{name}: install step: {e:?}"));
        } else if let Some(r) = step.get("pay") {
            wallet
                .pay(&unhex(r), &trust, None, at(step))
                .unwrap_or_else(|e| panic!("{name}: pay step: {e:?}"));
        } else if let Some(r) = step.get("receipt") {
            wallet
                .receive_receipt(&unhex(r))
                .unwrap_or_else(|e| panic!("{name}: receipt step: {e:?}"));
        } else if let Some(r) = step.get("report") {
            wallet
                .apply_report(&unhex(r), &trust, at(step))
                .unwrap_or_else(|e| panic!("{name}: report step: {e:?}"));
        } else if step.get("retire").is_some() {
            wallet
                .retire(at(step))
                .unwrap_or_else(|e| panic!("{name}: retire step: {e:?}"));
        } else if step.get("compact").is_some() {
            let mut marks = vec![false; wallet.store().len()];
            wallet
                .compact(at(step), &mut marks)
                .unwrap_or_else(|e| panic!("{name}: compact step: {e:?}"));
        } else {
            panic!("{name}: unknown step {step}");
        }
    }
    let now = Timestamp(vector["now"].as_u64().unwrap() as u32);
    let before = wallet.store().len();
    let r = wallet
        .install_voucher(&unhex(&vector["hex"]), &trust, now)
        .map(|_| ());
    if r.is_err() {
        assert_eq!(
            wallet.store().len(),
            before,
            "{}: a refused install must store nothing",
            vector["name"]
        );
    }
    r
}

fn settle_one(file: &Value, scenario: &Value) {
    let name = scenario["name"].as_str().unwrap();
    let grace = scenario["grace_secs"].as_u64().unwrap() as u32;
    let mut ledger = Settlement::new(trust(file), grace);
    for m in ["merchant_a", "merchant_b"] {
        ledger
            .register_merchant(&unhex(&file["fixture"][m]["certificate"]))
            .unwrap();
    }
    for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
        let now = Timestamp(step["now"].as_u64().unwrap() as u32);
        let report = ledger.ingest(&unhex(&step["batch"]), now).unwrap();
        let got: Vec<String> = report
            .entries
            .iter()
            .map(|e| offpay_conformance::vectors::outcome_name(e.outcome))
            .collect();
        let want: Vec<String> = step["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "{name}: step {i}");
        if let Some(proofs) = step["proofs"].as_array() {
            let got: Vec<(String, String, String)> = report
                .proofs
                .iter()
                .map(|p| {
                    let p = decode_unsigned::<FraudProof<'_>>(p).unwrap();
                    (
                        format!("{:?}", p.kind),
                        hex::encode(p.first.id().0),
                        hex::encode(p.second.id().0),
                    )
                })
                .collect();
            let want: Vec<(String, String, String)> = proofs
                .iter()
                .map(|p| {
                    let f = |k: &str| p[k].as_str().unwrap().to_string();
                    (f("kind"), f("first"), f("second"))
                })
                .collect();
            assert_eq!(got, want, "{name}: step {i}: proofs");
        }
    }
    if let Some(at) = scenario["close_at"].as_u64() {
        ledger.close_expired(Timestamp(at as u32));
    }
    let fin = &scenario["final"];
    let mut credits = std::collections::BTreeMap::new();
    for (m, _, a) in ledger.credits() {
        credits.insert(hex::encode(m.0), a.0);
    }
    let want: std::collections::BTreeMap<String, u64> = fin["credits"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(credits, want, "{name}: credits");
    assert_eq!(
        ledger.proofs().len() as u64,
        fin["proofs"].as_u64().unwrap(),
        "{name}: proofs"
    );
    let trust = trust(file);
    for p in ledger.proofs() {
        decode_unsigned::<FraudProof<'_>>(p)
            .unwrap()
            .verify(&trust)
            .unwrap();
    }
    for (id, want) in fin["vouchers"].as_object().unwrap() {
        let s = ledger
            .voucher(&VoucherId(arr(&Value::String(id.clone()))))
            .unwrap();
        assert_eq!(
            s.credited.0,
            want["credited"].as_u64().unwrap(),
            "{name}: credited"
        );
        assert_eq!(
            s.overspend.0,
            want["overspend"].as_u64().unwrap(),
            "{name}: overspend"
        );
        assert_eq!(s.fraud, want["fraud"].as_bool().unwrap(), "{name}: fraud");
        assert_eq!(
            s.released.map(|a| a.0),
            want["released"].as_u64(),
            "{name}: released"
        );
    }
}

#[test]
fn committed_vectors_are_what_the_generator_makes() {
    for (name, json) in offpay_conformance::vectors::generate() {
        let path = offpay_conformance::vectors_dir().join(&name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json,
            "{name} differs from the generator's output: run `cargo run -p offpay-conformance --bin generate-vectors` and review the diff"
        );
    }
}

#[test]
fn every_vector_gives_its_expected_outcome() {
    check_every_vector();
}

/// The same with precomputed tables for every trusted issuer key: verification must decide
/// exactly as without them.
#[test]
fn every_vector_gives_its_expected_outcome_with_issuer_tables() {
    WITH_TABLES.set(true);
    check_every_vector();
}

/// Tables attach only to a key in the store, and only once built.
#[test]
fn tables_attach_only_to_a_trusted_key() {
    let file = load("verify.json");
    let mut t = trust(&file);
    static EMPTY: FixedKeyTables = FixedKeyTables::new();
    assert_eq!(t.attach_tables(&EMPTY), Err(VerifyError::UnknownIssuerKey));
    let stranger = SigningKey::from_seed(&[0x5a; 32]).public_key();
    assert_eq!(
        t.attach_tables(tables_for(&stranger)),
        Err(VerifyError::UnknownIssuerKey)
    );
    let trusted = t.keys()[0].key;
    assert_eq!(t.attach_tables(tables_for(&trusted)), Ok(()));
    // A weak key builds no tables.
    let mut weak = Box::new(FixedKeyTables::new());
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(weak.build(&PublicKey(identity)), Err(VerifyError::WeakKey));
    assert_eq!(weak.key(), None);
}

fn check_every_vector() {
    let mut count = 0;
    let mut classes = std::collections::BTreeSet::new();
    for name in [
        "messages.json",
        "verify.json",
        "accept.json",
        "pay.json",
        "retire.json",
    ] {
        let file = load(name);
        for vector in file["vectors"].as_array().unwrap() {
            let mut bytes = unhex(&vector["hex"]);
            // A vector too long to spell out: its hex, then zero bytes up to `zero_pad_to`.
            if let Some(n) = vector["zero_pad_to"].as_u64() {
                bytes.resize(n as usize, 0);
            }
            let ty = vector["message"].as_str().unwrap();
            let expect = vector["expect"].as_str().unwrap();
            let got = match vector["context"].as_str().unwrap() {
                "decode" => name_of(decode_any(ty, &bytes)),
                "verify" => name_of(verify_any(
                    &file,
                    ty,
                    &bytes,
                    Timestamp(vector["now"].as_u64().unwrap() as u32),
                )),
                "accept" => name_of(accept_one(&file, vector)),
                "install" => name_of(install_one(&file, vector)),
                "pay" => {
                    let r = pay_one(&file, vector);
                    if let (Ok(out), Some(want)) = (&r, vector["output"].as_str()) {
                        assert_eq!(hex::encode(out), want, "{}: payment bytes", vector["name"]);
                    }
                    name_of(r)
                }
                other => panic!("unknown context {other}"),
            };
            assert_eq!(got, expect, "vector {} ({name})", vector["name"]);
            if expect == "valid" && vector["context"] == "decode" {
                assert_eq!(
                    vector["fields"],
                    offpay_conformance::vectors::describe(&bytes)
                );
            }
            classes.insert(expect.to_string());
            count += 1;
        }
    }
    let settlement = load("settlement.json");
    for scenario in settlement["vectors"].as_array().unwrap() {
        settle_one(&settlement, scenario);
        count += 1;
    }
    assert!(count >= 60, "only {count} vectors");
    for class in [
        "truncated",
        "trailing-bytes",
        "unknown-version",
        "wrong-type",
        "non-canonical",
        "out-of-range",
        "over-size",
        "bad-signature",
        "unknown-issuer-key",
        "expired",
        "not-yet-valid",
        "wrong-currency",
        "over-limit",
        "over-policy",
        "sequence-reused",
        "wrong-merchant",
        "wrong-nonce",
        "revoked",
        "insufficient-funds",
        "chain-inconsistent",
        "capacity-exceeded",
        "voucher-retired",
    ] {
        assert!(classes.contains(class), "no vector for {class}");
    }
}

#[test]
fn a_payment_with_its_voucher_fits_the_qr_budget() {
    let file = load("messages.json");
    let mut seen = 0;
    for v in file["vectors"].as_array().unwrap() {
        if v["message"] == "Payment" && v["expect"] == "valid" {
            let len = unhex(&v["hex"]).len();
            assert!(len <= 256, "{}: {len} bytes", v["name"]);
            assert_eq!(MessageType::of(&unhex(&v["hex"])), Ok(MessageType::Payment));
            seen += 1;
        }
    }
    assert!(seen >= 2);
}
