//! Property tests: every message survives encode → decode unchanged, and no decoder (nor the
//! acceptor or settlement) panics on arbitrary or mutated bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::codec::{encode_signed, encode_unsigned};
use offpay_protocol::msg::*;
use offpay_protocol::*;
use proptest::prelude::*;

fn issuer() -> Issuer {
    Issuer::new(SigningKey::from_seed(&[1; 32]))
}
fn holder() -> SigningKey {
    SigningKey::from_seed(&[2; 32])
}

fn currency() -> impl Strategy<Value = Currency> {
    proptest::array::uniform3(b'A'..=b'Z').prop_map(|c| Currency::new(c).unwrap())
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 éüß€-]{1,10}".prop_filter("≤ 32 bytes", |s| s.len() <= 32)
}

prop_compose! {
    fn voucher()(id in any::<[u8; 16]>(), limit in 1u64..u64::MAX, nb in 0u32..u32::MAX - 1, len in 1u32..u32::MAX,
                 single in any::<u64>(), payments in 1u32.., cur in currency()) -> Voucher {
        let not_after = nb.saturating_add(len).max(nb + 1);
        Voucher {
            id: VoucherId(id), issuer_key_id: issuer().key_id(), holder_key: holder().public_key().into(), currency: cur,
            limit: Amount(limit), not_before: Timestamp(nb), not_after: Timestamp(not_after),
            policy: AcceptancePolicy { max_single: Amount(single % limit + 1), max_payments: payments },
        }
    }
}

fn sign<'a, T: codec::SignedMessage<'a>>(v: &T, k: &dyn Signer) -> Vec<u8> {
    let mut buf = vec![0u8; T::MAX_LEN];
    let n = encode_signed(v, k, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

proptest! {
    #[test]
    fn voucher_round_trip(v in voucher()) {
        let bytes = sign(&v, issuer().signer());
        let d = decode_signed::<Voucher>(&bytes).unwrap();
        prop_assert_eq!(*d.value(), v);
        prop_assert_eq!(d.bytes(), &bytes[..]);
        d.verify(&issuer().public_key()).unwrap();
    }

    #[test]
    fn certificate_and_request_round_trip(id in any::<[u8; 8]>(), name in text(), amount in 1u64.., cur in currency(),
                                          nonce in any::<[u8; 16]>(), at in any::<u32>(), reference in proptest::option::of(text())) {
        let key = SigningKey::from_seed(&[3; 32]);
        let c = MerchantCertificate { merchant_id: MerchantId(id), issuer_key_id: issuer().key_id(), merchant_key: key.public_key(),
            display_name: &name, not_before: Timestamp(0), not_after: Timestamp(1) };
        let cb = sign(&c, issuer().signer());
        let cd = decode_signed::<MerchantCertificate<'_>>(&cb).unwrap();
        prop_assert_eq!(*cd.value(), c);
        let r = PaymentRequest { certificate: cd, amount: Amount(amount), currency: cur, nonce: Nonce(nonce), created_at: Timestamp(at), reference: reference.as_deref() };
        let rb = sign(&r, &key);
        let rd = decode_signed::<PaymentRequest<'_>>(&rb).unwrap();
        prop_assert_eq!(rd.value(), &r);
        rd.verify(&key.public_key()).unwrap();
    }

    #[test]
    fn payment_receipt_and_fraud_proof_round_trip(v in voucher(), seq in 1u32..1000, amount in 1u64..1_000_000, extra in 0u64..1_000_000,
                                                  prev in any::<[u8; 16]>(), nonce in any::<[u8; 16]>(), at in any::<u32>()) {
        let vb = sign(&v, issuer().signer());
        let vd = decode_signed::<Voucher>(&vb).unwrap();
        let (cumulative, prev) = if seq == 1 { (amount, [0u8; 16]) } else { (amount + u64::from(seq) - 1 + extra, if prev == [0; 16] { [1; 16] } else { prev }) };
        let p = Payment { voucher: vd.clone(), seq, amount: Amount(amount), cumulative: Amount(cumulative), prev: LinkId(prev),
            merchant_id: MerchantId([7; 8]), request_nonce: Nonce(nonce), created_at: Timestamp(at) };
        let pb = sign(&p, &holder());
        let pd = decode_signed::<Payment<'_>>(&pb).unwrap();
        prop_assert_eq!(pd.value(), &p);
        let r = Receipt { payment_id: pd.id(), merchant_id: MerchantId([7; 8]), accepted_at: Timestamp(at) };
        let rb = sign(&r, &holder());
        prop_assert_eq!(*decode_signed::<Receipt>(&rb).unwrap().value(), r);
        // A second payment with the same sequence number makes a proof that round-trips.
        let q = Payment { amount: Amount(amount + 1), cumulative: Amount(cumulative + 1), ..p.clone() };
        let qb = sign(&q, &holder());
        let qd = decode_signed::<Payment<'_>>(&qb).unwrap();
        let (first, second) = if pd.id() < qd.id() { (pd, qd) } else { (qd, pd) };
        let proof = FraudProof { kind: FraudKind::SameSequence, first, second };
        let mut buf = vec![0u8; 1024];
        let n = encode_unsigned(&proof, &mut buf).unwrap();
        prop_assert_eq!(decode_unsigned::<FraudProof<'_>>(&buf[..n]).unwrap(), proof);
    }

    #[test]
    fn preauth_and_revocation_round_trip(instrument in proptest::collection::vec(any::<u8>(), 1..=32), amount in 1u64.., cur in currency(),
                                         mut vouchers in proptest::collection::vec(any::<[u8; 16]>(), 0..40), serial in any::<u64>()) {
        let w: Wallet<MemStore, _> = Wallet::open(MemStore::new(), holder()).unwrap();
        let pb = w.preauth_request(&instrument, Amount(amount), cur, Nonce([3; 16]), Timestamp(5)).unwrap();
        let pd = decode_signed::<PreAuthRequest<'_>>(&pb).unwrap();
        prop_assert_eq!(pd.instrument_id, &instrument[..]);
        prop_assert_eq!(pd.amount, Amount(amount));
        let ids: Vec<VoucherId> = vouchers.iter().map(|v| VoucherId(*v)).collect();
        let lb = issuer().revocation_list(serial, Timestamp(9), &ids, &[]).unwrap();
        let ld = decode_signed::<RevocationList<'_>>(&lb).unwrap();
        prop_assert_eq!(ld.serial, serial);
        vouchers.sort();
        vouchers.dedup();
        prop_assert_eq!(ld.vouchers.len(), vouchers.len() * 16);
        for v in &vouchers {
            prop_assert!(ld.is_voucher_revoked(&VoucherId(*v)));
        }
        prop_assert!(!ld.is_voucher_revoked(&VoucherId([0xee; 16])) || vouchers.contains(&[0xee; 16]));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..700), ty in 0u8..12) {
        let mut bytes = vec![1u8, ty];
        bytes.extend(&body);
        for b in [&bytes[..], &body[..]] {
            decode_all(b);
        }
    }

    #[test]
    fn decoders_never_panic_on_mutated_messages(pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        for valid in valid_messages() {
            let mut m = valid.clone();
            let i = pos.index(m.len());
            m[i] = val;
            decode_all(&m);
            decode_all(&valid[..cut.index(valid.len())]);
        }
    }
}

fn decode_all(b: &[u8]) {
    let _ = decode_signed::<PreAuthRequest<'_>>(b);
    let _ = decode_signed::<Voucher>(b);
    let _ = decode_signed::<MerchantCertificate<'_>>(b);
    let _ = decode_signed::<PaymentRequest<'_>>(b);
    let _ = decode_signed::<Payment<'_>>(b);
    let _ = decode_signed::<Receipt>(b);
    let _ = decode_signed::<RevocationList<'_>>(b);
    let _ = decode_unsigned::<SyncBatch<'_>>(b).map(|s| s.records().count());
    let _ = decode_signed::<SyncReport<'_>>(b).map(|r| (r.entries().count(), r.proofs().count()));
    let _ = decode_unsigned::<FraudProof<'_>>(b);
    let _ = codec::MessageType::of(b);
}

fn valid_messages() -> Vec<Vec<u8>> {
    let v = Voucher {
        id: VoucherId([5; 16]),
        issuer_key_id: issuer().key_id(),
        holder_key: holder().public_key().into(),
        currency: Currency::parse("EUR").unwrap(),
        limit: Amount(5000),
        not_before: Timestamp(0),
        not_after: Timestamp(100),
        policy: AcceptancePolicy {
            max_single: Amount(5000),
            max_payments: 5,
        },
    };
    let vb = sign(&v, issuer().signer());
    let p = Payment {
        voucher: decode_signed::<Voucher>(&vb).unwrap(),
        seq: 1,
        amount: Amount(10),
        cumulative: Amount(10),
        prev: LinkId([0; 16]),
        merchant_id: MerchantId([1; 8]),
        request_nonce: Nonce([2; 16]),
        created_at: Timestamp(3),
    };
    let pb = sign(&p, &holder());
    let rl = issuer()
        .revocation_list(
            1,
            Timestamp(1),
            &[VoucherId([1; 16]), VoucherId([2; 16])],
            &[MerchantId([3; 8])],
        )
        .unwrap();
    vec![vb, pb, rl]
}

#[test]
fn the_acceptor_survives_arbitrary_payment_bytes_without_changing_state() {
    let iss = issuer();
    let mut trust = TrustStore::<4>::new();
    trust
        .add(iss.public_key(), Timestamp(0), Timestamp(1000))
        .unwrap();
    let key = SigningKey::from_seed(&[3; 32]);
    let cert = iss
        .certify_merchant(
            MerchantId([1; 8]),
            key.public_key(),
            "M",
            Timestamp(0),
            Timestamp(1000),
        )
        .unwrap();
    let mut shop: Acceptor<MemStore, _> = Acceptor::open(MemStore::new(), key, &cert).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::from_seed_u64(7);
    shop.create_request(
        Amount(10),
        Currency::parse("EUR").unwrap(),
        None,
        Timestamp(5),
        &mut rng,
    )
    .unwrap();
    let before = shop.store().len();
    let shop = core::cell::RefCell::new(shop);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now: Timestamp(5),
    };
    proptest!(|(body in proptest::collection::vec(any::<u8>(), 0..400), pos in any::<prop::sample::Index>(), val in any::<u8>())| {
        let mut m = valid_messages()[1].clone();
        let i = pos.index(m.len());
        m[i] = val;
        prop_assert!(shop.borrow_mut().accept(&body, &ctx).is_err());
        prop_assert!(shop.borrow_mut().accept(&m, &ctx).is_err());
        prop_assert_eq!(shop.borrow().store().len(), before);
    });
}

trait FromSeedU64 {
    fn from_seed_u64(seed: u64) -> Self;
}
impl FromSeedU64 for rand_chacha::ChaCha20Rng {
    fn from_seed_u64(seed: u64) -> Self {
        <Self as rand_core::SeedableRng>::seed_from_u64(seed)
    }
}
