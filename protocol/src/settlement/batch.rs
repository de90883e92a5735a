//! Signature verification for a batch: every voucher once, every holder signature, in one
//! ed25519 batch when it gives the strict verdict (SPEC §7.1), one by one otherwise. ECDSA
//! has no batch verification: P-256 holder signatures are verified one by one (§7.1.1).

use super::*;

impl<const N: usize> Settlement<N> {
    /// Verifies every candidate's voucher (once per distinct voucher, and never again once
    /// verified) and holder signature, in one ed25519 batch; when the batch fails, one by one
    /// to find the bad ones. A bad voucher fails every payment drawn on it.
    // Every index into `verdicts` is a candidate's position (`Job::Holder(i)` from
    // `enumerate` over `candidates`), and `verdicts` has one slot per candidate.
    #[allow(clippy::indexing_slicing)]
    pub(super) fn verify_signatures(
        &mut self,
        candidates: &[Candidate<'_>],
    ) -> Vec<Result<(), VerifyError>> {
        enum Job {
            Voucher([u8; 32]),
            Holder(usize),
        }
        let mut verdicts: Vec<Result<(), VerifyError>> = alloc::vec![Ok(()); candidates.len()];
        let mut bad_vouchers: BTreeMap<[u8; 32], VerifyError> = BTreeMap::new();
        let mut jobs: Vec<(Job, Vec<u8>, [u8; 64], PublicKey)> = Vec::new();
        // Payments under a holder key with a torsion component: verified one by one, since a
        // batch equation can accept what the strict one refuses (§7.1). A voucher is only
        // remembered as verified once its holder key is known to have none.
        let mut singles: Vec<(usize, Vec<u8>, [u8; 64], HolderKey)> = Vec::new();
        let mut torsion: BTreeSet<[u8; 32]> = BTreeSet::new();
        let mut queued = BTreeSet::new();
        for (i, c) in candidates.iter().enumerate() {
            let v = &c.payment.voucher;
            let vh = c.voucher_hash;
            let fresh = !self.verified_vouchers.contains(&vh) && queued.insert(vh);
            if fresh && crypto::holder_has_torsion(&v.holder_key) {
                torsion.insert(vh);
            }
            if fresh {
                match self.trust.issuer_key(&v.issuer_key_id, v.not_before) {
                    Ok(k) => jobs.push((
                        Job::Voucher(vh),
                        signed_input::<Voucher>(v.signed_bytes()),
                        *v.signature(),
                        k,
                    )),
                    Err(e) => {
                        bad_vouchers.insert(vh, e);
                    }
                }
            }
            let p = &c.payment;
            let job = (
                signed_input::<Payment<'_>>(p.signed_bytes()),
                *p.signature(),
                v.holder_key,
            );
            match job.2 {
                HolderKey::Ed25519(k) if !torsion.contains(&vh) => {
                    jobs.push((Job::Holder(i), job.0, job.1, k));
                }
                key => singles.push((i, job.0, job.1, key)),
            }
        }
        for (i, msg, sig, key) in &singles {
            if let Err(e) = crypto::verify_holder(key, &[], msg, sig) {
                verdicts[*i] = Err(e);
            }
        }
        if !(self.batch_verification && batch_ok(&jobs)) {
            for (job, msg, sig, key) in &jobs {
                if let Err(e) = crypto::verify(key, &[], msg, sig) {
                    match job {
                        Job::Voucher(vh) => {
                            bad_vouchers.insert(*vh, e);
                        }
                        Job::Holder(i) => verdicts[*i] = Err(e),
                    }
                }
            }
        }
        for (i, c) in candidates.iter().enumerate() {
            let vh = c.voucher_hash;
            match bad_vouchers.get(&vh) {
                Some(e) => verdicts[i] = Err(*e),
                None if !torsion.contains(&vh) => {
                    self.verified_vouchers.insert(vh);
                }
                None => {}
            }
        }
        verdicts
    }
}

/// `domain ‖ signed bytes` as one buffer, for batch verification.
pub(super) fn signed_input<'a, T: SignedMessage<'a>>(signed: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(T::DOMAIN.len() + signed.len());
    m.extend_from_slice(T::DOMAIN);
    m.extend_from_slice(signed);
    m
}

/// Batch-verifies every job, with the checks that make the batch accept exactly what
/// `verify_strict` accepts: no weak key, R canonical and not of small order.
pub(super) fn batch_ok<J>(jobs: &[(J, Vec<u8>, [u8; 64], PublicKey)]) -> bool {
    #[cfg(fuzzing)]
    return jobs
        .iter()
        .all(|(_, m, s, k)| crypto::verify(k, &[], m, s).is_ok());
    #[cfg(not(fuzzing))]
    batch_ok_strict(jobs)
}

#[cfg(not(fuzzing))]
fn batch_ok_strict<J>(jobs: &[(J, Vec<u8>, [u8; 64], PublicKey)]) -> bool {
    if jobs.len() < 2 {
        return jobs
            .iter()
            .all(|(_, m, s, k)| crypto::verify(k, &[], m, s).is_ok());
    }
    // Each distinct key is decompressed (and weak-checked) once per batch.
    let mut decompressed: BTreeMap<[u8; 32], ed25519_dalek::VerifyingKey> = BTreeMap::new();
    let mut keys = Vec::with_capacity(jobs.len());
    let mut sigs = Vec::with_capacity(jobs.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(jobs.len());
    for (_, m, s, k) in jobs {
        let vk = match decompressed.get(&k.0) {
            Some(vk) => *vk,
            None => match crypto::verifying_key(k) {
                Ok(vk) => *decompressed.entry(k.0).or_insert(vk),
                Err(_) => return false,
            },
        };
        let mut r = [0u8; 32];
        r.copy_from_slice(&s[..32]);
        // R must be canonically encoded and not of small order, decided on the bytes. An R
        // that does not decode fails the batch itself, and the one-by-one fallback names it.
        if !crypto::r_is_strict(&r) {
            return false;
        }
        keys.push(vk);
        sigs.push(ed25519_dalek::Signature::from_bytes(s));
        msgs.push(m);
    }
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
}
