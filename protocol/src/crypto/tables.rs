//! Precomputed multiples of a trusted key and of the basepoint (SPEC §7.1, §11.10).

use super::verifying_key;
use crate::error::VerifyError;
use crate::types::PublicKey;
use core::fmt;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;

/// Window width of the combs: signed radix-32 digits.
const COMB_WIDTH: u32 = 5;
/// Passes over the rows; the doublings between passes are shared by both scalars.
const COMB_PASSES: usize = 8;
/// Rows: COMB_ROWS × COMB_PASSES digits of COMB_WIDTH bits cover 256 bits and the last carry.
const COMB_ROWS: usize = 7;
/// Points per row: the multiples 1..=16 of the row's base.
const COMB_ENTRIES: usize = 1 << (COMB_WIDTH - 1);
/// Digits per scalar.
const COMB_DIGITS: usize = COMB_ROWS * COMB_PASSES;

/// `comb[r][j]` = (j + 1) · 2^(COMB_WIDTH · COMB_PASSES · r) · P. `None` only before it is
/// built (curve25519-dalek has no `const` point, and `None` lets a table be a zero-cost
/// `static` built in place, never on the stack).
type Comb = [[Option<EdwardsPoint>; COMB_ENTRIES]; COMB_ROWS];

/// Precomputed multiples of one public key and of the basepoint, for verifying many
/// signatures under that key (the issuer's, which signs every voucher an acceptor sees).
///
/// A signature check computes `[s]B − [k]A`. Without tables that takes 253 doublings shared by
/// both scalars; with them, a radix-32 comb over 7 rows of 16 multiples each takes 35
/// doublings and about 100 additions: a whole verification on a Cortex-M4 takes 0.94 M
/// instructions instead of 1.59 M (BENCHMARKS.md). The point computed is the same (the tables
/// hold exact multiples, and the key's digits are subtracted, so a key with a torsion component
/// is handled exactly), and it is compared as before, so verification accepts exactly what it
/// accepts without tables (SPEC §11.10). The comb runs in variable time, which is safe because everything it touches
/// is public: the key, the signature and the message.
///
/// Size: 2 × 7 × 16 points of 164 bytes, about 36 KiB; building costs about 4 M instructions
/// on a Cortex-M4, once. [`FixedKeyTables::new`] is `const`, so firmware keeps the tables in a
/// `static` and builds them in place with [`FixedKeyTables::build`]; a trust store uses them
/// through [`TrustStore::attach_tables`](crate::TrustStore::attach_tables).
pub struct FixedKeyTables {
    key: Option<[u8; 32]>,
    basepoint: Comb,
    point: Comb,
}

impl fmt::Debug for FixedKeyTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "FixedKeyTables({})", PublicKey(*k)),
            None => f.write_str("FixedKeyTables(empty)"),
        }
    }
}

impl Default for FixedKeyTables {
    fn default() -> Self {
        Self::new()
    }
}

impl FixedKeyTables {
    /// Empty tables (for no key yet).
    pub const fn new() -> Self {
        FixedKeyTables {
            key: None,
            basepoint: [[None; COMB_ENTRIES]; COMB_ROWS],
            point: [[None; COMB_ENTRIES]; COMB_ROWS],
        }
    }

    /// Builds the tables for `key`, in place. A weak (small-order) or undecodable key is
    /// refused and leaves the tables empty.
    pub fn build(&mut self, key: &PublicKey) -> Result<(), VerifyError> {
        self.key = None;
        let vk = verifying_key(key)?;
        if self.basepoint[COMB_ROWS - 1][COMB_ENTRIES - 1].is_none() {
            fill(
                &mut self.basepoint,
                curve25519_dalek::constants::ED25519_BASEPOINT_POINT,
            );
        }
        fill(&mut self.point, vk.to_edwards());
        self.key = Some(key.0);
        Ok(())
    }

    /// The key the tables were built for, if any.
    pub fn key(&self) -> Option<PublicKey> {
        self.key.map(PublicKey)
    }

    /// `[s]B − [k]A` for the tables' key A, or `None` if they were not built for `key`.
    #[cfg_attr(fuzzing, allow(dead_code))]
    pub(super) fn double_mul(
        &self,
        key: &[u8; 32],
        s: &Scalar,
        k: &Scalar,
    ) -> Option<EdwardsPoint> {
        if self.key.as_ref() != Some(key) {
            return None;
        }
        let ds = comb_digits(s);
        let dk = comb_digits(k);
        let mut acc: Option<EdwardsPoint> = None;
        for pass in (0..COMB_PASSES).rev() {
            if let Some(a) = acc.as_mut() {
                *a = times_pow2(*a, COMB_WIDTH);
            }
            for row in 0..COMB_ROWS {
                let i = COMB_PASSES * row + pass;
                add_digit(&mut acc, self.basepoint.get(row)?, *ds.get(i)?)?;
                add_digit(&mut acc, self.point.get(row)?, -*dk.get(i)?)?;
            }
        }
        Some(acc.unwrap_or_else(EdwardsPoint::identity))
    }
}

/// Fills `comb` with the multiples of `p`.
fn fill(comb: &mut Comb, p: EdwardsPoint) {
    let mut base = p;
    for row in comb.iter_mut() {
        let mut acc = base;
        for entry in row.iter_mut() {
            *entry = Some(acc);
            acc += base;
        }
        base = times_pow2(base, COMB_WIDTH * COMB_PASSES as u32);
    }
}

/// `p` · 2^n, three doublings at a time where it can.
fn times_pow2(mut p: EdwardsPoint, mut n: u32) -> EdwardsPoint {
    while n >= 3 {
        p = p.mul_by_cofactor();
        n -= 3;
    }
    for _ in 0..n {
        p += p;
    }
    p
}

/// Signed radix-32 digits of a scalar (below 2^253), least significant first, each in
/// [−16, 16).
#[cfg_attr(fuzzing, allow(dead_code))]
fn comb_digits(s: &Scalar) -> [i8; COMB_DIGITS] {
    let bytes = s.as_bytes();
    let bit = |i: usize| bytes.get(i / 8).map_or(0, |b| (b >> (i % 8)) & 1);
    let w = COMB_WIDTH as usize;
    let mut d = [0i8; COMB_DIGITS];
    for (i, digit) in d.iter_mut().enumerate() {
        for b in 0..w {
            *digit |= (bit(i * w + b) << b) as i8;
        }
    }
    // Recentre every digit but the last into [-half, half), carrying into the next.
    let half = 1i8 << (COMB_WIDTH - 1);
    let mut carry = 0i8;
    let last = COMB_DIGITS - 1;
    for (i, digit) in d.iter_mut().enumerate() {
        *digit += carry;
        if i == last {
            break;
        }
        carry = (*digit + half) >> COMB_WIDTH;
        *digit -= carry << COMB_WIDTH;
    }
    d
}

/// `acc` += d × (the row's base), |d| ≤ 16; `None` if the row is not built.
#[cfg_attr(fuzzing, allow(dead_code))]
fn add_digit(
    acc: &mut Option<EdwardsPoint>,
    row: &[Option<EdwardsPoint>; COMB_ENTRIES],
    d: i8,
) -> Option<()> {
    if d == 0 {
        return Some(());
    }
    let p = row.get(usize::from(d.unsigned_abs()) - 1)?.as_ref()?;
    *acc = Some(match (acc.as_ref(), d > 0) {
        (None, true) => *p,
        (None, false) => -p,
        (Some(a), true) => a + p,
        (Some(a), false) => a - p,
    });
    Some(())
}

#[cfg(all(test, feature = "alloc"))]
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate alloc;
    use crate::types::PublicKey;
    use curve25519_dalek::constants::EIGHT_TORSION;

    /// The tables' comb computes exactly the point `vartime_double_scalar_mul_basepoint`
    /// computes, for edge and random scalars, and for keys with and without a torsion
    /// component; tables built for one key are never used for another.
    #[test]
    fn fixed_key_tables_compute_the_same_point() {
        use super::{EdwardsPoint, FixedKeyTables, Scalar};
        use sha2::Digest;
        let mut scalars = alloc::vec![
            Scalar::ZERO,
            Scalar::ONE,
            Scalar::ZERO - Scalar::ONE,
            Scalar::from(16u64),
            Scalar::from(31u64),
            Scalar::from(u64::MAX),
            Scalar::from_bytes_mod_order([0x10; 32]),
            Scalar::from_bytes_mod_order([0xef; 32]),
            Scalar::from_bytes_mod_order([0xff; 32]),
        ];
        for i in 0u8..40 {
            scalars.push(Scalar::from_hash(sha2::Sha512::new().chain_update([i])));
        }
        let a = ed25519_dalek::SigningKey::from_bytes(&[9; 32])
            .verifying_key()
            .to_edwards();
        for key_point in [a, a + EIGHT_TORSION[1], a + EIGHT_TORSION[4]] {
            let key = PublicKey(key_point.compress().to_bytes());
            let mut tables = alloc::boxed::Box::new(FixedKeyTables::new());
            assert!(tables.build(&key).is_ok());
            assert_eq!(tables.key(), Some(key));
            for (i, s) in scalars.iter().enumerate() {
                for k in [scalars[(i * 7 + 3) % scalars.len()], scalars[i]] {
                    let want =
                        EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key_point, s);
                    let got = tables.double_mul(&key.0, s, &k).map(|p| p.compress());
                    assert_eq!(got, Some(want.compress()), "scalar {i}");
                }
            }
            assert!(
                tables
                    .double_mul(&[7; 32], &scalars[0], &scalars[1])
                    .is_none()
            );
        }
    }
}
