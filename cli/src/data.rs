//! The data directory: one per device, with a subdirectory per role it plays.
//!
//! ```text
//! DIR/issuer/   issuer.key  issuer.pub  ledger.sqlite  revocations.bin
//! DIR/wallet/   holder.key  issuer.pub  wallet.journal  revocations.bin
//! DIR/merchant/ merchant.key  issuer.pub  certificate.bin  merchant.journal  revocations.bin
//! ```
//!
//! Keys are 32-byte seeds in hex, created with mode 0600 and never overwritten. `issuer.pub` is
//! the trust anchor a device installs: `<public key hex> <not before> <not after>` (Unix
//! seconds). Every file is written to a temporary name, synced and renamed, so a crash leaves
//! the old file or the new one.

use crate::fail::{Doing, Failure, Result};
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{PublicKey, SigningKey, Timestamp, TrustStore, decode_signed};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How many issuer keys a device trusts at once.
pub const TRUST_KEYS: usize = 4;
/// A device's trust store.
pub type Trust = TrustStore<TRUST_KEYS>;

/// A role's directory inside a data directory.
#[derive(Clone, Debug)]
pub struct RoleDir {
    dir: PathBuf,
    role: &'static str,
    data: PathBuf,
    lock: Option<std::sync::Arc<std::fs::File>>,
    /// Whether staging created the data directory (so abandoning removes it again).
    created_data: bool,
}

impl RoleDir {
    /// The `role` directory of data directory `data`.
    pub fn new(data: &Path, role: &'static str) -> Self {
        RoleDir {
            dir: data.join(role),
            role,
            data: data.to_path_buf(),
            lock: None,
            created_data: false,
        }
    }

    /// Takes this role's lock for as long as the returned value lives, so that two commands
    /// never work on one store at once (a second one is refused, not queued).
    pub fn locked(mut self) -> Result<Self> {
        let path = self.file(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .doing("locking the data directory")?;
        match file.try_lock() {
            Ok(()) => {
                self.lock = Some(std::sync::Arc::new(file));
                Ok(self)
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(Failure::new(
                format!(
                    "another offpay command is using the {} in {}",
                    self.role,
                    self.data.display()
                ),
                "wait for it to finish and run this again",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e).doing("locking the data directory"),
        }
    }

    /// A file of this role.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether the role was initialized here.
    pub fn exists(&self, key: &str) -> bool {
        self.file(key).exists()
    }

    /// Fails with the command that initializes the role unless its key exists.
    pub fn require(&self, key: &str, init: &str) -> Result<()> {
        if self.exists(key) {
            Ok(())
        } else {
            Err(Failure::new(
                format!(
                    "no {} in {} (missing {})",
                    self.role,
                    self.data.display(),
                    self.file(key).display()
                ),
                format!("run `offpay --data {} {init}` first", self.data.display()),
            ))
        }
    }

    /// Starts creating this role: fails if it exists, else returns a staging directory beside
    /// it (`DIR/.ROLE.new-PID`) to fill; [`RoleDir::commit`] renames it into place, so a role
    /// directory is either absent or complete, whatever crashes or fails in between.
    pub fn stage(&self, key: &str) -> Result<RoleDir> {
        if self.exists(key) {
            return Err(Failure::new(
                format!(
                    "{} already has its {} ({})",
                    self.data.display(),
                    self.role,
                    self.file(key).display()
                ),
                "use it as it is, or choose another directory with --data",
            ));
        }
        let staging = RoleDir {
            dir: self
                .data
                .join(format!(".{}.new-{}", self.role, std::process::id())),
            role: self.role,
            data: self.data.clone(),
            lock: None,
            created_data: !self.data.exists(),
        };
        let _ = std::fs::remove_dir_all(&staging.dir);
        std::fs::create_dir_all(&staging.dir).doing("creating the data directory")?;
        std::fs::File::create(staging.file(".lock")).doing("creating the data directory")?;
        Ok(staging)
    }

    /// Moves a filled staging directory into place as `target`.
    pub fn commit(self, target: &RoleDir) -> Result<()> {
        sync_dir(&self.dir)?;
        if let Err(e) = std::fs::rename(&self.dir, &target.dir) {
            let _ = std::fs::remove_dir_all(&self.dir);
            return Err(e).doing(&format!("creating {}", target.dir.display()));
        }
        sync_dir(&target.data)
    }

    /// Removes a staging directory that will not be committed.
    pub fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.created_data {
            // Only if empty: nothing else may have been put there meanwhile.
            let _ = std::fs::remove_dir(&self.data);
        }
    }

    /// The role's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `key` to `name` (never overwriting a key file), readable by the owner only.
    pub fn write_key(&self, name: &str, key: &SigningKey) -> Result<()> {
        let hex = hex::encode(key.to_seed().as_slice());
        let path = self.file(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&path).doing("creating the key file")?;
        f.write_all(hex.as_bytes())
            .and_then(|()| f.sync_all())
            .doing("writing the key file")
    }

    /// Reads the signing key in `name`.
    pub fn key(&self, name: &str) -> Result<SigningKey> {
        let path = self.file(name);
        let bytes = read_capped(&path, 1024, "reading the key file")?;
        let text = String::from_utf8_lossy(&bytes);
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
            Failure::new(
                format!("{} is not a key file", path.display()),
                "restore it from a backup",
            )
        })?;
        Ok(SigningKey::from_seed(&seed))
    }

    /// Reads the trust anchor `issuer.pub`.
    pub fn trust(&self) -> Result<Trust> {
        read_trust(&self.file("issuer.pub"))
    }

    /// Reads this role's newest revocation list, if it has one.
    pub fn revocations(&self) -> Result<Option<Vec<u8>>> {
        let path = self.file("revocations.bin");
        if !path.exists() {
            return Ok(None);
        }
        read_capped(
            &path,
            <RevocationList<'static> as offpay_protocol::codec::Message<'static>>::MAX_LEN,
            "reading the revocation list",
        )
        .map(Some)
    }

    /// Installs `list` if it verifies under `trust` and is newer than the installed one;
    /// returns whether it was installed.
    pub fn install_revocations(&self, list: &[u8], trust: &Trust, now: Timestamp) -> Result<bool> {
        let new = decode_signed::<RevocationList<'_>>(list).doing("reading the revocation list")?;
        trust
            .verify(&new, &new.issuer_key_id, now)
            .map_err(offpay_protocol::Error::from)
            .doing("checking the revocation list")?;
        if let Some(old) = self.revocations()? {
            let old = decode_signed::<RevocationList<'_>>(&old)
                .doing("reading the installed revocation list")?;
            if new.supersedes(Some(&old)).is_err() {
                return Ok(false);
            }
        }
        write_atomic(&self.file("revocations.bin"), list)?;
        Ok(true)
    }
}

/// The trust-anchor line for `key`.
pub fn trust_line(key: &PublicKey, not_before: Timestamp, not_after: Timestamp) -> String {
    format!("{} {} {}\n", hex::encode(key.0), not_before.0, not_after.0)
}

/// Reads a trust-anchor file.
pub fn read_trust(path: &Path) -> Result<Trust> {
    let bytes = read_capped(path, 4096, "reading the issuer's public key")?;
    let text = String::from_utf8_lossy(&bytes);
    let bad = || {
        Failure::new(
            format!("{} is not an issuer public key file", path.display()),
            "copy issuer/issuer.pub from the issuer's data directory",
        )
    };
    let mut parts = text.split_whitespace();
    let mut key = [0u8; 32];
    hex::decode_to_slice(parts.next().ok_or_else(bad)?, &mut key).map_err(|_| bad())?;
    let mut time = || -> Result<Timestamp> {
        Ok(Timestamp(
            parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?,
        ))
    };
    let (not_before, not_after) = (time()?, time()?);
    let mut trust = Trust::new();
    trust
        .add(PublicKey(key), not_before, not_after)
        .map_err(|_| bad())?;
    Ok(trust)
}

/// Reads a file of at most `max` bytes; a larger one is refused without reading it.
pub fn read_capped(path: &Path, max: usize, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).doing(&format!("{what} ({})", path.display()))?;
    let mut bytes = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .doing(&format!("{what} ({})", path.display()))?;
    if bytes.len() > max {
        return Err(Failure::new(
            format!("{what}: {} is larger than {max} bytes", path.display()),
            "it is not an offpay file; restore it from a backup",
        ));
    }
    Ok(bytes)
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .doing("syncing the directory")?;
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file, synced, renamed over the old one,
/// the directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).doing("writing a file")?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .doing(&format!("writing {}", path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The current time: `OFFPAY_NOW` (Unix seconds, for tests and replays) or the system clock.
pub fn now(fixed: Option<u32>) -> Result<Timestamp> {
    if let Some(t) = fixed {
        return Ok(Timestamp(t));
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Failure::new("the system clock is before 1970", "set the clock"))?
        .as_secs();
    u32::try_from(secs)
        .map(Timestamp)
        .map_err(|_| Failure::new("the system clock is past 2106", "set the clock"))
}

/// A time as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn show_time(t: Timestamp) -> String {
    let secs = i64::from(t.0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A merchant id from its text (1–8 printable ASCII characters, padded with spaces).
pub fn merchant_id(text: &str) -> Result<offpay_protocol::MerchantId> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Failure::new(
            format!("'{text}' is not a merchant id"),
            "use 1 to 8 letters, digits or signs, for example CAFE-001",
        ));
    }
    let mut id = [b' '; 8];
    id[..text.len()].copy_from_slice(text.as_bytes());
    Ok(offpay_protocol::MerchantId(id))
}

/// A merchant id as text.
pub fn show_merchant(id: &offpay_protocol::MerchantId) -> String {
    if id.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(&id.0).trim_end().to_string()
    } else {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shows_civil_time() {
        assert_eq!(show_time(Timestamp(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(show_time(Timestamp(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(
            show_time(Timestamp(1_795_478_400 + 3661)),
            "2026-11-24 01:01:01 UTC"
        );
        assert_eq!(show_time(Timestamp(u32::MAX)), "2106-02-07 06:28:15 UTC");
    }

    #[test]
    fn merchant_ids_round_trip() {
        let id = merchant_id("CAFE").unwrap();
        assert_eq!(&id.0, b"CAFE    ");
        assert_eq!(show_merchant(&id), "CAFE");
        assert!(merchant_id("TOO-LONG-ID").is_err());
        assert!(merchant_id("a b").is_err());
        assert!(merchant_id("").is_err());
    }
}
