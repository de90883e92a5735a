//! The issuer's signing side: vouchers, merchant certificates, revocation lists and reports.
//!
//! The issuer is online and usually has an allocator, but voucher and certificate signing work
//! without one.

use crate::codec::{MessageBuf, Signed, decode_signed, sign_into};
use crate::crypto::{self, Signer, SigningKey};
use crate::error::{EncodeError, Error, VerifyError};
use crate::msg::{AcceptancePolicy, MerchantCertificate, PreAuthRequest, Voucher};
use crate::types::{Amount, KeyId, MerchantId, PublicKey, Timestamp, VoucherId};
use rand_core::CryptoRngCore;

/// The terms the issuer grants with a voucher, besides the amount asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherTerms {
    /// First second of validity.
    pub not_before: Timestamp,
    /// Last second of validity.
    pub not_after: Timestamp,
    /// Largest single payment; `None` means the whole limit.
    pub max_single: Option<Amount>,
    /// Most payments.
    pub max_payments: u32,
}

/// A pre-authorization request whose holder signature has been checked: it exists only
/// through [`VerifiedPreAuth::check`].
#[derive(Clone, Debug)]
pub struct VerifiedPreAuth<'a>(Signed<'a, PreAuthRequest<'a>>);

impl<'a> VerifiedPreAuth<'a> {
    /// Decodes `bytes` as a PreAuthRequest and checks the holder's signature under the
    /// holder key it carries (the proof of possession).
    pub fn check(bytes: &'a [u8]) -> Result<Self, Error> {
        let req = decode_signed::<PreAuthRequest<'_>>(bytes)?;
        req.verify_holder(&req.holder_key)?;
        // The issuer issues no voucher to a holder key with a torsion component (§7.1).
        if crypto::holder_has_torsion(&req.holder_key) {
            return Err(VerifyError::WeakKey.into());
        }
        Ok(VerifiedPreAuth(req))
    }
    /// The request as received, bytes and signature included.
    pub fn signed(&self) -> &Signed<'a, PreAuthRequest<'a>> {
        &self.0
    }
}

impl<'a> core::ops::Deref for VerifiedPreAuth<'a> {
    type Target = PreAuthRequest<'a>;
    fn deref(&self) -> &PreAuthRequest<'a> {
        &self.0
    }
}

/// An issuer signing key with its key id. The key is a software [`SigningKey`] by default, or
/// any Ed25519 [`Signer`]: a key held in an HSM.
#[derive(Debug)]
pub struct Issuer<K: Signer = SigningKey> {
    key: K,
    key_id: KeyId,
}

impl<K: Signer> Issuer<K> {
    /// An issuer using `key`.
    pub fn new(key: K) -> Self {
        let key_id = KeyId::of(&key.public_key());
        Issuer { key, key_id }
    }
    /// The key id (first 8 bytes of SHA-256 of the public key).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    /// The public key devices put in their trust store.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }
    /// The signer, for messages built elsewhere.
    pub fn signer(&self) -> &K {
        &self.key
    }

    /// Answers a pre-authorization: checks the holder's proof of possession and signs a voucher
    /// for the amount asked, under `terms`. Whether the instrument has the funds is the
    /// backend's decision, made before calling this.
    pub fn issue_voucher(
        &self,
        preauth: &[u8],
        terms: VoucherTerms,
        rng: &mut impl CryptoRngCore,
    ) -> Result<MessageBuf<{ <Voucher as crate::codec::Message<'static>>::MAX_LEN }>, Error> {
        let req = VerifiedPreAuth::check(preauth)?;
        Ok(self.issue_voucher_for(&req, terms, rng)?)
    }

    /// As [`Issuer::issue_voucher`], for a request already checked: a backend that must read
    /// the request (its instrument, amount, nonce) before deciding verifies it once.
    pub fn issue_voucher_for(
        &self,
        req: &VerifiedPreAuth<'_>,
        terms: VoucherTerms,
        rng: &mut impl CryptoRngCore,
    ) -> Result<MessageBuf<{ <Voucher as crate::codec::Message<'static>>::MAX_LEN }>, EncodeError>
    {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let voucher = Voucher {
            id: VoucherId(id),
            issuer_key_id: self.key_id,
            holder_key: req.holder_key,
            currency: req.currency,
            limit: req.amount,
            not_before: terms.not_before,
            not_after: terms.not_after,
            policy: AcceptancePolicy {
                max_single: terms.max_single.unwrap_or(req.amount),
                max_payments: terms.max_payments,
            },
        };
        sign_into(&voucher, &self.key)
    }

    /// Certifies a merchant key.
    pub fn certify_merchant(
        &self,
        merchant_id: MerchantId,
        merchant_key: PublicKey,
        display_name: &str,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<
        MessageBuf<{ <MerchantCertificate<'static> as crate::codec::Message<'static>>::MAX_LEN }>,
        Error,
    > {
        crypto::verifying_key(&merchant_key)?;
        // A key with a torsion component would make batch verification at settlement differ
        // from strict verification (§7.1): the issuer certifies none.
        if crypto::has_torsion(&merchant_key) {
            return Err(VerifyError::WeakKey.into());
        }
        let cert = MerchantCertificate {
            merchant_id,
            issuer_key_id: self.key_id,
            merchant_key,
            display_name,
            not_before,
            not_after,
        };
        Ok(sign_into(&cert, &self.key)?)
    }

    /// Signs a revocation list; the ids are sorted and deduplicated here.
    #[cfg(feature = "alloc")]
    pub fn revocation_list(
        &self,
        serial: u64,
        issued_at: Timestamp,
        vouchers: &[VoucherId],
        merchants: &[MerchantId],
    ) -> Result<alloc::vec::Vec<u8>, Error> {
        use crate::codec::Message;
        use crate::msg::RevocationList;
        let mut v: alloc::vec::Vec<VoucherId> = vouchers.to_vec();
        v.sort();
        v.dedup();
        let mut m: alloc::vec::Vec<MerchantId> = merchants.to_vec();
        m.sort();
        m.dedup();
        let vb: alloc::vec::Vec<u8> = v.iter().flat_map(|i| i.0).collect();
        let mb: alloc::vec::Vec<u8> = m.iter().flat_map(|i| i.0).collect();
        let list = RevocationList {
            issuer_key_id: self.key_id,
            serial,
            issued_at,
            vouchers: &vb,
            merchants: &mb,
        };
        let mut out = alloc::vec![0u8; RevocationList::MAX_LEN];
        let n = crate::codec::encode_signed(&list, &self.key, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}
