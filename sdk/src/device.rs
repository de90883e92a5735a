//! What a wallet and a till share: configuration, the clock, the issuer connection, trust.

use crate::Error;
use crate::HolderSigner;
use crate::error::client;
use crate::files::{DeviceDir, Staged, Trust};
use offpay_issuer::api;
use offpay_issuer::client::Client;
use offpay_protocol::{KeyId, MerchantId, PublicKey, Timestamp};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a wallet or a till is created or opened. Every field has a default.
#[derive(Clone, Default)]
pub struct Config {
    /// The issuer service's public API (`http://HOST:PORT` or `https://...`). Needed to create
    /// a device; when opening one, replaces the URL saved at its creation.
    pub issuer_url: Option<String>,
    /// At creation: the issuer key (hex) to trust, as the issuer published it out of band.
    /// Without it the device trusts the newest key the service shows (trust on first use).
    pub issuer_key: Option<String>,
    /// The CA certificates (PEM) an `https://` issuer is checked against, instead of the public
    /// roots.
    pub tls_roots: Option<Vec<u8>>,
    /// The limit on each call to the issuer (default 30 seconds).
    pub timeout: Option<Duration>,
    /// A wallet's holder key kept by the app ([`HolderSigner`]); without it the wallet keeps a
    /// software key in its directory.
    pub signer: Option<Arc<dyn HolderSigner>>,
    /// A fixed time (Unix seconds) instead of the system clock, for tests and replays.
    pub fixed_time: Option<u32>,
    /// Allow `http://` to an issuer that is not on this machine. Off by default: over plain
    /// HTTP whoever is on the path reads the instrument credential a pre-authorization sends
    /// and can answer in the issuer's name (devices check what the issuer signs, but not who
    /// reads the credential). For test networks only.
    pub allow_http: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer_url", &self.issuer_url)
            .field("issuer_key", &self.issuer_key)
            .field("tls_roots", &self.tls_roots.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .field("signer", &self.signer.is_some())
            .field("fixed_time", &self.fixed_time)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl Config {
    /// A configuration for the issuer at `url`.
    pub fn issuer(url: &str) -> Self {
        Config {
            issuer_url: Some(url.to_string()),
            ..Config::default()
        }
    }

    /// The issuer client for `url`.
    pub(crate) fn client(&self, url: &str) -> Result<Client, Error> {
        if !self.allow_http && !url.starts_with("https://") && !is_loopback(url) {
            return Err(Error::invalid(format!(
                "'{url}' is not https: an issuer off this machine is reached over https only \
                 (Config::allow_http for a test network)"
            )));
        }
        let timeout = self.timeout.unwrap_or(Duration::from_secs(30));
        Client::with_options(url, timeout, self.tls_roots.as_deref())
            .map_err(|e| client("reaching the issuer", e))
    }

    /// The issuer client: the configured URL, else the one saved in `dir`.
    pub(crate) fn client_for(&self, dir: &DeviceDir) -> Result<Client, Error> {
        match &self.issuer_url {
            Some(u) => self.client(u),
            None => self.client(&dir.issuer_url()?),
        }
    }

    /// The issuer client for creating a device: the URL is required.
    pub(crate) fn client_to_create(&self) -> Result<Client, Error> {
        let url = self.issuer_url.as_deref().ok_or_else(|| {
            Error::invalid("give the issuer's URL (Config::issuer_url) to create a device")
        })?;
        self.client(url)
    }

    /// The current time.
    pub(crate) fn now(&self) -> Result<Timestamp, Error> {
        if let Some(t) = self.fixed_time {
            return Ok(Timestamp(t));
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Error::device("the system clock is before 1970; set the clock"))?
            .as_secs();
        u32::try_from(secs)
            .map(Timestamp)
            .map_err(|_| Error::device("the system clock is past 2106; set the clock"))
    }
}

/// Whether `url` is `http://` to this machine (127.0.0.0/8, `[::1]`, `localhost`).
fn is_loopback(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Asks the issuer for its keys and writes the trust anchor (the key pinned) and the issuer's
/// URL into a directory being created.
pub(crate) fn write_anchor(
    staged: &Staged,
    issuer: &Client,
    wanted: Option<&str>,
) -> Result<PublicKey, Error> {
    let info = issuer
        .issuer_info()
        .map_err(|e| client("asking the issuer for its keys", e))?;
    let key = match wanted {
        Some(w) => info
            .keys
            .iter()
            .find(|k| k.public_key.eq_ignore_ascii_case(w.trim())),
        None => info.keys.first(),
    }
    .ok_or_else(|| {
        Error::invalid(
            "the issuer does not show the key this device is to trust; check the issuer key \
             against the one the issuer published",
        )
    })?;
    let public = api::parse_key(&key.public_key).ok_or_else(|| Error::IssuerFailed {
        message: "the issuer sent a malformed key; check the issuer's URL".into(),
    })?;
    staged
        .dir()
        .write_trust(&[(public, Timestamp(key.not_before), Timestamp(key.not_after))])?;
    crate::files::write_atomic(
        &staged.dir().file("issuer.url"),
        format!("{}\n", issuer.base()).as_bytes(),
    )?;
    Ok(public)
}

/// Refuses an issuer none of whose keys the device trusts now, before anything is sent.
pub(crate) fn check_trusted(issuer: &Client, trust: &Trust, now: Timestamp) -> Result<(), Error> {
    let info = issuer
        .issuer_info()
        .map_err(|e| client("asking the issuer for its keys", e))?;
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
        Err(Error::device(format!(
            "this device does not trust the issuer at {}; use the issuer it was created with",
            issuer.base()
        )))
    }
}

/// What [`crate::CustomerWallet::refresh`] and [`crate::MerchantTill::refresh`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshSummary {
    /// Whether a newer revocation list was installed.
    pub revocation_list_updated: bool,
    /// The installed revocation list's serial number (0 for none).
    pub revocation_serial: u64,
    /// Keys the issuer shows that this device does not trust (hex). They are not added: a
    /// device adds an issuer key only through [`crate::CustomerWallet::trust_issuer_key`] or
    /// [`crate::MerchantTill::trust_issuer_key`], with a key the app got over a channel it
    /// authenticates itself (an app update), so that whoever answers at the issuer's URL
    /// cannot make the device trust a key of theirs.
    pub untrusted_keys: Vec<String>,
}

/// Installs the newest revocation list and lists the issuer keys not trusted.
pub(crate) fn refresh(
    issuer: &Client,
    dir: &DeviceDir,
    trust: &Trust,
    now: Timestamp,
) -> Result<RefreshSummary, Error> {
    let info = issuer
        .issuer_info()
        .map_err(|e| client("asking the issuer for its keys", e))?;
    let list = issuer
        .revocations()
        .map_err(|e| client("fetching the revocation list", e))?;
    let updated = dir.install_revocations(&list, trust, now)?;
    let serial = match dir.revocations()? {
        Some(b) => offpay_protocol::decode_signed::<offpay_protocol::msg::RevocationList<'_>>(&b)
            .map(|l| l.serial)
            .unwrap_or(0),
        None => 0,
    };
    let untrusted_keys = info
        .keys
        .iter()
        .filter(|k| {
            !api::parse_key(&k.public_key).is_some_and(|key| {
                trust
                    .issuer_key(&KeyId::of(&key), now)
                    .is_ok_and(|t| t == key)
            })
        })
        .map(|k| k.public_key.to_ascii_lowercase())
        .collect();
    Ok(RefreshSummary {
        revocation_list_updated: updated,
        revocation_serial: serial,
        untrusted_keys,
    })
}

/// Adds an issuer key to a device's trust anchors (at most four; the one expiring first is
/// dropped to make room).
pub(crate) fn trust_key(
    dir: &DeviceDir,
    key_hex: &str,
    not_before: u32,
    not_after: u32,
) -> Result<Trust, Error> {
    let key = api::parse_key(key_hex).ok_or_else(|| {
        Error::invalid(format!("'{key_hex}' is not an Ed25519 public key in hex"))
    })?;
    if not_after < not_before {
        return Err(Error::invalid("the key's validity ends before it begins"));
    }
    offpay_protocol::crypto::verifying_key(&key).map_err(|e| Error::Refused {
        code: e.code(),
        name: e.name().into(),
        message: "the key is not usable".into(),
    })?;
    let mut anchors = dir.anchors()?;
    anchors.retain(|(k, _, _)| *k != key);
    if anchors.len() == crate::files::TRUST_KEYS {
        anchors.sort_by_key(|(_, _, na)| std::cmp::Reverse(*na));
        anchors.pop();
    }
    anchors.push((key, Timestamp(not_before), Timestamp(not_after)));
    let mut trust = Trust::new();
    for (k, nb, na) in &anchors {
        trust
            .add(*k, *nb, *na)
            .map_err(|_| Error::invalid("the trust store is full"))?;
    }
    dir.write_trust(&anchors)?;
    Ok(trust)
}

/// A merchant id from its text: 1–8 printable ASCII characters, padded with spaces.
pub fn merchant_id(text: &str) -> Result<MerchantId, Error> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(format!(
            "'{text}' is not a merchant id: use 1 to 8 letters, digits or signs, for example CAFE-001"
        )));
    }
    let mut id = [b' '; 8];
    if let Some(dst) = id.get_mut(..text.len()) {
        dst.copy_from_slice(text.as_bytes());
    }
    Ok(MerchantId(id))
}

/// A merchant id as text (`CAFE-001`), or in hex when it is not printable.
pub fn merchant_text(id: &MerchantId) -> String {
    if id.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(&id.0).trim_end().to_string()
    } else {
        id.to_string()
    }
}

/// Checks text a message carries (a merchant name, a reference: 1–32 bytes of UTF-8 without
/// control characters, SPEC §5) before anything is stored or sent; `what` names it in the error.
pub fn check_text(what: &str, text: &str) -> Result<(), Error> {
    let max = offpay_protocol::msg::MAX_TEXT_LEN;
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "the {what} must be 1 to {max} bytes of text without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "http://127.0.0.1:7878",
            "http://127.1.2.3",
            "http://localhost:80/x",
            "http://[::1]:7878",
            "https://issuer.example",
        ] {
            assert!(Config::issuer(ok).client(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://issuer.example",
            "http://10.0.0.1:7878",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com",
            "http://[::2]:1",
        ] {
            assert!(
                matches!(Config::issuer(bad).client(bad), Err(Error::Invalid { .. })),
                "{bad}"
            );
        }
        let c = Config {
            allow_http: true,
            ..Config::issuer("http://10.0.0.1:7878")
        };
        assert!(c.client("http://10.0.0.1:7878").is_ok());
    }
}
