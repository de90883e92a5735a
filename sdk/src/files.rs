//! A device directory: the files one wallet or one till keeps.
//!
//! ```text
//! wallet: holder.key (or holder.pub)  issuer.pub  issuer.url  wallet.journal  revocations.bin
//! till:   merchant.key  issuer.pub  issuer.url  certificate.bin  merchant.journal  revocations.bin
//! ```
//!
//! Keys are 32-byte seeds in hex, created with mode 0600 and never overwritten; `holder.pub`
//! (hex) replaces `holder.key` when the app signs with its own [`crate::HolderSigner`].
//! `issuer.pub` holds the trust anchors, one per line: `<public key hex> <not before> <not
//! after>` (Unix seconds), at most [`TRUST_KEYS`]. Every file is written to a temporary name,
//! synced and renamed, so a crash leaves the old file or the new one; a directory is created
//! in a staging directory beside it and renamed into place, so it is either absent or
//! complete. A process holds the directory's lock (`.lock`) while it uses it.

use crate::Error;
use crate::error::Doing;
use offpay_protocol::msg::RevocationList;
use offpay_protocol::{PublicKey, SigningKey, Timestamp, TrustStore, decode_signed};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many issuer keys a device trusts at once.
pub const TRUST_KEYS: usize = 4;
/// A device's trust store.
pub type Trust = TrustStore<TRUST_KEYS>;

/// The largest key or anchor file read.
const SMALL_FILE: usize = 4096;

/// One device directory.
#[derive(Clone, Debug)]
pub(crate) struct DeviceDir {
    dir: PathBuf,
    what: &'static str,
    _lock: Option<Arc<std::fs::File>>,
}

impl DeviceDir {
    /// The directory `dir`, holding a `what` ("wallet", "till").
    pub fn new(dir: &Path, what: &'static str) -> Self {
        DeviceDir {
            dir: dir.to_path_buf(),
            what,
            _lock: None,
        }
    }

    /// Opens an existing directory whose `key` file (or `alt`) exists, and takes its lock
    /// for as long as this value lives: a second process is refused, not queued.
    pub fn open(dir: &Path, what: &'static str, key: &str, alt: &str) -> Result<Self, Error> {
        let d = DeviceDir::new(dir, what);
        if !d.exists(key) && !d.exists(alt) {
            return Err(Error::device(format!(
                "no {what} in {} (missing {}); create it first",
                dir.display(),
                d.file(key).display()
            )));
        }
        d.locked()
    }

    fn locked(mut self) -> Result<Self, Error> {
        let path = self.file(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("locking the directory", &e))?;
        match file.try_lock() {
            Ok(()) => {
                self._lock = Some(Arc::new(file));
                Ok(self)
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::device(format!(
                "another offpay process is using the {} in {}; wait for it to finish",
                self.what,
                self.dir.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("locking the directory", &e)),
        }
    }

    /// A file of this directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether the file `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Starts creating the directory: fails if it holds `key` already, else returns a locked
    /// staging directory beside it to fill; [`Staged::commit`] renames it into place.
    pub fn stage(dir: &Path, what: &'static str, key: &str) -> Result<Staged, Error> {
        let target = DeviceDir::new(dir, what);
        if target.exists(key) {
            return Err(Error::device(format!(
                "{} already holds a {what}; open it instead",
                dir.display()
            )));
        }
        if dir.exists() && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(Error::device(format!(
                "{} exists and is not empty; give a new directory for the {what}",
                dir.display()
            )));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| what.to_string());
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let created_parent = !parent.exists();
        std::fs::create_dir_all(&parent)
            .map_err(|e| Error::io(&format!("creating {}", parent.display()), &e))?;
        // A name of its own, made exclusively: two creations at once never share one.
        let staging = parent.join(format!(".{name}.new-{}", unique()));
        std::fs::create_dir(&staging)
            .map_err(|e| Error::io(&format!("creating {}", staging.display()), &e))?;
        let d = DeviceDir::new(&staging, what).locked()?;
        Ok(Staged {
            dir: d,
            target,
            parent,
            created_parent,
            committed: false,
        })
    }

    /// Writes `key` to `name` (never overwriting a key file), readable by the owner only.
    pub fn write_key(&self, name: &str, key: &SigningKey) -> Result<(), Error> {
        let hex = zeroize::Zeroizing::new(hex::encode(key.to_seed().as_slice()));
        let path = self.file(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options
            .open(&path)
            .map_err(|e| Error::io("creating the key file", &e))?;
        f.write_all(hex.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("writing the key file", &e))
    }

    /// Reads the signing key in `name`.
    pub fn key(&self, name: &str) -> Result<SigningKey, Error> {
        let path = self.file(name);
        let bytes = zeroize::Zeroizing::new(read_capped(&path, SMALL_FILE, "reading the key")?);
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        let text = std::str::from_utf8(&bytes).unwrap_or("");
        hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| {
            Error::corrupt(format!(
                "{} is not a key file; restore it from a backup",
                path.display()
            ))
        })?;
        Ok(SigningKey::from_seed(&seed))
    }

    /// Reads a holder's public key file: hex of 32 bytes (Ed25519) or 33 (P-256).
    pub fn holder_public_key(&self, name: &str) -> Result<offpay_protocol::HolderKey, Error> {
        let path = self.file(name);
        let bytes = read_capped(&path, SMALL_FILE, "reading the public key")?;
        hex::decode(String::from_utf8_lossy(&bytes).trim())
            .ok()
            .and_then(|k| offpay_protocol::HolderKey::from_bytes(&k))
            .ok_or_else(|| {
                Error::corrupt(format!(
                    "{} is not a public key file; restore it from a backup",
                    path.display()
                ))
            })
    }

    /// Reads the trust anchors.
    pub fn trust(&self) -> Result<Trust, Error> {
        let path = self.file("issuer.pub");
        let bytes = read_capped(&path, SMALL_FILE, "reading the trust anchors")?;
        parse_trust(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
            Error::corrupt(format!(
                "{} is not a trust anchor file; restore it from a backup",
                path.display()
            ))
        })
    }

    /// Writes the trust anchors.
    pub fn write_trust(&self, anchors: &[(PublicKey, Timestamp, Timestamp)]) -> Result<(), Error> {
        let text: String = anchors
            .iter()
            .map(|(k, nb, na)| format!("{} {} {}\n", hex::encode(k.0), nb.0, na.0))
            .collect();
        write_atomic(&self.file("issuer.pub"), text.as_bytes())
    }

    /// Reads the trust anchors as lines.
    pub fn anchors(&self) -> Result<Vec<(PublicKey, Timestamp, Timestamp)>, Error> {
        let path = self.file("issuer.pub");
        let bytes = read_capped(&path, SMALL_FILE, "reading the trust anchors")?;
        parse_anchors(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
            Error::corrupt(format!(
                "{} is not a trust anchor file; restore it from a backup",
                path.display()
            ))
        })
    }

    /// The trust anchors as (key hex, not before, not after).
    pub fn anchors_hex(&self) -> Result<Vec<(String, u32, u32)>, Error> {
        Ok(self
            .anchors()?
            .into_iter()
            .map(|(k, nb, na)| (hex::encode(k.0), nb.0, na.0))
            .collect())
    }

    /// Reads the issuer's URL saved at creation.
    pub fn issuer_url(&self) -> Result<String, Error> {
        let bytes = read_capped(
            &self.file("issuer.url"),
            SMALL_FILE,
            "reading the issuer URL",
        )?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// Reads the newest installed revocation list, if there is one.
    pub fn revocations(&self) -> Result<Option<Vec<u8>>, Error> {
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
    /// returns whether it was installed. A list that fails changes nothing.
    pub fn install_revocations(
        &self,
        list: &[u8],
        trust: &Trust,
        now: Timestamp,
    ) -> Result<bool, Error> {
        let new = decode_signed::<RevocationList<'_>>(list).doing("reading the revocation list")?;
        trust
            .verify(&new, &new.issuer_key_id, now)
            .doing("checking the revocation list")?;
        // An installed list that no longer reads (a damaged file) is replaced by this verified
        // one rather than blocking every later install.
        if let Some(old) = self.revocations()?
            && let Ok(old) = decode_signed::<RevocationList<'_>>(&old)
            && new.supersedes(Some(&old)).is_err()
        {
            return Ok(false);
        }
        write_atomic(&self.file("revocations.bin"), list)?;
        Ok(true)
    }
}

/// A directory being created; dropped without [`Staged::commit`], it is removed.
pub(crate) struct Staged {
    dir: DeviceDir,
    target: DeviceDir,
    parent: PathBuf,
    created_parent: bool,
    committed: bool,
}

impl Staged {
    /// The staging directory to fill.
    pub fn dir(&self) -> &DeviceDir {
        &self.dir
    }

    /// Moves the filled directory into place and returns it, locked.
    pub fn commit(mut self) -> Result<DeviceDir, Error> {
        sync_dir(self.dir.path())?;
        let target = self.target.dir.clone();
        // An empty target directory (made by the app beforehand) is replaced.
        let _ = std::fs::remove_dir(&target);
        std::fs::rename(self.dir.path(), &target)
            .map_err(|e| Error::io(&format!("creating {}", target.display()), &e))?;
        self.committed = true;
        sync_dir(&self.parent)?;
        // The lock moved with its file: the directory stays locked by this process.
        Ok(DeviceDir {
            dir: target,
            what: self.target.what,
            _lock: self.dir._lock.take(),
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let _ = std::fs::remove_dir_all(self.dir.path());
        if self.created_parent {
            let _ = std::fs::remove_dir(&self.parent);
        }
    }
}

fn parse_anchors(text: &str) -> Option<Vec<(PublicKey, Timestamp, Timestamp)>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let mut key = [0u8; 32];
        hex::decode_to_slice(parts.next()?, &mut key).ok()?;
        let nb = Timestamp(parts.next()?.parse().ok()?);
        let na = Timestamp(parts.next()?.parse().ok()?);
        if parts.next().is_some() || out.len() == TRUST_KEYS {
            return None;
        }
        out.push((PublicKey(key), nb, na));
    }
    (!out.is_empty()).then_some(out)
}

/// Parses trust anchor lines (`<key hex> <not before> <not after>`).
pub(crate) fn parse_trust(text: &str) -> Option<Trust> {
    let mut trust = Trust::new();
    for (k, nb, na) in parse_anchors(text)? {
        trust.add(k, nb, na).ok()?;
    }
    Some(trust)
}

/// Reads a file of at most `max` bytes; a larger one is refused without reading it.
pub(crate) fn read_capped(path: &Path, max: usize, what: &str) -> Result<Vec<u8>, Error> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(&format!("{what} ({})", path.display()), &e))?;
    let mut bytes = Vec::new();
    f.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&format!("{what} ({})", path.display()), &e))?;
    if bytes.len() > max {
        return Err(Error::corrupt(format!(
            "{what}: {} is larger than {max} bytes; it is not an offpay file",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing the directory", &e))?;
    let _ = dir;
    Ok(())
}

/// 16 random hex digits, for names no other writer uses.
fn unique() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 8];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Writes `bytes` to `path` atomically: a temporary file of its own (created exclusively, so
/// two writers never share one), synced, renamed over the old one, the directory synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", unique()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io("writing a file", &e))?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&format!("writing {}", path.display()), &e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn anchors_parse_up_to_the_limit() {
        let line = |b: u8| format!("{} 10 20\n", hex::encode([b; 32]));
        let two = format!("{}{}", line(1), line(2));
        assert_eq!(parse_anchors(&two).unwrap().len(), 2);
        let five: String = (1..=5).map(line).collect();
        assert!(parse_anchors(&five).is_none());
        assert!(parse_anchors("").is_none());
        assert!(parse_anchors("zz 1 2").is_none());
        assert!(parse_anchors(&format!("{} 1", hex::encode([1u8; 32]))).is_none());
        assert!(parse_anchors(&format!("{} 1 2 3", hex::encode([1u8; 32]))).is_none());
    }

    #[test]
    fn staging_is_removed_unless_committed() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("w");
        {
            let s = DeviceDir::stage(&dir, "wallet", "k").unwrap();
            std::fs::write(s.dir().file("k"), b"x").unwrap();
        }
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        let s = DeviceDir::stage(&dir, "wallet", "k").unwrap();
        std::fs::write(s.dir().file("k"), b"x").unwrap();
        let d = s.commit().unwrap();
        assert!(d.exists("k"));
        assert!(DeviceDir::stage(&dir, "wallet", "k").is_err());
        // Locked while `d` lives.
        assert!(matches!(
            DeviceDir::open(&dir, "wallet", "k", "k"),
            Err(Error::Device { .. })
        ));
        drop(d);
        assert!(DeviceDir::open(&dir, "wallet", "k", "k").is_ok());
    }
}
