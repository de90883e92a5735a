//! The trust store: the issuer keys a device accepts, each with a validity window, several at
//! once so that the issuer can rotate keys (SPEC §7.2). Fixed capacity, no allocator.

use crate::codec::{Signed, SignedMessage};
use crate::crypto::{self, FixedKeyTables};
use crate::error::{Error, Rejection, VerifyError};
use crate::types::{CLOCK_SKEW_SECS, KeyId, PublicKey, Timestamp};
use ed25519_dalek::VerifyingKey;

/// One trusted issuer key.
#[derive(Clone, Copy, Debug)]
pub struct TrustedKey {
    /// Its key id.
    pub key_id: KeyId,
    /// The public key.
    pub key: PublicKey,
    /// First second it may be used.
    pub not_before: Timestamp,
    /// Last second it may be used.
    pub not_after: Timestamp,
    vk: VerifyingKey,
    tables: Option<&'static FixedKeyTables>,
}

/// Up to `N` trusted issuer keys.
#[derive(Clone, Debug, Default)]
pub struct TrustStore<const N: usize = 4> {
    keys: heapless::Vec<TrustedKey, N>,
}

impl<const N: usize> TrustStore<N> {
    /// An empty store.
    pub const fn new() -> Self {
        TrustStore {
            keys: heapless::Vec::new(),
        }
    }

    /// Adds (or replaces, by key id) an issuer key valid from `not_before` to `not_after`.
    pub fn add(
        &mut self,
        key: PublicKey,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Result<KeyId, Error> {
        let vk = crypto::verifying_key(&key)?;
        let key_id = KeyId::of(&key);
        let mut entry = TrustedKey {
            key_id,
            key,
            not_before,
            not_after,
            vk,
            tables: None,
        };
        if let Some(slot) = self.keys.iter_mut().find(|k| k.key_id == key_id) {
            entry.tables = slot.tables.filter(|t| t.key() == Some(key));
            *slot = entry;
        } else {
            self.keys
                .push(entry)
                .map_err(|_| Rejection::CapacityExceeded)?;
        }
        Ok(key_id)
    }

    /// Verifies signatures under a trusted key with precomputed tables from now on (see
    /// [`FixedKeyTables`]: same results, fewer instructions, 36 KiB of RAM). The key the tables
    /// were built for must be in the store; it keeps them until it is removed or replaced by
    /// another key.
    pub fn attach_tables(&mut self, tables: &'static FixedKeyTables) -> Result<(), VerifyError> {
        let key = tables.key().ok_or(VerifyError::UnknownIssuerKey)?;
        let slot = self
            .keys
            .iter_mut()
            .find(|k| k.key == key)
            .ok_or(VerifyError::UnknownIssuerKey)?;
        slot.tables = Some(tables);
        Ok(())
    }

    /// Removes a key (after a compromise).
    pub fn remove(&mut self, key_id: &KeyId) {
        self.keys.retain(|k| k.key_id != *key_id);
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    fn lookup(&self, key_id: &KeyId, at: Timestamp) -> Result<&TrustedKey, VerifyError> {
        let k = self
            .keys
            .iter()
            .find(|k| k.key_id == *key_id)
            .ok_or(VerifyError::UnknownIssuerKey)?;
        if at < k.not_before.saturating_sub(CLOCK_SKEW_SECS)
            || at > k.not_after.saturating_add(CLOCK_SKEW_SECS)
        {
            return Err(VerifyError::IssuerKeyNotValid);
        }
        Ok(k)
    }

    /// The public key for `key_id` if it is trusted at `at`.
    pub fn issuer_key(&self, key_id: &KeyId, at: Timestamp) -> Result<PublicKey, VerifyError> {
        self.lookup(key_id, at).map(|k| k.key)
    }

    /// Verifies an issuer-signed message: `key_id` must name a key trusted at `at`.
    pub fn verify<'a, T: SignedMessage<'a>>(
        &self,
        msg: &Signed<'a, T>,
        key_id: &KeyId,
        at: Timestamp,
    ) -> Result<(), VerifyError> {
        let k = self.lookup(key_id, at)?;
        crypto::verify_with_tables(
            &k.vk,
            k.tables,
            T::DOMAIN,
            msg.signed_bytes(),
            msg.signature(),
        )
    }
}
